//! Pure, synchronous model code for pqrs-router: taxonomy, normalisation, featurisation, the fast classifier,
//! routing and artifact (de)serialisation from bytes. No file system, no async, no HTTP.
#![deny(missing_docs)]

pub mod prediction;
pub mod routing;
pub mod taxonomy;

pub use prediction::{Evidence, HeadPrediction, Prediction, Scored};
pub use taxonomy::{Taxonomy, TaxonomyError};
