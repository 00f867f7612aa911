//! Escalation rules: cue phrases compiled from the taxonomy's `[escalation]` section and matched on folded words.
//!
//! Intake text is ALL CAPS or lower case, with or without accents, and misspelled, so cues are matched word by word
//! after folding (see [`super::fold`]): whole words only (`menor` does not match `menores`), a trailing `*` for
//! prefixes (`medicament*`), and one typo tolerated in words of six or more characters (`medicamneto`).
//!
//! [`CompiledRules`] indexes every distinct word of every cue once, so that routing a comment folds its words
//! once and looks each one up ([`CompiledRules::scan`]) instead of comparing every cue with every word: whole
//! words by hash, prefixes by the word's own prefixes, and typos by their one-character deletions (a word and a
//! cue word within one edit always share the word itself or one deletion of each).

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use super::due::HealthRisk;
use super::fold::{self, Word};
use crate::taxonomy::{Escalation, Taxonomy, TaxonomyError};

/// How soon a delegate must look at a comment. Ordered: `Normal < Alta < Urgente`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// In the delegate's queue in arrival order.
    #[default]
    Normal,
    /// Ahead of normal comments.
    Alta,
    /// At once.
    Urgente,
}

/// Shortest stem a prefix cue may have, so that `a*` cannot match every word.
const MIN_PREFIX_CHARS: usize = 3;
/// Words at least this long tolerate one typo.
const MIN_FUZZY_CHARS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
struct CueWord {
    folded: String,
    prefix: bool,
}

/// One cue phrase, folded and ready to match. Build it with [`CuePattern::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuePattern {
    source: String,
    words: Vec<CueWord>,
}

/// Where a cue matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CueHit {
    /// The cue as written in the taxonomy.
    pub cue: String,
    /// The matching words as they appear in the comment.
    pub found: String,
    /// Byte range of `found` in the comment.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
}

impl CuePattern {
    /// Parses a cue; the error says what is wrong with it.
    pub fn parse(cue: &str) -> Result<Self, String> {
        let mut words = Vec::new();
        for piece in cue.split_whitespace() {
            let stem = piece.strip_suffix('*').unwrap_or(piece);
            if stem.contains('*') {
                return Err(format!("cue `{cue}`: `*` may only end a word"));
            }
            let prefix = stem.len() < piece.len();
            let mut folded: Vec<CueWord> = fold::words(stem)
                .into_iter()
                .map(|w| CueWord {
                    folded: w.folded,
                    prefix: false,
                })
                .collect();
            if prefix {
                match folded.last_mut() {
                    Some(last) if last.folded.chars().count() >= MIN_PREFIX_CHARS => {
                        last.prefix = true
                    }
                    _ => {
                        return Err(format!(
                            "cue `{cue}`: a prefix needs at least {MIN_PREFIX_CHARS} letters before `*`"
                        ));
                    }
                }
            }
            words.extend(folded);
        }
        if words.is_empty() {
            return Err(format!("cue `{cue}` has no letters or digits"));
        }
        Ok(Self {
            source: cue.to_string(),
            words,
        })
    }

    /// The cue as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first place where the cue matches `words` (the folded words of `text`).
    pub fn find(&self, text: &str, words: &[Word]) -> Option<CueHit> {
        let n = self.words.len();
        if words.len() < n {
            return None;
        }
        (0..=words.len() - n).find_map(|i| {
            let window = &words[i..i + n];
            let all = self
                .words
                .iter()
                .zip(window)
                .all(|(cue, word)| word_matches(cue, &word.folded));
            all.then(|| {
                let (start, end) = (window[0].start, window[n - 1].end);
                CueHit {
                    cue: self.source.clone(),
                    found: text[start..end].to_string(),
                    start,
                    end,
                }
            })
        })
    }
}

fn word_matches(cue: &CueWord, word: &str) -> bool {
    if cue.prefix {
        return word.starts_with(&cue.folded);
    }
    word == cue.folded
        || (cue.folded.chars().count() >= MIN_FUZZY_CHARS && within_one_edit(&cue.folded, word))
}

/// True when `a` and `b` differ by at most one insertion, deletion, substitution or swap of neighbours.
fn within_one_edit(a: &str, b: &str) -> bool {
    // Folded intake text is almost always ASCII: compare bytes without allocating (this runs for every cue word
    // against every comment word, so it dominated routing's time).
    if a.is_ascii() && b.is_ascii() {
        return within_one_edit_of(a.as_bytes(), b.as_bytes());
    }
    if a.chars().count().abs_diff(b.chars().count()) > 1 {
        return false;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    within_one_edit_of(&a, &b)
}

fn within_one_edit_of<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let common_prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if short.len() == long.len() {
        if common_prefix == short.len() {
            return true;
        }
        let i = common_prefix;
        // One substitution at i, or the neighbours i and i + 1 swapped.
        let substituted = short[i + 1..] == long[i + 1..];
        let swapped = i + 1 < short.len()
            && short[i] == long[i + 1]
            && short[i + 1] == long[i]
            && short[i + 2..] == long[i + 2..];
        substituted || swapped
    } else {
        // One character inserted into `short` at the first difference.
        short[common_prefix..] == long[common_prefix + 1..]
    }
}

/// The escalation section compiled for matching. Build it once per taxonomy and share it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRules {
    vital: Vec<IndexedCue>,
    priorizado: Vec<IndexedCue>,
    legal_threat: Vec<IndexedCue>,
    repeated_contact: Vec<IndexedCue>,
    index: CueIndex,
    employer_client_types: Vec<String>,
    section: Escalation,
}

/// A cue and the ids of its words in the [`CueIndex`].
#[derive(Debug, Clone, PartialEq)]
struct IndexedCue {
    pattern: CuePattern,
    word_ids: Vec<usize>,
}

/// Every distinct cue word of the rules, with lookups from a comment's folded word to the cue words it matches.
/// A comment costs a few lookups per word, so the maps use foldhash rather than the standard library's SipHash
/// (whose resistance to chosen collisions buys nothing for a fixed, trusted key set).
#[derive(Debug, Clone, PartialEq, Default)]
struct CueIndex {
    words: Vec<CueWord>,
    /// Whole-word cue words by their folded text.
    exact: HashMap<String, usize, RandomState>,
    /// Prefix cue words by their stem.
    prefixes: HashMap<String, usize, RandomState>,
    /// Longest prefix stem, in bytes: longer prefixes of a word need no lookup.
    longest_prefix: usize,
    /// Whole-word cue words that tolerate a typo, under their own text and each of their one-character deletions.
    near: HashMap<String, Vec<usize>, RandomState>,
    /// Bit `n` (63 for 63 or more) set when a cue word in `near` has `n` characters: a comment word can only be
    /// within one edit of a cue word one character longer or shorter than itself or as long, so most of its
    /// lookups can be skipped without building its deletions.
    near_lengths: u64,
    /// `(byte length, first byte, last byte)` of every key of `near`. Deleting a character inside an ASCII word
    /// keeps its first and last bytes, so when no key of that length has them, none of those deletions is
    /// built or looked up.
    near_ends: HashSet<(usize, u8, u8), RandomState>,
}

impl CueIndex {
    /// The id of `word`, adding it on first sight.
    fn add(&mut self, word: &CueWord) -> usize {
        if let Some(id) = self.words.iter().position(|w| w == word) {
            return id;
        }
        let id = self.words.len();
        self.words.push(word.clone());
        if word.prefix {
            self.prefixes.insert(word.folded.clone(), id);
            self.longest_prefix = self.longest_prefix.max(word.folded.len());
        } else {
            self.exact.insert(word.folded.clone(), id);
            let chars = word.folded.chars().count();
            if chars >= MIN_FUZZY_CHARS {
                self.near_lengths |= length_bit(chars);
                self.near_ends.insert(ends(&word.folded));
                self.near.entry(word.folded.clone()).or_default().push(id);
                let mut deletion = String::new();
                for (at, c) in word.folded.char_indices() {
                    one_deletion(&word.folded, at, c, &mut deletion);
                    self.near_ends.insert(ends(&deletion));
                    let ids = self.near.entry(deletion.clone()).or_default();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        id
    }

    fn index(&mut self, patterns: Vec<CuePattern>) -> Vec<IndexedCue> {
        patterns
            .into_iter()
            .map(|pattern| IndexedCue {
                word_ids: pattern.words.iter().map(|w| self.add(w)).collect(),
                pattern,
            })
            .collect()
    }

    /// Calls `matched(id)` for every cue word that `folded` (one folded word of a comment) matches, by the rule
    /// of [`word_matches`].
    fn matches(&self, folded: &str, deletion: &mut String, mut matched: impl FnMut(usize)) {
        if let Some(&id) = self.exact.get(folded) {
            matched(id);
        }
        if !self.prefixes.is_empty() {
            for (chars, (at, c)) in folded.char_indices().enumerate() {
                let end = at + c.len_utf8();
                if end > self.longest_prefix {
                    break;
                }
                if chars + 1 >= MIN_PREFIX_CHARS
                    && let Some(&id) = self.prefixes.get(&folded[..end])
                {
                    matched(id);
                }
            }
        }
        let chars = folded.chars().count();
        if self.near.is_empty() || chars + 1 < MIN_FUZZY_CHARS {
            return;
        }
        // Under `near`, a cue word of n characters is stored as itself (n) and its deletions (n − 1). The word
        // itself (chars) can meet only cue words of chars or chars + 1 characters, its deletions (chars − 1) only
        // cue words of chars − 1 or chars.
        let has_length = |n: usize| self.near_lengths & length_bit(n) != 0;
        let offer = |key: &str, matched: &mut dyn FnMut(usize)| {
            for &id in self.near.get(key).into_iter().flatten() {
                let cue = &self.words[id].folded;
                if cue != folded && within_one_edit(cue, folded) {
                    matched(id);
                }
            }
        };
        if has_length(chars) || has_length(chars + 1) {
            offer(folded, &mut matched);
        }
        if has_length(chars - 1) || has_length(chars) {
            let (length, first, last) = ends(folded);
            let inner_may_match =
                !folded.is_ascii() || self.near_ends.contains(&(length - 1, first, last));
            for (at, c) in folded.char_indices() {
                let inner = at > 0 && at + c.len_utf8() < folded.len();
                if inner && !inner_may_match {
                    continue;
                }
                one_deletion(folded, at, c, deletion);
                offer(deletion, &mut matched);
            }
        }
    }
}

/// The `(byte length, first byte, last byte)` of a non-empty key of [`CueIndex::near`] or of a comment word.
fn ends(word: &str) -> (usize, u8, u8) {
    let bytes = word.as_bytes();
    (
        bytes.len(),
        bytes.first().copied().unwrap_or(0),
        bytes.last().copied().unwrap_or(0),
    )
}

/// The bit of [`CueIndex::near_lengths`] for a word of `chars` characters.
fn length_bit(chars: usize) -> u64 {
    1 << chars.min(63)
}

/// `word` without its character `c` at byte `at`, into `out`.
fn one_deletion(word: &str, at: usize, c: char, out: &mut String) {
    out.clear();
    out.push_str(&word[..at]);
    out.push_str(&word[at + c.len_utf8()..]);
}

/// One comment's words, each matched once against every cue word of a [`CompiledRules`].
#[derive(Debug, Clone)]
pub struct CueScan<'t> {
    text: &'t str,
    /// Byte range of each word in `text`.
    spans: Vec<(usize, usize)>,
    /// Per word, `width` blocks of bits: bit `id` is set when the word matches cue word `id`.
    matched: Vec<u64>,
    /// The union of all words' bits: a cue with a word outside it cannot match anywhere.
    anywhere: Vec<u64>,
    width: usize,
}

impl CueScan<'_> {
    fn has(bits: &[u64], id: usize) -> bool {
        bits[id / 64] & (1 << (id % 64)) != 0
    }

    /// The first place where `cue` matches, as [`CuePattern::find`] would find it.
    fn find(&self, cue: &IndexedCue) -> Option<CueHit> {
        let n = cue.word_ids.len();
        if n == 0
            || self.spans.len() < n
            || !cue.word_ids.iter().all(|&id| Self::has(&self.anywhere, id))
        {
            return None;
        }
        let word_bits = |i: usize| &self.matched[i * self.width..(i + 1) * self.width];
        (0..=self.spans.len() - n).find_map(|i| {
            let all = cue
                .word_ids
                .iter()
                .enumerate()
                .all(|(j, &id)| Self::has(word_bits(i + j), id));
            all.then(|| {
                let (start, end) = (self.spans[i].0, self.spans[i + n - 1].1);
                CueHit {
                    cue: cue.pattern.source.clone(),
                    found: self.text[start..end].to_string(),
                    start,
                    end,
                }
            })
        })
    }

    fn first_hit(&self, cues: &[IndexedCue]) -> Option<CueHit> {
        cues.iter().find_map(|cue| self.find(cue))
    }
}

impl CompiledRules {
    /// Compiles the `[escalation]` section of a taxonomy; an error when the taxonomy has none or a cue is malformed.
    pub fn from_taxonomy(taxonomy: &Taxonomy) -> Result<Self, TaxonomyError> {
        let section = taxonomy.escalation.as_ref().ok_or_else(|| {
            TaxonomyError::Invalid(format!(
                "taxonomy `{}` has no [escalation] section, which routing needs",
                taxonomy.id
            ))
        })?;
        taxonomy.validate_escalation()?;
        Self::new(section)
    }

    /// Compiles an escalation section on its own (without checking its areas and types against a taxonomy).
    pub fn new(section: &Escalation) -> Result<Self, TaxonomyError> {
        let compile = |entry: &str, cues: &[String]| -> Result<Vec<CuePattern>, TaxonomyError> {
            if cues.is_empty() {
                return Err(TaxonomyError::Invalid(format!("{entry} must not be empty")));
            }
            cues.iter()
                .map(|cue| {
                    CuePattern::parse(cue)
                        .map_err(|why| TaxonomyError::Invalid(format!("{entry}: {why}")))
                })
                .collect()
        };
        let mut index = CueIndex::default();
        let vital = index.index(compile(
            "escalation.health_risk.vital_cues",
            &section.health_risk.vital_cues,
        )?);
        let priorizado = index.index(compile(
            "escalation.health_risk.priorizado_cues",
            &section.health_risk.priorizado_cues,
        )?);
        let legal_threat = index.index(compile(
            "escalation.legal_threat.cues",
            &section.legal_threat.cues,
        )?);
        let repeated_contact = index.index(compile(
            "escalation.repeated_contact.cues",
            &section.repeated_contact.cues,
        )?);
        Ok(Self {
            vital,
            priorizado,
            legal_threat,
            repeated_contact,
            index,
            employer_client_types: section
                .employer_complaint
                .client_types
                .iter()
                .map(|c| fold::fold(c))
                .collect(),
            section: section.clone(),
        })
    }

    /// The section the rules were compiled from.
    pub fn section(&self) -> &Escalation {
        &self.section
    }

    /// Folds `text` into words and matches each word once against every cue word; the rules below read the scan.
    pub fn scan<'t>(&self, text: &'t str) -> CueScan<'t> {
        let width = self.index.words.len().div_ceil(64);
        let mut scan = CueScan {
            text,
            spans: Vec::new(),
            matched: Vec::new(),
            anywhere: vec![0; width],
            width,
        };
        let mut deletion = String::new();
        fold::for_each_word(text, |folded, start, end| {
            scan.spans.push((start, end));
            let at = scan.matched.len();
            scan.matched.resize(at + width, 0);
            let bits = &mut scan.matched[at..];
            self.index.matches(folded, &mut deletion, |id| {
                bits[id / 64] |= 1 << (id % 64);
            });
            for (any, bits) in scan.anywhere.iter_mut().zip(bits.iter()) {
                *any |= bits;
            }
        });
        scan
    }

    /// The most serious health-risk cue in the text: a vital cue first, else a priorizado cue.
    pub fn health_risk(&self, scan: &CueScan<'_>) -> Option<(HealthRisk, CueHit)> {
        scan.first_hit(&self.vital)
            .map(|hit| (HealthRisk::Vital, hit))
            .or_else(|| {
                scan.first_hit(&self.priorizado)
                    .map(|hit| (HealthRisk::Priorizado, hit))
            })
    }

    /// The first legal-threat cue found, in the order of the cue list.
    pub fn legal_threat(&self, scan: &CueScan<'_>) -> Option<CueHit> {
        scan.first_hit(&self.legal_threat)
    }

    /// The first repeated-contact cue found, in the order of the cue list.
    pub fn repeated_contact(&self, scan: &CueScan<'_>) -> Option<CueHit> {
        scan.first_hit(&self.repeated_contact)
    }

    /// True when the intake's client type denotes an employer (compared after folding).
    pub fn is_employer_client(&self, client_type: &str) -> bool {
        let folded = fold::fold(client_type);
        self.employer_client_types.contains(&folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cue: &str, text: &str) -> Option<String> {
        let pattern = CuePattern::parse(cue).expect("test cues are well formed");
        pattern.find(text, &fold::words(text)).map(|h| h.found)
    }

    #[test]
    fn cues_match_folded_whole_words() {
        assert_eq!(
            hit("sin medicament*", "ESTOY SIN MEDICAMENTOS HACE 2 MESES").as_deref(),
            Some("SIN MEDICAMENTOS")
        );
        assert_eq!(
            hit("cirugia", "la cirugía fue cancelada").as_deref(),
            Some("cirugía")
        );
        assert_eq!(
            hit("tercera vez que llamo", "Es la TERCERA vez, que llamo!").as_deref(),
            Some("TERCERA vez, que llamo")
        );
        // Whole words only.
        assert_eq!(hit("menor", "los menores de edad"), None);
        assert_eq!(hit("uci", "la lucidez"), None);
        assert_eq!(hit("juez", "JUEZ"), Some("JUEZ".into()));
    }

    #[test]
    fn long_words_tolerate_one_typo() {
        assert!(
            hit("medicamento", "no me dan el medicamneto").is_some(),
            "swap"
        );
        assert!(
            hit("superintendencia", "voy a la superintendecia").is_some(),
            "deletion"
        );
        assert!(
            hit("urgencias", "fui a urjencias").is_some(),
            "substitution"
        );
        assert!(hit("tutela", "pongo una tutelaa").is_some(), "insertion");
        assert!(hit("tutela", "pongo una tuleta").is_none(), "two edits");
        // Short words must match exactly.
        assert!(hit("juez", "el jues").is_none());
    }

    #[test]
    fn within_one_edit_cases() {
        for (a, b, expected) in [
            ("abcdef", "abcdef", true),
            ("abcdef", "abcdxf", true),
            ("abcdef", "abdcef", true),
            ("abcdef", "abcef", true),
            ("abcdef", "abcdefg", true),
            ("abcdef", "bacdfe", false),
            ("abcdef", "abc", false),
            ("", "a", true),
            ("ab", "ba", true),
        ] {
            assert_eq!(within_one_edit(a, b), expected, "{a} vs {b}");
            assert_eq!(within_one_edit(b, a), expected, "{b} vs {a}");
        }
    }

    fn shipped_rules() -> CompiledRules {
        let taxonomy =
            Taxonomy::from_toml_str(include_str!("../../../datasets/taxonomy/comfama.toml"))
                .expect("shipped taxonomy is valid");
        CompiledRules::from_taxonomy(&taxonomy).expect("shipped rules compile")
    }

    /// A comment made of cue words, some with one typo, some with a suffix, in any case, among other words.
    fn comment_of_cue_words(rules: &CompiledRules, picks: &[(usize, u8, usize)]) -> String {
        let mut text = String::new();
        for &(word, edit, at) in picks {
            let cue = &rules.index.words[word % rules.index.words.len()].folded;
            let mut chars: Vec<char> = cue.chars().collect();
            let at = at % chars.len();
            match edit {
                0 => chars.remove(at),
                1 if at + 1 < chars.len() => {
                    chars.swap(at, at + 1);
                    ' '
                }
                2 => std::mem::replace(&mut chars[at], 'x'),
                3 => {
                    chars.insert(at, 'e');
                    ' '
                }
                4 => {
                    chars.extend("OS".chars());
                    ' '
                }
                5 => {
                    chars = chars.iter().flat_map(|c| c.to_uppercase()).collect();
                    ' '
                }
                6 => {
                    chars = "cirugía".chars().collect();
                    ' '
                }
                _ => ' ',
            };
            text.extend(chars);
            text.push_str(if at.is_multiple_of(3) { ", " } else { " " });
        }
        text
    }

    proptest::proptest! {
        #[test]
        fn the_index_finds_what_each_cue_finds_by_itself(
            picks in proptest::collection::vec((0usize..400, 0u8..10, 0usize..20), 0..14)
        ) {
            let rules = shipped_rules();
            let text = comment_of_cue_words(&rules, &picks);
            let words = fold::words(&text);
            let scan = rules.scan(&text);
            for cues in [&rules.vital, &rules.priorizado, &rules.legal_threat, &rules.repeated_contact] {
                let expected = cues.iter().find_map(|cue| cue.pattern.find(&text, &words));
                proptest::prop_assert_eq!(scan.first_hit(cues), expected, "{}", text);
            }
        }
    }

    #[test]
    fn the_scan_reports_cues_of_each_rule() {
        let rules = shipped_rules();
        let scan = rules.scan(
            "Es la TERCERA vez que llamo: mi hijo menor esta SIN MEDICAMENTOS, pondré tutela",
        );
        let (risk, hit) = rules.health_risk(&scan).expect("a vital cue");
        assert_eq!(
            (risk, hit.found.as_str()),
            (HealthRisk::Vital, "SIN MEDICAMENTOS")
        );
        assert_eq!(
            rules.legal_threat(&scan).map(|h| h.found),
            Some("tutela".into())
        );
        assert_eq!(
            rules.repeated_contact(&scan).map(|h| h.found),
            Some("TERCERA vez".into())
        );
        assert!(rules.health_risk(&rules.scan("una felicitación")).is_none());
    }

    #[test]
    fn malformed_cues_are_rejected() {
        assert!(CuePattern::parse("me*dicamento").is_err());
        assert!(CuePattern::parse("ab*").is_err());
        assert!(CuePattern::parse("  ").is_err());
        assert!(CuePattern::parse("*").is_err());
        assert_eq!(
            CuePattern::parse("C.C.").map(|p| p.words.len()),
            Ok(2),
            "punctuation splits words as in the text"
        );
    }

    #[test]
    fn priorities_are_ordered_and_lower_case() {
        assert!(Priority::Normal < Priority::Alta && Priority::Alta < Priority::Urgente);
        assert_eq!(
            serde_json::to_string(&Priority::Urgente).expect("serialises"),
            "\"urgente\""
        );
    }
}
