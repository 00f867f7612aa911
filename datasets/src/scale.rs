//! Scale generator: recombines labeled comments into as many as asked (a million and more) for throughput and
//! memory benchmarks of readers, training and serving.
//!
//! **For benchmarks only, never for accuracy claims.** Generated comments are recombinations of the same few
//! thousand hand-written ones: a model scored on them would be scored on its own training sentences, and the
//! spliced sentences can come from another theme of the same area, so the `theme` label is only approximately
//! right. Accuracy is measured on the committed corpus test split or on real history.
//!
//! Each comment is built from a base comment, whose labels and channel it keeps: one sentence (sometimes two)
//! from other comments of the same `(type, area)` is inserted after the base's first sentence or replaces one of
//! its later sentences, and then the [`Augmenter`] adds noise. Comment `i` depends only on the seed and `i`, so
//! the stream is deterministic, can be skipped into, and holds no state that grows with the number of comments.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::augment::Augmenter;
use crate::{Error, LabeledSet, Result};

/// The CSV columns [`write_csv`] writes, the first six of the corpus file.
pub const CSV_COLUMNS: [&str; 6] = ["id", "text", "type", "area", "theme", "channel"];

/// Probability that a comment receives a second spliced sentence.
const SECOND_SPLICE: f64 = 0.25;
/// Probability that a spliced sentence replaces a later sentence of the base instead of being inserted.
const REPLACE: f64 = 0.5;

/// One generated comment. Labels are shared strings: cloning them costs a counter increment, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaledComment {
    /// `scale-` and the comment's index, zero-padded.
    pub id: String,
    /// The recombined, noised text.
    pub text: String,
    /// Type label of the base comment.
    pub comment_type: Arc<str>,
    /// Area label of the base comment.
    pub area: Arc<str>,
    /// Theme label of the base comment (empty when the source set has no `theme` head).
    pub theme: Arc<str>,
    /// Channel of the base comment (empty when it has none).
    pub channel: Arc<str>,
    /// Index of the base comment in the source set.
    pub source: usize,
}

#[derive(Debug, Clone)]
struct Source {
    text: String,
    sentences: Vec<Range<usize>>,
    comment_type: Arc<str>,
    area: Arc<str>,
    theme: Arc<str>,
    channel: Arc<str>,
    /// The comments sentences may be borrowed from (same type and area, or same type if that pool is too small).
    donors: usize,
}

/// Which comments a donor pool holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PoolKey {
    TypeArea((Arc<str>, Arc<str>)),
    Type(Arc<str>),
}

/// Recombines a labeled set; build it once, then ask for [`Generator::comments`].
#[derive(Debug, Clone)]
pub struct Generator {
    sources: Vec<Source>,
    donor_pools: Vec<Vec<usize>>,
    augmenter: Augmenter,
}

impl Generator {
    /// Prepares a generator from a set with heads `type` and `area` (and optionally `theme`).
    pub fn new(set: &LabeledSet, augmenter: Augmenter) -> Result<Self> {
        let head = |name: &str| {
            set.head_index(name).ok_or_else(|| {
                Error::Mapping(format!(
                    "the scale generator needs a `{name}` head; the set has: {}",
                    set.heads.join(", ")
                ))
            })
        };
        let (type_head, area_head, theme_head) = (head("type")?, head("area")?, head("theme").ok());
        if set.records.is_empty() {
            return Err(Error::Mapping(
                "the scale generator needs at least one comment".into(),
            ));
        }
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        let mut intern = |s: &str| -> Arc<str> {
            interned
                .entry(s.to_string())
                .or_insert_with(|| Arc::from(s))
                .clone()
        };
        let mut by_type_area: HashMap<(Arc<str>, Arc<str>), Vec<usize>> = HashMap::new();
        let mut by_type: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        let mut sources = Vec::with_capacity(set.records.len());
        for (i, r) in set.records.iter().enumerate() {
            let (comment_type, area) = (intern(&r.labels[type_head]), intern(&r.labels[area_head]));
            by_type_area
                .entry((comment_type.clone(), area.clone()))
                .or_default()
                .push(i);
            by_type.entry(comment_type.clone()).or_default().push(i);
            sources.push(Source {
                sentences: sentences(&r.text),
                text: r.text.clone(),
                comment_type,
                area,
                theme: intern(theme_head.map_or("", |h| r.labels[h].as_str())),
                channel: intern(r.channel.as_deref().unwrap_or("")),
                donors: 0,
            });
        }
        // Pools are numbered in source order so that the output does not depend on hash map iteration order.
        let mut donor_pools: Vec<Vec<usize>> = Vec::new();
        let mut pool_numbers: HashMap<PoolKey, usize> = HashMap::new();
        for source in &mut sources {
            let pair = (source.comment_type.clone(), source.area.clone());
            let (key, pool) = if by_type_area[&pair].len() >= 2 {
                let pool = &by_type_area[&pair];
                (PoolKey::TypeArea(pair), pool)
            } else {
                let pool = &by_type[&source.comment_type];
                (PoolKey::Type(source.comment_type.clone()), pool)
            };
            source.donors = *pool_numbers.entry(key).or_insert_with(|| {
                donor_pools.push(pool.clone());
                donor_pools.len() - 1
            });
        }
        Ok(Self {
            sources,
            donor_pools,
            augmenter,
        })
    }

    /// A generator over the whole shipped corpus.
    pub fn from_corpus(augmenter: Augmenter) -> Result<Self> {
        Self::new(&crate::corpus::all()?, augmenter)
    }

    /// Number of source comments.
    pub fn source_len(&self) -> usize {
        self.sources.len()
    }

    /// Comment number `index` of the stream seeded with `seed`.
    pub fn comment(&self, seed: u64, index: u64) -> ScaledComment {
        let mut rng = StdRng::seed_from_u64(mix(mix(seed) ^ index));
        let base_index = rng.random_range(0..self.sources.len());
        let base = &self.sources[base_index];
        let mut parts: Vec<&str> = base
            .sentences
            .iter()
            .map(|r| &base.text[r.clone()])
            .collect();
        let splices = if rng.random_bool(SECOND_SPLICE) { 2 } else { 1 };
        for _ in 0..splices {
            let Some(donated) = self.donated_sentence(base_index, &mut rng) else {
                break;
            };
            // The first sentence stays: it usually carries the greeting and the gist that decides the type.
            if parts.len() >= 2 && rng.random_bool(REPLACE) {
                let at = rng.random_range(1..parts.len());
                parts[at] = donated;
            } else {
                let at = rng.random_range(1..=parts.len().max(1));
                parts.insert(at.min(parts.len()), donated);
            }
        }
        let joined = join_sentences(&parts);
        ScaledComment {
            id: format!("scale-{index:07}"),
            text: self.augmenter.augment(&joined, &mut rng),
            comment_type: base.comment_type.clone(),
            area: base.area.clone(),
            theme: base.theme.clone(),
            channel: base.channel.clone(),
            source: base_index,
        }
    }

    /// The first `n` comments of the stream seeded with `seed`, generated lazily.
    pub fn comments(&self, seed: u64, n: u64) -> Comments<'_> {
        Comments {
            generator: self,
            seed,
            next: 0,
            end: n,
        }
    }

    /// A random sentence of another comment of the base's donor pool, if the pool has another comment with text.
    fn donated_sentence<'a>(&'a self, base: usize, rng: &mut StdRng) -> Option<&'a str> {
        let pool = &self.donor_pools[self.sources[base].donors];
        if pool.len() < 2 {
            return None;
        }
        let mut pick = rng.random_range(0..pool.len());
        if pool[pick] == base {
            pick = (pick + 1) % pool.len();
        }
        let donor = &self.sources[pool[pick]];
        if donor.sentences.is_empty() {
            return None;
        }
        let range = donor.sentences[rng.random_range(0..donor.sentences.len())].clone();
        Some(&donor.text[range])
    }
}

/// The lazy stream of [`Generator::comments`]; `nth` jumps without generating the skipped comments.
#[derive(Debug, Clone)]
pub struct Comments<'a> {
    generator: &'a Generator,
    seed: u64,
    next: u64,
    end: u64,
}

impl Iterator for Comments<'_> {
    type Item = ScaledComment;

    fn next(&mut self) -> Option<ScaledComment> {
        if self.next >= self.end {
            return None;
        }
        let comment = self.generator.comment(self.seed, self.next);
        self.next += 1;
        Some(comment)
    }

    fn nth(&mut self, n: usize) -> Option<ScaledComment> {
        self.next = self.next.saturating_add(n as u64).min(self.end);
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Comments<'_> {}

/// Writes comments as CSV with the header [`CSV_COLUMNS`]; returns the number of rows written.
pub fn write_csv(
    comments: impl IntoIterator<Item = ScaledComment>,
    writer: impl Write,
) -> Result<u64> {
    let mut out = csv::Writer::from_writer(writer);
    out.write_record(CSV_COLUMNS)?;
    let mut rows = 0;
    for c in comments {
        out.write_record([
            &*c.id,
            &*c.text,
            &*c.comment_type,
            &*c.area,
            &*c.theme,
            &*c.channel,
        ])?;
        rows += 1;
    }
    out.flush().map_err(csv::Error::from)?;
    Ok(rows)
}

/// SplitMix64 finaliser: neighbouring seeds and indices give unrelated generator seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Byte ranges of the trimmed sentences of a text: a sentence ends at `.`, `!`, `?` or `…` followed by white
/// space, or at a line break.
fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = if c == '\n' {
            Some(at)
        } else if matches!(c, '.' | '!' | '?' | '…')
            && chars.peek().is_some_and(|(_, n)| n.is_whitespace())
        {
            Some(at + c.len_utf8())
        } else {
            None
        };
        if let Some(end) = end {
            push_trimmed(text, start..end, &mut out);
            start = end;
        }
    }
    push_trimmed(text, start..text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let piece = &text[range.clone()];
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        let lead = piece.len() - piece.trim_start().len();
        let start = range.start + lead;
        out.push(start..start + trimmed.len());
    }
}

/// Joins sentences with a space, closing with a period any sentence but the last that lacks an end mark, so
/// that a spliced sentence does not run into the previous one.
fn join_sentences(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            if !out.ends_with(['.', '!', '?', '…', ':', ';']) {
                out.push('.');
            }
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::NoiseLevel;
    use std::collections::HashSet;

    fn corpus() -> LabeledSet {
        crate::corpus::all().expect("embedded corpus reads")
    }

    fn labels_of(set: &LabeledSet, i: usize) -> (&str, &str, &str) {
        let (t, a, th) = (
            set.head_index("type").expect("type"),
            set.head_index("area").expect("area"),
            set.head_index("theme").expect("theme"),
        );
        let r = &set.records[i];
        (&r.labels[t], &r.labels[a], &r.labels[th])
    }

    #[test]
    fn sentences_split_on_end_marks_and_line_breaks() {
        let check = |text: &str, expected: &[&str]| {
            let got: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
            assert_eq!(got, expected, "{text:?}");
        };
        check("Hola. Quiero saber.", &["Hola.", "Quiero saber."]);
        check(
            "¿Cuándo pagan? Nadie sabe!  Gracias",
            &["¿Cuándo pagan?", "Nadie sabe!", "Gracias"],
        );
        check("Valor 1.500.000 pesos", &["Valor 1.500.000 pesos"]);
        check(
            "primera\n\n segunda…  tercera",
            &["primera", "segunda…", "tercera"],
        );
        check("   ", &[]);
        check("", &[]);
    }

    #[test]
    fn joined_sentences_do_not_run_together() {
        assert_eq!(
            join_sentences(&["Hola", "¿qué tal?", "bien"]),
            "Hola. ¿qué tal? bien"
        );
        assert_eq!(join_sentences(&["Solo una"]), "Solo una");
    }

    #[test]
    fn same_seed_same_stream_and_other_seed_another() {
        let g = Generator::from_corpus(Augmenter::default()).expect("generator");
        let a: Vec<ScaledComment> = g.comments(7, 500).collect();
        let b: Vec<ScaledComment> = g.comments(7, 500).collect();
        assert_eq!(a, b);
        let c: Vec<ScaledComment> = g.comments(8, 500).collect();
        let same = a.iter().zip(&c).filter(|(x, y)| x.text == y.text).count();
        assert!(same < 10, "{same} of 500 equal across seeds");
    }

    #[test]
    fn n_is_respected_and_skipping_is_random_access() {
        let g = Generator::from_corpus(Augmenter::default()).expect("generator");
        for n in [0, 1, 17, 1000] {
            let it = g.comments(1, n);
            assert_eq!(it.len() as u64, n);
            assert_eq!(it.count() as u64, n);
        }
        let mut it = g.comments(3, 2_000_000);
        assert_eq!(it.nth(1_234_567), Some(g.comment(3, 1_234_567)));
        assert_eq!(it.len(), 2_000_000 - 1_234_568);
        assert_eq!(g.comments(3, 10).nth(10), None);
    }

    #[test]
    fn labels_and_channel_come_from_the_base_comment() {
        let set = corpus();
        let g = Generator::new(&set, Augmenter::at_level(NoiseLevel::Heavy)).expect("generator");
        for c in g.comments(11, 2000) {
            let (t, a, th) = labels_of(&set, c.source);
            assert_eq!((&*c.comment_type, &*c.area, &*c.theme), (t, a, th));
            assert_eq!(
                &*c.channel,
                set.records[c.source].channel.as_deref().unwrap_or("")
            );
        }
    }

    #[test]
    fn without_noise_every_sentence_comes_from_the_same_type_and_area() {
        let set = corpus();
        let g = Generator::new(&set, Augmenter::none()).expect("generator");
        let mut pools: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for (i, r) in set.records.iter().enumerate() {
            let (t, a, _) = labels_of(&set, i);
            let pool = pools.entry((t, a)).or_default();
            pool.extend(sentences(&r.text).into_iter().map(|range| &r.text[range]));
        }
        let mut longer = 0;
        for c in g.comments(5, 1000) {
            let base = &set.records[c.source].text;
            let first = &base[sentences(base)[0].clone()];
            assert!(
                c.text.starts_with(first),
                "{:?} does not start with {first:?}",
                c.text
            );
            longer += usize::from(c.text != *base);
            // The text must be a chain of sentences of its own type and area, each perhaps closed with a period
            // by `join_sentences`; the longest sentence that fits is taken first.
            let pool = &pools[&(&*c.comment_type, &*c.area)];
            let mut rest = c.text.as_str();
            while !rest.is_empty() {
                let sentence = pool
                    .iter()
                    .filter(|s| rest.starts_with(**s))
                    .max_by_key(|s| s.len())
                    .unwrap_or_else(|| {
                        panic!(
                            "{rest:?} does not start with a sentence of {}/{}",
                            c.comment_type, c.area
                        )
                    });
                rest = &rest[sentence.len()..];
                rest = rest
                    .strip_prefix('.')
                    .unwrap_or(rest)
                    .trim_start_matches(' ');
            }
        }
        assert!(longer >= 990, "only {longer} of 1000 were recombined");
    }

    #[test]
    fn outputs_are_mostly_distinct() {
        let g = Generator::from_corpus(Augmenter::default()).expect("generator");
        let texts: HashSet<String> = g.comments(42, 10_000).map(|c| c.text).collect();
        assert!(texts.len() >= 9_500, "{} distinct of 10000", texts.len());
        let ids: HashSet<String> = g.comments(42, 10_000).map(|c| c.id).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn sets_without_type_or_area_are_refused() {
        let mut set = corpus();
        set.heads[0] = "tipo".into();
        let err = Generator::new(&set, Augmenter::none()).unwrap_err();
        assert!(err.to_string().contains("`type` head"), "{err}");
        let empty = LabeledSet {
            heads: vec!["type".into(), "area".into()],
            ..Default::default()
        };
        assert!(Generator::new(&empty, Augmenter::none()).is_err());
    }

    #[test]
    fn small_pools_borrow_from_the_same_type_or_not_at_all() {
        let csv = "text,type,area\nUno. Dos.,queja,a\nTres.,queja,b\nCuatro.,felicitacion,c\n";
        let mapping = crate::ColumnMapping {
            text: vec!["text".into()],
            labels: vec![
                ("type".into(), "type".into()),
                ("area".into(), "area".into()),
            ],
            ..Default::default()
        };
        let set = crate::read_labeled_from(csv.as_bytes(), &mapping).expect("reads");
        let g = Generator::new(&set, Augmenter::none()).expect("generator");
        for c in g.comments(1, 200) {
            match &*c.comment_type {
                // Alone in its type: nothing to borrow, the text is the base's.
                "felicitacion" => assert_eq!(c.text, "Cuatro."),
                _ => assert!(
                    ["Uno.", "Dos.", "Tres."].iter().any(|s| c.text.contains(s))
                        && c.text.len() > 5,
                    "{}",
                    c.text
                ),
            }
            assert!(c.theme.is_empty());
        }
    }

    #[test]
    fn csv_has_the_corpus_columns_and_reads_back() {
        let g = Generator::from_corpus(Augmenter::at_level(NoiseLevel::Heavy)).expect("generator");
        let mut buf = Vec::new();
        let rows = write_csv(g.comments(9, 300), &mut buf).expect("writes");
        assert_eq!(rows, 300);
        let text = String::from_utf8(buf).expect("utf-8");
        assert!(text.starts_with("id,text,type,area,theme,channel\n"));
        let mut mapping = crate::corpus::mapping();
        mapping.id = Some("id".into());
        let back = crate::read_labeled_from(text.as_bytes(), &mapping).expect("reads back");
        assert_eq!(back.report.rows_rejected(), 0, "{:?}", back.report.rejected);
        let expected: Vec<ScaledComment> = g.comments(9, 300).collect();
        assert_eq!(back.records.len(), expected.len());
        for (r, c) in back.records.iter().zip(&expected) {
            assert_eq!(r.id.as_deref(), Some(c.id.as_str()));
            assert_eq!(r.text, c.text.trim());
            // The reader normalises labels; the corpus labels are already normal.
            assert_eq!(r.labels, [&*c.comment_type, &*c.theme, &*c.area]);
        }
    }
}
