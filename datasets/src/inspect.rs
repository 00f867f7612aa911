//! Statistics of a labeled set for `pqrs data inspect`: rows read and rejected, labels per head, duplicates,
//! dates, text lengths, and (when a taxonomy applies) labels the taxonomy does not know.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

use crate::LabeledSet;
use crate::dedupe::{Duplicates, find_duplicates};

/// Everything `pqrs data inspect` prints.
#[derive(Debug, Clone)]
pub struct Inspection<'a> {
    set: &'a LabeledSet,
    duplicates: Duplicates,
    date_range: Option<(NaiveDate, NaiveDate)>,
    words: Vec<usize>,
    channels: BTreeMap<String, usize>,
    taxonomy_problems: Vec<String>,
}

/// Computes the statistics; with a taxonomy, labels of heads named `type`, `area` and `theme` are checked against it.
pub fn inspect<'a>(set: &'a LabeledSet, taxonomy: Option<&models::Taxonomy>) -> Inspection<'a> {
    let texts: Vec<&str> = set.records.iter().map(|r| r.text.as_str()).collect();
    let duplicates = find_duplicates(&texts);
    let dates = set.records.iter().filter_map(|r| r.date);
    let date_range = dates.clone().min().zip(dates.max());
    let mut words: Vec<usize> = texts.iter().map(|t| t.split_whitespace().count()).collect();
    words.sort_unstable();
    let mut channels = BTreeMap::new();
    for r in &set.records {
        if let Some(c) = &r.channel {
            *channels.entry(c.clone()).or_default() += 1;
        }
    }
    let taxonomy_problems = taxonomy.map(|t| check_taxonomy(set, t)).unwrap_or_default();
    Inspection {
        set,
        duplicates,
        date_range,
        words,
        channels,
        taxonomy_problems,
    }
}

fn check_taxonomy(set: &LabeledSet, taxonomy: &models::Taxonomy) -> Vec<String> {
    let (ty, area, theme) = (
        set.head_index("type"),
        set.head_index("area"),
        set.head_index("theme"),
    );
    let mut problems: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let mut note = |msg: String, line: u64| {
        let e = problems.entry(msg).or_insert((line, 0));
        e.1 += 1;
    };
    for r in &set.records {
        if let Some(i) = ty.filter(|&i| taxonomy.comment_type(&r.labels[i]).is_none()) {
            note(format!("unknown type `{}`", r.labels[i]), r.line);
        }
        if let Some(i) = area.filter(|&i| taxonomy.area(&r.labels[i]).is_none()) {
            note(format!("unknown area `{}`", r.labels[i]), r.line);
        }
        if let Some(i) = theme {
            match taxonomy.theme(&r.labels[i]) {
                None => note(format!("unknown theme `{}`", r.labels[i]), r.line),
                Some(t) => {
                    if let Some(a) = area.filter(|&a| r.labels[a] != t.area) {
                        note(
                            format!("theme `{}` is not in area `{}`", t.id, r.labels[a]),
                            r.line,
                        );
                    }
                }
            }
        }
    }
    problems
        .into_iter()
        .map(|(msg, (line, n))| format!("{msg}: {n} rows (first at line {line})"))
        .collect()
}

impl Inspection<'_> {
    /// Problems found against the taxonomy (empty when none or when no taxonomy was given).
    pub fn taxonomy_problems(&self) -> &[String] {
        &self.taxonomy_problems
    }

    /// The duplicate groups and pairs found.
    pub fn duplicates(&self) -> &Duplicates {
        &self.duplicates
    }

    fn percentile(&self, p: f64) -> usize {
        if self.words.is_empty() {
            return 0;
        }
        let i = ((self.words.len() - 1) as f64 * p).round() as usize;
        self.words[i]
    }
}

impl fmt::Display for Inspection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.set.report;
        writeln!(f, "rows read      {}", r.rows_read)?;
        writeln!(f, "rows accepted  {}", r.rows_accepted)?;
        writeln!(f, "rows rejected  {}", r.rows_rejected())?;
        for (reason, (n, examples)) in &r.rejected {
            let lines: Vec<String> = examples
                .iter()
                .take(5)
                .map(|(l, d)| format!("line {l}: {d}"))
                .collect();
            writeln!(
                f,
                "  {:<20} {n:>7}   e.g. {}",
                reason.as_str(),
                lines.join("; ")
            )?;
        }
        let delimiter = r
            .delimiter
            .map(|d| format!(", delimiter {d:?}"))
            .unwrap_or_default();
        writeln!(f, "encoding       {}{delimiter}", r.encoding)?;
        if r.fields_recoded > 0 {
            writeln!(
                f,
                "  {} fields were not UTF-8 and were read as Windows-1252",
                r.fields_recoded
            )?;
        }
        for (h, head) in self.set.heads.iter().enumerate() {
            let counts = self.set.label_counts(h);
            writeln!(f, "\nhead `{head}`: {} labels", counts.len())?;
            let total = self.set.records.len().max(1) as f64;
            for (label, n) in counts {
                writeln!(
                    f,
                    "  {label:<40} {n:>7}  {:>5.1} %",
                    100.0 * n as f64 / total
                )?;
            }
        }
        if !self.channels.is_empty() {
            writeln!(f, "\nchannels")?;
            for (c, n) in &self.channels {
                writeln!(f, "  {c:<40} {n:>7}")?;
            }
        }
        writeln!(f, "\nduplicates")?;
        writeln!(
            f,
            "  exact groups   {} ({} repeated rows)",
            self.duplicates.exact.len(),
            self.duplicates.exact_extra()
        )?;
        let scope = if self.duplicates.near_searched < self.set.records.len() {
            format!(
                ", searched among the first {} rows",
                self.duplicates.near_searched
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "  near pairs     {} (shingle Jaccard ≥ {}{scope})",
            self.duplicates.near.len(),
            crate::dedupe::NEAR_JACCARD
        )?;
        for group in self.duplicates.exact.iter().take(5) {
            let lines: Vec<String> = group
                .iter()
                .map(|&i| self.set.records[i].line.to_string())
                .collect();
            writeln!(f, "    exact at lines {}", lines.join(", "))?;
        }
        if let Some((from, to)) = self.date_range {
            writeln!(f, "\ndate range     {from} .. {to}")?;
        }
        writeln!(
            f,
            "\ntext length (words): min {}  p50 {}  p90 {}  max {}",
            self.words.first().copied().unwrap_or(0),
            self.percentile(0.5),
            self.percentile(0.9),
            self.words.last().copied().unwrap_or(0)
        )?;
        if !self.taxonomy_problems.is_empty() {
            writeln!(f, "\ntaxonomy problems")?;
            for p in &self.taxonomy_problems {
                writeln!(f, "  {p}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnMapping, read_labeled_from};

    #[test]
    fn report_names_unknown_labels_and_counts() {
        let csv = "texto,tipo,area,tema\nno me pagaron,reclamo,subsidio,cuota_monetaria_pago\nno me pagaron!,reclamo,subsidio,citas_medicas\nhola,saludo,subsidio,cuota_monetaria_pago\n";
        let m = ColumnMapping {
            text: vec!["texto".into()],
            labels: vec![
                ("type".into(), "tipo".into()),
                ("area".into(), "area".into()),
                ("theme".into(), "tema".into()),
            ],
            ..Default::default()
        };
        let set = read_labeled_from(csv.as_bytes(), &m).expect("csv");
        let taxonomy = crate::corpus::taxonomy().expect("taxonomy");
        let report = inspect(&set, Some(&taxonomy));
        assert_eq!(
            report.taxonomy_problems(),
            [
                "theme `citas_medicas` is not in area `subsidio`: 1 rows (first at line 3)",
                "unknown type `saludo`: 1 rows (first at line 4)",
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains("exact groups   1 (1 repeated rows)"),
            "{text}"
        );
        assert!(text.contains("rows read      3"), "{text}");
    }
}
