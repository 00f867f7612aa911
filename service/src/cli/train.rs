//! `pqrs train`: reads labeled history through the column mapping, fits every head, prints a summary table and
//! writes one model artifact. Optional autotune, k-fold cross-validation and a linfa baseline.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use training::{ClassWeight, TrainConfig};

use super::data::SourceArgs;

/// Arguments of `pqrs train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dates: DateFilter,
    /// Where to write the model.
    #[arg(long, default_value = "model.pqrs")]
    out: PathBuf,
    /// Seed of the validation split and the SGD order (same seed, same data → same model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Maximum epochs (early stopping usually ends sooner).
    #[arg(long)]
    epochs: Option<usize>,
    /// Initial learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// L2 regularisation per comment.
    #[arg(long)]
    l2: Option<f32>,
    /// Hash table of 2^BITS buckets.
    #[arg(long, value_name = "BITS")]
    table_bits: Option<u8>,
    /// Character n-grams from this length (0 disables them).
    #[arg(long)]
    char_min: Option<u8>,
    /// Character n-grams up to this length.
    #[arg(long)]
    char_max: Option<u8>,
    /// Leave out word bigrams.
    #[arg(long)]
    no_bigrams: bool,
    /// Fold ñ into n.
    #[arg(long)]
    fold_enye: bool,
    /// Class weighting: none, balanced or sqrt.
    #[arg(long, value_parser = parse_class_weight)]
    class_weight: Option<ClassWeight>,
    /// Share of the data held out for early stopping, calibration and thresholds.
    #[arg(long)]
    validation: Option<f64>,
    /// Precision the review thresholds aim at.
    #[arg(long)]
    target_precision: Option<f32>,
    /// Keep the weights of the validation run instead of retraining them on every comment.
    #[arg(long)]
    no_refit: bool,
    /// How one head's SGD uses the cores: sequential (deterministic, the default; heads run in parallel),
    /// hogwild (lock-free, not deterministic) or minibatch:SIZE (synchronous, deterministic).
    #[arg(long, value_name = "SCHEDULE")]
    sgd: Option<training::SgdSchedule>,
    /// Store weights as f16 (half the file; predictions differ by < 1e-3).
    #[arg(long)]
    f16: bool,
    /// Search the configuration for this long (e.g. 60s, 5m) on the validation split, maximising macro-F1.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    autotune: Option<Duration>,
    /// With --autotune: largest model file allowed, in MB.
    #[arg(long, value_name = "MB")]
    max_size: Option<f64>,
    /// Also report K-fold cross-validation of the configuration.
    #[arg(long, value_name = "K")]
    cv: Option<usize>,
    /// Also train and report the linfa baseline (logistic regression on the most frequent features).
    #[arg(long)]
    baseline: bool,
    /// Also train the deep tier (the encoder's top layers fine-tuned with fused heads, and a cascade policy) and
    /// write it next to the model as MODEL.deep. Needs the encoder (`pqrs encoder fetch`).
    #[arg(long)]
    deep: bool,
    /// With --deep: mean latency per comment the cascade may spend, in milliseconds.
    #[arg(long, default_value_t = 3.0, value_name = "MS")]
    deep_target_ms: f64,
    /// With --deep: the encoder's cost per comment the budget assumes, in milliseconds, or `measure` to time it
    /// now. Default: the cost stored by the last measurement for this encoder, precision and thread count
    /// (measured and stored on first use), so that retraining gives the same policy.
    #[arg(long, value_name = "MS|measure")]
    deep_encoder_ms: Option<super::deep::EncoderCost>,
    /// With --deep: fine-tune the encoder's top N layers on the labelled data (0: keep the converted encoder and
    /// stack fused heads on its embeddings). About 26 ms per comment and epoch on two cores.
    #[arg(long, default_value_t = 2, value_name = "N")]
    deep_tune_layers: usize,
    /// With --deep-tune-layers above 0: passes over the training comments.
    #[arg(long, default_value_t = 3, value_name = "N")]
    deep_tune_epochs: usize,
    /// With --deep-tune-layers above 0: once the held-out comments have chosen the cascade policy, tune the
    /// layers again on every comment and ship those (twice the time; it did not gain on the buzón history).
    #[arg(long)]
    deep_refit: bool,
    /// With --deep-tune-layers above 0: weigh each comment's loss by (commonest label's count / its label's
    /// count) to this power, for macro-F1 (0: unweighted).
    #[arg(long, default_value_t = 0.0, value_name = "POWER")]
    deep_class_weight: f64,
    /// With --deep-tune-layers above 0: also weigh each comment's loss on a head by (1 − the fast model's
    /// out-of-fold confidence there) to this power, to train the deep tier on the comments the cascade sends it
    /// (0: unweighted; above 0 costs four more fast fits).
    #[arg(long, default_value_t = 0.0, value_name = "POWER")]
    deep_doubt_weight: f64,
    #[command(flatten)]
    encoder: super::deep::EncoderChoice,
    /// Taxonomy to record in the model (default: the shipped one when the heads are type/theme/area).
    #[arg(long, env = "PQRS_TAXONOMY")]
    taxonomy: Option<PathBuf>,
}

/// Keeps only comments in a date range; needs `--date COL`.
#[derive(Debug, Args)]
pub struct DateFilter {
    /// Keep comments dated before this day (YYYY-MM-DD), e.g. the training side of a temporal split.
    #[arg(long, value_name = "DATE")]
    pub before: Option<chrono::NaiveDate>,
    /// Keep comments dated on or after this day (YYYY-MM-DD), e.g. the test side of a temporal split.
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
}

impl DateFilter {
    /// Applies the filter; comments without a date are dropped when a bound is given.
    pub fn apply(&self, set: datasets::LabeledSet) -> anyhow::Result<datasets::LabeledSet> {
        if self.before.is_none() && self.from.is_none() {
            return Ok(set);
        }
        if set.records.iter().all(|r| r.date.is_none()) {
            anyhow::bail!("--before/--from need a date column: give --date COL");
        }
        let keep: Vec<usize> = (0..set.records.len())
            .filter(|&i| {
                set.records[i].date.is_some_and(|d| {
                    self.before.is_none_or(|b| d < b) && self.from.is_none_or(|f| d >= f)
                })
            })
            .collect();
        let mut filtered = set.subset(&keep);
        filtered.report = set.report;
        Ok(filtered)
    }
}

fn parse_class_weight(s: &str) -> Result<ClassWeight, String> {
    match s {
        "none" => Ok(ClassWeight::None),
        "balanced" => Ok(ClassWeight::Balanced),
        "sqrt" => Ok(ClassWeight::Sqrt),
        _ => Err(format!("expected none, balanced or sqrt, got {s:?}")),
    }
}

/// Parses `90s`, `5m`, `1h` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {s:?}"))?;
    let seconds = match unit {
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use s, m or h)")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Reads a taxonomy file, or the shipped one when the heads are the default model's.
pub fn load_taxonomy(
    path: Option<&PathBuf>,
    heads: &[String],
) -> anyhow::Result<Option<models::Taxonomy>> {
    match path {
        Some(path) => Ok(Some(super::data::read_taxonomy(path)?)),
        None if heads
            .iter()
            .all(|h| matches!(h.as_str(), "type" | "theme" | "area")) =>
        {
            Ok(Some(datasets::corpus::taxonomy()?))
        }
        None => Ok(None),
    }
}

struct Bar(ProgressBar);

impl training::Progress for Bar {
    fn epoch(&self, head: &str, epoch: usize, validation_macro_f1: f64) {
        self.0.inc(1);
        self.0.set_message(format!(
            "{head}: epoch {epoch}, validation macro-F1 {validation_macro_f1:.3}"
        ));
    }
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        let mut c = TrainConfig {
            seed: self.seed,
            ..training::default_config()
        };
        if let Some(v) = self.epochs {
            c.epochs = v;
        }
        if let Some(v) = self.lr {
            c.learning_rate = v;
        }
        if let Some(v) = self.l2 {
            c.l2 = v;
        }
        if let Some(v) = self.sgd {
            c.sgd = v;
        }
        if let Some(v) = self.table_bits {
            c.features.table_bits = v;
        }
        if let Some(v) = self.char_min {
            c.features.char_min = v;
        }
        if let Some(v) = self.char_max {
            c.features.char_max = v;
        }
        if self.no_bigrams {
            c.features.word_bigrams = false;
        }
        if self.no_refit {
            c.refit = false;
        }
        if self.fold_enye {
            c.normalizer.keep_enye = false;
        }
        if let Some(v) = self.class_weight {
            c.class_weight = v;
        }
        if let Some(v) = self.validation {
            c.validation_fraction = v;
        }
        if let Some(v) = self.target_precision {
            c.target_precision = v;
        }
        c
    }
}

/// Runs `pqrs train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let set = if args.source.corpus {
        datasets::corpus::train().context("reading the shipped corpus")?
    } else {
        args.dates.apply(args.source.read()?)?
    };
    anyhow::ensure!(!set.heads.is_empty(), "give at least one --label HEAD=COL");
    let taxonomy = load_taxonomy(args.taxonomy.as_ref(), &set.heads)?;
    eprintln!(
        "read {} comments ({} rejected), heads: {}",
        set.records.len(),
        set.report.rows_rejected(),
        set.heads.join(", ")
    );
    let mut config = args.config();
    if let Some(budget) = args.autotune {
        let max_bytes = args.max_size.map(|mb| (mb * 1e6) as u64);
        let tuned = training::autotune::autotune(&set, &config, budget, max_bytes, |trial| {
            eprintln!("{trial}");
        })?;
        eprintln!("autotune kept: {}", tuned.summary);
        config = tuned.config;
    }
    if let Some(k) = args.cv {
        let cv = training::autotune::cross_validate(&set, &config, k)?;
        println!("{cv}");
    }

    let epochs_total = (config.epochs * set.heads.len() * if config.refit { 2 } else { 1 }) as u64;
    let bar = ProgressBar::new(epochs_total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} epochs {msg}")
            .expect("template is valid")
            .progress_chars("=> "),
    );
    let (mut model, report) = training::fit(&set, &config, taxonomy.as_ref(), &Bar(bar.clone()))?;
    bar.finish_and_clear();
    let precision = if args.f16 {
        models::Precision::F16
    } else {
        models::Precision::F32
    };
    let bytes = model.to_bytes(precision);
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;

    let refit = if config.refit {
        format!(
            ", then refitted on all {}",
            report.n_fit + report.n_validation
        )
    } else {
        String::new()
    };
    println!(
        "trained on {} comments ({} held out for validation{refit}) in {:.2} s; {} features kept",
        report.n_fit, report.n_validation, report.seconds, report.rows
    );
    for (child, parent) in &report.parents {
        println!(
            "constraint: every `{child}` label belongs to one `{parent}` label (decoded jointly)"
        );
    }
    println!(
        "\n{:<12} {:>7} {:>9} {:>9} {:>6} {:>6} {:>6}",
        "head", "labels", "accuracy", "macro-F1", "ECE", "epoch", "temp"
    );
    for (head, h) in report.heads.iter().zip(&model.linear.heads) {
        println!(
            "{:<12} {:>7} {:>9.4} {:>9.4} {:>6.3} {:>6} {:>6.2}",
            head.head,
            h.labels.len(),
            head.validation.accuracy,
            head.validation.macro_f1,
            head.validation.ece,
            head.best_epoch,
            head.temperature
        );
    }
    println!(
        "\n(validation split metrics) model {} written to {} ({:.1} MB)",
        model.info.id,
        args.out.display(),
        bytes.len() as f64 / 1e6
    );
    if args.baseline {
        let baseline = training::baseline::linfa_baseline(&set, &config)?;
        println!("\n{baseline}");
    }
    if args.deep {
        super::deep::train_deep(
            &set,
            &config,
            &model,
            &args.out,
            &args.encoder,
            args.deep_target_ms,
            args.deep_encoder_ms,
            (args.deep_tune_layers > 0).then(|| training::tune::TuneConfig {
                layers: args.deep_tune_layers,
                epochs: args.deep_tune_epochs,
                refit: args.deep_refit,
                class_weight_power: args.deep_class_weight,
                doubt_weight_power: args.deep_doubt_weight,
                seed: config.seed,
                ..training::tune::TuneConfig::default()
            }),
        )?;
    }
    Ok(())
}
