//! `pqrs feedback export`: the reviewers' corrections in the QA store turned into labeled history (CSV or JSONL)
//! that `pqrs train`, `pqrs eval` and `pqrs data inspect` read like any other file.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use service::store::{FeedbackRow, export_feedback};

/// File format of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated, with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Arguments of `pqrs feedback`.
#[derive(Debug, clap::Args)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    command: FeedbackCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FeedbackCommand {
    /// Write every corrected prediction as labeled history: columns id, received_at, channel, text (masked), then
    /// one column per head holding the latest correct label (empty when that head was not corrected).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The service's database (`pqrs serve --db`).
    #[arg(long, env = "PQRS_DB")]
    db: PathBuf,
    /// File to write.
    #[arg(long)]
    out: PathBuf,
    /// Format; default: jsonl when --out ends in .jsonl or .ndjson, else csv.
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// Runs `pqrs feedback`.
pub fn run(args: FeedbackArgs) -> anyhow::Result<()> {
    match args.command {
        FeedbackCommand::Export(args) => export(args),
    }
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let format = args.format.unwrap_or_else(|| {
        let extension = args.out.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["jsonl", "ndjson"]
            .iter()
            .any(|e| extension.eq_ignore_ascii_case(e))
        {
            Format::Jsonl
        } else {
            Format::Csv
        }
    });
    let rows = export_feedback(&args.db)
        .with_context(|| format!("reading corrections from {}", args.db.display()))?;
    let heads: Vec<String> = rows
        .iter()
        .flat_map(|row| row.labels.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    write(&args.out, format, &heads, &rows)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} corrected comments ({} heads: {}) written to {}",
        rows.len(),
        heads.len(),
        heads.join(", "),
        args.out.display()
    );
    Ok(())
}

fn write(out: &Path, format: Format, heads: &[String], rows: &[FeedbackRow]) -> anyhow::Result<()> {
    let file = std::fs::File::create(out)?;
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(BufWriter::new(file));
            let mut header = vec!["id", "received_at", "channel", "text"];
            header.extend(heads.iter().map(String::as_str));
            writer.write_record(&header)?;
            for row in rows {
                let mut record = vec![
                    row.id.as_str(),
                    row.received_at.as_str(),
                    row.channel.as_deref().unwrap_or(""),
                    row.text.as_str(),
                ];
                record.extend(
                    heads
                        .iter()
                        .map(|h| row.labels.get(h).map_or("", String::as_str)),
                );
                writer.write_record(&record)?;
            }
            writer.flush()?;
        }
        Format::Jsonl => {
            let mut writer = BufWriter::new(file);
            for row in rows {
                let mut object = serde_json::Map::new();
                object.insert("id".into(), row.id.clone().into());
                object.insert("received_at".into(), row.received_at.clone().into());
                object.insert("channel".into(), row.channel.clone().into());
                object.insert("text".into(), row.text.clone().into());
                for head in heads {
                    object.insert(head.clone(), row.labels.get(head).cloned().into());
                }
                serde_json::to_writer(&mut writer, &object)?;
                writer.write_all(b"\n")?;
            }
            writer.flush()?;
        }
    }
    Ok(())
}
