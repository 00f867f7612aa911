//! The fastText-style design, kept to be measured against the shipped one: a low-rank embedding bag shared by every
//! head and trained jointly, over the same normalised, hashed TF-IDF features as [`crate::fit`].
//!
//! A comment's hidden vector is `h = Σ v_r · E[r]` (E: rows × dim, shared); each head is a small softmax layer
//! `W_h · h + b_h` (k × dim). One SGD step back-propagates every head's class-weighted cross-entropy into its own
//! layer and, summed, into the rows of E the comment uses. Early stopping, epochs and the refit on every comment
//! follow the full-rank trainer, so the two designs differ only in the rank and the sharing of the weights.
//! `benches/src/bin/designs.rs` trains both on one split and reports quality and scoring speed side by side
//! (RESULTS.md, "Full rank vs low rank"); the full-rank design won on quality and ships.

use datasets::LabeledSet;
use models::classifier::{UNSEEN, argmax, first_char_row, softmax_in_place, tfidf_from_rows};
use models::features::{FeatureConfig, FeatureScratch, Featurizer};
use models::normalize::{NormalizeScratch, Normalizer, NormalizerConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::fit::{
    Encoded, TrainConfig, Vectors, Vocabulary, class_weights, encode_head, hash_all,
    validation_split, vocabulary_of,
};
use crate::{Error, Result};

/// Choices of the low-rank design besides the shared [`TrainConfig`] (features, seed, epochs, validation).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LowRankConfig {
    /// Width of the shared embedding.
    pub dim: usize,
    /// Initial learning rate (decays linearly to 0 over the maximum epochs), as fastText's `-lr`.
    pub learning_rate: f32,
}

/// One head of a low-rank model.
#[derive(Debug, Clone)]
pub struct LowRankHead {
    /// Head name.
    pub name: String,
    /// Label ids in column order.
    pub labels: Vec<String>,
    /// k × dim.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// A trained low-rank model: vocabulary, shared embedding and one small layer per head.
#[derive(Debug, Clone)]
pub struct LowRankModel {
    normalizer: NormalizerConfig,
    features: FeatureConfig,
    row_of_bucket: Vec<u32>,
    idf: Vec<f32>,
    dim: usize,
    /// rows × dim.
    embedding: Vec<f32>,
    /// The heads, in the data's order.
    pub heads: Vec<LowRankHead>,
}

/// Reusable buffers for scoring, so that the hot path does not allocate.
#[derive(Debug, Default)]
pub struct LowRankScratch {
    normalized: String,
    normalize: NormalizeScratch,
    features: FeatureScratch,
    rows: Vec<u32>,
    vector: Vec<(u32, f32)>,
    hidden: Vec<f32>,
    /// Per-head probabilities, concatenated in head order, after [`LowRankModel::score`].
    pub probabilities: Vec<f32>,
}

/// What low-rank training reports.
#[derive(Debug, Clone, Serialize)]
pub struct LowRankReport {
    /// Epochs run in the validation run.
    pub epochs: usize,
    /// Epoch with the best mean validation macro-F1.
    pub best_epoch: usize,
    /// Mean validation macro-F1 over heads at the best epoch.
    pub validation_macro_f1: f64,
    /// Wall time, in seconds.
    pub seconds: f64,
}

impl LowRankModel {
    /// Bytes of the weights (embedding and heads) at f32.
    pub fn weight_bytes(&self) -> usize {
        4 * (self.embedding.len()
            + self
                .heads
                .iter()
                .map(|h| h.weights.len() + h.bias.len())
                .sum::<usize>())
    }

    /// Scores `text` into `scratch.probabilities`: normalise, hash, TF-IDF, embed, every head's softmax.
    pub fn score(&self, text: &str, scratch: &mut LowRankScratch) {
        let normalizer = Normalizer::new(self.normalizer);
        normalizer.normalize_into(text, &mut scratch.normalized, &mut scratch.normalize);
        let featurizer = Featurizer::new(self.features);
        scratch.rows.clear();
        let (rows, row_of_bucket) = (&mut scratch.rows, &self.row_of_bucket);
        featurizer.for_each(&scratch.normalized, &mut scratch.features, |bucket, _| {
            let row = row_of_bucket[bucket as usize];
            if row != UNSEEN {
                rows.push(row);
            }
        });
        let first_char = first_char_row(&self.row_of_bucket, featurizer.first_char_bucket());
        tfidf_from_rows(
            &mut scratch.rows,
            &self.idf,
            first_char,
            &mut scratch.vector,
        );
        self.embed(scratch.vector.iter().copied(), &mut scratch.hidden);
        scratch.probabilities.clear();
        for head in &self.heads {
            let start = scratch.probabilities.len();
            head_logits(
                &head.weights,
                &head.bias,
                &scratch.hidden,
                &mut scratch.probabilities,
            );
            softmax_in_place(&mut scratch.probabilities[start..], 1.0);
        }
    }

    /// The most probable label index of every head for the last scored comment.
    pub fn chosen(&self, scratch: &LowRankScratch) -> Vec<usize> {
        let mut at = 0;
        self.heads
            .iter()
            .map(|h| {
                let best = argmax(&scratch.probabilities[at..at + h.labels.len()]);
                at += h.labels.len();
                best
            })
            .collect()
    }

    fn embed(&self, vector: impl Iterator<Item = (u32, f32)>, hidden: &mut Vec<f32>) {
        embed_into(&self.embedding, self.dim, vector, hidden);
    }
}

fn embed_into(
    embedding: &[f32],
    dim: usize,
    vector: impl Iterator<Item = (u32, f32)>,
    hidden: &mut Vec<f32>,
) {
    hidden.clear();
    hidden.resize(dim, 0.0);
    for (row, value) in vector {
        let e = &embedding[row as usize * dim..(row as usize + 1) * dim];
        for (h, e) in hidden.iter_mut().zip(e) {
            *h += value * e;
        }
    }
}

/// Appends the logits of a head layer (`weights`: labels × dim, one `bias` per label) for `hidden` to `out`;
/// training, validation and scoring all go through it.
fn head_logits(weights: &[f32], bias: &[f32], hidden: &[f32], out: &mut Vec<f32>) {
    let dim = hidden.len();
    for (c, b) in bias.iter().enumerate() {
        let w = &weights[c * dim..(c + 1) * dim];
        out.push(b + w.iter().zip(hidden).map(|(w, h)| w * h).sum::<f32>());
    }
}

/// Trains the low-rank design on every head of `set`: a validation run with early stopping on the mean
/// macro-F1 of the heads, then (if `config.refit`) the same number of epochs on every comment.
pub fn fit_low_rank(
    set: &LabeledSet,
    config: &TrainConfig,
    low_rank: LowRankConfig,
) -> Result<(LowRankModel, LowRankReport)> {
    let started = std::time::Instant::now();
    if set.heads.is_empty() || set.records.len() < 10 || low_rank.dim == 0 {
        return Err(Error::Config(
            "low-rank training needs labeled comments (≥ 10), a head and dim ≥ 1".into(),
        ));
    }
    let encoded: Vec<Encoded> = (0..set.heads.len()).map(|h| encode_head(set, h)).collect();
    let (fit_ids, validation_ids) = validation_split(set, config);
    let buckets = hash_all(set, config);
    let vocabulary = vocabulary_of(&buckets, config, &fit_ids);
    let run = Trainer {
        config,
        low_rank,
        encoded: &encoded,
        vectors: &vocabulary.vectors,
        rows: vocabulary.idf.len(),
    }
    .train(&fit_ids, &validation_ids, config.epochs);
    let report_epochs = run.epochs;
    let best_epoch = run.best_epoch;
    let validation_macro_f1 = run.best_f1;
    let (vocabulary, run) = if config.refit && validation_ids != fit_ids {
        let all: Vec<usize> = (0..set.records.len()).collect();
        let vocabulary = vocabulary_of(&buckets, config, &all);
        let run = Trainer {
            config,
            low_rank,
            encoded: &encoded,
            vectors: &vocabulary.vectors,
            rows: vocabulary.idf.len(),
        }
        .train(&all, &[], best_epoch.max(1));
        (vocabulary, run)
    } else {
        (vocabulary, run)
    };
    let Vocabulary {
        row_of_bucket, idf, ..
    } = vocabulary;
    let model = LowRankModel {
        normalizer: config.normalizer,
        features: config.features,
        row_of_bucket,
        idf,
        dim: low_rank.dim,
        embedding: run.embedding,
        heads: encoded
            .iter()
            .zip(&set.heads)
            .zip(run.heads)
            .map(|((e, name), (weights, bias))| LowRankHead {
                name: name.clone(),
                labels: e.labels.clone(),
                weights,
                bias,
            })
            .collect(),
    };
    Ok((
        model,
        LowRankReport {
            epochs: report_epochs,
            best_epoch,
            validation_macro_f1,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

struct Trainer<'a> {
    config: &'a TrainConfig,
    low_rank: LowRankConfig,
    encoded: &'a [Encoded],
    vectors: &'a Vectors,
    rows: usize,
}

struct Run {
    embedding: Vec<f32>,
    /// Per head: weights (k × dim) and bias.
    heads: Vec<(Vec<f32>, Vec<f32>)>,
    epochs: usize,
    best_epoch: usize,
    best_f1: f64,
}

impl Trainer<'_> {
    /// Joint SGD over every head; with validation comments, keeps the epoch with the best mean macro-F1 and stops
    /// after `patience` epochs without progress.
    fn train(&self, fit_ids: &[usize], validation_ids: &[usize], epochs: usize) -> Run {
        let dim = self.low_rank.dim;
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.config.seed);
        // fastText's initialisation: a small uniform embedding, zero output layers.
        let bound = 1.0 / dim as f32;
        let mut embedding: Vec<f32> = (0..self.rows * dim)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let mut heads: Vec<(Vec<f32>, Vec<f32>)> = self
            .encoded
            .iter()
            .map(|e| (vec![0.0; e.labels.len() * dim], vec![0.0; e.labels.len()]))
            .collect();
        let class_weights: Vec<Vec<f32>> = self
            .encoded
            .iter()
            .map(|e| class_weights(e, fit_ids, e.labels.len(), self.config.class_weight))
            .collect();
        let total_steps = (epochs * fit_ids.len()).max(1) as f32;
        let mut order = fit_ids.to_vec();
        let mut hidden = Vec::with_capacity(dim);
        let mut grad_hidden = vec![0.0f32; dim];
        let mut logits = Vec::new();
        let mut best: Option<Run> = None;
        let mut since_best = 0;
        let mut epochs_run = 0;
        for epoch in 1..=epochs {
            order.shuffle(&mut rng);
            for (n, &i) in order.iter().enumerate() {
                let step = (epoch - 1) * order.len() + n;
                let lr = self.low_rank.learning_rate * (1.0 - step as f32 / total_steps).max(0.0);
                let (rows, values) = self.vectors.doc(i);
                embed_into(
                    &embedding,
                    dim,
                    rows.iter().copied().zip(values.iter().copied()),
                    &mut hidden,
                );
                grad_hidden.fill(0.0);
                for (h, (weights, bias)) in heads.iter_mut().enumerate() {
                    let k = bias.len();
                    logits.clear();
                    head_logits(weights, bias, &hidden, &mut logits);
                    softmax_in_place(&mut logits, 1.0);
                    let target = self.encoded[h].targets[i] as usize;
                    logits[target] -= 1.0;
                    let cw = class_weights[h][target];
                    for c in 0..k {
                        let g = cw * logits[c];
                        let w = &mut weights[c * dim..(c + 1) * dim];
                        for ((w, gh), x) in w.iter_mut().zip(grad_hidden.iter_mut()).zip(&hidden) {
                            *gh += g * *w;
                            *w -= lr * g * x;
                        }
                        bias[c] -= lr * g;
                    }
                }
                for (&r, &v) in rows.iter().zip(values) {
                    let e = &mut embedding[r as usize * dim..(r as usize + 1) * dim];
                    for (e, g) in e.iter_mut().zip(&grad_hidden) {
                        *e -= lr * v * g;
                    }
                }
            }
            epochs_run = epoch;
            if validation_ids.is_empty() {
                continue;
            }
            let f1 = self.validation_macro_f1(&embedding, &heads, validation_ids);
            if best.as_ref().is_none_or(|b| f1 > b.best_f1 + 1e-9) {
                best = Some(Run {
                    embedding: embedding.clone(),
                    heads: heads.clone(),
                    epochs: epoch,
                    best_epoch: epoch,
                    best_f1: f1,
                });
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= self.config.patience {
                    break;
                }
            }
        }
        match best {
            Some(best) => Run {
                epochs: epochs_run,
                ..best
            },
            None => Run {
                embedding,
                heads,
                epochs: epochs_run,
                best_epoch: epochs_run,
                best_f1: f64::NAN,
            },
        }
    }

    fn validation_macro_f1(
        &self,
        embedding: &[f32],
        heads: &[(Vec<f32>, Vec<f32>)],
        ids: &[usize],
    ) -> f64 {
        let dim = self.low_rank.dim;
        let mut hidden = Vec::with_capacity(dim);
        let mut logits = Vec::new();
        let mut predicted: Vec<Vec<u32>> = vec![Vec::with_capacity(ids.len()); heads.len()];
        for &i in ids {
            let (rows, values) = self.vectors.doc(i);
            embed_into(
                embedding,
                dim,
                rows.iter().copied().zip(values.iter().copied()),
                &mut hidden,
            );
            for (h, (weights, bias)) in heads.iter().enumerate() {
                logits.clear();
                head_logits(weights, bias, &hidden, &mut logits);
                predicted[h].push(argmax(&logits) as u32);
            }
        }
        let total: f64 = self
            .encoded
            .iter()
            .zip(&predicted)
            .map(|(e, p)| {
                let gold: Vec<u32> = ids.iter().map(|&i| e.targets[i]).collect();
                crate::metrics::macro_f1(&gold, p, e.labels.len())
            })
            .sum();
        total / self.encoded.len() as f64
    }
}
