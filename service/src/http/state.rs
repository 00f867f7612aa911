//! What every request shares: the served model behind an atomic pointer (hot reload swaps it whole), the API key,
//! the limits, the concurrency budget, the drain flag and the prediction log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use models::Model;
use models::routing::CompiledRules;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Semaphore};

use super::config::Limits;
use super::error::{ApiError, ErrorCode};
use super::observe;
use crate::store::PredictionLog;

/// A model ready to serve: the weights, their routing rules and the metric handles of its labels.
#[derive(Debug)]
pub struct ServedModel {
    /// The model.
    pub model: Model,
    /// The file it was read from (the file SIGHUP and an empty reload read again).
    pub path: PathBuf,
    /// Routing rules compiled from the model's taxonomy; `None` when it has no taxonomy with escalation rules,
    /// and then answers carry no route.
    pub rules: Option<CompiledRules>,
    /// Per head, per label: the counter of predictions.
    pub(crate) label_counters: Vec<Vec<metrics::Counter>>,
    /// Per head: the counter of answers that head flagged for review.
    pub(crate) review_counters: Vec<metrics::Counter>,
}

impl ServedModel {
    /// Prepares a model for serving. Fails when the model has no heads or its taxonomy's rules do not compile.
    pub fn new(model: Model, path: PathBuf) -> Result<Self, String> {
        if model.linear.heads.is_empty() {
            return Err("the model has no heads".into());
        }
        let rules = match &model.info.taxonomy {
            Some(taxonomy) if taxonomy.escalation.is_some() => Some(
                CompiledRules::from_taxonomy(taxonomy)
                    .map_err(|e| format!("the model's taxonomy rules do not compile: {e}"))?,
            ),
            _ => None,
        };
        let label_counters = model
            .linear
            .heads
            .iter()
            .map(|head| {
                head.labels
                    .iter()
                    .map(|label| observe::prediction_counter(&head.name, label))
                    .collect()
            })
            .collect();
        let review_counters = model
            .linear
            .heads
            .iter()
            .map(|head| observe::review_counter(&head.name))
            .collect();
        Ok(Self {
            model,
            path,
            rules,
            label_counters,
            review_counters,
        })
    }

    /// The model's short id (its checksum prefix).
    pub fn id(&self) -> &str {
        &self.model.info.id
    }

    /// Head names in model order.
    pub fn head_names(&self) -> Vec<&str> {
        self.model
            .linear
            .heads
            .iter()
            .map(|h| h.name.as_str())
            .collect()
    }

    /// Why `next` cannot replace `self` without changing the shape of the answers clients rely on, if it cannot.
    pub fn incompatibility(&self, next: &ServedModel) -> Option<String> {
        let (served, offered) = (self.head_names(), next.head_names());
        if served != offered {
            return Some(format!(
                "the model's heads {offered:?} differ from the served heads {served:?}; restart the server to change them"
            ));
        }
        if self.rules.is_some() && next.rules.is_none() {
            return Some(
                "the model has no taxonomy with escalation rules, so its answers would lose their route".into(),
            );
        }
        None
    }
}

/// An API key kept only as its SHA-256 digest, so that comparing a presented key takes the same time whatever it
/// is: both sides are hashed to 32 bytes and every byte is compared.
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    /// Keeps the digest of `key`. An empty key is refused: it would let anyone in who sends an empty bearer.
    pub fn new(key: &str) -> Result<Self, String> {
        if key.trim().is_empty() {
            return Err("the API key must not be empty".into());
        }
        Ok(Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    /// True when `presented` is the key, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let difference = self
            .digest
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

/// The state shared by all requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    model: ArcSwap<ServedModel>,
    reload_lock: Mutex<()>,
    api_key: Option<ApiKey>,
    limits: Limits,
    concurrency: Arc<Semaphore>,
    draining: AtomicBool,
    classified: AtomicU64,
    flagged_for_review: AtomicU64,
    prediction_log: Option<PredictionLog>,
    /// The deep tier, when one is loaded (set once at start).
    deep: std::sync::OnceLock<Arc<super::cascade::DeepTier>>,
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Id of the model served before.
    pub previous: String,
    /// Id of the model served now.
    pub current: String,
    /// File it was read from.
    pub path: PathBuf,
}

impl AppState {
    /// State serving `model`, read from `path`, without a prediction log. Installs the metrics recorder on first
    /// use.
    pub fn new(
        model: Model,
        path: PathBuf,
        api_key: Option<ApiKey>,
        limits: Limits,
    ) -> Result<Self, String> {
        Self::with_prediction_log(model, path, api_key, limits, None)
    }

    /// State serving `model` that logs every classified comment to `prediction_log` (`None`: no log, and the
    /// feedback and review endpoints answer `store_disabled`).
    pub fn with_prediction_log(
        model: Model,
        path: PathBuf,
        api_key: Option<ApiKey>,
        limits: Limits,
        prediction_log: Option<PredictionLog>,
    ) -> Result<Self, String> {
        limits.validate()?;
        observe::install();
        let served = ServedModel::new(model, path)?;
        observe::model_loaded(None, &served);
        Ok(Self {
            inner: Arc::new(Shared {
                model: ArcSwap::from_pointee(served),
                reload_lock: Mutex::new(()),
                api_key,
                limits,
                concurrency: Arc::new(Semaphore::new(limits.max_concurrency)),
                draining: AtomicBool::new(false),
                classified: AtomicU64::new(0),
                flagged_for_review: AtomicU64::new(0),
                prediction_log,
                deep: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Loads the deep tier behind the cascade; only the first call takes effect.
    pub fn set_deep_tier(&self, tier: super::cascade::DeepTier) {
        let _ = self.inner.deep.set(Arc::new(tier));
    }

    /// The deep tier, when one is loaded and was trained for `served` (after a reload to another model the
    /// cascade is off: the fused heads were stacked on the old model's probabilities).
    pub fn deep_tier_for(&self, served: &ServedModel) -> Option<&Arc<super::cascade::DeepTier>> {
        self.inner
            .deep
            .get()
            .filter(|deep| deep.heads().fast_model_id == served.id())
    }

    /// The model serving now. A request holds this `Arc` to its end, so a reload never changes the model under it.
    pub fn model(&self) -> Arc<ServedModel> {
        self.inner.model.load_full()
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The API key, when one is configured.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.inner.api_key.as_ref()
    }

    /// The prediction log, when the server keeps one.
    pub fn prediction_log(&self) -> Option<&PredictionLog> {
        self.inner.prediction_log.as_ref()
    }

    pub(crate) fn concurrency(&self) -> &Arc<Semaphore> {
        &self.inner.concurrency
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn count_classified(&self, flagged_for_review: bool) {
        self.inner.classified.fetch_add(1, Ordering::Relaxed);
        if flagged_for_review {
            self.inner
                .flagged_for_review
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Share of answers since start that asked for review, or `None` before the first answer.
    pub fn needs_review_ratio(&self) -> Option<f64> {
        let classified = self.inner.classified.load(Ordering::Relaxed);
        let flagged = self.inner.flagged_for_review.load(Ordering::Relaxed);
        (classified > 0).then(|| flagged as f64 / classified as f64)
    }

    /// Reads the model at `path` (or the served model's file again) and swaps it in atomically. Requests in
    /// flight finish on the old model. A file that cannot be read, is corrupt or would change the heads is refused
    /// and the old model keeps serving. Reloads are serialised.
    pub async fn reload(&self, path: Option<PathBuf>) -> Result<Reloaded, ApiError> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let served = self.model();
        let path = path.unwrap_or_else(|| served.path.clone());
        let outcome =
            load_served(path.clone())
                .await
                .and_then(|next| match served.incompatibility(&next) {
                    Some(why) => Err(why),
                    None => Ok(next),
                });
        match outcome {
            Ok(next) => {
                observe::model_loaded(Some(&served), &next);
                observe::reload_result(true);
                let reloaded = Reloaded {
                    previous: served.id().to_string(),
                    current: next.id().to_string(),
                    path,
                };
                self.inner.model.store(Arc::new(next));
                tracing::info!(
                    previous = %reloaded.previous,
                    current = %reloaded.current,
                    path = %reloaded.path.display(),
                    "model reloaded"
                );
                Ok(reloaded)
            }
            Err(why) => {
                observe::reload_result(false);
                tracing::warn!(path = %path.display(), "model reload refused: {why}");
                Err(ApiError::new(
                    ErrorCode::ModelRejected,
                    format!(
                        "model {} refused, still serving {}: {why}",
                        path.display(),
                        served.id()
                    ),
                ))
            }
        }
    }
}

/// Reads and prepares a model off the async runtime: a model file is megabytes to read and check.
async fn load_served(path: PathBuf) -> Result<ServedModel, String> {
    tokio::task::spawn_blocking(move || read_served(&path))
        .await
        .map_err(|e| format!("the loading task failed: {e}"))?
}

fn read_served(path: &Path) -> Result<ServedModel, String> {
    let model = crate::model_source::load(path).map_err(|e| format!("{e:#}"))?;
    ServedModel::new(model, path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_accepts_only_itself() {
        let key = ApiKey::new("s3cret-key").unwrap();
        assert!(key.verify("s3cret-key"));
        for wrong in ["", "s3cret-ke", "s3cret-key ", "S3CRET-KEY", "x"] {
            assert!(!key.verify(wrong), "{wrong:?}");
        }
        assert!(ApiKey::new("  ").is_err());
        assert_eq!(format!("{key:?}"), "ApiKey(..)");
    }
}
