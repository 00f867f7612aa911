//! `pqrs audit`: lists every misclassification of a model on labeled data with its explanation and the most
//! similar training comments, prints the errors per confusion pair and writes CSV/JSONL files for relabeling.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use training::audit::AuditConfig;

use super::data::SourceArgs;
use super::train::DateFilter;

/// Arguments of `pqrs audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The model to audit (default: the default model, trained from the shipped corpus).
    #[arg(long, env = "PQRS_MODEL")]
    model: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Keep audited comments by date (`--before`, `--from`); needs `--date COL`.
    #[command(flatten)]
    dates: DateFilter,
    /// The model's training data, searched for similar comments; read with the same columns as `--data`.
    /// Default: the shipped corpus's train split, when the audited heads are the default model's.
    #[arg(long, value_name = "FILE")]
    train: Option<PathBuf>,
    /// Keep training comments dated before this day (YYYY-MM-DD); needs `--date COL`.
    #[arg(long, value_name = "DATE")]
    train_before: Option<chrono::NaiveDate>,
    /// Keep training comments dated on or after this day (YYYY-MM-DD); needs `--date COL`.
    #[arg(long, value_name = "DATE")]
    train_from: Option<chrono::NaiveDate>,
    /// Directory for errors.csv, errors.jsonl and confusion_pairs.csv.
    #[arg(long, default_value = "audit")]
    out: PathBuf,
    /// Confusion pairs printed per head (the files always have all of them).
    #[arg(long, value_name = "N", default_value_t = 15)]
    top: usize,
    /// Similar training comments kept per error (0: no search).
    #[arg(long, value_name = "K", default_value_t = 5)]
    neighbours: usize,
    /// N-grams in each explanation.
    #[arg(long, value_name = "N", default_value_t = 5)]
    explain: usize,
}

/// Runs `pqrs audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let (model, model_path) = service::model_source::resolve(args.model.as_deref())?;
    let data = if args.source.corpus {
        datasets::corpus::test().context("reading the shipped corpus")?
    } else {
        args.dates.apply(args.source.read()?)?
    };
    anyhow::ensure!(!data.heads.is_empty(), "give at least one --label HEAD=COL");
    let train_filter = DateFilter {
        before: args.train_before,
        from: args.train_from,
    };
    let train = match &args.train {
        Some(path) => {
            let mapping = args.source.mapping()?;
            let set = datasets::read_labeled(path, &mapping)
                .with_context(|| format!("reading {}", path.display()))?;
            train_filter.apply(set)?
        }
        None if data
            .heads
            .iter()
            .all(|h| datasets::corpus::HEADS.contains(&h.as_str())) =>
        {
            eprintln!("similar comments from the shipped corpus (train split)");
            train_filter.apply(datasets::corpus::train().context("reading the shipped corpus")?)?
        }
        None => anyhow::bail!(
            "give --train FILE: the model's training data, searched for comments similar to each error"
        ),
    };
    eprintln!(
        "auditing model {} ({}) on {} comments, heads: {}",
        model.info.id,
        model_path.display(),
        data.records.len(),
        data.heads.join(", ")
    );
    let config = AuditConfig {
        neighbours: args.neighbours,
        explain: args.explain,
    };
    let audit = training::audit::audit(&model, &data, &train, &config)?;
    print!("{}", training::audit::summary(&audit, args.top));
    let written = training::audit::write(&args.out, &audit)?;
    println!();
    for path in written {
        println!("written {}", path.display());
    }
    Ok(())
}
