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
use models::encoder::GgufWeights;
use models::fusion::{
    CascadePolicy, DeepHead, DeepHeads, DeepScratch, chosen_confidences, fused_inputs,
};
use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::fit::{Silent, TrainConfig, fit};
use crate::metrics::{label_f1, macro_f1};
use crate::tune::{SoftmaxLayer, TopLayers, TuneConfig};
use crate::{Error, Result};

/// Choices of the deep tier.
#[derive(Debug, Clone, Serialize)]
pub struct DeepConfig {
    /// Folds for the out-of-fold fast probabilities.
    pub folds: usize,
    /// Share of the comments held out to choose the prior correction (and, with the out-of-fold stacking comments,
    /// the cascade policy).
    pub cascade_fraction: f64,
    /// Mean latency per comment the cascade may spend, in milliseconds.
    pub target_mean_ms: f64,
    /// Fast model latency per comment, in milliseconds (added to every comment's cost).
    pub fast_ms: f64,
    /// Encoder cost per comment, in milliseconds, given by the caller (a flag or a stored measurement): the budget
    /// depends on nothing measured during training, so the same inputs give the same policy.
    pub encoder_ms: f64,
    /// Where `encoder_ms` came from, recorded in the deep tier's training facts.
    pub encoder_ms_source: String,
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
            encoder_ms_source: "default".into(),
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
    /// 90 % paired bootstrap interval of `cascade - fast` over these comments.
    pub cascade_gain_interval: [f64; 2],
    /// Comments whose answer the cascade changed from the fast model's and got right.
    pub fixed: usize,
    /// Comments whose answer the cascade changed from the fast model's right one.
    pub broken: usize,
    /// Per label: how the cascade moved its F1. A macro-F1 gain made of fewer wrong guesses of one rare label
    /// (fixed ≈ broken) is not the same as a gain in understanding (fixed > broken), and only this shows which.
    pub labels: Vec<LabelShift>,
}

/// One label's F1 under the fast model and under the cascade.
#[derive(Debug, Clone, Serialize)]
pub struct LabelShift {
    /// The label.
    pub label: String,
    /// Comments whose gold label it is.
    pub comments: usize,
    /// F1 of the fast model's answers.
    pub fast: f64,
    /// F1 of the cascade's answers.
    pub cascade: f64,
}

/// Resamples behind [`TierScores::cascade_gain_interval`].
const BOOTSTRAP_ROUNDS: usize = 1000;

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
    /// Held-out comments the prior correction was chosen on.
    pub n_cascade: usize,
    /// Comments the cascade policy was chosen on: the held-out comments and the stacking comments, scored by
    /// fused heads fitted without their fold.
    pub n_policy: usize,
    /// The three tiers on the policy comments.
    pub validation: TierComparison,
    /// The three tiers on the held-out comments alone (fused heads and fast model fitted without them).
    pub holdout: TierComparison,
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
    out_of_fold_probabilities(
        set,
        &stack_ids,
        folds,
        fast_config,
        &layout,
        &mut stack_probabilities,
    )?;
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
    let targets = layout.gold(set);
    let heads = fit_heads(
        &layout,
        &stack_ids,
        &standardised,
        n_inputs,
        &targets,
        config,
    )?;

    let mut deep = DeepHeads {
        encoder_sha256: encoder_sha256.to_string(),
        embedding_dim: dim,
        fast_model_id: fast.info.id.clone(),
        fast_classes: layout.classes,
        input_mean: input_mean.clone(),
        input_scale: input_scale.clone(),
        heads: heads.iter().map(|f| f.head.clone()).collect(),
        cascade: CascadePolicy {
            min_fast_confidence: vec![0.0; layout.names.len()],
            validation_deep_share: 0.0,
            target_mean_ms: config.target_mean_ms,
            encoder_ms: config.encoder_ms,
        },
        training: serde_json::Value::Null,
        tuned: Vec::new(),
    };
    // Prior correction per head, chosen on the cascade comments for the deep head's own macro-F1.
    let mut taus = Vec::with_capacity(heads.len());
    for (h, fitted) in heads.iter().enumerate() {
        let mut best = (f64::NEG_INFINITY, 0.0f32);
        for tau in [0.0f32, 0.25, 0.5, 0.75, 1.0] {
            fitted.correct_prior(tau, &mut deep.heads[h]);
            let f1 = head_macro_f1(
                &deep,
                &layout,
                h,
                &cascade_ids,
                &targets[h],
                &stack_probabilities,
                embeddings,
            );
            if f1 > best.0 + 1e-9 {
                best = (f1, tau);
            }
        }
        fitted.correct_prior(best.1, &mut deep.heads[h]);
        taus.push(best.1);
    }
    deep.validate().map_err(|e| Error::Config(e.to_string()))?;

    // Fused-head probabilities for the policy: the final heads on the held-out comments, and on each fold of the
    // stacking comments heads fitted without that fold (with the same prior correction), so that the policy is
    // chosen on every training comment rather than on the held-out fifth alone.
    let mut deep_probabilities = vec![Vec::new(); set.records.len()];
    let mut scratch = DeepScratch::default();
    for &i in &cascade_ids {
        deep.score(
            &stack_probabilities[i],
            &embeddings[i],
            &mut scratch,
            &mut deep_probabilities[i],
        );
    }
    for fold in 0..folds {
        let (train_ids, held) = fold_split(&stack_ids, folds, fold);
        let fold_heads = fit_heads(
            &layout,
            &train_ids,
            &standardised,
            n_inputs,
            &targets,
            config,
        )?;
        let mut fold_deep = deep.clone();
        for ((fitted, tau), head) in fold_heads.iter().zip(&taus).zip(&mut fold_deep.heads) {
            *head = fitted.head.clone();
            fitted.correct_prior(*tau, head);
        }
        for i in held {
            fold_deep.score(
                &stack_probabilities[i],
                &embeddings[i],
                &mut scratch,
                &mut deep_probabilities[i],
            );
        }
    }
    let policy_ids: Vec<usize> = stack_ids.iter().chain(&cascade_ids).copied().collect();

    let allowed_share =
        ((config.target_mean_ms - config.fast_ms) / config.encoder_ms).clamp(0.0, 1.0);
    let policy_groups = validation_groups(set, &policy_ids).unwrap_or_else(|| {
        (0..stack_ids.len())
            .map(|n| fold_of(n, folds))
            .chain(std::iter::repeat_n(folds, cascade_ids.len()))
            .collect()
    });
    let cases = Cases::new(
        fast,
        &deep,
        &policy_ids,
        &policy_groups,
        &targets,
        &stack_probabilities,
        &deep_probabilities,
    );
    let thresholds = cases.choose_policy(allowed_share);
    let validation = cases.compare(&thresholds);
    let holdout = Cases::new(
        fast,
        &deep,
        &cascade_ids,
        &vec![0; cascade_ids.len()],
        &targets,
        &stack_probabilities,
        &deep_probabilities,
    )
    .compare(&thresholds);
    deep.cascade.min_fast_confidence = thresholds;
    deep.cascade.validation_deep_share = validation.deep_share;
    let report = DeepReport {
        n_stack: stack_ids.len(),
        n_cascade: cascade_ids.len(),
        n_policy: policy_ids.len(),
        validation,
        holdout,
        allowed_share,
        seconds: started.elapsed().as_secs_f64(),
    };
    deep.training = serde_json::json!({
        "config": config,
        "n_stack": report.n_stack,
        "n_cascade": report.n_cascade,
        "n_policy": report.n_policy,
        "validation": report.validation,
        "holdout": report.holdout,
        "allowed_share": allowed_share,
    });
    Ok((deep, report))
}

/// What deep training with a fine-tuned encoder reports besides [`DeepReport`].
#[derive(Debug, Clone, Serialize)]
pub struct TunedReport {
    /// Mean training loss of each epoch (summed over heads), tuning on the comments not held out.
    pub epoch_losses: Vec<f64>,
    /// The same for the refit on every comment (empty without [`TuneConfig::refit`]).
    pub refit_epoch_losses: Vec<f64>,
    /// Comments the shipped layers were tuned on.
    pub n_tuned_on: usize,
    /// Weight of the fast model's log-probabilities in the fused heads (0: the tuned heads alone; 1: their product
    /// with the fast model), chosen on the held-out comments.
    pub fast_weight: f32,
}

/// Trains the deep tier with the encoder's top `tune.layers` layers fine-tuned on the labelled history.
///
/// `states[i]` holds comment `i`'s hidden states after the frozen layers (`Encoder::states_through`) and
/// `encoder` is the base image the tuned layers start from. The layers and one softmax layer per head are trained
/// on the stacking comments; the held-out fifth (the latest comments when all are dated, see [`latest_held_out`]),
/// which neither they nor the fast model that scores it have seen, chooses how the fused heads weigh the fast
/// model's answer and the cascade thresholds. The fused heads are the tuned softmax layers, optionally multiplied
/// with the fast model's probabilities (a product of experts, which the fused-head format expresses as a weight on
/// the fast log-probabilities). With `tune.refit` the shipped layers and heads are then tuned again on every
/// comment and keep that policy; the validation figures reported are those of the layers tuned without the
/// held-out comments.
#[allow(clippy::too_many_arguments)]
pub fn fit_deep_tuned(
    set: &LabeledSet,
    fast_config: &TrainConfig,
    fast: &Model,
    encoder: &GgufWeights<'_>,
    states: &[Vec<f32>],
    encoder_sha256: &str,
    config: &DeepConfig,
    tune: &TuneConfig,
    progress: &dyn Fn(usize, usize, usize, f64),
) -> Result<(DeepHeads, DeepReport, TunedReport)> {
    let started = Instant::now();
    if states.len() != set.records.len() {
        return Err(Error::Config(format!(
            "{} encoder states for {} comments",
            states.len(),
            set.records.len()
        )));
    }
    let layout = Layout::of(fast, set)?;
    let (stack_ids, cascade_ids) =
        latest_held_out(set, config.cascade_fraction).unwrap_or_else(|| {
            let split = datasets::split::stratified(
                set,
                0,
                config.cascade_fraction,
                fast_config.seed ^ 0xdee9,
            );
            (split.train, split.test)
        });
    if cascade_ids.is_empty() || stack_ids.len() < 50 {
        return Err(Error::Config(
            "too few comments to train a deep tier (need a few hundred)".into(),
        ));
    }
    // The held-out comments are scored by a fast model that has not seen them, as the served model scores new
    // comments.
    let (stack_model, _) = fit(&set.subset(&stack_ids), fast_config, None, &Silent)?;
    let mut fast_probabilities = vec![Vec::new(); set.records.len()];
    for &i in &cascade_ids {
        fast_probabilities[i] = layout.probabilities(&stack_model, &set.records[i].text);
    }
    let targets = layout.gold(set);
    // Per head and comment, the confidence of a fast model that has not seen the comment: only weighting by the
    // fast model's doubt needs it, at the cost of `folds` more fast fits.
    let mut fast_confidence = Vec::new();
    if tune.doubt_weight_power > 0.0 {
        let mut probabilities = fast_probabilities.clone();
        out_of_fold_probabilities(
            set,
            &stack_ids,
            config.folds.max(2),
            fast_config,
            &layout,
            &mut probabilities,
        )?;
        fast_confidence = vec![vec![0.0f32; set.records.len()]; layout.names.len()];
        for (i, p) in probabilities.iter().enumerate() {
            for (h, c) in fast_choice(fast, p).1.into_iter().enumerate() {
                fast_confidence[h][i] = c;
            }
        }
    }
    let classes: Vec<usize> = layout.labels.iter().map(Vec::len).collect();
    // One round of fine-tuning from the converted weights on the comments `ids`.
    let tune_on = |ids: &[usize], progress: &dyn Fn(usize, usize, usize, f64)| -> Result<_> {
        let top = TopLayers::new(encoder, tune.layers, &classes, tune.seed)?;
        let losses = top.train(states, &targets, &fast_confidence, ids, tune, progress)?;
        Ok((top, losses))
    };
    let (top, epoch_losses) = tune_on(&stack_ids, progress)?;
    let tuned = top.export()?;
    let dim = top.hidden();
    let mut embeddings = vec![Vec::new(); set.records.len()];
    for (&i, e) in cascade_ids.iter().zip(top.embed(states, &cascade_ids)?) {
        embeddings[i] = e;
    }

    let allowed_share =
        ((config.target_mean_ms - config.fast_ms) / config.encoder_ms).clamp(0.0, 1.0);
    let groups = validation_groups(set, &cascade_ids).unwrap_or_else(|| vec![0; cascade_ids.len()]);
    let mut best: Option<(f64, DeepHeads, Vec<f32>, TierComparison, f32)> = None;
    let mut scratch = DeepScratch::default();
    for fast_weight in [0.0f32, 1.0] {
        let deep = tuned_heads(
            &layout,
            fast,
            &tuned.heads,
            fast_weight,
            dim,
            encoder_sha256,
        );
        let mut deep_probabilities = vec![Vec::new(); set.records.len()];
        for &i in &cascade_ids {
            deep.score(
                &fast_probabilities[i],
                &embeddings[i],
                &mut scratch,
                &mut deep_probabilities[i],
            );
        }
        let cases = Cases::new(
            fast,
            &deep,
            &cascade_ids,
            &groups,
            &targets,
            &fast_probabilities,
            &deep_probabilities,
        );
        let thresholds = cases.choose_policy(allowed_share);
        let comparison = cases.compare(&thresholds);
        let gain = comparison
            .heads
            .iter()
            .map(|h| h.cascade - h.fast)
            .sum::<f64>();
        if best.as_ref().is_none_or(|b| gain > b.0 + 1e-9) {
            best = Some((gain, deep, thresholds, comparison, fast_weight));
        }
    }
    let (_, mut deep, thresholds, validation, fast_weight) = best.expect("two candidates");
    let mut shipped = tuned.tensors;
    let mut refit_epoch_losses = Vec::new();
    let mut n_tuned_on = stack_ids.len();
    if tune.refit {
        // The same training from the converted weights, now on every comment: the policy chosen above keeps
        // its thresholds, which read the fast model's confidence and so do not depend on the deep heads.
        let all: Vec<usize> = (0..set.records.len()).collect();
        let (top, losses) = tune_on(&all, &|epoch, step, steps, loss| {
            progress(tune.epochs + epoch, step, steps, loss)
        })?;
        refit_epoch_losses = losses;
        let refit = top.export()?;
        deep = tuned_heads(
            &layout,
            fast,
            &refit.heads,
            fast_weight,
            dim,
            encoder_sha256,
        );
        shipped = refit.tensors;
        n_tuned_on = all.len();
    }
    deep.cascade = CascadePolicy {
        min_fast_confidence: thresholds,
        validation_deep_share: validation.deep_share,
        target_mean_ms: config.target_mean_ms,
        encoder_ms: config.encoder_ms,
    };
    deep.tuned = shipped;
    deep.validate().map_err(|e| Error::Config(e.to_string()))?;
    let report = DeepReport {
        n_stack: stack_ids.len(),
        n_cascade: cascade_ids.len(),
        n_policy: cascade_ids.len(),
        holdout: validation.clone(),
        validation,
        allowed_share,
        seconds: started.elapsed().as_secs_f64(),
    };
    let tuned_report = TunedReport {
        epoch_losses,
        refit_epoch_losses,
        n_tuned_on,
        fast_weight,
    };
    deep.training = serde_json::json!({
        "config": config,
        "tune": tune,
        "tuned": tuned_report,
        "n_policy": report.n_policy,
        "validation": report.validation,
        "allowed_share": allowed_share,
    });
    Ok((deep, report, tuned_report))
}

/// The comments split into the earlier ones and the latest `fraction` by date (ties in file order), when every
/// comment is dated.
///
/// Why the latest: the served model answers comments from months after its training data, and there the fine-tuned
/// heads were seen to do worse than on a random fifth of the training months (on the buzón history, categoria's deep
/// answer beat the fast model on a random held-out fifth and lost to it on the next two months, so a policy chosen
/// on the random fifth sent categoria's doubts deep and lost). Holding out the latest months makes the policy
/// face that shift before it is served.
fn latest_held_out(set: &LabeledSet, fraction: f64) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut dated: Vec<(chrono::NaiveDate, usize)> = set
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| r.date.map(|d| (d, i)))
        .collect::<Option<_>>()?;
    dated.sort_unstable();
    let held = ((dated.len() as f64 * fraction).round() as usize).min(dated.len());
    let mut earlier: Vec<usize> = dated[..dated.len() - held]
        .iter()
        .map(|&(_, i)| i)
        .collect();
    let mut latest: Vec<usize> = dated[dated.len() - held..]
        .iter()
        .map(|&(_, i)| i)
        .collect();
    earlier.sort_unstable();
    latest.sort_unstable();
    Some((earlier, latest))
}

/// Fused heads made of the tuned softmax layers (on the embedding scaled by [`crate::tune::input_scale`]) plus
/// `fast_weight` times each head's own fast log-probabilities. The cascade policy is left empty.
fn tuned_heads(
    layout: &Layout,
    fast: &Model,
    tuned: &[SoftmaxLayer],
    fast_weight: f32,
    dim: usize,
    encoder_sha256: &str,
) -> DeepHeads {
    let n_inputs = layout.classes + dim;
    let mut input_scale = vec![1.0f32; layout.classes];
    input_scale.resize(n_inputs, crate::tune::input_scale(dim));
    let mut offset = 0;
    let heads = layout
        .names
        .iter()
        .zip(&layout.labels)
        .zip(tuned)
        .map(|((name, labels), layer)| {
            let mut weights = vec![0.0f32; labels.len() * n_inputs];
            for c in 0..labels.len() {
                let row = &mut weights[c * n_inputs..(c + 1) * n_inputs];
                row[offset + c] = fast_weight;
                row[layout.classes..].copy_from_slice(&layer.weights[c * dim..(c + 1) * dim]);
            }
            offset += labels.len();
            DeepHead {
                name: name.clone(),
                labels: labels.clone(),
                weights,
                bias: layer.bias.clone(),
            }
        })
        .collect();
    DeepHeads {
        encoder_sha256: encoder_sha256.to_string(),
        embedding_dim: dim,
        fast_model_id: fast.info.id.clone(),
        fast_classes: layout.classes,
        input_mean: vec![0.0; n_inputs],
        input_scale,
        heads,
        cascade: CascadePolicy {
            min_fast_confidence: vec![0.0; layout.names.len()],
            validation_deep_share: 0.0,
            target_mean_ms: 0.0,
            encoder_ms: 0.0,
        },
        training: serde_json::Value::Null,
        tuned: Vec::new(),
    }
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
    let gold = layout.gold(test);
    let mut scratch = DeepScratch::default();
    let deep_probabilities: Vec<Vec<f32>> = probabilities
        .iter()
        .zip(embeddings)
        .map(|(p, e)| {
            let mut out = Vec::new();
            deep.score(p, e, &mut scratch, &mut out);
            out
        })
        .collect();
    Ok(Cases::new(
        fast,
        deep,
        &ids,
        &vec![0; ids.len()],
        &gold,
        &probabilities,
        &deep_probabilities,
    )
    .compare(&deep.cascade.min_fast_confidence))
}

/// Sets `probabilities[i]` for every comment `i` of `ids` to the fast probabilities (laid out by `layout`) of a
/// model that has not seen it: `folds` fits, each without one fold, score that fold.
fn out_of_fold_probabilities(
    set: &LabeledSet,
    ids: &[usize],
    folds: usize,
    fast_config: &TrainConfig,
    layout: &Layout,
    probabilities: &mut [Vec<f32>],
) -> Result<()> {
    for fold in 0..folds {
        let (train_ids, held) = fold_split(ids, folds, fold);
        let (model, _) = fit(&set.subset(&train_ids), fast_config, None, &Silent)?;
        for i in held {
            probabilities[i] = layout.probabilities(&model, &set.records[i].text);
        }
    }
    Ok(())
}

/// The fast model's choice per head from `probabilities` (its own layout), and its probability: the confidence
/// the cascade compares with its thresholds.
fn fast_choice(fast: &Model, probabilities: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let mut chosen = Vec::new();
    fast.linear.decode(probabilities, &mut chosen);
    let label_counts = fast.linear.heads.iter().map(|h| h.labels.len());
    let confidence = chosen_confidences(label_counts, probabilities, &chosen).collect();
    (chosen, confidence)
}

/// The fold of the comment at `position` in a list split into `folds` folds.
fn fold_of(position: usize, folds: usize) -> usize {
    position % folds
}

/// The comments of `ids` outside fold `fold` and those inside it (position modulo `folds`).
fn fold_split(ids: &[usize], folds: usize, fold: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (n, &i) in ids.iter().enumerate() {
        if fold_of(n, folds) == fold {
            held.push(i)
        } else {
            train.push(i)
        }
    }
    (train, held)
}

/// A fused head as fitted, with the log class priors of its training comments.
struct FittedHead {
    head: DeepHead,
    log_prior: Vec<f32>,
}

impl FittedHead {
    /// Sets `out`'s bias to this head's bias minus `tau` times the log priors.
    ///
    /// Logistic regression fits the class priors of the stacking comments; subtracting part of their log
    /// (chosen on held-out comments) trades majority-class accuracy for recall of the rare classes, which is
    /// what macro-F1 and the delegates of small areas need.
    fn correct_prior(&self, tau: f32, out: &mut DeepHead) {
        for ((b, &fitted), &prior) in out
            .bias
            .iter_mut()
            .zip(&self.head.bias)
            .zip(&self.log_prior)
        {
            *b = fitted - tau * prior;
        }
    }
}

/// One fused head per fast head, fitted on the comments `ids` (standardised inputs, gold labels `targets[head]`).
fn fit_heads(
    layout: &Layout,
    ids: &[usize],
    standardised: &impl Fn(usize) -> Vec<f64>,
    n_inputs: usize,
    targets: &[Vec<Option<usize>>],
    config: &DeepConfig,
) -> Result<Vec<FittedHead>> {
    let x_all = dense(ids, n_inputs, standardised);
    let mut heads = Vec::new();
    for (h, labels) in layout.labels.iter().enumerate() {
        let rows: Vec<usize> = (0..ids.len())
            .filter(|&n| targets[h][ids[n]].is_some())
            .collect();
        let x = x_all.select(ndarray::Axis(0), &rows);
        let y: Array1<usize> = rows
            .iter()
            .map(|&n| targets[h][ids[n]].expect("filtered"))
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
        let mut counts = vec![0usize; k];
        for &t in y.iter() {
            counts[t] += 1;
        }
        let log_prior: Vec<f32> = counts
            .iter()
            .map(|&c| ((c.max(1)) as f32 / y.len() as f32).ln())
            .collect();
        heads.push(FittedHead {
            head: DeepHead {
                name: layout.names[h].clone(),
                labels: labels.clone(),
                weights,
                bias,
            },
            log_prior,
        });
    }
    Ok(heads)
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
    /// Per head, each comment's gold label as an index into the head's labels (`None`: a label the model lacks).
    fn gold(&self, set: &LabeledSet) -> Vec<Vec<Option<usize>>> {
        self.labels
            .iter()
            .zip(&self.set_head)
            .map(|(labels, &column)| {
                set.records
                    .iter()
                    .map(|r| labels.iter().position(|l| *l == r.labels[column]))
                    .collect()
            })
            .collect()
    }

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

/// Fewest comments in a validation group; a smaller month joins the next one.
const MIN_GROUP: usize = 100;

/// Least pooled validation gain in macro-F1 for a head to take deep answers at all. Smaller gains are within the
/// noise of a few thousand validation comments and were seen to turn into losses on the next months (on the buzón
/// history, categoria +0.0015 → −0.0014 with the frozen encoder, +0.0008 → −0.0018 with the tuned layers).
const MIN_HEAD_GAIN: f64 = 0.005;

/// The validation group of each of `ids`: its calendar month (months of fewer than [`MIN_GROUP`] comments merged
/// with the next), so that a head's gain must hold from month to month, as it must on the months after training.
/// `None` without dates on every comment or with fewer than two groups.
fn validation_groups(set: &LabeledSet, ids: &[usize]) -> Option<Vec<usize>> {
    use chrono::Datelike;
    let months: Vec<(i32, u32)> = ids
        .iter()
        .map(|&i| set.records[i].date.map(|d| (d.year(), d.month())))
        .collect::<Option<_>>()?;
    let mut counts: std::collections::BTreeMap<(i32, u32), usize> = Default::default();
    for m in &months {
        *counts.entry(*m).or_default() += 1;
    }
    let mut group_of = HashMap::new();
    let (mut group, mut size) = (0, 0);
    for (month, count) in &counts {
        group_of.insert(*month, group);
        size += count;
        if size >= MIN_GROUP {
            (group, size) = (group + 1, 0);
        }
    }
    // A short last group joins the one before it.
    let groups = if size > 0 && group > 0 {
        for g in group_of.values_mut() {
            *g = (*g).min(group - 1);
        }
        group
    } else {
        group + usize::from(size > 0)
    };
    (groups >= 2).then(|| months.iter().map(|m| group_of[m]).collect())
}

/// The mean of `gains` minus one standard error of the mean (the mean itself for fewer than two values).
fn gain_lower_bound(gains: &[f64]) -> f64 {
    let n = gains.len() as f64;
    let mean = gains.iter().sum::<f64>() / n.max(1.0);
    if gains.len() < 2 {
        return mean;
    }
    let variance = gains.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0);
    mean - (variance / n).sqrt()
}

/// One held-out comment: both tiers' probabilities, the fast choice per head and the gold label per head.
struct Case {
    fast: Vec<f32>,
    deep: Vec<f32>,
    fast_chosen: Vec<usize>,
    /// Per head: the fast model's confidence in its choice.
    confidence: Vec<f32>,
    gold: Vec<Option<usize>>,
    /// The validation group the comment belongs to (a stacking fold, or the held-out comments).
    group: usize,
}

/// Macro-F1 per head overall and per validation group, and the share of comments sent deep.
struct Scores {
    f1: Vec<f64>,
    group_f1: Vec<Vec<f64>>,
    deep_share: f64,
}

/// One head's answers the cascade changed, and how each label's F1 moved (see [`TierScores::labels`]).
struct Shift {
    fixed: usize,
    broken: usize,
    labels: Vec<LabelShift>,
}

/// The held-out comments with both tiers' answers computed once, so that many cascade policies can be scored
/// without running the models again.
struct Cases<'a> {
    fast: &'a Model,
    deep: &'a DeepHeads,
    rows: Vec<Case>,
    groups: usize,
    names: Vec<String>,
    labels: Vec<usize>,
}

impl<'a> Cases<'a> {
    /// `groups[n]` is the validation group of `ids[n]`.
    fn new(
        fast: &'a Model,
        deep: &'a DeepHeads,
        ids: &[usize],
        groups: &[usize],
        gold: &[Vec<Option<usize>>],
        probabilities: &[Vec<f32>],
        deep_probabilities: &[Vec<f32>],
    ) -> Self {
        let rows = ids
            .iter()
            .zip(groups)
            .map(|(&i, &group)| {
                let (fast_chosen, confidence) = fast_choice(fast, &probabilities[i]);
                Case {
                    fast: probabilities[i].clone(),
                    deep: deep_probabilities[i].clone(),
                    fast_chosen,
                    confidence,
                    gold: gold.iter().map(|g| g[i]).collect(),
                    group,
                }
            })
            .collect();
        Self {
            fast,
            deep,
            groups: groups.iter().max().map_or(0, |g| g + 1),
            rows,
            names: deep.heads.iter().map(|h| h.name.clone()).collect(),
            labels: deep.heads.iter().map(|h| h.labels.len()).collect(),
        }
    }

    /// Macro-F1 per head and the share of comments sent deep under per-head `thresholds` (`None`: every comment
    /// goes deep and takes the fused heads on every head, the "deep" tier alone).
    fn score(&self, thresholds: Option<&[f32]>) -> Scores {
        let heads = self.labels.len();
        // [group][head]
        let mut gold = vec![vec![Vec::new(); heads]; self.groups];
        let mut predicted = vec![vec![Vec::new(); heads]; self.groups];
        let mut deep_count = 0;
        let (mut mixed, mut chosen) = (Vec::new(), Vec::new());
        for row in &self.rows {
            let (decided, went_deep) = self.decide(row, thresholds, &mut mixed, &mut chosen);
            deep_count += usize::from(went_deep);
            for h in 0..heads {
                let Some(g) = row.gold[h] else { continue };
                gold[row.group][h].push(g as u32);
                predicted[row.group][h].push(decided[h] as u32);
            }
        }
        let f1 = (0..heads)
            .map(|h| {
                let all = |of: &[Vec<Vec<u32>>]| -> Vec<u32> {
                    of.iter().flat_map(|g| g[h].iter().copied()).collect()
                };
                macro_f1(&all(&gold), &all(&predicted), self.labels[h])
            })
            .collect();
        let group_f1 = gold
            .iter()
            .zip(&predicted)
            .map(|(g, p)| {
                (0..heads)
                    .map(|h| macro_f1(&g[h], &p[h], self.labels[h]))
                    .collect()
            })
            .collect();
        Scores {
            f1,
            group_f1,
            deep_share: deep_count as f64 / self.rows.len().max(1) as f64,
        }
    }

    /// The labels `row` ends with per head under `thresholds` (`None`: the deep tier alone), and whether it went
    /// deep.
    fn decide<'r>(
        &self,
        row: &'r Case,
        thresholds: Option<&[f32]>,
        mixed: &mut Vec<f32>,
        chosen: &'r mut Vec<usize>,
    ) -> (&'r [usize], bool) {
        match thresholds {
            None => {
                self.fast.linear.decode(&row.deep, chosen);
                (chosen, true)
            }
            Some(t) if row.confidence.iter().zip(t).any(|(c, t)| c < t) => {
                self.deep.cascade_probabilities_at(
                    t,
                    &row.fast,
                    &row.fast_chosen,
                    &row.deep,
                    mixed,
                );
                self.fast.linear.decode(mixed, chosen);
                (chosen, true)
            }
            Some(_) => (&row.fast_chosen, false),
        }
    }

    /// Per head, a 90 % paired bootstrap interval of the cascade's macro-F1 gain over the fast model under
    /// `thresholds`: the comments are resampled with replacement [`BOOTSTRAP_ROUNDS`] times (fixed seed) and
    /// both tiers scored on each resample. It says how much of a measured gain the sample itself could make.
    fn gain_intervals(&self, thresholds: &[f32]) -> Vec<[f64; 2]> {
        use rand::{Rng, SeedableRng};
        let heads = self.labels.len();
        let (mut mixed, mut chosen) = (Vec::new(), Vec::new());
        let cascade: Vec<Vec<usize>> = self
            .rows
            .iter()
            .map(|row| {
                self.decide(row, Some(thresholds), &mut mixed, &mut chosen)
                    .0
                    .to_vec()
            })
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xb007);
        let mut gains = vec![Vec::with_capacity(BOOTSTRAP_ROUNDS); heads];
        let n = self.rows.len();
        let (mut gold, mut fast, mut deep) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..BOOTSTRAP_ROUNDS {
            let sample: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            for (h, head_gains) in gains.iter_mut().enumerate() {
                gold.clear();
                fast.clear();
                deep.clear();
                for &r in &sample {
                    let Some(g) = self.rows[r].gold[h] else {
                        continue;
                    };
                    gold.push(g as u32);
                    fast.push(self.rows[r].fast_chosen[h] as u32);
                    deep.push(cascade[r][h] as u32);
                }
                head_gains.push(
                    macro_f1(&gold, &deep, self.labels[h]) - macro_f1(&gold, &fast, self.labels[h]),
                );
            }
        }
        gains
            .into_iter()
            .map(|mut g| {
                g.sort_by(f64::total_cmp);
                let at = |q: f64| g[((g.len() - 1) as f64 * q).round() as usize];
                [at(0.05), at(0.95)]
            })
            .collect()
    }

    /// Per-head confidence thresholds, from a grid of each head's confidence quantiles (eight steps up to the
    /// allowed share), that maximise the mean macro-F1 over heads with at most `allowed_share` of the comments sent
    /// deep and no head's macro-F1 below the fast model's (ties: the smaller share). Sending nothing deep always
    /// qualifies.
    ///
    /// A head takes deep answers only if that gains it at least [`MIN_HEAD_GAIN`] on the pooled comments.
    ///
    /// "Not below" is asked of a lower bound: over the validation groups (calendar months when the comments are
    /// dated, else the stacking folds and the held-out comments), a head's mean gain minus one standard error of
    /// that mean must not be negative. A head whose gain is a few thousandths on the pooled comments but swings
    /// from group to group was seen to lose on the next months; a head the policy leaves alone gains exactly 0 in
    /// every group and always passes.
    fn choose_policy(&self, allowed_share: f64) -> Vec<f32> {
        let heads = self.labels.len();
        let fast = self.score(Some(&vec![f32::NEG_INFINITY; heads]));
        let grid: Vec<Vec<f32>> = (0..heads)
            .map(|h| {
                let mut c: Vec<f32> = self.rows.iter().map(|r| r.confidence[h]).collect();
                c.sort_by(f32::total_cmp);
                let mut values = vec![0.0];
                // A head's threshold at quantile q sends at least a share q deep on its own, so quantiles beyond
                // the allowed share can never qualify: the grid spends its eight steps below it.
                for q in (1..=8).map(|j| allowed_share * f64::from(j) / 8.0) {
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
            let scores = self.score(Some(&thresholds));
            let (f1, share) = (&scores.f1, scores.deep_share);
            let mean = f1.iter().sum::<f64>() / heads as f64;
            let no_head_worse = (0..heads).all(|h| {
                let gains: Vec<f64> = scores
                    .group_f1
                    .iter()
                    .zip(&fast.group_f1)
                    .map(|(cascade, fast)| cascade[h] - fast[h])
                    .collect();
                let touched = thresholds[h] > 0.0;
                f1[h] >= fast.f1[h] - 1e-12
                    && gain_lower_bound(&gains) >= -1e-12
                    && (!touched || f1[h] - fast.f1[h] >= MIN_HEAD_GAIN)
            });
            if share <= allowed_share
                && no_head_worse
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

    /// Per head under `thresholds`: the answers the cascade fixed and broke, and each label's F1 before and after.
    fn shifts(&self, thresholds: &[f32]) -> Vec<Shift> {
        let heads = self.labels.len();
        // [head]: gold, fast and cascade labels of the comments with a gold label on that head.
        let (mut gold, mut fast, mut cascade) = (
            vec![Vec::new(); heads],
            vec![Vec::new(); heads],
            vec![Vec::new(); heads],
        );
        let (mut mixed, mut chosen) = (Vec::new(), Vec::new());
        for row in &self.rows {
            let (decided, _) = self.decide(row, Some(thresholds), &mut mixed, &mut chosen);
            for h in 0..heads {
                let Some(g) = row.gold[h] else { continue };
                gold[h].push(g as u32);
                fast[h].push(row.fast_chosen[h] as u32);
                cascade[h].push(decided[h] as u32);
            }
        }
        (0..heads)
            .map(|h| {
                let answers = || gold[h].iter().zip(&fast[h]).zip(&cascade[h]);
                let before = label_f1(&gold[h], &fast[h], self.labels[h]);
                let after = label_f1(&gold[h], &cascade[h], self.labels[h]);
                Shift {
                    fixed: answers().filter(|((g, f), c)| f != c && c == g).count(),
                    broken: answers().filter(|((g, f), c)| f != c && f == g).count(),
                    labels: before
                        .into_iter()
                        .zip(after)
                        .zip(&self.deep.heads[h].labels)
                        .map(|(((fast, comments), (cascade, _)), label)| LabelShift {
                            label: label.clone(),
                            comments,
                            fast,
                            cascade,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn compare(&self, thresholds: &[f32]) -> TierComparison {
        let never = vec![f32::NEG_INFINITY; self.labels.len()];
        let fast = self.score(Some(&never)).f1;
        let all_deep = self.score(None).f1;
        let Scores {
            f1: cascade,
            deep_share: share,
            ..
        } = self.score(Some(thresholds));
        let intervals = self.gain_intervals(thresholds);
        TierComparison {
            comments: self.rows.len(),
            heads: self
                .names
                .iter()
                .zip(self.shifts(thresholds))
                .enumerate()
                .map(|(h, (name, shift))| TierScores {
                    head: name.clone(),
                    fast: fast[h],
                    deep: all_deep[h],
                    cascade: cascade[h],
                    cascade_gain_interval: intervals[h],
                    fixed: shift.fixed,
                    broken: shift.broken,
                    labels: shift.labels,
                })
                .collect(),
            deep_share: share,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{gain_lower_bound, latest_held_out};
    use datasets::{LabeledSet, Record};

    fn dated(days: &[Option<u32>]) -> LabeledSet {
        LabeledSet {
            heads: vec!["type".into()],
            records: days
                .iter()
                .enumerate()
                .map(|(i, d)| Record {
                    line: i as u64 + 2,
                    id: None,
                    text: format!("comentario {i}"),
                    labels: vec!["queja".into()],
                    date: d.map(|d| chrono::NaiveDate::from_ymd_opt(2023, 5, d).unwrap()),
                    channel: None,
                })
                .collect(),
            report: Default::default(),
        }
    }

    #[test]
    fn the_latest_comments_are_held_out_when_all_are_dated() {
        let set = dated(&[
            Some(9),
            Some(1),
            Some(30),
            Some(5),
            Some(30),
            Some(2),
            Some(20),
            Some(3),
        ]);
        let (earlier, latest) = latest_held_out(&set, 0.25).unwrap();
        assert_eq!(latest, vec![2, 4]);
        assert_eq!(earlier, vec![0, 1, 3, 5, 6, 7]);
        // Ties on the boundary day go by file order.
        let (_, latest) = latest_held_out(&set, 0.125).unwrap();
        assert_eq!(latest, vec![4]);
        assert!(latest_held_out(&dated(&[Some(1), None, Some(2)]), 0.2).is_none());
    }

    #[test]
    fn the_gain_bound_is_the_mean_minus_one_standard_error() {
        assert_eq!(gain_lower_bound(&[0.0; 5]), 0.0);
        assert_eq!(gain_lower_bound(&[0.01]), 0.01);
        // Mean 0.002, deviations ±0.01 over 4 groups: standard error sd / 2.
        let gains = [0.012, -0.008, 0.012, -0.008];
        let sd = (4.0 * 0.01f64.powi(2) / 3.0).sqrt();
        assert!((gain_lower_bound(&gains) - (0.002 - sd / 2.0)).abs() < 1e-12);
        assert!(gain_lower_bound(&gains) < 0.0, "a swinging gain fails");
    }
}
