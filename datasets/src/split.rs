//! Train/test splits: stratified by a head's label, k-fold, and temporal on the date column. All seeded.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::LabeledSet;

/// Indices of a split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Rows to fit on.
    pub train: Vec<usize>,
    /// Rows to measure on.
    pub test: Vec<usize>,
}

fn strata(set: &LabeledSet, head: usize) -> BTreeMap<&str, Vec<usize>> {
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in set.records.iter().enumerate() {
        by_label
            .entry(r.labels.get(head).map_or("", String::as_str))
            .or_default()
            .push(i);
    }
    by_label
}

/// Holds out `test_fraction` of every label of `head` (rounded), shuffled with `seed`.
pub fn stratified(set: &LabeledSet, head: usize, test_fraction: f64, seed: u64) -> Split {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut split = Split::default();
    for (_, mut members) in strata(set, head) {
        members.shuffle(&mut rng);
        let n_test = ((members.len() as f64) * test_fraction).round() as usize;
        split
            .test
            .extend_from_slice(&members[..n_test.min(members.len())]);
        split
            .train
            .extend_from_slice(&members[n_test.min(members.len())..]);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    split
}

/// `k` stratified folds: fold `i` tests on every `k`-th member of each shuffled label group.
pub fn k_fold(set: &LabeledSet, head: usize, k: usize, seed: u64) -> Vec<Split> {
    let k = k.max(2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0usize; set.records.len()];
    for (_, mut members) in strata(set, head) {
        members.shuffle(&mut rng);
        for (j, i) in members.into_iter().enumerate() {
            fold_of[i] = j % k;
        }
    }
    (0..k)
        .map(|f| Split {
            train: (0..fold_of.len()).filter(|&i| fold_of[i] != f).collect(),
            test: (0..fold_of.len()).filter(|&i| fold_of[i] == f).collect(),
        })
        .collect()
}

/// Train on rows dated before `from`, test on rows dated on or after it; undated rows are left out of both.
pub fn temporal(set: &LabeledSet, from: NaiveDate) -> Split {
    let mut split = Split::default();
    for (i, r) in set.records.iter().enumerate() {
        match r.date {
            Some(d) if d < from => split.train.push(i),
            Some(_) => split.test.push(i),
            None => {}
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;

    fn set(labels: &[&str]) -> LabeledSet {
        LabeledSet {
            heads: vec!["type".into()],
            records: labels
                .iter()
                .enumerate()
                .map(|(i, l)| Record {
                    line: i as u64 + 2,
                    id: None,
                    text: format!("t{i}"),
                    labels: vec![l.to_string()],
                    date: NaiveDate::from_ymd_opt(2023, 1 + (i % 12) as u32, 1),
                    channel: None,
                })
                .collect(),
            report: Default::default(),
        }
    }

    #[test]
    fn stratified_keeps_label_shares_and_is_seeded() {
        let labels: Vec<&str> = (0..100)
            .map(|i| if i % 5 == 0 { "queja" } else { "reclamo" })
            .collect();
        let s = set(&labels);
        let a = stratified(&s, 0, 0.2, 7);
        assert_eq!(a, stratified(&s, 0, 0.2, 7));
        assert_eq!(a.test.len(), 20);
        assert_eq!(a.test.iter().filter(|&&i| labels[i] == "queja").count(), 4);
        assert_ne!(a, stratified(&s, 0, 0.2, 8));
    }

    #[test]
    fn folds_partition_the_rows() {
        let labels: Vec<&str> = (0..31)
            .map(|i| if i % 3 == 0 { "a" } else { "b" })
            .collect();
        let folds = k_fold(&set(&labels), 0, 5, 1);
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..31).collect::<Vec<_>>());
        assert!(folds.iter().all(|f| f.train.len() + f.test.len() == 31));
    }

    #[test]
    fn temporal_split_at_a_date() {
        let s = set(&["a"; 12]);
        let split = temporal(&s, NaiveDate::from_ymd_opt(2023, 9, 1).expect("valid date"));
        assert_eq!(split.train, (0..8).collect::<Vec<_>>());
        assert_eq!(split.test, vec![8, 9, 10, 11]);
    }
}
