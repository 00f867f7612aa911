//! `pqrs eval` (being written; see the issue that owns it).

/// Arguments of `pqrs eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {}

/// Runs `pqrs eval`.
pub fn run(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("pqrs eval is not available in this build yet")
}
