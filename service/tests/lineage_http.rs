//! `GET /v1/model` shows a retrained model's lineage as recorded in its artifact, and `null` for a first-generation
//! model. The models are trained here from a few hundred corpus comments.

mod common;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use models::{Lineage, Model, Precision};
use service::http::{AppState, Limits, app};
use tower::ServiceExt;

/// Serialises and reloads the model, as the service would read it from disk, and answers `GET /v1/model`.
async fn model_endpoint(mut model: Model) -> serde_json::Value {
    let model = Model::from_bytes(&model.to_bytes(Precision::F32)).expect("the artifact loads");
    let state = AppState::new(model, PathBuf::from("m.pqrs"), None, Limits::default()).unwrap();
    let request = Request::get("/v1/model").body(Body::empty()).unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn model_endpoint_shows_the_lineage_of_a_retrained_model() {
    let parent = common::small_model();
    let first = model_endpoint(parent.clone()).await;
    assert!(first["lineage"].is_null(), "{}", first["lineage"]);

    let mut child = parent;
    child.info.lineage = Some(Lineage {
        parent: first["id"].as_str().unwrap().to_string(),
        feedback: 42,
        promoted: true,
        forced: false,
        reason: "not worse".into(),
        comparison: serde_json::json!({"n": 100, "heads": [{"head": "type", "candidate_macro_f1": 0.9}]}),
    });
    let body = model_endpoint(child).await;
    let lineage = &body["lineage"];
    assert_eq!(lineage["parent"], first["id"]);
    assert_ne!(body["id"], first["id"]);
    assert_eq!(lineage["feedback"], 42);
    assert_eq!(lineage["promoted"], true);
    assert_eq!(lineage["forced"], false);
    assert_eq!(lineage["reason"], "not worse");
    assert_eq!(lineage["comparison"]["heads"][0]["candidate_macro_f1"], 0.9);
}
