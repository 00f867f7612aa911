//! `pqrs serve`: flags and `PQRS_*` variables into a checked [`ServeConfig`], logging set up, then the HTTP
//! service of `service::http` on a multi-threaded runtime.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use service::http::{Limits, ServeConfig};
use tracing_subscriber::EnvFilter;

/// How logs are written (to stderr; stdout carries only the `listening on ADDR` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `pqrs serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Model file to serve. Without it the default model is served: trained from the shipped corpus on first start
    /// (seconds) and cached in PQRS_CACHE_DIR.
    #[arg(long, env = "PQRS_MODEL")]
    model: Option<PathBuf>,
    /// Address to listen on. Port 0 picks a free port; the bound address is printed as `listening on ADDR`.
    #[arg(long, env = "PQRS_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// API key of the admin endpoints (POST /v1/admin/reload), sent as `Authorization: Bearer KEY`. Without it
    /// those endpoints answer 403.
    #[arg(long, env = "PQRS_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest body of /v1/classify and the admin endpoints, in bytes.
    #[arg(long, env = "PQRS_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest body of /v1/classify/batch, in bytes.
    #[arg(long, env = "PQRS_MAX_BATCH_BODY_BYTES", default_value_t = Limits::default().max_batch_body_bytes)]
    max_batch_body_bytes: usize,
    /// Largest line of /v1/classify/stream, in bytes (the stream itself may be any length).
    #[arg(long, env = "PQRS_MAX_LINE_BYTES", default_value_t = Limits::default().max_line_bytes)]
    max_line_bytes: usize,
    /// Longest comment text, in characters.
    #[arg(long, env = "PQRS_MAX_TEXT_CHARS", default_value_t = Limits::default().max_text_chars)]
    max_text_chars: usize,
    /// Most items in one batch.
    #[arg(long, env = "PQRS_MAX_BATCH_ITEMS", default_value_t = Limits::default().max_batch_items)]
    max_batch_items: usize,
    /// Time a request may take, body upload included, in milliseconds (streams are exempt).
    #[arg(long, env = "PQRS_REQUEST_TIMEOUT_MS", default_value_t = Limits::default().request_timeout.as_millis() as u64)]
    request_timeout_ms: u64,
    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, env = "PQRS_MAX_CONCURRENCY", default_value_t = Limits::default().max_concurrency)]
    max_concurrency: usize,
    /// N-grams in each head's explanation (0 to 20). Explaining costs more than classifying: 0 leaves the
    /// explanation arrays empty and answers faster.
    #[arg(long, env = "PQRS_EXPLAIN", default_value_t = Limits::default().explain_ngrams)]
    explain: usize,
    /// Longest wait for requests in flight after SIGTERM or SIGINT, in seconds.
    #[arg(long, env = "PQRS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    shutdown_timeout_secs: u64,
    /// Runtime worker threads (default: one per core).
    #[arg(long, env = "PQRS_WORKERS")]
    workers: Option<usize>,
    /// Log format.
    #[arg(long, env = "PQRS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// SQLite file of the prediction log and the reviewers' corrections (created if absent), or `none` to keep no
    /// log (then POST /v1/feedback and GET /v1/review/* answer 503 store_disabled). Default:
    /// $XDG_DATA_HOME/pqrs/pqrs.sqlite3, else ~/.local/share/pqrs/pqrs.sqlite3. Texts are stored masked.
    #[arg(long, env = "PQRS_DB", value_name = "PATH|none")]
    db: Option<String>,
    /// Deep tier file (`pqrs train --deep` writes MODEL.deep): comments the fast model hesitates on are answered by
    /// the encoder's fused heads on dedicated threads. Needs --model (the fast model it was trained for) and the
    /// encoder (`pqrs encoder fetch`).
    #[arg(long, env = "PQRS_DEEP", value_name = "FILE", requires = "model")]
    deep: Option<PathBuf>,
    #[command(flatten)]
    encoder: super::deep::EncoderChoice,
    /// Threads running the encoder.
    #[arg(long, env = "PQRS_DEEP_THREADS", default_value_t = 1)]
    deep_threads: usize,
    /// Comments that may wait for the deep tier; when it is full the fast answer is sent, marked `degraded`.
    #[arg(long, env = "PQRS_DEEP_QUEUE", default_value_t = 2)]
    deep_queue: usize,
    /// Log filter in tracing's EnvFilter syntax (`info`, `debug`, `service=debug,tower_http=info`). Comment texts
    /// are logged only at debug level and only masked.
    #[arg(long, env = "PQRS_LOG", default_value = "info")]
    log: String,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<ServeConfig> {
        let limits = Limits {
            max_body_bytes: self.max_body_bytes,
            max_batch_body_bytes: self.max_batch_body_bytes,
            max_line_bytes: self.max_line_bytes,
            max_text_chars: self.max_text_chars,
            max_batch_items: self.max_batch_items,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_concurrency: self.max_concurrency,
            explain_ngrams: self.explain,
        };
        limits.validate().map_err(anyhow::Error::msg)?;
        Ok(ServeConfig {
            addr: self.addr,
            model: self.model.clone(),
            api_key: self.api_key.clone(),
            limits,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            db: database(self.db.as_deref())?,
            deep: self
                .deep
                .clone()
                .map(|file| service::http::config::DeepServeConfig {
                    file,
                    encoder_dir: self
                        .encoder
                        .encoder
                        .clone()
                        .unwrap_or_else(service::model_source::encoder_dir),
                    precision: self.encoder.encoder_precision,
                    threads: self.deep_threads.max(1),
                    queue: self.deep_queue,
                }),
        })
    }
}

/// The prediction log's file: `--db PATH`, nothing for `--db none`, else the per-user data directory.
fn database(db: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
    match db.map(str::trim) {
        Some(none) if none.eq_ignore_ascii_case("none") => Ok(None),
        Some("") => {
            anyhow::bail!("--db is empty: give a file, or `none` to keep no prediction log")
        }
        Some(path) => Ok(Some(PathBuf::from(path))),
        None => {
            let data = std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("share"))
                })
                .context("no XDG_DATA_HOME or HOME to put the prediction log in: give --db PATH or --db none")?;
            Ok(Some(data.join("pqrs").join("pqrs.sqlite3")))
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).with_context(|| format!("parsing --log {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

/// Runs `pqrs serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    init_logging(args.log_format, &args.log)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = args.workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        runtime.worker_threads(workers);
    }
    let runtime = runtime.build().context("starting the async runtime")?;
    runtime.block_on(service::http::server::run(config))
}
