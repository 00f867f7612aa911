//! `pqrs retrain`: trains a candidate on labeled history plus reviewers' corrections, compares it with the
//! serving model on the same held-out part of the history, and writes it only when it is not worse (or forced),
//! recording its lineage (parent model, comparison, corrections used) in the artifact.
//!
//! How the data is put together:
//! - **Held-out part.** Fixed before any correction is applied, so that every run with the same history compares
//!   on the same comments: with `--corpus`, the committed test split; when a date column is mapped, the latest
//!   `--holdout` share of the dated comments (undated ones train); otherwise a stratified share of the first head,
//!   seeded with `--seed`.
//! - **Corrections.** A feedback row names a comment by id (when the history has an id column) or by its text
//!   (the service stores texts masked, so a history text also matches through its masked form). Its labels replace
//!   the history's for the heads it corrects, in the training part *and* in the held-out part, so both models are
//!   judged against the best labels known. A corrected comment that is not in the history joins the training part
//!   when every head of the history has a label for it (a review is complete once every head is confirmed or
//!   corrected, as in the review queue); a partly reviewed one is left out and counted, because training needs
//!   every head's label for every comment (the reader rejects rows with a missing label, and `fit` learns all heads
//!   from the same comments). Corrections for heads the history lacks are ignored.
//! - **Training.** With the serving model's recorded configuration when it has one (so that the comparison
//!   measures the data, not settings), else the default model's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use datasets::{LabeledSet, Record};
use training::TrainConfig;
use training::compare::DEFAULT_TOLERANCE;

use super::data::SourceArgs;

/// Arguments of `pqrs retrain`.
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// Labeled history: .csv/.tsv/.txt, .jsonl or .xlsx, read with `--text`, `--label`, `--id`, `--date`.
    #[arg(long, required_unless_present = "corpus")]
    history: Option<PathBuf>,
    /// Use the shipped corpus as the history (heads type, theme, area; the committed test split is held out).
    #[arg(long, conflicts_with = "history")]
    corpus: bool,
    /// Text column of the history; repeat to join several columns with a newline.
    #[arg(long = "text", value_name = "COL")]
    text: Vec<String>,
    /// A label column mapped to a head name: `HEAD=COL`; repeatable. Feedback heads are matched by these names.
    #[arg(long = "label", value_name = "HEAD=COL")]
    labels: Vec<String>,
    /// Id column of the history: corrections naming that id apply to that comment.
    #[arg(long)]
    id: Option<String>,
    /// Date column of the history: the latest comments are held out.
    #[arg(long)]
    date: Option<String>,
    /// XLSX sheet of the history (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Reviewers' corrections: a file written by `pqrs feedback export` (.csv or .jsonl: id, received_at,
    /// channel, text, one column per head, empty = not corrected).
    #[arg(long, env = "PQRS_FEEDBACK")]
    feedback: PathBuf,
    /// Where to write the candidate when it is promoted.
    #[arg(long)]
    out: PathBuf,
    /// The serving model (default: the default model).
    #[arg(long, env = "PQRS_MODEL")]
    model: Option<PathBuf>,
    /// Write the candidate even when it is worse than the serving model (the lineage records it).
    #[arg(long)]
    force: bool,
    /// Share of the history held out for the comparison.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Seed of the stratified held-out split (when no date column is mapped).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Largest drop of any head's macro-F1 or accuracy that still counts as not worse.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    tolerance: f64,
    /// Per-class F1 changes printed per head.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
}

/// One reviewed comment: its id and text, and the corrected label of each head that has one (normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    /// Prediction id.
    pub id: Option<String>,
    /// The comment as stored (masked).
    pub text: String,
    /// Head → corrected label.
    pub labels: BTreeMap<String, String>,
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Reads the corrections of `path`, an exported feedback file, for the heads `heads`.
pub fn read_feedback(path: &Path, heads: &[String]) -> anyhow::Result<Vec<FeedbackRow>> {
    let mut magic = [0u8; 16];
    let is_database = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == SQLITE_MAGIC;
    if is_database {
        // Labels are normalised as the datasets reader normalises an exported file's, so both paths agree.
        let rows = service::store::export_feedback(path)
            .with_context(|| format!("reading corrections from {}", path.display()))?;
        return Ok(rows
            .into_iter()
            .map(|row| FeedbackRow {
                id: Some(row.id),
                text: row.text,
                labels: row
                    .labels
                    .into_iter()
                    .filter(|(head, _)| heads.contains(head))
                    .map(|(head, label)| (head, datasets::normalize_label(&label)))
                    .collect(),
            })
            .filter(|row| !row.labels.is_empty())
            .collect());
    }
    // One read per head, through the datasets reader: a row is accepted for a head when it has that head's label,
    // so the reader's "missing label" rejections are simply the heads a reviewer did not correct.
    let mut rows: BTreeMap<u64, FeedbackRow> = BTreeMap::new();
    for head in heads {
        let mapping = datasets::ColumnMapping {
            text: vec!["text".into()],
            labels: vec![(head.clone(), head.clone())],
            id: Some("id".into()),
            ..Default::default()
        };
        let set = match datasets::read_labeled(path, &mapping) {
            Ok(set) => set,
            // A head the file has no column for has no corrections.
            Err(datasets::Error::MissingColumn { column, .. }) if column == *head => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        for record in set.records {
            let row = rows.entry(record.line).or_insert_with(|| FeedbackRow {
                id: record.id.clone(),
                text: record.text.clone(),
                labels: BTreeMap::new(),
            });
            row.labels.insert(head.clone(), record.labels[0].clone());
        }
    }
    Ok(rows.into_values().collect())
}

/// The history with the corrections applied and what was done with them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Merged {
    /// History comments whose labels were replaced, by index.
    pub relabeled: Vec<usize>,
    /// Labels of history comments replaced (one per comment and head), of which `changed` differ.
    pub corrections_applied: usize,
    /// Replaced labels that differ from the history's.
    pub changed: usize,
    /// Corrected comments not in the history, with every head labeled, to train on.
    pub added: Vec<Record>,
    /// Corrected comments not in the history lacking some head's label: left out.
    pub partial: usize,
}

/// Applies `feedback` to `history` in place (see the module documentation).
pub fn merge(history: &mut LabeledSet, feedback: &[FeedbackRow]) -> Merged {
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_text: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in history.records.iter().enumerate() {
        if let Some(id) = &r.id {
            by_id.entry(id.as_str()).or_default().push(i);
        }
        by_text.entry(r.text.clone()).or_default().push(i);
        let masked = models::routing::mask(&r.text).text;
        if masked != r.text {
            by_text.entry(masked).or_default().push(i);
        }
    }
    let mut merged = Merged::default();
    let mut updates: Vec<(usize, usize, String)> = Vec::new();
    for row in feedback {
        let mut targets: Vec<usize> = row
            .id
            .as_deref()
            .and_then(|id| by_id.get(id))
            .or_else(|| by_text.get(row.text.trim()))
            .cloned()
            .unwrap_or_default();
        targets.sort_unstable();
        targets.dedup();
        let labels: Vec<(usize, &String)> = row
            .labels
            .iter()
            .filter_map(|(head, label)| history.head_index(head).map(|h| (h, label)))
            .collect();
        if labels.is_empty() {
            continue;
        }
        if targets.is_empty() {
            if labels.len() == history.heads.len() {
                let mut record_labels = vec![String::new(); history.heads.len()];
                for (h, label) in labels {
                    record_labels[h] = label.clone();
                }
                merged.added.push(Record {
                    line: 0,
                    id: row.id.clone(),
                    text: row.text.clone(),
                    labels: record_labels,
                    date: None,
                    channel: None,
                });
            } else {
                merged.partial += 1;
            }
            continue;
        }
        for &i in &targets {
            for &(h, label) in &labels {
                updates.push((i, h, label.clone()));
            }
        }
    }
    // Later feedback rows win over earlier ones for the same comment and head.
    for (i, h, label) in updates {
        merged.corrections_applied += 1;
        if history.records[i].labels[h] != label {
            merged.changed += 1;
        }
        history.records[i].labels[h] = label;
        merged.relabeled.push(i);
    }
    merged.relabeled.sort_unstable();
    merged.relabeled.dedup();
    merged
}

/// Held-out indices of the history: the latest `share` of the dated comments when there are dates, else a
/// stratified share of the first head seeded with `seed`. Returns (train, held out) and how it was chosen.
pub fn holdout(set: &LabeledSet, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>, String) {
    let mut dated: Vec<usize> = (0..set.records.len())
        .filter(|&i| set.records[i].date.is_some())
        .collect();
    if dated.is_empty() {
        let split = datasets::split::stratified(set, 0, share, seed);
        let how = format!(
            "a stratified {:.0} % of `{}` (seed {seed})",
            share * 100.0,
            set.heads[0]
        );
        return (split.train, split.test, how);
    }
    dated.sort_by_key(|&i| (set.records[i].date, i));
    let n_test = ((dated.len() as f64) * share).round() as usize;
    let mut test: Vec<usize> = dated[dated.len() - n_test..].to_vec();
    test.sort_unstable();
    let first = test
        .iter()
        .filter_map(|&i| set.records[i].date)
        .min()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let train: Vec<usize> = (0..set.records.len())
        .filter(|i| test.binary_search(i).is_err())
        .collect();
    let how = format!("the latest {:.0} % by date (from {first})", share * 100.0);
    (train, test, how)
}

/// Runs `pqrs retrain`.
pub fn run(args: RetrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.holdout > 0.0 && args.holdout < 1.0,
        "--holdout must be between 0 and 1, got {}",
        args.holdout
    );
    let (serving, serving_path) = service::model_source::resolve(args.model.as_deref())?;
    eprintln!(
        "serving model {} ({})",
        serving.info.id,
        serving_path.display()
    );

    let (mut history, split) = if args.corpus {
        let (set, is_test) =
            datasets::corpus::all_with_split().context("reading the shipped corpus")?;
        let train = (0..is_test.len()).filter(|&i| !is_test[i]).collect();
        let test = (0..is_test.len()).filter(|&i| is_test[i]).collect();
        (
            set,
            (train, test, "the corpus's committed test split".to_string()),
        )
    } else {
        let source = SourceArgs {
            data: args.history.clone(),
            text: args.text.clone(),
            labels: args.labels.clone(),
            id: args.id.clone(),
            date: args.date.clone(),
            channel: None,
            sheet: args.sheet.clone(),
            corpus: false,
        };
        let set = source.read()?;
        anyhow::ensure!(!set.heads.is_empty(), "give at least one --label HEAD=COL");
        let split = holdout(&set, args.holdout, args.seed);
        (set, split)
    };
    let (train_ids, test_ids, how) = split;
    eprintln!(
        "history: {} comments ({} rejected), heads {}; held out: {} comments, {how}",
        history.records.len(),
        history.report.rows_rejected(),
        history.heads.join(", "),
        test_ids.len()
    );
    anyhow::ensure!(!test_ids.is_empty(), "the held-out part is empty");
    let serving_heads: Vec<&str> = serving
        .linear
        .heads
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    if let Some(missing) = history
        .heads
        .iter()
        .find(|h| !serving_heads.contains(&h.as_str()))
    {
        bail!(
            "the serving model has no head `{missing}` (its heads are {}), so it cannot be compared on it: \
             give --model with the model serving these heads",
            serving_heads.join(", ")
        );
    }
    if serving
        .info
        .training
        .get("data_fingerprint")
        .and_then(|v| v.as_str())
        == Some(training::fit::fingerprint(&history).as_str())
    {
        eprintln!(
            "warning: the serving model was trained on this whole history, held-out part included, so its \
             held-out figures are optimistic and the comparison favours it"
        );
    }

    let feedback = read_feedback(&args.feedback, &history.heads)?;
    let merged = merge(&mut history, &feedback);
    let held_out_relabeled = merged
        .relabeled
        .iter()
        .filter(|i| test_ids.binary_search(i).is_ok())
        .count();
    let added_labels = merged.added.len() * history.heads.len();
    let feedback_used = merged.corrections_applied + added_labels;
    eprintln!(
        "feedback: {} reviewed comments; {} labels applied to {} history comments ({} changed, {} of those \
         comments held out); {} new comments to train on; {} partly reviewed new comments left out",
        feedback.len(),
        merged.corrections_applied,
        merged.relabeled.len(),
        merged.changed,
        held_out_relabeled,
        merged.added.len(),
        merged.partial
    );

    let held_out = history.subset(&test_ids);
    let mut train = history.subset(&train_ids);
    train.records.extend(merged.added.iter().cloned());

    let config = serving
        .info
        .training
        .get("config")
        .and_then(|c| serde_json::from_value::<TrainConfig>(c.clone()).ok())
        .unwrap_or_else(training::default_config);
    eprintln!("training the candidate on {} comments", train.records.len());
    let (mut candidate, report) = training::fit(
        &train,
        &config,
        serving.info.taxonomy.as_ref(),
        &training::Silent,
    )?;
    eprintln!("trained in {:.1} s", report.seconds);

    let comparison = training::compare::compare(&candidate, &serving, &held_out, args.tolerance)?;
    print!("{}", training::compare::table(&comparison, args.top));

    let promoted = comparison.decision.promote;
    if !promoted && !args.force {
        bail!("the candidate was not written (use --force to write it anyway)");
    }
    candidate.info.lineage = Some(models::Lineage {
        parent: serving.info.id.clone(),
        feedback: feedback_used as u64,
        promoted,
        forced: !promoted,
        reason: comparison.decision.reason.clone(),
        comparison: serde_json::to_value(&comparison).expect("the comparison serialises"),
    });
    let bytes = candidate.to_bytes(models::Precision::F32);
    // Written under a temporary name and renamed, so that a server reloading `--out` never reads half a model.
    let temporary = args
        .out
        .with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, &bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &args.out)
        .with_context(|| format!("renaming to {}", args.out.display()))?;
    println!(
        "\nmodel {} written to {}{} (parent {}, {} corrections)",
        candidate.info.id,
        args.out.display(),
        if promoted {
            ""
        } else {
            " although worse (--force)"
        },
        serving.info.id,
        feedback_used
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, text: &str, labels: &[&str]) -> Record {
        Record {
            line: 0,
            id: Some(id.into()),
            text: text.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            date: None,
            channel: None,
        }
    }

    fn row(id: Option<&str>, text: &str, labels: &[(&str, &str)]) -> FeedbackRow {
        FeedbackRow {
            id: id.map(str::to_string),
            text: text.into(),
            labels: labels
                .iter()
                .map(|(h, l)| (h.to_string(), l.to_string()))
                .collect(),
        }
    }

    #[test]
    fn corrections_override_by_id_or_text_and_new_comments_need_every_head() {
        let mut history = LabeledSet {
            heads: vec!["type".into(), "area".into()],
            records: vec![
                record("a1", "me cobraron dos veces", &["queja", "creditos"]),
                record("a2", "gracias por todo", &["felicitacion", "salud"]),
                record(
                    "a3",
                    "mi correo es ana@example.com y nadie responde",
                    &["queja", "salud"],
                ),
            ],
            ..Default::default()
        };
        let masked = models::routing::mask(&history.records[2].text).text;
        assert_ne!(
            masked, history.records[2].text,
            "the example carries personal data"
        );
        let feedback = vec![
            row(Some("a1"), "otro texto", &[("type", "reclamo")]),
            row(
                Some("x9"),
                "gracias por todo",
                &[("area", "recreacion"), ("theme", "t")],
            ),
            row(None, &masked, &[("type", "queja")]),
            row(
                Some("n1"),
                "texto nuevo",
                &[("type", "peticion"), ("area", "salud")],
            ),
            row(Some("n2"), "texto a medias", &[("type", "peticion")]),
        ];
        let merged = merge(&mut history, &feedback);
        assert_eq!(history.records[0].labels, ["reclamo", "creditos"]);
        assert_eq!(history.records[1].labels, ["felicitacion", "recreacion"]);
        assert_eq!(history.records[2].labels, ["queja", "salud"]);
        assert_eq!(merged.relabeled, [0, 1, 2]);
        assert_eq!(merged.corrections_applied, 3);
        assert_eq!(
            merged.changed, 2,
            "the masked text's correction agrees with the history"
        );
        assert_eq!(merged.added.len(), 1);
        assert_eq!(merged.added[0].labels, ["peticion", "salud"]);
        assert_eq!(merged.partial, 1);
    }

    #[test]
    fn holdout_takes_the_latest_dates_or_a_stratified_share() {
        let mut set = LabeledSet {
            heads: vec!["type".into()],
            records: (0..10)
                .map(|i| record(&i.to_string(), "t", &[if i % 2 == 0 { "a" } else { "b" }]))
                .collect(),
            ..Default::default()
        };
        let (train, test, how) = holdout(&set, 0.2, 1);
        assert_eq!((train.len(), test.len()), (8, 2));
        assert!(how.contains("stratified"));
        // One of each label is held out.
        assert_eq!(test.iter().filter(|&&i| i % 2 == 0).count(), 1);

        for (i, r) in set.records.iter_mut().enumerate() {
            // Dates in reverse file order: the latest are the first rows.
            r.date = chrono::NaiveDate::from_ymd_opt(2024, 1, 20 - i as u32);
        }
        set.records[9].date = None;
        let (train, test, how) = holdout(&set, 0.2, 1);
        assert_eq!(test, [0, 1]);
        assert!(train.contains(&9), "undated comments train");
        assert!(how.contains("2024-01-19"), "{how}");
    }
}
