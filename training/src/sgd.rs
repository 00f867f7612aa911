//! One SGD epoch of one softmax head over sparse TF-IDF vectors, in three schedules: sequential, Hogwild and
//! synchronous mini-batches, so that the parallel ones can be measured against the plain one.
//!
//! Heads already train concurrently (one per core), so these schedules matter when a single head must use every
//! core: one-head models, or a head much bigger than the others. Measured on the buzón history (RESULTS.md,
//! "SGD schedules"), the sequential schedule stays the default: see there for the figures.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fit::Vectors;

/// How one head's SGD epoch uses the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum SgdSchedule {
    /// One comment after another on one core; deterministic for a seed. Heads still run concurrently.
    #[default]
    Sequential,
    /// Every rayon thread takes a share of the epoch's comments and updates the shared weights without locks
    /// (relaxed atomics: a racing update may be lost, which Hogwild tolerates). Not deterministic.
    Hogwild,
    /// Gradients of `size` comments are computed in parallel at the same weights, then applied in parallel with
    /// each thread owning a disjoint set of rows, in a fixed order: deterministic for a seed.
    MiniBatch {
        /// Comments per batch.
        size: usize,
    },
}

impl std::str::FromStr for SgdSchedule {
    type Err = String;

    /// `sequential`, `hogwild`, or `minibatch:SIZE` (`minibatch` alone means 64 comments).
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "sequential" => Ok(Self::Sequential),
            None if text == "hogwild" => Ok(Self::Hogwild),
            None if text == "minibatch" => Ok(Self::MiniBatch { size: 64 }),
            Some(("minibatch", size)) => match size.parse::<usize>() {
                Ok(size) if size > 0 => Ok(Self::MiniBatch { size }),
                _ => Err(format!("`{size}` is not a batch size (a whole number ≥ 1)")),
            },
            _ => Err(format!(
                "unknown SGD schedule `{text}`: expected sequential, hogwild or minibatch:SIZE"
            )),
        }
    }
}

/// The weights of one head while it trains: `W_true = scale · weights` (lazy L2 decay) and a bias per class.
pub(crate) struct HeadWeights {
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) scale: f32,
    pub(crate) classes: usize,
}

/// What an epoch needs besides the weights.
pub(crate) struct EpochInputs<'a> {
    pub(crate) vectors: &'a Vectors,
    pub(crate) targets: &'a [u32],
    pub(crate) class_weights: &'a [f32],
    /// Comments in this epoch's (shuffled) order.
    pub(crate) order: &'a [usize],
    /// Learning rate at the epoch's first step and how much it drops per step.
    pub(crate) first_step: usize,
    pub(crate) total_steps: f32,
    pub(crate) learning_rate: f32,
    pub(crate) l2: f32,
}

impl EpochInputs<'_> {
    /// Linearly decaying learning rate, floored at 2 % of the initial one.
    fn rate(&self, step: usize) -> f32 {
        self.learning_rate * (1.0 - step as f32 / self.total_steps).max(0.02)
    }
}

impl HeadWeights {
    pub(crate) fn new(rows: usize, classes: usize) -> Self {
        Self {
            weights: vec![0.0; rows * classes],
            bias: vec![0.0; classes],
            scale: 1.0,
            classes,
        }
    }

    /// The weights with the lazy scale folded in.
    pub(crate) fn scaled(&self) -> Vec<f32> {
        self.weights.iter().map(|w| w * self.scale).collect()
    }

    /// Runs one epoch in `schedule`.
    pub(crate) fn epoch(&mut self, schedule: SgdSchedule, inputs: &EpochInputs<'_>) {
        match schedule {
            SgdSchedule::Sequential => self.sequential_epoch(inputs),
            SgdSchedule::Hogwild => self.hogwild_epoch(inputs),
            SgdSchedule::MiniBatch { size } => self.mini_batch_epoch(inputs, size.max(1)),
        }
    }

    /// Applies the L2 decay of one step with rate `lr`, folding the scale back into the weights before it
    /// underflows.
    fn decay(&mut self, lr: f32, l2: f32) {
        self.scale *= 1.0 - lr * l2;
        if self.scale < 1e-4 {
            for w in self.weights.iter_mut() {
                *w *= self.scale;
            }
            self.scale = 1.0;
        }
    }

    fn sequential_epoch(&mut self, inputs: &EpochInputs<'_>) {
        let k = self.classes;
        let mut gradient = vec![0.0f32; k];
        for (n, &i) in inputs.order.iter().enumerate() {
            let lr = inputs.rate(inputs.first_step + n);
            let (rows, values) = inputs.vectors.doc(i);
            logits_into(
                &self.weights,
                self.scale,
                &self.bias,
                k,
                rows,
                values,
                &mut gradient,
            );
            loss_gradient(&mut gradient, inputs, i);
            self.decay(lr, inputs.l2);
            let step_size = lr / self.scale;
            for (&r, &v) in rows.iter().zip(values) {
                let w = &mut self.weights[r as usize * k..(r as usize + 1) * k];
                let factor = step_size * v;
                for (w, g) in w.iter_mut().zip(&gradient) {
                    *w -= factor * g;
                }
            }
            for (b, g) in self.bias.iter_mut().zip(&gradient) {
                *b -= lr * g;
            }
        }
    }

    /// Hogwild: the epoch's comments are split into one contiguous share per thread; each thread reads and writes
    /// the shared weights with relaxed atomics (plain moves on x86). The lazy scale is frozen for the epoch and
    /// the epoch's L2 decay applied at its end, so no thread ever rescales the table under the others.
    fn hogwild_epoch(&mut self, inputs: &EpochInputs<'_>) {
        let k = self.classes;
        let shared: Vec<AtomicU32> = self
            .weights
            .iter()
            .map(|w| AtomicU32::new(w.to_bits()))
            .collect();
        let bias: Vec<AtomicU32> = self
            .bias
            .iter()
            .map(|w| AtomicU32::new(w.to_bits()))
            .collect();
        let scale = self.scale;
        let threads = rayon::current_num_threads().max(1);
        let share = inputs.order.len().div_ceil(threads).max(1);
        inputs
            .order
            .par_chunks(share)
            .enumerate()
            .for_each(|(part, chunk)| {
                let load = |a: &AtomicU32| f32::from_bits(a.load(Ordering::Relaxed));
                let mut gradient = vec![0.0f32; k];
                for (n, &i) in chunk.iter().enumerate() {
                    // Threads advance through the epoch side by side, so step n of any thread is global step
                    // ≈ n·threads: the schedule decays as in the sequential run.
                    let lr = inputs.rate(inputs.first_step + n * threads + part);
                    let (rows, values) = inputs.vectors.doc(i);
                    for (g, b) in gradient.iter_mut().zip(&bias) {
                        *g = load(b);
                    }
                    for (&r, &v) in rows.iter().zip(values) {
                        let w = &shared[r as usize * k..(r as usize + 1) * k];
                        for (g, w) in gradient.iter_mut().zip(w) {
                            *g += scale * v * load(w);
                        }
                    }
                    loss_gradient(&mut gradient, inputs, i);
                    let step_size = lr / scale;
                    for (&r, &v) in rows.iter().zip(values) {
                        let w = &shared[r as usize * k..(r as usize + 1) * k];
                        let factor = step_size * v;
                        for (w, g) in w.iter().zip(&gradient) {
                            w.store((load(w) - factor * g).to_bits(), Ordering::Relaxed);
                        }
                    }
                    for (b, g) in bias.iter().zip(&gradient) {
                        b.store((load(b) - lr * g).to_bits(), Ordering::Relaxed);
                    }
                }
            });
        self.weights = shared
            .into_iter()
            .map(|w| f32::from_bits(w.into_inner()))
            .collect();
        self.bias = bias
            .into_iter()
            .map(|w| f32::from_bits(w.into_inner()))
            .collect();
        for n in 0..inputs.order.len() {
            self.decay(inputs.rate(inputs.first_step + n), inputs.l2);
        }
    }

    /// Synchronous mini-batches: the batch's gradients are computed in parallel at the same weights; then each
    /// thread applies every comment's update to the rows it owns (row mod threads), in batch order, so the result
    /// does not depend on thread timing.
    fn mini_batch_epoch(&mut self, inputs: &EpochInputs<'_>, size: usize) {
        let k = self.classes;
        let threads = rayon::current_num_threads().max(1);
        let mut gradients = vec![0.0f32; size * k];
        for (b, batch) in inputs.order.chunks(size).enumerate() {
            let first = inputs.first_step + b * size;
            let (weights, scale, bias) = (&self.weights, self.scale, &self.bias);
            gradients[..batch.len() * k]
                .par_chunks_mut(k)
                .zip(batch.par_iter())
                .for_each(|(gradient, &i)| {
                    let (rows, values) = inputs.vectors.doc(i);
                    logits_into(weights, scale, bias, k, rows, values, gradient);
                    loss_gradient(gradient, inputs, i);
                });
            for n in 0..batch.len() {
                self.decay(inputs.rate(first + n), inputs.l2);
            }
            let scale = self.scale;
            let gradients = &gradients[..batch.len() * k];
            // Rows are dealt to owners in blocks of 64 rows so that a thread's writes stay on its own cache lines.
            let block_rows = 64usize;
            let row_count = self.weights.len() / k;
            let mut owned: Vec<(usize, &mut [f32])> = self
                .weights
                .chunks_mut(block_rows * k)
                .enumerate()
                .collect();
            let mut per_thread: Vec<Vec<(usize, &mut [f32])>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (block, rows) in owned.drain(..) {
                per_thread[block % threads].push((block, rows));
            }
            per_thread
                .par_iter_mut()
                .enumerate()
                .for_each(|(t, blocks)| {
                    for (n, &i) in batch.iter().enumerate() {
                        let step_size = inputs.rate(first + n) / scale;
                        let gradient = &gradients[n * k..(n + 1) * k];
                        let (rows, values) = inputs.vectors.doc(i);
                        for (&r, &v) in rows.iter().zip(values) {
                            let block = r as usize / block_rows;
                            if block % threads != t {
                                continue;
                            }
                            debug_assert!((r as usize) < row_count);
                            let slot = block / threads;
                            let start = (r as usize % block_rows) * k;
                            let w = &mut blocks[slot].1[start..start + k];
                            let factor = step_size * v;
                            for (w, g) in w.iter_mut().zip(gradient) {
                                *w -= factor * g;
                            }
                        }
                    }
                });
            for (n, gradient) in gradients.chunks(k).enumerate() {
                let lr = inputs.rate(first + n);
                for (b, g) in self.bias.iter_mut().zip(gradient) {
                    *b -= lr * g;
                }
            }
        }
    }
}

/// The head's logits for one comment: `bias + scale · Σ v · W[row]`.
pub(crate) fn logits_into(
    weights: &[f32],
    scale: f32,
    bias: &[f32],
    k: usize,
    rows: &[u32],
    values: &[f32],
    out: &mut [f32],
) {
    out.copy_from_slice(bias);
    for (&r, &v) in rows.iter().zip(values) {
        let w = &weights[r as usize * k..(r as usize + 1) * k];
        for (l, w) in out.iter_mut().zip(w) {
            *l += scale * v * w;
        }
    }
}

/// Turns logits into the gradient of the class-weighted cross-entropy w.r.t. the logits: `cw · (p − onehot)`.
fn loss_gradient(logits: &mut [f32], inputs: &EpochInputs<'_>, comment: usize) {
    models::classifier::softmax_in_place(logits, 1.0);
    let target = inputs.targets[comment] as usize;
    logits[target] -= 1.0;
    let cw = inputs.class_weights[target];
    for g in logits.iter_mut() {
        *g *= cw;
    }
}
