//! Evaluating a model on labeled data: any subset of its heads, gold labels normalised like training labels,
//! unknown gold labels counted as errors and reported.

use std::collections::BTreeMap;
use std::time::Instant;

use datasets::LabeledSet;
use models::Model;
use models::classifier::Scratch;
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::{HeadMetrics, evaluate_head};
use crate::{Error, Result};

/// Metrics of every evaluated head.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Comments evaluated.
    pub n: usize,
    /// One entry per head of the data, in mapping order.
    pub heads: Vec<HeadMetrics>,
    /// Per head: gold labels the model does not know, with their counts.
    pub unknown_labels: BTreeMap<String, BTreeMap<String, usize>>,
    /// Wall time of scoring, in seconds.
    pub seconds: f64,
    /// The model's id (checksum prefix).
    pub model_id: String,
}

/// Per comment and evaluated head: predicted label index and its confidence.
pub struct Scored {
    /// `[comment][head]` (predicted, confidence), heads in the data's order.
    pub per_comment: Vec<Vec<(u32, f32)>>,
}

/// Scores every comment of `set` with `model`, in parallel, for the heads of the set.
pub fn score(model: &Model, set: &LabeledSet) -> Result<Scored> {
    let linear = &model.linear;
    let mut offsets = Vec::new();
    for head in &set.heads {
        let Some(h) = linear.heads.iter().position(|m| &m.name == head) else {
            let known: Vec<&str> = linear.heads.iter().map(|h| h.name.as_str()).collect();
            return Err(Error::Config(format!(
                "the model has no head `{head}`; its heads are {}",
                known.join(", ")
            )));
        };
        let offset: usize = linear.heads[..h].iter().map(|x| x.labels.len()).sum();
        offsets.push((h, offset));
    }
    let per_comment = set
        .records
        .par_iter()
        .map_init(Scratch::default, |scratch, record| {
            linear.score(&record.text, scratch);
            linear.decode(&scratch.probabilities, &mut scratch.chosen);
            offsets
                .iter()
                .map(|&(h, offset)| {
                    let best = scratch.chosen[h];
                    (best as u32, scratch.probabilities[offset + best])
                })
                .collect()
        })
        .collect();
    Ok(Scored { per_comment })
}

/// Evaluates `model` on `set`; the set's head names must be heads of the model.
pub fn evaluate(model: &Model, set: &LabeledSet) -> Result<Evaluation> {
    let started = Instant::now();
    let scored = score(model, set)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut heads = Vec::new();
    let mut unknown_labels = BTreeMap::new();
    for (j, head) in set.heads.iter().enumerate() {
        let model_head = model
            .linear
            .heads
            .iter()
            .find(|h| &h.name == head)
            .expect("score checked the head exists");
        let index: BTreeMap<&str, u32> = model_head
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i as u32))
            .collect();
        let mut unknown: Vec<String> = Vec::new();
        let mut unknown_counts: BTreeMap<String, usize> = BTreeMap::new();
        let gold: Vec<u32> = set
            .records
            .iter()
            .map(|r| {
                let label = r.labels[j].as_str();
                index.get(label).copied().unwrap_or_else(|| {
                    *unknown_counts.entry(label.to_string()).or_default() += 1;
                    let position = unknown.iter().position(|u| u == label).unwrap_or_else(|| {
                        unknown.push(label.to_string());
                        unknown.len() - 1
                    });
                    (model_head.labels.len() + position) as u32
                })
            })
            .collect();
        let predicted: Vec<u32> = scored.per_comment.iter().map(|p| p[j].0).collect();
        let confidence: Vec<f32> = scored.per_comment.iter().map(|p| p[j].1).collect();
        heads.push(evaluate_head(
            head,
            &model_head.labels,
            &gold,
            &predicted,
            &confidence,
            &unknown,
        ));
        if !unknown_counts.is_empty() {
            unknown_labels.insert(head.clone(), unknown_counts);
        }
    }
    Ok(Evaluation {
        n: set.records.len(),
        heads,
        unknown_labels,
        seconds,
        model_id: model.info.id.clone(),
    })
}
