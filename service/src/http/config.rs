//! Typed configuration of the HTTP service, checked once at start-up. The command line (`pqrs serve`) builds it
//! from flags and `PQRS_*` variables; tests build it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Limits that protect the service from large or slow requests. Defaults in [`Limits::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body of `/v1/classify` and the admin endpoints, in bytes.
    pub max_body_bytes: usize,
    /// Largest body of `/v1/classify/batch`, in bytes.
    pub max_batch_body_bytes: usize,
    /// Largest line of `/v1/classify/stream`, in bytes (the stream itself has no limit).
    pub max_line_bytes: usize,
    /// Longest `text`, in characters.
    pub max_text_chars: usize,
    /// Most items in one batch.
    pub max_batch_items: usize,
    /// Time a request may take, body upload included (not applied to streams).
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// N-grams in each head's explanation. Explaining costs more than classifying, so a deployment that does not
    /// show explanations can set 0 (the `explanation` arrays are then empty).
    pub explain_ngrams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_batch_body_bytes: 16 * 1024 * 1024,
            max_line_bytes: 256 * 1024,
            max_text_chars: 20_000,
            max_batch_items: 1_000,
            request_timeout: Duration::from_secs(10),
            max_concurrency: 1_024,
            explain_ngrams: 5,
        }
    }
}

impl Limits {
    /// Checks that every limit allows at least one request.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max body bytes", self.max_body_bytes),
            ("max batch body bytes", self.max_batch_body_bytes),
            ("max line bytes", self.max_line_bytes),
            ("max text chars", self.max_text_chars),
            ("max batch items", self.max_batch_items),
            ("max concurrency", self.max_concurrency),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.explain_ngrams > super::classify::MAX_EXPLAIN {
            return Err(format!(
                "explanations hold at most {} n-grams",
                super::classify::MAX_EXPLAIN
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("request timeout must be positive".into());
        }
        Ok(())
    }
}

/// Everything `pqrs serve` needs to run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (printed as `listening on ADDR`).
    pub addr: SocketAddr,
    /// Model file to serve; `None` serves the default model.
    pub model: Option<PathBuf>,
    /// API key of the admin endpoints; `None` disables them.
    pub api_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Longest wait for in-flight requests after SIGTERM or SIGINT.
    pub shutdown_timeout: Duration,
    /// SQLite file of the prediction log and the corrections; `None` keeps no log (and no review endpoints).
    pub db: Option<PathBuf>,
    /// The deep tier behind the cascade; `None` answers every comment with the fast model.
    pub deep: Option<DeepServeConfig>,
}

/// Where the deep tier and its encoder are, and how much of the machine they may take.
#[derive(Debug, Clone)]
pub struct DeepServeConfig {
    /// The `.deep` file written by `pqrs train --deep` for the served model.
    pub file: PathBuf,
    /// The converted encoder directory (`pqrs encoder fetch`).
    pub encoder_dir: PathBuf,
    /// Encoder matmul precision.
    pub precision: models::encoder::MatmulPrecision,
    /// Threads running the encoder.
    pub threads: usize,
    /// Comments that may wait for a deep thread; beyond, the fast answer is given, marked degraded.
    pub queue: usize,
}
