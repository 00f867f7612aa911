//! Full rank against low rank: trains the shipped design (full-rank TF-IDF heads, `training::fit`) and the
//! fastText-style shared embedding bag (`training::lowrank`) at several widths on one split, and prints test
//! macro-F1 per head, training time, weight size and one-core scoring speed side by side (RESULTS.md,
//! "Full rank vs low rank").

use std::time::Instant;

use clap::Parser;
use datasets::LabeledSet;
use training::lowrank::{LowRankConfig, LowRankScratch, fit_low_rank};

/// Compares the two model designs on one split.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    file: benches::LabeledFile,
    /// Train on comments dated before this day, test on the rest.
    #[arg(long, requires = "data")]
    split_date: Option<chrono::NaiveDate>,
    /// Use the shipped corpus and its fixed test split instead of a file.
    #[arg(long, conflicts_with = "data")]
    corpus: bool,
    /// Widths of the shared embedding to try.
    #[arg(long = "dim", default_values_t = [32usize, 64])]
    dims: Vec<usize>,
    /// Learning rates of the low-rank design to try.
    #[arg(long = "lr", default_values_t = [0.05f32, 0.1])]
    learning_rates: Vec<f32>,
    /// Seconds of scoring per design for the speed column.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

/// One design's figures.
struct Row {
    design: String,
    train_seconds: f64,
    macro_f1: Vec<f64>,
    weight_mb: f64,
    per_second: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (train, test) = if args.corpus {
        (datasets::corpus::train()?, datasets::corpus::test()?)
    } else {
        let day = args
            .split_date
            .ok_or_else(|| anyhow::anyhow!("give --split-date with --data"))?;
        benches::split_by_date(&args.file.read()?, day)
    };
    anyhow::ensure!(
        !train.records.is_empty() && !test.records.is_empty(),
        "the split left an empty side: {} train, {} test",
        train.records.len(),
        test.records.len()
    );
    let texts: Vec<&str> = test.records.iter().map(|r| r.text.as_str()).collect();
    println!(
        "{} train / {} test comments, heads {}",
        train.records.len(),
        test.records.len(),
        train.heads.join(", ")
    );
    let config = training::default_config();
    let mut rows = Vec::new();

    let started = Instant::now();
    let (model, _) = training::fit(&train, &config, None, &training::Silent)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let linear = &model.linear;
    let mut scratch = models::classifier::Scratch::default();
    let mut chosen = Vec::new();
    let predicted: Vec<Vec<usize>> = texts
        .iter()
        .map(|t| {
            linear.score(t, &mut scratch);
            linear.decode(&scratch.probabilities, &mut chosen);
            chosen.clone()
        })
        .collect();
    let labels: Vec<&[String]> = linear.heads.iter().map(|h| h.labels.as_slice()).collect();
    rows.push(Row {
        design: "full rank (shipped)".into(),
        train_seconds,
        macro_f1: test_macro_f1(&test, &labels, &predicted),
        weight_mb: (linear.weights.len() * 4) as f64 / 1e6,
        per_second: per_second(&texts, args.seconds, |t| {
            linear.score(t, &mut scratch);
        }),
    });
    print_row(rows.last().expect("pushed"));

    for &dim in &args.dims {
        for &learning_rate in &args.learning_rates {
            let started = Instant::now();
            let (low, report) =
                fit_low_rank(&train, &config, LowRankConfig { dim, learning_rate })?;
            let train_seconds = started.elapsed().as_secs_f64();
            let mut scratch = LowRankScratch::default();
            let predicted: Vec<Vec<usize>> = texts
                .iter()
                .map(|t| {
                    low.score(t, &mut scratch);
                    low.chosen(&scratch)
                })
                .collect();
            let labels: Vec<&[String]> = low.heads.iter().map(|h| h.labels.as_slice()).collect();
            rows.push(Row {
                design: format!(
                    "low rank dim {dim}, lr {learning_rate} (best epoch {})",
                    report.best_epoch
                ),
                train_seconds,
                macro_f1: test_macro_f1(&test, &labels, &predicted),
                weight_mb: low.weight_bytes() as f64 / 1e6,
                per_second: per_second(&texts, args.seconds, |t| low.score(t, &mut scratch)),
            });
            print_row(rows.last().expect("pushed"));
        }
    }

    println!();
    println!(
        "| design | train s | {} | weights MB (f32) | scoring / s, 1 core |",
        train
            .heads
            .iter()
            .map(|h| format!("{h} macro-F1"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|{}---|---|", "---|".repeat(train.heads.len()));
    for row in &rows {
        println!(
            "| {} | {:.2} | {} | {:.1} | {:.0} |",
            row.design,
            row.train_seconds,
            row.macro_f1
                .iter()
                .map(|f| format!("{f:.4}"))
                .collect::<Vec<_>>()
                .join(" | "),
            row.weight_mb,
            row.per_second
        );
    }
    Ok(())
}

fn print_row(row: &Row) {
    eprintln!(
        "{}: train {:.2} s, macro-F1 {:?}, {:.1} MB, {:.0}/s",
        row.design, row.train_seconds, row.macro_f1, row.weight_mb, row.per_second
    );
}

/// Macro-F1 per head on the test side; gold labels the model never saw count as errors of a class of their own.
fn test_macro_f1(test: &LabeledSet, labels: &[&[String]], predicted: &[Vec<usize>]) -> Vec<f64> {
    labels
        .iter()
        .enumerate()
        .map(|(h, labels)| {
            let unseen = labels.len() as u32;
            let gold: Vec<u32> = test
                .records
                .iter()
                .map(|r| {
                    labels
                        .iter()
                        .position(|l| *l == r.labels[h])
                        .map_or(unseen, |p| p as u32)
                })
                .collect();
            let k = if gold.contains(&unseen) {
                labels.len() + 1
            } else {
                labels.len()
            };
            let guessed: Vec<u32> = predicted.iter().map(|p| p[h] as u32).collect();
            training::metrics::macro_f1(&gold, &guessed, k)
        })
        .collect()
}

/// Comments scored per second on this thread, cycling through `texts` for about `seconds`.
fn per_second(texts: &[&str], seconds: f64, mut score: impl FnMut(&str)) -> f64 {
    for t in texts.iter().take(200) {
        score(t);
    }
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed().as_secs_f64() < seconds {
        for t in texts {
            score(t);
        }
        done += texts.len();
    }
    done as f64 / started.elapsed().as_secs_f64()
}
