//! `pqrs eval`: evaluates a model on labeled data (any subset of its heads) and writes report.md,
//! metrics.json and SVG charts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::data::SourceArgs;
use super::train::DateFilter;

/// Arguments of `pqrs eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model to evaluate.
    #[arg(long, env = "PQRS_MODEL")]
    model: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dates: DateFilter,
    /// Directory for report.md, metrics.json and the SVG charts.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also compare fast, deep and cascade, with the deep tier MODEL.deep written by `pqrs train --deep`.
    #[arg(long)]
    deep: bool,
    #[command(flatten)]
    encoder: super::deep::EncoderChoice,
}

/// Runs `pqrs eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = service::model_source::load(&args.model)?;
    let set = if args.source.corpus {
        datasets::corpus::test().context("reading the shipped corpus")?
    } else {
        args.dates.apply(args.source.read()?)?
    };
    anyhow::ensure!(!set.heads.is_empty(), "give at least one --label HEAD=COL");
    let evaluation = training::evaluate(&model, &set)?;
    print!("{}", training::report::summary_table(&evaluation));
    if let Some(dir) = &args.out {
        training::report::write(dir, &evaluation, &model)?;
        println!("report written to {}", dir.display());
    }
    if args.deep {
        super::deep::eval_tiers(
            &model,
            &super::deep::deep_path(&args.model),
            &set,
            &args.encoder,
            args.out.as_deref(),
        )?;
    }
    Ok(())
}
