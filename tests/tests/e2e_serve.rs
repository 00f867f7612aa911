//! End-to-end test of `pqrs serve`: the real binary on an ephemeral port, the default model trained into a
//! temporary cache, classification, hot reloads (admin endpoint and SIGHUP) under concurrent load with zero failed
//! requests, and a SIGTERM that lets requests in flight finish.
//!
//! The binary is found next to this test's executable (`target/<profile>/pqrs`; `cargo test --workspace` builds it
//! for the service crate's own tests). When it is not there it is built with the cargo that built this test. Set
//! `PQRS_BIN` to test another binary. Run alone (`cargo test -p tests`) after changing the service, build the
//! binary first (`cargo build -p service`): an existing binary is not rebuilt from here. The HTTP client is a small HTTP/1.1 client over `std::net::TcpStream`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "e2e-key-0123456789";
const QUEJA: &str =
    "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta";

/// The `pqrs` binary of the profile this test was built with.
fn pqrs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PQRS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/e2e_serve-<hash> -> target/<profile>
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
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building pqrs failed");
    }
    binary
}

/// A response read by the tiny client.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 connection.
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

    fn send_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes())
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let length = body.len().to_string();
        let mut all = headers.to_vec();
        all.push(("Content-Length", &length));
        self.send_head(method, path, &all)?;
        self.writer.write_all(body)?;
        self.read_head().and_then(|(status, headers)| {
            let body = self.read_body(&headers)?;
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }

    fn post_json(
        &mut self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        let bearer = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        self.request("POST", path, &headers, body.to_string().as_bytes())
    }

    fn get(&mut self, path: &str) -> std::io::Result<Response> {
        self.request("GET", path, &[], b"")
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn read_head(&mut self) -> std::io::Result<(u16, Vec<(String, String)>)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok((status, headers));
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }

    fn read_body(&mut self, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if let Some(length) = find("content-length") {
            let mut body = vec![0; length.parse().map_err(std::io::Error::other)?];
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.read_chunk()? {
            body.extend(chunk);
        }
        Ok(body)
    }

    /// One chunk of a chunked body; `None` at the last chunk.
    fn read_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let size_line = self.read_line()?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| std::io::Error::other(format!("bad chunk size {size_line:?}: {e}")))?;
        let mut chunk = vec![0; size];
        self.reader.read_exact(&mut chunk)?;
        self.read_line()?;
        Ok((size > 0).then_some(chunk))
    }

    fn write_chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        self.writer.write_all(data)?;
        self.writer.write_all(b"\r\n")
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
    fn start(cache: &Path, log: PathBuf) -> Server {
        let mut child = Command::new(pqrs_binary())
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--api-key",
                KEY,
                "--log-format",
                "json",
            ])
            .env("PQRS_CACHE_DIR", cache)
            // The prediction log goes next to the temporary cache, never to the user's data directory.
            .env("PQRS_DB", cache.with_file_name("predictions.sqlite3"))
            .env_remove("PQRS_MODEL")
            .env_remove("PQRS_ADDR")
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
        // The first start trains the default model: seconds in release, longer in a debug build.
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

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Checks `condition` until it holds or `limit` passes; for effects of signals, which have no answer to wait on.
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

#[test]
fn serve_classifies_reloads_under_load_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(&cache, dir.path().join("server.log"));
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
    // A full request first, so that the server has surely accepted this connection before the signal.
    assert_eq!(half.get("/healthz").unwrap().status, 200);
    let body = json!({"text": QUEJA, "id": "half"}).to_string();
    let length = body.len().to_string();
    half.send_head(
        "POST",
        "/v1/classify",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &length),
        ],
    )
    .unwrap();
    half.writer.write_all(&body.as_bytes()[..10]).unwrap();

    server.signal("TERM");
    // Once the signal is handled the listener closes: new connections are refused.
    assert!(
        eventually(Duration::from_secs(10), || Connection::open(server.addr)
            .is_err()),
        "the server still accepts connections after SIGTERM"
    );

    half.writer.write_all(&body.as_bytes()[10..]).unwrap();
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
    let exited = eventually(Duration::from_secs(30), || {
        matches!(server.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        exited,
        "the server did not exit after draining; log: {}",
        server.log()
    );
    let status = server.child.wait().unwrap();
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
