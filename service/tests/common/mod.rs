//! Pieces shared by the service's integration tests.

use models::Model;

/// A model trained in a second from 300 comments spread over the shipped corpus: real heads, labels and
/// taxonomy, nothing read from outside the repository.
pub fn small_model() -> Model {
    let train = datasets::corpus::train().expect("the shipped corpus reads");
    let stride = train.records.len() / 300;
    let set = train.subset(&(0..300).map(|i| i * stride).collect::<Vec<_>>());
    let config = training::TrainConfig {
        epochs: 5,
        ..training::TrainConfig::default()
    };
    training::fit(&set, &config, None, &training::Silent)
        .expect("the sample trains")
        .0
}
