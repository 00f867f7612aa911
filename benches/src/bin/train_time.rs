//! Times training of every head on a labeled file (as `pqrs train` reads it), several runs, and prints the
//! median: the figure behind "training all heads on the 14k history in ≤ 3 s on 2 cores". Threads follow
//! RAYON_NUM_THREADS.

use std::time::Instant;

use clap::Parser;

/// Times `training::fit` on a labeled file.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    file: benches::LabeledFile,
    /// Keep comments dated before this day (temporal split's training side).
    #[arg(long)]
    before: Option<chrono::NaiveDate>,
    /// Runs to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// SGD schedule of each head: sequential, hogwild or minibatch:SIZE.
    #[arg(long, default_value = "sequential")]
    sgd: training::SgdSchedule,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut set = args.file.read()?;
    if let Some(before) = args.before {
        set = benches::split_by_date(&set, before).0;
    }
    let config = training::TrainConfig {
        sgd: args.sgd,
        ..training::default_config()
    };
    let mut times = Vec::new();
    for run in 0..args.runs {
        let started = Instant::now();
        let (_, report) = training::fit(&set, &config, None, &training::Silent)?;
        let seconds = started.elapsed().as_secs_f64();
        let epochs: Vec<String> = report
            .heads
            .iter()
            .map(|h| format!("{}:{}/{}", h.head, h.best_epoch, h.epochs))
            .collect();
        let [hash, vocab, heads, refit] = report.phase_seconds;
        println!(
            "run {run}: {seconds:.3} s ({} comments, heads {}, {} features; hash {hash:.2} s, vocabulary {vocab:.2} s, heads {heads:.2} s, refit {refit:.2} s; best/run epochs {})",
            set.records.len(),
            set.heads.join("+"),
            report.rows,
            epochs.join(" ")
        );
        times.push(seconds);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median {:.3} s over {} runs, {} rayon threads",
        times[times.len() / 2],
        times.len(),
        rayon::current_num_threads()
    );
    Ok(())
}
