//! Span-level precision and recall of the personal-data masker on the annotated set
//! `datasets/masking/spans.jsonl` (hand-written fake comments; see `datasets/masking/README.md`).
//!
//! A predicted span counts only if its kind and both byte offsets equal a gold span's. Run with `--nocapture` to
//! see the table and every miss.

use std::collections::BTreeMap;

use models::routing::mask::{SpanKind, find_spans};
use serde::Deserialize;

const SET: &str = include_str!("../../datasets/masking/spans.jsonl");

/// Floor for precision and recall of every kind and overall, on the whole set.
const FLOOR: f64 = 0.9;

#[derive(Debug, Deserialize)]
struct Row {
    id: u32,
    register: String,
    split: String,
    text: String,
    spans: Vec<Gold>,
}

#[derive(Debug, Deserialize)]
struct Gold {
    kind: String,
    text: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    true_pos: usize,
    false_pos: usize,
    false_neg: usize,
}

impl Counts {
    fn precision(self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_pos)
    }
    fn recall(self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_neg)
    }
    fn add(&mut self, other: Counts) {
        self.true_pos += other.true_pos;
        self.false_pos += other.false_pos;
        self.false_neg += other.false_neg;
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

fn rows() -> Vec<Row> {
    SET.lines()
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1))
        })
        .collect()
}

type Key = (usize, usize, SpanKind);

fn gold_keys(row: &Row) -> Vec<Key> {
    row.spans
        .iter()
        .map(|g| {
            let kind = SpanKind::from_id(&g.kind)
                .unwrap_or_else(|| panic!("row {}: unknown kind {}", row.id, g.kind));
            (g.start, g.end, kind)
        })
        .collect()
}

#[test]
fn annotated_set_is_consistent() {
    let rows = rows();
    let mut total = 0;
    for row in &rows {
        let mut previous_end = 0;
        let mut spans: Vec<&Gold> = row.spans.iter().collect();
        spans.sort_by_key(|g| g.start);
        for gold in spans {
            assert_eq!(
                row.text.get(gold.start..gold.end),
                Some(gold.text.as_str()),
                "row {}: offsets do not hold the gold text",
                row.id
            );
            assert!(
                gold.start >= previous_end,
                "row {}: overlapping gold spans",
                row.id
            );
            previous_end = gold.end;
            total += 1;
        }
        assert!(
            matches!(row.split.as_str(), "dev" | "test"),
            "row {}",
            row.id
        );
        assert!(!row.register.is_empty(), "row {}", row.id);
    }
    assert!(
        total >= 200,
        "the set must hold at least 200 spans, has {total}"
    );
    assert!(
        rows.iter().filter(|r| r.spans.is_empty()).count() >= 10,
        "the set must hold comments without personal data"
    );
}

#[test]
fn masker_precision_and_recall_meet_the_floor() {
    let rows = rows();
    // (split, kind) -> counts; split "all" holds the whole set.
    let mut table: BTreeMap<(String, SpanKind), Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    for row in &rows {
        let gold = gold_keys(row);
        let predicted: Vec<Key> = find_spans(&row.text)
            .into_iter()
            .map(|s| (s.start, s.end, s.kind))
            .collect();
        for kind in SpanKind::ALL {
            let g: Vec<&Key> = gold.iter().filter(|k| k.2 == kind).collect();
            let p: Vec<&Key> = predicted.iter().filter(|k| k.2 == kind).collect();
            let true_pos = p.iter().filter(|k| g.contains(k)).count();
            let counts = Counts {
                true_pos,
                false_pos: p.len() - true_pos,
                false_neg: g.len() - true_pos,
            };
            for split in [row.split.as_str(), "all"] {
                table
                    .entry((split.to_string(), kind))
                    .or_default()
                    .add(counts);
            }
            for &&(start, end, _) in p.iter().filter(|k| !g.contains(k)) {
                misses.push(format!(
                    "row {} FP {}: {:?}",
                    row.id,
                    kind.id(),
                    &row.text[start..end]
                ));
            }
            for &&(start, end, _) in g.iter().filter(|k| !p.contains(k)) {
                misses.push(format!(
                    "row {} FN {}: {:?}",
                    row.id,
                    kind.id(),
                    &row.text[start..end]
                ));
            }
        }
    }

    println!(
        "{:<6} {:<10} {:>5} {:>4} {:>4} {:>9} {:>7}",
        "split", "kind", "gold", "fp", "fn", "precision", "recall"
    );
    let mut overall: BTreeMap<String, Counts> = BTreeMap::new();
    for ((split, kind), counts) in &table {
        overall.entry(split.clone()).or_default().add(*counts);
        println!(
            "{:<6} {:<10} {:>5} {:>4} {:>4} {:>9.3} {:>7.3}",
            split,
            kind.id(),
            counts.true_pos + counts.false_neg,
            counts.false_pos,
            counts.false_neg,
            counts.precision(),
            counts.recall()
        );
    }
    for (split, counts) in &overall {
        println!(
            "{:<6} {:<10} {:>5} {:>4} {:>4} {:>9.3} {:>7.3}",
            split,
            "overall",
            counts.true_pos + counts.false_neg,
            counts.false_pos,
            counts.false_neg,
            counts.precision(),
            counts.recall()
        );
    }
    for miss in &misses {
        println!("{miss}");
    }

    let mut below = Vec::new();
    for kind in SpanKind::ALL {
        let counts = table[&("all".to_string(), kind)];
        if counts.precision() < FLOOR || counts.recall() < FLOOR {
            below.push(format!(
                "{}: precision {:.3}, recall {:.3}",
                kind.id(),
                counts.precision(),
                counts.recall()
            ));
        }
    }
    let all = overall["all"];
    if all.precision() < FLOOR || all.recall() < FLOOR {
        below.push(format!(
            "overall: precision {:.3}, recall {:.3}",
            all.precision(),
            all.recall()
        ));
    }
    assert!(below.is_empty(), "below the {FLOOR} floor: {below:?}");
}
