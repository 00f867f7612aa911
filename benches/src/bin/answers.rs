//! Records what a running `pqrs serve` answers to `POST /v1/classify` for many texts, one line per text, so that
//! two builds can be compared byte for byte (`cmp before.txt after.txt`) after a change meant to keep every answer.
//!
//! Each request carries a fixed `received_at` and an id made from the text's number, so that nothing in an answer
//! depends on when it was asked except `server_time`, which is blanked. The texts are the shipped corpus's, those
//! of every `--data` file (its `--text` column), and a few odd ones (empty, blank, one letter, digits only,
//! symbols, a long repetition).
//!
//! ```sh
//! target/release/pqrs serve --model MODEL --addr 127.0.0.1:18500 --db none &
//! target/release/answers --addr 127.0.0.1:18500 --data history.csv --text texto --out answers.txt
//! ```

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Records the answers of `pqrs serve` to many texts.
#[derive(Debug, Parser)]
#[command(name = "answers")]
struct Args {
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Labeled or unlabeled files whose texts are sent too (CSV, JSONL or XLSX); repeatable.
    #[arg(long)]
    data: Vec<std::path::PathBuf>,
    /// Text column of the `--data` files.
    #[arg(long, default_value = "texto")]
    text: String,
    /// The `received_at` of every request.
    #[arg(long, default_value = "2026-03-02T09:30:00-05:00")]
    received_at: String,
    /// Where to write the answers, one line per text: HTTP status, a tab, the body.
    #[arg(long)]
    out: std::path::PathBuf,
}

/// Texts that exercise the edges: rejected ones, ones without any known n-gram, very long ones.
fn odd_texts() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "a".into(),
        "1234567890".into(),
        "¡¿?! ... ### @@@".into(),
        "queja ".repeat(400),
        "Señora María Pérez, CC 1.020.304.050, tel 300 123 4567, correo maria@example.com".into(),
    ]
}

/// The answer body with the server's clock blanked: `"server_time":"…"` becomes `"server_time":""`.
fn without_server_time(body: &str) -> String {
    const FIELD: &str = "\"server_time\":\"";
    match body.find(FIELD) {
        Some(at) => {
            let value = at + FIELD.len();
            match body[value..].find('"') {
                Some(end) => format!("{}{}", &body[..value], &body[value + end..]),
                None => body.to_string(),
            }
        }
        None => body.to_string(),
    }
}

async fn record(args: &Args, texts: &[String]) -> anyhow::Result<()> {
    let stream = TcpStream::connect(args.addr)
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for (index, text) in texts.iter().enumerate() {
        let body = serde_json::json!({
            "id": format!("t{index}"),
            "text": text,
            "received_at": args.received_at,
        });
        sender.ready().await?;
        let request = Request::post("/v1/classify")
            .header(header::HOST, args.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        let answer = without_server_time(&String::from_utf8_lossy(&answer));
        writeln!(out, "{}\t{answer}", status.as_u16())?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut texts: Vec<String> = datasets::corpus::all()?
        .records
        .into_iter()
        .map(|r| r.text)
        .collect();
    for path in &args.data {
        let mapping = datasets::ColumnMapping {
            text: vec![args.text.clone()],
            ..Default::default()
        };
        let set = datasets::read_labeled(path, &mapping)
            .with_context(|| format!("reading {}", path.display()))?;
        texts.extend(set.records.into_iter().map(|r| r.text));
    }
    texts.extend(odd_texts());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(record(&args, &texts))?;
    eprintln!("{} answers written to {}", texts.len(), args.out.display());
    Ok(())
}
