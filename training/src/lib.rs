//! Fitting, evaluation, autotune, baselines and reports for pqrs models, as a library used by the `pqrs` CLI.
//!
//! Data enters as [`datasets::LabeledSet`] (any heads), models leave as [`models::Model`]. Nothing here knows
//! HTTP; files are written only by [`report`] and [`audit::write`].
#![deny(missing_docs)]

pub mod audit;
pub mod autotune;
pub mod baseline;
pub mod compare;
pub mod deep;
pub mod default_model;
pub mod evaluate;
pub mod fit;
pub mod lowrank;
pub mod metrics;
pub mod report;
pub mod sgd;
pub mod tune;

pub use default_model::{default_config, train_default};
pub use evaluate::{Evaluation, evaluate};
pub use fit::{ClassWeight, Progress, Silent, TrainConfig, TrainReport, fit};
pub use sgd::SgdSchedule;

/// Errors of training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or data shape that cannot be trained or evaluated; the message says what to change.
    #[error("{0}")]
    Config(String),
    /// Reading labeled data failed.
    #[error(transparent)]
    Data(#[from] datasets::Error),
    /// Writing a report failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
