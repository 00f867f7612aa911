//! Throughput of the QA store's prediction log on its own, without HTTP: classifies the corpus comments with a
//! model file (5-n-gram explanations, top 3, routed, as `pqrs serve` logs them), then times the parts of writing a
//! row (masking, the JSON of the heads) and the whole write, both `Store::insert_predictions` in batches and the
//! writer thread behind `PredictionLog` (queue, commit, flush), on a fresh database that grows as it would.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use service::store::{LoggedPrediction, LoggedRoute, PredictionLog, Store};

// The allocator `pqrs` runs with, so that the Rust side of a row costs what it costs in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Times the prediction log.
#[derive(Debug, Parser)]
struct Args {
    /// Model file (the default model's cache file, for instance).
    #[arg(long)]
    model: PathBuf,
    /// Rows written in each timed write run.
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Rows per `insert_predictions` call in the direct run.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Directory for the databases (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One logged row per corpus comment, as the server builds them.
fn logged_rows(model_path: &std::path::Path) -> anyhow::Result<Vec<LoggedPrediction>> {
    let (model, texts) = benches::model_and_corpus_texts(model_path)?;
    let rules = match &model.info.taxonomy {
        Some(taxonomy) => Some((
            taxonomy,
            models::routing::CompiledRules::from_taxonomy(taxonomy)?,
        )),
        None => None,
    };
    let received_at = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:30:00-05:00")?;
    let options = models::PredictOptions {
        top_k: 3,
        explain: 5,
    };
    let mut scratch = models::Scratch::default();
    let mut rows = Vec::with_capacity(texts.len());
    for (n, text) in texts.into_iter().enumerate() {
        let prediction = model.linear.predict(&text, options, &mut scratch);
        let route = rules.as_ref().map(|(taxonomy, rules)| {
            let input = models::routing::RouteInput::new(&text, received_at, &prediction);
            let route = models::routing::route(taxonomy, rules, &input);
            LoggedRoute {
                area: route.area,
                delegate_queue: route.delegate_queue,
                due_at: route.due_at.to_rfc3339(),
                priority: format!("{:?}", route.priority).to_lowercase(),
                escalate: route.escalate,
                human_review: route.human_review,
            }
        });
        rows.push(LoggedPrediction {
            id: format!("corpus-{n}"),
            received_at: received_at.to_rfc3339(),
            channel: Some(["web", "correo", "buzon"][n % 3].to_string()),
            client_type: None,
            text,
            model: model.info.id.clone(),
            heads: prediction.heads,
            route,
        });
    }
    Ok(rows)
}

/// `count` rows cycling through the corpus rows, each with its own id.
fn numbered(rows: &[LoggedPrediction], count: usize, run: &str) -> Vec<LoggedPrediction> {
    (0..count)
        .map(|n| {
            let mut row = rows[n % rows.len()].clone();
            row.id = format!("{run}-{n:08}");
            row
        })
        .collect()
}

/// CPU seconds (user + system) of each thread of this process whose name starts with `prefix`, by name: the
/// machine is shared, so wall-clock rates depend on the neighbours and CPU time per row is the steadier figure.
fn thread_cpu_seconds(prefix: &str) -> Vec<(String, f64)> {
    let mut threads = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ...`: the name may hold spaces, so split at the last parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (true, Some(user), Some(system)) = (name.starts_with(prefix), ticks(11), ticks(12)) {
            // Clock ticks are 1/100 s on Linux.
            threads.push((name.to_string(), (user + system) / 100.0));
        }
    }
    threads.sort_by(|a, b| a.0.cmp(&b.0));
    threads
}

fn micros_per_row(started: Instant, rows: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / rows as f64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpus_rows = logged_rows(&args.model)?;
    let temporary = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temporary.path().into());
    println!(
        "prediction log, {} corpus comments cycled to {} rows per run, µs per row:",
        corpus_rows.len(),
        args.rows
    );

    let started = Instant::now();
    for row in &corpus_rows {
        std::hint::black_box(models::routing::mask(&row.text));
    }
    println!(
        "- mask the text: {:.1}",
        micros_per_row(started, corpus_rows.len())
    );

    let started = Instant::now();
    for row in &corpus_rows {
        for head in &row.heads {
            let top_k: Vec<(&str, f32)> = head
                .top_k
                .iter()
                .map(|s| (s.label.as_str(), s.probability))
                .collect();
            let explanation: Vec<(&str, f32)> = head
                .explanation
                .iter()
                .map(|e| (e.ngram.as_str(), e.weight))
                .collect();
            std::hint::black_box(serde_json::to_string(&top_k)?);
            std::hint::black_box(serde_json::to_string(&explanation)?);
        }
    }
    println!(
        "- JSON of the heads (top-k and explanations): {:.1}",
        micros_per_row(started, corpus_rows.len())
    );

    let rows = numbered(&corpus_rows, args.rows, "direct");
    let path = dir.join("direct.sqlite3");
    let store = Store::open(&path)?;
    // The main thread carries the process's name; no other thread runs yet.
    let main_thread_cpu = || thread_cpu_seconds("store_log").first().map_or(0.0, |t| t.1);
    let cpu_before = main_thread_cpu();
    let started = Instant::now();
    for batch in rows.chunks(args.batch.max(1)) {
        store.insert_predictions(batch)?;
    }
    let micros = micros_per_row(started, rows.len());
    let cpu = main_thread_cpu() - cpu_before;
    println!(
        "- Store::insert_predictions, batches of {}: {micros:.1} ({:.0} rows/s; CPU of the thread {:.1} µs per row)",
        args.batch,
        1e6 / micros,
        cpu * 1e6 / rows.len() as f64
    );
    drop(store);

    let rows = numbered(&corpus_rows, args.rows, "writer");
    let path = dir.join("writer.sqlite3");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let log = PredictionLog::open(&path)?;
    let capacity = service::store::writer::CHANNEL_CAPACITY;
    let started = Instant::now();
    runtime.block_on(async {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            // Fill the channel no further than it holds, then wait for the writer: nothing is dropped.
            for row in rows.by_ref().take(capacity) {
                log.record(row);
            }
            log.flush().await?;
        }
        anyhow::Ok(())
    })?;
    let micros = micros_per_row(started, args.rows);
    println!(
        "- PredictionLog (log threads, channel-sized bursts): {micros:.1} ({:.0} rows/s); committed {}, dropped {}",
        1e6 / micros,
        log.counts().committed(),
        log.counts().dropped()
    );
    // The kernel names threads by their first 15 bytes.
    for (name, seconds) in thread_cpu_seconds("pqrs-") {
        println!(
            "  - CPU of thread {name}: {:.1} µs per row",
            seconds * 1e6 / args.rows as f64
        );
    }
    runtime.block_on(log.close());
    Ok(())
}
