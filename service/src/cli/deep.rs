//! The deep tier on the command line: `pqrs train --deep` (fine-tuned encoder layers, fused heads and cascade
//! policy written next to the model as `MODEL.deep`) and the fast / deep / cascade comparison of `pqrs eval`, with
//! per-comment latencies.
//!
//! Embeddings are the slow part (tens of milliseconds a comment), so they are cached on disk by encoder and text:
//! training and evaluating the same history embed each comment once.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use models::Model;
use models::classifier::Scratch;
use models::encoder::{Encoder, GgufWeights, MatmulPrecision, TunedTensor, tuned_digest};
use models::fusion::{DeepHeads, DeepScratch};
use sha2::{Digest, Sha256};

/// Where the encoder is and how to run it.
#[derive(Debug, Clone, Args)]
pub struct EncoderChoice {
    /// Converted encoder directory (written by `pqrs encoder fetch`; default: the cache's `encoder/`).
    #[arg(long, env = "PQRS_ENCODER_DIR", value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// Encoder matmul precision: f32 (fastest on a portable x86-64 build), f16, or q4 (the shipped blocks; fast
    /// only in builds with AVX2 enabled).
    #[arg(long, default_value = "f32", value_name = "PRECISION")]
    pub encoder_precision: MatmulPrecision,
}

impl EncoderChoice {
    /// The converted encoder's directory.
    pub fn dir(&self) -> PathBuf {
        self.encoder
            .clone()
            .unwrap_or_else(service::model_source::encoder_dir)
    }

    /// Loads the encoder, with `tuned` in place of the tensors of the same names, and returns it with the SHA-256
    /// of its converted weights.
    pub fn load(&self, tuned: &[TunedTensor]) -> anyhow::Result<(Encoder, String)> {
        let (encoder, files) = self.load_keeping_files(tuned)?;
        Ok((encoder, files.manifest.weights_sha256))
    }

    /// [`EncoderChoice::load`], also returning the files it was loaded from (fine-tuning starts from its weights).
    pub fn load_keeping_files(
        &self,
        tuned: &[TunedTensor],
    ) -> anyhow::Result<(Encoder, service::model_source::EncoderFiles)> {
        let dir = self.dir();
        let started = Instant::now();
        let files = service::model_source::EncoderFiles::read(&dir)?;
        let encoder = files
            .encoder(self.encoder_precision, tuned)
            .with_context(|| format!("loading the encoder in {}", dir.display()))?;
        eprintln!(
            "encoder {} loaded from {} in {:.2} s ({:?})",
            &files.manifest.weights_sha256[..12],
            dir.display(),
            started.elapsed().as_secs_f64(),
            self.encoder_precision
        );
        Ok((encoder, files))
    }
}

/// The deep tier file that belongs to `model`: the same path with the extension `.deep`.
pub fn deep_path(model: &Path) -> PathBuf {
    model.with_extension("deep")
}

/// Embeds every text (cached under the cache directory by encoder and texts), with a progress bar.
pub fn embed_all(
    encoder: &Encoder,
    encoder_sha256: &str,
    texts: &[&str],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut hasher = Sha256::new();
    hasher.update(encoder_sha256.as_bytes());
    for t in texts {
        hasher.update((t.len() as u64).to_le_bytes());
        hasher.update(t.as_bytes());
    }
    let key: String = hasher.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = service::model_source::cache_dir()
        .join("embeddings")
        .join(format!("{key}.f32"));
    if let Ok(cached) = read_embeddings(&path, texts.len()) {
        eprintln!(
            "embeddings of {} comments read from {}",
            texts.len(),
            path.display()
        );
        return Ok(cached);
    }
    // Similar lengths in one batch waste little on padding; the order is restored afterwards.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} embedded ({eta} left)",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    let mut embeddings = vec![Vec::new(); texts.len()];
    for batch in order.chunks(16) {
        let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
        let vectors = encoder.embed(&batch_texts)?;
        for (&i, v) in batch.iter().zip(vectors) {
            embeddings[i] = v;
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if let Err(e) = write_embeddings(&path, &embeddings) {
        eprintln!("warning: embeddings not cached ({e:#})");
    }
    Ok(embeddings)
}

fn write_embeddings(path: &Path, embeddings: &[Vec<f32>]) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("cache file has a parent"))?;
    let dim = embeddings.first().map_or(0, Vec::len);
    let tmp = path.with_extension("tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    file.write_all(&(embeddings.len() as u64).to_le_bytes())?;
    file.write_all(&(dim as u64).to_le_bytes())?;
    for e in embeddings {
        for x in e {
            file.write_all(&x.to_le_bytes())?;
        }
    }
    file.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_embeddings(path: &Path, expected: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let word = |at: usize| -> anyhow::Result<u64> {
        Ok(u64::from_le_bytes(
            bytes.get(at..at + 8).context("short file")?.try_into()?,
        ))
    };
    let (n, dim) = (word(0)? as usize, word(8)? as usize);
    anyhow::ensure!(
        n == expected && bytes.len() == 16 + n * dim * 4,
        "cache file does not match"
    );
    Ok(bytes[16..]
        .chunks_exact(dim * 4)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        })
        .collect())
}

/// Where the encoder cost of the cascade budget comes from (`--deep-encoder-ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncoderCost {
    /// A fixed cost in milliseconds.
    Fixed(f64),
    /// Measure now and store the measurement for later runs.
    Measure,
}

impl std::str::FromStr for EncoderCost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "measure" {
            return Ok(Self::Measure);
        }
        match s.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms > 0.0 => Ok(Self::Fixed(ms)),
            _ => Err(format!(
                "`{s}` is neither a positive number of milliseconds nor `measure`"
            )),
        }
    }
}

/// A stored measurement of the encoder's cost per comment on this machine.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredCost {
    ms: f64,
    comments: usize,
    measured_at: String,
}

/// Comments timed by [`measure_encoder_ms`].
const COST_COMMENTS: usize = 100;

/// The encoder's cost per comment, one comment at a time as the cascade runs it: the mean over up to 100 of
/// `texts` (spread evenly, after 5 warm-up passes) of the faster of two timings of each comment. Taking the
/// faster of two drops the passes another process interrupted; the mean over comments keeps the cost of long
/// comments, which the mean-latency budget must pay.
pub fn measure_encoder_ms(encoder: &Encoder, texts: &[&str]) -> anyhow::Result<f64> {
    let sample: Vec<&str> = texts
        .iter()
        .step_by((texts.len() / COST_COMMENTS).max(1))
        .take(COST_COMMENTS)
        .copied()
        .collect();
    anyhow::ensure!(!sample.is_empty(), "no comments to time the encoder on");
    for t in sample.iter().cycle().take(5) {
        encoder.embed(&[t])?;
    }
    let mut total = 0.0;
    for t in &sample {
        let mut best = f64::INFINITY;
        for _ in 0..2 {
            let started = Instant::now();
            encoder.embed(&[t])?;
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        }
        total += best;
    }
    Ok(total / sample.len() as f64)
}

/// The encoder cost for the cascade budget, and where it came from: the flag's value; else the measurement stored
/// for this encoder, precision and thread count; else (or with `measure`) a new measurement, stored for the next
/// runs so that retraining gives the same policy whatever the machine's load.
fn encoder_cost(
    cost: Option<EncoderCost>,
    encoder: &Encoder,
    choice: &EncoderChoice,
    sha: &str,
    texts: &[&str],
) -> anyhow::Result<(f64, String)> {
    if let Some(EncoderCost::Fixed(ms)) = cost {
        return Ok((ms, "--deep-encoder-ms".into()));
    }
    let threads = rayon::current_num_threads();
    let path = service::model_source::cache_dir()
        .join("encoder-cost")
        .join(format!(
            "{}-{:?}-{threads}threads.json",
            &sha[..12.min(sha.len())],
            choice.encoder_precision
        ));
    if cost.is_none()
        && let Ok(bytes) = std::fs::read(&path)
        && let Ok(stored) = serde_json::from_slice::<StoredCost>(&bytes)
        && stored.ms.is_finite()
        && stored.ms > 0.0
    {
        return Ok((
            stored.ms,
            format!(
                "stored measurement of {} ({} comments, {}; `--deep-encoder-ms measure` measures again)",
                path.display(),
                stored.comments,
                stored.measured_at
            ),
        ));
    }
    let ms = measure_encoder_ms(encoder, texts)?;
    let stored = StoredCost {
        ms,
        comments: texts.len().min(COST_COMMENTS),
        measured_at: chrono::Utc::now().to_rfc3339(),
    };
    let written = std::fs::create_dir_all(path.parent().expect("cost file has a parent"))
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            super::write_atomically(
                &path,
                &serde_json::to_vec_pretty(&stored).expect("serialisable"),
            )
        });
    if let Err(e) = written {
        eprintln!("warning: encoder cost not stored ({e:#})");
    }
    Ok((
        ms,
        format!(
            "measured now over {} comments ({threads} threads), stored in {}",
            stored.comments,
            path.display()
        ),
    ))
}

/// `pqrs train --deep`: trains the deep tier for the model just trained and writes it next to the model. With
/// `tune`, the encoder's top layers are fine-tuned; without, fused heads are stacked on the converted encoder's
/// embeddings.
#[allow(clippy::too_many_arguments)]
pub fn train_deep(
    set: &datasets::LabeledSet,
    config: &training::TrainConfig,
    fast: &Model,
    model_path: &Path,
    choice: &EncoderChoice,
    target_mean_ms: f64,
    cost: Option<EncoderCost>,
    tune: Option<training::tune::TuneConfig>,
) -> anyhow::Result<()> {
    let (encoder, files) = choice.load_keeping_files(&[])?;
    let sha = files.manifest.weights_sha256.clone();
    let texts: Vec<&str> = set.records.iter().map(|r| r.text.as_str()).collect();
    let (encoder_ms, encoder_ms_source) = encoder_cost(cost, &encoder, choice, &sha, &texts)?;
    eprintln!("encoder cost for the budget: {encoder_ms:.1} ms per comment ({encoder_ms_source})");
    let deep_config = training::deep::DeepConfig {
        target_mean_ms,
        encoder_ms,
        encoder_ms_source,
        ..training::deep::DeepConfig::default()
    };
    let path = deep_path(model_path);
    let Some(tune) = tune else {
        let embeddings = embed_all(&encoder, &sha, &texts)?;
        let (deep, report) =
            training::deep::fit_deep(set, config, fast, &embeddings, &sha, &deep_config)?;
        super::write_atomically(&path, &deep.to_bytes())?;
        println!(
            "deep tier: fused heads on {} comments, cascade chosen on {} (out-of-fold; at most {:.1} % deep for {target_mean_ms} ms mean at {encoder_ms:.1} ms per deep comment; {:.1} % went deep), {:.1} s",
            report.n_stack,
            report.n_policy,
            100.0 * report.allowed_share,
            100.0 * report.validation.deep_share,
            report.seconds
        );
        print_tiers(&report.validation, None);
        println!(
            "the same policy on the {} held-out comments alone:",
            report.n_cascade
        );
        print_tiers(&report.holdout, None);
        println!("deep tier written to {}", path.display());
        return Ok(());
    };

    let frozen = encoder.config().layers.saturating_sub(tune.layers);
    let states = states_all(&encoder, &texts, frozen)?;
    eprintln!(
        "hidden states after layer {frozen} of {} comments computed",
        texts.len()
    );
    drop(encoder);
    let gguf = GgufWeights::from_bytes(&files.weights)?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}").expect("valid template"),
    );
    // Epochs past `tune.epochs` belong to the refit on every comment.
    let rounds = 1 + usize::from(tune.refit);
    let progress = |epoch: usize, step: usize, steps: usize, loss: f64| {
        let (round, epoch_in_round) = (epoch / tune.epochs, epoch % tune.epochs);
        let stage = if round == 0 {
            "tuning for the policy"
        } else {
            "refit on every comment"
        };
        bar.set_length((steps * tune.epochs * rounds) as u64);
        bar.set_position((epoch * steps + step) as u64);
        bar.set_message(format!(
            "{stage}: epoch {}/{}, step {step}/{steps}, loss {loss:.3}",
            epoch_in_round + 1,
            tune.epochs
        ));
        // The bar is hidden when stderr is not a terminal (a log file): each epoch's end is printed as well.
        if step == steps {
            // Read before `suspend`, which holds the bar's lock: calling `elapsed` inside it deadlocks.
            let seconds = bar.elapsed().as_secs_f64();
            bar.suspend(|| {
                eprintln!(
                    "fine-tuning ({stage}): epoch {}/{} done, mean loss {loss:.3} ({seconds:.0} s)",
                    epoch_in_round + 1,
                    tune.epochs,
                );
            });
        }
    };
    let (deep, report, tuned) = training::deep::fit_deep_tuned(
        set,
        config,
        fast,
        &gguf,
        &states,
        &sha,
        &deep_config,
        &tune,
        &progress,
    )?;
    bar.finish_and_clear();
    super::write_atomically(&path, &deep.to_bytes())?;
    let losses = |losses: &[f64]| {
        losses
            .iter()
            .map(|l| format!("{l:.3}"))
            .collect::<Vec<_>>()
            .join(" → ")
    };
    let refit = if tune.refit {
        format!(
            ", then again on all {} ({})",
            tuned.n_tuned_on,
            losses(&tuned.refit_epoch_losses)
        )
    } else {
        String::new()
    };
    println!(
        "deep tier: top {} encoder layers fine-tuned on {} comments ({} epochs, losses {}){refit}, fused heads {}; cascade chosen on {} held-out comments (at most {:.1} % deep for {target_mean_ms} ms mean at {encoder_ms:.1} ms per deep comment; {:.1} % went deep), {:.0} s",
        tune.layers,
        report.n_stack,
        tune.epochs,
        losses(&tuned.epoch_losses),
        if tuned.fast_weight > 0.0 {
            "times the fast model"
        } else {
            "alone"
        },
        report.n_policy,
        100.0 * report.allowed_share,
        100.0 * report.validation.deep_share,
        report.seconds
    );
    if tune.refit {
        println!("on the held-out comments, with the layers tuned without them:");
    }
    print_tiers(&report.validation, None);
    println!("deep tier written to {}", path.display());
    Ok(())
}

/// Hidden states after the first `layers` encoder layers of every text (`tokens × hidden` each), computed in
/// batches of similar length, with a progress bar. Not cached: they take about 1 GB for 10,000 comments.
fn states_all(encoder: &Encoder, texts: &[&str], layers: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let tokens = texts
        .iter()
        .map(|t| encoder.token_ids(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| tokens[i].len());
    let bar = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} encoded up to the tuned layers ({eta} left)",
        )
        .expect("valid template"),
    );
    let mut states = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(16) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| tokens[i].clone()).collect();
        for (&i, s) in chunk.iter().zip(encoder.states_through(&batch, layers)?) {
            states[i] = s;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(states)
}

/// Latencies of the cascade, one comment at a time as the service answers them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CascadeLatency {
    /// Comments timed.
    pub comments: usize,
    /// Mean fast-only latency, ms.
    pub fast_mean_ms: f64,
    /// Mean cascade latency, ms.
    pub cascade_mean_ms: f64,
    /// 50th percentile of the cascade, ms.
    pub cascade_p50_ms: f64,
    /// 99th percentile of the cascade, ms.
    pub cascade_p99_ms: f64,
    /// Mean latency of a comment sent deep (encoder and fused heads), ms.
    pub deep_mean_ms: f64,
    /// Share of the timed comments sent deep.
    pub deep_share: f64,
}

/// `pqrs eval` with a deep tier: the three tiers side by side on `test`, and the cascade's latency per comment.
pub fn eval_tiers(
    fast: &Model,
    deep_file: &Path,
    test: &datasets::LabeledSet,
    choice: &EncoderChoice,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(deep_file).with_context(|| format!("reading {}", deep_file.display()))?;
    let deep = DeepHeads::from_bytes(&bytes)
        .with_context(|| format!("loading the deep tier {}", deep_file.display()))?;
    anyhow::ensure!(
        deep.fast_model_id == fast.info.id,
        "{} was trained for model {}, not {}",
        deep_file.display(),
        deep.fast_model_id,
        fast.info.id
    );
    let (encoder, sha) = choice.load(&deep.tuned)?;
    anyhow::ensure!(
        sha == deep.encoder_sha256,
        "the deep tier needs encoder {}, the encoder given is {}",
        &deep.encoder_sha256[..12.min(deep.encoder_sha256.len())],
        &sha[..12]
    );
    let texts: Vec<&str> = test.records.iter().map(|r| r.text.as_str()).collect();
    // Fine-tuned layers make another encoder: their embeddings are cached apart from the base encoder's.
    let cache_key = if deep.tuned.is_empty() {
        sha.clone()
    } else {
        format!("{sha}-tuned-{}", tuned_digest(&deep.tuned))
    };
    let embeddings = embed_all(&encoder, &cache_key, &texts)?;
    let comparison = training::deep::compare_tiers(fast, &deep, test, &embeddings)?;
    let latency = cascade_latency(fast, &deep, &encoder, &texts)?;
    print_tiers(&comparison, Some(&latency));
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("tiers.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&serde_json::json!({
                "tiers": comparison,
                "latency": latency,
            }))?,
        )?;
        println!("tier comparison written to {}", path.display());
    }
    Ok(())
}

/// Runs the cascade one comment at a time over up to 1,000 of `texts`, timing each.
fn cascade_latency(
    fast: &Model,
    deep: &DeepHeads,
    encoder: &Encoder,
    texts: &[&str],
) -> anyhow::Result<CascadeLatency> {
    let sample: Vec<&str> = texts
        .iter()
        .step_by((texts.len() / 1000).max(1))
        .copied()
        .collect();
    let (mut scratch, mut deep_scratch) = (Scratch::default(), DeepScratch::default());
    let (mut chosen, mut deep_probabilities, mut answer_probabilities) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut fast_total = 0.0;
    let mut deep_times = Vec::new();
    let mut times = Vec::with_capacity(sample.len());
    for text in &sample {
        let started = Instant::now();
        fast.linear.score(text, &mut scratch);
        fast.linear.decode(&scratch.probabilities, &mut chosen);
        let fast_done = started.elapsed().as_secs_f64();
        fast_total += fast_done;
        if deep.wants_deep(&scratch.probabilities, &chosen) {
            let embedding = encoder.embed(&[text])?;
            deep.score(
                &scratch.probabilities,
                &embedding[0],
                &mut deep_scratch,
                &mut deep_probabilities,
            );
            deep.cascade_probabilities(
                &scratch.probabilities,
                &chosen,
                &deep_probabilities,
                &mut answer_probabilities,
            );
            fast.linear.decode(&answer_probabilities, &mut chosen);
            deep_times.push(started.elapsed().as_secs_f64() - fast_done);
        }
        times.push(started.elapsed().as_secs_f64());
    }
    let n = sample.len().max(1) as f64;
    times.sort_by(f64::total_cmp);
    let quantile =
        |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)] * 1000.0;
    Ok(CascadeLatency {
        comments: sample.len(),
        fast_mean_ms: fast_total * 1000.0 / n,
        cascade_mean_ms: times.iter().sum::<f64>() * 1000.0 / n,
        cascade_p50_ms: quantile(0.5),
        cascade_p99_ms: quantile(0.99),
        deep_mean_ms: deep_times.iter().sum::<f64>() * 1000.0 / deep_times.len().max(1) as f64,
        deep_share: deep_times.len() as f64 / n,
    })
}

fn print_tiers(comparison: &training::deep::TierComparison, latency: Option<&CascadeLatency>) {
    println!(
        "{:<12} {:>9} {:>9} {:>9}   {:>17}   macro-F1 on {} comments, {:.1} % sent deep by the cascade",
        "head",
        "fast",
        "deep",
        "cascade",
        "gain, 90 % CI",
        comparison.comments,
        100.0 * comparison.deep_share
    );
    for h in &comparison.heads {
        let [low, high] = h.cascade_gain_interval;
        println!(
            "{:<12} {:>9.4} {:>9.4} {:>9.4}   {:>+7.4} … {:>+7.4}",
            h.head, h.fast, h.deep, h.cascade, low, high
        );
    }
    // Which answers and labels a macro-F1 gain is made of (see `TierScores::labels`).
    for h in &comparison.heads {
        let moved: Vec<String> = h
            .labels
            .iter()
            .filter(|l| (l.cascade - l.fast).abs() >= 0.0005)
            .map(|l| {
                format!(
                    "{} {:+.3} ({} comments)",
                    l.label,
                    l.cascade - l.fast,
                    l.comments
                )
            })
            .collect();
        if h.fixed + h.broken == 0 && moved.is_empty() {
            continue;
        }
        println!(
            "{}: the cascade fixed {} answers and broke {}; F1 moved on {}",
            h.head,
            h.fixed,
            h.broken,
            if moved.is_empty() {
                "no label".to_string()
            } else {
                moved.join(", ")
            }
        );
    }
    if let Some(l) = latency {
        println!(
            "latency per comment ({} timed one at a time): fast {:.3} ms; cascade mean {:.2} ms, p50 {:.2} ms, p99 {:.1} ms; a deep answer adds {:.1} ms ({:.1} % went deep)",
            l.comments,
            l.fast_mean_ms,
            l.cascade_mean_ms,
            l.cascade_p50_ms,
            l.cascade_p99_ms,
            l.deep_mean_ms,
            100.0 * l.deep_share
        );
    }
}
