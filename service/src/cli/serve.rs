//! `pqrs serve` (being written; see the issue that owns it).

/// Arguments of `pqrs serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `pqrs serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("pqrs serve is not available in this build yet")
}
