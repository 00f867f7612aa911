//! The project's own corpus of hand-written PQRS comments and the shipped taxonomy, both embedded in the binary
//! so that the default model can be trained anywhere.

use crate::{ColumnMapping, LabeledSet, Result};

/// The shipped taxonomy file (`datasets/taxonomy/comfama.toml`).
pub const TAXONOMY_TOML: &str = include_str!("../taxonomy/comfama.toml");

/// The corpus file (`datasets/corpus/corpus.csv`): id, text, type, area, theme, channel, secondary_type, split,
/// hard, rationale.
pub const CORPUS_CSV: &str = include_str!("../corpus/corpus.csv");

/// The heads of the default model, in this order.
pub const HEADS: [&str; 3] = ["type", "theme", "area"];

/// The shipped taxonomy, validated.
pub fn taxonomy() -> Result<models::Taxonomy> {
    Ok(models::Taxonomy::from_toml_str(TAXONOMY_TOML)?)
}

/// The column mapping of the corpus file; `split` is read as the id column's neighbour through [`all_with_split`].
pub fn mapping() -> ColumnMapping {
    ColumnMapping {
        text: vec!["text".into()],
        labels: HEADS
            .iter()
            .map(|h| (h.to_string(), h.to_string()))
            .collect(),
        id: Some("id".into()),
        date: None,
        channel: Some("channel".into()),
        sheet: None,
    }
}

/// Every corpus comment with its split (`train` or `test`), in file order.
pub fn all_with_split() -> Result<(LabeledSet, Vec<bool>)> {
    let set = crate::read_labeled_from(CORPUS_CSV.as_bytes(), &mapping())?;
    // The split column is read separately so that the record type stays the same for every labeled file.
    let split_mapping = ColumnMapping {
        text: vec!["text".into()],
        labels: vec![("split".into(), "split".into())],
        ..Default::default()
    };
    let splits = crate::read_labeled_from(CORPUS_CSV.as_bytes(), &split_mapping)?;
    let is_test = splits
        .records
        .iter()
        .map(|r| r.labels[0] == "test")
        .collect();
    Ok((set, is_test))
}

/// Every corpus comment.
pub fn all() -> Result<LabeledSet> {
    Ok(all_with_split()?.0)
}

fn part(test: bool) -> Result<LabeledSet> {
    let (set, is_test) = all_with_split()?;
    let indices: Vec<usize> = (0..set.records.len())
        .filter(|&i| is_test[i] == test)
        .collect();
    Ok(set.subset(&indices))
}

/// The committed training part (80 %).
pub fn train() -> Result<LabeledSet> {
    part(false)
}

/// The committed test part (20 %), never used for fitting.
pub fn test() -> Result<LabeledSet> {
    part(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    #[test]
    fn corpus_reads_cleanly_and_matches_the_taxonomy() {
        let taxonomy = taxonomy().expect("shipped taxonomy is valid");
        assert!(taxonomy.themes.len() >= 45);
        let set = all().expect("corpus reads");
        assert_eq!(set.report.rows_rejected(), 0, "{:?}", set.report.rejected);
        assert!(set.records.len() >= 2500, "{} comments", set.records.len());
        let texts: HashSet<&str> = set.records.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts.len(), set.records.len(), "comments are distinct");
        let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
        let mut per_area: BTreeMap<&str, usize> = BTreeMap::new();
        let mut per_theme: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &set.records {
            let (ty, theme, area) = (&r.labels[0], &r.labels[1], &r.labels[2]);
            assert!(
                taxonomy.comment_type(ty).is_some(),
                "line {}: unknown type {ty}",
                r.line
            );
            let t = taxonomy
                .theme(theme)
                .unwrap_or_else(|| panic!("line {}: unknown theme {theme}", r.line));
            assert_eq!(
                &t.area, area,
                "line {}: theme {theme} is not in area {area}",
                r.line
            );
            *per_type.entry(ty).or_default() += 1;
            *per_area.entry(area).or_default() += 1;
            *per_theme.entry(theme).or_default() += 1;
        }
        assert!(per_type.values().all(|&n| n >= 150), "{per_type:?}");
        assert!(per_area.values().all(|&n| n >= 60), "{per_area:?}");
        assert!(per_theme.values().all(|&n| n >= 10), "{per_theme:?}");
    }

    #[test]
    fn committed_split_holds_out_a_fifth() {
        let (train, test) = (train().expect("train"), test().expect("test"));
        let total = (train.records.len() + test.records.len()) as f64;
        let share = test.records.len() as f64 / total;
        assert!((0.18..=0.22).contains(&share), "test share {share}");
    }
}
