//! The prediction log writer: request handlers hand classified comments to a bounded channel and return at once.
//! Two threads do the rest, as a pipeline: the first masks each comment's text and encodes its heads
//! ([`PreparedPrediction`]), the second writes what the first prepared, one transaction for everything waiting when
//! it wakes (up to [`MAX_BATCH`] rows). Masking is about a third of a row's cost, so on two cores the pipeline
//! writes more rows a second than one thread would. When the channel is full the row is dropped and counted, so
//! logging never slows a request.
//!
//! Prediction batches commit with synchronous=NORMAL: a committed batch is in the write-ahead log, which survives
//! the process being killed, and is synced to the disk by the next correction or checkpoint, so a power cut can
//! lose the last batches. Corrections commit with synchronous=FULL.
//!
//! Corrections go through both threads, after the rows queued before them: a comment classified before its
//! correction was sent is always committed first, so a fresh id is never answered "unknown". Reads (queue, stats)
//! use a third connection on the blocking pool; WAL lets them run while the writer writes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{
    Correction, LoggedPrediction, NewCorrection, PreparedPrediction, QueueFilter, QueuePage,
    Result, ReviewStats, Store, StoreError,
};

/// Rows waiting for the writer before new ones are dropped. About 2 KiB each: a few MiB at most.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Most rows in one transaction. Large, because a commit writes every page it touched and the review queue's
/// indexes (by uncertainty, by margin) receive rows in random places: the more rows a commit carries, the fewer
/// pages each row costs (8,192 rather than 1,024 took the writing thread's CPU per row down by about a fifth,
/// `benches/src/bin/store_log.rs`).
pub const MAX_BATCH: usize = 8192;
/// Rows the preparing thread hands on at once.
const PREPARED_CHUNK: usize = 1024;
/// Prepared chunks waiting for the writing thread before the preparing one waits (and the channel fills): enough
/// for one full transaction.
const PREPARED_CHUNKS: usize = MAX_BATCH / PREPARED_CHUNK;

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

/// What the preparing thread hands the writing thread, in the order the commands came.
enum Prepared {
    Rows(Vec<PreparedPrediction>),
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
    /// Opens the database at `path` (creating and migrating it) and starts the preparing and writing threads.
    pub fn open(path: &Path) -> Result<PredictionLog> {
        let writer = Store::open(path)?;
        let reader = Arc::new(Store::open(path)?);
        describe_metrics();
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (prepared_sender, prepared_receiver) = std::sync::mpsc::sync_channel(PREPARED_CHUNKS);
        let counts = Arc::new(LogCounts::default());
        let spawn_error = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let writer_counts = counts.clone();
        std::thread::Builder::new()
            .name("pqrs-log-write".into())
            .spawn(move || write_until_closed(&writer, &prepared_receiver, &writer_counts))
            .map_err(spawn_error)?;
        let preparer_counts = counts.clone();
        std::thread::Builder::new()
            .name("pqrs-log-mask".into())
            .spawn(move || prepare_until_closed(receiver, &prepared_sender, &preparer_counts))
            .map_err(spawn_error)?;
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

/// The preparing thread: blocks for a command, takes everything else already waiting, masks and encodes the rows,
/// hands them on with the other commands in their order, repeats. Returns when the channel closes or on `Close`.
fn prepare_until_closed(
    mut receiver: mpsc::Receiver<Command>,
    writer: &SyncSender<Prepared>,
    counts: &LogCounts,
) {
    let mut batch: Vec<PreparedPrediction> = Vec::with_capacity(PREPARED_CHUNK);
    // A send fails only when the writing thread is gone (it panicked); then nothing more can be written.
    let hand_on = |batch: &mut Vec<PreparedPrediction>| -> bool {
        batch.is_empty()
            || writer
                .send(Prepared::Rows(std::mem::replace(
                    batch,
                    Vec::with_capacity(PREPARED_CHUNK),
                )))
                .is_ok()
    };
    while let Some(first) = receiver.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            let handed = match command {
                Command::Row(row) => {
                    prepare(&row, &mut batch, counts);
                    batch.len() < PREPARED_CHUNK || hand_on(&mut batch)
                }
                Command::Flush(done) => {
                    hand_on(&mut batch) && writer.send(Prepared::Flush(done)).is_ok()
                }
                Command::Correct(correction, done) => {
                    hand_on(&mut batch) && writer.send(Prepared::Correct(correction, done)).is_ok()
                }
                Command::Close(done) => {
                    receiver.close();
                    // Rows that raced the close are still written; then the writing thread closes the connection.
                    while let Ok(command) = receiver.try_recv() {
                        if let Command::Row(row) = command {
                            prepare(&row, &mut batch, counts);
                        }
                    }
                    hand_on(&mut batch);
                    let _ = writer.send(Prepared::Close(done));
                    return;
                }
            };
            if !handed {
                tracing::error!("the prediction log's writing thread has stopped");
                return;
            }
            next = receiver.try_recv().ok();
        }
        if !hand_on(&mut batch) {
            tracing::error!("the prediction log's writing thread has stopped");
            return;
        }
    }
    hand_on(&mut batch);
}

fn prepare(row: &LoggedPrediction, batch: &mut Vec<PreparedPrediction>, counts: &LogCounts) {
    match PreparedPrediction::new(row) {
        Ok(prepared) => batch.push(prepared),
        Err(e) => {
            counts.failed.fetch_add(1, Ordering::SeqCst);
            metrics::counter!(FAILED).increment(1);
            tracing::error!("a prediction could not be prepared for the log: {e}");
        }
    }
}

/// The writing thread: blocks for prepared work, joins every batch already waiting (up to [`MAX_BATCH`] rows)
/// into one transaction, commits it before any correction or flush that followed it, repeats.
fn write_until_closed(store: &Store, receiver: &Receiver<Prepared>, counts: &LogCounts) {
    let mut batch: Vec<PreparedPrediction> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(work) = next.take() {
            match work {
                Prepared::Rows(rows) => {
                    if batch.len() + rows.len() > MAX_BATCH {
                        commit(store, &mut batch, counts);
                    }
                    batch.extend(rows);
                }
                Prepared::Flush(done) => {
                    commit(store, &mut batch, counts);
                    let _ = done.send(());
                }
                Prepared::Correct(correction, done) => {
                    commit(store, &mut batch, counts);
                    let _ = done.send(store.add_correction(&correction));
                }
                Prepared::Close(done) => {
                    commit(store, &mut batch, counts);
                    let _ = done.send(());
                    // Returning drops the connection, which checkpoints the write-ahead log into the database file.
                    return;
                }
            }
            next = receiver.try_recv().ok();
        }
        commit(store, &mut batch, counts);
    }
    commit(store, &mut batch, counts);
}

fn commit(store: &Store, batch: &mut Vec<PreparedPrediction>, counts: &LogCounts) {
    if batch.is_empty() {
        return;
    }
    let rows = batch.len() as u64;
    let started = Instant::now();
    match store.insert_prepared(batch) {
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
