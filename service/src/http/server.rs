//! Running the application on a socket: load the model, open the prediction log, bind, announce the address,
//! reload on SIGHUP, and on SIGTERM or SIGINT stop accepting, let requests in flight finish (up to a deadline),
//! commit what the prediction log holds and exit.

use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use super::config::ServeConfig;
use super::observe;
use super::state::{ApiKey, AppState};

/// How often histogram samples are folded into their buckets when nobody scrapes `/metrics`.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Loads the fused heads and the encoder and starts the deep tier's threads, after checking that both belong to
/// the served model.
fn load_deep_tier(
    config: &super::config::DeepServeConfig,
    model_id: &str,
) -> anyhow::Result<super::cascade::DeepTier> {
    let bytes = std::fs::read(&config.file)
        .with_context(|| format!("reading the deep tier {}", config.file.display()))?;
    let heads = models::fusion::DeepHeads::from_bytes(&bytes)
        .with_context(|| format!("loading the deep tier {}", config.file.display()))?;
    anyhow::ensure!(
        heads.fast_model_id == model_id,
        "{} was trained for model {}, but the served model is {model_id}",
        config.file.display(),
        heads.fast_model_id
    );
    let (encoder, manifest) =
        crate::model_source::load_encoder(&config.encoder_dir, config.precision, &heads.tuned)?;
    anyhow::ensure!(
        manifest.weights_sha256 == heads.encoder_sha256,
        "{} needs the encoder with weights {}, but {} holds {}",
        config.file.display(),
        heads.encoder_sha256,
        config.encoder_dir.display(),
        manifest.weights_sha256
    );
    tracing::info!(
        deep = %config.file.display(),
        encoder = %config.encoder_dir.display(),
        threads = config.threads,
        queue = config.queue,
        tuned_tensors = heads.tuned.len(),
        "deep tier loaded: the cascade is on"
    );
    Ok(super::cascade::DeepTier::start(
        encoder,
        heads,
        config.threads,
        config.queue,
    ))
}

/// Serves until SIGTERM or SIGINT. Prints `listening on ADDR` on stdout once the socket is bound.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let api_key = config
        .api_key
        .as_deref()
        .map(ApiKey::new)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if api_key.is_none() {
        tracing::info!("no API key configured: admin endpoints are disabled");
    }
    let model_path = config.model.clone();
    let (model, path) =
        tokio::task::spawn_blocking(move || crate::model_source::resolve(model_path.as_deref()))
            .await
            .context("the model loading task failed")??;
    tracing::info!(model = %model.info.id, path = %path.display(), "model loaded");
    let prediction_log = match config.db.clone() {
        Some(db) => {
            let log = tokio::task::spawn_blocking(move || {
                crate::store::PredictionLog::open(&db)
                    .with_context(|| format!("opening the prediction log {}", db.display()))
            })
            .await
            .context("the database opening task failed")??;
            tracing::info!(db = %log.path().display(), "logging predictions");
            Some(log)
        }
        None => {
            tracing::info!(
                "no prediction log (--db none): feedback and review endpoints are disabled"
            );
            None
        }
    };
    let model_id = model.info.id.clone();
    let state = AppState::with_prediction_log(model, path, api_key, config.limits, prediction_log)
        .map_err(anyhow::Error::msg)?;
    if let Some(deep) = config.deep.clone() {
        let tier = tokio::task::spawn_blocking(move || load_deep_tier(&deep, &model_id))
            .await
            .context("the deep tier loading task failed")??;
        state.set_deep_tier(tier);
    }

    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this line to find an ephemeral port.
    println!("listening on {addr}");
    tracing::info!(%addr, "listening");

    tokio::spawn(reload_on_hangup(state.clone()));
    tokio::spawn(async {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            observe::upkeep();
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    let shutdown = async move {
        let signal = termination().await;
        tracing::info!(signal, "shutting down: finishing requests in flight");
        draining.begin_drain();
        let _ = stop_tx.send(true);
    };
    let listener = listener.tap_io(|tcp| {
        // Answers are one small write; waiting for Nagle's algorithm would only add latency.
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, super::app(state.clone())).with_graceful_shutdown(shutdown);
    tokio::select! {
        served = server.into_future() => served.context("serving")?,
        () = deadline(stop_rx, config.shutdown_timeout) => {
            tracing::warn!(
                seconds = config.shutdown_timeout.as_secs_f64(),
                "requests still in flight at the shutdown deadline; exiting anyway"
            );
        }
    }
    if let Some(log) = state.prediction_log() {
        log.close().await;
        let counts = log.counts();
        tracing::info!(
            committed = counts.committed(),
            dropped = counts.dropped(),
            failed = counts.failed(),
            "prediction log closed"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves `timeout` after shutdown has begun; never before.
async fn deadline(mut stop: tokio::sync::watch::Receiver<bool>, timeout: Duration) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(timeout).await;
}

/// Waits for SIGTERM or SIGINT and names it.
async fn termination() -> &'static str {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            () = interrupt => "SIGINT",
        },
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM, only for SIGINT: {e}");
            interrupt.await;
            "SIGINT"
        }
    }
}

/// Reloads the served model's file on every SIGHUP; a refused file is logged and the old model keeps serving.
async fn reload_on_hangup(state: AppState) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!("cannot listen for SIGHUP; reload through /v1/admin/reload: {e}");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the model");
        // The outcome is logged by reload itself.
        let _ = state.reload(None).await;
    }
}
