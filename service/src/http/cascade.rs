//! The deep tier behind the cascade: the encoder and the fused heads run on dedicated threads fed by a bounded
//! queue, so that a slow encoder can never hold up the tokio workers or the fast answers.
//!
//! A comment the fast model is sure of never comes here. One it hesitates on is queued; if the queue is full the
//! caller gets `None` at once and answers with the fast model, marked `degraded` — never a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};

use models::encoder::Encoder;
use models::fusion::{DeepHeads, DeepScratch};
use tokio::sync::oneshot;

/// Which tier produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The fast model was confident on every head.
    Fast,
    /// The fast model hesitated and the fused heads answered.
    Deep,
    /// The fast model hesitated but the deep tier was busy (or failed): the fast answer, marked as such.
    Degraded,
}

struct Job {
    text: String,
    fast_probabilities: Vec<f32>,
    reply: oneshot::Sender<Option<Vec<f32>>>,
}

/// The loaded deep tier: fused heads, policy and the worker threads that run the encoder.
pub struct DeepTier {
    heads: Arc<DeepHeads>,
    queue: SyncSender<Job>,
    /// Comments answered by the deep tier, and the ones that found it busy.
    answered: AtomicU64,
    degraded: AtomicU64,
}

impl std::fmt::Debug for DeepTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepTier")
            .field("encoder", &self.heads.encoder_sha256)
            .field("fast_model", &self.heads.fast_model_id)
            .finish_non_exhaustive()
    }
}

impl DeepTier {
    /// Starts `threads` worker threads sharing `encoder`, with room for `queue` waiting comments.
    pub fn start(encoder: Encoder, heads: DeepHeads, threads: usize, queue: usize) -> Self {
        let (sender, receiver) = sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let encoder = Arc::new(encoder);
        let heads = Arc::new(heads);
        for n in 0..threads.max(1) {
            let (receiver, encoder, heads) = (receiver.clone(), encoder.clone(), heads.clone());
            std::thread::Builder::new()
                .name(format!("pqrs-deep-{n}"))
                .spawn(move || work(&receiver, &encoder, &heads))
                .expect("the OS starts a thread");
        }
        Self {
            heads,
            queue: sender,
            answered: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
        }
    }

    /// The fused heads and their policy.
    pub fn heads(&self) -> &DeepHeads {
        &self.heads
    }

    /// Whether the policy sends this fast answer deep.
    pub fn wants(&self, fast_probabilities: &[f32], chosen: &[usize]) -> bool {
        self.heads.wants_deep(fast_probabilities, chosen)
    }

    /// The fused heads' probabilities for `text`, or `None` when the tier is busy or failed.
    pub async fn answer(&self, text: &str, fast_probabilities: &[f32]) -> Option<Vec<f32>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text: text.to_string(),
            fast_probabilities: fast_probabilities.to_vec(),
            reply,
        };
        let outcome = match self.queue.try_send(job) {
            Ok(()) => answer.await.ok().flatten(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        };
        let counter = if outcome.is_some() {
            &self.answered
        } else {
            &self.degraded
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// Comments answered deep and comments degraded since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.degraded.load(Ordering::Relaxed),
        )
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, encoder: &Encoder, heads: &DeepHeads) {
    let mut scratch = DeepScratch::default();
    loop {
        // One worker waits on the queue at a time; the lock is released before the encoder runs.
        let job = match receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv()
        {
            Ok(job) => job,
            Err(_) => return,
        };
        let answer = match encoder.embed(&[job.text.as_str()]) {
            Ok(mut embeddings) => {
                let mut out = Vec::new();
                heads.score(
                    &job.fast_probabilities,
                    &embeddings.remove(0),
                    &mut scratch,
                    &mut out,
                );
                Some(out)
            }
            Err(e) => {
                tracing::warn!(error = %e, "deep tier failed on a comment; answering with the fast model");
                None
            }
        };
        // The caller may have gone (client disconnected): nothing to do then.
        let _ = job.reply.send(answer);
    }
}
