//! The SQLite schema of the QA store and its migrations. The version lives in the one-row `schema_version` table;
//! each migration runs once, in order, in its own transaction, so a database written by an older pqrs is brought
//! up to date on open and one written by a newer pqrs is refused rather than misread.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

/// Migration `i` brings the schema from version `i` to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1: predictions with one row per head, and the append-only corrections.
    "
    CREATE TABLE predictions (
        id           TEXT PRIMARY KEY,
        received_at  TEXT NOT NULL,          -- RFC 3339 as received; its first 10 characters are the local date
        logged_at    TEXT NOT NULL,          -- RFC 3339, Colombia time, when the row was committed
        channel      TEXT,
        client_type  TEXT,
        text         TEXT NOT NULL,          -- masked (models::routing::mask)
        model        TEXT NOT NULL,
        uncertainty  REAL NOT NULL,          -- smallest margin p1 - p2 over the heads; lower is more uncertain
        needs_review INTEGER NOT NULL,
        area         TEXT,                   -- the route's area, else the label of a head named `area`
        route        TEXT,                   -- JSON {area, delegate_queue, due_at, priority, escalate, human_review}
        n_heads      INTEGER NOT NULL
    );
    CREATE INDEX predictions_by_uncertainty ON predictions (uncertainty, id);
    CREATE INDEX predictions_by_received_at ON predictions (received_at);
    CREATE INDEX predictions_by_area ON predictions (area, uncertainty);

    CREATE TABLE prediction_heads (
        id           TEXT NOT NULL REFERENCES predictions (id),
        head         TEXT NOT NULL,
        position     INTEGER NOT NULL,       -- the head's place in the model
        label        TEXT NOT NULL,
        confidence   REAL NOT NULL,
        margin       REAL NOT NULL,
        needs_review INTEGER NOT NULL,
        top_k        TEXT NOT NULL,          -- JSON [{label, probability}]
        explanation  TEXT NOT NULL,          -- JSON [{ngram, weight}]
        PRIMARY KEY (id, head)
    ) WITHOUT ROWID;
    CREATE INDEX prediction_heads_by_label ON prediction_heads (head, label);
    CREATE INDEX prediction_heads_by_margin ON prediction_heads (head, margin);

    CREATE TABLE corrections (
        feedback_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        prediction_id   TEXT NOT NULL REFERENCES predictions (id),
        head            TEXT NOT NULL,
        predicted_label TEXT NOT NULL,
        correct_label   TEXT NOT NULL,
        agrees          INTEGER NOT NULL,
        reviewer        TEXT NOT NULL,
        note            TEXT,
        created_at      TEXT NOT NULL        -- RFC 3339, Colombia time
    );
    CREATE INDEX corrections_by_prediction ON corrections (prediction_id, head);
    CREATE INDEX corrections_by_created_at ON corrections (created_at);
    -- Every correction is kept with who and when: the table refuses updates and deletes.
    CREATE TRIGGER corrections_are_never_updated BEFORE UPDATE ON corrections
        BEGIN SELECT RAISE(ABORT, 'corrections are append-only'); END;
    CREATE TRIGGER corrections_are_never_deleted BEFORE DELETE ON corrections
        BEGIN SELECT RAISE(ABORT, 'corrections are append-only'); END;
    ",
];

/// The schema version this pqrs writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets the connection up (WAL, synchronous=FULL, foreign keys, busy timeout) and migrates the schema.
pub(crate) fn prepare(connection: &mut Connection) -> Result<(), StoreError> {
    // WAL lets the review endpoints read while the log writer writes; FULL syncs the WAL on every commit, so a
    // commit that returned survives a crash or a power cut, not only a killed process. The prediction log's
    // batches alone switch to NORMAL for their commit (`Store::insert_prepared`).
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal(mode));
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: Option<i64> = transaction
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?;
    let found = match found {
        Some(version) => version,
        None => {
            transaction.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
            0
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        transaction.execute_batch(migration)?;
        transaction.execute("UPDATE schema_version SET version = ?1", [index as i64 + 1])?;
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_every_migration_once_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.sqlite3");
        let mut connection = Connection::open(&path).unwrap();
        prepare(&mut connection).unwrap();
        // Preparing again is a no-op: the migrations do not run twice.
        prepare(&mut connection).unwrap();
        let version: i64 = connection
            .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");

        connection
            .execute(
                "UPDATE schema_version SET version = ?1",
                [SCHEMA_VERSION + 1],
            )
            .unwrap();
        match prepare(&mut connection) {
            Err(StoreError::SchemaTooNew { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
