//! Tests of the QA loop through `app(state).oneshot(request)` on a real SQLite file in a temporary directory:
//! classified comments logged and queued most uncertain first with filters, feedback validation and append-only
//! history, the dashboard figures, and `pqrs feedback export` read back through the datasets reader.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use models::{Model, Precision};
use serde_json::{Value, json};
use service::http::{ApiKey, AppState, Limits, app};
use service::store::{PredictionLog, Store, export_feedback};
use tower::ServiceExt;

const KEY: &str = "store-key-0123456789";

/// The default model, trained once for every test of this file.
static MODEL: LazyLock<Model> = LazyLock::new(|| {
    let (mut model, _) = training::train_default().expect("the default model trains");
    // Serialising sets the model's id.
    let _ = model.to_bytes(Precision::F32);
    model
});

/// Comments with known dates, channels and personal data; ids `c-0`, `c-1`, ...
const COMMENTS: [(&str, &str, &str); 6] = [
    (
        "Pésima atención en la sede, me hicieron esperar tres horas y nadie me dio respuesta",
        "2026-03-02T09:30:00-05:00",
        "web",
    ),
    (
        "Llevo tres meses sin recibir la cuota monetaria, mi cédula es 1036123456",
        "2026-03-03T10:00:00-05:00",
        "email",
    ),
    (
        "Quiero felicitar a la profesora de natación, excelente trato con los niños",
        "2026-03-04T11:00:00-05:00",
        "web",
    ),
    (
        "Solicito información sobre el subsidio de vivienda y los requisitos para postularme",
        "2026-03-05T08:15:00-05:00",
        "presencial",
    ),
    (
        "Sugiero ampliar el horario de la biblioteca los fines de semana",
        "2026-03-06T16:45:00-05:00",
        "web",
    ),
    (
        "Me cobraron dos veces la inscripción al curso y no me han devuelto el dinero, escribir al 3001234567",
        "2026-03-07T12:00:00-05:00",
        "email",
    ),
];

struct Fixture {
    dir: tempfile::TempDir,
    state: AppState,
}

impl Fixture {
    fn db(&self) -> PathBuf {
        self.dir.path().join("qa.sqlite3")
    }
}

fn logged_state(key: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = PredictionLog::open(&dir.path().join("qa.sqlite3")).unwrap();
    let state = AppState::with_prediction_log(
        MODEL.clone(),
        PathBuf::from("unused.pqrs"),
        key.map(|k| ApiKey::new(k).unwrap()),
        Limits::default(),
        Some(log),
    )
    .unwrap();
    Fixture { dir, state }
}

struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

async fn send(router: Router, request: Request<Body>) -> Answer {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, body }
}

fn post(uri: &str, body: &Value, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn get(uri: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::empty()).unwrap()
}

/// Classifies every comment of [`COMMENTS`] and returns the answers.
async fn classify_all(state: &AppState) -> Vec<Value> {
    let mut answers = Vec::new();
    for (i, (text, received_at, channel)) in COMMENTS.iter().enumerate() {
        let body = json!({"text": text, "id": format!("c-{i}"), "received_at": received_at, "channel": channel});
        let answer = send(app(state.clone()), post("/v1/classify", &body, None)).await;
        assert_eq!(answer.status, StatusCode::OK);
        answers.push(answer.json());
    }
    answers
}

async fn queue(state: &AppState, query: &str) -> Value {
    let answer = send(
        app(state.clone()),
        get(&format!("/v1/review/queue{query}"), Some(KEY)),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{query}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

async fn feedback(state: &AppState, body: Value) -> Answer {
    send(app(state.clone()), post("/v1/feedback", &body, Some(KEY))).await
}

/// The labels of `head` that are not `label`.
fn other_label(head: &str, label: &str) -> String {
    MODEL
        .linear
        .heads
        .iter()
        .find(|h| h.name == head)
        .unwrap()
        .labels
        .iter()
        .find(|l| *l != label)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn logged_predictions_are_queued_most_uncertain_first_masked_and_filtered() {
    let fixture = logged_state(Some(KEY));
    let state = &fixture.state;
    let answers = classify_all(state).await;

    // A comment without an id gets one, returned with the answer.
    let anonymous = send(
        app(state.clone()),
        post(
            "/v1/classify",
            &json!({"text": COMMENTS[0].0, "top_k": 1}),
            None,
        ),
    )
    .await
    .json();
    let generated = anonymous["id"]
        .as_str()
        .expect("a generated id")
        .to_string();
    assert!(!generated.is_empty());

    let page = queue(state, "").await;
    assert_eq!(page["total"], 7);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    let uncertainty: Vec<f64> = items
        .iter()
        .map(|i| i["uncertainty"].as_f64().unwrap())
        .collect();
    assert!(
        uncertainty.windows(2).all(|w| w[0] <= w[1]),
        "{uncertainty:?}"
    );
    for item in items {
        // The smallest margin p1 - p2 over the heads, from the answer's own top-k.
        let heads = item["heads"].as_object().unwrap();
        assert_eq!(heads.len(), 3);
        let smallest = heads
            .values()
            .map(|h| {
                let top = h["top_k"].as_array().unwrap();
                let p1 = top[0]["probability"].as_f64().unwrap();
                let p2 = top
                    .get(1)
                    .map_or(1.0 - p1, |s| s["probability"].as_f64().unwrap());
                p1 - p2
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            (item["uncertainty"].as_f64().unwrap() - smallest).abs() < 1e-4,
            "{item}"
        );
        assert!(item["corrections"].as_array().unwrap().is_empty());
    }
    let logged = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    for (i, answer) in answers.iter().enumerate() {
        let item = logged(&format!("c-{i}"));
        assert_eq!(item["received_at"], answer["received_at"]);
        assert_eq!(item["channel"], COMMENTS[i].2);
        assert_eq!(item["model"], answer["model"]);
        assert_eq!(item["route"]["area"], answer["route"]["area"]);
        assert_eq!(item["route"]["due_at"], answer["route"]["due_at"]);
        for head in ["type", "theme", "area"] {
            assert_eq!(item["heads"][head]["label"], answer["heads"][head]["label"]);
            assert_eq!(
                item["heads"][head]["confidence"],
                answer["heads"][head]["confidence"]
            );
            assert_eq!(item["heads"][head]["top_k"], answer["heads"][head]["top_k"]);
            assert_eq!(
                item["heads"][head]["explanation"],
                answer["heads"][head]["explanation"]
            );
        }
    }
    // Personal data never reaches the database.
    let masked = logged("c-1")["text"].as_str().unwrap().to_string();
    assert!(
        masked.contains("[CEDULA]") && !masked.contains("1036123456"),
        "{masked}"
    );
    let masked = logged("c-5")["text"].as_str().unwrap().to_string();
    assert!(!masked.contains("3001234567"), "{masked}");
    // Committed rows sit in the write-ahead log until a checkpoint: both files are searched.
    let mut raw = std::fs::read(fixture.db()).unwrap();
    raw.extend(std::fs::read(fixture.db().with_extension("sqlite3-wal")).unwrap_or_default());
    assert!(
        raw.windows(18).any(|w| w == b"la cuota monetaria"),
        "the text is in the files"
    );
    assert!(!raw.windows(10).any(|w| w == b"1036123456"));
    assert_eq!(logged(&generated)["channel"], Value::Null);

    // Filters.
    let type_of = |i: usize| {
        answers[i]["heads"]["type"]["label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let by_label = queue(state, &format!("?head=type&label={}", type_of(0))).await;
    let expected: Vec<String> = (0..COMMENTS.len())
        .filter(|&i| type_of(i) == type_of(0))
        .map(|i| format!("c-{i}"))
        .chain(
            (anonymous["heads"]["type"]["label"] == type_of(0).as_str()).then(|| generated.clone()),
        )
        .collect();
    let mut found = ids(&by_label);
    found.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(found, expected_sorted);
    let margins: Vec<f64> = by_label["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["uncertainty"].as_f64().unwrap())
        .collect();
    assert!(margins.windows(2).all(|w| w[0] <= w[1]));

    let area = answers[1]["route"]["area"].as_str().unwrap().to_string();
    let by_area = queue(state, &format!("?area={area}")).await;
    assert!(!ids(&by_area).is_empty());
    for item in by_area["items"].as_array().unwrap() {
        assert_eq!(item["route"]["area"], area.as_str());
    }
    let by_date = queue(state, "?from=2026-03-03&to=2026-03-05").await;
    let mut dated = ids(&by_date);
    dated.sort();
    assert_eq!(dated, ["c-1", "c-2", "c-3"]);
    // Blank values are absent values, as an HTML form sends them.
    assert_eq!(
        queue(state, "?head=&label=&area=&from=&to=").await["total"],
        7
    );

    let first_page = queue(state, "?limit=2").await;
    let second_page = queue(state, "?limit=2&offset=2").await;
    assert_eq!(first_page["total"], 7);
    assert_eq!(ids(&first_page), ids(&page)[..2]);
    assert_eq!(ids(&second_page), ids(&page)[2..4]);

    for (query, status, code) in [
        ("?limit=0", 422, "invalid_value"),
        ("?limit=501", 422, "invalid_value"),
        ("?limit=many", 422, "invalid_value"),
        ("?from=2026-13-01", 422, "invalid_value"),
        ("?to=03/05/2026", 422, "invalid_value"),
        ("?head=tipo", 422, "unknown_head"),
        ("?colour=red", 422, "unknown_field"),
    ] {
        let answer = send(
            app(state.clone()),
            get(&format!("/v1/review/queue{query}"), Some(KEY)),
        )
        .await;
        assert_eq!(answer.status.as_u16(), status, "{query}");
        assert_eq!(answer.code(), code, "{query}");
    }
    let counts = state.prediction_log().unwrap().counts();
    assert_eq!(
        (counts.committed(), counts.dropped(), counts.failed()),
        (7, 0, 0)
    );
}

#[tokio::test]
async fn feedback_is_checked_kept_append_only_and_takes_corrected_items_off_the_queue() {
    let fixture = logged_state(Some(KEY));
    let state = &fixture.state;

    // Corrected at once after being classified: the writer is flushed first, so the id is known.
    let classified = send(
        app(state.clone()),
        post("/v1/classify", &json!({"text": COMMENTS[1].0}), None),
    )
    .await
    .json();
    let id = classified["id"].as_str().unwrap().to_string();
    let predicted = classified["heads"]["type"]["label"]
        .as_str()
        .unwrap()
        .to_string();
    let confirm = feedback(
        state,
        json!({"id": id, "head": "type", "correct_label": predicted.to_uppercase(), "reviewer": " ana.qa "}),
    )
    .await;
    assert_eq!(
        confirm.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&confirm.body)
    );
    let confirm = confirm.json();
    assert_eq!(confirm["id"], id.as_str());
    assert_eq!(confirm["predicted_label"], predicted.as_str());
    assert_eq!(
        confirm["correct_label"],
        predicted.as_str(),
        "spelling variants meet the label id"
    );
    assert_eq!(confirm["agrees"], true);
    assert_eq!(confirm["reviewer"], "ana.qa");
    assert!(chrono::DateTime::parse_from_rfc3339(confirm["created_at"].as_str().unwrap()).is_ok());

    let other = other_label("type", &predicted);
    let change = feedback(
        state,
        json!({"id": id, "head": "type", "correct_label": other, "reviewer": "luis.qa",
               "note": "el afiliado con cédula 1036123456 pide el pago"}),
    )
    .await;
    assert_eq!(change.status, StatusCode::CREATED);
    let change = change.json();
    assert_eq!(change["agrees"], false);
    assert!(change["feedback_id"].as_i64() > confirm["feedback_id"].as_i64());
    assert!(!change["note"].as_str().unwrap().contains("1036123456"));

    // Every correction is kept, in order, with who and when.
    let history = Store::open(&fixture.db()).unwrap().corrections().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history
            .iter()
            .map(|c| (c.reviewer.as_str(), c.correct_label.as_str(), c.agrees))
            .collect::<Vec<_>>(),
        [
            ("ana.qa", predicted.as_str(), true),
            ("luis.qa", other.as_str(), false)
        ]
    );
    // The database itself refuses to rewrite history.
    let connection = rusqlite::Connection::open(fixture.db()).unwrap();
    assert!(
        connection
            .execute("UPDATE corrections SET correct_label = 'x'", [])
            .is_err()
    );
    assert!(connection.execute("DELETE FROM corrections", []).is_err());
    drop(connection);

    // The item stays in the queue with its corrections until every head is corrected; a head filter leaves it out
    // as soon as that head is.
    let page = queue(state, "").await;
    assert_eq!(ids(&page), std::slice::from_ref(&id));
    let corrections = page["items"][0]["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 2);
    assert_eq!(corrections[1]["reviewer"], "luis.qa");
    assert_eq!(corrections[1]["correct_label"], other.as_str());
    assert_eq!(queue(state, "?head=type").await["total"], 0);
    assert_eq!(queue(state, "?head=area").await["total"], 1);
    for head in ["theme", "area"] {
        let label = classified["heads"][head]["label"].clone();
        let answer = feedback(
            state,
            json!({"id": id, "head": head, "correct_label": label, "reviewer": "ana.qa"}),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    assert_eq!(queue(state, "").await["total"], 0);

    let good = json!({"id": id, "head": "type", "correct_label": predicted, "reviewer": "ana.qa"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    for (body, status, code) in [
        (with("id", json!("no-such-comment")), 404, "unknown_id"),
        (with("head", json!("tipo")), 422, "unknown_head"),
        (with("correct_label", json!("quejas")), 422, "unknown_label"),
        (with("reviewer", json!("  ")), 422, "invalid_value"),
        (with("id", json!("")), 422, "invalid_value"),
        (with("note", json!("x".repeat(2001))), 422, "invalid_value"),
        (with("colour", json!("red")), 422, "unknown_field"),
        (
            json!({"id": id, "head": "type", "correct_label": predicted}),
            422,
            "missing_field",
        ),
    ] {
        let answer = feedback(state, body.clone()).await;
        assert_eq!(answer.status.as_u16(), status, "{body}");
        assert_eq!(answer.code(), code, "{body}");
    }
    let unauthenticated = send(app(state.clone()), post("/v1/feedback", &good, None)).await;
    assert_eq!(
        (
            unauthenticated.status.as_u16(),
            unauthenticated.code().as_str()
        ),
        (401, "unauthorized")
    );
    let wrong = send(
        app(state.clone()),
        post("/v1/feedback", &good, Some("wrong")),
    )
    .await;
    assert_eq!(wrong.status.as_u16(), 401);
    let queue_without_key = send(app(state.clone()), get("/v1/review/queue", None)).await;
    assert_eq!(queue_without_key.status.as_u16(), 401);

    // No key configured: the endpoints are disabled, like the admin ones.
    let keyless = logged_state(None);
    let answer = send(
        app(keyless.state.clone()),
        post("/v1/feedback", &good, Some(KEY)),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (403, "admin_disabled")
    );
    // No log: nothing to review.
    let unlogged = AppState::new(
        MODEL.clone(),
        PathBuf::from("unused.pqrs"),
        Some(ApiKey::new(KEY).unwrap()),
        Limits::default(),
    )
    .unwrap();
    for request in [
        post("/v1/feedback", &good, Some(KEY)),
        get("/v1/review/queue", Some(KEY)),
        get("/v1/review/stats", Some(KEY)),
    ] {
        let answer = send(app(unlogged.clone()), request).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code().as_str()),
            (503, "store_disabled")
        );
    }
    assert_eq!(
        Store::open(&fixture.db())
            .unwrap()
            .corrections()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn stats_count_corrections_per_day_and_agreement_on_the_latest_correction() {
    let fixture = logged_state(Some(KEY));
    let state = &fixture.state;
    let answers = classify_all(state).await;
    let stats = send(app(state.clone()), get("/v1/review/stats", Some(KEY)))
        .await
        .json();
    assert_eq!(stats["predictions_logged"], 6);
    assert_eq!(stats["pending_review"], 6);
    assert_eq!(stats["corrections_per_day"], json!([]));
    assert_eq!(
        stats["agreement"]["type"],
        json!({"reviewed": 0, "agreed": 0, "rate": null})
    );

    let label = |i: usize, head: &str| {
        answers[i]["heads"][head]["label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // c-0 type: confirmed, then changed (the latest counts: disagreement); c-1 type: confirmed; c-2 type: changed;
    // c-3 every head confirmed.
    let corrections = [
        ("c-0", "type", label(0, "type")),
        ("c-0", "type", other_label("type", &label(0, "type"))),
        ("c-1", "type", label(1, "type")),
        ("c-2", "type", other_label("type", &label(2, "type"))),
        ("c-3", "type", label(3, "type")),
        ("c-3", "theme", label(3, "theme")),
        ("c-3", "area", label(3, "area")),
    ];
    for (id, head, correct) in &corrections {
        let answer = feedback(
            state,
            json!({"id": id, "head": head, "correct_label": correct, "reviewer": "qa"}),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let stats = send(app(state.clone()), get("/v1/review/stats", Some(KEY)))
        .await
        .json();
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        stats["corrections_per_day"],
        json!([{"day": today, "count": 7}])
    );
    assert_eq!(
        stats["agreement"]["type"],
        json!({"reviewed": 4, "agreed": 2, "rate": 0.5})
    );
    assert_eq!(
        stats["agreement"]["theme"],
        json!({"reviewed": 1, "agreed": 1, "rate": 1.0})
    );
    assert_eq!(stats["predictions_logged"], 6);
    assert_eq!(stats["pending_review"], 5);
}

fn read_back(path: &Path) -> datasets::LabeledSet {
    let mapping = datasets::ColumnMapping {
        text: vec!["text".into()],
        labels: vec![("type".into(), "type".into())],
        id: Some("id".into()),
        date: Some("received_at".into()),
        channel: Some("channel".into()),
        sheet: None,
    };
    datasets::read_labeled(path, &mapping).unwrap()
}

#[tokio::test]
async fn feedback_export_round_trips_through_the_datasets_reader() {
    let fixture = logged_state(Some(KEY));
    let state = &fixture.state;
    let answers = classify_all(state).await;
    let label = |i: usize, head: &str| {
        answers[i]["heads"][head]["label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // c-0: type corrected twice (the latest counts); c-1: type and area; c-4: area only.
    let latest_type_of_c0 = other_label("type", &label(0, "type"));
    for (id, head, correct) in [
        ("c-0", "type", label(0, "type")),
        ("c-0", "type", latest_type_of_c0.clone()),
        ("c-1", "type", label(1, "type")),
        ("c-1", "area", label(1, "area")),
        ("c-4", "area", label(4, "area")),
    ] {
        let answer = feedback(
            state,
            json!({"id": id, "head": head, "correct_label": correct, "reviewer": "qa"}),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let rows = export_feedback(&fixture.db()).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["c-0", "c-1", "c-4"]
    );
    assert_eq!(rows[0].labels.len(), 1);
    assert_eq!(rows[0].labels["type"], latest_type_of_c0);
    assert_eq!(rows[1].labels["area"], label(1, "area"));
    assert!(!rows[2].labels.contains_key("type"));
    assert!(rows[1].text.contains("[CEDULA]"));

    for extension in ["csv", "jsonl"] {
        let out = fixture.dir.path().join(format!("feedback.{extension}"));
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_pqrs"))
            .args(["feedback", "export", "--db"])
            .arg(fixture.db())
            .arg("--out")
            .arg(&out)
            .env_remove("PQRS_DB")
            .status()
            .unwrap();
        assert!(status.success());
        let set = read_back(&out);
        // c-4 has no type correction: its empty cell is a missing label to the reader, reported with its line.
        assert_eq!(set.records.len(), 2, "{extension}");
        assert_eq!(set.report.rows_rejected(), 1, "{extension}");
        for (record, row) in set.records.iter().zip(&rows) {
            assert_eq!(record.id.as_deref(), Some(row.id.as_str()));
            assert_eq!(record.text, row.text);
            assert_eq!(record.labels, [row.labels["type"].clone()]);
            assert_eq!(record.channel, row.channel);
            assert_eq!(
                record.date.map(|d| d.to_string()),
                Some(row.received_at[..10].to_string())
            );
        }
    }
    // Exporting a database that does not exist fails instead of creating an empty one.
    let missing = fixture.dir.path().join("missing.sqlite3");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pqrs"))
        .args(["feedback", "export", "--db"])
        .arg(&missing)
        .args(["--out", "unused.csv"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no database"));
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_closed_log_commits_what_it_held_and_a_reopened_one_keeps_it() {
    let fixture = logged_state(Some(KEY));
    let state = &fixture.state;
    classify_all(state).await;
    let log = state.prediction_log().unwrap();
    log.close().await;
    assert_eq!(log.counts().committed(), 6);
    // After closing, rows are dropped and counted, never written half.
    send(
        app(state.clone()),
        post("/v1/classify", &json!({"text": COMMENTS[0].0}), None),
    )
    .await;
    assert_eq!(log.counts().dropped(), 1);
    let reopened = PredictionLog::open(&fixture.db()).unwrap();
    assert_eq!(reopened.stats().await.unwrap().predictions_logged, 6);
    let connection = rusqlite::Connection::open(fixture.db()).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}
