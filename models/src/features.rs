//! Hashed n-gram features of normalised text: word unigrams, word bigrams and character n-grams inside word
//! boundaries, mapped into a table of `2^table_bits` buckets with a fixed hash.
//!
//! The hash is part of the model's contract: a bucket computed at training must be the same bucket at prediction
//! on every platform and every version. It is 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime
//! 0x100000001b3) over the bytes `kind, n-gram`, where `kind` is `w` for a word, `b` for a word pair (the two words
//! joined by one space) and `c` for a character n-gram (with `<` and `>` marking the word's start and end, as
//! fastText does). The table is split in two halves: word features (unigrams and bigrams) take the lower half and
//! character n-grams the upper half, so that the classifier can L2-normalise the two blocks separately, as
//! scikit-learn's union of a word and a `char_wb` vectoriser does (otherwise the far more numerous character
//! n-grams drown the words). Within its half, the bucket is `(h ^ (h >> 32)) & (2^(table_bits-1) - 1)`: folding
//! the high half in keeps the low bits well mixed. Artifacts record [`HASH_ID`]; changing anything here means a
//! new id.
//!
//! Placeholder tokens (`#num`, `#email`…) give word features only: their spelling carries no meaning.

use serde::{Deserialize, Serialize};

/// Identifies the hash function and feature layout above; stored in every artifact and checked on load.
pub const HASH_ID: &str = "fnv1a64-xorfold/kind-prefixed/word-char-halves/v2";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Which n-grams are extracted and how many buckets they are hashed into; recorded in every artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// The table has `2^table_bits` buckets (10 ..= 24).
    pub table_bits: u8,
    /// Word pairs as well as words.
    pub word_bigrams: bool,
    /// Shortest character n-gram (0 disables character n-grams).
    pub char_min: u8,
    /// Longest character n-gram.
    pub char_max: u8,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            table_bits: 20,
            word_bigrams: true,
            char_min: 2,
            char_max: 5,
        }
    }
}

impl FeatureConfig {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=24).contains(&self.table_bits) {
            return Err(format!(
                "table_bits must be in 10..=24, got {}",
                self.table_bits
            ));
        }
        if self.char_min > 0 && (self.char_max < self.char_min || self.char_max > 8) {
            return Err(format!(
                "character n-grams must satisfy char_min <= char_max <= 8, got {}..={}",
                self.char_min, self.char_max
            ));
        }
        Ok(())
    }

    /// Number of buckets.
    pub fn table_size(&self) -> usize {
        1 << self.table_bits
    }
}

/// Where an n-gram comes from in the normalised text, so that an explanation can quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgramSpan {
    /// Byte range in the normalised text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

/// Computes feature buckets; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Featurizer {
    config: FeatureConfig,
    mask: u64,
}

/// Reusable buffer for character offsets of the current word.
#[derive(Debug, Default, Clone)]
pub struct FeatureScratch {
    char_starts: Vec<usize>,
}

#[inline]
fn fnv_feed(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

#[inline]
fn fnv_byte(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

impl Featurizer {
    /// A featuriser for a validated configuration.
    pub fn new(config: FeatureConfig) -> Self {
        Self {
            config,
            mask: (1u64 << (config.table_bits - 1)) - 1,
        }
    }

    /// First bucket of the character n-gram half of the table.
    pub fn first_char_bucket(&self) -> u32 {
        1 << (self.config.table_bits - 1)
    }

    /// The configuration in use.
    pub fn config(&self) -> FeatureConfig {
        self.config
    }

    #[inline]
    fn bucket(&self, h: u64) -> u32 {
        ((h ^ (h >> 32)) & self.mask) as u32
    }

    #[inline]
    fn char_bucket(&self, h: u64) -> u32 {
        self.bucket(h) | self.first_char_bucket()
    }

    /// Calls `emit(bucket, span)` for every n-gram of `normalized` (the output of the normaliser), in text order.
    /// Allocates nothing once `scratch` has grown.
    pub fn for_each(
        &self,
        normalized: &str,
        scratch: &mut FeatureScratch,
        mut emit: impl FnMut(u32, NgramSpan),
    ) {
        let bytes = normalized.as_bytes();
        let mut previous: Option<(usize, usize)> = None;
        let mut start = 0;
        while start < bytes.len() {
            let end = memchr_space(bytes, start);
            let word = &bytes[start..end];
            let h = fnv_feed(fnv_byte(FNV_OFFSET, b'w'), word);
            emit(self.bucket(h), NgramSpan { start, end });
            if self.config.word_bigrams
                && let Some((prev_start, prev_end)) = previous
            {
                let h = fnv_feed(fnv_byte(FNV_OFFSET, b'b'), &bytes[prev_start..prev_end]);
                let h = fnv_feed(fnv_byte(h, b' '), word);
                emit(
                    self.bucket(h),
                    NgramSpan {
                        start: prev_start,
                        end,
                    },
                );
            }
            if self.config.char_min > 0 && word.first() != Some(&b'#') {
                self.char_ngrams(normalized, start, end, scratch, &mut emit);
            }
            previous = Some((start, end));
            start = end + 1;
        }
    }

    fn char_ngrams(
        &self,
        text: &str,
        start: usize,
        end: usize,
        scratch: &mut FeatureScratch,
        emit: &mut impl FnMut(u32, NgramSpan),
    ) {
        let bytes = text.as_bytes();
        // Byte offset of every character of the word, plus its end: padded position p (0 = '<', 1..=k = the
        // characters, k+1 = '>') covers bytes char_starts[p-1]..char_starts[p].
        let starts = &mut scratch.char_starts;
        starts.clear();
        starts.extend(text[start..end].char_indices().map(|(i, _)| start + i));
        starts.push(end);
        let chars = starts.len() - 1;
        let padded = chars + 2;
        let (min, max) = (
            usize::from(self.config.char_min),
            usize::from(self.config.char_max),
        );
        // The n-grams starting at one position share their prefixes, and FNV-1a is sequential: extend one hash
        // a character at a time and emit it at every length from `min` to `max`, instead of hashing each n-gram
        // from its first byte (14 characters hashed per position for 2..=5 instead of 5).
        for first in 0..padded {
            let mut h = fnv_byte(FNV_OFFSET, b'c');
            if first == 0 {
                h = fnv_byte(h, b'<');
            }
            // Byte range of the real characters covered starts at padded position max(first, 1).
            let from = starts[first.max(1) - 1];
            for n in 1..=max {
                let last = first + n; // exclusive, in padded positions
                if last > padded {
                    break;
                }
                // Padded position `last - 1` joins the n-gram: a real character unless it is '<' (already fed)
                // or '>' (added below, only to the n-gram that ends there).
                let position = last - 1;
                if (1..=chars).contains(&position) {
                    h = fnv_feed(h, &bytes[starts[position - 1]..starts[position]]);
                }
                if n < min {
                    continue;
                }
                let closes = last == padded;
                let to = starts[last.min(chars + 1) - 1];
                if from < to {
                    let h = if closes { fnv_byte(h, b'>') } else { h };
                    emit(
                        self.char_bucket(h),
                        NgramSpan {
                            start: from,
                            end: to,
                        },
                    );
                }
            }
        }
    }
}

#[inline]
fn memchr_space(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(bytes.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ngrams(text: &str, config: FeatureConfig) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        Featurizer::new(config).for_each(text, &mut FeatureScratch::default(), |b, s| {
            out.push((b, text[s.start..s.end].to_string()))
        });
        out
    }

    #[test]
    fn hash_is_fixed_fnv1a() {
        // Reference values of 64-bit FNV-1a from the specification's test vectors.
        assert_eq!(fnv_feed(FNV_OFFSET, b""), 0xcbf29ce484222325);
        assert_eq!(fnv_feed(FNV_OFFSET, b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv_feed(FNV_OFFSET, b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn buckets_are_stable_across_versions() {
        // Computed by this implementation when HASH_ID was introduced; a change here breaks every artifact.
        let got = ngrams(
            "queja",
            FeatureConfig {
                table_bits: 20,
                word_bigrams: true,
                char_min: 0,
                char_max: 0,
            },
        );
        let h = fnv_feed(fnv_byte(FNV_OFFSET, b'w'), b"queja");
        assert_eq!(got[0].0, ((h ^ (h >> 32)) & 0x7ffff) as u32);
        // The literal pins the bucket for HASH_ID v2: if this changes, every artifact breaks.
        assert_eq!(got, vec![(79785, "queja".into())]);
    }

    #[test]
    fn extracts_words_pairs_and_char_ngrams() {
        let config = FeatureConfig {
            table_bits: 16,
            word_bigrams: true,
            char_min: 2,
            char_max: 3,
        };
        let texts: Vec<String> = ngrams("no me pagan #num", config)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        // "no": word, then <n no o> (2) and <no no> (3)
        assert_eq!(&texts[..6], &["no", "n", "no", "no", "no", "o"]);
        assert!(texts.contains(&"no me".to_string()));
        assert!(texts.contains(&"pagan #num".to_string()));
        assert!(texts.contains(&"#num".to_string()));
        assert!(
            !texts.contains(&"nu".to_string()),
            "placeholders give no char n-grams"
        );
    }

    #[test]
    fn counts_char_ngrams_of_multibyte_words() {
        let config = FeatureConfig {
            table_bits: 16,
            word_bigrams: false,
            char_min: 2,
            char_max: 5,
        };
        // "año" padded "<año>" has 5 positions: 4 bigrams, 3 trigrams, 2 four-grams, 1 five-gram, plus the word.
        let got = ngrams("año", config);
        assert_eq!(got.len(), 1 + 4 + 3 + 2 + 1);
        assert!(got.iter().all(|(_, t)| "año".contains(t.as_str())));
        let half = 1 << 15;
        assert!(got[0].0 < half, "the word lives in the lower half");
        assert!(
            got[1..].iter().all(|(b, _)| *b >= half),
            "char n-grams live in the upper half"
        );
    }

    /// Every character n-gram hashed from its first byte, as the featuriser did before it shared prefixes: the
    /// shared-prefix loop must emit exactly these buckets and spans, in this order.
    fn char_ngrams_hashed_one_by_one(text: &str, config: FeatureConfig) -> Vec<(u32, NgramSpan)> {
        let featurizer = Featurizer::new(config);
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut start = 0;
        while start < bytes.len() {
            let end = memchr_space(bytes, start);
            if bytes[start] != b'#' {
                let mut starts: Vec<usize> = text[start..end]
                    .char_indices()
                    .map(|(i, _)| start + i)
                    .collect();
                starts.push(end);
                let chars = starts.len() - 1;
                let padded = chars + 2;
                for first in 0..padded {
                    for n in usize::from(config.char_min)..=usize::from(config.char_max) {
                        let last = first + n;
                        if last > padded {
                            break;
                        }
                        let from = starts[first.max(1) - 1];
                        let to = starts[last.min(chars + 1) - 1];
                        let mut h = fnv_byte(FNV_OFFSET, b'c');
                        if first == 0 {
                            h = fnv_byte(h, b'<');
                        }
                        h = fnv_feed(h, &bytes[from..to]);
                        if last == padded {
                            h = fnv_byte(h, b'>');
                        }
                        if from < to {
                            out.push((
                                featurizer.char_bucket(h),
                                NgramSpan {
                                    start: from,
                                    end: to,
                                },
                            ));
                        }
                    }
                }
            }
            start = end + 1;
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn shared_prefix_hashing_matches_hashing_each_ngram(
            text in "[a-zñé#]{1,12}( [a-zñé#]{1,12}){0,6}",
            char_min in 1u8..=4,
            extra in 0u8..=4,
        ) {
            let config = FeatureConfig { table_bits: 18, word_bigrams: false, char_min, char_max: char_min + extra };
            let featurizer = Featurizer::new(config);
            let mut got = Vec::new();
            featurizer.for_each(&text, &mut FeatureScratch::default(), |bucket, span| {
                if bucket >= featurizer.first_char_bucket() {
                    got.push((bucket, span));
                }
            });
            proptest::prop_assert_eq!(got, char_ngrams_hashed_one_by_one(&text, config));
        }

        #[test]
        fn spans_always_lie_inside_the_text(text in "[a-zñ# ]{0,80}") {
            let normalized = crate::normalize::Normalizer::default().normalize(&text);
            let config = FeatureConfig::default();
            let mask = (1u32 << config.table_bits) - 1;
            Featurizer::new(config).for_each(&normalized, &mut FeatureScratch::default(), |b, s| {
                assert!(b <= mask);
                assert!(s.start < s.end && s.end <= normalized.len());
                assert!(normalized.is_char_boundary(s.start) && normalized.is_char_boundary(s.end));
            });
        }
    }
}
