//! Latency of the deep tier's sentence encoder per comment (one comment per forward pass, as the cascade runs
//! it), for each matmul precision and thread count, with load time and peak RSS. Each configuration runs in its
//! own child process (`RAYON_NUM_THREADS` fixes candle's threads at start-up, and peak RSS is per process).
//!
//! ```sh
//! cargo run --release -p benches --bin encoder_latency -- --encoder ~/.cache/pqrs/encoder \
//!     [--data history.csv --text texto] [--comments 300]
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use models::encoder::{Encoder, MatmulPrecision, files};
use serde::{Deserialize, Serialize};

/// Measures encoder latency.
#[derive(Debug, Parser)]
struct Args {
    /// Directory written by `pqrs encoder fetch`.
    #[arg(long)]
    encoder: PathBuf,
    /// File with comments (CSV, JSONL or XLSX); default: the shipped corpus.
    #[arg(long, requires = "text")]
    data: Option<PathBuf>,
    /// Text column of --data.
    #[arg(long)]
    text: Option<String>,
    /// Comments per configuration (spread evenly over the file).
    #[arg(long, default_value_t = 300)]
    comments: usize,
    /// Precisions to measure.
    #[arg(long, value_delimiter = ',', default_value = "q4,f16,f32")]
    precisions: Vec<MatmulPrecision>,
    /// Thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Internal: measure one configuration in this process and print it as JSON.
    #[arg(long, hide = true)]
    child: Option<MatmulPrecision>,
}

/// One configuration's figures.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    precision: MatmulPrecision,
    threads: String,
    load_seconds: f64,
    comments: usize,
    mean_tokens: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Mean over comments of 30 to 50 tokens.
    mean_ms_30_50_tokens: f64,
    peak_rss_mb: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(precision) = args.child {
        let measurement = measure(&args, precision)?;
        println!("{}", serde_json::to_string(&measurement)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for &precision in &args.precisions {
        for &threads in &args.threads {
            let mut child = Command::new(&exe);
            child
                .env("RAYON_NUM_THREADS", threads.to_string())
                .arg("--encoder")
                .arg(&args.encoder)
                .args(["--comments", &args.comments.to_string()])
                .args(["--child", precision_name(precision)]);
            if let (Some(data), Some(text)) = (&args.data, &args.text) {
                child.arg("--data").arg(data).args(["--text", text]);
            }
            let output = child.output()?;
            anyhow::ensure!(
                output.status.success(),
                "{precision:?} × {threads}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let m: Measurement = serde_json::from_slice(&output.stdout)?;
            eprintln!(
                "{:>4} {} thread(s): load {:.2} s, {} comments of {:.1} tokens: mean {:.1} ms, p50 {:.1}, p99 {:.1}, \
                 30-50 tokens {:.1} ms; peak RSS {:.0} MB",
                precision_name(m.precision),
                m.threads,
                m.load_seconds,
                m.comments,
                m.mean_tokens,
                m.mean_ms,
                m.p50_ms,
                m.p99_ms,
                m.mean_ms_30_50_tokens,
                m.peak_rss_mb
            );
            results.push(m);
        }
    }
    println!("{}", serde_json::to_string_pretty(&results)?);
    Ok(())
}

fn precision_name(precision: MatmulPrecision) -> &'static str {
    match precision {
        MatmulPrecision::Q4 => "q4",
        MatmulPrecision::F16 => "f16",
        MatmulPrecision::F32 => "f32",
    }
}

fn comments(args: &Args) -> anyhow::Result<Vec<String>> {
    let set = match (&args.data, &args.text) {
        (Some(data), Some(text)) => datasets::read_labeled(
            data,
            &datasets::ColumnMapping {
                text: vec![text.clone()],
                ..Default::default()
            },
        )?,
        _ => datasets::corpus::all()?,
    };
    let texts: Vec<String> = set.records.into_iter().map(|r| r.text).collect();
    anyhow::ensure!(!texts.is_empty(), "no comments to measure");
    let step = (texts.len() / args.comments.max(1)).max(1);
    Ok(texts
        .into_iter()
        .step_by(step)
        .take(args.comments)
        .collect())
}

fn measure(args: &Args, precision: MatmulPrecision) -> anyhow::Result<Measurement> {
    let texts = comments(args)?;
    let started = Instant::now();
    let weights = std::fs::read(args.encoder.join(files::WEIGHTS))?;
    let tokenizer = std::fs::read(args.encoder.join(files::TOKENIZER))?;
    let encoder = Encoder::from_bytes(&weights, &tokenizer, precision)?;
    drop(weights);
    let load_seconds = started.elapsed().as_secs_f64();
    // One warm-up pass over a few comments: first calls allocate and fault pages in.
    for text in texts.iter().take(5) {
        encoder.embed(&[text])?;
    }
    let mut timings = Vec::with_capacity(texts.len());
    let mut tokens = Vec::with_capacity(texts.len());
    for text in &texts {
        let started = Instant::now();
        let ids = encoder.token_ids(text)?;
        encoder.embed_ids(std::slice::from_ref(&ids))?;
        timings.push(started.elapsed().as_secs_f64() * 1e3);
        tokens.push(ids.len());
    }
    let mid: Vec<f64> = timings
        .iter()
        .zip(&tokens)
        .filter(|(_, n)| (30..=50).contains(*n))
        .map(|(t, _)| *t)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut sorted = timings.clone();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Ok(Measurement {
        precision,
        threads: std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
        load_seconds,
        comments: texts.len(),
        mean_tokens: tokens.iter().sum::<usize>() as f64 / tokens.len() as f64,
        mean_ms: mean(&timings),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        mean_ms_30_50_tokens: mean(&mid),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process (Linux `VmHWM`), NaN elsewhere.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
