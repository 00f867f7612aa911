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

/// Where `pqrs encoder fetch` puts the converted encoder by default: `encoder/` in the cache directory.
pub fn encoder_dir() -> PathBuf {
    cache_dir().join("encoder")
}

/// The files of a converted encoder directory, read once, the weights checked against the manifest.
pub struct EncoderFiles {
    /// GGUF weights.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `config.json`.
    pub manifest: models::encoder::EncoderManifest,
}

impl EncoderFiles {
    /// Reads the converted encoder of `dir` (written by `pqrs encoder fetch`), after checking that its weights
    /// are the ones its `config.json` names by SHA-256.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        use models::encoder::{EncoderManifest, files, sha256_hex};
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (run `pqrs encoder fetch` to create it)",
                    path.display()
                )
            })
        };
        let manifest: EncoderManifest = serde_json::from_slice(&read(files::MANIFEST)?)
            .with_context(|| format!("parsing {}", dir.join(files::MANIFEST).display()))?;
        let weights = read(files::WEIGHTS)?;
        let found = sha256_hex(&weights);
        anyhow::ensure!(
            found == manifest.weights_sha256,
            "{} has SHA-256 {found}, but {} expects {}: run `pqrs encoder fetch` again",
            dir.join(files::WEIGHTS).display(),
            files::MANIFEST,
            manifest.weights_sha256
        );
        let tokenizer = read(files::TOKENIZER)?;
        Ok(Self {
            weights,
            tokenizer,
            manifest,
        })
    }

    /// The encoder, with `tuned` (a deep tier's fine-tuned layers; may be empty) in place of the tensors of the
    /// same names.
    pub fn encoder(
        &self,
        precision: models::encoder::MatmulPrecision,
        tuned: &[models::encoder::TunedTensor],
    ) -> anyhow::Result<models::encoder::Encoder> {
        Ok(models::encoder::Encoder::from_bytes_tuned(
            &self.weights,
            &self.tokenizer,
            precision,
            tuned,
        )?)
    }
}

/// Loads the converted encoder of `dir` ([`EncoderFiles::read`]), with `tuned` (a deep tier's fine-tuned layers;
/// may be empty) in place of the tensors of the same names.
pub fn load_encoder(
    dir: &Path,
    precision: models::encoder::MatmulPrecision,
    tuned: &[models::encoder::TunedTensor],
) -> anyhow::Result<(models::encoder::Encoder, models::encoder::EncoderManifest)> {
    let files = EncoderFiles::read(dir)?;
    let encoder = files
        .encoder(precision, tuned)
        .with_context(|| format!("loading the encoder in {}", dir.display()))?;
    Ok((encoder, files.manifest))
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

    fn manifest(weights_sha256: &str) -> models::encoder::EncoderManifest {
        models::encoder::EncoderManifest {
            model: "test".into(),
            source: "test".into(),
            weights_sha256: weights_sha256.into(),
            query_prefix: models::encoder::QUERY_PREFIX.into(),
            config: models::encoder::BertConfig {
                hidden: 32,
                layers: 1,
                heads: 1,
                intermediate: 32,
                vocab_rows: 8,
                max_positions: 8,
                type_vocab: 1,
                layer_norm_eps: 1e-12,
            },
        }
    }

    #[test]
    fn encoder_with_other_weights_than_its_manifest_is_refused() {
        use models::encoder::{MatmulPrecision, files, sha256_hex};
        let dir = tempfile::tempdir().unwrap();
        let missing = load_encoder(dir.path(), MatmulPrecision::Q4, &[])
            .err()
            .unwrap();
        assert!(format!("{missing:#}").contains("pqrs encoder fetch"));

        std::fs::write(dir.path().join(files::WEIGHTS), b"some weights").unwrap();
        std::fs::write(dir.path().join(files::TOKENIZER), b"{}").unwrap();
        let other = serde_json::to_vec(&manifest(&sha256_hex(b"other weights"))).unwrap();
        std::fs::write(dir.path().join(files::MANIFEST), other).unwrap();
        let err = load_encoder(dir.path(), MatmulPrecision::Q4, &[])
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("SHA-256"), "{err:#}");

        // With the right hash the weights themselves are checked, and these are not GGUF.
        let same = serde_json::to_vec(&manifest(&sha256_hex(b"some weights"))).unwrap();
        std::fs::write(dir.path().join(files::MANIFEST), same).unwrap();
        let err = load_encoder(dir.path(), MatmulPrecision::Q4, &[])
            .err()
            .unwrap();
        assert!(!format!("{err:#}").contains("SHA-256"), "{err:#}");
    }

    /// The real encoder, when `PQRS_ENCODER_DIR` names a directory written by `pqrs encoder fetch`:
    /// `PQRS_ENCODER_DIR=~/.cache/pqrs/encoder cargo test -p service -- --ignored real_encoder`.
    #[test]
    #[ignore = "needs `pqrs encoder fetch` and PQRS_ENCODER_DIR"]
    fn real_encoder_ranks_a_paraphrase_above_an_unrelated_comment() {
        use models::encoder::MatmulPrecision;
        let dir = PathBuf::from(std::env::var_os("PQRS_ENCODER_DIR").expect("PQRS_ENCODER_DIR"));
        for precision in [MatmulPrecision::Q4, MatmulPrecision::F32] {
            let (encoder, manifest) = load_encoder(&dir, precision, &[]).unwrap();
            assert_eq!(encoder.dim(), manifest.config.hidden);
            let e = encoder
                .embed(&[
                    "llevo tres meses sin recibir la cuota monetaria de mi hijo",
                    "no me han pagado el subsidio familiar desde hace varios meses",
                    "el parque del centro recreacional estaba muy limpio, felicitaciones",
                ])
                .unwrap();
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            for row in &e {
                assert!((dot(row, row) - 1.0).abs() < 1e-4);
            }
            assert!(
                dot(&e[0], &e[1]) > dot(&e[0], &e[2]),
                "{precision:?}: paraphrase {} vs unrelated {}",
                dot(&e[0], &e[1]),
                dot(&e[0], &e[2])
            );
        }
    }
}
