//! Training the deep tier: fused heads stacked on the fast model's out-of-fold probabilities and the encoder's
//! embeddings (linfa's multinomial logistic regression, L-BFGS on dense inputs), and the cascade policy chosen on
//! held-out comments for a target mean latency. Also the side-by-side evaluation of fast, deep and cascade.
//!
//! The encoder is not called here: callers pass one embedding per comment, so that the CLI can cache them and
//! tests can use a cheap stand-in.
//!
//! Why out-of-fold: the fast model has seen its training comments and is over-confident on them; the fused heads
//! must learn how far to trust it on comments it has *not* seen, as in serving.

use std::collections::HashMap;
use std::time::Instant;

use datasets::LabeledSet;
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use models::Model;
use models::classifier::Scratch;
use models::fusion::{CascadePolicy, DeepHead, DeepHeads, DeepScratch, fused_inputs};
use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::fit::{Silent, TrainConfig, fit};
use crate::metrics::macro_f1;
use crate::{Error, Result};

/// Choices of the deep tier.
#[derive(Debug, Clone, Serialize)]
pub struct DeepConfig {
    /// Folds for the out-of-fold fast probabilities.
    pub folds: usize,
    /// Share of the comments held out to choose the cascade policy and the prior correction.
    pub cascade_fraction: f64,
    /// Mean latency per comment the cascade may spend, in milliseconds.
    pub target_mean_ms: f64,
    /// Fast model latency per comment, in milliseconds (added to every comment's cost).
    pub fast_ms: f64,
    /// Encoder latency per comment, in milliseconds, as measured by the caller.
    pub encoder_ms: f64,
    /// L2 strength of the logistic regression.
    pub alpha: f64,
    /// L-BFGS iterations.
    pub max_iterations: u64,
}

impl Default for DeepConfig {
    fn default() -> Self {
        Self {
            folds: 4,
            cascade_fraction: 0.2,
            target_mean_ms: 3.0,
            fast_ms: 0.05,
            encoder_ms: 30.0,
            alpha: 1e-2,
            max_iterations: 150,
        }
    }
}

/// Macro-F1 of one head under the three tiers, on some comments.
#[derive(Debug, Clone, Serialize)]
pub struct TierScores {
    /// Head name.
    pub head: String,
    /// The fast model alone.
    pub fast: f64,
    /// The fused heads on every comment.
    pub deep: f64,
    /// The cascade: fused heads only where the policy sends the comment.
    pub cascade: f64,
}

/// Fast, deep and cascade side by side.
#[derive(Debug, Clone, Serialize)]
pub struct TierComparison {
    /// Comments compared.
    pub comments: usize,
    /// Per head.
    pub heads: Vec<TierScores>,
    /// Share of the comments the cascade sends to the deep tier.
    pub deep_share: f64,
}

/// What deep training reports.
#[derive(Debug, Clone, Serialize)]
pub struct DeepReport {
    /// Comments the fused heads were fitted on.
    pub n_stack: usize,
    /// Comments the cascade policy was chosen on.
    pub n_cascade: usize,
    /// The three tiers on the cascade comments.
    pub validation: TierComparison,
    /// Largest share of comments the latency budget allows to go deep.
    pub allowed_share: f64,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// Trains the deep tier for `fast` (trained on `set` with `fast_config`). `embeddings[i]` is the encoder's
/// embedding of `set.records[i]`.
pub fn fit_deep(
    set: &LabeledSet,
    fast_config: &TrainConfig,
    fast: &Model,
    embeddings: &[Vec<f32>],
    encoder_sha256: &str,
    config: &DeepConfig,
) -> Result<(DeepHeads, DeepReport)> {
    let started = Instant::now();
    if embeddings.len() != set.records.len() {
        return Err(Error::Config(format!(
            "{} embeddings for {} comments",
            embeddings.len(),
            set.records.len()
        )));
    }
    let dim = embeddings.first().map_or(0, Vec::len);
    if dim == 0 || embeddings.iter().any(|e| e.len() != dim) {
        return Err(Error::Config(
            "embeddings must all have the same, non-zero width".into(),
        ));
    }
    let layout = Layout::of(fast, set)?;
    let split =
        datasets::split::stratified(set, 0, config.cascade_fraction, fast_config.seed ^ 0xdee9);
    let (stack_ids, cascade_ids) = (split.train, split.test);
    if cascade_ids.is_empty() || stack_ids.len() < config.folds.max(2) * 5 {
        return Err(Error::Config(
            "too few comments to train a deep tier (need a few hundred)".into(),
        ));
    }

    // Out-of-fold fast probabilities for the stacking comments; a model of every stacking comment for the rest.
    let folds = config.folds.max(2);
    let mut stack_probabilities = vec![Vec::new(); set.records.len()];
    for fold in 0..folds {
        let (train_ids, held): (Vec<usize>, Vec<usize>) = {
            let (mut t, mut h) = (Vec::new(), Vec::new());
            for (n, &i) in stack_ids.iter().enumerate() {
                if n % folds == fold {
                    h.push(i)
                } else {
                    t.push(i)
                }
            }
            (t, h)
        };
        let (model, _) = fit(&set.subset(&train_ids), fast_config, None, &Silent)?;
        for i in held {
            stack_probabilities[i] = layout.probabilities(&model, &set.records[i].text);
        }
    }
    let (stack_model, _) = fit(&set.subset(&stack_ids), fast_config, None, &Silent)?;
    for &i in &cascade_ids {
        stack_probabilities[i] = layout.probabilities(&stack_model, &set.records[i].text);
    }

    let inputs: Vec<Vec<f32>> = (0..set.records.len())
        .map(|i| {
            let mut x = Vec::new();
            if !stack_probabilities[i].is_empty() {
                fused_inputs(&stack_probabilities[i], &embeddings[i], &mut x);
            }
            x
        })
        .collect();
    let n_inputs = layout.classes + dim;
    let (input_mean, input_scale) = standardisation(&inputs, &stack_ids, n_inputs);
    let standardised = |i: usize| -> Vec<f64> {
        inputs[i]
            .iter()
            .zip(&input_mean)
            .zip(&input_scale)
            .map(|((x, m), s)| f64::from((x - m) / s))
            .collect()
    };
    let x_stack = dense(&stack_ids, n_inputs, standardised);

    let mut heads = Vec::new();
    for (h, labels) in layout.labels.iter().enumerate() {
        let targets: Vec<Option<usize>> = set
            .records
            .iter()
            .map(|r| {
                labels
                    .iter()
                    .position(|l| *l == r.labels[layout.set_head[h]])
            })
            .collect();
        let rows: Vec<usize> = (0..stack_ids.len())
            .filter(|&n| targets[stack_ids[n]].is_some())
            .collect();
        let x = x_stack.select(ndarray::Axis(0), &rows);
        let y: Array1<usize> = rows
            .iter()
            .map(|&n| targets[stack_ids[n]].expect("filtered"))
            .collect();
        let fitted = MultiLogisticRegression::default()
            .alpha(config.alpha)
            .max_iterations(config.max_iterations)
            .fit(&Dataset::new(x, y.clone()))
            .map_err(|e| Error::Config(format!("deep head `{}`: {e}", layout.names[h])))?;
        let k = labels.len();
        let mut weights = vec![0.0f32; k * n_inputs];
        // Labels absent from the stacking comments can never be chosen by the deep tier.
        let mut bias = vec![-30.0f32; k];
        for (column, &class) in fitted.classes().iter().enumerate() {
            bias[class] = fitted.intercept()[column] as f32;
            for input in 0..n_inputs {
                weights[class * n_inputs + input] = fitted.params()[(input, column)] as f32;
            }
        }
        // Logistic regression fits the class priors of the stacking comments; subtracting part of their log
        // (chosen on held-out comments) trades majority-class accuracy for recall of the rare classes, which is
        // what macro-F1 and the delegates of small areas need.
        let mut counts = vec![0usize; k];
        for &t in y.iter() {
            counts[t] += 1;
        }
        let log_prior: Vec<f32> = counts
            .iter()
            .map(|&c| ((c.max(1)) as f32 / y.len() as f32).ln())
            .collect();
        heads.push((
            DeepHead {
                name: layout.names[h].clone(),
                labels: labels.clone(),
                weights,
                bias,
            },
            log_prior,
            targets,
        ));
    }

    let mut deep = DeepHeads {
        encoder_sha256: encoder_sha256.to_string(),
        embedding_dim: dim,
        fast_model_id: fast.info.id.clone(),
        fast_classes: layout.classes,
        input_mean,
        input_scale,
        heads: heads.iter().map(|(head, _, _)| head.clone()).collect(),
        cascade: CascadePolicy {
            min_fast_confidence: vec![0.0; layout.names.len()],
            validation_deep_share: 0.0,
            target_mean_ms: config.target_mean_ms,
            encoder_ms: config.encoder_ms,
        },
        training: serde_json::Value::Null,
    };
    // Prior correction per head, chosen on the cascade comments for the deep head's own macro-F1.
    for (h, (head, log_prior, targets)) in heads.iter().enumerate() {
        let mut best = (f64::NEG_INFINITY, 0.0f32);
        for tau in [0.0f32, 0.25, 0.5, 0.75, 1.0] {
            for (c, b) in deep.heads[h].bias.iter_mut().enumerate() {
                *b = head.bias[c] - tau * log_prior[c];
            }
            let f1 = head_macro_f1(
                &deep,
                &layout,
                h,
                &cascade_ids,
                targets,
                &stack_probabilities,
                embeddings,
            );
            if f1 > best.0 + 1e-9 {
                best = (f1, tau);
            }
        }
        for (c, b) in deep.heads[h].bias.iter_mut().enumerate() {
            *b = head.bias[c] - best.1 * log_prior[c];
        }
    }
    deep.validate().map_err(|e| Error::Config(e.to_string()))?;

    let allowed_share =
        ((config.target_mean_ms - config.fast_ms) / config.encoder_ms).clamp(0.0, 1.0);
    let gold: Vec<Vec<Option<usize>>> = heads.iter().map(|(_, _, t)| t.clone()).collect();
    let cases = Cases::new(
        fast,
        &deep,
        &cascade_ids,
        &gold,
        &stack_probabilities,
        embeddings,
    );
    let thresholds = cases.choose_policy(allowed_share);
    let validation = cases.compare(&thresholds);
    deep.cascade.min_fast_confidence = thresholds;
    deep.cascade.validation_deep_share = validation.deep_share;
    let report = DeepReport {
        n_stack: stack_ids.len(),
        n_cascade: cascade_ids.len(),
        validation,
        allowed_share,
        seconds: started.elapsed().as_secs_f64(),
    };
    deep.training = serde_json::json!({
        "config": config,
        "n_stack": report.n_stack,
        "n_cascade": report.n_cascade,
        "validation": report.validation,
        "allowed_share": allowed_share,
    });
    Ok((deep, report))
}

/// Fast, deep and cascade macro-F1 of `deep` stacked on `fast`, on a labeled test set with one embedding per
/// comment; the fast probabilities come from `fast` itself, as in serving.
pub fn compare_tiers(
    fast: &Model,
    deep: &DeepHeads,
    test: &LabeledSet,
    embeddings: &[Vec<f32>],
) -> Result<TierComparison> {
    let layout = Layout::of(fast, test)?;
    let ids: Vec<usize> = (0..test.records.len()).collect();
    let probabilities: Vec<Vec<f32>> = test
        .records
        .iter()
        .map(|r| layout.probabilities(fast, &r.text))
        .collect();
    let gold: Vec<Vec<Option<usize>>> = layout
        .labels
        .iter()
        .enumerate()
        .map(|(h, labels)| {
            test.records
                .iter()
                .map(|r| {
                    labels
                        .iter()
                        .position(|l| *l == r.labels[layout.set_head[h]])
                })
                .collect()
        })
        .collect();
    Ok(
        Cases::new(fast, deep, &ids, &gold, &probabilities, embeddings)
            .compare(&deep.cascade.min_fast_confidence),
    )
}

/// How the fast model's heads line up with the data's heads.
struct Layout {
    names: Vec<String>,
    labels: Vec<Vec<String>>,
    /// For each model head, its column in the labeled set.
    set_head: Vec<usize>,
    classes: usize,
}

impl Layout {
    fn of(fast: &Model, set: &LabeledSet) -> Result<Self> {
        let mut set_head = Vec::new();
        for head in &fast.linear.heads {
            set_head.push(set.head_index(&head.name).ok_or_else(|| {
                Error::Config(format!("the data has no labels for head `{}`", head.name))
            })?);
        }
        Ok(Self {
            names: fast.linear.heads.iter().map(|h| h.name.clone()).collect(),
            labels: fast.linear.heads.iter().map(|h| h.labels.clone()).collect(),
            set_head,
            classes: fast.linear.total_classes(),
        })
    }

    /// `model`'s probabilities for `text`, laid out by this layout's labels (a label `model` does not know gets 0).
    fn probabilities(&self, model: &Model, text: &str) -> Vec<f32> {
        let mut scratch = Scratch::default();
        model.linear.score(text, &mut scratch);
        let mut index: HashMap<(&str, &str), f32> = HashMap::new();
        let mut at = 0;
        for head in &model.linear.heads {
            for (label, p) in head.labels.iter().zip(&scratch.probabilities[at..]) {
                index.insert((head.name.as_str(), label.as_str()), *p);
            }
            at += head.labels.len();
        }
        self.names
            .iter()
            .zip(&self.labels)
            .flat_map(|(name, labels)| {
                labels
                    .iter()
                    .map(|l| {
                        index
                            .get(&(name.as_str(), l.as_str()))
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Mean and standard deviation of every input over the comments `ids` (a constant input gets scale 1).
fn standardisation(inputs: &[Vec<f32>], ids: &[usize], n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0.0f64; n];
    let mut square = vec![0.0f64; n];
    for &i in ids {
        for (j, &x) in inputs[i].iter().enumerate() {
            mean[j] += f64::from(x);
            square[j] += f64::from(x) * f64::from(x);
        }
    }
    let count = ids.len().max(1) as f64;
    let mean: Vec<f64> = mean.iter().map(|s| s / count).collect();
    let scale = square
        .iter()
        .zip(&mean)
        .map(|(s, m)| {
            let sd = (s / count - m * m).max(0.0).sqrt();
            if sd > 1e-6 { sd as f32 } else { 1.0 }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

fn dense(ids: &[usize], n: usize, row: impl Fn(usize) -> Vec<f64>) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((ids.len(), n));
    for (r, &i) in ids.iter().enumerate() {
        for (c, v) in row(i).into_iter().enumerate() {
            x[(r, c)] = v;
        }
    }
    x
}

fn head_macro_f1(
    deep: &DeepHeads,
    layout: &Layout,
    head: usize,
    ids: &[usize],
    targets: &[Option<usize>],
    probabilities: &[Vec<f32>],
    embeddings: &[Vec<f32>],
) -> f64 {
    let (mut scratch, mut out) = (DeepScratch::default(), Vec::new());
    let offset: usize = layout.labels[..head].iter().map(Vec::len).sum();
    let k = layout.labels[head].len();
    let (mut gold, mut predicted) = (Vec::new(), Vec::new());
    for &i in ids {
        let Some(t) = targets[i] else { continue };
        deep.score(&probabilities[i], &embeddings[i], &mut scratch, &mut out);
        gold.push(t as u32);
        predicted.push(models::classifier::argmax(&out[offset..offset + k]) as u32);
    }
    macro_f1(&gold, &predicted, k)
}

/// One held-out comment: both tiers' probabilities, the fast choice per head and the gold label per head.
struct Case {
    fast: Vec<f32>,
    deep: Vec<f32>,
    fast_chosen: Vec<usize>,
    /// Per head: the fast model's confidence in its choice.
    confidence: Vec<f32>,
    gold: Vec<Option<usize>>,
}

/// The held-out comments with both tiers' answers computed once, so that many cascade policies can be scored
/// without running the models again.
struct Cases<'a> {
    fast: &'a Model,
    deep: &'a DeepHeads,
    rows: Vec<Case>,
    names: Vec<String>,
    labels: Vec<usize>,
}

impl<'a> Cases<'a> {
    fn new(
        fast: &'a Model,
        deep: &'a DeepHeads,
        ids: &[usize],
        gold: &[Vec<Option<usize>>],
        probabilities: &[Vec<f32>],
        embeddings: &[Vec<f32>],
    ) -> Self {
        let mut scratch = DeepScratch::default();
        let rows = ids
            .iter()
            .map(|&i| {
                let mut fast_chosen = Vec::new();
                fast.linear.decode(&probabilities[i], &mut fast_chosen);
                let mut deep_probabilities = Vec::new();
                deep.score(
                    &probabilities[i],
                    &embeddings[i],
                    &mut scratch,
                    &mut deep_probabilities,
                );
                let mut at = 0;
                let confidence = deep
                    .heads
                    .iter()
                    .enumerate()
                    .map(|(h, head)| {
                        let c = probabilities[i][at + fast_chosen[h]];
                        at += head.labels.len();
                        c
                    })
                    .collect();
                Case {
                    fast: probabilities[i].clone(),
                    deep: deep_probabilities,
                    fast_chosen,
                    confidence,
                    gold: gold.iter().map(|g| g[i]).collect(),
                }
            })
            .collect();
        Self {
            fast,
            deep,
            rows,
            names: deep.heads.iter().map(|h| h.name.clone()).collect(),
            labels: deep.heads.iter().map(|h| h.labels.len()).collect(),
        }
    }

    /// Macro-F1 per head and the share of comments sent deep under per-head `thresholds` (`None`: every comment
    /// goes deep and takes the fused heads on every head, the "deep" tier alone).
    fn score(&self, thresholds: Option<&[f32]>) -> (Vec<f64>, f64) {
        let heads = self.labels.len();
        let mut gold = vec![Vec::new(); heads];
        let mut predicted = vec![Vec::new(); heads];
        let mut deep_count = 0;
        let (mut mixed, mut chosen) = (Vec::new(), Vec::new());
        for row in &self.rows {
            let decided = match thresholds {
                None => {
                    deep_count += 1;
                    self.fast.linear.decode(&row.deep, &mut chosen);
                    &chosen
                }
                Some(t) if row.confidence.iter().zip(t).any(|(c, t)| c < t) => {
                    deep_count += 1;
                    self.deep.cascade_probabilities_at(
                        t,
                        &row.fast,
                        &row.fast_chosen,
                        &row.deep,
                        &mut mixed,
                    );
                    self.fast.linear.decode(&mixed, &mut chosen);
                    &chosen
                }
                Some(_) => &row.fast_chosen,
            };
            for h in 0..heads {
                let Some(g) = row.gold[h] else { continue };
                gold[h].push(g as u32);
                predicted[h].push(decided[h] as u32);
            }
        }
        let f1 = (0..heads)
            .map(|h| macro_f1(&gold[h], &predicted[h], self.labels[h]))
            .collect();
        (f1, deep_count as f64 / self.rows.len().max(1) as f64)
    }

    /// Per-head confidence thresholds, from a grid of each head's confidence quantiles, that maximise the mean
    /// macro-F1 over heads with at most `allowed_share` of the comments sent deep (ties: the smaller share).
    fn choose_policy(&self, allowed_share: f64) -> Vec<f32> {
        let heads = self.labels.len();
        let grid: Vec<Vec<f32>> = (0..heads)
            .map(|h| {
                let mut c: Vec<f32> = self.rows.iter().map(|r| r.confidence[h]).collect();
                c.sort_by(f32::total_cmp);
                let mut values = vec![0.0];
                for q in [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5] {
                    if let Some(&v) =
                        c.get(((c.len() as f64 * q) as usize).min(c.len().saturating_sub(1)))
                    {
                        values.push(v + 1e-6);
                    }
                }
                values
            })
            .collect();
        let mut best = (f64::NEG_INFINITY, f64::INFINITY, vec![0.0; heads]);
        let mut choice = vec![0usize; heads];
        loop {
            let thresholds: Vec<f32> = choice
                .iter()
                .enumerate()
                .map(|(h, &c)| grid[h][c])
                .collect();
            let (f1, share) = self.score(Some(&thresholds));
            let mean = f1.iter().sum::<f64>() / heads as f64;
            if share <= allowed_share
                && (mean > best.0 + 1e-9 || ((mean - best.0).abs() <= 1e-9 && share < best.1))
            {
                best = (mean, share, thresholds);
            }
            // Next combination of the grid (an odometer over heads).
            let mut h = 0;
            loop {
                if h == heads {
                    return best.2;
                }
                choice[h] += 1;
                if choice[h] < grid[h].len() {
                    break;
                }
                choice[h] = 0;
                h += 1;
            }
        }
    }

    fn compare(&self, thresholds: &[f32]) -> TierComparison {
        let never = vec![f32::NEG_INFINITY; self.labels.len()];
        let (fast, _) = self.score(Some(&never));
        let (all_deep, _) = self.score(None);
        let (cascade, share) = self.score(Some(thresholds));
        TierComparison {
            comments: self.rows.len(),
            heads: self
                .names
                .iter()
                .enumerate()
                .map(|(h, name)| TierScores {
                    head: name.clone(),
                    fast: fast[h],
                    deep: all_deep[h],
                    cascade: cascade[h],
                })
                .collect(),
            deep_share: share,
        }
    }
}
