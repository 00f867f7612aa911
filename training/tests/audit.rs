//! The misclassification audit on a tiny model trained here from a few hundred comments of the shipped corpus:
//! comments whose gold label was flipped on purpose must be listed as errors with the model's label, their
//! neighbours must come from the training data in similarity order, and the exports must carry every error.

use datasets::LabeledSet;
use models::{Model, PredictOptions, Scratch};
use training::audit::{AuditConfig, audit, write};
use training::{Silent, TrainConfig, fit};

/// `n` comments spread over the corpus train split (the file is grouped by area), heads `type` and `area`.
fn corpus_sample(n: usize) -> LabeledSet {
    let train = datasets::corpus::train().expect("the shipped corpus reads");
    let stride = (train.records.len() / n).max(1);
    let mut set = train.subset(&(0..n).map(|i| i * stride).collect::<Vec<_>>());
    let keep = ["type", "area"].map(|h| set.head_index(h).expect("corpus heads"));
    for r in &mut set.records {
        r.labels = keep.iter().map(|&k| r.labels[k].clone()).collect();
    }
    set.heads = vec!["type".into(), "area".into()];
    set
}

fn tiny_model(set: &LabeledSet) -> Model {
    let config = TrainConfig {
        epochs: 15,
        ..TrainConfig::default()
    };
    let (mut model, _) = fit(set, &config, None, &Silent).expect("the sample trains");
    model.to_bytes(models::Precision::F32);
    model
}

fn predicted(model: &Model, text: &str, head: &str) -> String {
    let p = model.linear.predict(
        text,
        PredictOptions {
            top_k: 1,
            explain: 0,
        },
        &mut Scratch::default(),
    );
    p.head(head).expect("head exists").label.clone()
}

#[test]
fn flipped_gold_labels_are_listed_with_neighbours_and_exported() {
    let train = corpus_sample(300);
    let model = tiny_model(&train);

    // Audit 40 training comments; flip the type of five that the model gets right, so that exactly those five
    // (plus any the model already got wrong) are type errors with a known gold and prediction.
    let mut data = train.subset(&(0..40).collect::<Vec<_>>());
    let type_labels: Vec<String> = model.linear.heads[0].labels.clone();
    let mut flipped = Vec::new();
    let mut already_wrong = Vec::new();
    for (i, r) in data.records.iter_mut().enumerate() {
        let right = predicted(&model, &r.text, "type");
        if right != r.labels[0] {
            already_wrong.push(i);
        } else if flipped.len() < 5 {
            let other = type_labels
                .iter()
                .find(|l| **l != r.labels[0])
                .expect("several types")
                .clone();
            flipped.push((i, other.clone(), right));
            r.labels[0] = other;
        }
    }
    assert_eq!(
        flipped.len(),
        5,
        "the model fits most of its training comments"
    );

    // A near copy of the first flipped comment in the training data must be its nearest neighbour.
    let (first, _, _) = &flipped[0];
    let mut train_with_copy = train.clone();
    let mut copy = train.records[*first].clone();
    copy.text.push_str(" gracias");
    copy.line = 9999;
    train_with_copy.records.push(copy);

    let result = audit(&model, &data, &train_with_copy, &AuditConfig::default()).unwrap();
    let type_errors: Vec<_> = result.errors.iter().filter(|e| e.head == "type").collect();
    assert_eq!(type_errors.len(), flipped.len() + already_wrong.len());
    for (i, gold, right) in &flipped {
        let e = type_errors
            .iter()
            .find(|e| e.line == data.records[*i].line)
            .unwrap_or_else(|| panic!("flipped comment at line {} missing", data.records[*i].line));
        assert_eq!(&e.gold, gold);
        assert_eq!(&e.predicted, right);
        assert!(e.confidence > 0.0 && e.confidence <= 1.0);
        assert!(e.gold_probability.is_some_and(|p| p < e.confidence));
        assert!(!e.explanation.is_empty(), "the model explains its label");
        assert_eq!(e.neighbours.len(), 5);
        assert!(
            e.neighbours
                .windows(2)
                .all(|w| w[0].similarity >= w[1].similarity),
            "most similar first"
        );
        for n in &e.neighbours {
            assert!((0.0..=1.0001).contains(&n.similarity));
            assert_ne!(n.text, e.text, "a comment is not its own neighbour");
            let source = train_with_copy
                .records
                .iter()
                .find(|r| r.line == n.line)
                .expect("neighbours come from the training data");
            assert_eq!(n.label.as_deref(), Some(source.labels[0].as_str()));
        }
    }
    let first_error = type_errors
        .iter()
        .find(|e| e.line == data.records[*first].line)
        .unwrap();
    assert_eq!(
        first_error.neighbours[0].line, 9999,
        "the near copy is nearest"
    );
    assert!(first_error.neighbours[0].similarity > 0.8);

    // Confusion pairs add up to the errors, most frequent first, and the flipped pairs are among them.
    let pairs: Vec<_> = result.pairs.iter().filter(|p| p.head == "type").collect();
    assert_eq!(
        pairs.iter().map(|p| p.count).sum::<usize>(),
        type_errors.len()
    );
    assert!(pairs.windows(2).all(|w| w[0].count >= w[1].count));
    for (_, gold, right) in &flipped {
        assert!(
            pairs
                .iter()
                .any(|p| &p.gold == gold && &p.predicted == right)
        );
    }
    let summary = training::audit::summary(&result, 10);
    assert!(
        summary.contains("type — errors per confusion pair"),
        "{summary}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &result).unwrap();
    let mut reader = csv::Reader::from_path(dir.path().join("errors.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    for column in ["text", "gold", "predicted", "confidence", "relabel"] {
        assert!(
            headers.iter().any(|h| h == column),
            "{column} in {headers:?}"
        );
    }
    let relabel = headers.iter().position(|h| h == "relabel").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), result.errors.len());
    assert!(rows.iter().all(|r| r[relabel].is_empty()));
    let jsonl = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), result.errors.len());
    assert!(lines.iter().all(|l| l["relabel"].is_null()));
    assert_eq!(lines[0]["neighbours"].as_array().map(Vec::len), Some(5));
}

#[test]
fn a_head_the_model_lacks_is_a_clear_error() {
    let train = corpus_sample(60);
    let model = tiny_model(&train);
    let mut data = train.subset(&[0, 1]);
    data.heads = vec!["sector".into(), "area".into()];
    let error = audit(&model, &data, &train, &AuditConfig::default()).unwrap_err();
    assert!(error.to_string().contains("no head `sector`"), "{error}");
}
