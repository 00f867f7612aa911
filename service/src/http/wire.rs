//! Wire types: what goes in and out of the HTTP API as JSON. They are converted by hand from the domain types of
//! `models`, so that a change inside the model cannot silently change the API. Requests deny unknown fields.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use models::routing::{HealthRisk, Priority, Reason, Route, RuleId, TermBasis};
use models::{HeadPrediction, Prediction};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::error::ApiError;

/// `POST /v1/classify`, and each item of a batch or line of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The comment.
    pub text: String,
    /// The caller's id of the comment, echoed back.
    #[serde(default)]
    pub id: Option<String>,
    /// Intake channel (`web`, `email`, `presencial`, ...), echoed back.
    #[serde(default)]
    pub channel: Option<String>,
    /// Client type (`afiliado`, `empresa`, ...), used by the employer-complaint rule.
    #[serde(default)]
    pub client_type: Option<String>,
    /// When the comment was received, RFC 3339; defaults to now in Colombia (`-05:00`).
    #[serde(default)]
    pub received_at: Option<String>,
    /// Labels in each head's `top_k` (1 to 20, default 3).
    #[serde(default)]
    pub top_k: Option<u32>,
}

/// `POST /v1/classify/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The items; each is checked on its own, so one bad item does not fail the batch.
    pub items: Vec<serde_json::Value>,
}

/// `POST /v1/admin/reload` (the body is optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    /// Model file to serve from now on; defaults to the file of the served model.
    #[serde(default)]
    pub path: Option<String>,
}

/// One label and its probability.
#[derive(Debug, Serialize)]
pub struct ScoredLabel {
    /// Label id.
    pub label: String,
    /// Calibrated probability.
    pub probability: f32,
}

/// One n-gram that supported the chosen label.
#[derive(Debug, Serialize)]
pub struct EvidenceItem {
    /// The n-gram after normalisation.
    pub ngram: String,
    /// Its contribution to the label's logit.
    pub weight: f32,
}

/// The answer of one head.
#[derive(Debug, Serialize)]
pub struct HeadAnswer {
    /// Chosen label.
    pub label: String,
    /// Calibrated probability of the label.
    pub confidence: f32,
    /// Most probable labels, chosen label first.
    pub top_k: Vec<ScoredLabel>,
    /// The confidence is below the label's review threshold.
    pub needs_review: bool,
    /// N-grams that supported the label, strongest first.
    pub explanation: Vec<EvidenceItem>,
}

impl From<HeadPrediction> for HeadAnswer {
    fn from(head: HeadPrediction) -> Self {
        Self {
            label: head.label,
            confidence: head.confidence,
            top_k: head
                .top_k
                .into_iter()
                .map(|s| ScoredLabel {
                    label: s.label,
                    probability: s.probability,
                })
                .collect(),
            needs_review: head.needs_review,
            explanation: head
                .explanation
                .into_iter()
                .map(|e| EvidenceItem {
                    ngram: e.ngram,
                    weight: e.weight,
                })
                .collect(),
        }
    }
}

/// Head answers keyed by head name, in the model's head order.
#[derive(Debug)]
pub struct Heads(pub Vec<(String, HeadAnswer)>);

impl Serialize for Heads {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, answer) in &self.0 {
            map.serialize_entry(name, answer)?;
        }
        map.end()
    }
}

impl From<Prediction> for Heads {
    fn from(prediction: Prediction) -> Self {
        Heads(
            prediction
                .heads
                .into_iter()
                .map(|mut h| (std::mem::take(&mut h.head), HeadAnswer::from(h)))
                .collect(),
        )
    }
}

/// Why a routing rule fired.
#[derive(Debug, Serialize)]
pub struct RouteReason {
    /// Rule id (`riesgo_salud`, `amenaza_legal`, `contacto_repetido`, `queja_empleador`, `revision_humana`).
    pub rule: &'static str,
    /// What the rule found.
    pub detail: String,
}

/// Why the term applies.
#[derive(Debug, Serialize)]
pub struct TermBasisAnswer {
    /// `comment_type`, `information`, `consulta`, `forwarding`, `acknowledgement`, `health_risk` or `unknown_type`.
    pub basis: &'static str,
    /// The type or risk level the basis refers to, when it refers to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where the comment goes and by when it must be answered.
#[derive(Debug, Serialize)]
pub struct RouteAnswer {
    /// A rule fired.
    pub escalate: bool,
    /// A person must check the classification.
    pub human_review: bool,
    /// `normal`, `alta` or `urgente`.
    pub priority: &'static str,
    /// One entry per rule that fired, in rule order.
    pub reasons: Vec<RouteReason>,
    /// Comment type used for the term.
    pub comment_type: Option<String>,
    /// Area.
    pub area: Option<String>,
    /// Delegates' queue of the area.
    pub delegate_queue: Option<String>,
    /// Supersalud risk level (`simple`, `priorizado`, `vital`) for health comments.
    pub health_risk: Option<&'static str>,
    /// Why the term applies.
    pub term_basis: TermBasisAnswer,
    /// The term in words.
    pub term: String,
    /// End of the term, RFC 3339.
    pub due_at: String,
    /// Latest moment to announce a delay, when one is owed.
    pub notice_due_at: Option<String>,
}

fn rule_name(rule: RuleId) -> &'static str {
    match rule {
        RuleId::RiesgoSalud => "riesgo_salud",
        RuleId::AmenazaLegal => "amenaza_legal",
        RuleId::ContactoRepetido => "contacto_repetido",
        RuleId::QuejaEmpleador => "queja_empleador",
        RuleId::RevisionHumana => "revision_humana",
    }
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Normal => "normal",
        Priority::Alta => "alta",
        Priority::Urgente => "urgente",
    }
}

fn risk_name(risk: HealthRisk) -> &'static str {
    match risk {
        HealthRisk::Simple => "simple",
        HealthRisk::Priorizado => "priorizado",
        HealthRisk::Vital => "vital",
    }
}

fn term_basis(basis: TermBasis) -> TermBasisAnswer {
    let (basis, detail) = match basis {
        TermBasis::CommentType(name) => ("comment_type", Some(name)),
        TermBasis::Information => ("information", None),
        TermBasis::Consulta => ("consulta", None),
        TermBasis::Forwarding => ("forwarding", None),
        TermBasis::Acknowledgement => ("acknowledgement", None),
        TermBasis::HealthRisk(risk) => ("health_risk", Some(risk_name(risk).to_string())),
        TermBasis::UnknownType => ("unknown_type", None),
    };
    TermBasisAnswer { basis, detail }
}

/// Formats a time as RFC 3339 with milliseconds.
pub fn timestamp(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

impl From<Route> for RouteAnswer {
    fn from(route: Route) -> Self {
        Self {
            escalate: route.escalate,
            human_review: route.human_review,
            priority: priority_name(route.priority),
            reasons: route
                .reasons
                .into_iter()
                .map(|Reason { rule, detail }| RouteReason {
                    rule: rule_name(rule),
                    detail,
                })
                .collect(),
            comment_type: route.comment_type,
            area: route.area,
            delegate_queue: route.delegate_queue,
            health_risk: route.health_risk.map(risk_name),
            term_basis: term_basis(route.term_basis),
            term: route.term,
            due_at: timestamp(route.due_at),
            notice_due_at: route.notice_due_at.map(timestamp),
        }
    }
}

/// The answer of `POST /v1/classify`.
#[derive(Debug, Serialize)]
pub struct ClassifyResponse {
    /// The caller's id, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The caller's channel, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Id of the model that answered.
    pub model: String,
    /// When the server answered, RFC 3339 in Colombia's offset.
    pub server_time: String,
    /// When the comment was received (as sent, or the server time).
    pub received_at: String,
    /// At least one head asks for review.
    pub needs_review: bool,
    /// Which tier answered.
    pub tier: super::cascade::Tier,
    /// One answer per head.
    pub heads: Heads,
    /// The route, when the model carries a taxonomy with routing rules; otherwise `null`.
    pub route: Option<RouteAnswer>,
}

/// One item of a batch or one line of a stream: `{"index", "result"}` or `{"index", "error"}`.
#[derive(Debug)]
pub struct ItemAnswer<'a> {
    /// Position of the item in the batch, or 0-based number of the line in the stream.
    pub index: usize,
    /// The answer or the error of this item alone.
    pub outcome: &'a Result<ClassifyResponse, ApiError>,
}

impl Serialize for ItemAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("index", &self.index)?;
        match self.outcome {
            Ok(result) => map.serialize_entry("result", result)?,
            Err(error) => map.serialize_entry("error", &error.body())?,
        }
        map.end()
    }
}

/// The answer of `POST /v1/classify/batch`.
#[derive(Debug)]
pub struct BatchResponse {
    /// Id of the model that answered every item.
    pub model: String,
    /// When the server answered.
    pub server_time: String,
    /// One outcome per item, in order.
    pub outcomes: Vec<Result<ClassifyResponse, ApiError>>,
}

impl Serialize for BatchResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let failed = self.outcomes.iter().filter(|o| o.is_err()).count();
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("model", &self.model)?;
        map.serialize_entry("server_time", &self.server_time)?;
        map.serialize_entry("succeeded", &(self.outcomes.len() - failed))?;
        map.serialize_entry("failed", &failed)?;
        let items: Vec<ItemAnswer<'_>> = self
            .outcomes
            .iter()
            .enumerate()
            .map(|(index, outcome)| ItemAnswer { index, outcome })
            .collect();
        map.serialize_entry("results", &items)?;
        map.end()
    }
}

/// A head of the served model, for `GET /v1/model`.
#[derive(Debug, Serialize)]
pub struct HeadInfo {
    /// Head name.
    pub name: String,
    /// Its labels.
    pub labels: Vec<String>,
    /// The head whose label constrains this one's, if any.
    pub parent: Option<String>,
}

/// The taxonomy of the served model, for `GET /v1/model`.
#[derive(Debug, Serialize)]
pub struct TaxonomyInfo {
    /// Taxonomy id.
    pub id: String,
    /// Taxonomy name.
    pub name: String,
    /// Taxonomy version.
    pub version: u32,
}

/// The answer of `GET /v1/model`.
#[derive(Debug, Serialize)]
pub struct ModelResponse {
    /// Short id of the model (checksum prefix); the `model` field of every answer.
    pub id: String,
    /// Version of pqrs that trained the model.
    pub pqrs_version: String,
    /// When the model was trained.
    pub created_at: String,
    /// Heads and their labels.
    pub heads: Vec<HeadInfo>,
    /// The taxonomy, when the model carries one.
    pub taxonomy: Option<TaxonomyInfo>,
    /// Routes are computed for answers.
    pub routing: bool,
    /// Validation metrics per head, as recorded at training time.
    pub metrics: serde_json::Value,
    /// Size of the training data, as recorded at training time.
    pub training: TrainingInfo,
    /// Parent model and comparison of a retrained model (`pqrs retrain`); null for a first-generation model.
    pub lineage: Option<LineageInfo>,
}

/// Where a retrained model comes from, for `GET /v1/model`.
#[derive(Debug, Serialize)]
pub struct LineageInfo {
    /// Id of the model it was compared with and replaced.
    pub parent: String,
    /// Corrections it was trained or judged with.
    pub feedback: u64,
    /// The comparison found it not worse than the parent.
    pub promoted: bool,
    /// Written although not promoted.
    pub forced: bool,
    /// Why it was, or was not, promoted.
    pub reason: String,
    /// Per-head metrics of both models on the held-out data, and the per-class F1 changes.
    pub comparison: serde_json::Value,
}

/// Training facts recorded in the model.
#[derive(Debug, Serialize)]
pub struct TrainingInfo {
    /// Comments in the training data.
    pub n_comments: Option<u64>,
    /// Comments the weights were fitted on before refitting.
    pub n_fit: Option<u64>,
    /// Comments held out for validation.
    pub n_validation: Option<u64>,
}

/// The answer of `POST /v1/admin/reload`.
#[derive(Debug, Serialize)]
pub struct ReloadResponse {
    /// Model served before.
    pub previous: String,
    /// Model served now.
    pub model: String,
    /// File it was read from.
    pub path: String,
}

/// The answer of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    /// `ok`, `ready` or `shutting_down`.
    pub status: &'static str,
    /// Id of the served model.
    pub model: String,
}
