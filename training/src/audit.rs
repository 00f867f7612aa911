//! Misclassification audit: every comment a model gets wrong, per head, with its gold label, prediction,
//! confidence, explanation and the most similar training comments; errors grouped by confusion pair; CSV and
//! JSONL exports a relabeler can fill in.
//!
//! Similarity is the cosine of the model's own TF-IDF vectors (the word and character blocks each L2-normalised,
//! as the model scores them), so a neighbour is a comment the model itself sees as close. When a wrong prediction
//! sits among training comments labeled like the prediction, either those labels or this gold label are suspect.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use datasets::LabeledSet;
use models::{Model, PredictOptions, Scratch};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

/// What the audit collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// Most similar training comments kept per misclassified comment (0: no search).
    pub neighbours: usize,
    /// N-grams in each explanation.
    pub explain: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            neighbours: 5,
            explain: 5,
        }
    }
}

/// A training comment close to a misclassified one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// Line of the comment in the training file.
    pub line: u64,
    /// Its id, when the training data has an id column.
    pub id: Option<String>,
    /// Its text.
    pub text: String,
    /// Its label for the audited head, when the training data has that head.
    pub label: Option<String>,
    /// Cosine similarity of the two TF-IDF vectors, in `[0, 1]`.
    pub similarity: f32,
}

/// One n-gram of an explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cue {
    /// The n-gram as it appears in the normalised comment.
    pub ngram: String,
    /// Its contribution to the predicted label's logit.
    pub weight: f32,
}

/// One wrong prediction of one head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Misclassification {
    /// Head.
    pub head: String,
    /// Line of the comment in the audited file.
    pub line: u64,
    /// Its id, when the audited data has an id column.
    pub id: Option<String>,
    /// The comment.
    pub text: String,
    /// Gold label (normalised).
    pub gold: String,
    /// Predicted label.
    pub predicted: String,
    /// Calibrated confidence of the prediction.
    pub confidence: f32,
    /// Probability the model gave the gold label; `None` when the model does not know that label.
    pub gold_probability: Option<f32>,
    /// The model would have flagged the prediction for review.
    pub needs_review: bool,
    /// The n-grams that pushed the predicted label up the most.
    pub explanation: Vec<Cue>,
    /// The most similar training comments, most similar first (identical texts left out).
    pub neighbours: Vec<Neighbour>,
}

/// How often one gold label was predicted as another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfusionPair {
    /// Head.
    pub head: String,
    /// Gold label.
    pub gold: String,
    /// Predicted label.
    pub predicted: String,
    /// Comments.
    pub count: usize,
    /// Share of the head's errors.
    pub share: f64,
}

/// Errors of one head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadSummary {
    /// Head.
    pub head: String,
    /// Comments audited.
    pub n: usize,
    /// Comments predicted wrongly.
    pub errors: usize,
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Audit {
    /// Id of the audited model.
    pub model_id: String,
    /// Comments audited.
    pub n: usize,
    /// Training comments searched for neighbours.
    pub n_train: usize,
    /// Per head, in the data's order.
    pub heads: Vec<HeadSummary>,
    /// Confusion pairs, per head in the data's order, most frequent first.
    pub pairs: Vec<ConfusionPair>,
    /// Every misclassification, in the order of `pairs`, most confident first within a pair.
    pub errors: Vec<Misclassification>,
}

/// Training comments as sparse TF-IDF vectors (compressed rows) with their norms.
struct Index {
    indptr: Vec<usize>,
    rows: Vec<u32>,
    values: Vec<f32>,
    norms: Vec<f32>,
}

impl Index {
    fn build(model: &Model, set: &LabeledSet) -> Index {
        let linear = &model.linear;
        let vectors: Vec<Vec<(u32, f32)>> = set
            .records
            .par_iter()
            .map_init(Scratch::default, |scratch, record| {
                linear.vectorize(&record.text, scratch);
                scratch.vector().to_vec()
            })
            .collect();
        let mut index = Index {
            indptr: Vec::with_capacity(vectors.len() + 1),
            rows: Vec::new(),
            values: Vec::new(),
            norms: Vec::with_capacity(vectors.len()),
        };
        index.indptr.push(0);
        for vector in vectors {
            index.norms.push(norm(&vector));
            for (row, value) in vector {
                index.rows.push(row);
                index.values.push(value);
            }
            index.indptr.push(index.rows.len());
        }
        index
    }

    /// The `k` documents most similar to `query` (cosine), skipping those `skip` rejects; `dense` is a zeroed
    /// buffer of the model's row count, returned zeroed.
    fn nearest(
        &self,
        query: &[(u32, f32)],
        k: usize,
        dense: &mut [f32],
        skip: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let query_norm = norm(query);
        if k == 0 || query_norm == 0.0 {
            return Vec::new();
        }
        for &(row, value) in query {
            dense[row as usize] = value;
        }
        let mut scored: Vec<(usize, f32)> = (0..self.norms.len())
            .filter(|&d| self.norms[d] > 0.0 && !skip(d))
            .map(|d| {
                let range = self.indptr[d]..self.indptr[d + 1];
                let dot: f32 = self.rows[range.clone()]
                    .iter()
                    .zip(&self.values[range])
                    .map(|(&r, &v)| dense[r as usize] * v)
                    .sum();
                (d, dot / (query_norm * self.norms[d]))
            })
            .collect();
        for &(row, _) in query {
            dense[row as usize] = 0.0;
        }
        let by_similarity =
            |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_similarity);
            scored.truncate(k);
        }
        scored.sort_by(by_similarity);
        scored
    }
}

fn norm(vector: &[(u32, f32)]) -> f32 {
    vector.iter().map(|(_, v)| v * v).sum::<f32>().sqrt()
}

/// Audits `model` on `data` (every head of the data must be a head of the model), searching `train` (the model's
/// training data, or any labeled comments) for the neighbours of each misclassified comment.
pub fn audit(
    model: &Model,
    data: &LabeledSet,
    train: &LabeledSet,
    config: &AuditConfig,
) -> Result<Audit> {
    let linear = &model.linear;
    let model_heads: Vec<usize> = data
        .heads
        .iter()
        .map(|head| {
            linear
                .heads
                .iter()
                .position(|m| &m.name == head)
                .ok_or_else(|| {
                    let known: Vec<&str> = linear.heads.iter().map(|h| h.name.as_str()).collect();
                    Error::Config(format!(
                        "the model has no head `{head}`; its heads are {}",
                        known.join(", ")
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let options = PredictOptions {
        // Every label, so that the gold label's probability can be read off the top-k.
        top_k: linear
            .heads
            .iter()
            .map(|h| h.labels.len())
            .max()
            .unwrap_or(1),
        explain: config.explain,
    };
    let predictions: Vec<_> = data
        .records
        .par_iter()
        .map_init(Scratch::default, |scratch, record| {
            linear.predict(&record.text, options, scratch)
        })
        .collect();

    // (comment, data head) of every error.
    let mut wrong: Vec<(usize, usize)> = Vec::new();
    for (i, (record, prediction)) in data.records.iter().zip(&predictions).enumerate() {
        for (j, &h) in model_heads.iter().enumerate() {
            if prediction.heads[h].label != record.labels[j] {
                wrong.push((i, j));
            }
        }
    }

    let mut wrong_comments: Vec<usize> = wrong.iter().map(|&(i, _)| i).collect();
    wrong_comments.dedup();
    let neighbours: HashMap<usize, Vec<(usize, f32)>> = if config.neighbours == 0
        || train.records.is_empty()
    {
        HashMap::new()
    } else {
        let index = Index::build(model, train);
        wrong_comments
            .par_iter()
            .map_init(
                || (Scratch::default(), vec![0.0f32; linear.idf.len()]),
                |(scratch, dense), &i| {
                    let text = &data.records[i].text;
                    linear.vectorize(text, scratch);
                    // A comment is not its own neighbour: when the audited data overlaps the training data, the
                    // identical text would always come first and say nothing.
                    let found = index.nearest(scratch.vector(), config.neighbours, dense, |d| {
                        train.records[d].text == *text
                    });
                    (i, found)
                },
            )
            .collect()
    };

    let train_heads: Vec<Option<usize>> = data.heads.iter().map(|h| train.head_index(h)).collect();
    let mut errors: Vec<Misclassification> = wrong
        .iter()
        .map(|&(i, j)| {
            let record = &data.records[i];
            let head = &predictions[i].heads[model_heads[j]];
            let gold = &record.labels[j];
            Misclassification {
                head: data.heads[j].clone(),
                line: record.line,
                id: record.id.clone(),
                text: record.text.clone(),
                gold: gold.clone(),
                predicted: head.label.clone(),
                confidence: head.confidence,
                gold_probability: head
                    .top_k
                    .iter()
                    .find(|s| &s.label == gold)
                    .map(|s| s.probability),
                needs_review: head.needs_review,
                explanation: head
                    .explanation
                    .iter()
                    .map(|e| Cue {
                        ngram: e.ngram.clone(),
                        weight: e.weight,
                    })
                    .collect(),
                neighbours: neighbours
                    .get(&i)
                    .map(|found| {
                        found
                            .iter()
                            .map(|&(d, similarity)| {
                                let neighbour = &train.records[d];
                                Neighbour {
                                    line: neighbour.line,
                                    id: neighbour.id.clone(),
                                    text: neighbour.text.clone(),
                                    label: train_heads[j].map(|t| neighbour.labels[t].clone()),
                                    similarity,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();

    let mut heads = Vec::with_capacity(data.heads.len());
    let mut pairs = Vec::new();
    for (j, head) in data.heads.iter().enumerate() {
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for e in errors.iter().filter(|e| &e.head == head) {
            *counts.entry((&e.gold, &e.predicted)).or_default() += 1;
        }
        let total: usize = counts.values().sum();
        heads.push(HeadSummary {
            head: head.clone(),
            n: data.records.len(),
            errors: total,
        });
        let mut head_pairs: Vec<ConfusionPair> = counts
            .into_iter()
            .map(|((gold, predicted), count)| ConfusionPair {
                head: data.heads[j].clone(),
                gold: gold.to_string(),
                predicted: predicted.to_string(),
                count,
                share: count as f64 / total as f64,
            })
            .collect();
        head_pairs.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.gold.cmp(&b.gold))
                .then_with(|| a.predicted.cmp(&b.predicted))
        });
        pairs.extend(head_pairs);
    }
    let rank: HashMap<(&str, &str, &str), usize> = pairs
        .iter()
        .enumerate()
        .map(|(r, p)| ((p.head.as_str(), p.gold.as_str(), p.predicted.as_str()), r))
        .collect();
    let mut order: Vec<(usize, usize)> = errors
        .iter()
        .enumerate()
        .map(|(e, m)| {
            (
                rank[&(m.head.as_str(), m.gold.as_str(), m.predicted.as_str())],
                e,
            )
        })
        .collect();
    // Within a pair, the most confident errors first: they are the likeliest to be wrong gold labels.
    order.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(errors[b.1].confidence.total_cmp(&errors[a.1].confidence))
            .then(a.1.cmp(&b.1))
    });
    let mut slots: Vec<Option<Misclassification>> = errors.drain(..).map(Some).collect();
    let errors = order
        .into_iter()
        .map(|(_, e)| slots[e].take().expect("each error is placed once"))
        .collect();

    Ok(Audit {
        model_id: model.info.id.clone(),
        n: data.records.len(),
        n_train: train.records.len(),
        heads,
        pairs,
        errors,
    })
}

/// A readable summary: errors per head, then the `top` most frequent confusion pairs of each head.
pub fn summary(audit: &Audit, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model {}: {} comments audited, neighbours searched among {} training comments\n",
        audit.model_id, audit.n, audit.n_train
    );
    let _ = writeln!(
        out,
        "{:<16} {:>8} {:>8} {:>9}",
        "head", "comments", "errors", "accuracy"
    );
    for h in &audit.heads {
        let accuracy = if h.n == 0 {
            0.0
        } else {
            1.0 - h.errors as f64 / h.n as f64
        };
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>8} {:>9.4}",
            h.head, h.n, h.errors, accuracy
        );
    }
    for h in &audit.heads {
        let pairs: Vec<&ConfusionPair> = audit.pairs.iter().filter(|p| p.head == h.head).collect();
        if pairs.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} — errors per confusion pair (gold → predicted)",
            h.head
        );
        let width = pairs
            .iter()
            .take(top)
            .map(|p| p.gold.chars().count() + p.predicted.chars().count() + 3)
            .max()
            .unwrap_or(0)
            .max(20);
        for p in pairs.iter().take(top) {
            let pair = format!("{} → {}", p.gold, p.predicted);
            let _ = writeln!(
                out,
                "  {pair:<width$} {:>6} {:>6.1} %",
                p.count,
                100.0 * p.share
            );
        }
        if pairs.len() > top {
            let rest: usize = pairs[top..].iter().map(|p| p.count).sum();
            let _ = writeln!(
                out,
                "  {:<width$} {rest:>6}",
                format!("({} more pairs)", pairs.len() - top)
            );
        }
    }
    out
}

/// Writes `errors.csv` and `errors.jsonl` (one row per misclassification, with an empty `relabel` column for the
/// corrected label) and `confusion_pairs.csv` into `dir`, creating it; returns the paths written.
pub fn write(dir: &Path, audit: &Audit) -> Result<Vec<std::path::PathBuf>> {
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source: std::io::Error| Error::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;

    let csv_path = dir.join("errors.csv");
    let mut csv = csv::Writer::from_path(&csv_path).map_err(|e| failed(&csv_path)(e.into()))?;
    let result = (|| -> std::result::Result<(), csv::Error> {
        csv.write_record([
            "head",
            "line",
            "id",
            "text",
            "gold",
            "predicted",
            "confidence",
            "relabel",
            "gold_probability",
            "explanation",
            "neighbours",
        ])?;
        for e in &audit.errors {
            let explanation: Vec<String> = e
                .explanation
                .iter()
                .map(|c| format!("{} ({:.2})", c.ngram, c.weight))
                .collect();
            let neighbours: Vec<String> = e
                .neighbours
                .iter()
                .map(|n| {
                    format!(
                        "{} {:.2} (line {})",
                        n.label.as_deref().unwrap_or("?"),
                        n.similarity,
                        n.line
                    )
                })
                .collect();
            csv.write_record([
                e.head.as_str(),
                &e.line.to_string(),
                e.id.as_deref().unwrap_or(""),
                &e.text,
                &e.gold,
                &e.predicted,
                &format!("{:.4}", e.confidence),
                "",
                &e.gold_probability
                    .map(|p| format!("{p:.4}"))
                    .unwrap_or_default(),
                &explanation.join("; "),
                &neighbours.join("; "),
            ])?;
        }
        csv.flush()?;
        Ok(())
    })();
    result.map_err(|e| failed(&csv_path)(e.into()))?;

    let jsonl_path = dir.join("errors.jsonl");
    let mut jsonl =
        std::io::BufWriter::new(std::fs::File::create(&jsonl_path).map_err(failed(&jsonl_path))?);
    for e in &audit.errors {
        let mut value = serde_json::to_value(e).expect("misclassifications serialise");
        value["relabel"] = serde_json::Value::Null;
        serde_json::to_writer(&mut jsonl, &value).map_err(|e| failed(&jsonl_path)(e.into()))?;
        jsonl.write_all(b"\n").map_err(failed(&jsonl_path))?;
    }
    jsonl.flush().map_err(failed(&jsonl_path))?;

    let pairs_path = dir.join("confusion_pairs.csv");
    let mut pairs =
        csv::Writer::from_path(&pairs_path).map_err(|e| failed(&pairs_path)(e.into()))?;
    let result = (|| -> std::result::Result<(), csv::Error> {
        pairs.write_record(["head", "gold", "predicted", "count", "share"])?;
        for p in &audit.pairs {
            pairs.write_record([
                p.head.as_str(),
                &p.gold,
                &p.predicted,
                &p.count.to_string(),
                &format!("{:.4}", p.share),
            ])?;
        }
        pairs.flush()?;
        Ok(())
    })();
    result.map_err(|e| failed(&pairs_path)(e.into()))?;
    Ok(vec![csv_path, jsonl_path, pairs_path])
}
