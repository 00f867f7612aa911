//! Where the served model comes from: a file given by the user, or the default model trained from the shipped
//! corpus on first use and cached on disk, keyed by everything that shapes it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Reads and validates a model file.
pub fn load(path: &Path) -> anyhow::Result<models::Model> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    models::Model::from_bytes(&bytes).with_context(|| format!("loading model {}", path.display()))
}

/// The cache directory: `PQRS_CACHE_DIR`, else `$XDG_CACHE_HOME/pqrs`, else `~/.cache/pqrs`, else a `pqrs`
/// directory in the system temporary directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PQRS_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("pqrs");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("pqrs");
    }
    std::env::temp_dir().join("pqrs")
}

/// Identifies the default model: the corpus, the taxonomy, the training configuration, the feature hash and the
/// version of pqrs. Any change gives a new cache file, so a stale model is never served.
pub fn default_model_key() -> String {
    let mut hasher = Sha256::new();
    hasher.update(datasets::corpus::CORPUS_CSV.as_bytes());
    hasher.update(datasets::corpus::TAXONOMY_TOML.as_bytes());
    hasher.update(serde_json::to_vec(&training::default_config()).expect("config serialises"));
    hasher.update(models::features::HASH_ID.as_bytes());
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default model's path in `dir`.
pub fn default_model_path(dir: &Path) -> PathBuf {
    dir.join(format!("default-{}.pqrs", default_model_key()))
}

/// Loads the cached default model, or trains it from the corpus (seconds) and caches it. A corrupt cache file is
/// replaced. The file is written to a temporary name and renamed, so a crash never leaves half a model.
pub fn default_model(dir: &Path) -> anyhow::Result<(models::Model, PathBuf)> {
    let path = default_model_path(dir);
    if path.exists() {
        match load(&path) {
            Ok(model) => return Ok((model, path)),
            Err(e) => tracing::warn!("cached default model unusable, retraining: {e:#}"),
        }
    }
    tracing::info!("training the default model from the shipped corpus");
    let (mut model, report) = training::train_default().context("training the default model")?;
    tracing::info!(seconds = report.seconds, "default model trained");
    let bytes = model.to_bytes(models::Precision::F32);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, &bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("renaming to {}", path.display()))?;
    Ok((model, path))
}

/// The model the user named, or the default one.
pub fn resolve(model: Option<&Path>) -> anyhow::Result<(models::Model, PathBuf)> {
    match model {
        Some(path) => Ok((load(path)?, path.to_path_buf())),
        None => default_model(&cache_dir()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_trained_once_then_loaded_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (trained, path) = default_model(dir.path()).unwrap();
        assert!(path.exists());
        let (cached, again) = default_model(dir.path()).unwrap();
        assert_eq!(path, again);
        assert_eq!(cached.linear, trained.linear);
        // A damaged cache file is replaced rather than served.
        std::fs::write(&path, b"PQRSMODL garbage").unwrap();
        let (retrained, _) = default_model(dir.path()).unwrap();
        assert_eq!(retrained.linear.heads, trained.linear.heads);
        assert!(load(&path).is_ok());
    }
}
