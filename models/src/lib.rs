//! Pure, synchronous model code for pqrs-router: taxonomy, normalisation, featurisation, the fast classifier,
//! routing and artifact (de)serialisation from bytes. No file system, no async, no HTTP.
#![deny(missing_docs)]

pub mod artifact;
pub mod classifier;
pub mod encoder;
pub mod features;
pub mod fusion;
pub mod normalize;
pub mod prediction;
pub mod prefetch;
pub mod routing;
pub mod taxonomy;

pub use artifact::{ArtifactError, Lineage, Model, ModelInfo, Precision};
pub use classifier::{LinearModel, PredictOptions, Scratch};
pub use features::{FeatureConfig, Featurizer};
pub use normalize::{Normalizer, NormalizerConfig};
pub use prediction::{Evidence, HeadPrediction, Prediction, Scored};
pub use taxonomy::{Taxonomy, TaxonomyError};
