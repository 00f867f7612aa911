//! `pqrs train` (being written; see the issue that owns it).

/// Arguments of `pqrs train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {}

/// Runs `pqrs train`.
pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("pqrs train is not available in this build yet")
}
