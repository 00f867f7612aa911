//! Crash test of the QA store: the real `pqrs serve` on an ephemeral port with a temporary SQLite database,
//! classify requests and corrections sent concurrently, the process killed with SIGKILL in the middle of the
//! writes, then restarted on the same file. Every correction answered 201 must be there, every prediction the
//! server counted as committed before the kill must be there, and SQLite's integrity check must pass.
//!
//! The binary is found as in `e2e_serve.rs` (next to this test's executable, else built; `PQRS_BIN` overrides).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "crash-key-0123456789";
const TEXTS: [&str; 4] = [
    "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta",
    "Llevo tres meses sin recibir la cuota monetaria, mi cédula es 1036123456",
    "Solicito información sobre el subsidio de vivienda y los requisitos para postularme",
    "Me cobraron dos veces la inscripción al curso y no me han devuelto el dinero",
];

fn pqrs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PQRS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("pqrs{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-p", "service", "--bin", "pqrs"])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "building pqrs failed"
        );
    }
    binary
}

/// A keep-alive HTTP/1.1 connection that reads Content-Length answers (every answer of these routes has one).
struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(std::io::Error::other)?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }

    fn json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let (status, bytes) = self.request(method, path, body)?;
        let value = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        Ok((status, value))
    }
}

/// The server process; killed if the test fails before it stops.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(cache: &Path, db: &Path, log: PathBuf) -> Server {
        let mut child = Command::new(pqrs_binary())
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--api-key",
                KEY,
                "--log-format",
                "json",
                "--db",
            ])
            .arg(db)
            .env("PQRS_CACHE_DIR", cache)
            .env_remove("PQRS_MODEL")
            .env_remove("PQRS_ADDR")
            .env_remove("PQRS_DB")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("pqrs starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // The first start trains the default model into the temporary cache.
        let line = receiver
            .recv_timeout(Duration::from_secs(600))
            .unwrap_or_else(|e| {
                panic!(
                    "no `listening on` line ({e}); log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr, log }
    }

    fn connect(&self) -> Connection {
        Connection::open(self.addr).expect("the server accepts connections")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The value of an unlabelled counter in Prometheus text.
fn counter(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

/// A correction the server acknowledged with 201.
#[derive(Debug, Clone)]
struct Acknowledged {
    feedback_id: i64,
    id: String,
    correct_label: String,
}

fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_killed_server_keeps_every_acknowledged_correction_and_committed_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let db = dir.path().join("qa.sqlite3");
    let server = Server::start(&cache, &db, dir.path().join("first.log"));

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
                    connection.json("POST", "/v1/classify", Some(&body)).map(|(s, _)| (s, 1))
                } else {
                    let items: Vec<Value> = (0..8)
                        .map(|i| json!({"text": TEXTS[(n + i) % TEXTS.len()], "id": format!("k{client}-{n}-{i}")}))
                        .collect();
                    connection.json("POST", "/v1/classify/batch", Some(&json!({"items": items}))).map(|(s, _)| (s, 8))
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
                    connection.json("POST", "/v1/classify", Some(&json!({"text": TEXTS[(client + n) % TEXTS.len()]})))
                else {
                    break;
                };
                let id = answer["id"].as_str().expect("a generated id").to_string();
                let correct_label = if n % 3 == 0 { "queja" } else { answer["heads"]["type"]["label"].as_str().unwrap() };
                let body = json!({"id": id, "head": "type", "correct_label": correct_label, "reviewer": format!("qa-{client}")});
                match connection.json("POST", "/v1/feedback", Some(&body)) {
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
    let (status, metrics) = server.connect().request("GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let committed_before_kill = counter(
        &String::from_utf8(metrics).unwrap(),
        "pqrs_prediction_log_committed_total",
    )
    .expect("the counter");
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("a client failed");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(committed_before_kill > 0 && !acknowledged.is_empty());
    drop(server);

    // Restarted on the same file: SQLite recovers the write-ahead log and the server serves it.
    let server = Server::start(&cache, &db, dir.path().join("second.log"));
    let mut connection = server.connect();
    let (status, stats) = connection.json("GET", "/v1/review/stats", None).unwrap();
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
        )
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(body["predicted_label"].is_string(), "{body}");

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut server = server;
    assert!(
        eventually(Duration::from_secs(30), || matches!(
            server.child.try_wait(),
            Ok(Some(_))
        )),
        "the server did not stop; log: {}",
        server.log()
    );
    assert!(
        server.log().contains("prediction log closed"),
        "{}",
        server.log()
    );
}
