//! Micro-benchmarks of the fast classifier's hot path: normaliser, featuriser, all heads, prediction with
//! explanations, rayon batch, and artifact loading. Comments are ~100-character corpus comments; the model is the
//! default one, trained once outside the timed closures.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use models::features::{FeatureScratch, Featurizer};
use models::normalize::{NormalizeScratch, Normalizer};
use models::{Model, Precision, PredictOptions, Scratch};

fn comments() -> Vec<String> {
    let set = datasets::corpus::test().expect("corpus");
    let texts: Vec<String> = set
        .records
        .iter()
        .map(|r| r.text.clone())
        .filter(|t| (80..=120).contains(&t.chars().count()))
        .take(200)
        .collect();
    assert!(texts.len() >= 50, "need ~100-character comments");
    texts
}

fn bench(c: &mut Criterion) {
    let (mut model, _) = training::train_default().expect("default model trains");
    let bytes = model.to_bytes(Precision::F32);
    let texts = comments();
    let mean_chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() / texts.len();
    let linear = &model.linear;
    let normalizer = Normalizer::new(linear.normalizer);
    let featurizer = Featurizer::new(linear.features);

    let mut group = c.benchmark_group(format!("one_comment_{mean_chars}_chars"));
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    let mut next = || {
        i = (i + 1) % texts.len();
        texts[i].as_str()
    };
    let (mut out, mut scratch) = (String::new(), NormalizeScratch::default());
    group.bench_function("normalize", |b| {
        b.iter(|| normalizer.normalize_into(black_box(next()), &mut out, &mut scratch))
    });
    let normalized: Vec<String> = texts.iter().map(|t| normalizer.normalize(t)).collect();
    let mut j = 0;
    let mut feature_scratch = FeatureScratch::default();
    group.bench_function("featurize", |b| {
        b.iter(|| {
            j = (j + 1) % normalized.len();
            let mut n = 0u32;
            featurizer.for_each(
                black_box(&normalized[j]),
                &mut feature_scratch,
                |bucket, _| n ^= bucket,
            );
            n
        })
    });
    let mut model_scratch = Scratch::default();
    group.bench_function("normalize+featurize+all_heads", |b| {
        b.iter(|| {
            linear.score(black_box(next()), &mut model_scratch);
            model_scratch.probabilities[0]
        })
    });
    for (name, options) in [
        (
            "predict_top3_no_explanation",
            PredictOptions {
                top_k: 3,
                explain: 0,
            },
        ),
        (
            "predict_top3_explain5",
            PredictOptions {
                top_k: 3,
                explain: 5,
            },
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| linear.predict(black_box(next()), options, &mut model_scratch))
        });
    }
    group.finish();

    let mut batch = c.benchmark_group("batch_rayon");
    let many: Vec<&str> = texts
        .iter()
        .cycle()
        .take(10_000)
        .map(String::as_str)
        .collect();
    batch.throughput(Throughput::Elements(many.len() as u64));
    batch.sample_size(10);
    batch.bench_with_input(
        BenchmarkId::new("predict_batch", many.len()),
        &many,
        |b, many| {
            b.iter(|| {
                linear.predict_batch(
                    many,
                    PredictOptions {
                        top_k: 1,
                        explain: 0,
                    },
                )
            })
        },
    );
    batch.finish();

    let mut load = c.benchmark_group("artifact");
    load.sample_size(20);
    load.bench_function(format!("from_bytes_{}MB", bytes.len() / 1_000_000), |b| {
        b.iter(|| Model::from_bytes(black_box(&bytes)).expect("valid"))
    });
    load.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
