//! The deep tier's fused heads and the cascade policy: per head, a softmax layer over the fast model's
//! log-probabilities concatenated with the encoder's sentence embedding, and the rule that decides which comments
//! are worth the encoder's cost. Pure: bytes in, bytes out; the encoder itself lives in `crate::encoder`.
//!
//! The file (`*.deep`) is self-checking like the model artifact:
//!
//! ```text
//! "PQRSDEEP"   8 bytes   magic
//! version      u32       DEEP_FORMAT_VERSION (1: no tuned tensors section)
//! json_len     u64       then that many bytes of JSON (DeepHeads, head weights included: a few hundred KB)
//! tuned_len    u64       then that many bytes: the values of `DeepHeads::tuned`, f32 little-endian, in order
//! sha256       32 bytes  of everything before it
//! ```
//!
//! The fine-tuned encoder layers (several MB) are kept out of the JSON: as decimal text they would be several times
//! larger and slow to parse.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classifier::softmax_in_place;
use crate::encoder::TunedTensor;

/// First bytes of every deep-tier file.
pub const DEEP_MAGIC: &[u8; 8] = b"PQRSDEEP";
/// Version of the layout above.
pub const DEEP_FORMAT_VERSION: u32 = 2;
/// Log-probabilities of the fast model are clipped here, so that a zero probability stays a finite feature.
pub const LOG_FLOOR: f32 = -12.0;

/// Why bytes are not a usable deep tier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeepError {
    /// The file ends before a part it announces.
    #[error("deep tier file is truncated")]
    Truncated,
    /// Not a deep-tier file.
    #[error("not a pqrs deep-tier file (bad magic bytes)")]
    BadMagic,
    /// Another format version.
    #[error(
        "deep tier format version {0} is not supported (this build reads {DEEP_FORMAT_VERSION})"
    )]
    UnsupportedVersion(u32),
    /// Damaged content.
    #[error("deep tier checksum does not match: the file is damaged")]
    BadChecksum,
    /// The JSON does not parse or its shapes disagree.
    #[error("deep tier content is invalid: {0}")]
    Invalid(String),
}

/// One fused head: `softmax(W · standardise([log p_fast ; embedding]) + b)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepHead {
    /// Head name, as in the fast model.
    pub name: String,
    /// Labels, in the fast model's order for this head.
    pub labels: Vec<String>,
    /// labels × inputs, row-major.
    pub weights: Vec<f32>,
    /// One per label.
    pub bias: Vec<f32>,
}

/// When a comment goes to the deep tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadePolicy {
    /// A comment goes deep when any head's fast confidence is below this head's value (one per head, in order).
    pub min_fast_confidence: Vec<f32>,
    /// Share of the validation comments that went deep under this policy.
    pub validation_deep_share: f64,
    /// Mean latency per comment the policy was chosen for, in milliseconds.
    pub target_mean_ms: f64,
    /// Encoder cost per comment the budget assumed, in milliseconds (given to `pqrs train --deep`, or measured
    /// once and stored).
    pub encoder_ms: f64,
}

/// The deep tier: what it was trained on, its heads and its cascade policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepHeads {
    /// SHA-256 of the converted encoder weights this tier was trained with; the service refuses another encoder.
    pub encoder_sha256: String,
    /// Embedding width.
    pub embedding_dim: usize,
    /// Id of the fast model whose probabilities are inputs; the service refuses another fast model.
    pub fast_model_id: String,
    /// Classes of the fast model (all heads), the first block of inputs.
    pub fast_classes: usize,
    /// Per input: mean and standard deviation used to standardise it.
    pub input_mean: Vec<f32>,
    /// See `input_mean`.
    pub input_scale: Vec<f32>,
    /// The fused heads, in the fast model's head order.
    pub heads: Vec<DeepHead>,
    /// Which comments go deep.
    pub cascade: CascadePolicy,
    /// Training facts (data fingerprint, validation figures), free-form.
    pub training: serde_json::Value,
    /// Encoder tensors fine-tuned on the labelled history, in place of the base encoder's (empty: the base
    /// encoder as converted). Their values are stored after the JSON.
    #[serde(default)]
    pub tuned: Vec<TunedTensor>,
}

/// Reusable buffer for [`DeepHeads::score`].
#[derive(Debug, Default)]
pub struct DeepScratch {
    inputs: Vec<f32>,
}

impl DeepHeads {
    /// Inputs per head: the fast probabilities and the embedding.
    pub fn input_len(&self) -> usize {
        self.fast_classes + self.embedding_dim
    }

    /// Whether the comment whose fast probabilities are `fast_probabilities` (all heads, as the fast model
    /// returns them) and whose chosen labels are `chosen` should go to the deep tier.
    pub fn wants_deep(&self, fast_probabilities: &[f32], chosen: &[usize]) -> bool {
        let label_counts = self.heads.iter().map(|h| h.labels.len());
        chosen_confidences(label_counts, fast_probabilities, chosen)
            .zip(&self.cascade.min_fast_confidence)
            .any(|(confidence, &threshold)| confidence < threshold)
    }

    /// The answer of the cascade once the deep tier has run: per head, the fused head's probabilities where the
    /// fast model hesitated on that head, the fast model's where it was sure. Decode `out` with the fast model's
    /// parent links as usual, so that a theme stays inside its area whichever tier chose each.
    ///
    /// Why per head: a comment goes deep because *some* head hesitated; on the heads the fast model was sure of,
    /// its n-grams are the better evidence (on held-out comments the fused heads are weaker than the fast model
    /// across the board and only win where it hesitates).
    pub fn cascade_probabilities(
        &self,
        fast_probabilities: &[f32],
        chosen: &[usize],
        deep_probabilities: &[f32],
        out: &mut Vec<f32>,
    ) {
        self.cascade_probabilities_at(
            &self.cascade.min_fast_confidence,
            fast_probabilities,
            chosen,
            deep_probabilities,
            out,
        );
    }

    /// [`Self::cascade_probabilities`] with other per-head thresholds than the policy's (training tries many).
    pub fn cascade_probabilities_at(
        &self,
        min_fast_confidence: &[f32],
        fast_probabilities: &[f32],
        chosen: &[usize],
        deep_probabilities: &[f32],
        out: &mut Vec<f32>,
    ) {
        out.clear();
        let mut at = 0;
        for (h, head) in self.heads.iter().enumerate() {
            let k = head.labels.len();
            let unsure = fast_probabilities[at + chosen[h]] < min_fast_confidence[h];
            let source = if unsure {
                deep_probabilities
            } else {
                fast_probabilities
            };
            out.extend_from_slice(&source[at..at + k]);
            at += k;
        }
    }

    /// Writes every fused head's probabilities into `out` (heads concatenated, like the fast model's output).
    pub fn score(
        &self,
        fast_probabilities: &[f32],
        embedding: &[f32],
        scratch: &mut DeepScratch,
        out: &mut Vec<f32>,
    ) {
        fused_inputs(fast_probabilities, embedding, &mut scratch.inputs);
        for ((x, mean), scale) in scratch
            .inputs
            .iter_mut()
            .zip(&self.input_mean)
            .zip(&self.input_scale)
        {
            *x = (*x - mean) / scale;
        }
        out.clear();
        let n = self.input_len();
        for head in &self.heads {
            let start = out.len();
            for (c, b) in head.bias.iter().enumerate() {
                let w = &head.weights[c * n..(c + 1) * n];
                out.push(
                    b + w
                        .iter()
                        .zip(&scratch.inputs)
                        .map(|(w, x)| w * x)
                        .sum::<f32>(),
                );
            }
            softmax_in_place(&mut out[start..], 1.0);
        }
    }

    /// Checks that every shape agrees.
    pub fn validate(&self) -> Result<(), DeepError> {
        let n = self.input_len();
        let invalid = |m: String| Err(DeepError::Invalid(m));
        for t in &self.tuned {
            if t.values.len() != t.shape.iter().product::<usize>() {
                return invalid(format!(
                    "tuned tensor `{}` does not match its shape",
                    t.name
                ));
            }
            if t.values.iter().any(|v| !v.is_finite()) {
                return invalid(format!("tuned tensor `{}` has a non-finite value", t.name));
            }
        }
        if self.input_mean.len() != n || self.input_scale.len() != n {
            return invalid(format!(
                "standardisation has {} / {} values, inputs are {n}",
                self.input_mean.len(),
                self.input_scale.len()
            ));
        }
        if self
            .input_scale
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return invalid("a standardisation scale is not a positive number".into());
        }
        if self.cascade.min_fast_confidence.len() != self.heads.len() {
            return invalid("the cascade needs one threshold per head".into());
        }
        let classes: usize = self.heads.iter().map(|h| h.labels.len()).sum();
        if classes != self.fast_classes {
            return invalid(format!(
                "heads have {classes} labels, the fast model {}",
                self.fast_classes
            ));
        }
        for head in &self.heads {
            let k = head.labels.len();
            if head.bias.len() != k || head.weights.len() != k * n {
                return invalid(format!("head `{}` weights are not {k} × {n}", head.name));
            }
            if head
                .weights
                .iter()
                .chain(&head.bias)
                .any(|w| !w.is_finite())
            {
                return invalid(format!("head `{}` has a non-finite weight", head.name));
            }
        }
        Ok(())
    }

    /// Serialises to the self-checking layout of the module documentation.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("deep heads serialise");
        let values: usize = self.tuned.iter().map(|t| t.values.len()).sum();
        let mut out = Vec::with_capacity(8 + 4 + 8 + json.len() + 8 + values * 4 + 32);
        out.extend_from_slice(DEEP_MAGIC);
        out.extend_from_slice(&DEEP_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&((values * 4) as u64).to_le_bytes());
        for t in &self.tuned {
            for v in &t.values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Reads and validates bytes written by [`DeepHeads::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DeepError> {
        if bytes.len() < 8 {
            return Err(DeepError::Truncated);
        }
        if &bytes[..8] != DEEP_MAGIC {
            return Err(DeepError::BadMagic);
        }
        let header = bytes.get(8..20).ok_or(DeepError::Truncated)?;
        let version = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        if version != 1 && version != DEEP_FORMAT_VERSION {
            return Err(DeepError::UnsupportedVersion(version));
        }
        // Each section is `u64 length, bytes`; version 1 has the JSON section alone.
        let section = |at: usize| -> Result<(usize, usize), DeepError> {
            let len = bytes.get(at..at + 8).ok_or(DeepError::Truncated)?;
            let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(at + 8))
                .ok_or(DeepError::Truncated)?;
            Ok((at + 8, end))
        };
        let (json_start, json_end) = section(12)?;
        let (tuned_start, end) = if version == 1 {
            (json_end, json_end)
        } else {
            section(json_end)?
        };
        let total = end.checked_add(32).ok_or(DeepError::Truncated)?;
        if bytes.len() < total {
            return Err(DeepError::Truncated);
        }
        if bytes.len() > total || Sha256::digest(&bytes[..end]).as_slice() != &bytes[end..total] {
            return Err(DeepError::BadChecksum);
        }
        let mut deep: DeepHeads = serde_json::from_slice(&bytes[json_start..json_end])
            .map_err(|e| DeepError::Invalid(e.to_string()))?;
        let mut values = bytes[tuned_start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")));
        let expected: usize = deep
            .tuned
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        if (end - tuned_start) != expected * 4 {
            return Err(DeepError::Invalid(format!(
                "the tuned tensors need {expected} values, the file holds {} bytes",
                end - tuned_start
            )));
        }
        for t in &mut deep.tuned {
            t.values = values.by_ref().take(t.shape.iter().product()).collect();
        }
        deep.validate()?;
        Ok(deep)
    }
}

/// Per head, the fast model's probability of the label it chose: the confidence the cascade compares with its
/// thresholds. `probabilities` holds every head's labels one head after another, `label_counts` says how many each
/// head has, `chosen` is the decoded label of each head. Training computes the confidence with this same function.
pub fn chosen_confidences<'a>(
    label_counts: impl IntoIterator<Item = usize> + 'a,
    probabilities: &'a [f32],
    chosen: &'a [usize],
) -> impl Iterator<Item = f32> + 'a {
    label_counts
        .into_iter()
        .zip(chosen)
        .scan(0, move |at, (labels, &c)| {
            let confidence = probabilities[*at + c];
            *at += labels;
            Some(confidence)
        })
}

/// The raw (unstandardised) inputs of the fused heads: clipped log fast probabilities, then the embedding.
pub fn fused_inputs(fast_probabilities: &[f32], embedding: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(fast_probabilities.iter().map(|p| p.ln().max(LOG_FLOOR)));
    out.extend_from_slice(embedding);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> DeepHeads {
        DeepHeads {
            encoder_sha256: "ab".into(),
            embedding_dim: 2,
            fast_model_id: "m".into(),
            fast_classes: 2,
            input_mean: vec![0.0; 4],
            input_scale: vec![1.0; 4],
            heads: vec![DeepHead {
                name: "type".into(),
                labels: vec!["queja".into(), "reclamo".into()],
                weights: vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                bias: vec![0.0, 0.0],
            }],
            cascade: CascadePolicy {
                min_fast_confidence: vec![0.8],
                validation_deep_share: 0.1,
                target_mean_ms: 3.0,
                encoder_ms: 30.0,
            },
            training: serde_json::json!({}),
            tuned: Vec::new(),
        }
    }

    #[test]
    fn the_embedding_decides_when_the_fast_inputs_are_silent() {
        let deep = tiny();
        let (mut scratch, mut out) = (DeepScratch::default(), Vec::new());
        deep.score(&[0.5, 0.5], &[0.0, 3.0], &mut scratch, &mut out);
        assert!(out[1] > 0.9, "{out:?}");
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn only_unsure_comments_go_deep() {
        let deep = tiny();
        assert!(deep.wants_deep(&[0.6, 0.4], &[0]));
        assert!(!deep.wants_deep(&[0.1, 0.9], &[1]));
    }

    #[test]
    fn only_the_heads_the_fast_model_hesitated_on_take_the_deep_answer() {
        let mut deep = tiny();
        let mut second = deep.heads[0].clone();
        second.name = "area".into();
        deep.heads.push(second);
        deep.fast_classes = 4;
        deep.cascade.min_fast_confidence = vec![0.8, 0.7];
        let fast = [0.9, 0.1, 0.6, 0.4];
        let fused = [0.2, 0.8, 0.3, 0.7];
        let mut out = Vec::new();
        deep.cascade_probabilities(&fast, &[0, 0], &fused, &mut out);
        // The first head was sure (0.9 ≥ 0.8): its fast answer stays; the second hesitated (0.6 < 0.7).
        assert_eq!(out, vec![0.9, 0.1, 0.3, 0.7]);
    }

    #[test]
    fn round_trip_and_damage_are_detected() {
        let deep = tiny();
        let bytes = deep.to_bytes();
        assert_eq!(DeepHeads::from_bytes(&bytes), Ok(deep));
        for cut in [0, 7, 12, 30, bytes.len() - 1] {
            assert!(DeepHeads::from_bytes(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[25] ^= 1;
        assert_eq!(DeepHeads::from_bytes(&flipped), Err(DeepError::BadChecksum));
        let mut magic = bytes;
        magic[0] = b'X';
        assert_eq!(DeepHeads::from_bytes(&magic), Err(DeepError::BadMagic));
    }

    #[test]
    fn tuned_tensors_travel_after_the_json_and_version_1_files_still_load() {
        let mut deep = tiny();
        deep.tuned = vec![
            TunedTensor {
                name: "encoder.layer.1.output.dense.bias".into(),
                shape: vec![3],
                values: vec![0.5, -1.0, 2.0],
            },
            TunedTensor {
                name: "encoder.layer.1.output.dense.weight".into(),
                shape: vec![3, 2],
                values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            },
        ];
        let bytes = deep.to_bytes();
        assert_eq!(DeepHeads::from_bytes(&bytes), Ok(deep.clone()));
        // The values are not in the JSON.
        let json_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let json = std::str::from_utf8(&bytes[20..20 + json_len]).unwrap();
        assert!(json.contains("output.dense.weight") && !json.contains("values"));

        // A version-1 file: the JSON section alone.
        let mut old = tiny();
        let json = serde_json::to_vec(&old).unwrap();
        let mut v1 = Vec::new();
        v1.extend_from_slice(DEEP_MAGIC);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&(json.len() as u64).to_le_bytes());
        v1.extend_from_slice(&json);
        let checksum = Sha256::digest(&v1);
        v1.extend_from_slice(&checksum);
        assert_eq!(DeepHeads::from_bytes(&v1), Ok(old.clone()));

        // Values that do not fill the announced shapes are refused, even with a valid checksum.
        old.tuned = deep.tuned.clone();
        old.tuned[1].values.pop();
        assert!(matches!(
            DeepHeads::from_bytes(&old.to_bytes()),
            Err(DeepError::Invalid(_))
        ));
    }

    #[test]
    fn inconsistent_shapes_are_refused() {
        let mut deep = tiny();
        deep.heads[0].weights.pop();
        let bytes = deep.to_bytes();
        assert!(matches!(
            DeepHeads::from_bytes(&bytes),
            Err(DeepError::Invalid(_))
        ));
    }
}
