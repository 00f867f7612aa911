//! The `pqrs` binary: one command line for inspecting data, training, evaluating, routing and serving.

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
    /// Classify one text with the default model and print its route (due dates, escalation) as JSON.
    Route(cli::route::RouteArgs),
    /// Serve the HTTP API.
    Serve(cli::serve::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Data(args) => cli::data::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Route(args) => cli::route::run(args),
        Command::Serve(args) => cli::serve::run(args),
    }
}
