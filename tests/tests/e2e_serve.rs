//! End-to-end test of `pqrs serve`: the real binary on an ephemeral port, the default model trained into a
//! temporary cache, classification, hot reloads (admin endpoint and SIGHUP) under concurrent load with zero failed
//! requests, and a SIGTERM that lets requests in flight finish.
//!
//! The harness is the `tests` crate's library (`tests/src/`): the binary is found next to this test's executable
//! (`target/<profile>/pqrs`; `cargo test --workspace` builds it for the service crate's own tests), else built with
//! the cargo that built this test; set `PQRS_BIN` to test another binary. Run alone (`cargo test -p tests`) after
//! changing the service, build the binary first (`cargo build -p service`): an existing binary is not rebuilt from
//! here. The HTTP client is a small HTTP/1.1 client over `std::net::TcpStream`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tests::{Connection, IfMissing, Server, eventually, pqrs_binary, serve_command};

const KEY: &str = "e2e-key-0123456789";
const QUEJA: &str =
    "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta";

/// A copy of `model` with another id: same weights and heads, another creation time, hence another checksum.
fn variant(model: &Path, created_at: &str, out: &Path) -> String {
    let bytes = std::fs::read(model).unwrap();
    let mut model = models::Model::from_bytes(&bytes).unwrap();
    model.info.created_at = created_at.into();
    let bytes = model.to_bytes(models::Precision::F32);
    // Written beside and renamed, as a deployment would, so the server never reads half a file.
    let partial = out.with_extension("partial");
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, out).unwrap();
    model.info.id
}

/// `pqrs serve` with JSON logs, the default model cached in `cache` and the prediction log beside it (through
/// `PQRS_DB`), never in the user's data directory.
fn start(cache: &Path, log: PathBuf) -> Server {
    let mut command = serve_command(&pqrs_binary(IfMissing::Build), cache, KEY);
    command
        .args(["--log-format", "json"])
        .env("PQRS_DB", cache.with_file_name("predictions.sqlite3"));
    Server::start(command, log)
}

#[test]
fn serve_classifies_reloads_under_load_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = start(&cache, dir.path().join("server.log"));
    let mut admin = server.connect();

    assert_eq!(admin.get("/readyz").unwrap().status, 200);
    let first = admin
        .post_json("/v1/classify", &json!({"text": QUEJA, "id": "e2e-1"}), None)
        .unwrap();
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert!(first.header("x-request-id").is_some());
    let first = first.json();
    assert_eq!(first["id"], "e2e-1");
    for head in ["type", "theme", "area"] {
        assert!(first["heads"][head]["label"].is_string(), "{first}");
    }
    assert!(first["route"]["due_at"].is_string());
    let default_id = first["model"].as_str().unwrap().to_string();
    assert_eq!(
        admin.get("/v1/model").unwrap().json()["id"],
        default_id.as_str()
    );

    // The default model was trained into the temporary cache.
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pqrs"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let next = dir.path().join("next.pqrs");
    let next_id = variant(&cached[0], "2030-01-01T00:00:00Z", &next);

    // Clients classify without pause on their own keep-alive connections while the model is swapped.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (stop, done, seen) = (stop.clone(), done.clone(), seen.clone());
            let mut connection = server.connect();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) {
                    let body = json!({"text": format!("{QUEJA} ({client}-{sent})"), "id": format!("{client}-{sent}")});
                    match connection.post_json("/v1/classify", &body, None) {
                        Ok(response) if response.status == 200 => {
                            let model = response.json()["model"].as_str().unwrap().to_string();
                            let mut seen = seen.lock().unwrap();
                            if seen.last() != Some(&model) {
                                seen.push(model);
                            }
                        }
                        Ok(response) => failures.push(format!("{}: {}", response.status, String::from_utf8_lossy(&response.body))),
                        Err(e) => failures.push(e.to_string()),
                    }
                    sent += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (sent, failures)
            })
        })
        .collect();
    let wait_for_requests = |count: usize| {
        let target = done.load(Ordering::SeqCst) + count;
        assert!(eventually(Duration::from_secs(60), || done
            .load(Ordering::SeqCst)
            >= target));
    };
    wait_for_requests(200);
    let reloaded = admin
        .post_json("/v1/admin/reload", &json!({"path": next}), Some(KEY))
        .unwrap();
    assert_eq!(
        reloaded.status,
        200,
        "{}",
        String::from_utf8_lossy(&reloaded.body)
    );
    assert_eq!(reloaded.json()["model"], next_id.as_str());
    wait_for_requests(200);

    // A corrupt file is refused while the clients keep going, and the new model keeps serving.
    let corrupt = dir.path().join("corrupt.pqrs");
    std::fs::write(&corrupt, b"PQRSMODL not really").unwrap();
    let refused = admin
        .post_json("/v1/admin/reload", &json!({"path": corrupt}), Some(KEY))
        .unwrap();
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["error"]["code"], "model_rejected");
    let unauthorized = admin
        .post_json("/v1/admin/reload", &json!({}), Some("wrong"))
        .unwrap();
    assert_eq!(unauthorized.status, 401);

    // SIGHUP reloads the served file: replace it and signal.
    let hup_id = variant(&cached[0], "2031-01-01T00:00:00Z", &next);
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(30), || admin
            .get("/v1/model")
            .unwrap()
            .json()["id"]
            == hup_id.as_str()),
        "SIGHUP did not reload; log: {}",
        server.log()
    );
    wait_for_requests(200);

    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for client in clients {
        let (sent, failures) = client.join().unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during reloads: {failures:?}"
        );
        total += sent;
    }
    assert!(total >= 600);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&default_id), "{seen:?}");
    assert_eq!(seen.last(), Some(&hup_id), "{seen:?}");
    assert!(seen.contains(&next_id), "{seen:?}");

    // Two requests in flight when SIGTERM arrives: a stream with one line answered, and a classify request whose
    // body is half sent.
    let mut stream = server.connect();
    stream
        .send_head(
            "POST",
            "/v1/classify/stream",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Transfer-Encoding", "chunked"),
            ],
        )
        .unwrap();
    stream
        .write_chunk(format!("{}\n", json!({"text": QUEJA, "id": "before"})).as_bytes())
        .unwrap();
    let (status, _) = stream.read_head().unwrap();
    assert_eq!(status, 200);
    let before: Value = serde_json::from_slice(&stream.read_chunk().unwrap().unwrap()).unwrap();
    assert_eq!(before["result"]["id"], "before");

    let mut half = server.connect();
    let body = json!({"text": QUEJA, "id": "half"}).to_string();
    let length = body.len().to_string();
    // `Expect: 100-continue` makes the server say when it starts reading the body. Without that answer the
    // signal could arrive while the head still sits unread in the socket: the connection is then idle to the
    // server, which may close it, as HTTP/1.1 allows for idle connections.
    half.send_head(
        "POST",
        "/v1/classify",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &length),
            ("Expect", "100-continue"),
        ],
    )
    .unwrap();
    let (status, _) = half.read_head().unwrap();
    assert_eq!(status, 100, "the server did not ask for the body");
    half.send_bytes(&body.as_bytes()[..10]).unwrap();

    server.signal("TERM");
    // Once the signal is handled the listener closes: new connections are refused.
    assert!(
        eventually(Duration::from_secs(10), || Connection::open(server.addr())
            .is_err()),
        "the server still accepts connections after SIGTERM"
    );

    half.send_bytes(&body.as_bytes()[10..]).unwrap();
    let (status, headers) = half.read_head().unwrap();
    let answer: Value = serde_json::from_slice(&half.read_body(&headers).unwrap()).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "half");

    for i in 0..3 {
        stream
            .write_chunk(
                format!("{}\n", json!({"text": QUEJA, "id": format!("after-{i}")})).as_bytes(),
            )
            .unwrap();
    }
    stream.write_chunk(b"").unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.read_chunk().unwrap() {
        rest.extend(chunk);
    }
    let ids: Vec<String> = String::from_utf8(rest)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["result"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["after-0", "after-1", "after-2"]);

    let mut server = server;
    let exited = eventually(Duration::from_secs(30), || server.has_exited());
    assert!(
        exited,
        "the server did not exit after draining; log: {}",
        server.log()
    );
    let status = server.wait();
    assert!(
        status.success(),
        "exit status {status}; log: {}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("SIGTERM") && log.contains("model reloaded"),
        "{log}"
    );
    // Logs are JSON lines and never contain a comment's text.
    assert!(!log.contains("hicieron esperar"), "{log}");
    for line in log.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
}
