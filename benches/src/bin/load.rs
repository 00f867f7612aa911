//! HTTP load generator for `pqrs serve`: sends `POST /v1/classify` with comments of the shipped corpus over
//! keep-alive HTTP/1.1 connections (tokio + hyper) and reports latency percentiles, throughput, errors and the
//! server's resident memory.
//!
//! Two kinds of run:
//! - open loop (`--rate R`, repeatable): requests are scheduled at a fixed rate whatever the answers do, evenly
//!   spaced by a pacer thread (tokio's millisecond timer would send them in bursts, one per tick). A request
//!   that has to wait because its connection is still busy with a late answer is timed from when it should have
//!   been sent, so a slow server cannot hide its queueing (no coordinated omission); a request sent on a free
//!   connection is timed from when it was sent, so the generator's own timer jitter is not charged to the server.
//! - closed loop (`--closed N`, repeatable): N connections each send the next request as soon as the last one is
//!   answered; this measures the most the server can answer.
//! - closed loop driven by `wrk` (`--wrk N`, repeatable): the same, but the requests come from `wrk`, an epoll
//!   generator in C that costs the shared cores ~9 µs per request (kernel included) where this hyper client
//!   costs ~17 µs; on a 2-core machine the generator's share caps what the server can show.
//!   `benches/http/install-wrk.sh` installs it.
//!
//! ```sh
//! cargo build --release -p service -p benches
//! target/release/pqrs serve --addr 127.0.0.1:8080 &
//! target/release/load --addr 127.0.0.1:8080 --pid $! --rate 1000 --rate 5000 --closed 16 --duration 10
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Load generator for `pqrs serve`.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Open-loop rate in requests per second; one run per value.
    #[arg(long)]
    rate: Vec<u32>,
    /// Connections of the open-loop runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Closed-loop run with this many connections; one run per value.
    #[arg(long)]
    closed: Vec<usize>,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded load before each run, so that connections and caches are warm.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Process id of the server, to report its resident memory (VmRSS, and VmHWM: the peak) after each run.
    #[arg(long)]
    pid: Option<u32>,
    /// Closed-loop run driven by `wrk` with this many connections; one run per value (needs `wrk` on the PATH).
    #[arg(long)]
    wrk: Vec<usize>,
    /// Worker threads of the generator's runtime, and `wrk`'s threads (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// What to request: `classify` (POST /v1/classify with corpus comments) or `healthz` (GET /healthz: the cost
    /// of HTTP, routing, middleware and metrics alone, without a model).
    #[arg(long, value_enum, default_value_t = Target::Classify)]
    target: Target,
    /// Instead of any HTTP load, time in this process what the server does per comment with this model file:
    /// predict without and with explanations, and route. The floor the HTTP figures compare to.
    #[arg(long)]
    in_process: Option<std::path::PathBuf>,
    /// Start this `pqrs` binary as `pqrs serve --addr 127.0.0.1:0`, load it (by default `--rate 1000 --rate 5000
    /// --closed 16`), then stop it with SIGTERM. Replaces --addr and --pid.
    #[arg(long)]
    spawn: Option<std::path::PathBuf>,
    /// Print the runs as one JSON object on stdout instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

/// A server started by `--spawn`, stopped with SIGTERM when dropped.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts `pqrs serve` on a free port and returns it with its address, read from its `listening on ADDR` line.
fn spawn_server(pqrs: &std::path::Path) -> anyhow::Result<(Spawned, SocketAddr)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(pqrs)
        // Without a prediction log: these runs measure classification; the log's own cost is measured apart
        // (RESULTS.md, "HTTP service"), and a benchmark must not fill the user's data directory.
        .args(["serve", "--addr", "127.0.0.1:0", "--db", "none"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", pqrs.display()))?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let server = Spawned(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?
        .parse()?;
    Ok((server, addr))
}

/// The endpoint under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// POST /v1/classify.
    Classify,
    /// GET /healthz.
    Healthz,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// When the last recorded request ended: past the run's end when the server falls behind an open loop.
    last_done: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        self.last_done = self.last_done.max(other.last_done);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Percentiles of one run.
struct Report {
    label: String,
    seconds: f64,
    tally: Tally,
    /// Runs driven by `wrk`: its request count and its p50, p90, p99 and max in µs (it keeps no raw latencies).
    wrk: Option<WrkFigures>,
    /// Server CPU seconds used while requests were recorded, when its pid is known.
    server_cpu: Option<f64>,
}

impl Report {
    fn percentile(&self, q: f64) -> f64 {
        if let Some(wrk) = &self.wrk {
            return wrk.percentile(q);
        }
        let sorted = &self.tally.latencies_ns;
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1_000.0
    }

    /// The run's figures as JSON (latencies in µs, memory in MiB).
    fn summary(&self, rss: Option<(u64, u64)>) -> serde_json::Value {
        let done = self.done();
        let requests = done as u64 + self.tally.errors;
        let cpu = self
            .server_cpu
            .map(|seconds| seconds * 1e6 / requests.max(1) as f64);
        serde_json::json!({
            "run": self.label,
            "requests_per_s": done as f64 / self.seconds,
            "requests": done,
            "errors": self.tally.errors,
            "p50_us": self.percentile(0.50),
            "p90_us": self.percentile(0.90),
            "p99_us": self.percentile(0.99),
            "p999_us": self.percentile(0.999),
            "max_us": self.percentile(1.0),
            "server_cpu_us_per_request": cpu,
            "rss_mib": rss.map(|(rss, _)| rss as f64 / 1024.0),
            "peak_rss_mib": rss.map(|(_, hwm)| hwm as f64 / 1024.0),
        })
    }

    /// Requests answered with a success.
    fn done(&self) -> usize {
        self.wrk
            .as_ref()
            .map_or(self.tally.latencies_ns.len(), |wrk| wrk.answered)
    }

    fn print(&self, rss: Option<(u64, u64)>) {
        let done = self.done();
        let memory = rss.map_or_else(String::new, |(rss, hwm)| {
            let requests = done as u64 + self.tally.errors;
            let cpu = self
                .server_cpu
                .map_or(f64::NAN, |seconds| seconds * 1e6 / requests.max(1) as f64);
            format!(
                " | {cpu:.0} | {:.1} | {:.1}",
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0
            )
        });
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}{memory} |",
            self.label,
            done as f64 / self.seconds,
            done,
            self.tally.errors,
            self.percentile(0.50),
            self.percentile(0.90),
            self.percentile(0.99),
            self.percentile(0.999),
            self.percentile(1.0),
        );
    }
}

/// Request bodies: comments of the corpus, so that lengths and vocabulary are realistic.
fn bodies() -> anyhow::Result<Arc<Vec<Bytes>>> {
    let corpus = datasets::corpus::all().context("reading the shipped corpus")?;
    let bodies: Vec<Bytes> = corpus
        .records
        .iter()
        .map(|r| Bytes::from(serde_json::json!({"text": r.text}).to_string()))
        .collect();
    if bodies.is_empty() {
        bail!("the corpus is empty");
    }
    Ok(Arc::new(bodies))
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    target: Target,
    addr: SocketAddr,
    body: &Bytes,
) -> Result<(), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let request = match target {
        Target::Classify => Request::post("/v1/classify")
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone())),
        Target::Healthz => Request::get("/healthz")
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::new())),
    }
    .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&answer)));
    }
    Ok(())
}

/// The fixed schedule of an open-loop run: request `n` is due at `start + n * interval`, on connection
/// `n % connections`; requests due before `record_from` warm up and are not recorded.
#[derive(Clone, Copy)]
struct Schedule {
    target: Target,
    start: Instant,
    interval: Duration,
    record_from: Instant,
    end: Instant,
}

/// One connection of an open-loop run: sends each request the pacer hands it, `(sequence, due)`.
async fn open_connection(
    addr: SocketAddr,
    bodies: Arc<Vec<Bytes>>,
    schedule: Schedule,
    mut due_requests: tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)>,
) -> anyhow::Result<Tally> {
    let mut sender = connect(addr).await?;
    let mut tally = Tally::default();
    let mut previous_done = schedule.start;
    while let Some((sequence, due)) = due_requests.recv().await {
        let sent = Instant::now();
        // Late because the connection was busy: the server's fault, timed from the schedule. Late because the
        // pacer woke late on a free connection: the generator's fault, timed from the send.
        let timed_from = if previous_done > due { due } else { sent };
        let body = &bodies[sequence % bodies.len()];
        let outcome = send(&mut sender, schedule.target, addr, body).await;
        previous_done = Instant::now();
        if due < schedule.record_from {
            continue;
        }
        tally.last_done = Some(previous_done);
        match outcome {
            Ok(()) => tally
                .latencies_ns
                .push((previous_done - timed_from).as_nanos() as u64),
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    Ok(tally)
}

/// Hands every request of the schedule to its connection at its due time, from a thread of its own. tokio's
/// timers tick once a millisecond, so connections sleeping on them sent 5,000 requests a second as five at once
/// on every tick, and those bursts queued on the server; a thread sleeping with `std::thread::sleep` wakes
/// within the kernel's timer slack (~50 µs), so requests go out evenly spaced as the schedule says.
fn pace(
    schedule: Schedule,
    connections: Vec<tokio::sync::mpsc::UnboundedSender<(usize, Instant)>>,
) {
    for sequence in 0.. {
        let due = schedule.start + schedule.interval.mul_f64(sequence as f64);
        if due >= schedule.end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A connection whose task failed has dropped its receiver; its error is reported when the task is joined.
        let _ = connections[sequence % connections.len()].send((sequence, due));
    }
}

async fn open_loop(args: &Args, bodies: &Arc<Vec<Bytes>>, rate: u32) -> anyhow::Result<Report> {
    let start = Instant::now() + Duration::from_millis(100);
    let record_from = start + Duration::from_secs_f64(args.warmup);
    let schedule = Schedule {
        target: args.target,
        start,
        interval: Duration::from_secs_f64(1.0 / f64::from(rate)),
        record_from,
        end: record_from + Duration::from_secs_f64(args.duration),
    };
    let cpu = cpu_probe(args.pid, schedule.record_from);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..args.connections.max(1))
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|due_requests| {
            tokio::spawn(open_connection(
                args.addr,
                bodies.clone(),
                schedule,
                due_requests,
            ))
        })
        .collect();
    let pacer = std::thread::spawn(move || pace(schedule, senders));
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await??);
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    tally.latencies_ns.sort_unstable();
    Ok(Report {
        label: format!(
            "{:?} open {rate}/s, {} conns",
            args.target, args.connections
        )
        .to_lowercase(),
        seconds: tally
            .last_done
            .map_or(args.duration, |done| (done - record_from).as_secs_f64()),
        tally,
        wrk: None,
        server_cpu: cpu_since(args.pid, cpu).await?,
    })
}

async fn closed_connection(
    target: Target,
    addr: SocketAddr,
    bodies: Arc<Vec<Bytes>>,
    slot: usize,
    record_from: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut sender = connect(addr).await?;
    let mut tally = Tally::default();
    let mut next = slot * 7919;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let outcome = send(&mut sender, target, addr, &bodies[next % bodies.len()]).await;
        next += 1;
        if sent < record_from {
            continue;
        }
        let done = Instant::now();
        tally.last_done = Some(done);
        match outcome {
            Ok(()) => tally.latencies_ns.push((done - sent).as_nanos() as u64),
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    Ok(tally)
}

async fn closed_loop(
    args: &Args,
    bodies: &Arc<Vec<Bytes>>,
    connections: usize,
) -> anyhow::Result<Report> {
    let record_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = record_from + Duration::from_secs_f64(args.duration);
    let cpu = cpu_probe(args.pid, record_from);
    let tasks: Vec<_> = (0..connections)
        .map(|slot| {
            tokio::spawn(closed_connection(
                args.target,
                args.addr,
                bodies.clone(),
                slot,
                record_from,
                end,
            ))
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await??);
    }
    tally.latencies_ns.sort_unstable();
    Ok(Report {
        label: format!("{:?} closed, {connections} conns", args.target).to_lowercase(),
        seconds: tally
            .last_done
            .map_or(args.duration, |done| (done - record_from).as_secs_f64()),
        tally,
        wrk: None,
        server_cpu: cpu_since(args.pid, cpu).await?,
    })
}

/// The Lua script and request bodies `wrk` sends, in a temporary directory removed on drop.
struct WrkScript {
    dir: std::path::PathBuf,
}

impl WrkScript {
    /// Writes the bodies (one JSON document a line) and a script that sends them in turn, each `wrk` thread
    /// from its own starting point.
    fn write(bodies: &[Bytes], target: Target) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("pqrs-load-wrk-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut lines = Vec::new();
        for body in bodies {
            lines.extend_from_slice(body);
            lines.push(b'\n');
        }
        std::fs::write(dir.join("bodies.jsonl"), lines)?;
        let request = match target {
            Target::Classify => {
                r#"wrk.format("POST", "/v1/classify", {["Content-Type"] = "application/json"}, line)"#
            }
            Target::Healthz => r#"wrk.format("GET", "/healthz")"#,
        };
        std::fs::write(
            dir.join("requests.lua"),
            format!(
                r#"-- Generated by benches/src/bin/load.rs: sends the corpus comments in turn.
local requests, next = {{}}, 0
local thread_number = 0
function setup(thread)
  thread:set("offset", thread_number * 7919)
  thread_number = thread_number + 1
end
function init(args)
  for line in io.lines(args[1]) do
    requests[#requests + 1] = {request}
  end
  next = offset % #requests
end
function request()
  next = next % #requests + 1
  return requests[next]
end
"#
            ),
        )?;
        Ok(Self { dir })
    }
}

impl Drop for WrkScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `wrk --latency` reports of one run.
struct WrkFigures {
    answered: usize,
    /// p50, p75, p90, p99 and max, in µs.
    p50: f64,
    p75: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl WrkFigures {
    /// The quantile `q` if `wrk` reports it (50, 75, 90 and 99 % and the maximum), else NaN.
    fn percentile(&self, q: f64) -> f64 {
        match q {
            0.50 => self.p50,
            0.75 => self.p75,
            0.90 => self.p90,
            0.99 => self.p99,
            1.0 => self.max,
            _ => f64::NAN,
        }
    }
}

/// A `wrk` duration such as `812.00us`, `1.23ms` or `2.00s`, in µs.
fn wrk_micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    Some(match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        "m" => value * 60e6,
        _ => return None,
    })
}

/// Reads the figures out of `wrk --latency`'s report.
fn parse_wrk(output: &str) -> anyhow::Result<(WrkFigures, u64, f64)> {
    let mut percentiles = std::collections::HashMap::new();
    let (mut max, mut requests, mut seconds, mut failed) = (None, None, None, 0u64);
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", _avg, _stdev, m, ..] => max = wrk_micros(m),
            [p, value] if p.ends_with('%') => {
                percentiles.insert(p.to_string(), wrk_micros(value));
            }
            [n, "requests", "in", s, ..] => {
                requests = n.parse::<u64>().ok();
                seconds = wrk_micros(s.trim_end_matches(',')).map(|us| us / 1e6);
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => failed += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                failed += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    let quantile = |p: &str| {
        percentiles
            .get(p)
            .copied()
            .flatten()
            .with_context(|| format!("wrk printed no {p} latency:\n{output}"))
    };
    let requests = requests.with_context(|| format!("wrk printed no request count:\n{output}"))?;
    Ok((
        WrkFigures {
            answered: requests.saturating_sub(failed) as usize,
            p50: quantile("50%")?,
            p75: quantile("75%")?,
            p90: quantile("90%")?,
            p99: quantile("99%")?,
            max: max.context("wrk printed no latency line")?,
        },
        failed,
        seconds.context("wrk printed no duration")?,
    ))
}

/// One closed-loop run of `wrk` against the server, after an unrecorded warm-up run.
fn wrk_run(args: &Args, script: &WrkScript, connections: usize) -> anyhow::Result<Report> {
    let url = format!("http://{}/", args.addr);
    let run = |seconds: f64| -> anyhow::Result<String> {
        let output = std::process::Command::new("wrk")
            .arg(format!(
                "--threads={}",
                args.threads.max(1).min(connections)
            ))
            .arg(format!("--connections={connections}"))
            .arg(format!("--duration={}s", seconds.ceil().max(1.0) as u64))
            .arg("--latency")
            .arg("--script")
            .arg(script.dir.join("requests.lua"))
            .arg(&url)
            .arg("--")
            .arg(script.dir.join("bodies.jsonl"))
            .output()
            .context("running wrk (install it with benches/http/install-wrk.sh)")?;
        if !output.status.success() {
            bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    if args.warmup > 0.0 {
        run(args.warmup)?;
    }
    let before = args.pid.and_then(cpu_seconds);
    let output = run(args.duration)?;
    let server_cpu = before
        .zip(args.pid.and_then(cpu_seconds))
        .map(|(before, after)| after - before);
    let (figures, failed, seconds) = parse_wrk(&output)?;
    Ok(Report {
        label: format!(
            "{:?} wrk closed, {connections} conns, {} threads",
            args.target,
            args.threads.max(1).min(connections)
        )
        .to_lowercase(),
        seconds,
        tally: Tally {
            errors: failed,
            first_error: (failed > 0).then(|| format!("{failed} failed requests (wrk)")),
            ..Tally::default()
        },
        wrk: Some(figures),
        server_cpu,
    })
}

/// CPU time a process has used, user and system, in seconds (`/proc/PID/stat` counts in USER_HZ, 100 on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces; utime and stime are the
    // 14th and 15th fields of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The server's CPU seconds at `from`, read by a task that waits for it; subtract it from a reading at the end.
fn cpu_probe(pid: Option<u32>, from: Instant) -> tokio::task::JoinHandle<Option<f64>> {
    tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        cpu_seconds(pid?)
    })
}

/// Server CPU seconds since the probe's reading.
async fn cpu_since(
    pid: Option<u32>,
    probe: tokio::task::JoinHandle<Option<f64>>,
) -> anyhow::Result<Option<f64>> {
    let before = probe.await?;
    Ok(before
        .zip(pid.and_then(cpu_seconds))
        .map(|(before, after)| after - before))
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Microseconds per comment of `work` over every comment, best of three passes.
fn per_comment(texts: &[String], mut work: impl FnMut(&str)) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            for text in texts {
                work(text);
            }
            started.elapsed().as_secs_f64() * 1e6 / texts.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Times prediction and routing in process, on one thread.
fn in_process(path: &std::path::Path) -> anyhow::Result<()> {
    let (model, texts) = benches::model_and_corpus_texts(path)?;
    let mut scratch = models::Scratch::default();
    println!(
        "in process, {} comments of the corpus, best of 3 passes, µs per comment:",
        texts.len()
    );
    for explain in [0, 5] {
        let options = models::PredictOptions { top_k: 3, explain };
        let micros = per_comment(&texts, |text| {
            std::hint::black_box(model.linear.predict(text, options, &mut scratch));
        });
        println!("- predict, top_k 3, explain {explain}: {micros:.1}");
    }
    if let Some(taxonomy) = &model.info.taxonomy {
        let rules = models::routing::CompiledRules::from_taxonomy(taxonomy)?;
        let options = models::PredictOptions {
            top_k: 3,
            explain: 0,
        };
        let predictions: std::collections::HashMap<&str, models::Prediction> = texts
            .iter()
            .map(|t| (t.as_str(), model.linear.predict(t, options, &mut scratch)))
            .collect();
        let received_at = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:30:00-05:00")?;
        let micros = per_comment(&texts, |text| {
            let input = models::routing::RouteInput::new(text, received_at, &predictions[text]);
            std::hint::black_box(models::routing::route(taxonomy, &rules, &input));
        });
        println!("- route: {micros:.1}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(path) = &args.in_process {
        return in_process(path);
    }
    let _server = match args.spawn.clone() {
        Some(pqrs) => {
            let (server, addr) = spawn_server(&pqrs)?;
            args.addr = addr;
            args.pid = Some(server.0.id());
            if args.rate.is_empty() && args.closed.is_empty() && args.wrk.is_empty() {
                args.rate = vec![1_000, 5_000];
                args.closed = vec![16];
            }
            Some(server)
        }
        None => None,
    };
    if args.rate.is_empty() && args.closed.is_empty() && args.wrk.is_empty() {
        bail!("nothing to do: give --rate R, --closed N and/or --wrk N");
    }
    if args.connections == 0
        || args.closed.contains(&0)
        || args.rate.contains(&0)
        || args.wrk.contains(&0)
    {
        bail!("rates and connection counts must be positive");
    }
    let bodies = bodies()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let memory = args.pid.map(|pid| memory_kib(pid).map(|_| ()));
    if memory == Some(None) {
        bail!("cannot read /proc/{}/status", args.pid.unwrap_or_default());
    }
    let header = format!(
        "load on {} ({} bodies from the corpus), {:.0} s per run after {:.0} s warm-up, generator threads {}",
        args.addr,
        bodies.len(),
        args.duration,
        args.warmup,
        args.threads
    );
    if args.json {
        eprintln!("{header}");
    } else {
        println!("{header}");
        let rss_header = if args.pid.is_some() {
            " server CPU µs/req | RSS MiB | peak RSS MiB |"
        } else {
            ""
        };
        let rss_rule = if args.pid.is_some() {
            "---|---|---|"
        } else {
            ""
        };
        println!(
            "\n| run | req/s | requests | errors | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |{rss_header}"
        );
        println!("|---|---|---|---|---|---|---|---|---|{rss_rule}");
    }
    let report = |run: Report, summaries: &mut Vec<serde_json::Value>| {
        let rss = args.pid.and_then(memory_kib);
        if let Some(error) = &run.tally.first_error {
            eprintln!("{}: first error: {error}", run.label);
        }
        if args.json {
            summaries.push(run.summary(rss));
        } else {
            run.print(rss);
        }
    };
    let summaries = runtime.block_on(async {
        let mut summaries = Vec::new();
        for &rate in &args.rate {
            report(open_loop(&args, &bodies, rate).await?, &mut summaries);
        }
        for &connections in &args.closed {
            report(
                closed_loop(&args, &bodies, connections).await?,
                &mut summaries,
            );
        }
        anyhow::Ok(summaries)
    })?;
    let mut summaries = summaries;
    if !args.wrk.is_empty() {
        let script = WrkScript::write(&bodies, args.target)?;
        for &connections in &args.wrk {
            report(wrk_run(&args, &script, connections)?, &mut summaries);
        }
    }
    if args.json {
        let output = serde_json::json!({
            "addr": args.addr.to_string(),
            "duration_s": args.duration,
            "runs": summaries,
        });
        println!("{output}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let output = "Running 5s test @ http://127.0.0.1:1/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  456.00us  10.50ms   80.00%
    Req/Sec    13.00k     1.00k   15.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.40ms
     90%    1.80ms
     99%    3.00ms
  65000 requests in 5.00s, 100.00MB read
  Non-2xx or 3xx responses: 5
Requests/sec:  13000.00
";
        let (figures, failed, seconds) = parse_wrk(output).expect("parses");
        assert_eq!(figures.answered, 64_995);
        assert_eq!(failed, 5);
        assert!((seconds - 5.0).abs() < 1e-9);
        assert!((figures.p50 - 812.0).abs() < 1e-9);
        assert!((figures.p99 - 3_000.0).abs() < 1e-9);
        assert!((figures.max - 10_500.0).abs() < 1e-9);
        assert!(parse_wrk("wrk: connection refused").is_err());
    }
}
