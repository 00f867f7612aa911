//! The cascade through `POST /v1/classify`: a tiny random-weight encoder (built in the test, nothing downloaded)
//! behind fused heads written by hand, so that which tier answers, and with what, is known in advance.

mod common;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use models::encoder::MatmulPrecision;
use models::encoder::synthetic::tiny_encoder;
use models::fusion::{CascadePolicy, DeepHead, DeepHeads};
use models::{Model, Precision};
use service::http::cascade::DeepTier;
use service::http::{AppState, Limits, app};
use tower::ServiceExt;

/// The shared small model, read back from its artifact as the service would load it.
fn small_model() -> Model {
    let mut model = common::small_model();
    Model::from_bytes(&model.to_bytes(Precision::F32)).expect("the artifact loads")
}

/// Fused heads that always choose each head's last label, whatever the inputs, and a policy that sends every
/// comment deep (`min_confidence` 1.01) or none (0).
fn forced_deep_heads(model: &Model, min_confidence: f32) -> DeepHeads {
    let dim = 64;
    let inputs = model.linear.total_classes() + dim;
    DeepHeads {
        encoder_sha256: "test".into(),
        embedding_dim: dim,
        fast_model_id: model.info.id.clone(),
        fast_classes: model.linear.total_classes(),
        input_mean: vec![0.0; inputs],
        input_scale: vec![1.0; inputs],
        heads: model
            .linear
            .heads
            .iter()
            .map(|h| {
                let k = h.labels.len();
                let mut bias = vec![0.0; k];
                bias[k - 1] = 50.0;
                DeepHead {
                    name: h.name.clone(),
                    labels: h.labels.clone(),
                    weights: vec![0.0; k * inputs],
                    bias,
                }
            })
            .collect(),
        cascade: CascadePolicy {
            min_fast_confidence: vec![min_confidence; model.linear.heads.len()],
            validation_deep_share: 0.0,
            target_mean_ms: 3.0,
            encoder_ms: 1.0,
        },
        training: serde_json::Value::Null,
        tuned: Vec::new(),
    }
}

/// The service with the fast model alone.
fn fast_state(model: &Model) -> AppState {
    AppState::new(
        model.clone(),
        PathBuf::from("m.pqrs"),
        None,
        Limits::default(),
    )
    .unwrap()
}

/// The service with `deep` behind the cascade, on the tiny random encoder (one thread, a queue of two).
fn cascade_state(model: &Model, deep: DeepHeads) -> AppState {
    let state = fast_state(model);
    state.set_deep_tier(DeepTier::start(
        tiny_encoder(MatmulPrecision::F32),
        deep,
        1,
        2,
    ));
    state
}

async fn classify(state: AppState, text: &str) -> serde_json::Value {
    let request = Request::post("/v1/classify")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({ "text": text }).to_string()))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Short: the tiny encoder has 24 positions.
const TEXT: &str = "hola, la cuota";

#[tokio::test]
async fn an_unsure_comment_is_answered_by_the_deep_tier() {
    let model = small_model();
    let deep = forced_deep_heads(&model, 1.01);
    let last_type = model.linear.heads[0].labels.last().unwrap().clone();
    let state = cascade_state(&model, deep);
    let answer = classify(state, TEXT).await;
    assert_eq!(answer["tier"], "deep", "{answer}");
    assert_eq!(
        answer["heads"]["type"]["label"],
        last_type.as_str(),
        "{answer}"
    );
    let confidence = answer["heads"]["type"]["confidence"].as_f64().unwrap();
    assert!(confidence > 0.99, "{answer}");
}

#[tokio::test]
async fn a_sure_comment_stays_with_the_fast_model() {
    let model = small_model();
    let deep = forced_deep_heads(&model, 0.0);
    let expected = classify(fast_state(&model), TEXT).await;
    let state = cascade_state(&model, deep);
    let answer = classify(state, TEXT).await;
    assert_eq!(answer["tier"], "fast", "{answer}");
    assert_eq!(answer["heads"], expected["heads"]);
}

#[tokio::test]
async fn a_deep_tier_for_another_model_is_not_used() {
    let model = small_model();
    let mut deep = forced_deep_heads(&model, 1.01);
    deep.fast_model_id = "000000000000".into();
    let state = cascade_state(&model, deep);
    let answer = classify(state, TEXT).await;
    assert_eq!(answer["tier"], "fast", "{answer}");
}

#[tokio::test]
async fn only_the_head_the_fast_model_hesitated_on_takes_the_deep_answer() {
    let model = small_model();
    let mut deep = forced_deep_heads(&model, 0.0);
    // Only the first head (type) hesitates; the others are sure whatever the fast confidence.
    deep.cascade.min_fast_confidence[0] = 1.01;
    let last_type = model.linear.heads[0].labels.last().unwrap().clone();
    let expected = classify(fast_state(&model), TEXT).await;
    let answer = classify(cascade_state(&model, deep), TEXT).await;
    assert_eq!(answer["tier"], "deep", "{answer}");
    assert_eq!(
        answer["heads"]["type"]["label"],
        last_type.as_str(),
        "{answer}"
    );
    for head in model.linear.heads.iter().skip(1) {
        assert_eq!(
            answer["heads"][&head.name], expected["heads"][&head.name],
            "head {} should keep the fast answer",
            head.name
        );
    }
}

#[tokio::test]
async fn a_batch_is_answered_by_the_fast_model_even_when_it_hesitates() {
    let model = small_model();
    let deep = forced_deep_heads(&model, 1.01);
    let expected = classify(fast_state(&model), TEXT).await;
    let state = cascade_state(&model, deep);
    let request = Request::post("/v1/classify/batch")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({ "items": [{ "text": TEXT }, { "text": TEXT }] }).to_string(),
        ))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{answer}");
    for item in results {
        assert_eq!(item["result"]["tier"], "fast", "{answer}");
        assert_eq!(item["result"]["heads"], expected["heads"], "{answer}");
    }
}
