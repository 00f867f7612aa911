//! Labeled history for pqrs-router: readers (CSV, JSONL, XLSX, legacy encodings), validation with line numbers,
//! label normalisation, duplicates, splits, the shipped taxonomy file and the project's own corpus.
#![deny(missing_docs)]

pub mod augment;
pub mod corpus;
pub mod dedupe;
pub mod inspect;
mod read;
pub mod scale;
pub mod split;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use read::{for_each_record, read_labeled, read_labeled_from};

/// Errors that stop a whole read (bad rows never do: they are counted and skipped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV could not be parsed at all (not a single row problem).
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The workbook could not be opened or has no such sheet.
    #[error("xlsx: {0}")]
    Xlsx(String),
    /// A mapped column does not exist in the header.
    #[error("column `{column}` not found; the file has: {available}")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns the file has, comma separated.
        available: String,
    },
    /// The mapping itself is unusable (no text column, a head given twice, ...).
    #[error("invalid column mapping: {0}")]
    Mapping(String),
    /// The file has no header row.
    #[error("file has no header row")]
    NoHeader,
    /// The extension is not one of the supported formats.
    #[error("unsupported file type `{0}` (use .csv, .tsv, .txt, .jsonl, .ndjson or .xlsx)")]
    UnsupportedFormat(String),
    /// The shipped taxonomy is invalid.
    #[error(transparent)]
    Taxonomy(#[from] models::TaxonomyError),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Which columns hold the text, the labels and the optional metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    /// One or more text columns; several are joined with a newline (e.g. description + request).
    pub text: Vec<String>,
    /// `(head, column)`: each label column mapped to a head name chosen by the user.
    pub labels: Vec<(String, String)>,
    /// Optional id column.
    pub id: Option<String>,
    /// Optional date column (YYYY-MM-DD, DD/MM/YYYY, YYYY/MM/DD or a date-time).
    pub date: Option<String>,
    /// Optional channel column.
    pub channel: Option<String>,
    /// XLSX only: the sheet to read (default: the first).
    pub sheet: Option<String>,
}

impl ColumnMapping {
    /// Checks that the mapping can be used: at least one text column and distinct head names.
    pub fn validate(&self) -> Result<()> {
        if self.text.is_empty() {
            return Err(Error::Mapping("at least one text column is needed".into()));
        }
        let mut heads: Vec<&str> = self.labels.iter().map(|(h, _)| h.as_str()).collect();
        heads.sort_unstable();
        if let Some(w) = heads.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Mapping(format!("head `{}` is mapped twice", w[0])));
        }
        if let Some((h, _)) = self
            .labels
            .iter()
            .find(|(h, c)| h.trim().is_empty() || c.trim().is_empty())
        {
            return Err(Error::Mapping(format!(
                "empty head or column in label mapping `{h}`"
            )));
        }
        Ok(())
    }
}

/// One accepted row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Line (CSV, JSONL) or row (XLSX) number in the source file, 1-based, where the row starts.
    pub line: u64,
    /// Value of the id column, if mapped.
    pub id: Option<String>,
    /// The text columns joined with a newline, trimmed.
    pub text: String,
    /// One normalised label per head, in mapping order.
    pub labels: Vec<String>,
    /// Parsed date, if a date column is mapped.
    pub date: Option<chrono::NaiveDate>,
    /// Value of the channel column, if mapped.
    pub channel: Option<String>,
}

/// Why a row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// All text columns are empty.
    EmptyText,
    /// A label column is empty.
    MissingLabel,
    /// The date column does not parse.
    BadDate,
    /// The row has a different number of fields than the header.
    WrongColumnCount,
    /// A JSONL line is not a JSON object.
    BadJson,
    /// The CSV parser could not read the row.
    Unparsable,
}

impl RejectReason {
    /// Short stable name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyText => "empty text",
            Self::MissingLabel => "missing label",
            Self::BadDate => "unparsable date",
            Self::WrongColumnCount => "wrong column count",
            Self::BadJson => "invalid json",
            Self::Unparsable => "unparsable row",
        }
    }
}

/// How many examples of each rejection reason a report keeps.
pub const EXAMPLES_PER_REASON: usize = 20;

/// What happened while reading: rows read, accepted and rejected by reason, with example lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// Data rows seen (header excluded).
    pub rows_read: u64,
    /// Rows accepted.
    pub rows_accepted: u64,
    /// Rejected rows per reason, each with up to [`EXAMPLES_PER_REASON`] `(line, detail)` examples.
    pub rejected: BTreeMap<RejectReason, (u64, Vec<(u64, String)>)>,
    /// The encoding the file was decoded with (`utf-8` or `windows-1252`).
    pub encoding: &'static str,
    /// Fields that were not valid UTF-8 in a UTF-8 file and were decoded as Windows-1252.
    pub fields_recoded: u64,
    /// The CSV delimiter used, when the file is a CSV.
    pub delimiter: Option<char>,
}

impl ReadReport {
    /// Total rejected rows.
    pub fn rows_rejected(&self) -> u64 {
        self.rejected.values().map(|(n, _)| n).sum()
    }

    pub(crate) fn reject(&mut self, reason: RejectReason, line: u64, detail: impl Into<String>) {
        let entry = self.rejected.entry(reason).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES_PER_REASON {
            entry.1.push((line, detail.into()));
        }
    }
}

/// Records read from a file, with the head names in mapping order and the read report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabeledSet {
    /// Head names, in the order of `Record::labels`.
    pub heads: Vec<String>,
    /// Accepted records in file order.
    pub records: Vec<Record>,
    /// What the read found.
    pub report: ReadReport,
}

impl LabeledSet {
    /// Index of a head by name.
    pub fn head_index(&self, head: &str) -> Option<usize> {
        self.heads.iter().position(|h| h == head)
    }

    /// Label counts of one head, most frequent first (ties by label).
    pub fn label_counts(&self, head: usize) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.records {
            *counts.entry(r.labels[head].as_str()).or_default() += 1;
        }
        let mut counts: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(l, n)| (l.to_string(), n))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// A new set with the records at these indices, in that order (same heads, empty report).
    pub fn subset(&self, indices: &[usize]) -> LabeledSet {
        LabeledSet {
            heads: self.heads.clone(),
            records: indices
                .iter()
                .filter_map(|&i| self.records.get(i).cloned())
                .collect(),
            report: ReadReport::default(),
        }
    }
}

/// Parses a `--label` flag: `HEAD=COL` (the head named HEAD reads column COL) or `COL` (head and column share
/// the name). Shared by the CLI and the benchmark binaries so that they read a file the same way.
pub fn parse_label_spec(spec: &str) -> Result<(String, String)> {
    match spec.split_once('=') {
        Some((head, col)) if !head.trim().is_empty() && !col.trim().is_empty() => {
            Ok((head.trim().to_string(), col.trim().to_string()))
        }
        None if !spec.trim().is_empty() => Ok((spec.trim().to_string(), spec.trim().to_string())),
        _ => Err(Error::Mapping(format!(
            "--label must be HEAD=COL, got {spec:?}"
        ))),
    }
}

/// Normalises a label so that spelling variants meet: lower case, accents folded, inner white space collapsed,
/// trimmed (`"Felicitación "` and `"felicitacion"` are the same label).
pub fn normalize_label(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars().flat_map(char::to_lowercase) {
            out.push(fold_accent(c));
        }
    }
    out
}

/// Folds the accented letters of Spanish (and common Latin-1 ones) to their base letter; `ñ` becomes `n`.
pub fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'ä' | 'â' | 'ã' => 'a',
        'é' | 'è' | 'ë' | 'ê' => 'e',
        'í' | 'ì' | 'ï' | 'î' => 'i',
        'ó' | 'ò' | 'ö' | 'ô' | 'õ' => 'o',
        'ú' | 'ù' | 'ü' | 'û' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: &str) {
        assert_eq!(normalize_label(raw), expected, "normalize_label({raw:?})");
    }

    #[test]
    fn labels_meet_across_spellings() {
        check("Felicitación ", "felicitacion");
        check("felicitacion", "felicitacion");
        check("  Solicitud   de Información", "solicitud de informacion");
        check("RECLAMO", "reclamo");
        check("Petición", "peticion");
        check("Pequeño", "pequeno");
        check("", "");
    }

    #[test]
    fn mapping_is_validated() {
        let mut m = ColumnMapping {
            text: vec![],
            ..Default::default()
        };
        assert!(m.validate().is_err());
        m.text.push("texto".into());
        m.labels = vec![("type".into(), "a".into()), ("type".into(), "b".into())];
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("`type` is mapped twice")
        );
    }
}
