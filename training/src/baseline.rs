//! The linfa baseline reported beside our model: linfa-logistic's multinomial logistic regression (L-BFGS) on
//! the TF-IDF values of the most frequent features, trained and scored on the same validation split.
//!
//! Dense L-BFGS cannot take hundreds of thousands of sparse features, so the baseline keeps the `FEATURES` most
//! frequent ones; the gap between it and our model shows what the full hashed feature space is worth.

use std::fmt;
use std::time::Instant;

use datasets::LabeledSet;
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

use crate::fit::{TrainConfig, encode_head, validation_split, vocabulary};
use crate::metrics::macro_f1;
use crate::{Error, Result};

/// Features kept by the baseline.
pub const FEATURES: usize = 1500;

/// Baseline figures per head.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// `(head, macro-F1, accuracy, seconds)` on the validation split.
    pub heads: Vec<(String, f64, f64, f64)>,
    /// Fitting comments.
    pub n_fit: usize,
    /// Validation comments.
    pub n_validation: usize,
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linfa baseline (MultiLogisticRegression on the {FEATURES} most frequent features; {} fit, {} validation)",
            self.n_fit, self.n_validation
        )?;
        writeln!(
            f,
            "{:<12} {:>9} {:>9} {:>8}",
            "head", "macro-F1", "accuracy", "seconds"
        )?;
        for (head, f1, acc, secs) in &self.heads {
            writeln!(f, "{head:<12} {f1:>9.4} {acc:>9.4} {secs:>8.2}")?;
        }
        Ok(())
    }
}

/// Trains and scores the baseline for every head of `set`.
pub fn linfa_baseline(set: &LabeledSet, config: &TrainConfig) -> Result<Baseline> {
    let (fit_ids, validation_ids) = validation_split(set, config);
    let vocab = vocabulary(set, config, &fit_ids);
    let mut by_df: Vec<usize> = (0..vocab.df.len()).collect();
    by_df.sort_by(|&a, &b| vocab.df[b].cmp(&vocab.df[a]).then(a.cmp(&b)));
    let mut column_of_row = vec![usize::MAX; vocab.df.len()];
    for (column, &row) in by_df.iter().take(FEATURES).enumerate() {
        column_of_row[row] = column;
    }
    let dense = |ids: &[usize]| {
        let mut x = Array2::<f64>::zeros((ids.len(), FEATURES.min(vocab.df.len())));
        for (i, &doc) in ids.iter().enumerate() {
            let (rows, values) = vocab.vectors.doc(doc);
            for (&r, &v) in rows.iter().zip(values) {
                let c = column_of_row[r as usize];
                if c != usize::MAX {
                    x[(i, c)] = f64::from(v);
                }
            }
        }
        x
    };
    let (x_fit, x_validation) = (dense(&fit_ids), dense(&validation_ids));
    let mut heads = Vec::new();
    for (h, name) in set.heads.iter().enumerate() {
        let started = Instant::now();
        let encoded = encode_head(set, h);
        let y_fit: Array1<usize> = fit_ids
            .iter()
            .map(|&i| encoded.targets[i] as usize)
            .collect();
        let model = MultiLogisticRegression::default()
            .max_iterations(100)
            .alpha(1e-3)
            .fit(&Dataset::new(x_fit.clone(), y_fit))
            .map_err(|e| Error::Config(format!("linfa baseline for head `{name}`: {e}")))?;
        let predicted: Vec<u32> = model
            .predict(&x_validation)
            .iter()
            .map(|&p| p as u32)
            .collect();
        let gold: Vec<u32> = validation_ids.iter().map(|&i| encoded.targets[i]).collect();
        let accuracy = gold.iter().zip(&predicted).filter(|(g, p)| g == p).count() as f64
            / gold.len().max(1) as f64;
        heads.push((
            name.clone(),
            macro_f1(&gold, &predicted, encoded.labels.len()),
            accuracy,
            started.elapsed().as_secs_f64(),
        ));
    }
    Ok(Baseline {
        heads,
        n_fit: fit_ids.len(),
        n_validation: validation_ids.len(),
    })
}
