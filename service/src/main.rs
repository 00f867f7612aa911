//! The `pqrs` binary: one command line for inspecting data, training, evaluating, routing, serving and exporting
//! reviewers' corrections.

mod cli;

use clap::{Parser, Subcommand};

// A request of `pqrs serve` makes a few dozen small allocations, freed on whichever runtime thread ends it;
// glibc's allocator spent about 37k instructions a request on them (callgrind), mimalloc's thread-local free
// lists far fewer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// pqrs-router: classify and route PQRS comments of a Colombian caja de compensación familiar.
#[derive(Debug, Parser)]
#[command(name = "pqrs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and validate labeled history.
    Data(cli::data::DataArgs),
    /// Train a model from labeled history.
    Train(cli::train::TrainArgs),
    /// Evaluate a model on labeled data and write a report.
    Eval(cli::eval::EvalArgs),
    /// List a model's misclassifications with explanations and similar training comments; export them for relabeling.
    Audit(cli::audit::AuditArgs),
    /// Train a candidate on history plus corrections, compare it with the serving model, write it if not worse.
    Retrain(cli::retrain::RetrainArgs),
    /// Classify one text with the default model and print its route (due dates, escalation) as JSON.
    Route(cli::route::RouteArgs),
    /// Serve the HTTP API.
    Serve(cli::serve::ServeArgs),
    /// Work with the reviewers' corrections stored by the service (export them as labeled history).
    Feedback(cli::feedback::FeedbackArgs),
    /// Fetch, convert and try the deep tier's sentence encoder.
    Encoder(cli::encoder::EncoderArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Data(args) => cli::data::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Audit(args) => cli::audit::run(args),
        Command::Retrain(args) => cli::retrain::run(args),
        Command::Route(args) => cli::route::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Feedback(args) => cli::feedback::run(args),
        Command::Encoder(args) => cli::encoder::run(args),
    }
}
