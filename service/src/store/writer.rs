//! The prediction log writer: request handlers hand classified comments to a bounded channel and return at once;
//! one writer thread commits them in batches (everything waiting when it wakes, up to [`MAX_BATCH`] rows per
//! transaction). When the channel is full the row is dropped and counted, so logging never slows a request.
//!
//! Corrections go through the same thread, after the rows queued before them: a comment classified before its
//! correction was sent is always committed first, so a fresh id is never answered "unknown". Reads (queue, stats)
//! use a second connection on the blocking pool; WAL lets them run while the writer writes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{
    Correction, LoggedPrediction, NewCorrection, QueueFilter, QueuePage, Result, ReviewStats,
    Store, StoreError,
};

/// Rows waiting for the writer before new ones are dropped. About 2 KiB each: a few MiB at most.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Most rows in one transaction.
pub const MAX_BATCH: usize = 1024;

const COMMITTED: &str = "pqrs_prediction_log_committed_total";
const DROPPED: &str = "pqrs_prediction_log_dropped_total";
const FAILED: &str = "pqrs_prediction_log_failed_total";
const BATCHES: &str = "pqrs_prediction_log_batches_total";
const CORRECTIONS: &str = "pqrs_feedback_total";

enum Command {
    Row(Box<LoggedPrediction>),
    Flush(oneshot::Sender<()>),
    Correct(NewCorrection, oneshot::Sender<Result<Correction>>),
    Close(oneshot::Sender<()>),
}

/// Counts of the log since the server started.
#[derive(Debug, Default)]
pub struct LogCounts {
    committed: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl LogCounts {
    /// Rows committed to the database.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Rows dropped because the channel was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Rows lost because their transaction failed (logged as errors).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }
}

/// The service's handle on the QA store: the writer's channel, a read connection and the counts.
#[derive(Debug)]
pub struct PredictionLog {
    sender: mpsc::Sender<Command>,
    reader: Arc<Store>,
    counts: Arc<LogCounts>,
    id_prefix: String,
    next_id: AtomicU64,
}

impl PredictionLog {
    /// Opens the database at `path` (creating and migrating it) and starts the writer thread.
    pub fn open(path: &Path) -> Result<PredictionLog> {
        let writer = Store::open(path)?;
        let reader = Arc::new(Store::open(path)?);
        describe_metrics();
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let counts = Arc::new(LogCounts::default());
        let thread_counts = counts.clone();
        std::thread::Builder::new()
            .name("pqrs-prediction-log".into())
            .spawn(move || write_until_closed(writer, receiver, &thread_counts))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        // Generated ids are this process's random prefix and a counter: unique across restarts without a
        // round trip to the database.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        Ok(PredictionLog {
            sender,
            reader,
            counts,
            id_prefix: format!("srv-{:012x}", hasher.finish() & 0xffff_ffff_ffff),
            next_id: AtomicU64::new(1),
        })
    }

    /// A new comment id for a request that sent none.
    pub fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
    }

    /// Queues a row for the writer without waiting; when the channel is full it is dropped and counted.
    pub fn record(&self, row: LoggedPrediction) {
        if self.sender.try_send(Command::Row(Box::new(row))).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::SeqCst);
            metrics::counter!(DROPPED).increment(1);
        }
    }

    /// The log's counts.
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// Waits until every row queued before this call is committed (or failed).
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Flush(done)).await?;
        wait.await.map_err(|_| StoreError::WriterStopped)
    }

    /// Stores a correction after every row queued before it; returns once it is committed.
    pub async fn add_correction(&self, correction: NewCorrection) -> Result<Correction> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Correct(correction, done)).await?;
        let stored = wait.await.map_err(|_| StoreError::WriterStopped)??;
        metrics::counter!(CORRECTIONS, "head" => stored.head.clone(), "agrees" => stored.agrees.to_string())
            .increment(1);
        Ok(stored)
    }

    /// A page of the review queue, including every row queued before the call.
    pub async fn queue(&self, filter: QueueFilter) -> Result<QueuePage> {
        self.flush().await?;
        self.read(move |store| store.queue(&filter)).await
    }

    /// The review figures, including every row queued before the call.
    pub async fn stats(&self) -> Result<ReviewStats> {
        self.flush().await?;
        self.read(|store| store.stats()).await
    }

    /// Commits what is queued and stops the writer; rows recorded afterwards are dropped and counted.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Command::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.sender
            .send(command)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || query(&reader))
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        COMMITTED,
        "Classified comments committed to the prediction log."
    );
    metrics::describe_counter!(
        DROPPED,
        "Classified comments not logged because the log writer's channel was full."
    );
    metrics::describe_counter!(
        FAILED,
        "Classified comments not logged because their transaction failed."
    );
    metrics::describe_counter!(
        BATCHES,
        "Transactions committed by the prediction log writer."
    );
    metrics::describe_counter!(CORRECTIONS, "Corrections stored, by head and agreement.");
}

/// The writer thread: blocks for a command, takes everything else already waiting, commits, repeats.
fn write_until_closed(store: Store, mut receiver: mpsc::Receiver<Command>, counts: &LogCounts) {
    let mut batch: Vec<LoggedPrediction> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Row(row) => {
                    batch.push(*row);
                    if batch.len() >= MAX_BATCH {
                        commit(&store, &mut batch, counts);
                    }
                }
                Command::Flush(done) => {
                    commit(&store, &mut batch, counts);
                    let _ = done.send(());
                }
                Command::Correct(correction, done) => {
                    commit(&store, &mut batch, counts);
                    let _ = done.send(store.add_correction(&correction));
                }
                Command::Close(done) => {
                    commit(&store, &mut batch, counts);
                    receiver.close();
                    // Rows that raced the close are still committed; then the connection closes, which
                    // checkpoints the write-ahead log into the database file.
                    while let Ok(command) = receiver.try_recv() {
                        if let Command::Row(row) = command {
                            batch.push(*row);
                        }
                    }
                    commit(&store, &mut batch, counts);
                    let _ = done.send(());
                    return;
                }
            }
            next = receiver.try_recv().ok();
        }
        commit(&store, &mut batch, counts);
    }
    commit(&store, &mut batch, counts);
}

fn commit(store: &Store, batch: &mut Vec<LoggedPrediction>, counts: &LogCounts) {
    if batch.is_empty() {
        return;
    }
    let rows = batch.len() as u64;
    let started = Instant::now();
    match store.insert_predictions(batch) {
        Ok(()) => {
            counts.committed.fetch_add(rows, Ordering::SeqCst);
            metrics::counter!(COMMITTED).increment(rows);
            metrics::counter!(BATCHES).increment(1);
            tracing::trace!(
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "prediction log batch committed"
            );
        }
        Err(e) => {
            counts.failed.fetch_add(rows, Ordering::SeqCst);
            metrics::counter!(FAILED).increment(rows);
            tracing::error!(rows, "the prediction log could not commit a batch: {e}");
        }
    }
    batch.clear();
}
