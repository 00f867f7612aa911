//! The OpenAPI 3.1 document of the API, written by hand as JSON. Error responses are generated from
//! [`ErrorCode`], so every code the server can send is documented under the status it is sent with.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::body::Bytes;
use serde_json::{Value, json};

use super::classify::{DEFAULT_TOP_K, MAX_TAG_CHARS, MAX_TOP_K};
use super::config::Limits;
use super::error::ErrorCode;
use super::review::{DEFAULT_QUEUE_LIMIT, MAX_NOTE_CHARS, MAX_QUEUE_LIMIT};

/// The document as bytes, built once.
pub fn bytes() -> Bytes {
    static BYTES: OnceLock<Bytes> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            Bytes::from(serde_json::to_vec_pretty(&document()).expect("the document is JSON"))
        })
        .clone()
}

fn example_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidJson => "the body is not valid JSON: expected value at line 1 column 1",
        ErrorCode::InvalidUtf8 => {
            "the body is not valid UTF-8: invalid utf-8 sequence of 1 bytes from index 10"
        }
        ErrorCode::InvalidBody => "the body could not be read: connection reset",
        ErrorCode::UnsupportedMediaType => {
            "send the body as JSON with Content-Type: application/json"
        }
        ErrorCode::PayloadTooLarge => "the body is larger than 262144 bytes",
        ErrorCode::MissingField => "missing field `text` at line 1 column 2",
        ErrorCode::UnknownField => {
            "unknown field `txt`, expected one of `text`, `id`, `channel`, `client_type`, `received_at`, `top_k` at line 1 column 6"
        }
        ErrorCode::WrongType => "invalid type: integer `5`, expected a string at line 1 column 9",
        ErrorCode::InvalidValue => "top_k must be between 1 and 20, got 0",
        ErrorCode::EmptyText => "text is empty",
        ErrorCode::TextTooLong => "text is longer than 20000 characters",
        ErrorCode::EmptyBatch => "items is empty",
        ErrorCode::BatchTooLarge => "the batch has 1001 items, at most 1000 are accepted",
        ErrorCode::Unauthorized => "send the API key as Authorization: Bearer KEY",
        ErrorCode::AdminDisabled => {
            "admin endpoints are disabled: start the server with --api-key or PQRS_API_KEY"
        }
        ErrorCode::NotFound => "no such route; see /openapi.json",
        ErrorCode::MethodNotAllowed => "this route does not accept this method; see /openapi.json",
        ErrorCode::RequestTimeout => "the request took longer than 10000 ms",
        ErrorCode::ModelRejected => {
            "model /srv/models/next.pqrs refused, still serving 3f9a1c0b7d2e: loading model /srv/models/next.pqrs: checksum mismatch"
        }
        ErrorCode::Overloaded => "more than 1024 requests in flight; retry shortly",
        ErrorCode::ShuttingDown => "the server is shutting down",
        ErrorCode::Internal => "internal error",
        ErrorCode::UnknownId => "no logged prediction has id \"PQRS-2026-000999\"",
        ErrorCode::UnknownHead => "unknown head \"tipo\"; the model's heads are type, theme, area",
        ErrorCode::UnknownLabel => {
            "\"quejas\" is not a label of head type: felicitacion, peticion, queja, reclamo, sugerencia"
        }
        ErrorCode::StoreDisabled => {
            "the server keeps no prediction log: start it with --db PATH (or without --db none)"
        }
    }
}

/// Error responses for `codes`, grouped by status, each code an example.
fn error_responses(codes: &[ErrorCode]) -> BTreeMap<String, Value> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for &code in codes {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(code);
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let description = codes
                .iter()
                .map(|c| format!("`{}`: {}", c.as_str(), c.description()))
                .collect::<Vec<_>>()
                .join(" ");
            let examples: serde_json::Map<String, Value> = codes
                .iter()
                .map(|c| {
                    (
                        c.as_str().to_string(),
                        json!({"value": {"error": {"code": c.as_str(), "message": example_message(*c)}}}),
                    )
                })
                .collect();
            let mut response = json!({
                "description": description,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "examples": examples,
                }},
            });
            if codes.iter().any(|c| c.retry_after().is_some()) {
                response["headers"] = json!({"Retry-After": {"$ref": "#/components/headers/RetryAfter"}});
            }
            (status.to_string(), response)
        })
        .collect()
}

/// Codes every route can answer with, whatever it does.
const ANY_ROUTE: [ErrorCode; 2] = [ErrorCode::MethodNotAllowed, ErrorCode::Internal];

/// Codes of the guarded work routes (concurrency, timeout, shutdown).
const GUARDED: [ErrorCode; 3] = [
    ErrorCode::Overloaded,
    ErrorCode::ShuttingDown,
    ErrorCode::RequestTimeout,
];

/// Codes of a JSON body.
const BODY: [ErrorCode; 8] = [
    ErrorCode::InvalidJson,
    ErrorCode::InvalidUtf8,
    ErrorCode::InvalidBody,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::MissingField,
    ErrorCode::UnknownField,
    ErrorCode::WrongType,
];

/// Codes of one comment's checks.
const ITEM: [ErrorCode; 3] = [
    ErrorCode::InvalidValue,
    ErrorCode::EmptyText,
    ErrorCode::TextTooLong,
];

fn codes(groups: &[&[ErrorCode]]) -> Vec<ErrorCode> {
    let mut all: Vec<ErrorCode> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    all.extend(ANY_ROUTE);
    all
}

fn ok_json(description: &str, schema: &str, example: Value) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{schema}")},
            "examples": {"example": {"value": example}},
        }},
    })
}

fn responses(ok: Value, errors: BTreeMap<String, Value>) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("200".into(), ok);
    map.extend(errors);
    Value::Object(map)
}

fn classify_example() -> Value {
    json!({
        "id": "PQRS-2026-000123",
        "channel": "web",
        "model": "3f9a1c0b7d2e",
        "server_time": "2026-03-02T09:30:00.120-05:00",
        "received_at": "2026-03-02T09:30:00.120-05:00",
        "needs_review": false,
        "tier": "fast",
        "heads": {
            "type": {
                "label": "queja", "confidence": 0.91, "needs_review": false,
                "top_k": [{"label": "queja", "probability": 0.91}, {"label": "reclamo", "probability": 0.06}, {"label": "peticion", "probability": 0.02}],
                "explanation": [{"ngram": "pesimo", "weight": 1.42}, {"ngram": "atencion", "weight": 0.61}]
            },
            "theme": {
                "label": "atencion_usuario", "confidence": 0.74, "needs_review": false,
                "top_k": [{"label": "atencion_usuario", "probability": 0.74}],
                "explanation": [{"ngram": "atencion", "weight": 0.88}]
            },
            "area": {
                "label": "servicio_cliente", "confidence": 0.83, "needs_review": false,
                "top_k": [{"label": "servicio_cliente", "probability": 0.83}],
                "explanation": [{"ngram": "sede", "weight": 0.52}]
            }
        },
        "route": {
            "escalate": false, "human_review": false, "priority": "normal", "reasons": [],
            "comment_type": "queja", "area": "servicio_cliente", "delegate_queue": "servicio-cliente",
            "health_risk": null,
            "term_basis": {"basis": "comment_type", "detail": "queja"},
            "term": "15 días hábiles",
            "due_at": "2026-03-20T23:59:59.000-05:00", "notice_due_at": "2026-03-20T23:59:59.000-05:00"
        }
    })
}

fn schemas() -> Value {
    let limits = Limits::default();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "ClassifyRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars,
                         "description": format!("The comment. Not empty; at most the server's --max-text-chars (default {}).", limits.max_text_chars)},
                "id": {"type": ["string", "null"], "maxLength": MAX_TAG_CHARS, "description": "Your id of the comment, echoed back."},
                "channel": {"type": ["string", "null"], "maxLength": MAX_TAG_CHARS, "description": "Intake channel, echoed back."},
                "client_type": {"type": ["string", "null"], "maxLength": MAX_TAG_CHARS,
                                "description": "Client type (afiliado, empresa, aportante, ...); employers' complaints escalate."},
                "received_at": {"type": ["string", "null"], "format": "date-time",
                                "description": "When the comment was received (RFC 3339); due dates count from it. Default: now, -05:00."},
                "top_k": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOP_K, "default": DEFAULT_TOP_K,
                          "description": "Labels in each head's top_k."}
            },
            "examples": [{"text": "Pésima atención en la sede de Bello, me hicieron esperar tres horas", "id": "PQRS-2026-000123", "channel": "web"}]
        },
        "ScoredLabel": {
            "type": "object", "required": ["label", "probability"],
            "properties": {"label": {"type": "string"}, "probability": {"type": "number", "minimum": 0, "maximum": 1}}
        },
        "Evidence": {
            "type": "object", "required": ["ngram", "weight"],
            "properties": {"ngram": {"type": "string", "description": "N-gram after normalisation."},
                           "weight": {"type": "number", "description": "Contribution to the label's logit."}}
        },
        "HeadAnswer": {
            "type": "object", "required": ["label", "confidence", "top_k", "needs_review", "explanation"],
            "properties": {
                "label": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "Calibrated probability of label."},
                "top_k": {"type": "array", "items": {"$ref": "#/components/schemas/ScoredLabel"}},
                "needs_review": {"type": "boolean", "description": "Confidence below the label's review threshold."},
                "explanation": {"type": "array", "items": {"$ref": "#/components/schemas/Evidence"},
                                "description": format!("At most the server's --explain n-grams (default {}; 0: always empty).", limits.explain_ngrams)}
            }
        },
        "Route": {
            "type": "object",
            "required": ["escalate", "human_review", "priority", "reasons", "comment_type", "area", "delegate_queue",
                         "health_risk", "term_basis", "term", "due_at", "notice_due_at"],
            "properties": {
                "escalate": {"type": "boolean"},
                "human_review": {"type": "boolean"},
                "priority": {"enum": ["normal", "alta", "urgente"]},
                "reasons": {"type": "array", "items": {
                    "type": "object", "required": ["rule", "detail"],
                    "properties": {
                        "rule": {"enum": ["riesgo_salud", "amenaza_legal", "contacto_repetido", "queja_empleador", "revision_humana"]},
                        "detail": {"type": "string"}
                    }
                }},
                "comment_type": {"type": ["string", "null"]},
                "area": {"type": ["string", "null"]},
                "delegate_queue": {"type": ["string", "null"]},
                "health_risk": {"enum": ["simple", "priorizado", "vital", null]},
                "term_basis": {
                    "type": "object", "required": ["basis"],
                    "properties": {
                        "basis": {"enum": ["comment_type", "information", "consulta", "forwarding", "acknowledgement", "health_risk", "unknown_type"]},
                        "detail": {"type": "string"}
                    }
                },
                "term": {"type": "string", "examples": ["15 días hábiles", "24 horas"]},
                "due_at": {"type": "string", "format": "date-time"},
                "notice_due_at": {"type": ["string", "null"], "format": "date-time"}
            }
        },
        "ClassifyResponse": {
            "type": "object",
            "required": ["model", "server_time", "received_at", "needs_review", "tier", "heads", "route"],
            "properties": {
                "id": {"type": "string"},
                "channel": {"type": "string"},
                "model": {"type": "string", "description": "Id of the model that answered (see GET /v1/model)."},
                "tier": {"type": "string", "enum": ["fast", "deep", "degraded"],
                         "description": "Which tier answered: the fast model (confident on every head, or no deep tier loaded), the deep tier (for a comment the fast model hesitated on: the fused encoder heads answer the heads it hesitated on, the fast model the others), or degraded (the deep tier was busy: the fast answer). Batch and stream answers always come from the fast model: bulk work must not take the encoder from single comments; re-score a backlog offline with `pqrs eval --deep`."},
                "server_time": {"type": "string", "format": "date-time"},
                "received_at": {"type": "string", "format": "date-time"},
                "needs_review": {"type": "boolean", "description": "At least one head asks for review."},
                "heads": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/HeadAnswer"},
                          "description": "One answer per head of the model (type, theme and area for the default model)."},
                "route": {"oneOf": [{"$ref": "#/components/schemas/Route"}, {"type": "null"}],
                          "description": "Null when the model carries no taxonomy with routing rules."}
            },
            "examples": [classify_example()]
        },
        "BatchRequest": {
            "type": "object", "additionalProperties": false, "required": ["items"],
            "properties": {"items": {"type": "array", "minItems": 1, "maxItems": limits.max_batch_items,
                                     "items": {"$ref": "#/components/schemas/ClassifyRequest"}}}
        },
        "ItemAnswer": {
            "type": "object", "required": ["index"],
            "description": "Exactly one of result and error.",
            "properties": {
                "index": {"type": "integer", "minimum": 0, "description": "Position in the batch, or 0-based line number in a stream."},
                "result": {"$ref": "#/components/schemas/ClassifyResponse"},
                "error": {"$ref": "#/components/schemas/ErrorBody"}
            }
        },
        "BatchResponse": {
            "type": "object", "required": ["model", "server_time", "succeeded", "failed", "results"],
            "properties": {
                "model": {"type": "string"},
                "server_time": {"type": "string", "format": "date-time"},
                "succeeded": {"type": "integer"},
                "failed": {"type": "integer"},
                "results": {"type": "array", "items": {"$ref": "#/components/schemas/ItemAnswer"}}
            }
        },
        "ModelResponse": {
            "type": "object",
            "required": ["id", "pqrs_version", "created_at", "heads", "taxonomy", "routing", "metrics", "training", "lineage"],
            "properties": {
                "id": {"type": "string"},
                "pqrs_version": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "heads": {"type": "array", "items": {
                    "type": "object", "required": ["name", "labels", "parent"],
                    "properties": {"name": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}},
                                   "parent": {"type": ["string", "null"]}}
                }},
                "taxonomy": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "integer"}}}]},
                "routing": {"type": "boolean"},
                "metrics": {"type": ["object", "null"], "description": "Validation metrics per head recorded at training (accuracy, macro_f1, weighted_f1, ece, ...)."},
                "training": {"type": "object", "properties": {
                    "n_comments": {"type": ["integer", "null"]}, "n_fit": {"type": ["integer", "null"]}, "n_validation": {"type": ["integer", "null"]}}},
                "lineage": {"description": "Set by `pqrs retrain`: the parent model, the corrections used and the comparison that promoted (or not) this model.",
                    "oneOf": [{"type": "null"}, {"type": "object", "required": ["parent", "feedback", "promoted", "forced", "reason", "comparison"], "properties": {
                    "parent": {"type": "string"}, "feedback": {"type": "integer"}, "promoted": {"type": "boolean"}, "forced": {"type": "boolean"},
                    "reason": {"type": "string"}, "comparison": {"type": "object"}}}]}
            }
        },
        "ReloadRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {"path": {"type": "string", "minLength": 1, "description": "Model file on the server; default: the served model's file."}}
        },
        "ReloadResponse": {
            "type": "object", "required": ["previous", "model", "path"],
            "properties": {"previous": {"type": "string"}, "model": {"type": "string"}, "path": {"type": "string"}}
        },
        "Status": {
            "type": "object", "required": ["status", "model"],
            "properties": {"status": {"enum": ["ok", "ready", "shutting_down"]}, "model": {"type": "string"}}
        },
        "ErrorBody": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"enum": codes}, "message": {"type": "string"}}
        },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}}
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let json_body = |schema: &str, example: Value| {
        json!({"required": true, "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{schema}")},
            "examples": {"example": {"value": example}},
        }}})
    };
    let classify_request = json!({"text": "Pésima atención en la sede de Bello, me hicieron esperar tres horas", "id": "PQRS-2026-000123", "channel": "web"});
    let mut batch_example = classify_example();
    batch_example["id"] = json!("b-1");
    let status_ok = |status: &str| json!({"status": status, "model": "3f9a1c0b7d2e"});
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "pqrs-router",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Classifies and routes PQRS comments (peticiones, quejas, reclamos, sugerencias, felicitaciones). \
                Every error is JSON {\"error\": {\"code\", \"message\"}}; the codes are listed in ErrorBody.code.",
            "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"}
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": {
            "/v1/classify": {"post": {
                "operationId": "classify",
                "summary": "Classify and route one comment",
                "requestBody": json_body("ClassifyRequest", classify_request.clone()),
                "responses": responses(
                    ok_json("Per-head answers, the route and the model id.", "ClassifyResponse", classify_example()),
                    error_responses(&codes(&[&BODY, &ITEM, &GUARDED])),
                ),
            }},
            "/v1/classify/batch": {"post": {
                "operationId": "classifyBatch",
                "summary": "Classify up to max_batch_items comments; a bad item gets its own error",
                "requestBody": json_body("BatchRequest", json!({"items": [
                    {"text": "Pésima atención en la sede de Bello", "id": "b-1"},
                    {"text": "", "id": "b-2"}
                ]})),
                "responses": responses(
                    ok_json("One result or error per item, in order.", "BatchResponse", json!({
                        "model": "3f9a1c0b7d2e", "server_time": "2026-03-02T09:30:00.120-05:00",
                        "succeeded": 1, "failed": 1,
                        "results": [
                            {"index": 0, "result": batch_example},
                            {"index": 1, "error": {"code": "empty_text", "message": "text is empty"}}
                        ]
                    })),
                    error_responses(&codes(&[&BODY, &[ErrorCode::EmptyBatch, ErrorCode::BatchTooLarge], &GUARDED])),
                ),
            }},
            "/v1/classify/stream": {"post": {
                "operationId": "classifyStream",
                "summary": "NDJSON in, NDJSON out: one ItemAnswer per non-blank line, in order, any length",
                "description": "Each line is a ClassifyRequest. Blank lines are skipped but counted in index. A bad line gets \
                    an error line; the stream goes on. A line longer than --max-line-bytes gets payload_too_large. \
                    The body is read as fast as the answers are read (backpressure). Not subject to the request timeout.",
                "requestBody": {"required": true, "content": {"application/x-ndjson": {
                    "schema": {"type": "string"},
                    "examples": {"example": {"value": "{\"text\": \"Pésima atención en la sede\", \"id\": \"s-1\"}\n{\"txt\": \"oops\"}\n"}}
                }}},
                "responses": {
                    "200": {"description": "One ItemAnswer JSON object per line.", "content": {"application/x-ndjson": {
                        "schema": {"$ref": "#/components/schemas/ItemAnswer"},
                        "examples": {"example": {"value":
                            "{\"index\":0,\"result\":{\"id\":\"s-1\",\"model\":\"3f9a1c0b7d2e\",\"...\":\"...\"}}\n{\"index\":1,\"error\":{\"code\":\"unknown_field\",\"message\":\"unknown field `txt`, expected one of `text`, `id`, `channel`, `client_type`, `received_at`, `top_k` at line 1 column 6\"}}\n"}}
                    }}},
                    "503": error_responses(&[ErrorCode::Overloaded, ErrorCode::ShuttingDown])["503"].clone(),
                    "405": error_responses(&[ErrorCode::MethodNotAllowed])["405"].clone(),
                },
            }},
            "/v1/model": {"get": {
                "operationId": "model",
                "summary": "The served model: id, heads, labels, training metrics",
                "responses": responses(
                    ok_json("The served model.", "ModelResponse", json!({
                        "id": "3f9a1c0b7d2e", "pqrs_version": env!("CARGO_PKG_VERSION"), "created_at": "2026-03-01T12:00:00Z",
                        "heads": [{"name": "type", "labels": ["felicitacion", "peticion", "queja", "reclamo", "sugerencia"], "parent": null}],
                        "taxonomy": {"id": "comfama", "name": "Comfama", "version": 1},
                        "routing": true,
                        "metrics": {"type": {"accuracy": 0.9, "macro_f1": 0.88, "weighted_f1": 0.9, "ece": 0.03}},
                        "training": {"n_comments": 2331, "n_fit": 1981, "n_validation": 350},
                        "lineage": null
                    })),
                    error_responses(&ANY_ROUTE),
                ),
            }},
            "/v1/admin/reload": {"post": {
                "operationId": "reload",
                "summary": "Swap in a model file atomically (requests in flight finish on the old model). Also on SIGHUP.",
                "security": [{"bearer": []}],
                "requestBody": {"required": false, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ReloadRequest"},
                    "examples": {"example": {"value": {"path": "/srv/models/next.pqrs"}}}
                }}},
                "responses": responses(
                    ok_json("The new model serves.", "ReloadResponse",
                            json!({"previous": "3f9a1c0b7d2e", "model": "9b0e44d1c2aa", "path": "/srv/models/next.pqrs"})),
                    error_responses(&codes(&[&BODY, &[ErrorCode::InvalidValue, ErrorCode::Unauthorized, ErrorCode::AdminDisabled, ErrorCode::ModelRejected], &GUARDED])),
                ),
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Liveness: the process answers",
                "responses": responses(ok_json("Alive.", "Status", status_ok("ok")), error_responses(&ANY_ROUTE)),
            }},
            "/readyz": {"get": {
                "operationId": "ready",
                "summary": "Readiness: a model is loaded and the server is not shutting down",
                "responses": {
                    "200": ok_json("Ready.", "Status", status_ok("ready")),
                    "503": ok_json("Shutting down.", "Status", status_ok("shutting_down")),
                    "405": error_responses(&[ErrorCode::MethodNotAllowed])["405"].clone(),
                },
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics: requests and latency by route and status, predictions by head and label, needs_review rate, model version",
                "responses": {
                    "200": {"description": "Prometheus text format.", "content": {"text/plain": {
                        "schema": {"type": "string"},
                        "examples": {"example": {"value": "pqrs_http_requests_total{route=\"/v1/classify\",method=\"POST\",status=\"200\"} 42\n"}}
                    }}},
                    "405": error_responses(&[ErrorCode::MethodNotAllowed])["405"].clone(),
                },
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {
                        "schema": {"type": "object"},
                        "examples": {"example": {"value": {"openapi": "3.1.0"}}}
                    }}},
                    "405": error_responses(&[ErrorCode::MethodNotAllowed])["405"].clone(),
                },
            }},
            "/{any}": {"get": {
                "operationId": "unknown",
                "summary": "Any other route answers not_found",
                "parameters": [{"name": "any", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": error_responses(&[ErrorCode::NotFound]),
            }}
        },
        "components": {
            "schemas": schemas(),
            "headers": {"RetryAfter": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "The key given to the server by --api-key or PQRS_API_KEY; without one the admin endpoints answer 403."}}
        }
    });
    add_review(&mut document);
    document
}

/// Codes of the review endpoints' key and store checks.
const REVIEW: [ErrorCode; 3] = [
    ErrorCode::Unauthorized,
    ErrorCode::AdminDisabled,
    ErrorCode::StoreDisabled,
];

fn review_item_example() -> Value {
    json!({
        "id": "PQRS-2026-000123", "received_at": "2026-03-02T09:30:00.120-05:00", "channel": "web",
        "text": "Soy [NOMBRE], llevo 3 meses sin recibir la cuota monetaria, mi cédula es [CEDULA]",
        "model": "3f9a1c0b7d2e", "uncertainty": 0.04,
        "heads": {
            "type": {"label": "reclamo", "confidence": 0.48, "needs_review": true,
                     "top_k": [{"label": "reclamo", "probability": 0.48}, {"label": "queja", "probability": 0.44}],
                     "explanation": [{"ngram": "sin recibir", "weight": 0.91}, {"ngram": "cuota monetaria", "weight": 0.55}]},
            "area": {"label": "subsidio", "confidence": 0.97, "needs_review": false,
                     "top_k": [{"label": "subsidio", "probability": 0.97}], "explanation": [{"ngram": "cuota", "weight": 1.2}]}
        },
        "route": {"area": "subsidio", "delegate_queue": "subsidio-monetario", "due_at": "2026-03-24T23:59:59.000-05:00",
                  "priority": "normal", "escalate": false, "human_review": true},
        "corrections": [{"feedback_id": 7, "head": "area", "predicted_label": "subsidio", "correct_label": "subsidio",
                         "agrees": true, "reviewer": "ana.qa", "note": null, "created_at": "2026-03-03T10:02:11.532-05:00"}]
    })
}

fn review_schemas() -> Value {
    json!({
        "FeedbackRequest": {
            "type": "object", "additionalProperties": false, "required": ["id", "head", "correct_label", "reviewer"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS,
                       "description": "Id of a classified comment: the id sent with it, or the one the answer carried."},
                "head": {"type": "string", "description": "A head of the served model (GET /v1/model)."},
                "correct_label": {"type": "string", "description": "One of the head's labels (case, accents and spaces are forgiven)."},
                "reviewer": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
                "note": {"type": ["string", "null"], "maxLength": MAX_NOTE_CHARS, "description": "Stored masked."}
            }
        },
        "FeedbackResponse": {
            "type": "object",
            "required": ["feedback_id", "id", "head", "predicted_label", "correct_label", "agrees", "reviewer", "note", "created_at"],
            "properties": {
                "feedback_id": {"type": "integer", "description": "Increases in the order corrections are stored."},
                "id": {"type": "string"}, "head": {"type": "string"},
                "predicted_label": {"type": "string", "description": "The head's label in the logged prediction."},
                "correct_label": {"type": "string"},
                "agrees": {"type": "boolean", "description": "correct_label == predicted_label."},
                "reviewer": {"type": "string"}, "note": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"}
            }
        },
        "Correction": {
            "type": "object",
            "required": ["feedback_id", "head", "predicted_label", "correct_label", "agrees", "reviewer", "note", "created_at"],
            "properties": {
                "feedback_id": {"type": "integer"}, "head": {"type": "string"}, "predicted_label": {"type": "string"},
                "correct_label": {"type": "string"}, "agrees": {"type": "boolean"}, "reviewer": {"type": "string"},
                "note": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"}
            }
        },
        "ReviewItem": {
            "type": "object",
            "required": ["id", "received_at", "channel", "text", "model", "uncertainty", "heads", "route", "corrections"],
            "properties": {
                "id": {"type": "string"},
                "received_at": {"type": "string", "format": "date-time"},
                "channel": {"type": ["string", "null"]},
                "text": {"type": "string", "description": "The comment with personal data masked."},
                "model": {"type": "string", "description": "Model that classified it."},
                "uncertainty": {"type": "number", "description": "Smallest margin p1 - p2 over the heads (the head's margin when the queue is filtered by head); lower is more uncertain."},
                "heads": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/HeadAnswer"}},
                "route": {"type": ["object", "null"], "description": "area, delegate_queue, due_at, priority, escalate, human_review."},
                "corrections": {"type": "array", "items": {"$ref": "#/components/schemas/Correction"}}
            }
        },
        "ReviewQueue": {
            "type": "object", "required": ["items", "total"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/ReviewItem"}},
                "total": {"type": "integer", "description": "Items matching the filter, all pages."}
            }
        },
        "ReviewStats": {
            "type": "object", "required": ["corrections_per_day", "agreement", "predictions_logged", "pending_review"],
            "properties": {
                "corrections_per_day": {"type": "array", "items": {"type": "object", "required": ["day", "count"],
                    "properties": {"day": {"type": "string", "format": "date"}, "count": {"type": "integer"}}}},
                "agreement": {"type": "object", "description": "Per head: the latest correction of each reviewed prediction.",
                    "additionalProperties": {"type": "object", "required": ["reviewed", "agreed", "rate"], "properties": {
                        "reviewed": {"type": "integer"}, "agreed": {"type": "integer"},
                        "rate": {"type": ["number", "null"], "description": "agreed / reviewed; null before the first review."}}}},
                "predictions_logged": {"type": "integer"},
                "pending_review": {"type": "integer", "description": "Predictions with a head not yet corrected."}
            }
        }
    })
}

fn add_review(document: &mut Value) {
    let query = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let mut feedback_responses = serde_json::Map::new();
    feedback_responses.insert(
        "201".into(),
        ok_json(
            "Stored and committed.",
            "FeedbackResponse",
            json!({"feedback_id": 8, "id": "PQRS-2026-000123", "head": "type", "predicted_label": "reclamo",
                   "correct_label": "queja", "agrees": false, "reviewer": "ana.qa", "note": "pide trato digno, no un pago",
                   "created_at": "2026-03-03T10:04:52.118-05:00"}),
        ),
    );
    feedback_responses.extend(error_responses(&codes(&[
        &BODY,
        &REVIEW,
        &[
            ErrorCode::InvalidValue,
            ErrorCode::UnknownId,
            ErrorCode::UnknownHead,
            ErrorCode::UnknownLabel,
        ],
        &GUARDED,
    ])));
    let paths = json!({
        "/v1/feedback": {"post": {
            "operationId": "feedback",
            "summary": "Correct (or confirm) one head of a logged prediction; every correction is kept",
            "description": "The 201 is sent once the correction is committed. A comment classified before this request \
                is found even if the log writer had not written it yet.",
            "security": [{"bearer": []}],
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/FeedbackRequest"},
                "examples": {"example": {"value": {"id": "PQRS-2026-000123", "head": "type", "correct_label": "queja",
                                                   "reviewer": "ana.qa", "note": "pide trato digno, no un pago"}}}
            }}},
            "responses": Value::Object(feedback_responses),
        }},
        "/v1/review/queue": {"get": {
            "operationId": "reviewQueue",
            "summary": "Logged predictions not yet corrected on every head, most uncertain first (active learning)",
            "security": [{"bearer": []}],
            "parameters": [
                query("head", "Only this head: ordered by its margin; items whose head is corrected are left out.", json!({"type": "string"})),
                query("label", "Only items with this label on head (or on any head).", json!({"type": "string"})),
                query("area", "Only this area.", json!({"type": "string"})),
                query("from", "Received on or after this date (the date written in received_at).", json!({"type": "string", "format": "date"})),
                query("to", "Received on or before this date.", json!({"type": "string", "format": "date"})),
                query("limit", "Items per page.", json!({"type": "integer", "minimum": 1, "maximum": MAX_QUEUE_LIMIT, "default": DEFAULT_QUEUE_LIMIT})),
                query("offset", "Items skipped.", json!({"type": "integer", "minimum": 0, "default": 0}))
            ],
            "responses": responses(
                ok_json("One page of the queue.", "ReviewQueue", json!({"items": [review_item_example()], "total": 214})),
                error_responses(&codes(&[&REVIEW, &[ErrorCode::InvalidValue, ErrorCode::UnknownField, ErrorCode::UnknownHead], &GUARDED])),
            ),
        }},
        "/v1/review/stats": {"get": {
            "operationId": "reviewStats",
            "summary": "Corrections per day, agreement per head, predictions logged and pending review",
            "security": [{"bearer": []}],
            "responses": responses(
                ok_json("The dashboard figures.", "ReviewStats", json!({
                    "corrections_per_day": [{"day": "2026-03-02", "count": 31}, {"day": "2026-03-03", "count": 12}],
                    "agreement": {"type": {"reviewed": 40, "agreed": 33, "rate": 0.825},
                                  "theme": {"reviewed": 0, "agreed": 0, "rate": null}},
                    "predictions_logged": 5120, "pending_review": 4977
                })),
                error_responses(&codes(&[&REVIEW, &GUARDED])),
            ),
        }}
    });
    if let (Some(all), Value::Object(review)) = (document["paths"].as_object_mut(), paths) {
        all.extend(review);
    }
    if let (Some(all), Value::Object(review)) = (
        document["components"]["schemas"].as_object_mut(),
        review_schemas(),
    ) {
        all.extend(review);
    }
}
