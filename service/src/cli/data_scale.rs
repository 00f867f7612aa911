//! `pqrs data scale`: writes N recombined, noised corpus comments to a CSV for benchmarks only (never for
//! accuracy claims; see `datasets::scale`).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use datasets::augment::{Augmenter, NoiseLevel};
use datasets::scale::{Generator, write_csv};

/// Arguments of `pqrs data scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Number of comments to write.
    #[arg(long, default_value_t = 1_000_000, env = "PQRS_SCALE_N")]
    n: u64,
    /// Seed of the generator: the same seed, noise level and corpus give the same file.
    #[arg(long, default_value_t = 42, env = "PQRS_SCALE_SEED")]
    seed: u64,
    /// Output CSV (columns id,text,type,area,theme,channel).
    #[arg(long, env = "PQRS_SCALE_OUT")]
    out: PathBuf,
    /// Noise added to each comment: none, light, medium or heavy.
    #[arg(long, default_value_t = NoiseLevel::Medium, env = "PQRS_SCALE_NOISE")]
    noise: NoiseLevel,
    /// Recombine only the corpus training part, so that the committed test split never leaks into the output.
    #[arg(long)]
    train_only: bool,
}

/// Runs `pqrs data scale`.
pub fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = if args.train_only {
        datasets::corpus::train()
    } else {
        datasets::corpus::all()
    }
    .context("reading the shipped corpus")?;
    let generator = Generator::new(&source, Augmenter::at_level(args.noise))?;
    let file =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let rows = write_csv(
        generator.comments(args.seed, args.n),
        BufWriter::with_capacity(1 << 20, file),
    )
    .with_context(|| format!("writing {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {rows} comments ({:.1} MB) recombined from {} corpus comments, noise {}, seed {}, to {} in {seconds:.2} s ({:.0} rows/s)",
        bytes as f64 / 1e6,
        generator.source_len(),
        args.noise,
        args.seed,
        args.out.display(),
        rows as f64 / seconds.max(1e-9),
    );
    println!(
        "for benchmarks only: these comments recombine the corpus and must never be used for accuracy claims"
    );
    Ok(())
}
