//! `pqrs data` (being written; see the issue that owns it).

/// Arguments of `pqrs data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {}

/// Runs `pqrs data`.
pub fn run(_args: DataArgs) -> anyhow::Result<()> {
    anyhow::bail!("pqrs data is not available in this build yet")
}
