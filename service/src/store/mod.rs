//! The QA store: an embedded SQLite database (WAL) holding the prediction log and the reviewers' corrections.
//! Corrections commit with synchronous=FULL (on disk when the call returns, through a power cut); the prediction
//! log's batches commit with synchronous=NORMAL (in the write-ahead log when the call returns, which survives the
//! process being killed, and synced at the next correction or checkpoint, so a power cut can lose the last
//! batches). [`Store`] is one connection with the queries the review endpoints and the CLI need;
//! [`PredictionLog`] (in `writer`) is how the HTTP service writes to it, off the request path.
//!
//! Comment text is masked (`models::routing::mask`) before it is written, and so are reviewers' notes: nothing in
//! the database carries the personal data the masker finds. Corrections are append-only: the schema refuses updates
//! and deletes, and the latest correction of a prediction's head is the one that counts.

mod schema;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{FixedOffset, NaiveDate, SecondsFormat, Utc};
use models::HeadPrediction;
use models::routing::mask;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};

pub use schema::SCHEMA_VERSION;
pub use writer::{LogCounts, PredictionLog};

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database directory or file could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A database to read does not exist.
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// The file system does not support SQLite's write-ahead log.
    #[error("the database cannot use write-ahead logging (journal mode stays {0})")]
    NoWal(String),
    /// The database was written by a newer pqrs.
    #[error(
        "the database has schema version {found}, this pqrs knows up to {known}: use a newer pqrs"
    )]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// No prediction has this id.
    #[error("no logged prediction has id {0:?}")]
    UnknownId(String),
    /// The prediction has no answer for this head.
    #[error("prediction {id:?} has no head {head:?}")]
    UnknownHead {
        /// Prediction id.
        id: String,
        /// Head asked for.
        head: String,
    },
    /// A stored JSON column does not parse (the file was edited by hand or damaged).
    #[error("stored JSON is damaged: {0}")]
    Json(#[from] serde_json::Error),
    /// The log writer has stopped (the server is shutting down).
    #[error("the prediction log writer has stopped")]
    WriterStopped,
}

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Colombia's offset, in which the store writes its own times.
fn colombia_now() -> String {
    let offset = FixedOffset::west_opt(5 * 3600).expect("five hours is a valid offset");
    Utc::now()
        .with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The route facts kept with a prediction (the full route can be recomputed from the text and the taxonomy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRoute {
    /// Area that must answer.
    pub area: Option<String>,
    /// Delegates' queue of the area.
    pub delegate_queue: Option<String>,
    /// End of the legal term, RFC 3339.
    pub due_at: String,
    /// `normal`, `alta` or `urgente`.
    pub priority: String,
    /// A rule asked for escalation.
    pub escalate: bool,
    /// A person must check the classification.
    pub human_review: bool,
}

/// One classified comment, as handed to the log. The text is the raw comment: it is masked when written.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedPrediction {
    /// The comment's id (the client's, or one the server generated).
    pub id: String,
    /// When it was received, RFC 3339.
    pub received_at: String,
    /// Intake channel.
    pub channel: Option<String>,
    /// Client type.
    pub client_type: Option<String>,
    /// The raw text; only its masked form is stored.
    pub text: String,
    /// Id of the model that answered.
    pub model: String,
    /// Every head's answer, in model order.
    pub heads: Vec<HeadPrediction>,
    /// The route, when the model routes.
    pub route: Option<LoggedRoute>,
}

/// A reviewer's correction, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCorrection {
    /// Id of the logged prediction.
    pub id: String,
    /// Head corrected.
    pub head: String,
    /// The label the reviewer says is right (already checked against the head's labels).
    pub correct_label: String,
    /// Who reviewed.
    pub reviewer: String,
    /// Why, if they said; masked when stored.
    pub note: Option<String>,
}

/// A stored correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correction {
    /// Its number, increasing in the order corrections were made.
    pub feedback_id: i64,
    /// Id of the prediction corrected.
    pub id: String,
    /// Head corrected.
    pub head: String,
    /// The head's label in the prediction at the time of the correction.
    pub predicted_label: String,
    /// The label the reviewer gave.
    pub correct_label: String,
    /// `correct_label == predicted_label`: the reviewer confirmed the prediction.
    pub agrees: bool,
    /// Who reviewed.
    pub reviewer: String,
    /// The reviewer's note, masked.
    pub note: Option<String>,
    /// When, RFC 3339 in Colombia time.
    pub created_at: String,
}

/// One corrected prediction as labeled history: the latest correct label of each corrected head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackRow {
    /// Prediction id.
    pub id: String,
    /// When the comment was received, RFC 3339.
    pub received_at: String,
    /// Intake channel.
    pub channel: Option<String>,
    /// The masked text.
    pub text: String,
    /// Head → latest correct label; heads without a correction are absent.
    pub labels: BTreeMap<String, String>,
}

/// Which predictions the review queue shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueFilter {
    /// Only this head: ordered by its margin, and left out once it has a correction.
    pub head: Option<String>,
    /// Only predictions with this label (on `head` when given, else on any head).
    pub label: Option<String>,
    /// Only this area.
    pub area: Option<String>,
    /// Received on or after this date (the date written in `received_at`).
    pub from: Option<NaiveDate>,
    /// Received on or before this date.
    pub to: Option<NaiveDate>,
    /// Items in the page.
    pub limit: u32,
    /// Items skipped.
    pub offset: u64,
}

/// A head's answer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHead {
    /// Head name.
    pub head: String,
    /// Chosen label.
    pub label: String,
    /// Its calibrated probability.
    pub confidence: f64,
    /// Probability of the chosen label minus the next one's.
    pub margin: f64,
    /// Top labels with their probabilities, chosen first.
    pub top_k: Vec<ScoredLabel>,
    /// The head asked for review.
    pub needs_review: bool,
    /// The n-grams that supported the label, strongest first.
    pub explanation: Vec<Evidence>,
}

/// A label and its probability, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredLabel {
    /// Label id.
    pub label: String,
    /// Calibrated probability.
    pub probability: f64,
}

/// An n-gram and its weight, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The n-gram after normalisation.
    pub ngram: String,
    /// Its contribution to the label's logit.
    pub weight: f64,
}

/// One prediction waiting for review.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// Prediction id.
    pub id: String,
    /// When it was received.
    pub received_at: String,
    /// Intake channel.
    pub channel: Option<String>,
    /// Masked text.
    pub text: String,
    /// Model that answered.
    pub model: String,
    /// What the queue is ordered by: the smallest margin over the heads (or the filtered head's margin).
    pub uncertainty: f64,
    /// Every head's answer, in model order.
    pub heads: Vec<StoredHead>,
    /// The route facts, as stored.
    pub route: Option<serde_json::Value>,
    /// Corrections already made, oldest first.
    pub corrections: Vec<Correction>,
}

/// A page of the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePage {
    /// The items, most uncertain first.
    pub items: Vec<QueueItem>,
    /// Items matching the filter, all pages.
    pub total: u64,
}

/// Reviews of one head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadAgreement {
    /// Head name.
    pub head: String,
    /// Predictions with a correction of this head (the latest correction counts).
    pub reviewed: u64,
    /// Of those, how many confirmed the predicted label.
    pub agreed: u64,
}

/// Figures for the review dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewStats {
    /// `(YYYY-MM-DD, corrections made that day)`, oldest first, Colombia time.
    pub corrections_per_day: Vec<(String, u64)>,
    /// Per head, by name.
    pub agreement: Vec<HeadAgreement>,
    /// Predictions in the log.
    pub predictions_logged: u64,
    /// Predictions with at least one head without a correction.
    pub pending_review: u64,
}

/// Margin of one head: its probability minus the runner-up's. When the runner-up is unknown (top_k of 1), the
/// most it can be is `1 - p1`, which gives the smallest margin consistent with the answer.
fn margin(head: &HeadPrediction) -> f64 {
    let first = f64::from(head.confidence);
    let second = match head.top_k.get(1) {
        Some(scored) => f64::from(scored.probability),
        None => 1.0 - first,
    };
    first - second
}

/// A prediction not yet corrected on every head.
const PENDING_ON_ANY_HEAD: &str =
    "(SELECT COUNT(DISTINCT c.head) FROM corrections c WHERE c.prediction_id = p.id) < p.n_heads";

/// The SQLite database of predictions and corrections; one connection, safe to share between threads.
#[derive(Debug)]
pub struct Store {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it and its directory when needed) the database at `path`, switches it to WAL with
    /// synchronous=FULL (only the prediction log's batches relax it, [`Store::insert_prepared`]) and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut connection = Connection::open(path)?;
        schema::prepare(&mut connection)?;
        // A transaction whose dirty pages outgrow the page cache spills them into the write-ahead log before the
        // commit and writes them again at the commit; a large batch of the prediction log touches thousands of
        // pages. The cache grows into this bound only when a transaction needs it.
        connection.pragma_update(None, "cache_size", LOG_CACHE_KIB)?;
        Ok(Store {
            connection: Mutex::new(connection),
            path: path.to_path_buf(),
        })
    }

    /// Opens a database that must already exist (for reading it: an export never creates an empty one).
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Store::open(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back an open transaction when
        // the next one begins.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes predictions in one transaction, masking their text. A prediction whose id is already logged is
    /// replaced (the latest classification of a comment is the one to review); its corrections stay.
    pub fn insert_predictions(&self, rows: &[LoggedPrediction]) -> Result<()> {
        let prepared = rows
            .iter()
            .map(PreparedPrediction::new)
            .collect::<Result<Vec<_>>>()?;
        self.insert_prepared(&prepared)
    }

    /// Writes predictions already masked and encoded, in one transaction, with the prediction log's durability:
    /// the commit reaches the write-ahead log (it survives the process being killed) but is not synced; the next
    /// correction or checkpoint syncs it. A prediction whose id is already logged is replaced; its corrections stay.
    pub fn insert_prepared(&self, rows: &[PreparedPrediction]) -> Result<()> {
        let logged_at = colombia_now();
        let mut connection = self.connection();
        set_durability(&connection, Durability::Log)?;
        let written = write_prepared(&mut connection, rows, &logged_at);
        // Whatever happened, the connection goes back to syncing every commit, so that nothing else written
        // through it gets the log's weaker durability.
        set_durability(&connection, Durability::Synced)?;
        written
    }

    /// Stores a correction durably (the call returns after the commit). The prediction must be logged and have
    /// the head; the predicted label is read from it.
    pub fn add_correction(&self, new: &NewCorrection) -> Result<Correction> {
        let mut connection = self.connection();
        set_durability(&connection, Durability::Synced)?;
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let predicted: Option<String> = transaction
            .query_row(
                "SELECT label FROM prediction_heads WHERE id = ?1 AND head = ?2",
                params![new.id, new.head],
                |row| row.get(0),
            )
            .optional()?;
        let Some(predicted_label) = predicted else {
            let logged = transaction
                .query_row("SELECT 1 FROM predictions WHERE id = ?1", [&new.id], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            return Err(if logged {
                StoreError::UnknownHead {
                    id: new.id.clone(),
                    head: new.head.clone(),
                }
            } else {
                StoreError::UnknownId(new.id.clone())
            });
        };
        let created_at = colombia_now();
        let note = new.note.as_deref().map(|n| mask(n).text);
        let agrees = predicted_label == new.correct_label;
        transaction.execute(
            "INSERT INTO corrections (prediction_id, head, predicted_label, correct_label, agrees, reviewer, note,
                                      created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                new.id,
                new.head,
                predicted_label,
                new.correct_label,
                agrees,
                new.reviewer,
                note,
                created_at
            ],
        )?;
        let feedback_id = transaction.last_insert_rowid();
        transaction.commit()?;
        Ok(Correction {
            feedback_id,
            id: new.id.clone(),
            head: new.head.clone(),
            predicted_label,
            correct_label: new.correct_label.clone(),
            agrees,
            reviewer: new.reviewer.clone(),
            note,
            created_at,
        })
    }

    /// Every correction, in the order they were made.
    pub fn corrections(&self) -> Result<Vec<Correction>> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!(
            "SELECT {CORRECTION_COLUMNS} FROM corrections ORDER BY feedback_id"
        ))?;
        let rows = statement.query_map([], correction_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Predictions in the log.
    pub fn predictions_logged(&self) -> Result<u64> {
        let connection = self.connection();
        Ok(connection.query_row("SELECT COUNT(*) FROM predictions", [], |row| row.get(0))?)
    }

    /// A page of predictions waiting for review, most uncertain first.
    pub fn queue(&self, filter: &QueueFilter) -> Result<QueuePage> {
        let mut join = String::new();
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        let score = match &filter.head {
            Some(head) => {
                join.push_str("JOIN prediction_heads h ON h.id = p.id AND h.head = ?");
                values.push(SqlValue::Text(head.clone()));
                conditions.push(
                    "NOT EXISTS (SELECT 1 FROM corrections c WHERE c.prediction_id = p.id AND c.head = h.head)"
                        .into(),
                );
                if let Some(label) = &filter.label {
                    conditions.push("h.label = ?".into());
                    values.push(SqlValue::Text(label.clone()));
                }
                "h.margin"
            }
            None => {
                conditions.push(PENDING_ON_ANY_HEAD.into());
                if let Some(label) = &filter.label {
                    conditions.push(
                        "EXISTS (SELECT 1 FROM prediction_heads l WHERE l.id = p.id AND l.label = ?)".into(),
                    );
                    values.push(SqlValue::Text(label.clone()));
                }
                "p.uncertainty"
            }
        };
        if let Some(area) = &filter.area {
            conditions.push("p.area = ?".into());
            values.push(SqlValue::Text(area.clone()));
        }
        if let Some(from) = filter.from {
            conditions.push("p.received_at >= ?".into());
            values.push(SqlValue::Text(from.format("%Y-%m-%d").to_string()));
        }
        if let Some(to) = filter.to {
            // `received_at` starts with its date, so everything before the next day's date is on or before `to`.
            if let Some(next) = to.succ_opt() {
                conditions.push("p.received_at < ?".into());
                values.push(SqlValue::Text(next.format("%Y-%m-%d").to_string()));
            }
        }
        let from_where = format!(
            "FROM predictions p {join} WHERE {}",
            conditions.join(" AND ")
        );
        let connection = self.connection();
        let total: u64 = connection.query_row(
            &format!("SELECT COUNT(*) {from_where}"),
            params_from_iter(values.iter()),
            |row| row.get(0),
        )?;
        let mut page_values = values;
        page_values.push(SqlValue::Integer(i64::from(filter.limit)));
        page_values.push(SqlValue::Integer(
            i64::try_from(filter.offset).unwrap_or(i64::MAX),
        ));
        let mut statement = connection.prepare(&format!(
            "SELECT p.id, p.received_at, p.channel, p.text, p.model, {score}, p.route {from_where}
             ORDER BY {score}, p.id LIMIT ? OFFSET ?"
        ))?;
        let rows = statement.query_map(params_from_iter(page_values.iter()), |row| {
            Ok((
                QueueItem {
                    id: row.get(0)?,
                    received_at: row.get(1)?,
                    channel: row.get(2)?,
                    text: row.get(3)?,
                    model: row.get(4)?,
                    uncertainty: row.get(5)?,
                    heads: Vec::new(),
                    route: None,
                    corrections: Vec::new(),
                },
                row.get::<_, Option<String>>(6)?,
            ))
        })?;
        let rows: Vec<(QueueItem, Option<String>)> = rows.collect::<rusqlite::Result<_>>()?;
        let mut heads = connection.prepare_cached(
            "SELECT head, label, confidence, margin, top_k, needs_review, explanation FROM prediction_heads
             WHERE id = ?1 ORDER BY position",
        )?;
        let mut corrections = connection.prepare_cached(&format!(
            "SELECT {CORRECTION_COLUMNS} FROM corrections WHERE prediction_id = ?1 ORDER BY feedback_id"
        ))?;
        let mut items = Vec::with_capacity(rows.len());
        for (mut item, route) in rows {
            item.route = route.as_deref().map(serde_json::from_str).transpose()?;
            let stored = heads.query_map([&item.id], |row| {
                Ok((
                    StoredHead {
                        head: row.get(0)?,
                        label: row.get(1)?,
                        confidence: row.get(2)?,
                        margin: row.get(3)?,
                        top_k: Vec::new(),
                        needs_review: row.get(5)?,
                        explanation: Vec::new(),
                    },
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(6)?,
                ))
            })?;
            for head in stored {
                let (mut head, top_k, explanation) = head?;
                head.top_k = serde_json::from_str(&top_k)?;
                head.explanation = serde_json::from_str(&explanation)?;
                item.heads.push(head);
            }
            item.corrections = corrections
                .query_map([&item.id], correction_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            items.push(item);
        }
        Ok(QueuePage { items, total })
    }

    /// Corrections per day, agreement per head (latest correction of each prediction's head), predictions logged
    /// and predictions still pending review.
    pub fn stats(&self) -> Result<ReviewStats> {
        let connection = self.connection();
        let corrections_per_day = connection
            .prepare(
                "SELECT substr(created_at, 1, 10) AS day, COUNT(*) FROM corrections GROUP BY day ORDER BY day",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let agreement = connection
            .prepare(
                "SELECT c.head, COUNT(*), SUM(c.agrees) FROM corrections c
                 WHERE c.feedback_id = (SELECT MAX(l.feedback_id) FROM corrections l
                                        WHERE l.prediction_id = c.prediction_id AND l.head = c.head)
                 GROUP BY c.head ORDER BY c.head",
            )?
            .query_map([], |row| {
                Ok(HeadAgreement {
                    head: row.get(0)?,
                    reviewed: row.get(1)?,
                    agreed: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let predictions_logged =
            connection.query_row("SELECT COUNT(*) FROM predictions", [], |row| row.get(0))?;
        let pending_review = connection.query_row(
            &format!("SELECT COUNT(*) FROM predictions p WHERE {PENDING_ON_ANY_HEAD}"),
            [],
            |row| row.get(0),
        )?;
        Ok(ReviewStats {
            corrections_per_day,
            agreement,
            predictions_logged,
            pending_review,
        })
    }

    /// Every corrected prediction with the latest correct label of each corrected head, oldest received first.
    pub fn feedback_rows(&self) -> Result<Vec<FeedbackRow>> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT p.id, p.received_at, p.channel, p.text, c.head, c.correct_label
             FROM corrections c JOIN predictions p ON p.id = c.prediction_id
             WHERE c.feedback_id = (SELECT MAX(l.feedback_id) FROM corrections l
                                    WHERE l.prediction_id = c.prediction_id AND l.head = c.head)
             ORDER BY p.received_at, p.id, c.head",
        )?;
        let mut rows: Vec<FeedbackRow> = Vec::new();
        let mut query = statement.query([])?;
        while let Some(row) = query.next()? {
            let id: String = row.get(0)?;
            if rows.last().is_none_or(|last| last.id != id) {
                rows.push(FeedbackRow {
                    id,
                    received_at: row.get(1)?,
                    channel: row.get(2)?,
                    text: row.get(3)?,
                    labels: BTreeMap::new(),
                });
            }
            let last = rows.last_mut().expect("a row was pushed for this id");
            last.labels.insert(row.get(4)?, row.get(5)?);
        }
        Ok(rows)
    }
}

/// Page cache of the store's connection, in KiB, as SQLite's `cache_size` takes it (negative: KiB rather than
/// pages): room for a batch of the prediction log.
const LOG_CACHE_KIB: i64 = -32 * 1024;

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// synchronous=FULL: the write-ahead log is synced at every commit, so a commit that returned survives a
    /// power cut. Corrections, and everything but the prediction log's batches.
    Synced,
    /// synchronous=NORMAL: a commit is written to the write-ahead log (the operating system holds it, so it
    /// survives the process being killed) and synced at the next synced commit or checkpoint; a power cut can
    /// lose the last batches. The prediction log's batches.
    Log,
}

fn set_durability(connection: &Connection, durability: Durability) -> Result<()> {
    let level = match durability {
        Durability::Synced => "FULL",
        Durability::Log => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", level)?;
    Ok(())
}

/// A head's top-k as written: f32 probabilities, so that the JSON carries their shortest exact form rather than
/// the seventeen digits of their f64 widening (the stored JSON is about a third smaller; it reads back as f64).
#[derive(Serialize)]
struct ScoredLabelOut<'a> {
    label: &'a str,
    probability: f32,
}

/// An explanation n-gram as written, f32 for the same reason.
#[derive(Serialize)]
struct EvidenceOut<'a> {
    ngram: &'a str,
    weight: f32,
}

/// A head's answer ready for its row.
#[derive(Debug, Clone, PartialEq)]
struct PreparedHead {
    head: String,
    label: String,
    confidence: f64,
    margin: f64,
    needs_review: bool,
    top_k: String,
    explanation: String,
}

/// A prediction masked and encoded for its rows: the work of logging that needs no database, so that it can be
/// done on another thread than the one that writes.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPrediction {
    id: String,
    received_at: String,
    channel: Option<String>,
    client_type: Option<String>,
    masked_text: String,
    model: String,
    uncertainty: f64,
    needs_review: bool,
    area: Option<String>,
    route: Option<String>,
    heads: Vec<PreparedHead>,
}

impl PreparedPrediction {
    /// Masks the text and encodes the heads and the route.
    pub fn new(row: &LoggedPrediction) -> Result<PreparedPrediction> {
        let margins: Vec<f64> = row.heads.iter().map(margin).collect();
        let uncertainty = margins.iter().copied().fold(f64::INFINITY, f64::min);
        let uncertainty = if uncertainty.is_finite() {
            uncertainty
        } else {
            1.0
        };
        let area = row.route.as_ref().and_then(|r| r.area.clone()).or_else(|| {
            row.heads
                .iter()
                .find(|h| h.head == "area")
                .map(|h| h.label.clone())
        });
        let route = row.route.as_ref().map(serde_json::to_string).transpose()?;
        let mut heads = Vec::with_capacity(row.heads.len());
        for (head, margin) in row.heads.iter().zip(margins) {
            let top_k: Vec<ScoredLabelOut<'_>> = head
                .top_k
                .iter()
                .map(|s| ScoredLabelOut {
                    label: &s.label,
                    probability: s.probability,
                })
                .collect();
            let explanation: Vec<EvidenceOut<'_>> = head
                .explanation
                .iter()
                .map(|e| EvidenceOut {
                    ngram: &e.ngram,
                    weight: e.weight,
                })
                .collect();
            heads.push(PreparedHead {
                head: head.head.clone(),
                label: head.label.clone(),
                confidence: f64::from(head.confidence),
                margin,
                needs_review: head.needs_review,
                top_k: serde_json::to_string(&top_k)?,
                explanation: serde_json::to_string(&explanation)?,
            });
        }
        Ok(PreparedPrediction {
            id: row.id.clone(),
            received_at: row.received_at.clone(),
            channel: row.channel.clone(),
            client_type: row.client_type.clone(),
            masked_text: mask(&row.text).text,
            model: row.model.clone(),
            uncertainty,
            needs_review: row.heads.iter().any(|h| h.needs_review),
            area,
            route,
            heads,
        })
    }
}

/// The SQL of [`Store::insert_prepared`], in one transaction.
fn write_prepared(
    connection: &mut Connection,
    rows: &[PreparedPrediction],
    logged_at: &str,
) -> Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO predictions (id, received_at, logged_at, channel, client_type, text, model, uncertainty,
                                      needs_review, area, route, n_heads)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO UPDATE SET
                 received_at = excluded.received_at, logged_at = excluded.logged_at,
                 channel = excluded.channel, client_type = excluded.client_type, text = excluded.text,
                 model = excluded.model, uncertainty = excluded.uncertainty,
                 needs_review = excluded.needs_review, area = excluded.area, route = excluded.route,
                 n_heads = excluded.n_heads",
        )?;
        let mut clear_heads =
            transaction.prepare_cached("DELETE FROM prediction_heads WHERE id = ?1")?;
        let mut insert_head = transaction.prepare_cached(
            "INSERT INTO prediction_heads (id, head, position, label, confidence, margin, needs_review, top_k,
                                           explanation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for row in rows {
            upsert.execute(params![
                row.id,
                row.received_at,
                logged_at,
                row.channel,
                row.client_type,
                row.masked_text,
                row.model,
                row.uncertainty,
                row.needs_review,
                row.area,
                row.route,
                row.heads.len() as i64,
            ])?;
            clear_heads.execute([&row.id])?;
            for (position, head) in row.heads.iter().enumerate() {
                insert_head.execute(params![
                    row.id,
                    head.head,
                    position as i64,
                    head.label,
                    head.confidence,
                    head.margin,
                    head.needs_review,
                    head.top_k,
                    head.explanation,
                ])?;
            }
        }
    }
    transaction.commit()?;
    Ok(())
}

const CORRECTION_COLUMNS: &str = "feedback_id, prediction_id, head, predicted_label, correct_label, agrees, reviewer, note, created_at";

fn correction_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Correction> {
    Ok(Correction {
        feedback_id: row.get(0)?,
        id: row.get(1)?,
        head: row.get(2)?,
        predicted_label: row.get(3)?,
        correct_label: row.get(4)?,
        agrees: row.get(5)?,
        reviewer: row.get(6)?,
        note: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// The corrections of the database at `db` as labeled history: one row per corrected prediction, with the latest
/// correct label of each corrected head. The database must exist.
pub fn export_feedback(db: &Path) -> Result<Vec<FeedbackRow>> {
    Store::open_existing(db)?.feedback_rows()
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::{Evidence as ModelEvidence, Scored};

    fn logged(id: &str) -> LoggedPrediction {
        LoggedPrediction {
            id: id.into(),
            received_at: "2026-03-02T09:30:00-05:00".into(),
            channel: Some("web".into()),
            client_type: None,
            text: "Me llamo Ana Pérez, cédula 1036123456, y no me pagan la cuota".into(),
            model: "m".into(),
            heads: vec![HeadPrediction {
                head: "type".into(),
                label: "queja".into(),
                confidence: 0.7,
                top_k: vec![
                    Scored {
                        label: "queja".into(),
                        probability: 0.7,
                    },
                    Scored {
                        label: "reclamo".into(),
                        probability: 0.2,
                    },
                ],
                needs_review: false,
                explanation: vec![ModelEvidence {
                    ngram: "no me pagan".into(),
                    weight: 1.25,
                }],
            }],
            route: None,
        }
    }

    fn synchronous(store: &Store) -> i64 {
        store
            .connection()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn log_batches_skip_the_sync_and_leave_the_connection_syncing_every_other_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("qa.sqlite3")).unwrap();
        assert_eq!(synchronous(&store), 2, "FULL after opening");
        store
            .insert_predictions(&[logged("a"), logged("b")])
            .unwrap();
        assert_eq!(synchronous(&store), 2, "FULL again after a log batch");

        // A batch that fails (a prediction naming the same head twice breaks the heads' primary key) also leaves the
        // connection syncing, and writes nothing.
        let mut twice = logged("c");
        twice.heads.push(twice.heads[0].clone());
        assert!(store.insert_predictions(&[twice]).is_err());
        assert_eq!(synchronous(&store), 2, "FULL again after a failed batch");
        assert_eq!(store.predictions_logged().unwrap(), 2);
    }

    #[test]
    fn prepared_rows_are_masked_and_keep_f32_values_in_their_shortest_form() {
        let prepared = PreparedPrediction::new(&logged("a")).unwrap();
        assert!(!prepared.masked_text.contains("1036123456"));
        assert_eq!(
            prepared.heads[0].top_k,
            r#"[{"label":"queja","probability":0.7},{"label":"reclamo","probability":0.2}]"#
        );
        assert_eq!(
            prepared.heads[0].explanation,
            r#"[{"ngram":"no me pagan","weight":1.25}]"#
        );
        // Read back as f64, the value is the f32's shortest form, which parses to the same f32.
        let top_k: Vec<ScoredLabel> = serde_json::from_str(&prepared.heads[0].top_k).unwrap();
        assert_eq!(top_k[0].probability as f32, 0.7_f32);
        assert!((prepared.uncertainty - 0.5).abs() < 1e-6);
    }
}
