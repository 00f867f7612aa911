//! The model artifact: one self-checking file with the weights (safetensors) and the metadata (JSON), read from
//! and written to bytes. This module is the only place that knows the on-disk format.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "PQRSMODL"          8 bytes   magic
//! format_version      u32       FORMAT_VERSION
//! metadata_len        u64       then that many bytes of JSON (ArtifactMetadata)
//! tensors_len         u64       then that many bytes of safetensors:
//!                                 buckets  U32 [rows]           hash bucket of each row
//!                                 idf      F32 [rows]
//!                                 weights  F32|F16 [rows, classes]
//!                                 bias     F32 [classes]
//! sha256              32 bytes  of everything before it
//! ```
//!
//! Loading validates magic, version, checksum, JSON, tensors, hash id and every shape, and returns a typed
//! [`ArtifactError`]; it never panics on any input.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classifier::{Head, LinearModel, ParentLink, UNSEEN};
use crate::features::{FeatureConfig, HASH_ID};
use crate::normalize::NormalizerConfig;
use crate::taxonomy::Taxonomy;

/// First bytes of every artifact.
pub const MAGIC: &[u8; 8] = b"PQRSMODL";
/// Version of the layout above; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8;
const CHECKSUM_LEN: usize = 32;

/// Why bytes are not a usable model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// The file ends before a part it announces.
    #[error("artifact is truncated: needs at least {needed} bytes, has {got}")]
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// Not a pqrs model.
    #[error("not a pqrs model (bad magic bytes)")]
    BadMagic,
    /// Written by a different, incompatible format version.
    #[error(
        "artifact format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The content does not match its checksum: the file was damaged or edited.
    #[error("artifact checksum does not match: the file is damaged")]
    BadChecksum,
    /// The metadata JSON does not parse or is inconsistent.
    #[error("artifact metadata is invalid: {0}")]
    Metadata(String),
    /// The tensors do not parse or a tensor is missing.
    #[error("artifact tensors are invalid: {0}")]
    Tensors(String),
    /// A tensor's shape or type does not match the metadata.
    #[error("artifact shape mismatch: {0}")]
    Shape(String),
    /// The model was trained with another feature hash.
    #[error("artifact uses feature hash `{found}`, this build computes `{HASH_ID}`")]
    HashMismatch {
        /// Hash id in the file.
        found: String,
    },
}

/// Precision of the stored weights. f16 halves the file; weights are widened to f32 on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats.
    F16,
}

/// What the artifact says about the model besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactMetadata {
    /// Version of pqrs that wrote the file.
    pub pqrs_version: String,
    /// When the model was trained (RFC 3339).
    pub created_at: String,
    /// Feature hash id ([`HASH_ID`]).
    pub hash: String,
    /// Normaliser configuration.
    pub normalizer: NormalizerConfig,
    /// Featuriser configuration.
    pub features: FeatureConfig,
    /// Heads with their labels, calibration and thresholds.
    pub heads: Vec<HeadMetadata>,
    /// Precision of the stored weights.
    pub precision: Precision,
    /// The taxonomy the labels come from, when the model was trained against one.
    pub taxonomy: Option<Taxonomy>,
    /// Training facts written by the trainer: data fingerprint, configuration, metrics.
    pub training: serde_json::Value,
    /// Where a retrained model comes from. Absent in first-generation models and in artifacts written before the
    /// field existed; an absent field is not written, so those artifacts keep their bytes and ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// The ancestry of a model retrained from its parent's history and reviewers' corrections, and the comparison
/// that let it replace the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Id of the model it was compared with and meant to replace.
    pub parent: String,
    /// Corrections (one per comment and head) that went into its training or its held-out labels.
    pub feedback: u64,
    /// The comparison found it not worse than the parent.
    pub promoted: bool,
    /// It was written although the comparison did not promote it.
    pub forced: bool,
    /// Why it was, or was not, promoted.
    pub reason: String,
    /// The comparison on the held-out data, as the trainer reported it (per-head metrics and per-class changes).
    pub comparison: serde_json::Value,
}

/// One head as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadMetadata {
    /// Head name.
    pub name: String,
    /// Labels in column order.
    pub labels: Vec<String>,
    /// Softmax temperature.
    pub temperature: f32,
    /// Review threshold per label.
    pub thresholds: Vec<f32>,
    /// Parent head name and, for each label, its parent label.
    pub parent: Option<ParentMetadata>,
}

/// A parent link as stored, by names rather than indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentMetadata {
    /// Name of the parent head.
    pub head: String,
    /// Parent label of each of this head's labels.
    pub parent_of_label: Vec<String>,
}

/// A loaded model: weights ready for prediction, plus what the artifact says about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The classifier.
    pub linear: LinearModel,
    /// Version, creation time, taxonomy and training facts.
    pub info: ModelInfo,
}

/// Everything in the metadata that is not needed to predict.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Version of pqrs that wrote the model.
    pub pqrs_version: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Taxonomy the labels come from, if any.
    pub taxonomy: Option<Taxonomy>,
    /// Training facts (fingerprint, configuration, metrics).
    pub training: serde_json::Value,
    /// Parent model and comparison, for a retrained model.
    pub lineage: Option<Lineage>,
    /// Short id of the model: the first 12 hex digits of the artifact's checksum (empty until saved or loaded).
    pub id: String,
}

impl Model {
    /// Serialises the model; also sets `info.id` to the new checksum.
    pub fn to_bytes(&mut self, precision: Precision) -> Vec<u8> {
        let bytes = encode(self, precision);
        self.info.id = hex(&bytes[bytes.len() - CHECKSUM_LEN..])[..12].to_string();
        bytes
    }

    /// Reads and validates a model from bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ArtifactError> {
        decode(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn view<'a>(dtype: Dtype, shape: Vec<usize>, data: &'a [u8]) -> TensorView<'a> {
    TensorView::new(dtype, shape, data).expect("tensor byte lengths are computed from their shapes")
}

fn encode(model: &Model, precision: Precision) -> Vec<u8> {
    let linear = &model.linear;
    let heads = linear
        .heads
        .iter()
        .map(|h| HeadMetadata {
            name: h.name.clone(),
            labels: h.labels.clone(),
            temperature: h.temperature,
            thresholds: h.thresholds.clone(),
            parent: h.parent.as_ref().map(|link| ParentMetadata {
                head: linear.heads[link.head].name.clone(),
                parent_of_label: link
                    .parent_of_label
                    .iter()
                    .map(|&p| linear.heads[link.head].labels[p as usize].clone())
                    .collect(),
            }),
        })
        .collect();
    let metadata = ArtifactMetadata {
        pqrs_version: model.info.pqrs_version.clone(),
        created_at: model.info.created_at.clone(),
        hash: HASH_ID.to_string(),
        normalizer: linear.normalizer,
        features: linear.features,
        heads,
        precision,
        taxonomy: model.info.taxonomy.clone(),
        training: model.info.training.clone(),
        lineage: model.info.lineage.clone(),
    };
    let json = serde_json::to_vec(&metadata).expect("metadata has only serialisable fields");

    let rows = linear.idf.len();
    let classes = linear.total_classes();
    let mut buckets = vec![0u32; rows];
    for (bucket, &row) in linear.row_of_bucket.iter().enumerate() {
        if row != UNSEEN {
            buckets[row as usize] = bucket as u32;
        }
    }
    let buckets: Vec<u8> = buckets.iter().flat_map(|v| v.to_le_bytes()).collect();
    let idf: Vec<u8> = linear.idf.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bias: Vec<u8> = linear.bias.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (weights, weights_dtype): (Vec<u8>, Dtype) = match precision {
        Precision::F32 => (
            linear
                .weights
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            Dtype::F32,
        ),
        Precision::F16 => (
            linear
                .weights
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            Dtype::F16,
        ),
    };
    let tensors = vec![
        ("buckets", view(Dtype::U32, vec![rows], &buckets)),
        ("idf", view(Dtype::F32, vec![rows], &idf)),
        (
            "weights",
            view(weights_dtype, vec![rows, classes], &weights),
        ),
        ("bias", view(Dtype::F32, vec![classes], &bias)),
    ];
    let tensors = safetensors::tensor::serialize(tensors, None::<HashMap<String, String>>)
        .expect("tensor names are unique and views are valid");

    frame(&json, &tensors)
}

/// Lays out magic, version, metadata and tensors as the module documentation describes, and seals them with the
/// checksum.
fn frame(json: &[u8], tensors: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + json.len() + 8 + tensors.len() + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(tensors);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

/// Reads a little-endian u64 length at `at`, checking that the bytes exist.
fn read_len(bytes: &[u8], at: usize) -> Result<usize, ArtifactError> {
    let field = bytes.get(at..at + 8).ok_or(ArtifactError::Truncated {
        needed: (at + 8) as u64,
        got: bytes.len() as u64,
    })?;
    let len = u64::from_le_bytes(field.try_into().expect("slice of 8 bytes"));
    usize::try_from(len).map_err(|_| ArtifactError::Truncated {
        needed: len,
        got: bytes.len() as u64,
    })
}

fn decode(bytes: &[u8]) -> Result<Model, ArtifactError> {
    let truncated = |needed: usize| ArtifactError::Truncated {
        needed: needed as u64,
        got: bytes.len() as u64,
    };
    if bytes.len() < MAGIC.len() {
        return Err(truncated(HEADER_LEN + CHECKSUM_LEN));
    }
    if &bytes[..8] != MAGIC {
        return Err(ArtifactError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN + CHECKSUM_LEN));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(ArtifactError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let metadata_len = read_len(bytes, 12)?;
    let metadata_start = HEADER_LEN;
    let metadata_end = metadata_start
        .checked_add(metadata_len)
        .ok_or_else(|| truncated(usize::MAX))?;
    let tensors_len = read_len(bytes, metadata_end)?;
    let tensors_start = metadata_end + 8;
    let tensors_end = tensors_start
        .checked_add(tensors_len)
        .ok_or_else(|| truncated(usize::MAX))?;
    let total = tensors_end
        .checked_add(CHECKSUM_LEN)
        .ok_or_else(|| truncated(usize::MAX))?;
    if bytes.len() < total {
        return Err(truncated(total));
    }
    if bytes.len() > total {
        return Err(ArtifactError::Metadata(format!(
            "{} unexpected bytes after the checksum",
            bytes.len() - total
        )));
    }
    let checksum = Sha256::digest(&bytes[..tensors_end]);
    if checksum.as_slice() != &bytes[tensors_end..total] {
        return Err(ArtifactError::BadChecksum);
    }
    let metadata: ArtifactMetadata = serde_json::from_slice(&bytes[metadata_start..metadata_end])
        .map_err(|e| ArtifactError::Metadata(e.to_string()))?;
    if metadata.hash != HASH_ID {
        return Err(ArtifactError::HashMismatch {
            found: metadata.hash,
        });
    }
    metadata
        .features
        .validate()
        .map_err(ArtifactError::Metadata)?;
    if let Some(taxonomy) = &metadata.taxonomy {
        taxonomy
            .validate()
            .map_err(|e| ArtifactError::Metadata(format!("taxonomy: {e}")))?;
    }
    let heads = heads_from_metadata(&metadata.heads)?;
    let classes: usize = heads.iter().map(|h| h.labels.len()).sum();

    let tensors = SafeTensors::deserialize(&bytes[tensors_start..tensors_end])
        .map_err(|e| ArtifactError::Tensors(e.to_string()))?;
    let tensor = |name: &str| {
        tensors
            .tensor(name)
            .map_err(|e| ArtifactError::Tensors(format!("{name}: {e}")))
    };
    let buckets = tensor("buckets")?;
    expect_dtype("buckets", &buckets, &[Dtype::U32])?;
    let rows = match buckets.shape() {
        [rows] => *rows,
        shape => {
            return Err(ArtifactError::Shape(format!(
                "buckets has shape {shape:?}, expected [rows]"
            )));
        }
    };
    let idf = tensor("idf")?;
    expect_dtype("idf", &idf, &[Dtype::F32])?;
    expect_shape("idf", &idf, &[rows])?;
    let weights = tensor("weights")?;
    let expected_dtype = match metadata.precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    expect_dtype("weights", &weights, &[expected_dtype])?;
    expect_shape("weights", &weights, &[rows, classes])?;
    let bias = tensor("bias")?;
    expect_dtype("bias", &bias, &[Dtype::F32])?;
    expect_shape("bias", &bias, &[classes])?;

    let table = metadata.features.table_size();
    let mut row_of_bucket = vec![UNSEEN; table];
    for (row, chunk) in buckets.data().chunks_exact(4).enumerate() {
        let bucket = u32::from_le_bytes(chunk.try_into().expect("4 bytes")) as usize;
        match row_of_bucket.get_mut(bucket) {
            Some(slot) if *slot == UNSEEN => *slot = row as u32,
            Some(_) => {
                return Err(ArtifactError::Shape(format!(
                    "bucket {bucket} appears twice"
                )));
            }
            None => {
                return Err(ArtifactError::Shape(format!(
                    "bucket {bucket} is outside the table of {table}"
                )));
            }
        }
    }
    let floats = |data: &[u8]| -> Vec<f32> {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    };
    let weights = match metadata.precision {
        Precision::F32 => floats(weights.data()),
        Precision::F16 => weights
            .data()
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32())
            .collect(),
    };
    let linear = LinearModel::new(
        metadata.normalizer,
        metadata.features,
        row_of_bucket,
        floats(idf.data()),
        weights,
        floats(bias.data()),
        heads,
    );
    linear.check_shapes().map_err(ArtifactError::Shape)?;
    Ok(Model {
        linear,
        info: ModelInfo {
            pqrs_version: metadata.pqrs_version,
            created_at: metadata.created_at,
            taxonomy: metadata.taxonomy,
            training: metadata.training,
            lineage: metadata.lineage,
            id: hex(&bytes[tensors_end..total])[..12].to_string(),
        },
    })
}

fn expect_dtype(name: &str, view: &TensorView<'_>, allowed: &[Dtype]) -> Result<(), ArtifactError> {
    if allowed.contains(&view.dtype()) {
        Ok(())
    } else {
        Err(ArtifactError::Shape(format!(
            "{name} has type {:?}, expected {allowed:?}",
            view.dtype()
        )))
    }
}

fn expect_shape(name: &str, view: &TensorView<'_>, shape: &[usize]) -> Result<(), ArtifactError> {
    if view.shape() == shape {
        Ok(())
    } else {
        Err(ArtifactError::Shape(format!(
            "{name} has shape {:?}, expected {shape:?}",
            view.shape()
        )))
    }
}

fn heads_from_metadata(heads: &[HeadMetadata]) -> Result<Vec<Head>, ArtifactError> {
    if heads.is_empty() {
        return Err(ArtifactError::Metadata("the model has no heads".into()));
    }
    let mut out = Vec::with_capacity(heads.len());
    for head in heads {
        if heads.iter().filter(|h| h.name == head.name).count() > 1 {
            return Err(ArtifactError::Metadata(format!(
                "head `{}` appears twice",
                head.name
            )));
        }
        let parent = match &head.parent {
            None => None,
            Some(parent) => {
                let index = heads
                    .iter()
                    .position(|h| h.name == parent.head)
                    .ok_or_else(|| {
                        ArtifactError::Metadata(format!(
                            "head `{}` names unknown parent head `{}`",
                            head.name, parent.head
                        ))
                    })?;
                let parent_labels = &heads[index].labels;
                let parent_of_label = parent
                    .parent_of_label
                    .iter()
                    .map(|label| {
                        parent_labels
                            .iter()
                            .position(|l| l == label)
                            .map(|p| p as u32)
                            .ok_or_else(|| {
                                ArtifactError::Metadata(format!(
                                    "head `{}` names unknown parent label `{label}`",
                                    head.name
                                ))
                            })
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                Some(ParentLink {
                    head: index,
                    parent_of_label,
                })
            }
        };
        out.push(Head {
            name: head.name.clone(),
            labels: head.labels.clone(),
            temperature: head.temperature,
            thresholds: head.thresholds.clone(),
            parent,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::tests::tiny_model;
    use crate::classifier::{PredictOptions, Scratch};

    fn model() -> Model {
        Model {
            linear: tiny_model(),
            info: ModelInfo {
                pqrs_version: "0.1.0".into(),
                created_at: "2026-11-29T00:00:00Z".into(),
                taxonomy: None,
                training: serde_json::json!({"fingerprint": "abc"}),
                lineage: None,
                id: String::new(),
            },
        }
    }

    #[test]
    fn round_trip_f32_is_exact() {
        let mut m = model();
        let bytes = m.to_bytes(Precision::F32);
        let loaded = Model::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, m);
        assert_eq!(loaded.info.id.len(), 12);
    }

    #[test]
    fn round_trip_f16_predicts_the_same() {
        let mut m = model();
        let loaded = Model::from_bytes(&m.to_bytes(Precision::F16)).unwrap();
        let mut scratch = Scratch::default();
        for text in ["queja subsidio", "felicito credito"] {
            let a = m
                .linear
                .predict(text, PredictOptions::default(), &mut scratch);
            let b = loaded
                .linear
                .predict(text, PredictOptions::default(), &mut scratch);
            for (x, y) in a.heads.iter().zip(&b.heads) {
                assert_eq!(x.label, y.label);
                assert!((x.confidence - y.confidence).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn every_prefix_is_reported_truncated() {
        let bytes = model().to_bytes(Precision::F32);
        for len in [0, 4, 8, 11, 19, 20, 40, bytes.len() / 2, bytes.len() - 1] {
            match Model::from_bytes(&bytes[..len]) {
                Err(ArtifactError::Truncated { .. }) => {}
                Err(ArtifactError::BadMagic) if len < 8 => {
                    panic!("prefix {len} of the magic is truncation")
                }
                other => panic!("prefix of {len} bytes gave {other:?}"),
            }
        }
    }

    #[test]
    fn corrupt_artifacts_give_typed_errors() {
        let good = model().to_bytes(Precision::F32);

        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Model::from_bytes(&bad), Err(ArtifactError::BadMagic));

        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            Model::from_bytes(&bad),
            Err(ArtifactError::UnsupportedVersion {
                found: 7,
                supported: 1
            })
        );

        let mut bad = good.clone();
        let middle = bad.len() / 2;
        bad[middle] ^= 0x40;
        assert_eq!(Model::from_bytes(&bad), Err(ArtifactError::BadChecksum));

        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Metadata(_))
        ));
    }

    /// Builds an artifact with edited metadata or tensors, resealed so that only the edit is wrong.
    fn rebuild(
        edit_json: impl Fn(&mut serde_json::Value),
        edit_tensors: impl Fn(&mut Vec<u8>),
    ) -> Vec<u8> {
        let good = model().to_bytes(Precision::F32);
        let metadata_len = read_len(&good, 12).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&good[20..20 + metadata_len]).unwrap();
        edit_json(&mut json);
        let json = serde_json::to_vec(&json).unwrap();
        let tensors_len = read_len(&good, 20 + metadata_len).unwrap();
        let start = 20 + metadata_len + 8;
        let mut tensors = good[start..start + tensors_len].to_vec();
        edit_tensors(&mut tensors);
        frame(&json, &tensors)
    }

    #[test]
    fn inconsistent_content_gives_typed_errors() {
        let unchanged = rebuild(|_| {}, |_| {});
        assert!(Model::from_bytes(&unchanged).is_ok());

        let bad = rebuild(|j| j["hash"] = "murmur3".into(), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::HashMismatch { .. })
        ));

        let bad = rebuild(
            |j| j["heads"][0]["labels"] = serde_json::json!(["a", "b", "c"]),
            |_| {},
        );
        assert!(
            matches!(Model::from_bytes(&bad), Err(ArtifactError::Shape(_))),
            "{:?}",
            Model::from_bytes(&bad)
        );

        let bad = rebuild(|j| j["heads"] = serde_json::json!([]), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Metadata(_))
        ));

        let bad = rebuild(|j| j["heads"][1]["parent"]["head"] = "nope".into(), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Metadata(_))
        ));

        let bad = rebuild(|j| j["precision"] = "f16".into(), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Shape(_))
        ));

        let bad = rebuild(|j| j["unexpected"] = 1.into(), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Metadata(_))
        ));

        let bad = rebuild(|_| {}, |t| t.truncate(t.len() - 4));
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Tensors(_))
        ));

        let bad = rebuild(|_| {}, |t| t[10] = b'!');
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Tensors(_))
        ));
    }

    #[test]
    fn lineage_round_trips() {
        let mut m = model();
        m.info.lineage = Some(Lineage {
            parent: "0123456789ab".into(),
            feedback: 17,
            promoted: true,
            forced: false,
            reason: "no head worse by more than 0.005".into(),
            comparison: serde_json::json!({"heads": [{"head": "type", "delta_macro_f1": 0.01}]}),
        });
        let loaded = Model::from_bytes(&m.to_bytes(Precision::F32)).unwrap();
        assert_eq!(loaded.info.lineage, m.info.lineage);
        assert_eq!(loaded, m);
    }

    /// Artifacts written before the lineage field existed have no `lineage` key; they must still load, and a model
    /// without lineage must still be written without the key, so that its bytes and id do not change.
    #[test]
    fn artifacts_without_lineage_still_load() {
        let bytes = model().to_bytes(Precision::F32);
        let metadata_len = read_len(&bytes, 12).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&bytes[20..20 + metadata_len]).unwrap();
        assert!(json.get("lineage").is_none(), "{json}");
        let old = rebuild(
            |j| {
                j.as_object_mut().unwrap().remove("lineage");
            },
            |_| {},
        );
        let loaded = Model::from_bytes(&old).unwrap();
        assert_eq!(loaded.info.lineage, None);
        assert_eq!(loaded.linear, model().linear);

        let bad = rebuild(|j| j["lineage"] = serde_json::json!({"parent": 3}), |_| {});
        assert!(matches!(
            Model::from_bytes(&bad),
            Err(ArtifactError::Metadata(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Model::from_bytes(&bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = Model::from_bytes(&framed);
        }

        #[test]
        fn any_single_byte_flip_is_detected(index in 0usize..4000, bit in 0u8..8) {
            let good = model().to_bytes(Precision::F32);
            let mut bad = good.clone();
            let index = index % bad.len();
            bad[index] ^= 1 << bit;
            proptest::prop_assert!(Model::from_bytes(&bad).is_err());
        }
    }
}
