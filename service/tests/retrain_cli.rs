//! `pqrs retrain` and `pqrs audit` end to end through the real binary on small files built from the shipped corpus:
//! a serving model trained on the older part of a dated history, corrections in the exported feedback formats,
//! promotion with its lineage recorded, refusal of a worse candidate, `--force`, and an audit's files.

mod cli;

use std::path::{Path, PathBuf};

use cli::{corpus_rows, pqrs, text, write_jsonl};
use serde_json::{Value, json};

/// 500 corpus comments for the history, and 40 others that are not in it.
fn corpus_history() -> (Vec<Value>, Vec<Value>) {
    let rows = corpus_rows(540);
    let (history, others) = rows.split_at(500);
    (history.to_vec(), others.to_vec())
}

/// The CSV `pqrs feedback export` writes: id, received_at, channel, text, then one column per head.
fn write_feedback_csv(path: &Path, rows: &[Value]) {
    let quote = |v: &Value| format!("\"{}\"", v.as_str().unwrap_or("").replace('"', "\"\""));
    let mut body = String::from("id,received_at,channel,text,type,area\n");
    for r in rows {
        body.push_str(
            &[
                quote(&r["id"]),
                quote(&json!("2026-01-05T10:00:00Z")),
                quote(&json!("web")),
                quote(&r["text"]),
                quote(&r["type"]),
                quote(&r["area"]),
            ]
            .join(","),
        );
        body.push('\n');
    }
    std::fs::write(path, body).unwrap();
}

fn lineage(path: &Path) -> models::Lineage {
    let model = models::Model::from_bytes(&std::fs::read(path).unwrap()).unwrap();
    model
        .info
        .lineage
        .expect("a retrained model records its lineage")
}

fn model_id(path: &Path) -> String {
    models::Model::from_bytes(&std::fs::read(path).unwrap())
        .unwrap()
        .info
        .id
}

struct Setup {
    dir: tempfile::TempDir,
    history: Vec<Value>,
    others: Vec<Value>,
    serving: PathBuf,
}

/// A history file and a serving model trained on its comments before the held-out 20 % (the last 100 days).
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (history, others) = corpus_history();
    write_jsonl(&dir.path().join("history.jsonl"), &history);
    let first_held_out = history[400]["fecha"].as_str().unwrap().to_string();
    let out = pqrs(
        dir.path(),
        &[
            "train",
            "--data",
            "history.jsonl",
            "--text",
            "text",
            "--label",
            "type",
            "--label",
            "area",
            "--date",
            "fecha",
            "--before",
            &first_held_out,
            "--epochs",
            "10",
            "--out",
            "serving.pqrs",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let serving = dir.path().join("serving.pqrs");
    Setup {
        dir,
        history,
        others,
        serving,
    }
}

const RETRAIN: &[&str] = &[
    "retrain",
    "--history",
    "history.jsonl",
    "--text",
    "text",
    "--label",
    "type",
    "--label",
    "area",
    "--id",
    "id",
    "--date",
    "fecha",
    "--model",
    "serving.pqrs",
];

#[test]
fn retrain_promotes_with_lineage_refuses_a_worse_candidate_and_forces() {
    let s = setup();
    let dir = s.dir.path();

    // 30 new reviewed comments, one partly reviewed, 10 confirmations of training comments by id, and one
    // correction of a held-out comment found by its text.
    let mut feedback: Vec<Value> = s.others[..30].to_vec();
    let mut partial = s.others[30].clone();
    partial["area"] = json!("");
    feedback.push(partial);
    for r in &s.history[..10] {
        feedback.push(json!({"id": r["id"], "text": r["text"], "type": "", "area": r["area"]}));
    }
    let mut held_out = s.history[450].clone();
    held_out["id"] = json!("server-generated-1");
    held_out["area"] = json!("");
    feedback.push(held_out);
    write_feedback_csv(&dir.join("feedback.csv"), &feedback);

    let mut args = RETRAIN.to_vec();
    args.extend([
        "--feedback",
        "feedback.csv",
        "--out",
        "m2.pqrs",
        "--tolerance",
        "0.5",
    ]);
    let out = pqrs(dir, &args);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("held out: 100 comments, the latest 20 % by date"),
        "{log}"
    );
    assert!(
        log.contains("30 new comments to train on; 1 partly reviewed"),
        "{log}"
    );
    assert!(log.contains("PROMOTE"), "{log}");
    assert!(
        !log.contains("warning: the serving model was trained on this whole history"),
        "{log}"
    );
    let l = lineage(&dir.join("m2.pqrs"));
    assert_eq!(l.parent, model_id(&s.serving));
    // 10 area confirmations + 1 held-out type correction + 30 comments × 2 heads.
    assert_eq!(l.feedback, 71);
    assert!(l.promoted && !l.forced, "{l:?}");
    assert!(l.reason.starts_with("not worse"), "{}", l.reason);
    let heads = l.comparison["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!(l.comparison["n"], 100);
    assert!(
        heads[0]["per_class"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );

    // Relabeling every training comment's type to the next type makes a candidate that is plainly worse: it is
    // refused and nothing is written, unless forced.
    let types: Vec<&str> = vec!["felicitacion", "peticion", "queja", "reclamo", "sugerencia"];
    let rotated: Vec<Value> = s.history[..400]
        .iter()
        .map(|r| {
            let at = types.iter().position(|t| *t == r["type"]).unwrap();
            json!({"id": r["id"], "text": r["text"], "type": types[(at + 1) % types.len()], "area": ""})
        })
        .collect();
    write_jsonl(&dir.join("rotated.jsonl"), &rotated);
    let mut args = RETRAIN.to_vec();
    args.extend(["--feedback", "rotated.jsonl", "--out", "worse.pqrs"]);
    let out = pqrs(dir, &args);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("KEEP THE SERVING MODEL: worse: type"), "{log}");
    assert!(log.contains("use --force"), "{log}");
    assert!(!dir.join("worse.pqrs").exists());

    args.push("--force");
    let out = pqrs(dir, &args);
    assert!(out.status.success(), "{}", text(&out));
    let l = lineage(&dir.join("worse.pqrs"));
    assert!(!l.promoted && l.forced, "{l:?}");
    assert_eq!(l.feedback, 400);
}

#[test]
fn retrain_explains_what_it_cannot_read() {
    let s = setup();
    let dir = s.dir.path();
    // A SQLite database is named by its first bytes; a damaged one is reported as such.
    let mut database = b"SQLite format 3\0".to_vec();
    database.resize(4096, 0);
    std::fs::write(dir.join("pqrs.sqlite3"), database).unwrap();
    let mut args = RETRAIN.to_vec();
    args.extend(["--feedback", "pqrs.sqlite3", "--out", "m2.pqrs"]);
    let out = pqrs(dir, &args);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("reading corrections from"),
        "{}",
        text(&out)
    );

    // The serving model must have the history's heads to be compared on them.
    std::fs::write(
        dir.join("feedback.csv"),
        "id,received_at,channel,text,type\n",
    )
    .unwrap();
    let mut args = RETRAIN.to_vec();
    args.extend([
        "--label",
        "tipo=type",
        "--feedback",
        "feedback.csv",
        "--out",
        "m2.pqrs",
    ]);
    let out = pqrs(dir, &args);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the serving model has no head `tipo`"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("m2.pqrs").exists());

    let mut args = RETRAIN.to_vec();
    args.extend(["--feedback", "missing.csv", "--out", "m2.pqrs"]);
    let out = pqrs(dir, &args);
    assert!(!out.status.success());
    assert!(text(&out).contains("missing.csv"), "{}", text(&out));
}

#[test]
fn audit_prints_confusion_pairs_and_writes_relabeling_files() {
    let s = setup();
    let dir = s.dir.path();
    let first_held_out = s.history[400]["fecha"].as_str().unwrap().to_string();
    let out = pqrs(
        dir,
        &[
            "audit",
            "--model",
            "serving.pqrs",
            "--data",
            "history.jsonl",
            "--text",
            "text",
            "--label",
            "type",
            "--label",
            "area",
            "--date",
            "fecha",
            "--from",
            &first_held_out,
            "--train",
            "history.jsonl",
            "--train-before",
            &first_held_out,
            "--out",
            "audit",
            "--top",
            "3",
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("100 comments audited, neighbours searched among 400"),
        "{log}"
    );
    assert!(log.contains("type — errors per confusion pair"), "{log}");
    let jsonl = std::fs::read_to_string(dir.join("audit/errors.jsonl")).unwrap();
    let errors: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !errors.is_empty(),
        "a model trained on 400 comments makes mistakes on 100 new ones"
    );
    for e in &errors {
        assert_ne!(e["gold"], e["predicted"]);
        let neighbours = e["neighbours"].as_array().unwrap();
        assert_eq!(neighbours.len(), 5);
        // Neighbours come from the training part only: dated before the held-out part, so lines 1..=400.
        assert!(
            neighbours
                .iter()
                .all(|n| n["line"].as_u64().unwrap() <= 400),
            "{e}"
        );
    }
    let csv = std::fs::read_to_string(dir.join("audit/errors.csv")).unwrap();
    assert!(csv.starts_with("head,line,id,text,gold,predicted,confidence,relabel,"));
    let pairs = std::fs::read_to_string(dir.join("audit/confusion_pairs.csv")).unwrap();
    let counted: usize = pairs
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, errors.len());

    // Heads that are not the default model's need the training file.
    let out = pqrs(
        dir,
        &[
            "audit",
            "--model",
            "serving.pqrs",
            "--data",
            "history.jsonl",
            "--text",
            "text",
            "--label",
            "kind=type",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("give --train FILE"), "{}", text(&out));
}
