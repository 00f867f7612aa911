//! The BERT-style encoder forward pass (XLM-R layout: post-norm layers, erf GELU, learned absolute positions)
//! in candle. f32 weight matrices are kept transposed for gemm; Q4_0 blocks as stored and f16 weights go through
//! candle's `QMatMul`.
//!
//! Our own module rather than candle-transformers' `BertModel`: that model takes plain `Linear` layers (no
//! quantised matmuls) and a dense f32 word-embedding table (250k × 384 × 4 bytes = 384 MB), whereas here the
//! table stays in Q4_0 (54 MB) and only the rows of the batch's tokens are dequantised, which is exact.

use std::borrow::Cow;
use std::io::Cursor;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{D, Device, Module, Tensor};
use candle_nn::LayerNorm;
use serde::{Deserialize, Serialize};

use super::EncoderError;
use super::ops::AddBias;
use super::tuned::TunedTensor;

/// Shapes and constants of a BERT-style encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Hidden size (embedding dimension).
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Rows of the word-embedding table.
    pub vocab_rows: usize,
    /// Rows of the position table; the first token takes row 0.
    pub max_positions: usize,
    /// Rows of the token-type table (only row 0 is used).
    pub type_vocab: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
}

/// How the weight matrices are kept in memory and multiplied.
///
/// f32 is the default: with the workspace's default target (x86-64 without `target-feature=+avx2`), candle's
/// Q4_0 × Q8_0 dot product falls back to scalar code (its AVX2 kernels are selected at compile time) and was
/// measured 5–7× slower than f32 per comment; f16 brought no gain on CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MatmulPrecision {
    /// Q4_0 blocks as stored; activations are quantised to Q8_0 per matmul, as ggml and `e5.c` do.
    Q4,
    /// Weights dequantised to f16 at load.
    F16,
    /// Weights dequantised to f32 at load.
    #[default]
    F32,
}

impl std::str::FromStr for MatmulPrecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "q4" => Ok(Self::Q4),
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            other => Err(format!("unknown precision `{other}` (q4, f16 or f32)")),
        }
    }
}

/// GGUF metadata keys of the converted encoder.
pub(crate) mod keys {
    pub const HIDDEN: &str = "bert.embedding_length";
    pub const LAYERS: &str = "bert.block_count";
    pub const HEADS: &str = "bert.attention.head_count";
    pub const INTERMEDIATE: &str = "bert.feed_forward_length";
    pub const VOCAB_ROWS: &str = "bert.vocab_size";
    pub const MAX_POSITIONS: &str = "bert.context_length";
    pub const TYPE_VOCAB: &str = "bert.token_type_count";
    pub const EPS: &str = "bert.attention.layer_norm_epsilon";
}

impl BertConfig {
    /// The GGUF metadata that records this configuration.
    pub(crate) fn to_metadata(self) -> Vec<(&'static str, gguf_file::Value)> {
        use gguf_file::Value;
        let u = |v: usize| Value::U32(v as u32);
        vec![
            ("general.architecture", Value::String("bert".into())),
            (keys::HIDDEN, u(self.hidden)),
            (keys::LAYERS, u(self.layers)),
            (keys::HEADS, u(self.heads)),
            (keys::INTERMEDIATE, u(self.intermediate)),
            (keys::VOCAB_ROWS, u(self.vocab_rows)),
            (keys::MAX_POSITIONS, u(self.max_positions)),
            (keys::TYPE_VOCAB, u(self.type_vocab)),
            (keys::EPS, Value::F32(self.layer_norm_eps as f32)),
        ]
    }

    fn from_metadata(content: &gguf_file::Content) -> Result<Self, EncoderError> {
        let get = |key: &str| -> Result<usize, EncoderError> {
            let value = content
                .metadata
                .get(key)
                .ok_or_else(|| EncoderError::Weights(format!("metadata `{key}` is missing")))?;
            let value = value
                .to_u32()
                .map_err(|e| EncoderError::Weights(format!("metadata `{key}`: {e}")))?;
            Ok(value as usize)
        };
        let eps = content
            .metadata
            .get(keys::EPS)
            .and_then(|v| v.to_f32().ok())
            .ok_or_else(|| EncoderError::Weights(format!("metadata `{}` is missing", keys::EPS)))?;
        let config = BertConfig {
            hidden: get(keys::HIDDEN)?,
            layers: get(keys::LAYERS)?,
            heads: get(keys::HEADS)?,
            intermediate: get(keys::INTERMEDIATE)?,
            vocab_rows: get(keys::VOCAB_ROWS)?,
            max_positions: get(keys::MAX_POSITIONS)?,
            type_vocab: get(keys::TYPE_VOCAB)?,
            layer_norm_eps: f64::from(eps),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), EncoderError> {
        let positive = [
            self.hidden,
            self.layers,
            self.heads,
            self.intermediate,
            self.vocab_rows,
            self.max_positions,
            self.type_vocab,
        ]
        .iter()
        .all(|&v| v > 0);
        let eps_ok = self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0;
        if !positive || !self.hidden.is_multiple_of(self.heads) || !eps_ok {
            return Err(EncoderError::Weights(format!(
                "inconsistent configuration {self:?}"
            )));
        }
        Ok(())
    }
}

/// GGUF tensor names of the converted encoder (the Hugging Face BERT names).
pub(crate) mod names {
    pub const WORD: &str = "embeddings.word_embeddings.weight";
    pub const POSITION: &str = "embeddings.position_embeddings.weight";
    pub const TOKEN_TYPE: &str = "embeddings.token_type_embeddings.weight";
    pub const EMB_NORM_W: &str = "embeddings.LayerNorm.weight";
    pub const EMB_NORM_B: &str = "embeddings.LayerNorm.bias";

    /// The name of a tensor of layer `l`, e.g. `layer(3, "attention.self.query.weight")`.
    pub fn layer(l: usize, suffix: &str) -> String {
        format!("encoder.layer.{l}.{suffix}")
    }
}

/// Tensors of a GGUF image held in memory, some possibly replaced by fine-tuned f32 values.
pub struct GgufWeights<'a> {
    content: gguf_file::Content,
    bytes: &'a [u8],
    replaced: &'a [TunedTensor],
}

impl<'a> GgufWeights<'a> {
    /// Reads the GGUF header of `bytes`; tensors are read on demand.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, EncoderError> {
        let content = gguf_file::Content::read(&mut Cursor::new(bytes))
            .map_err(|e| EncoderError::Weights(format!("not a GGUF image: {e}")))?;
        Ok(Self {
            content,
            bytes,
            replaced: &[],
        })
    }

    /// These weights with `tuned` in place of the image's tensors of the same names, which must exist with the
    /// same shapes.
    pub fn with_replacements(mut self, tuned: &'a [TunedTensor]) -> Result<Self, EncoderError> {
        for t in tuned {
            let info = self.content.tensor_infos.get(&t.name).ok_or_else(|| {
                EncoderError::Weights(format!("tuned tensor `{}` is not in the encoder", t.name))
            })?;
            if info.shape.dims() != t.shape.as_slice()
                || t.values.len() != t.shape.iter().product::<usize>()
            {
                return Err(EncoderError::Weights(format!(
                    "tuned tensor `{}` has shape {:?} and {} values, the encoder's is {:?}",
                    t.name,
                    t.shape,
                    t.values.len(),
                    info.shape.dims()
                )));
            }
        }
        self.replaced = tuned;
        Ok(self)
    }

    /// The encoder configuration recorded in the metadata.
    pub fn config(&self) -> Result<BertConfig, EncoderError> {
        BertConfig::from_metadata(&self.content)
    }

    fn qtensor(&self, name: &str, shape: Option<&[usize]>) -> Result<QTensor, EncoderError> {
        if let Some(t) = self.replaced.iter().find(|t| t.name == name) {
            // Shapes were checked against the image in `with_replacements`.
            if let Some(shape) = shape
                && t.shape != shape
            {
                return Err(EncoderError::Weights(format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.shape
                )));
            }
            return f32_qtensor(&t.values, &t.shape);
        }
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EncoderError::Weights(format!("tensor `{name}` is missing")))?;
        if let Some(shape) = shape
            && info.shape.dims() != shape
        {
            return Err(EncoderError::Weights(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                info.shape.dims()
            )));
        }
        // Bounds are checked here because candle would otherwise fail with an I/O error on a short buffer.
        let start = self.content.tensor_data_offset + info.offset;
        let len =
            info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        let end = usize::try_from(start).ok().and_then(|s| s.checked_add(len));
        if end.is_none_or(|end| end > self.bytes.len()) {
            return Err(EncoderError::Weights(format!(
                "tensor `{name}` runs past the end of the image"
            )));
        }
        self.content
            .tensor(&mut Cursor::new(self.bytes), name, &Device::Cpu)
            .map_err(|e| EncoderError::Weights(format!("tensor `{name}`: {e}")))
    }

    fn dense(&self, name: &str, shape: &[usize]) -> Result<Tensor, EncoderError> {
        Ok(self.qtensor(name, Some(shape))?.dequantize(&Device::Cpu)?)
    }

    /// A tensor dequantised to f32 whatever its stored type, in its stored shape.
    pub fn dequantized(&self, name: &str) -> Result<Tensor, EncoderError> {
        Ok(self.qtensor(name, None)?.dequantize(&Device::Cpu)?)
    }
}

/// A weight matrix and how it is multiplied.
enum Weight {
    /// f32, stored transposed (`in × out`, contiguous) so that `x · W` needs no repacking: gemm turns the
    /// row-major product around (it computes `(x · W)ᵀ = Wᵀ · xᵀ`) and reads this layout directly as its
    /// column-major left operand. Multiplying by the transposed view of an `out × in` matrix, as candle's
    /// `QMatMul` does, makes gemm repack the whole matrix on every call: with one comment (~42 rows) that copy cost
    /// as much as the products themselves.
    Transposed(Tensor),
    /// Q4_0 blocks or f16 values, `out × in`, through candle's quantised matmul.
    Quantized(QMatMul),
}

/// `x · Wᵀ + b` on rows of `x`.
struct Linear {
    weight: Weight,
    bias: Tensor,
}

impl Linear {
    /// The matrices `{prefix}.weight` (each `out_dim × in_dim`) of `prefixes` stacked into one `Σ out × in`
    /// matrix, and their biases concatenated: one product computes the query, key and value projections.
    fn load_stacked(
        weights: &GgufWeights<'_>,
        prefixes: &[String],
        out_dim: usize,
        in_dim: usize,
        precision: MatmulPrecision,
    ) -> Result<Self, EncoderError> {
        let parts = prefixes
            .iter()
            .map(|prefix| weights.qtensor(&format!("{prefix}.weight"), Some(&[out_dim, in_dim])))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = out_dim * parts.len();
        let all_q4 = parts.iter().all(|q| q.dtype() == GgmlDType::Q4_0);
        let weight = match precision {
            MatmulPrecision::Q4 if all_q4 => {
                // Q4_0 rows are whole blocks, so stacking matrices is concatenating their bytes.
                let mut blocks = Vec::new();
                for part in &parts {
                    blocks.extend_from_slice(&part.data()?);
                }
                Weight::Quantized(QMatMul::QTensor(std::sync::Arc::new(q4_qtensor(
                    &blocks,
                    &[rows, in_dim],
                )?)))
            }
            MatmulPrecision::F16 => {
                let parts = parts
                    .iter()
                    .map(|q| q.dequantize_f16(&Device::Cpu))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Weight::Quantized(QMatMul::TensorF16(Tensor::cat(&parts, 0)?))
            }
            _ => {
                let parts = parts
                    .iter()
                    .map(|q| q.dequantize(&Device::Cpu))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Weight::Transposed(Tensor::cat(&parts, 0)?.t()?.contiguous()?)
            }
        };
        let biases = prefixes
            .iter()
            .map(|prefix| weights.dense(&format!("{prefix}.bias"), &[out_dim]))
            .collect::<Result<Vec<_>, _>>()?;
        let bias = Tensor::cat(&biases, 0)?;
        Ok(Self { weight, bias })
    }

    fn load(
        weights: &GgufWeights<'_>,
        prefix: &str,
        out_dim: usize,
        in_dim: usize,
        precision: MatmulPrecision,
    ) -> Result<Self, EncoderError> {
        Self::load_stacked(weights, &[prefix.to_owned()], out_dim, in_dim, precision)
    }

    /// `x` is `rows × in`; the bias (and the GELU if `gelu`) are applied in place on the fresh product.
    fn forward(&self, x: &Tensor, gelu: bool) -> candle_core::Result<Tensor> {
        let product = match &self.weight {
            Weight::Transposed(w) => x.matmul(w)?,
            Weight::Quantized(w) => w.forward(x)?,
        };
        product.inplace_op2(&self.bias, &AddBias { gelu })?;
        Ok(product)
    }
}

fn layer_norm(
    weights: &GgufWeights<'_>,
    prefix: &str,
    dim: usize,
    eps: f64,
) -> Result<LayerNorm, EncoderError> {
    Ok(LayerNorm::new(
        weights.dense(&format!("{prefix}.weight"), &[dim])?,
        weights.dense(&format!("{prefix}.bias"), &[dim])?,
        eps,
    ))
}

struct Layer {
    /// Query, key and value projections stacked: `hidden → 3 · hidden`.
    query_key_value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    output_norm: LayerNorm,
}

/// The encoder: embeddings, layers, masked mean pooling and L2 normalisation.
pub struct BertEncoder {
    config: BertConfig,
    /// Q4_0 rows of the word table, or f32 rows for an image that stores it densely.
    word_table: QTensor,
    /// Position rows with the token-type row 0 already added (every token has type 0).
    positions: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl BertEncoder {
    /// Loads the encoder from GGUF weights with the given matmul precision.
    pub fn load(
        weights: &GgufWeights<'_>,
        precision: MatmulPrecision,
    ) -> Result<Self, EncoderError> {
        let c = weights.config()?;
        let (h, ff) = (c.hidden, c.intermediate);
        let word_table = weights.qtensor(names::WORD, Some(&[c.vocab_rows, h]))?;
        let token_type = weights
            .dense(names::TOKEN_TYPE, &[c.type_vocab, h])?
            .get(0)?;
        let positions = weights
            .dense(names::POSITION, &[c.max_positions, h])?
            .broadcast_add(&token_type)?;
        let embedding_norm = LayerNorm::new(
            weights.dense(names::EMB_NORM_W, &[h])?,
            weights.dense(names::EMB_NORM_B, &[h])?,
            c.layer_norm_eps,
        );
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let p = |s: &str| names::layer(l, s);
            let linear = |s: &str, o, i| Linear::load(weights, &p(s), o, i, precision);
            let query_key_value = Linear::load_stacked(
                weights,
                &["query", "key", "value"].map(|m| p(&format!("attention.self.{m}"))),
                h,
                h,
                precision,
            )?;
            layers.push(Layer {
                query_key_value,
                attention_out: linear("attention.output.dense", h, h)?,
                attention_norm: layer_norm(
                    weights,
                    &p("attention.output.LayerNorm"),
                    h,
                    c.layer_norm_eps,
                )?,
                ffn_in: linear("intermediate.dense", ff, h)?,
                ffn_out: linear("output.dense", h, ff)?,
                output_norm: layer_norm(weights, &p("output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(Self {
            config: c,
            word_table,
            positions,
            embedding_norm,
            layers,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Rows `ids` of the word table, dequantised: only the batch's rows are ever expanded.
    fn word_rows(&self, ids: &[u32]) -> Result<Tensor, EncoderError> {
        let dtype = self.word_table.dtype();
        let row_bytes = self.config.hidden / dtype.block_size() * dtype.type_size();
        let data = self.word_table.data()?;
        let mut rows = Vec::with_capacity(ids.len() * row_bytes);
        for &id in ids {
            let id = id as usize;
            if id >= self.config.vocab_rows {
                return Err(EncoderError::TokenOutOfRange {
                    id,
                    rows: self.config.vocab_rows,
                });
            }
            rows.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
        }
        let storage = QStorage::from_data(
            Cow::Borrowed(aligned(&rows).as_slice()),
            &Device::Cpu,
            dtype,
        )?;
        let q = QTensor::new(storage, (ids.len(), self.config.hidden))?;
        Ok(q.dequantize(&Device::Cpu)?)
    }

    /// Mean-pooled, L2-normalised embeddings of a padded batch: `ids` and `mask` are `batch × seq` row-major,
    /// `mask` 1 for real tokens and 0 for padding. Padding never changes a row's embedding.
    pub fn embed(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        if ids.len() != batch * seq || mask.len() != batch * seq || seq == 0 {
            return Err(EncoderError::Input(format!(
                "ids ({}) and mask ({}) must both hold {batch} × {seq} tokens",
                ids.len(),
                mask.len()
            )));
        }
        if seq > self.config.max_positions {
            return Err(EncoderError::Input(format!(
                "{seq} tokens exceed the {} positions of the encoder",
                self.config.max_positions
            )));
        }
        let hidden = self.hidden_states(ids, mask, batch, seq)?;
        let mask = Tensor::from_iter(mask.iter().map(|&m| (m != 0) as u8 as f32), &Device::Cpu)?
            .reshape((batch, seq, 1))?;
        Ok(mean_pool(&hidden, &mask)?.to_vec2::<f32>()?)
    }

    /// Final hidden states, `batch × seq × hidden`.
    pub fn hidden_states(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Tensor, EncoderError> {
        self.hidden_states_through(ids, mask, batch, seq, self.layers.len())
    }

    /// Hidden states after the first `layers` layers, `batch × seq × hidden`.
    pub fn hidden_states_through(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
        layers: usize,
    ) -> Result<Tensor, EncoderError> {
        let c = &self.config;
        let (heads, head_dim) = (c.heads, c.hidden / c.heads);
        // Rows are the batch's tokens (`batch · seq × hidden`) throughout, so that each projection is one
        // product over contiguous rows.
        let mut x = self
            .word_rows(ids)?
            .reshape((batch, seq, c.hidden))?
            .broadcast_add(&self.positions.narrow(0, 0, seq)?)?
            .reshape((batch * seq, c.hidden))?;
        x = self.embedding_norm.forward(&x)?;
        // Padding keys get a large negative score, so softmax gives them no weight; without padding (one comment,
        // as the cascade runs it) there is nothing to add.
        let key_bias = if mask.iter().all(|&m| m != 0) {
            None
        } else {
            let bias = mask.iter().map(|&m| if m != 0 { 0f32 } else { -1e9f32 });
            Some(Tensor::from_iter(bias, &Device::Cpu)?.reshape((batch, 1, 1, seq))?)
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        for layer in self.layers.iter().take(layers) {
            // One copy puts query, key and value in `batch × heads × seq × head_dim` order.
            let qkv = layer
                .query_key_value
                .forward(&x, false)?
                .reshape((batch, seq, 3, heads, head_dim))?
                .permute((2, 0, 3, 1, 4))?
                .contiguous()?;
            let q = (qkv.get(0)? * scale)?;
            let (k, v) = (qkv.get(1)?, qkv.get(2)?);
            let mut scores = q.matmul(&k.t()?)?;
            if let Some(bias) = &key_bias {
                scores = scores.broadcast_add(bias)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((batch * seq, c.hidden))?;
            let attended = layer.attention_out.forward(&context, false)?;
            x = layer.attention_norm.forward(&(x + attended)?)?;
            let inner = layer.ffn_in.forward(&x, true)?;
            let out = layer.ffn_out.forward(&inner, false)?;
            x = layer.output_norm.forward(&(x + out)?)?;
        }
        Ok(x.reshape((batch, seq, c.hidden))?)
    }
}

/// The sentence embeddings of hidden states `batch × seq × hidden`: the mean over the tokens whose `mask`
/// (`batch × seq × 1`, 1 for a token, 0 for padding) is set, L2-normalised. Plain candle operations, so that
/// fine-tuning can differentiate through it.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let summed = hidden.broadcast_mul(mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norm)
}

/// Writes a GGUF image with the encoder configuration as metadata and the given tensors.
pub(crate) fn write_gguf(
    config: &BertConfig,
    tensors: &[(String, QTensor)],
) -> Result<Vec<u8>, EncoderError> {
    let metadata = config.to_metadata();
    let metadata: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensors)?;
    Ok(out.into_inner())
}

/// A QTensor holding f32 values.
pub(crate) fn f32_qtensor(values: &[f32], shape: &[usize]) -> Result<QTensor, EncoderError> {
    let tensor = Tensor::from_slice(values, shape, &Device::Cpu)?;
    Ok(QTensor::quantize(&tensor, GgmlDType::F32)?)
}

/// A QTensor over Q4_0 blocks, copied as they are.
pub(crate) fn q4_qtensor(blocks: &[u8], shape: &[usize]) -> Result<QTensor, EncoderError> {
    let storage = QStorage::from_data(
        Cow::Borrowed(aligned(blocks).as_slice()),
        &Device::Cpu,
        GgmlDType::Q4_0,
    )?;
    Ok(QTensor::new(storage, shape)?)
}

/// Bytes copied into a buffer aligned for the f16 scales of ggml blocks: candle reinterprets the bytes as blocks
/// and panics on a misaligned pointer, and a tensor inside an image may start at any offset.
struct Aligned {
    words: Vec<u16>,
    len: usize,
}

impl Aligned {
    fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

fn aligned(bytes: &[u8]) -> Aligned {
    let mut words = vec![0u16; bytes.len().div_ceil(2)];
    bytemuck::cast_slice_mut::<u16, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    Aligned {
        words,
        len: bytes.len(),
    }
}
