//! Prediction throughput of a model on the texts of a file: one by one on one thread (with and without
//! explanations) and in bulk on every core (rayon), printed as JSON for `run.sh` and people alike.

use std::time::Instant;

use clap::Parser;
use models::{PredictOptions, Scratch};

/// Measures prediction throughput.
#[derive(Debug, Parser)]
struct Args {
    /// Model artifact.
    #[arg(long)]
    model: std::path::PathBuf,
    /// File with the texts (CSV, JSONL or XLSX).
    #[arg(long)]
    data: std::path::PathBuf,
    /// Text column.
    #[arg(long)]
    text: String,
    /// Passes over the texts per measurement.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Use at most this many texts (the explained pass runs at a fifth of the speed; a million would take minutes).
    #[arg(long, default_value_t = 100_000)]
    limit: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let bytes = std::fs::read(&args.model)?;
    let model = models::Model::from_bytes(&bytes)?;
    let load_seconds = started.elapsed().as_secs_f64();
    // Any label column will do to read the texts; reuse the text column so no label is required.
    let mapping = datasets::ColumnMapping {
        text: vec![args.text.clone()],
        labels: vec![],
        ..Default::default()
    };
    let set = datasets::read_labeled(&args.data, &mapping)?;
    let texts: Vec<&str> = set
        .records
        .iter()
        .take(args.limit)
        .map(|r| r.text.as_str())
        .collect();
    anyhow::ensure!(!texts.is_empty(), "no texts read");
    let mean_chars =
        texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64;
    let n = (texts.len() * args.passes) as f64;

    let linear = &model.linear;
    let mut scratch = Scratch::default();
    let started = Instant::now();
    let mut sink = 0.0f32;
    for _ in 0..args.passes {
        for text in &texts {
            linear.score(text, &mut scratch);
            sink += scratch.probabilities[0];
        }
    }
    let score_one_thread = n / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for _ in 0..args.passes {
        for text in &texts {
            let p = linear.predict(
                text,
                PredictOptions {
                    top_k: 3,
                    explain: 5,
                },
                &mut scratch,
            );
            sink += p.heads[0].confidence;
        }
    }
    let predict_explain_one_thread = n / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for _ in 0..args.passes {
        let out = linear.predict_batch(
            &texts,
            PredictOptions {
                top_k: 1,
                explain: 0,
            },
        );
        sink += out[0].heads[0].confidence;
    }
    let batch_all_cores = n / started.elapsed().as_secs_f64();

    let out = serde_json::json!({
        "model_bytes": bytes.len(),
        "load_seconds": load_seconds,
        "comments": texts.len(),
        "mean_chars": mean_chars,
        "one_by_one_single_thread_per_s": score_one_thread,
        "one_by_one_with_explanations_single_thread_per_s": predict_explain_one_thread,
        "bulk_all_cores_per_s": batch_all_cores,
        "threads": rayon::current_num_threads(),
        "checksum": sink,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
