//! Fine-tuned replacements for some of the encoder's tensors: the deep tier retrains the top layers on the
//! labelled history and ships them in its own file, while the base encoder stays the one `pqrs encoder fetch`
//! converted. Names and shapes are the GGUF image's (Hugging Face BERT names, weights `out × in`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bert::{BertConfig, names};

/// One replacement tensor; `values` travel outside the JSON (see `crate::fusion`'s file layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunedTensor {
    /// GGUF name, e.g. `encoder.layer.11.output.dense.weight`.
    pub name: String,
    /// Shape, as in the GGUF image.
    pub shape: Vec<usize>,
    /// Row-major values.
    #[serde(skip)]
    pub values: Vec<f32>,
}

/// The tensors of one layer, by suffix after `encoder.layer.{l}.`, in the order they are stored.
pub const LAYER_TENSORS: [&str; 16] = [
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
];

/// The GGUF name of tensor `suffix` (one of [`LAYER_TENSORS`]) of layer `layer`.
pub fn layer_tensor_name(layer: usize, suffix: &str) -> String {
    names::layer(layer, suffix)
}

/// The shape of tensor `suffix` (one of [`LAYER_TENSORS`]) in an encoder of shape `config`.
pub fn layer_tensor_shape(config: &BertConfig, suffix: &str) -> Vec<usize> {
    let (h, ff) = (config.hidden, config.intermediate);
    match suffix {
        "intermediate.dense.weight" => vec![ff, h],
        "intermediate.dense.bias" => vec![ff],
        "output.dense.weight" => vec![h, ff],
        s if s.ends_with(".weight") && !s.contains("LayerNorm") => vec![h, h],
        _ => vec![h],
    }
}

/// A short fingerprint of replacement tensors (names, shapes and values), so that caches of embeddings made with
/// them are never confused with the base encoder's.
pub fn tuned_digest(tensors: &[TunedTensor]) -> String {
    let mut hasher = Sha256::new();
    for t in tensors {
        hasher.update(t.name.as_bytes());
        hasher.update([0]);
        for d in &t.shape {
            hasher.update((*d as u64).to_le_bytes());
        }
        for v in &t.values {
            hasher.update(v.to_le_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
