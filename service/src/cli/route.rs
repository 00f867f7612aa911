//! `pqrs route`: classifies one text with the default model (or `--model`) and prints the classification and
//! the route (escalation, priority, reasons, delegate queue, due dates) as JSON, in the API's wire shapes.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use clap::Args;
use models::routing::{CompiledRules, PetitionKind, RouteInput, route};
use models::{PredictOptions, Scratch};
use serde_json::json;
use service::http::wire::{Heads, RouteAnswer};

/// Arguments of `pqrs route`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The comment to classify and route.
    #[arg(long)]
    text: String,
    /// When it was received, RFC 3339 (e.g. 2026-12-24T17:30:00-05:00); default: now in Colombia (-05:00).
    #[arg(long, value_parser = parse_received_at)]
    received_at: Option<DateTime<FixedOffset>>,
    /// Client type from the intake (afiliado, empresa, aportante, ...).
    #[arg(long)]
    client_type: Option<String>,
    /// What a petición asks for: general, information or consulta.
    #[arg(long, default_value = "general", value_parser = parse_petition_kind)]
    petition_kind: PetitionKind,
    /// The matter is outside the caja's competence and must be forwarded.
    #[arg(long)]
    outside_competence: bool,
    /// Model to use (default: the default model, trained from the corpus on first use and cached).
    #[arg(long, env = "PQRS_MODEL")]
    model: Option<PathBuf>,
    /// Labels in each head's top-k.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
}

fn parse_received_at(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s).map_err(|e| format!("not an RFC 3339 date-time ({e}): {s:?}"))
}

fn parse_petition_kind(s: &str) -> Result<PetitionKind, String> {
    match s {
        "general" => Ok(PetitionKind::General),
        "information" | "informacion" => Ok(PetitionKind::Information),
        "consulta" => Ok(PetitionKind::Consulta),
        _ => Err(format!(
            "expected general, information or consulta, got {s:?}"
        )),
    }
}

/// Runs `pqrs route`.
pub fn run(args: RouteArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.text.trim().is_empty(), "--text is empty");
    let (model, _) = service::model_source::resolve(args.model.as_deref())?;
    let taxonomy = model.info.taxonomy.as_ref().context(
        "this model was trained without a taxonomy, so it cannot route; train it with --taxonomy",
    )?;
    let rules = CompiledRules::from_taxonomy(taxonomy)
        .context("escalation rules of the model's taxonomy")?;
    let prediction = model.linear.predict(
        &args.text,
        PredictOptions {
            top_k: args.top_k,
            explain: 5,
        },
        &mut Scratch::default(),
    );
    let mut input = RouteInput::new(
        &args.text,
        args.received_at
            .unwrap_or_else(service::http::classify::now),
        &prediction,
    );
    input.client_type = args.client_type.as_deref();
    input.petition_kind = args.petition_kind;
    input.outside_competence = args.outside_competence;
    let routed = RouteAnswer::from(route(taxonomy, &rules, &input));
    // The same wire types as `POST /v1/classify`, so the CLI and the API print the same shapes.
    let out = json!({
        "classification": Heads::from(prediction),
        "route": routed,
        "model": {"id": model.info.id, "created_at": model.info.created_at},
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
