//! Benchmark harnesses of pqrs-router: criterion micro-benchmarks (`benches/classifier.rs`), training time
//! (`bin/train_time.rs`), the HTTP load generator, and the side-by-side comparison with the peers (`peers/`,
//! driven by `run.sh`). Nothing here runs in CI's test command.

use std::path::PathBuf;

/// The flags every benchmark binary reads a labeled file with, as `pqrs train` does, plus a temporal split.
#[derive(Debug, clap::Args)]
pub struct LabeledFile {
    /// Labeled history (CSV, JSONL or XLSX).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Text column.
    #[arg(long, default_value = "text")]
    pub text: String,
    /// Label columns as HEAD=COL.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Date column, needed with --before / --split-date.
    #[arg(long)]
    pub date: Option<String>,
}

impl LabeledFile {
    /// Reads the file with the mapping the flags describe.
    pub fn read(&self) -> anyhow::Result<datasets::LabeledSet> {
        let Some(data) = &self.data else {
            anyhow::bail!("give --data FILE");
        };
        let mapping = datasets::ColumnMapping {
            text: vec![self.text.clone()],
            labels: self
                .labels
                .iter()
                .map(|spec| datasets::parse_label_spec(spec))
                .collect::<Result<_, _>>()?,
            date: self.date.clone(),
            ..Default::default()
        };
        Ok(datasets::read_labeled(data, &mapping)?)
    }
}

/// Splits `set` at `day`: comments dated before it, and the ones dated on or after it (undated ones are left out).
pub fn split_by_date(
    set: &datasets::LabeledSet,
    day: chrono::NaiveDate,
) -> (datasets::LabeledSet, datasets::LabeledSet) {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (i, record) in set.records.iter().enumerate() {
        match record.date {
            Some(d) if d < day => before.push(i),
            Some(_) => after.push(i),
            None => {}
        }
    }
    (set.subset(&before), set.subset(&after))
}

/// The model in `path` and the texts of every comment of the shipped corpus: what the in-process benchmarks feed
/// the model with.
pub fn model_and_corpus_texts(
    path: &std::path::Path,
) -> anyhow::Result<(models::Model, Vec<String>)> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = models::Model::from_bytes(&bytes)?;
    let texts = datasets::corpus::all()?
        .records
        .into_iter()
        .map(|r| r.text)
        .collect();
    Ok((model, texts))
}
