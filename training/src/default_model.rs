//! The default model: trained from the project's own corpus (train split) with a fixed configuration, so that
//! `pqrs serve` works on a fresh machine with nothing but this repository.

use models::Model;

use crate::Result;
use crate::fit::{ClassWeight, Silent, TrainConfig, TrainReport, fit};

/// The configuration of the default model (chosen on the corpus validation split, see ARCHITECTURE.md).
pub fn default_config() -> TrainConfig {
    TrainConfig {
        seed: 20261128,
        class_weight: ClassWeight::Balanced,
        ..TrainConfig::default()
    }
}

/// Trains the default model on the corpus train split, with the shipped taxonomy recorded in the artifact.
pub fn train_default() -> Result<(Model, TrainReport)> {
    let taxonomy = datasets::corpus::taxonomy()?;
    let train = datasets::corpus::train()?;
    fit(&train, &default_config(), Some(&taxonomy), &Silent)
}
