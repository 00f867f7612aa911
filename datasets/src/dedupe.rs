//! Exact and near-duplicate detection: exact on folded text, near by MinHash over character 5-gram shingles with
//! banded locality-sensitive hashing, confirmed by the shingles' Jaccard similarity.

use std::collections::{HashMap, HashSet};

use crate::fold_accent;

/// Similarity above which two texts count as near-duplicates.
pub const NEAR_JACCARD: f64 = 0.8;
const SHINGLE: usize = 5;
const BANDS: usize = 16;
const ROWS: usize = 4;

/// Duplicate groups found in a list of texts (indices into it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Duplicates {
    /// Groups of texts equal after folding case, accents, punctuation and spaces (each group has ≥ 2 members).
    pub exact: Vec<Vec<usize>>,
    /// Pairs of different texts whose shingle Jaccard similarity is at least [`NEAR_JACCARD`].
    pub near: Vec<(usize, usize, f64)>,
    /// How many texts (from the start) the near-duplicate search covered: all of them up to
    /// [`NEAR_SEARCH_LIMIT`], so that memory stays bounded on million-row files.
    pub near_searched: usize,
}

/// Near duplicates are searched among the first this many texts; exact duplicates among all. Shingle sets cost
/// about 8 KB per text, so a million rows would need gigabytes.
pub const NEAR_SEARCH_LIMIT: usize = 200_000;

impl Duplicates {
    /// Texts that repeat an earlier one exactly (group size minus one, summed).
    pub fn exact_extra(&self) -> usize {
        self.exact.iter().map(|g| g.len() - 1).sum()
    }
}

/// The text reduced to lower-case letters and digits separated by single spaces.
pub fn fold_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars().flat_map(char::to_lowercase).map(fold_accent) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn shingles(folded: &str) -> HashSet<u64> {
    let chars: Vec<char> = folded.chars().collect();
    let mut set = HashSet::new();
    if chars.len() <= SHINGLE {
        set.insert(fnv1a(folded.as_bytes(), 0));
        return set;
    }
    let mut buf = String::new();
    for w in chars.windows(SHINGLE) {
        buf.clear();
        buf.extend(w);
        set.insert(fnv1a(buf.as_bytes(), 0));
    }
    set
}

fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Finds exact and near-duplicate texts.
pub fn find_duplicates<S: AsRef<str>>(texts: &[S]) -> Duplicates {
    let folded: Vec<String> = texts.iter().map(|t| fold_text(t.as_ref())).collect();
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in folded.iter().enumerate() {
        by_text.entry(f.as_str()).or_default().push(i);
    }
    let mut exact: Vec<Vec<usize>> = by_text.into_values().filter(|g| g.len() > 1).collect();
    exact.sort();
    // Near duplicates only among distinct texts: the first of each exact group represents it.
    let near_searched = texts.len().min(NEAR_SEARCH_LIMIT);
    let mut representative: Vec<bool> = (0..texts.len()).map(|i| i < near_searched).collect();
    for g in &exact {
        for &i in &g[1..] {
            representative[i] = false;
        }
    }
    let sets: Vec<Option<HashSet<u64>>> = folded
        .iter()
        .zip(&representative)
        .map(|(f, &keep)| keep.then(|| shingles(f)))
        .collect();
    let mut buckets: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        let Some(set) = set else { continue };
        for band in 0..BANDS {
            let mut key = 0u64;
            for row in 0..ROWS {
                let seed = (band * ROWS + row) as u64 + 1;
                let min = set
                    .iter()
                    .map(|&s| fnv1a(&s.to_le_bytes(), seed))
                    .min()
                    .unwrap_or(0);
                key = key.rotate_left(17) ^ min;
            }
            buckets.entry((band, key)).or_default().push(i);
        }
    }
    let mut seen = HashSet::new();
    let mut near = Vec::new();
    for members in buckets.values().filter(|m| m.len() > 1) {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if !seen.insert((a, b)) {
                    continue;
                }
                if let (Some(sa), Some(sb)) = (&sets[a], &sets[b]) {
                    let j = jaccard(sa, sb);
                    if j >= NEAR_JACCARD {
                        near.push((a, b, j));
                    }
                }
            }
        }
    }
    near.sort_by_key(|&(a, b, _)| (a, b));
    Duplicates {
        exact,
        near,
        near_searched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ignores_case_accents_and_punctuation() {
        let d = find_duplicates(&[
            "NO ME HAN PAGADO LA CUOTA!!",
            "no me han pagado la cuota",
            "otra cosa",
        ]);
        assert_eq!(d.exact, vec![vec![0, 1]]);
        assert_eq!(d.exact_extra(), 1);
    }

    #[test]
    fn near_duplicates_differ_by_a_word() {
        let a = "Buenas tardes, desde hace tres meses no me llega la cuota monetaria de mis dos hijos y nadie me da razón";
        let b = "Buenas tardes, desde hace tres meses no me llega la cuota monetaria de mis dos hijos y nadie me da razon.";
        let c = "Buenas tardes, desde hace tres meses no me llega la cuota monetaria de mis tres hijos y nadie me da razón";
        let d = find_duplicates(&[a, c, "la piscina estaba cerrada el domingo", b]);
        assert_eq!(d.exact, vec![vec![0, 3]]);
        assert_eq!(d.near.len(), 1);
        assert_eq!((d.near[0].0, d.near[0].1), (0, 1));
    }
}
