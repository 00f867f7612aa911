//! Escalation rules: cue phrases compiled from the taxonomy's `[escalation]` section and matched on folded words.
//!
//! Intake text is ALL CAPS or lower case, with or without accents, and misspelled, so cues are matched word by word
//! after folding (see [`super::fold`]): whole words only (`menor` does not match `menores`), a trailing `*` for
//! prefixes (`medicament*`), and one typo tolerated in words of six or more characters (`medicamneto`).

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
    vital: Vec<CuePattern>,
    priorizado: Vec<CuePattern>,
    legal_threat: Vec<CuePattern>,
    repeated_contact: Vec<CuePattern>,
    employer_client_types: Vec<String>,
    section: Escalation,
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
        Ok(Self {
            vital: compile(
                "escalation.health_risk.vital_cues",
                &section.health_risk.vital_cues,
            )?,
            priorizado: compile(
                "escalation.health_risk.priorizado_cues",
                &section.health_risk.priorizado_cues,
            )?,
            legal_threat: compile("escalation.legal_threat.cues", &section.legal_threat.cues)?,
            repeated_contact: compile(
                "escalation.repeated_contact.cues",
                &section.repeated_contact.cues,
            )?,
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

    /// The most serious health-risk cue in the text: a vital cue first, else a priorizado cue.
    pub fn health_risk(&self, text: &str, words: &[Word]) -> Option<(HealthRisk, CueHit)> {
        first_hit(&self.vital, text, words)
            .map(|hit| (HealthRisk::Vital, hit))
            .or_else(|| {
                first_hit(&self.priorizado, text, words).map(|hit| (HealthRisk::Priorizado, hit))
            })
    }

    /// The first legal-threat cue found, in the order of the cue list.
    pub fn legal_threat(&self, text: &str, words: &[Word]) -> Option<CueHit> {
        first_hit(&self.legal_threat, text, words)
    }

    /// The first repeated-contact cue found, in the order of the cue list.
    pub fn repeated_contact(&self, text: &str, words: &[Word]) -> Option<CueHit> {
        first_hit(&self.repeated_contact, text, words)
    }

    /// True when the intake's client type denotes an employer (compared after folding).
    pub fn is_employer_client(&self, client_type: &str) -> bool {
        let folded = fold::fold(client_type);
        self.employer_client_types.contains(&folded)
    }
}

fn first_hit(patterns: &[CuePattern], text: &str, words: &[Word]) -> Option<CueHit> {
    patterns.iter().find_map(|p| p.find(text, words))
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
