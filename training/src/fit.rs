//! Fitting the fast classifier: vocabulary and IDF, one multinomial logistic head per label set trained by SGD
//! (heads in parallel with rayon), early stopping, temperature calibration, review thresholds and parent links.
//!
//! Each head minimises the class-weighted mean cross-entropy plus `l2/2·‖W‖²` by plain SGD with a linearly
//! decaying learning rate. L2 decay is applied lazily through a scale factor (W_true = scale · W), so an update
//! touches only the rows of the comment's features, which keeps an epoch proportional to the non-zeros.
//! Heads are independent, so they train concurrently without sharing memory (synchronous by construction).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use datasets::LabeledSet;
use models::Taxonomy;
use models::artifact::{Model, ModelInfo};
use models::classifier::{Head, LinearModel, ParentLink, Scratch, UNSEEN, tfidf_from_rows};
use models::features::{FeatureConfig, FeatureScratch, Featurizer};
use models::normalize::{NormalizeScratch, Normalizer, NormalizerConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::metrics::{HeadMetrics, evaluate_head};
use crate::sgd::{EpochInputs, HeadWeights, SgdSchedule, logits_into};
use crate::{Error, Result};

/// How classes are weighted in the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every comment counts the same.
    None,
    /// Weight `n / (k · n_c)`, as scikit-learn's `balanced`.
    Balanced,
    /// The square root of the balanced weight: a middle ground for skewed heads.
    Sqrt,
}

/// Everything that shapes a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed for the validation split and the SGD order.
    pub seed: u64,
    /// Normaliser choices.
    pub normalizer: NormalizerConfig,
    /// Featuriser choices.
    pub features: FeatureConfig,
    /// Maximum epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation macro-F1.
    pub patience: usize,
    /// Initial SGD learning rate (decays linearly to 0 over the maximum epochs).
    pub learning_rate: f32,
    /// L2 regularisation strength per comment.
    pub l2: f32,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// Share of the training data held out for early stopping, calibration and thresholds.
    pub validation_fraction: f64,
    /// Precision targeted by the per-label review thresholds.
    pub target_precision: f32,
    /// Features seen in fewer training comments than this are dropped.
    pub min_df: u32,
    /// After choosing epochs, temperature and thresholds on the validation split, train the final weights again
    /// on every comment (validation included) for the chosen number of epochs. Small corpora gain the most.
    pub refit: bool,
    /// How one head's SGD epoch uses the cores (heads always train concurrently).
    #[serde(default)]
    pub sgd: SgdSchedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            normalizer: NormalizerConfig::default(),
            features: FeatureConfig::default(),
            epochs: 30,
            patience: 4,
            learning_rate: 0.4,
            l2: 1e-6,
            class_weight: ClassWeight::Balanced,
            validation_fraction: 0.1,
            target_precision: 0.9,
            min_df: 1,
            refit: true,
            sgd: SgdSchedule::Sequential,
        }
    }
}

/// What training reports besides the model.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Comments used to fit weights.
    pub n_fit: usize,
    /// Comments held out for validation.
    pub n_validation: usize,
    /// Rows (distinct hashed features kept).
    pub rows: usize,
    /// Per head: epochs run, best epoch, temperature, validation metrics.
    pub heads: Vec<HeadReport>,
    /// Parent links found (child head, parent head).
    pub parents: Vec<(String, String)>,
    /// Wall time of the whole fit, in seconds.
    pub seconds: f64,
    /// Wall time per phase, in seconds: normalise+hash, vocabulary+vectors, heads (validation run), refit.
    pub phase_seconds: [f64; 4],
}

/// Training facts of one head.
#[derive(Debug, Clone, Serialize)]
pub struct HeadReport {
    /// Head name.
    pub head: String,
    /// Epochs run.
    pub epochs: usize,
    /// Epoch with the best validation macro-F1 (1-based).
    pub best_epoch: usize,
    /// Fitted temperature.
    pub temperature: f32,
    /// Metrics on the validation split (after calibration and parent constraints).
    pub validation: HeadMetrics,
}

/// Called with progress events so the CLI can draw a bar; the library prints nothing.
pub trait Progress: Sync {
    /// One epoch of one head has finished.
    fn epoch(&self, head: &str, epoch: usize, validation_macro_f1: f64);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn epoch(&self, _: &str, _: usize, _: f64) {}
}

/// Every comment as sparse TF-IDF rows, shared by every head.
pub(crate) struct Vectors {
    indptr: Vec<usize>,
    rows: Vec<u32>,
    values: Vec<f32>,
}

impl Vectors {
    pub(crate) fn doc(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[i]..self.indptr[i + 1];
        (&self.rows[range.clone()], &self.values[range])
    }
}

/// The features kept at training and every comment's vector.
pub(crate) struct Vocabulary {
    pub(crate) row_of_bucket: Vec<u32>,
    pub(crate) idf: Vec<f32>,
    /// Number of fitting comments each row occurs in.
    pub(crate) df: Vec<u32>,
    pub(crate) vectors: Vectors,
}

/// Normalises and hashes every comment once (in parallel), keeps the features of the fitting comments (as
/// scikit-learn fits its vectoriser on the training part only) and vectorises every comment.
pub(crate) fn vocabulary(set: &LabeledSet, config: &TrainConfig, fit_ids: &[usize]) -> Vocabulary {
    vocabulary_of(&hash_all(set, config), config, fit_ids)
}

/// Normalises and hashes every comment (in parallel): the buckets of its n-grams, in text order.
pub(crate) fn hash_all(set: &LabeledSet, config: &TrainConfig) -> Vec<Vec<u32>> {
    let normalizer = Normalizer::new(config.normalizer);
    let featurizer = Featurizer::new(config.features);
    set.records
        .par_iter()
        .map_init(
            || {
                (
                    String::new(),
                    NormalizeScratch::default(),
                    FeatureScratch::default(),
                )
            },
            |(text, norm, feats), record| {
                normalizer.normalize_into(&record.text, text, norm);
                let mut out = Vec::new();
                featurizer.for_each(text, feats, |b, _| out.push(b));
                out
            },
        )
        .collect()
}

/// The vocabulary of the comments `fit_ids` over already hashed comments, and every comment's vector.
pub(crate) fn vocabulary_of(
    buckets: &[Vec<u32>],
    config: &TrainConfig,
    fit_ids: &[usize],
) -> Vocabulary {
    let featurizer = Featurizer::new(config.features);
    // Document frequency per bucket; `last_doc` avoids counting a bucket twice in one comment without sorting.
    let table = config.features.table_size();
    let mut df_of_bucket = vec![0u32; table];
    let mut last_doc = vec![u32::MAX; table];
    for &i in fit_ids {
        for &b in &buckets[i] {
            let b = b as usize;
            if last_doc[b] != i as u32 {
                last_doc[b] = i as u32;
                df_of_bucket[b] += 1;
            }
        }
    }
    drop(last_doc);
    let kept: Vec<(u32, u32)> = df_of_bucket
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n >= config.min_df.max(1))
        .map(|(b, &n)| (b as u32, n))
        .collect();
    let mut row_of_bucket = vec![UNSEEN; config.features.table_size()];
    let n_fit = fit_ids.len() as f32;
    let mut idf = Vec::with_capacity(kept.len());
    for (row, &(bucket, n)) in kept.iter().enumerate() {
        row_of_bucket[bucket as usize] = row as u32;
        idf.push(((1.0 + n_fit) / (1.0 + n as f32)).ln() + 1.0);
    }
    let first_char =
        models::classifier::first_char_row(&row_of_bucket, featurizer.first_char_bucket());
    let vectors = vectorize_all(buckets, &row_of_bucket, &idf, first_char);
    Vocabulary {
        row_of_bucket,
        idf,
        df: kept.iter().map(|&(_, n)| n).collect(),
        vectors,
    }
}

/// Label ids of one head as column indices.
pub(crate) struct Encoded {
    pub(crate) labels: Vec<String>,
    pub(crate) targets: Vec<u32>,
}

/// Trains a model on `set` (every head of the set) and evaluates it on a held-out part of it.
pub fn fit(
    set: &LabeledSet,
    config: &TrainConfig,
    taxonomy: Option<&Taxonomy>,
    progress: &dyn Progress,
) -> Result<(Model, TrainReport)> {
    let started = Instant::now();
    config.features.validate().map_err(Error::Config)?;
    if set.heads.is_empty() {
        return Err(Error::Config("the data has no label columns".into()));
    }
    if set.records.len() < 10 {
        return Err(Error::Config(format!(
            "need at least 10 labeled comments to train, got {}",
            set.records.len()
        )));
    }
    let encoded: Vec<Encoded> = (0..set.heads.len()).map(|h| encode_head(set, h)).collect();
    for (head, e) in set.heads.iter().zip(&encoded) {
        if e.labels.len() < 2 {
            return Err(Error::Config(format!(
                "head `{head}` has a single label `{}`: nothing to learn",
                e.labels[0]
            )));
        }
    }

    let (fit_ids, validation_ids) = validation_split(set, config);

    let mut phase = Instant::now();
    let mut phase_seconds = [0.0; 4];
    let mut lap = |slot: usize| {
        phase_seconds[slot] = phase.elapsed().as_secs_f64();
        phase = Instant::now();
    };
    let buckets = hash_all(set, config);
    lap(0);
    let Vocabulary {
        row_of_bucket,
        idf,
        vectors,
        ..
    } = vocabulary_of(&buckets, config, &fit_ids);
    lap(1);

    // Train the heads concurrently; each owns its weights.
    let trained: Vec<TrainedHead> = encoded
        .par_iter()
        .enumerate()
        .map(|(h, e)| {
            train_head(
                &set.heads[h],
                e,
                &vectors,
                &fit_ids,
                &validation_ids,
                idf.len(),
                config,
                config.seed.wrapping_add(h as u64),
                progress,
            )
        })
        .collect();

    lap(2);
    let parents = find_parents(&encoded, &fit_ids);
    let mut heads: Vec<Head> = Vec::with_capacity(encoded.len());
    for (h, (e, t)) in encoded.iter().zip(&trained).enumerate() {
        heads.push(Head {
            name: set.heads[h].clone(),
            labels: e.labels.clone(),
            temperature: t.temperature,
            thresholds: vec![0.0; e.labels.len()],
            parent: parents.get(&h).cloned(),
        });
    }
    let linear = assemble(config, row_of_bucket, idf, &trained, heads);

    // Thresholds and validation metrics on the final, calibrated and constrained probabilities.
    let validation_probs = predict_rows(&linear, &vectors, &validation_ids);
    // Decoded once per comment: with a parent link, a head's choice depends on the others.
    let validation_chosen: Vec<Vec<usize>> = validation_probs
        .iter()
        .map(|p| {
            let mut chosen = Vec::new();
            linear.decode(p, &mut chosen);
            chosen
        })
        .collect();
    let mut linear = linear;
    let mut head_reports = Vec::new();
    let mut offset = 0;
    for (h, e) in encoded.iter().enumerate() {
        let k = e.labels.len();
        let (predicted, confidence): (Vec<u32>, Vec<f32>) = validation_probs
            .iter()
            .zip(&validation_chosen)
            .map(|(p, chosen)| (chosen[h] as u32, p[offset + chosen[h]]))
            .unzip();
        let gold: Vec<u32> = validation_ids.iter().map(|&i| e.targets[i]).collect();
        linear.heads[h].thresholds =
            review_thresholds(&predicted, &confidence, &gold, k, config.target_precision);
        let validation = evaluate_head(
            &set.heads[h],
            &e.labels,
            &gold,
            &predicted,
            &confidence,
            &[],
        );
        head_reports.push(HeadReport {
            head: set.heads[h].clone(),
            epochs: trained[h].epochs,
            best_epoch: trained[h].best_epoch,
            temperature: trained[h].temperature,
            validation,
        });
        offset += k;
    }

    if config.refit && validation_ids != fit_ids {
        linear = refit_all(
            set,
            &buckets,
            config,
            &encoded,
            &trained,
            linear.heads,
            progress,
        );
    }
    lap(3);

    let report = TrainReport {
        n_fit: fit_ids.len(),
        n_validation: validation_ids.len(),
        rows: linear.idf.len(),
        heads: head_reports,
        parents: parents
            .iter()
            .map(|(&c, p)| (set.heads[c].clone(), set.heads[p.head].clone()))
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
        phase_seconds,
    };
    let training = serde_json::json!({
        "data_fingerprint": fingerprint(set),
        "n_comments": set.records.len(),
        "n_fit": report.n_fit,
        "n_validation": report.n_validation,
        "config": config,
        "validation": report.heads.iter().map(|h| (h.head.clone(), serde_json::json!({
            "accuracy": h.validation.accuracy,
            "macro_f1": h.validation.macro_f1,
            "weighted_f1": h.validation.weighted_f1,
            "ece": h.validation.ece,
            "temperature": h.temperature,
            "best_epoch": h.best_epoch,
        }))).collect::<BTreeMap<_, _>>(),
        "seconds": report.seconds,
    });
    let model = Model {
        linear,
        info: ModelInfo {
            pqrs_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            taxonomy: taxonomy.cloned(),
            training,
            lineage: None,
            id: String::new(),
        },
    };
    Ok((model, report))
}

/// Retrains every head on all comments for its best number of epochs, keeping the heads' calibration, thresholds
/// and parent links from the validation run.
fn refit_all(
    set: &LabeledSet,
    buckets: &[Vec<u32>],
    config: &TrainConfig,
    encoded: &[Encoded],
    trained: &[TrainedHead],
    heads: Vec<Head>,
    progress: &dyn Progress,
) -> LinearModel {
    let all: Vec<usize> = (0..set.records.len()).collect();
    let Vocabulary {
        row_of_bucket,
        idf,
        vectors,
        ..
    } = vocabulary_of(buckets, config, &all);
    let refitted: Vec<TrainedHead> = encoded
        .par_iter()
        .enumerate()
        .map(|(h, e)| {
            let head_config = TrainConfig {
                epochs: trained[h].best_epoch.max(1),
                ..config.clone()
            };
            let mut t = train_head(
                &set.heads[h],
                e,
                &vectors,
                &all,
                &[],
                idf.len(),
                &head_config,
                config.seed.wrapping_add(h as u64),
                progress,
            );
            t.temperature = trained[h].temperature;
            t
        })
        .collect();
    assemble(config, row_of_bucket, idf, &refitted, heads)
}

/// The comments that fit the weights and the ones held out, stratified on the first head.
pub(crate) fn validation_split(set: &LabeledSet, config: &TrainConfig) -> (Vec<usize>, Vec<usize>) {
    let split = datasets::split::stratified(set, 0, config.validation_fraction, config.seed);
    if split.test.is_empty() {
        (split.train.clone(), split.train)
    } else {
        (split.train, split.test)
    }
}

/// SHA-256 over every comment's text and labels, in order: identifies the training data in the artifact.
pub fn fingerprint(set: &LabeledSet) -> String {
    let mut hasher = Sha256::new();
    for head in &set.heads {
        hasher.update(head.as_bytes());
        hasher.update([0]);
    }
    for r in &set.records {
        hasher.update(r.text.as_bytes());
        for l in &r.labels {
            hasher.update([0x1f]);
            hasher.update(l.as_bytes());
        }
        hasher.update([0x1e]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn encode_head(set: &LabeledSet, head: usize) -> Encoded {
    let labels: Vec<String> = set
        .records
        .iter()
        .map(|r| r.labels[head].clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: HashMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let targets = set
        .records
        .iter()
        .map(|r| index[r.labels[head].as_str()])
        .collect();
    Encoded { labels, targets }
}

fn vectorize_all(
    buckets: &[Vec<u32>],
    row_of_bucket: &[u32],
    idf: &[f32],
    first_char: u32,
) -> Vectors {
    let docs: Vec<Vec<(u32, f32)>> = buckets
        .par_iter()
        .map(|b| {
            let mut rows: Vec<u32> = b
                .iter()
                .map(|&b| row_of_bucket[b as usize])
                .filter(|&r| r != UNSEEN)
                .collect();
            let mut vector = Vec::new();
            tfidf_from_rows(&mut rows, idf, first_char, &mut vector);
            vector
        })
        .collect();
    let mut indptr = Vec::with_capacity(docs.len() + 1);
    indptr.push(0);
    let nnz: usize = docs.iter().map(Vec::len).sum();
    let mut rows = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    for doc in docs {
        for (r, v) in doc {
            rows.push(r);
            values.push(v);
        }
        indptr.push(rows.len());
    }
    Vectors {
        indptr,
        rows,
        values,
    }
}

struct TrainedHead {
    /// rows × k, already multiplied by the lazy scale.
    weights: Vec<f32>,
    bias: Vec<f32>,
    temperature: f32,
    epochs: usize,
    best_epoch: usize,
}

#[allow(clippy::too_many_arguments)]
fn train_head(
    name: &str,
    encoded: &Encoded,
    vectors: &Vectors,
    fit_ids: &[usize],
    validation_ids: &[usize],
    rows: usize,
    config: &TrainConfig,
    seed: u64,
    progress: &dyn Progress,
) -> TrainedHead {
    let k = encoded.labels.len();
    let class_weights = class_weights(encoded, fit_ids, k, config.class_weight);
    let mut head = HeadWeights::new(rows, k);
    let mut best = (
        f64::NEG_INFINITY,
        head.weights.clone(),
        head.bias.clone(),
        0usize,
    );
    let mut order = fit_ids.to_vec();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total_steps = (config.epochs * fit_ids.len()).max(1) as f32;
    let mut epochs_run = 0;
    let mut since_best = 0;
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        head.epoch(
            config.sgd,
            &EpochInputs {
                vectors,
                targets: &encoded.targets,
                class_weights: &class_weights,
                order: &order,
                first_step: (epoch - 1) * order.len(),
                total_steps,
                learning_rate: config.learning_rate,
                l2: config.l2,
            },
        );
        epochs_run = epoch;
        if validation_ids.is_empty() {
            // Refit on every comment for a number of epochs chosen before: no early stopping, keep the last.
            progress.epoch(name, epoch, f64::NAN);
            best = (f64::NAN, head.scaled(), head.bias.clone(), epoch);
            continue;
        }
        let f1 = validation_macro_f1(
            &head.weights,
            head.scale,
            &head.bias,
            k,
            vectors,
            validation_ids,
            &encoded.targets,
        );
        progress.epoch(name, epoch, f1);
        if f1 > best.0 + 1e-9 {
            best = (f1, head.scaled(), head.bias.clone(), epoch);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    let (_, weights, bias, best_epoch) = best;
    let temperature = if validation_ids.is_empty() {
        1.0
    } else {
        fit_temperature(
            &weights,
            &bias,
            k,
            vectors,
            validation_ids,
            &encoded.targets,
        )
    };
    TrainedHead {
        weights,
        bias,
        temperature,
        epochs: epochs_run,
        best_epoch,
    }
}

pub(crate) fn class_weights(
    encoded: &Encoded,
    fit_ids: &[usize],
    k: usize,
    kind: ClassWeight,
) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    for &i in fit_ids {
        counts[encoded.targets[i] as usize] += 1;
    }
    let n = fit_ids.len() as f32;
    counts
        .iter()
        .map(|&c| {
            let balanced = if c == 0 {
                1.0
            } else {
                n / (k as f32 * c as f32)
            };
            match kind {
                ClassWeight::None => 1.0,
                ClassWeight::Balanced => balanced,
                ClassWeight::Sqrt => balanced.sqrt(),
            }
        })
        .collect()
}

fn validation_macro_f1(
    weights: &[f32],
    scale: f32,
    bias: &[f32],
    k: usize,
    vectors: &Vectors,
    ids: &[usize],
    targets: &[u32],
) -> f64 {
    let mut logits = vec![0.0; k];
    let mut predicted = Vec::with_capacity(ids.len());
    let mut gold = Vec::with_capacity(ids.len());
    for &i in ids {
        let (rows, values) = vectors.doc(i);
        logits_into(weights, scale, bias, k, rows, values, &mut logits);
        predicted.push(models::classifier::argmax(&logits) as u32);
        gold.push(targets[i]);
    }
    crate::metrics::macro_f1(&gold, &predicted, k)
}

/// Temperature minimising the validation negative log-likelihood (golden-section search on log T).
fn fit_temperature(
    weights: &[f32],
    bias: &[f32],
    k: usize,
    vectors: &Vectors,
    ids: &[usize],
    targets: &[u32],
) -> f32 {
    let mut all_logits = Vec::with_capacity(ids.len() * k);
    let mut logits = vec![0.0; k];
    for &i in ids {
        let (rows, values) = vectors.doc(i);
        logits_into(weights, 1.0, bias, k, rows, values, &mut logits);
        all_logits.extend_from_slice(&logits);
    }
    let nll = |log_t: f64| {
        let t = log_t.exp() as f32;
        let mut total = 0.0f64;
        let mut p = vec![0.0f32; k];
        for (j, &i) in ids.iter().enumerate() {
            p.copy_from_slice(&all_logits[j * k..(j + 1) * k]);
            models::classifier::softmax_in_place(&mut p, t);
            total -= f64::from(p[targets[i] as usize].max(1e-12)).ln();
        }
        total
    };
    let (mut a, mut b) = ((0.02f64).ln(), (20.0f64).ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, mut fd) = (nll(c), nll(d));
    for _ in 0..40 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - ratio * (b - a);
            fc = nll(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + ratio * (b - a);
            fd = nll(d);
        }
    }
    (((a + b) / 2.0).exp()) as f32
}

/// A head is the child of another when each of its labels occurs with exactly one label of the other, and the
/// other has fewer labels (theme → area). Then decoding can keep the two consistent.
fn find_parents(encoded: &[Encoded], fit_ids: &[usize]) -> BTreeMap<usize, ParentLink> {
    let mut links = BTreeMap::new();
    for (c, child) in encoded.iter().enumerate() {
        let mut best: Option<(usize, Vec<u32>)> = None;
        for (p, parent) in encoded.iter().enumerate() {
            if p == c || parent.labels.len() >= child.labels.len() {
                continue;
            }
            let mut parent_of: Vec<Option<u32>> = vec![None; child.labels.len()];
            let mut consistent = true;
            for &i in fit_ids {
                let slot = &mut parent_of[child.targets[i] as usize];
                match slot {
                    None => *slot = Some(parent.targets[i]),
                    Some(existing) if *existing != parent.targets[i] => {
                        consistent = false;
                        break;
                    }
                    Some(_) => {}
                }
            }
            if consistent && parent_of.iter().all(Option::is_some) {
                let map: Vec<u32> = parent_of.into_iter().map(|p| p.expect("checked")).collect();
                // Prefer the parent with the most labels: the tightest constraint.
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| encoded[*b].labels.len() < parent.labels.len())
                {
                    best = Some((p, map));
                }
            }
        }
        if let Some((head, parent_of_label)) = best {
            links.insert(
                c,
                ParentLink {
                    head,
                    parent_of_label,
                },
            );
        }
    }
    // A parent may not itself have a parent: keep the links whose parent is a root.
    let children: Vec<usize> = links.keys().copied().collect();
    links.retain(|_, link| !children.contains(&link.head));
    links
}

fn assemble(
    config: &TrainConfig,
    row_of_bucket: Vec<u32>,
    idf: Vec<f32>,
    trained: &[TrainedHead],
    heads: Vec<Head>,
) -> LinearModel {
    let rows = idf.len();
    let classes: usize = heads.iter().map(|h| h.labels.len()).sum();
    let mut weights = vec![0.0f32; rows * classes];
    let mut bias = Vec::with_capacity(classes);
    let mut offset = 0;
    for (t, head) in trained.iter().zip(&heads) {
        let k = head.labels.len();
        for r in 0..rows {
            weights[r * classes + offset..r * classes + offset + k]
                .copy_from_slice(&t.weights[r * k..(r + 1) * k]);
        }
        bias.extend_from_slice(&t.bias);
        offset += k;
    }
    LinearModel::new(
        config.normalizer,
        config.features,
        row_of_bucket,
        idf,
        weights,
        bias,
        heads,
    )
}

/// Calibrated, constrained probabilities of pre-vectorised comments (same arithmetic as `LinearModel::score`).
fn predict_rows(model: &LinearModel, vectors: &Vectors, ids: &[usize]) -> Vec<Vec<f32>> {
    ids.par_iter()
        .map_init(Scratch::default, |scratch, &i| {
            let (rows, values) = vectors.doc(i);
            model.score_vector(rows, values, scratch);
            scratch.probabilities.clone()
        })
        .collect()
}

/// Per-label confidence thresholds: the lowest confidence at which the predictions of that label reach the
/// target precision on validation. Labels predicted fewer than 8 times use the head's pooled threshold.
pub fn review_thresholds(
    predicted: &[u32],
    confidence: &[f32],
    gold: &[u32],
    k: usize,
    target: f32,
) -> Vec<f32> {
    let threshold_of = |items: &mut Vec<(f32, bool)>| -> f32 {
        items.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut correct = 0usize;
        let mut threshold = 1.0f32;
        for (m, &(conf, ok)) in items.iter().enumerate() {
            correct += usize::from(ok);
            if correct as f32 / (m + 1) as f32 >= target {
                threshold = conf;
            }
        }
        threshold
    };
    let mut pooled: Vec<(f32, bool)> = (0..predicted.len())
        .map(|i| (confidence[i], predicted[i] == gold[i]))
        .collect();
    let pooled_threshold = threshold_of(&mut pooled);
    (0..k as u32)
        .map(|c| {
            let mut items: Vec<(f32, bool)> = (0..predicted.len())
                .filter(|&i| predicted[i] == c)
                .map(|i| (confidence[i], predicted[i] == gold[i]))
                .collect();
            if items.len() < 8 {
                pooled_threshold
            } else {
                threshold_of(&mut items)
            }
        })
        .collect()
}
