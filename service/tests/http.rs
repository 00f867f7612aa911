//! HTTP tests of the `pqrs serve` application through `service::http::app(state).oneshot(request)`, without a
//! socket: every route, every error class, a data-driven table of malformed requests, reload, limits and masking.
//! The model is the default model trained once from the shipped corpus.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::DateTime;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use models::routing::{CompiledRules, RouteInput};
use models::{Model, Precision, PredictOptions, Scratch};
use serde_json::{Value, json};
use service::http::{ApiKey, AppState, ErrorCode, Limits, ROUTES, app};
use tokio::sync::mpsc;
use tower::ServiceExt;

const KEY: &str = "test-key-0123456789";

struct Fixture {
    model: Model,
    bytes: Vec<u8>,
}

/// The default model, trained once for all tests (a few seconds), with its id set by serialising it.
static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let (mut model, _) = training::train_default().expect("the default model trains");
    let bytes = model.to_bytes(Precision::F32);
    Fixture { model, bytes }
});

fn model() -> Model {
    FIXTURE.model.clone()
}

/// A model with the same heads and a different id (its creation time differs, so its checksum does).
fn other_model() -> (Model, Vec<u8>) {
    let mut model = model();
    model.info.created_at = "2030-01-01T00:00:00Z".into();
    let bytes = model.to_bytes(Precision::F32);
    assert_ne!(model.info.id, FIXTURE.model.info.id);
    (model, bytes)
}

fn state_with(key: Option<&str>, limits: Limits, path: PathBuf) -> AppState {
    AppState::new(model(), path, key.map(|k| ApiKey::new(k).unwrap()), limits).unwrap()
}

fn state() -> AppState {
    state_with(Some(KEY), Limits::default(), PathBuf::from("unused.pqrs"))
}

/// A state whose model file exists, for reloads without a path.
fn state_on_disk(dir: &Path) -> AppState {
    let path = dir.join("served.pqrs");
    std::fs::write(&path, &FIXTURE.bytes).unwrap();
    state_with(Some(KEY), Limits::default(), path)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

async fn send(router: Router, request: Request<Body>) -> Answer {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

fn request(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).unwrap()
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    request(Method::POST, uri, Some("application/json"), body)
}

fn get(uri: &str) -> Request<Body> {
    request(Method::GET, uri, None, Body::empty())
}

fn authorized(mut request: Request<Body>, key: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    request
}

async fn classify(router: Router, body: Value) -> Answer {
    send(router, post_json("/v1/classify", body.to_string())).await
}

/// Asserts an error answer: status, JSON content type, code and a non-empty message.
fn assert_error(answer: &Answer, status: u16, code: &str, case: &str) {
    assert_eq!(
        answer.status.as_u16(),
        status,
        "{case}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{case}"
    );
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{case}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{case}: empty message");
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "{case}: only `error` at the top"
    );
}

fn labels_of(head: &str) -> Vec<String> {
    FIXTURE
        .model
        .linear
        .heads
        .iter()
        .find(|h| h.name == head)
        .unwrap()
        .labels
        .clone()
}

fn check_head(answer: &Value, head: &str, top_k: usize) {
    let head_answer = &answer["heads"][head];
    let label = head_answer["label"].as_str().unwrap();
    assert!(
        labels_of(head).iter().any(|l| l == label),
        "{head}: unknown label {label}"
    );
    let confidence = head_answer["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let top = head_answer["top_k"].as_array().unwrap();
    assert_eq!(top.len(), top_k.min(labels_of(head).len()), "{head}");
    assert_eq!(top[0]["label"], label);
    let probabilities: Vec<f64> = top
        .iter()
        .map(|s| s["probability"].as_f64().unwrap())
        .collect();
    assert!(
        probabilities.windows(2).all(|w| w[0] >= w[1]),
        "{head}: top_k not sorted"
    );
    assert!((probabilities[0] - confidence).abs() < 1e-6);
    assert!(head_answer["needs_review"].is_boolean());
    let explanation = head_answer["explanation"].as_array().unwrap();
    assert!(explanation.len() <= 5);
    for evidence in explanation {
        assert!(!evidence["ngram"].as_str().unwrap().is_empty());
        assert!(evidence["weight"].as_f64().unwrap().is_finite());
    }
}

const QUEJA: &str =
    "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta";

#[tokio::test]
async fn classify_answers_every_head_with_route_model_and_times() {
    let state = state();
    let answer = classify(
        app(state),
        json!({"text": QUEJA, "id": "c-1", "channel": "web", "client_type": "afiliado"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.headers.contains_key("x-request-id"));
    let body = answer.json();
    assert_eq!(body["id"], "c-1");
    assert_eq!(body["channel"], "web");
    assert_eq!(body["model"], FIXTURE.model.info.id.as_str());
    let heads: Vec<&str> = body["heads"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(heads.len(), 3);
    for head in ["type", "theme", "area"] {
        check_head(&body, head, 3);
    }
    let server_time = DateTime::parse_from_rfc3339(body["server_time"].as_str().unwrap()).unwrap();
    assert_eq!(server_time.offset().local_minus_utc(), -5 * 3600);
    assert!(
        (chrono::Utc::now() - server_time.to_utc())
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(body["received_at"], body["server_time"]);
    let any_head_flagged = ["type", "theme", "area"]
        .iter()
        .any(|h| body["heads"][h]["needs_review"] == true);
    assert_eq!(body["needs_review"], any_head_flagged);
    let route = &body["route"];
    assert!(route["escalate"].is_boolean());
    assert!(["normal", "alta", "urgente"].contains(&route["priority"].as_str().unwrap()));
    let due = DateTime::parse_from_rfc3339(route["due_at"].as_str().unwrap()).unwrap();
    assert!(due > server_time);
}

#[tokio::test]
async fn without_id_or_channel_they_are_absent_and_top_k_is_honoured() {
    for top_k in [1, 5, 20] {
        let answer = classify(app(state()), json!({"text": QUEJA, "top_k": top_k})).await;
        assert_eq!(answer.status, StatusCode::OK);
        let body = answer.json();
        assert!(body.get("id").is_none() && body.get("channel").is_none());
        for head in ["type", "theme", "area"] {
            check_head(&body, head, top_k);
        }
    }
}

#[tokio::test]
async fn explanations_follow_the_configured_length() {
    for explain in [0, 2] {
        let limits = Limits {
            explain_ngrams: explain,
            ..Limits::default()
        };
        let state = state_with(None, limits, PathBuf::from("unused.pqrs"));
        let body = classify(app(state), json!({"text": QUEJA})).await.json();
        for head in ["type", "theme", "area"] {
            let explanation = body["heads"][head]["explanation"].as_array().unwrap();
            assert!(explanation.len() <= explain, "{head}: {explanation:?}");
            if explain > 0 {
                assert!(!explanation.is_empty(), "{head}");
            }
        }
    }
    let too_many = Limits {
        explain_ngrams: 21,
        ..Limits::default()
    };
    assert!(AppState::new(model(), PathBuf::from("x"), None, too_many).is_err());
}

/// The route in the answer is the one the routing library gives for the same text, time and prediction.
#[tokio::test]
async fn route_matches_the_routing_library() {
    let model = &FIXTURE.model;
    let taxonomy = model.info.taxonomy.as_ref().unwrap();
    let rules = CompiledRules::from_taxonomy(taxonomy).unwrap();
    let cases = [
        (QUEJA, None),
        (
            "Si no me responden pongo una tutela y voy a la Superintendencia",
            None,
        ),
        (
            "Es la tercera vez que llamo por el mismo subsidio y nadie responde",
            Some("afiliado"),
        ),
        (
            "Como empresa afiliada reclamamos por el cobro doble del aporte",
            Some("empresa"),
        ),
        (
            "Muchas gracias por la excelente atención en la piscina",
            None,
        ),
    ];
    for (text, client_type) in cases {
        let received_at = "2026-12-24T17:30:00-05:00";
        let answer = classify(
            app(state()),
            json!({"text": text, "received_at": received_at, "client_type": client_type}),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{text}");
        let body = answer.json();
        assert_eq!(body["received_at"], "2026-12-24T17:30:00.000-05:00");

        let prediction = model.linear.predict(
            text,
            PredictOptions {
                top_k: 3,
                explain: 5,
            },
            &mut Scratch::default(),
        );
        let at = DateTime::parse_from_rfc3339(received_at).unwrap();
        let mut input = RouteInput::new(text, at, &prediction);
        input.client_type = client_type;
        let expected = models::routing::route(taxonomy, &rules, &input);
        let route = &body["route"];
        assert_eq!(route["escalate"], expected.escalate, "{text}");
        assert_eq!(route["human_review"], expected.human_review, "{text}");
        assert_eq!(route["term"], expected.term.as_str(), "{text}");
        assert_eq!(route["area"].as_str(), expected.area.as_deref(), "{text}");
        assert_eq!(
            route["delegate_queue"].as_str(),
            expected.delegate_queue.as_deref(),
            "{text}"
        );
        let due = DateTime::parse_from_rfc3339(route["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due, expected.due_at, "{text}");
        let rules_fired: Vec<String> = route["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap().to_string())
            .collect();
        let expected_rules: Vec<String> = expected
            .reasons
            .iter()
            .map(|r| {
                serde_json::to_value(r.rule)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(rules_fired, expected_rules, "{text}");
        assert_eq!(
            route["priority"],
            serde_json::to_value(expected.priority).unwrap(),
            "{text}"
        );
        for (head, label) in body["heads"].as_object().unwrap() {
            assert_eq!(
                label["label"],
                prediction.head(head).unwrap().label.as_str()
            );
        }
    }
    // The legal threat is found by its cue whatever the model says.
    let answer = classify(app(state()), json!({"text": cases[1].0}))
        .await
        .json();
    assert!(
        answer["route"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "amenaza_legal")
    );
    assert_eq!(answer["route"]["escalate"], true);
}

#[tokio::test]
async fn a_model_without_taxonomy_answers_with_a_null_route() {
    let mut bare = model();
    bare.info.taxonomy = None;
    let state = AppState::new(bare, PathBuf::from("bare.pqrs"), None, Limits::default()).unwrap();
    let answer = classify(app(state.clone()), json!({"text": QUEJA})).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.json()["route"].is_null());
    let info = send(app(state), get("/v1/model")).await.json();
    assert_eq!(info["routing"], false);
    assert!(info["taxonomy"].is_null());
}

#[tokio::test]
async fn batch_answers_each_item_and_reports_bad_items_in_place() {
    let items = json!({"items": [
        {"text": QUEJA, "id": "a"},
        {"text": "", "id": "b"},
        {"text": 7},
        {"id": "d"},
        {"text": "hola", "colour": "red"},
        {"text": "Solicito el certificado de afiliación de mi núcleo familiar", "top_k": 2},
        {"text": "hola", "top_k": 0},
        "just a string",
        ["hola"],
    ]});
    let answer = send(
        app(state()),
        post_json("/v1/classify/batch", items.to_string()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["model"], FIXTURE.model.info.id.as_str());
    assert_eq!(body["succeeded"], 2);
    assert_eq!(body["failed"], 7);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["index"], index);
    }
    assert_eq!(results[0]["result"]["id"], "a");
    check_head(&results[0]["result"], "type", 3);
    check_head(&results[5]["result"], "area", 2);
    let codes: Vec<&str> = results[1..5]
        .iter()
        .chain(&results[6..])
        .map(|r| r["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "empty_text",
            "wrong_type",
            "missing_field",
            "unknown_field",
            "invalid_value",
            "wrong_type",
            "wrong_type"
        ]
    );
    assert!(results[1].get("result").is_none());
}

#[tokio::test]
async fn a_full_batch_is_scored_off_the_runtime_and_one_more_item_is_refused() {
    let max = Limits::default().max_batch_items;
    let items: Vec<Value> = (0..max)
        .map(|i| json!({"text": format!("{QUEJA} número {i}"), "id": i.to_string()}))
        .collect();
    let answer = send(
        app(state()),
        post_json("/v1/classify/batch", json!({"items": items}).to_string()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["succeeded"], max);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[max - 1]["result"]["id"], (max - 1).to_string());

    let mut too_many = items;
    too_many.push(json!({"text": "una más"}));
    let answer = send(
        app(state()),
        post_json("/v1/classify/batch", json!({"items": too_many}).to_string()),
    )
    .await;
    assert_error(&answer, 422, "batch_too_large", "1001 items");
}

fn ndjson_lines(answer: &Answer) -> Vec<Value> {
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/x-ndjson");
    answer
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn stream_answers_each_line_in_order_with_errors_in_place() {
    let limits = Limits {
        max_line_bytes: 200,
        ..Limits::default()
    };
    let state = state_with(None, limits, PathBuf::from("unused.pqrs"));
    let long = "x".repeat(300);
    let mut input = String::new();
    input.push_str(&json!({"text": QUEJA, "id": "s0"}).to_string());
    input.push('\n');
    input.push_str("\n   \n"); // blank lines 1 and 2: counted, not answered
    input.push_str("{\"text\": \"sin cerrar\"\n");
    input.push_str(&format!("{{\"text\": \"{long}\"}}\n"));
    input.push_str("{\"text\": \"\"}\r\n");
    input.push_str(
        &json!({"text": "Quiero felicitar a la profesora de natación", "id": "s6"}).to_string(),
    );
    // The last line has no newline.
    let answer = send(
        app(state),
        request(
            Method::POST,
            "/v1/classify/stream",
            Some("application/x-ndjson"),
            input,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let lines = ndjson_lines(&answer);
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [0, 3, 4, 5, 6]);
    assert_eq!(lines[0]["result"]["id"], "s0");
    check_head(&lines[0]["result"], "theme", 3);
    assert_eq!(lines[1]["error"]["code"], "invalid_json");
    assert_eq!(lines[2]["error"]["code"], "payload_too_large");
    assert_eq!(lines[3]["error"]["code"], "empty_text");
    assert_eq!(lines[4]["result"]["id"], "s6");
}

#[tokio::test]
async fn stream_of_invalid_utf8_and_wrong_shapes_never_fails_the_stream() {
    let mut input: Vec<u8> = b"{\"text\": \"caf\xe9 fr\xedo\"}\n[1,2]\nnull\n".to_vec();
    input.extend_from_slice(json!({"text": QUEJA}).to_string().as_bytes());
    let answer = send(
        app(state()),
        request(Method::POST, "/v1/classify/stream", None, input),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let lines = ndjson_lines(&answer);
    let outcome: Vec<&str> = lines
        .iter()
        .map(|l| l["error"]["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(outcome, ["invalid_utf8", "wrong_type", "wrong_type", "ok"]);
}

fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), receiver))
    });
    (sender, Body::from_stream(stream))
}

fn line(value: Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

/// The stream answers a line before the input ends, keeps one model for its whole length even when a reload
/// happens in the middle, and the reload serves new requests at once.
#[tokio::test]
async fn stream_answers_as_lines_arrive_and_keeps_its_model_across_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on_disk(dir.path());
    let (sender, body) = channel_body();
    let response = app(state.clone())
        .oneshot(request(Method::POST, "/v1/classify/stream", None, body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut output = response.into_body();

    sender
        .send(line(json!({"text": QUEJA, "id": "first"})))
        .await
        .unwrap();
    let first = output.frame().await.unwrap().unwrap().into_data().unwrap();
    let first: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(first["result"]["id"], "first");
    let old_id = FIXTURE.model.info.id.clone();
    assert_eq!(first["result"]["model"], old_id.as_str());

    let (_, other_bytes) = other_model();
    let other_path = dir.path().join("other.pqrs");
    std::fs::write(&other_path, &other_bytes).unwrap();
    let reloaded = send(
        app(state.clone()),
        authorized(
            post_json("/v1/admin/reload", json!({"path": other_path}).to_string()),
            KEY,
        ),
    )
    .await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    let new_id = reloaded.json()["model"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    let fresh = classify(app(state.clone()), json!({"text": QUEJA}))
        .await
        .json();
    assert_eq!(fresh["model"], new_id.as_str());

    sender
        .send(line(json!({"text": QUEJA, "id": "second"})))
        .await
        .unwrap();
    drop(sender);
    let rest = output.collect().await.unwrap().to_bytes();
    let second: Value = serde_json::from_slice(rest.strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(second["index"], 1);
    assert_eq!(
        second["result"]["model"],
        old_id.as_str(),
        "the stream keeps its model"
    );
}

#[tokio::test]
async fn model_endpoint_lists_heads_labels_and_training_metrics() {
    let body = send(app(state()), get("/v1/model")).await.json();
    assert_eq!(body["id"], FIXTURE.model.info.id.as_str());
    assert_eq!(
        body["pqrs_version"],
        FIXTURE.model.info.pqrs_version.as_str()
    );
    let heads = body["heads"].as_array().unwrap();
    let names: Vec<&str> = heads.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["type", "theme", "area"]);
    for head in heads {
        let labels: Vec<String> = serde_json::from_value(head["labels"].clone()).unwrap();
        assert_eq!(labels, labels_of(head["name"].as_str().unwrap()));
        let metrics = &body["metrics"][head["name"].as_str().unwrap()];
        let accuracy = metrics["accuracy"].as_f64().unwrap();
        assert!(accuracy > 0.2 && accuracy <= 1.0, "{metrics}");
        assert!(metrics["macro_f1"].is_number());
    }
    assert_eq!(body["routing"], true);
    assert!(body["taxonomy"]["id"].is_string());
    assert!(body["training"]["n_comments"].as_u64().unwrap() > 1000);
}

#[tokio::test]
async fn health_and_readiness_and_draining() {
    let state = state();
    let health = send(app(state.clone()), get("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = send(app(state.clone()), get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["model"], FIXTURE.model.info.id.as_str());

    state.begin_drain();
    let ready = send(app(state.clone()), get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "shutting_down");
    let refused = classify(app(state.clone()), json!({"text": QUEJA})).await;
    assert_error(&refused, 503, "shutting_down", "classify while draining");
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    assert_eq!(
        send(app(state), get("/healthz")).await.status,
        StatusCode::OK
    );
}

fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_latency_predictions_review_and_model() {
    let state = state();
    let before = send(app(state.clone()), get("/metrics")).await.text();
    let answer = classify(app(state.clone()), json!({"text": QUEJA}))
        .await
        .json();
    let type_label = answer["heads"]["type"]["label"]
        .as_str()
        .unwrap()
        .to_string();
    classify(app(state.clone()), json!({"text": ""})).await;
    let metrics = send(app(state.clone()), get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();

    let ok = [
        ("route", "/v1/classify"),
        ("method", "POST"),
        ("status", "200"),
    ];
    let count = |text: &str, name: &str, labels: &[(&str, &str)]| {
        metric_value(text, name, labels).unwrap_or(0.0)
    };
    // Tests run in parallel and share the process-wide recorder, so counts only grow.
    assert!(
        count(&text, "pqrs_http_requests_total", &ok)
            >= count(&before, "pqrs_http_requests_total", &ok) + 1.0
    );
    let unprocessable = [("route", "/v1/classify"), ("status", "422")];
    assert!(count(&text, "pqrs_http_requests_total", &unprocessable) >= 1.0);
    assert!(
        text.contains("pqrs_http_request_duration_seconds_bucket{")
            && text.contains("le=\"0.001\""),
        "latency is a histogram with sub-millisecond buckets"
    );
    let predicted = [("head", "type"), ("label", type_label.as_str())];
    assert!(
        count(&text, "pqrs_predictions_total", &predicted)
            >= count(&before, "pqrs_predictions_total", &predicted) + 1.0
    );
    assert!(
        metric_value(&text, "pqrs_needs_review_ratio", &[]).is_some()
            || text.contains("pqrs_needs_review_ratio ")
    );
    assert!(text.contains("pqrs_classifications_total"));
    assert_eq!(
        metric_value(
            &text,
            "pqrs_model_info",
            &[("id", FIXTURE.model.info.id.as_str())]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn openapi_documents_every_route_error_code_and_examples() {
    let answer = send(app(state()), get("/openapi.json")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    assert_eq!(document["openapi"], "3.1.0");
    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
        // The success answer: 200, or 201 for what creates a record.
        let ok = &operation["responses"][if method == "POST" && path == "/v1/feedback" {
            "201"
        } else {
            "200"
        }];
        assert!(!ok["content"].as_object().unwrap().is_empty(), "{path}");
        for (_, media) in ok["content"].as_object().unwrap() {
            assert!(media["examples"].is_object(), "{path}: no example");
        }
        if let Some(body) = operation.get("requestBody") {
            for (_, media) in body["content"].as_object().unwrap() {
                assert!(media["examples"].is_object(), "{path}: no request example");
            }
        }
    }
    let text = answer.text();
    let declared: Vec<&str> = document["components"]["schemas"]["ErrorBody"]["properties"]["code"]
        ["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in ErrorCode::ALL {
        assert!(
            declared.contains(&code.as_str()),
            "{code:?} missing from the enum"
        );
        assert!(
            text.contains(&format!("\"code\": \"{}\"", code.as_str())),
            "{code:?} has no example response"
        );
    }
    // Every $ref points at a schema or header that exists.
    for reference in text.split("\"$ref\": \"#/components/").skip(1) {
        let target = &reference[..reference.find('"').unwrap()];
        let (kind, name) = target.split_once('/').unwrap();
        assert!(
            document["components"][kind][name].is_object(),
            "dangling $ref {target}"
        );
    }
}

#[tokio::test]
async fn admin_needs_a_configured_key_and_the_right_bearer() {
    let disabled = state_with(None, Limits::default(), PathBuf::from("unused.pqrs"));
    let answer = send(
        app(disabled),
        authorized(post_json("/v1/admin/reload", "{}"), KEY),
    )
    .await;
    assert_error(&answer, 403, "admin_disabled", "no key configured");

    let missing = send(app(state()), post_json("/v1/admin/reload", "{}")).await;
    assert_error(&missing, 401, "unauthorized", "no bearer");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = send(
        app(state()),
        authorized(post_json("/v1/admin/reload", "{}"), "not-the-key"),
    )
    .await;
    assert_error(&wrong, 401, "unauthorized", "wrong key");
    let prefix = send(
        app(state()),
        authorized(post_json("/v1/admin/reload", "{}"), &KEY[..10]),
    )
    .await;
    assert_error(&prefix, 401, "unauthorized", "prefix of the key");

    let dir = tempfile::tempdir().unwrap();
    let state = state_on_disk(dir.path());
    let mut lower = request(Method::POST, "/v1/admin/reload", None, Body::empty());
    lower.headers_mut().insert(
        header::AUTHORIZATION,
        format!("bearer {KEY}").parse().unwrap(),
    );
    let answer = send(app(state), lower).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        body["previous"], body["model"],
        "reloading the same file keeps the id"
    );
}

#[tokio::test]
async fn reload_swaps_the_model_and_refuses_bad_files_while_the_old_model_serves() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on_disk(dir.path());
    let old_id = FIXTURE.model.info.id.clone();
    let reload = |body: Value| authorized(post_json("/v1/admin/reload", body.to_string()), KEY);

    let corrupt = dir.path().join("corrupt.pqrs");
    std::fs::write(&corrupt, b"PQRSMODL this is not a model").unwrap();
    let truncated = dir.path().join("truncated.pqrs");
    std::fs::write(&truncated, &FIXTURE.bytes[..FIXTURE.bytes.len() / 2]).unwrap();
    let mut renamed = model();
    renamed.linear.heads[1].name = "tema".into();
    let incompatible = dir.path().join("incompatible.pqrs");
    std::fs::write(&incompatible, renamed.to_bytes(Precision::F32)).unwrap();
    let mut bare = model();
    bare.info.taxonomy = None;
    let no_taxonomy = dir.path().join("no-taxonomy.pqrs");
    std::fs::write(&no_taxonomy, bare.to_bytes(Precision::F32)).unwrap();
    let missing = dir.path().join("missing.pqrs");

    for (path, why) in [
        (&corrupt, "corrupt"),
        (&truncated, "truncated"),
        (&incompatible, "heads"),
        (&no_taxonomy, "route"),
        (&missing, "missing"),
    ] {
        let answer = send(app(state.clone()), reload(json!({"path": path}))).await;
        assert_error(&answer, 422, "model_rejected", why);
        assert!(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&old_id),
            "{why}"
        );
        let served = classify(app(state.clone()), json!({"text": QUEJA})).await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(
            served.json()["model"],
            old_id.as_str(),
            "{why}: the old model keeps serving"
        );
    }

    let (_, bytes) = other_model();
    let next = dir.path().join("next.pqrs");
    std::fs::write(&next, &bytes).unwrap();
    let held = state.model();
    let answer = send(app(state.clone()), reload(json!({"path": next}))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["previous"], old_id.as_str());
    assert_eq!(body["path"], next.display().to_string());
    assert_eq!(
        held.id(),
        old_id,
        "a request holding the old model keeps it"
    );
    let served = classify(app(state.clone()), json!({"text": QUEJA}))
        .await
        .json();
    assert_eq!(served["model"], body["model"]);
    assert_eq!(
        send(app(state.clone()), get("/v1/model")).await.json()["id"],
        body["model"]
    );
    // An empty reload reads the file now served again.
    let again = send(app(state), reload(json!({}))).await.json();
    assert_eq!(again["path"], next.display().to_string());
}

#[tokio::test]
async fn concurrency_limit_answers_503_with_retry_after_at_once() {
    let limits = Limits {
        max_concurrency: 1,
        ..Limits::default()
    };
    let state = state_with(None, limits, PathBuf::from("unused.pqrs"));
    let (sender, body) = channel_body();
    let mut first = Box::pin(app(state.clone()).oneshot(post_json("/v1/classify", body)));
    // Polled once, the first request holds the only permit while it waits for its body.
    assert!((&mut first).now_or_never().is_none());

    let refused = classify(app(state.clone()), json!({"text": QUEJA})).await;
    assert_error(&refused, 503, "overloaded", "second request");
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    // Probes are not limited.
    assert_eq!(
        send(app(state.clone()), get("/readyz")).await.status,
        StatusCode::OK
    );

    sender
        .send(Bytes::from(json!({"text": QUEJA}).to_string()))
        .await
        .unwrap();
    drop(sender);
    let response = first.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        classify(app(state.clone()), json!({"text": QUEJA}))
            .await
            .status,
        StatusCode::OK
    );

    // A stream holds its permit while its answer flows, not only until its headers.
    let (sender, body) = channel_body();
    let stream = app(state.clone())
        .oneshot(request(Method::POST, "/v1/classify/stream", None, body))
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let refused = classify(app(state.clone()), json!({"text": QUEJA})).await;
    assert_error(&refused, 503, "overloaded", "request beside an open stream");
    sender.send(line(json!({"text": QUEJA}))).await.unwrap();
    drop(sender);
    let answered = stream.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(answered.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(
        classify(app(state), json!({"text": QUEJA})).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_body_that_never_ends_times_out_with_408() {
    let limits = Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let state = state_with(None, limits, PathBuf::from("unused.pqrs"));
    let (sender, body) = channel_body();
    sender
        .send(Bytes::from_static(b"{\"text\": \"hola"))
        .await
        .unwrap();
    let answer = send(app(state), post_json("/v1/classify", body)).await;
    assert_error(&answer, 408, "request_timeout", "slow body");
    drop(sender);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_without_content_length() {
    let limits = Limits {
        max_body_bytes: 1_000,
        ..Limits::default()
    };
    let state = state_with(None, limits, PathBuf::from("unused.pqrs"));
    let (sender, body) = channel_body();
    let producer = tokio::spawn(async move {
        for _ in 0..20 {
            if sender.send(Bytes::from(vec![b' '; 100])).await.is_err() {
                break;
            }
        }
    });
    let answer = send(app(state), post_json("/v1/classify", body)).await;
    assert_error(&answer, 413, "payload_too_large", "chunked");
    producer.await.unwrap();
}

/// Messages never carry comment text unmasked: serde quotes rejected values, and those could be personal data.
#[tokio::test]
async fn error_messages_mask_personal_data() {
    let document = "1.234.567.890";
    let masked = models::routing::mask(&format!("mi cédula es {document}")).text;
    assert!(
        !masked.contains(document),
        "the masker must hide the document for this test to mean anything"
    );
    let answer = classify(
        app(state()),
        json!({"text": "hola", "top_k": format!("mi cédula es {document}")}),
    )
    .await;
    assert_error(&answer, 422, "wrong_type", "quoted value");
    assert!(!answer.text().contains(document), "{}", answer.text());
}

#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Debug logs of every test from the moment the first test asks for them. A process-wide subscriber, because
/// a scoped one races with the callsite cache when tests run in parallel threads.
fn captured_logs() -> &'static CapturedLogs {
    static LOGS: LazyLock<CapturedLogs> = LazyLock::new(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a subscriber");
        logs
    });
    &LOGS
}

/// Even at debug level, the text of a comment appears in the logs only masked.
#[tokio::test]
async fn debug_logs_show_comments_only_masked() {
    let logs = captured_logs();
    let phone = "3001234567";
    let text =
        format!("Soy Juan Pérez, mi celular es {phone}, pésima atención en la sede de Zipaquirá");
    assert!(!models::routing::mask(&text).text.contains(phone));
    let answer = classify(app(state()), json!({"text": text, "id": "log-1"})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let written = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = written
        .lines()
        .find(|l| l.contains("classified") && l.contains("Zipaquirá"))
        .unwrap_or_else(|| panic!("no debug line for the comment: {written}"));
    assert!(line.contains("pésima atención"), "{line}");
    assert!(!written.contains(phone), "{written}");
}

/// One malformed request: what is sent and which status and code must come back.
struct Case {
    name: &'static str,
    method: Method,
    uri: &'static str,
    content_type: Option<&'static str>,
    key: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    uri: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method: Method::POST,
        uri,
        content_type: Some("application/json"),
        key: None,
        body: body.into(),
        status,
        code,
    }
}

fn classify_case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    case(name, "/v1/classify", body, status, code)
}

fn batch_case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    case(name, "/v1/classify/batch", body, status, code)
}

fn reload_case(
    name: &'static str,
    key: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        key,
        ..case(name, "/v1/admin/reload", body, status, code)
    }
}

fn method_case(
    name: &'static str,
    method: Method,
    uri: &'static str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        content_type: None,
        ..case(name, uri, "", status, code)
    }
}

fn typed_case(name: &'static str, content_type: Option<&'static str>) -> Case {
    Case {
        content_type,
        ..classify_case(name, r#"{"text": "hola"}"#, 415, "unsupported_media_type")
    }
}

fn malformed_cases() -> Vec<Case> {
    let long_text = format!(
        r#"{{"text": "{}"}}"#,
        "a".repeat(Limits::default().max_text_chars + 1)
    );
    let long_id = format!(r#"{{"text": "hola", "id": "{}"}}"#, "i".repeat(300));
    let huge_body = format!(
        r#"{{"text": "{}"}}"#,
        "a ".repeat(Limits::default().max_body_bytes)
    );
    let too_many =
        json!({"items": vec![json!({"text": "a"}); Limits::default().max_batch_items + 1]})
            .to_string();
    let latin1: Vec<u8> = [&br#"{"text": "atenci"#[..], &[0xf3], &br#"n"}"#[..]].concat();
    vec![
        // Not JSON at all.
        classify_case("empty body", "", 400, "invalid_json"),
        classify_case("open brace", "{", 400, "invalid_json"),
        classify_case("plain words", "not json", 400, "invalid_json"),
        classify_case(
            "unterminated object",
            r#"{"text": "hola""#,
            400,
            "invalid_json",
        ),
        classify_case(
            "unterminated string",
            r#"{"text": "hola}"#,
            400,
            "invalid_json",
        ),
        classify_case(
            "trailing comma",
            r#"{"text": "hola",}"#,
            400,
            "invalid_json",
        ),
        classify_case("single quotes", "{'text': 'hola'}", 400, "invalid_json"),
        classify_case("unquoted key", r#"{text: "hola"}"#, 400, "invalid_json"),
        classify_case(
            "trailing garbage",
            r#"{"text": "hola"} extra"#,
            400,
            "invalid_json",
        ),
        classify_case(
            "two objects",
            r#"{"text": "a"}{"text": "b"}"#,
            400,
            "invalid_json",
        ),
        classify_case(
            "lone surrogate",
            r#"{"text": "\ud800"}"#,
            400,
            "invalid_json",
        ),
        classify_case("bad escape", r#"{"text": "\q"}"#, 400, "invalid_json"),
        classify_case(
            "raw control character",
            "{\"text\": \"a\u{1}b\"}",
            400,
            "invalid_json",
        ),
        classify_case(
            "NaN literal",
            r#"{"text": "hola", "top_k": NaN}"#,
            400,
            "invalid_json",
        ),
        // Not UTF-8.
        classify_case(
            "invalid utf-8",
            &b"{\"text\": \"\xff\xfe\"}"[..],
            400,
            "invalid_utf8",
        ),
        classify_case("latin-1 text", latin1, 400, "invalid_utf8"),
        classify_case(
            "truncated utf-8",
            &b"{\"text\": \"caf\xc3\"}"[..],
            400,
            "invalid_utf8",
        ),
        // Wrong shape of the whole body.
        classify_case("null body", "null", 422, "wrong_type"),
        classify_case("array body", "[]", 422, "wrong_type"),
        classify_case(
            "fields as an array",
            r#"["hola", null, null, null, null, 3]"#,
            422,
            "wrong_type",
        ),
        classify_case("broken array", "[1,", 400, "invalid_json"),
        classify_case("string body", r#""hola""#, 422, "wrong_type"),
        classify_case("number body", "42", 422, "wrong_type"),
        classify_case("empty object", "{}", 422, "missing_field"),
        classify_case("id without text", r#"{"id": "x"}"#, 422, "missing_field"),
        // Wrong types of fields.
        classify_case("null text", r#"{"text": null}"#, 422, "wrong_type"),
        classify_case("number text", r#"{"text": 5}"#, 422, "wrong_type"),
        classify_case("boolean text", r#"{"text": true}"#, 422, "wrong_type"),
        classify_case("array text", r#"{"text": ["a"]}"#, 422, "wrong_type"),
        classify_case("object text", r#"{"text": {"a": 1}}"#, 422, "wrong_type"),
        classify_case(
            "number id",
            r#"{"text": "hola", "id": 7}"#,
            422,
            "wrong_type",
        ),
        classify_case(
            "array channel",
            r#"{"text": "hola", "channel": ["web"]}"#,
            422,
            "wrong_type",
        ),
        classify_case(
            "boolean client type",
            r#"{"text": "hola", "client_type": false}"#,
            422,
            "wrong_type",
        ),
        classify_case(
            "epoch received_at",
            r#"{"text": "hola", "received_at": 1700000000}"#,
            422,
            "wrong_type",
        ),
        classify_case(
            "string top_k",
            r#"{"text": "hola", "top_k": "3"}"#,
            422,
            "wrong_type",
        ),
        classify_case(
            "fractional top_k",
            r#"{"text": "hola", "top_k": 1.5}"#,
            422,
            "wrong_type",
        ),
        // Unknown fields.
        classify_case(
            "unknown field",
            r#"{"text": "hola", "extra": 1}"#,
            422,
            "unknown_field",
        ),
        classify_case("misspelt field", r#"{"txt": "hola"}"#, 422, "unknown_field"),
        classify_case(
            "capitalised field",
            r#"{"Text": "hola"}"#,
            422,
            "unknown_field",
        ),
        // Values out of range.
        classify_case("empty text", r#"{"text": ""}"#, 422, "empty_text"),
        classify_case("blank text", "{\"text\": \"  \\n\\t \"}", 422, "empty_text"),
        classify_case("text too long", long_text, 422, "text_too_long"),
        classify_case(
            "top_k zero",
            r#"{"text": "hola", "top_k": 0}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "top_k too large",
            r#"{"text": "hola", "top_k": 21}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "negative top_k",
            r#"{"text": "hola", "top_k": -1}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "top_k overflow",
            r#"{"text": "hola", "top_k": 99999999999}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "received_at in words",
            r#"{"text": "hola", "received_at": "ayer"}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "received_at month 13",
            r#"{"text": "hola", "received_at": "2026-13-01T00:00:00-05:00"}"#,
            422,
            "invalid_value",
        ),
        classify_case(
            "received_at without offset",
            r#"{"text": "hola", "received_at": "2026-03-02 09:30"}"#,
            422,
            "invalid_value",
        ),
        classify_case("id too long", long_id, 422, "invalid_value"),
        classify_case(
            "duplicate field",
            r#"{"text": "a", "text": "b"}"#,
            422,
            "invalid_value",
        ),
        // Size and media type.
        classify_case("body too large", huge_body, 413, "payload_too_large"),
        typed_case("no content type", None),
        typed_case("text/plain", Some("text/plain")),
        typed_case("form", Some("application/x-www-form-urlencoded")),
        typed_case("ndjson on a JSON route", Some("application/x-ndjson")),
        // Batches.
        batch_case("items not an array", r#"{"items": "x"}"#, 422, "wrong_type"),
        batch_case("items null", r#"{"items": null}"#, 422, "wrong_type"),
        batch_case("no items", "{}", 422, "missing_field"),
        batch_case("empty items", r#"{"items": []}"#, 422, "empty_batch"),
        batch_case(
            "unknown batch field",
            r#"{"items": [{"text": "a"}], "extra": 1}"#,
            422,
            "unknown_field",
        ),
        batch_case("bare array", r#"[{"text": "a"}]"#, 422, "wrong_type"),
        batch_case("unterminated batch", r#"{"items": ["#, 400, "invalid_json"),
        batch_case("batch too large", too_many, 422, "batch_too_large"),
        Case {
            content_type: Some("text/csv"),
            ..batch_case(
                "batch as csv",
                "text\nhola\n",
                415,
                "unsupported_media_type",
            )
        },
        // Admin.
        reload_case("reload without key", None, "{}", 401, "unauthorized"),
        reload_case(
            "reload with wrong key",
            Some("wrong"),
            "{}",
            401,
            "unauthorized",
        ),
        reload_case(
            "reload with number path",
            Some(KEY),
            r#"{"path": 5}"#,
            422,
            "wrong_type",
        ),
        reload_case(
            "reload with empty path",
            Some(KEY),
            r#"{"path": "  "}"#,
            422,
            "invalid_value",
        ),
        reload_case(
            "reload with unknown field",
            Some(KEY),
            r#"{"paht": "x"}"#,
            422,
            "unknown_field",
        ),
        reload_case(
            "reload of a missing file",
            Some(KEY),
            r#"{"path": "/nonexistent/model.pqrs"}"#,
            422,
            "model_rejected",
        ),
        reload_case(
            "reload with broken JSON",
            Some(KEY),
            "{path",
            400,
            "invalid_json",
        ),
        Case {
            content_type: Some("text/plain"),
            ..reload_case(
                "reload as text",
                Some(KEY),
                "path=/x",
                415,
                "unsupported_media_type",
            )
        },
        // Routes and methods.
        method_case(
            "GET classify",
            Method::GET,
            "/v1/classify",
            405,
            "method_not_allowed",
        ),
        method_case(
            "PUT classify",
            Method::PUT,
            "/v1/classify",
            405,
            "method_not_allowed",
        ),
        method_case(
            "GET batch",
            Method::GET,
            "/v1/classify/batch",
            405,
            "method_not_allowed",
        ),
        method_case(
            "GET stream",
            Method::GET,
            "/v1/classify/stream",
            405,
            "method_not_allowed",
        ),
        method_case(
            "POST model",
            Method::POST,
            "/v1/model",
            405,
            "method_not_allowed",
        ),
        method_case(
            "DELETE healthz",
            Method::DELETE,
            "/healthz",
            405,
            "method_not_allowed",
        ),
        method_case(
            "GET reload",
            Method::GET,
            "/v1/admin/reload",
            405,
            "method_not_allowed",
        ),
        method_case("unknown route", Method::GET, "/v1/nope", 404, "not_found"),
        method_case("root", Method::GET, "/", 404, "not_found"),
        method_case(
            "old version",
            Method::POST,
            "/v0/classify",
            404,
            "not_found",
        ),
        method_case(
            "trailing slash",
            Method::POST,
            "/v1/classify/",
            404,
            "not_found",
        ),
    ]
}

#[tokio::test]
async fn every_malformed_request_gets_a_4xx_json_error() {
    let cases = malformed_cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let state = state();
    for case in cases {
        let mut request = request(case.method, case.uri, case.content_type, case.body);
        if let Some(key) = case.key {
            request = authorized(request, key);
        }
        let answer = send(app(state.clone()), request).await;
        assert!(
            answer.status.is_client_error(),
            "{}: {}",
            case.name,
            answer.status
        );
        assert_error(&answer, case.status, case.code, case.name);
    }
    // None of them changed the served model.
    assert_eq!(state.model().id(), FIXTURE.model.info.id);
}
