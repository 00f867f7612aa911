//! Crash test of the QA store: the real `pqrs serve` on an ephemeral port with a temporary SQLite database,
//! classify requests and corrections sent concurrently, the process killed with SIGKILL in the middle of the
//! writes, then restarted on the same file. Every correction answered 201 must be there, every prediction the
//! server counted as committed before the kill must be there, and SQLite's integrity check must pass.
//!
//! The harness (binary, server, HTTP client) is the `tests` crate's library: the binary is found next to this
//! test's executable, else built; `PQRS_BIN` overrides.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tests::{IfMissing, Server, counter, eventually, pqrs_binary, serve_command};

const KEY: &str = "crash-key-0123456789";
const TEXTS: [&str; 4] = [
    "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta",
    "Llevo tres meses sin recibir la cuota monetaria, mi cédula es 1036123456",
    "Solicito información sobre el subsidio de vivienda y los requisitos para postularme",
    "Me cobraron dos veces la inscripción al curso y no me han devuelto el dinero",
];

/// A correction the server acknowledged with 201.
#[derive(Debug, Clone)]
struct Acknowledged {
    feedback_id: i64,
    id: String,
    correct_label: String,
}

/// `pqrs serve` with JSON logs and the QA store in `db`, the default model cached in `cache`.
fn start(cache: &Path, db: &Path, log: PathBuf) -> Server {
    let mut command = serve_command(&pqrs_binary(IfMissing::Build), cache, KEY);
    command.args(["--log-format", "json", "--db"]).arg(db);
    Server::start(command, log)
}

#[test]
fn a_killed_server_keeps_every_acknowledged_correction_and_committed_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let db = dir.path().join("qa.sqlite3");
    let server = start(&cache, &db, dir.path().join("first.log"));

    let stop = Arc::new(AtomicBool::new(false));
    let classified = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::<Acknowledged>::new()));
    let mut workers = Vec::new();
    // Classifying clients: single comments and batches of 8, every comment with its own id.
    for client in 0..3 {
        let (stop, classified) = (stop.clone(), classified.clone());
        let mut connection = server.connect();
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let outcome = if n % 2 == 0 {
                    let body = json!({"text": TEXTS[n % TEXTS.len()], "id": format!("k{client}-{n}")});
                    connection.json("POST", "/v1/classify", Some(&body), Some(KEY)).map(|(s, _)| (s, 1))
                } else {
                    let items: Vec<Value> = (0..8)
                        .map(|i| json!({"text": TEXTS[(n + i) % TEXTS.len()], "id": format!("k{client}-{n}-{i}")}))
                        .collect();
                    connection.json("POST", "/v1/classify/batch", Some(&json!({"items": items})), Some(KEY)).map(|(s, _)| (s, 8))
                };
                match outcome {
                    Ok((200, count)) => {
                        classified.fetch_add(count, Ordering::SeqCst);
                    }
                    Ok((status, _)) => panic!("classify answered {status}"),
                    // The server was killed.
                    Err(_) => break,
                }
                n += 1;
            }
        }));
    }
    // Reviewing clients: classify a comment without an id, then correct its type with the id the answer gave.
    for client in 0..2 {
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        let mut connection = server.connect();
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let Ok((200, answer)) =
                    connection.json("POST", "/v1/classify", Some(&json!({"text": TEXTS[(client + n) % TEXTS.len()]})), Some(KEY))
                else {
                    break;
                };
                let id = answer["id"].as_str().expect("a generated id").to_string();
                let correct_label = if n % 3 == 0 { "queja" } else { answer["heads"]["type"]["label"].as_str().unwrap() };
                let body = json!({"id": id, "head": "type", "correct_label": correct_label, "reviewer": format!("qa-{client}")});
                match connection.json("POST", "/v1/feedback", Some(&body), Some(KEY)) {
                    Ok((201, stored)) => acknowledged.lock().unwrap().push(Acknowledged {
                        feedback_id: stored["feedback_id"].as_i64().unwrap(),
                        id,
                        correct_label: correct_label.to_string(),
                    }),
                    Ok((status, body)) => panic!("feedback answered {status}: {body}"),
                    Err(_) => break,
                }
                n += 1;
            }
        }));
    }

    assert!(
        eventually(Duration::from_secs(120), || classified
            .load(Ordering::SeqCst)
            >= 1500
            && acknowledged.lock().unwrap().len() >= 30),
        "too few requests before the kill; log: {}",
        server.log()
    );
    // What the server says it has committed, read while the clients keep writing; then SIGKILL at once.
    let metrics = server
        .connect()
        .send_json("GET", "/metrics", None, Some(KEY))
        .unwrap();
    assert_eq!(metrics.status, 200);
    let committed_before_kill = counter(
        &String::from_utf8(metrics.body).unwrap(),
        "pqrs_prediction_log_committed_total",
    )
    .expect("the counter");
    let mut server = server;
    server.kill();
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("a client failed");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(committed_before_kill > 0 && !acknowledged.is_empty());
    drop(server);

    // Restarted on the same file: SQLite recovers the write-ahead log and the server serves it.
    let server = start(&cache, &db, dir.path().join("second.log"));
    let mut connection = server.connect();
    let (status, stats) = connection
        .json("GET", "/v1/review/stats", None, Some(KEY))
        .unwrap();
    assert_eq!(status, 200, "{stats}");
    let logged = stats["predictions_logged"].as_u64().unwrap();
    assert!(
        logged >= committed_before_kill,
        "{logged} logged, {committed_before_kill} committed before the kill"
    );

    eprintln!(
        "{} comments classified, {committed_before_kill} committed before the kill, {logged} logged after the \
         restart, {} corrections acknowledged",
        classified.load(Ordering::SeqCst),
        acknowledged.len()
    );
    let check = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let stored: HashSet<(i64, String, String)> = check
        .prepare(
            "SELECT feedback_id, prediction_id, correct_label FROM corrections WHERE head = 'type'",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for correction in &acknowledged {
        assert!(
            stored.contains(&(
                correction.feedback_id,
                correction.id.clone(),
                correction.correct_label.clone()
            )),
            "acknowledged correction lost: {correction:?}"
        );
    }
    drop(check);

    // A comment classified before the kill can still be corrected.
    let (status, body) = connection
        .json(
            "POST",
            "/v1/feedback",
            Some(&json!({"id": acknowledged[0].id, "head": "area", "correct_label": "subsidio", "reviewer": "after"})),
            Some(KEY),
        )
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(body["predicted_label"].is_string(), "{body}");

    server.signal("TERM");
    let mut server = server;
    assert!(
        eventually(Duration::from_secs(30), || server.has_exited()),
        "the server did not stop; log: {}",
        server.log()
    );
    assert!(
        server.log().contains("prediction log closed"),
        "{}",
        server.log()
    );
}
