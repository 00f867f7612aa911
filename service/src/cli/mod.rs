//! One module per subcommand; each turns its checked arguments into calls on the library crates.

pub mod audit;
pub mod data;
pub mod data_scale;
pub mod deep;
pub mod encoder;
pub mod eval;
pub mod feedback;
pub mod retrain;
pub mod route;
pub mod serve;
pub mod train;

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so that a crash or a concurrent
/// reader never sees half a file.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
}
