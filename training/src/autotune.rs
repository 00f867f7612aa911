//! Autotune and cross-validation: a seeded random search over features and optimiser settings within a time
//! budget, maximising the mean validation macro-F1 over heads (as fastText's autotune does), with an optional
//! cap on the model's size; and a k-fold report of one configuration.

use std::fmt;
use std::time::{Duration, Instant};

use datasets::LabeledSet;
use rand::{Rng, SeedableRng};

use crate::fit::{ClassWeight, Silent, TrainConfig, fit};
use crate::{Error, Result};

/// The configuration autotune kept.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// Best configuration found.
    pub config: TrainConfig,
    /// Its score and the number of trials, for the log.
    pub summary: String,
}

/// Mean over heads of the validation macro-F1, and the model's size in bytes.
fn trial(set: &LabeledSet, config: &TrainConfig) -> Result<(f64, u64)> {
    let (model, report) = fit(set, config, None, &Silent)?;
    let score = report
        .heads
        .iter()
        .map(|h| h.validation.macro_f1)
        .sum::<f64>()
        / report.heads.len() as f64;
    let classes = model.linear.total_classes() as u64;
    let size = model.linear.idf.len() as u64 * (classes * 4 + 8) + classes * 4;
    Ok((score, size))
}

fn describe(c: &TrainConfig) -> String {
    format!(
        "bits={} chars={}..={} bigrams={} lr={:.3} l2={:.1e} epochs={} weight={:?}",
        c.features.table_bits,
        c.features.char_min,
        c.features.char_max,
        c.features.word_bigrams,
        c.learning_rate,
        c.l2,
        c.epochs,
        c.class_weight
    )
}

/// Random search around `base` until `budget` is spent; `base` itself is the first trial.
pub fn autotune(
    set: &LabeledSet,
    base: &TrainConfig,
    budget: Duration,
    max_bytes: Option<u64>,
    mut log: impl FnMut(&str),
) -> Result<Tuned> {
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(base.seed ^ 0x5eed);
    let mut best: Option<(f64, TrainConfig)> = None;
    let mut trials = 0;
    let mut candidate = base.clone();
    while trials == 0 || started.elapsed() < budget {
        let (score, size) = trial(set, &candidate)?;
        trials += 1;
        let fits = max_bytes.is_none_or(|m| size <= m);
        log(&format!(
            "trial {trials:>3}: macro-F1 {score:.4} size {:.1} MB{} | {}",
            size as f64 / 1e6,
            if fits { "" } else { " (over the size cap)" },
            describe(&candidate)
        ));
        if fits && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, candidate.clone()));
        }
        candidate = sample(&mut rng, base);
    }
    let (score, config) = best.ok_or_else(|| {
        Error::Config("no configuration fits under --max-size; raise it or shrink the table".into())
    })?;
    Ok(Tuned {
        summary: format!(
            "macro-F1 {score:.4} after {trials} trials: {}",
            describe(&config)
        ),
        config,
    })
}

fn sample(rng: &mut impl Rng, base: &TrainConfig) -> TrainConfig {
    let mut c = base.clone();
    c.features.table_bits = rng.random_range(16..=21);
    c.features.char_min = [0, 1, 2, 2, 3][rng.random_range(0..5)];
    c.features.char_max = if c.features.char_min == 0 {
        0
    } else {
        rng.random_range(c.features.char_min.max(3)..=6)
    };
    c.features.word_bigrams = rng.random_bool(0.7);
    c.learning_rate = 10f32.powf(rng.random_range(-1.3..0.2));
    c.l2 = 10f32.powf(rng.random_range(-8.0..-4.0));
    c.epochs = rng.random_range(8..=40);
    c.class_weight =
        [ClassWeight::None, ClassWeight::Sqrt, ClassWeight::Balanced][rng.random_range(0..3)];
    c
}

/// K-fold cross-validation of one configuration: per head, macro-F1 and accuracy per fold.
#[derive(Debug, Clone)]
pub struct CrossValidation {
    /// Head names.
    pub heads: Vec<String>,
    /// `[fold][head]` (macro-F1, accuracy).
    pub folds: Vec<Vec<(f64, f64)>>,
}

impl fmt::Display for CrossValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}-fold cross-validation", self.folds.len())?;
        writeln!(f, "{:<12} {:>16} {:>16}", "head", "macro-F1", "accuracy")?;
        for (h, head) in self.heads.iter().enumerate() {
            let stats = |pick: fn(&(f64, f64)) -> f64| {
                let v: Vec<f64> = self.folds.iter().map(|fold| pick(&fold[h])).collect();
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let sd =
                    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                format!("{mean:.4} ± {sd:.4}")
            };
            writeln!(
                f,
                "{:<12} {:>16} {:>16}",
                head,
                stats(|x| x.0),
                stats(|x| x.1)
            )?;
        }
        Ok(())
    }
}

/// Trains on k−1 folds and evaluates on the held-out fold, k times (folds stratified on the first head).
pub fn cross_validate(set: &LabeledSet, config: &TrainConfig, k: usize) -> Result<CrossValidation> {
    if k < 2 || k > set.records.len() {
        return Err(Error::Config(format!(
            "--cv needs 2 <= K <= {} comments, got {k}",
            set.records.len()
        )));
    }
    let mut folds = Vec::with_capacity(k);
    for split in datasets::split::k_fold(set, 0, k, config.seed) {
        let (model, _) = fit(&set.subset(&split.train), config, None, &Silent)?;
        let evaluation = crate::evaluate(&model, &set.subset(&split.test))?;
        folds.push(
            evaluation
                .heads
                .iter()
                .map(|h| (h.macro_f1, h.accuracy))
                .collect(),
        );
    }
    Ok(CrossValidation {
        heads: set.heads.clone(),
        folds,
    })
}
