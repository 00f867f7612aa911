//! `pqrs route` (being written; see the issue that owns it).

/// Arguments of `pqrs route`.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {}

/// Runs `pqrs route`.
pub fn run(_args: RouteArgs) -> anyhow::Result<()> {
    anyhow::bail!("pqrs route is not available in this build yet")
}
