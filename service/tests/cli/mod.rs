//! Pieces shared by the tests that run the real `pqrs` binary: running it in a scratch directory, and dated JSONL
//! histories sampled from the shipped corpus.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const PQRS: &str = env!("CARGO_BIN_EXE_pqrs");

/// Runs `pqrs args` in `dir`, with its cache in `dir/cache`, its encoder directory `dir/encoder`, and no serving
/// model or feedback store from the environment.
pub fn pqrs(dir: &Path, args: &[&str]) -> Output {
    Command::new(PQRS)
        .args(args)
        .current_dir(dir)
        .env_remove("PQRS_MODEL")
        .env_remove("PQRS_FEEDBACK")
        .env("PQRS_CACHE_DIR", dir.join("cache"))
        .env("PQRS_ENCODER_DIR", dir.join("encoder"))
        .output()
        .expect("pqrs runs")
}

/// Stdout, then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `n` corpus comments spread over the file and shuffled (the file is grouped by area), ids `h0`…, one a day from
/// 2024-01-01, heads type and area. `n` must be coprime with 37.
pub fn corpus_rows(n: usize) -> Vec<Value> {
    assert!(!n.is_multiple_of(37), "37 must be coprime with {n}");
    let all = datasets::corpus::all().expect("the shipped corpus reads");
    let (ty, area) = (
        all.head_index("type").unwrap(),
        all.head_index("area").unwrap(),
    );
    let stride = all.records.len() / n;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (0..n)
        .map(|i| {
            // 37 is coprime with n, so this visits every sampled comment once, in a mixed order.
            let r = &all.records[(i * 37 % n) * stride];
            json!({
                "id": format!("h{i}"),
                "fecha": (start + chrono::Days::new(i as u64)).to_string(),
                "text": r.text,
                "type": r.labels[ty],
                "area": r.labels[area],
            })
        })
        .collect()
}

pub fn write_jsonl(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}
