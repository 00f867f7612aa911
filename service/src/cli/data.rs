//! `pqrs data inspect`: reads labeled history through `datasets` and prints what an analyst must know before
//! training on it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// Arguments of `pqrs data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Print rows read and rejected (by reason), label counts per head, duplicates, date range and text lengths.
    Inspect(InspectArgs),
    /// Write N recombined, noised corpus comments to a CSV, for benchmarks only (never for accuracy claims).
    Scale(super::data_scale::ScaleArgs),
}

/// Where the labeled history is and how its columns map to text and heads.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Labeled history: .csv/.tsv/.txt (any delimiter, UTF-8 or Windows-1252), .jsonl or .xlsx.
    #[arg(long, env = "PQRS_DATA", required_unless_present = "corpus")]
    pub data: Option<PathBuf>,
    /// Text column; repeat to join several columns with a newline.
    #[arg(long = "text", value_name = "COL")]
    pub text: Vec<String>,
    /// A label column mapped to a head name: `HEAD=COL` (or just `COL` for a head of the same name); repeatable.
    #[arg(long = "label", value_name = "HEAD=COL")]
    pub labels: Vec<String>,
    /// Optional id column.
    #[arg(long)]
    pub id: Option<String>,
    /// Optional date column (YYYY-MM-DD, DD/MM/YYYY or date-times).
    #[arg(long)]
    pub date: Option<String>,
    /// Optional channel column.
    #[arg(long)]
    pub channel: Option<String>,
    /// XLSX sheet to read (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Use the shipped corpus instead of `--data`.
    #[arg(long, conflicts_with = "data")]
    pub corpus: bool,
}

impl SourceArgs {
    /// The column mapping the flags describe.
    pub fn mapping(&self) -> anyhow::Result<datasets::ColumnMapping> {
        if self.text.is_empty() {
            bail!("give at least one --text COL");
        }
        let labels = self
            .labels
            .iter()
            .map(|spec| datasets::parse_label_spec(spec))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(datasets::ColumnMapping {
            text: self.text.clone(),
            labels,
            id: self.id.clone(),
            date: self.date.clone(),
            channel: self.channel.clone(),
            sheet: self.sheet.clone(),
        })
    }

    /// Reads the labeled set the flags name.
    pub fn read(&self) -> anyhow::Result<datasets::LabeledSet> {
        if self.corpus {
            return datasets::corpus::all().context("reading the shipped corpus");
        }
        let path = self.data.as_ref().context("give --data FILE or --corpus")?;
        datasets::read_labeled(path, &self.mapping()?)
            .with_context(|| format!("reading {}", path.display()))
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Taxonomy to validate `type`, `area` and `theme` heads against (default: the shipped one).
    #[arg(long, env = "PQRS_TAXONOMY")]
    taxonomy: Option<PathBuf>,
}

/// Reads and validates a taxonomy file.
pub fn read_taxonomy(path: &std::path::Path) -> anyhow::Result<models::Taxonomy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    models::Taxonomy::from_toml_str(&text).with_context(|| format!("taxonomy {}", path.display()))
}

/// Runs `pqrs data`.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Inspect(args) => inspect(args),
        DataCommand::Scale(args) => super::data_scale::run(args),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let set = args.source.read()?;
    let taxonomy = match &args.taxonomy {
        Some(path) => read_taxonomy(path)?,
        None => datasets::corpus::taxonomy()?,
    };
    let uses_taxonomy = args.taxonomy.is_some()
        || set
            .heads
            .iter()
            .any(|h| matches!(h.as_str(), "type" | "area" | "theme"));
    let report = datasets::inspect::inspect(&set, uses_taxonomy.then_some(&taxonomy));
    print!("{report}");
    println!(
        "\n(read and inspected in {:.2} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
