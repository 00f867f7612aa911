//! The taxonomy a caja classifies against: comment types, areas, themes and response terms, read from TOML.
//!
//! The taxonomy is data, not code, so that a caja can pass its own file. Parsing happens from a string (this crate
//! never touches the file system); `datasets` owns the shipped file and reads it from disk.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::routing::escalation::{CuePattern, Priority};

/// Errors found while parsing or validating a taxonomy; each names the offending entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaxonomyError {
    /// The text is not valid TOML or does not have the taxonomy's shape.
    #[error("taxonomy is not valid TOML: {0}")]
    Syntax(String),
    /// Two entries of the same kind share an id.
    #[error("duplicate {kind} id `{id}`")]
    DuplicateId {
        /// `type`, `area` or `theme`.
        kind: &'static str,
        /// The repeated id.
        id: String,
    },
    /// A theme names an area that the file does not define.
    #[error("theme `{theme}` names unknown area `{area}`")]
    UnknownArea {
        /// The theme's id.
        theme: String,
        /// The area it names.
        area: String,
    },
    /// A response term is zero.
    #[error("{entry}: term must be positive, got {value}")]
    NonPositiveTerm {
        /// Which entry holds the term (`type peticion`, `terms.consulta_business_days`, ...).
        entry: String,
        /// The value found.
        value: u32,
    },
    /// An id is empty or has characters other than `a-z`, `0-9` and `_`.
    #[error("{kind} id `{id}` must be non-empty lower-case ascii letters, digits or `_`")]
    BadId {
        /// `type`, `area` or `theme`.
        kind: &'static str,
        /// The offending id.
        id: String,
    },
    /// The file defines no entry of a required kind.
    #[error("taxonomy defines no {0}")]
    Empty(&'static str),
    /// Any other inconsistency, with a message naming the entry.
    #[error("{0}")]
    Invalid(String),
}

/// A validated taxonomy. Construct it with [`Taxonomy::from_toml_str`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    /// Short id of the taxonomy (e.g. `comfama`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Revision of the file, bumped by whoever edits it.
    pub version: u32,
    /// Legal and internal response terms that do not belong to a single type.
    pub terms: Terms,
    /// The comment types (petición, queja, ...), in display order.
    pub types: Vec<CommentType>,
    /// The areas that answer comments, in display order.
    pub areas: Vec<Area>,
    /// The themes, each belonging to one area.
    pub themes: Vec<Theme>,
    /// Escalation rules for routing; optional so that taxonomies written before routing still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

/// The `[escalation]` section: parameters of the routing rules, evaluated in the order of the fields.
///
/// Cue syntax: words separated by spaces, compared with the text after folding case and accents. Each word must match
/// a whole word; a word ending in `*` matches any word that starts with it (at least three letters before the `*`);
/// a word of six or more characters without `*` also matches a word one typo away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Health-risk cues: they escalate anywhere and set the risk level of comments in health areas.
    pub health_risk: HealthRiskRule,
    /// Threats of legal action or of going to a supervisor or the media.
    pub legal_threat: CueRule,
    /// The client says they have already written or called about the same matter.
    pub repeated_contact: CueRule,
    /// A queja or reclamo from an employer (aportante).
    pub employer_complaint: EmployerComplaintRule,
    /// Low confidence or a review flag from the classifier.
    pub human_review: HumanReviewRule,
}

/// Health-risk cues by Supersalud risk level; a health-area comment without any cue is riesgo simple.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthRiskRule {
    /// Priority of a comment with a riesgo vital cue.
    pub vital_priority: Priority,
    /// Cues of riesgo vital (no medicine, surgery, emergency, ...).
    pub vital_cues: Vec<String>,
    /// Priority of a comment with a riesgo priorizado cue.
    pub priorizado_priority: Priority,
    /// Cues of riesgo priorizado (pregnancy, minors, disability, ...).
    pub priorizado_cues: Vec<String>,
}

/// A rule that fires when any of its cues is found in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueRule {
    /// Priority of a comment on which the rule fires.
    pub priority: Priority,
    /// Cue phrases.
    pub cues: Vec<String>,
}

/// Fires for a comment of one of `types` whose client type is one of `client_types` or whose area is one of `areas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmployerComplaintRule {
    /// Priority of a comment on which the rule fires.
    pub priority: Priority,
    /// Client types of the intake that denote an employer, compared after folding (`empresa`, `aportante`).
    pub client_types: Vec<String>,
    /// Areas whose comments come from employers.
    pub areas: Vec<String>,
    /// Comment types that count as a complaint.
    pub types: Vec<String>,
}

/// Sends a comment to a person when the classifier is unsure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanReviewRule {
    /// Priority of a comment on which only this rule fires.
    pub priority: Priority,
    /// A type or area confidence below this, in `(0, 1)`, asks for review.
    pub low_confidence_threshold: f32,
}

/// Response terms shared by several types (Ley 1755 de 2015; Supersalud for health risk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Requests for documents or information (art. 14: 10 días hábiles).
    pub information_business_days: u32,
    /// Consultas (art. 14: 30 días hábiles).
    pub consulta_business_days: u32,
    /// Forwarding a petition outside the caja's competence (art. 21: 5 días hábiles).
    pub forwarding_business_days: u32,
    /// Acknowledgement of a comment that has no legal term (felicitaciones).
    pub acknowledgement_business_days: u32,
    /// The notice that a term cannot be met is due this many business days before the term expires.
    pub delay_notice_lead_business_days: u32,
    /// Health-risk terms in hours for the health areas (Supersalud).
    pub health_risk_hours: HealthRiskHours,
}

/// Hours to answer health comments by risk level (Supersalud Circular Externa 2023151000000010-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthRiskHours {
    /// Riesgo vital.
    pub vital: u32,
    /// Riesgo priorizado.
    pub priorizado: u32,
    /// Riesgo simple.
    pub simple: u32,
}

/// One comment type with its definition and legal term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentType {
    /// Stable id used as a label (`peticion`, `queja`, ...).
    pub id: String,
    /// Display name in Spanish.
    pub name: String,
    /// What makes a comment this type.
    pub definition: String,
    /// Response term in business days; `None` when the type has no legal term (felicitación).
    #[serde(default)]
    pub term_business_days: Option<u32>,
}

/// An area of the caja that answers comments, with the queue of its delegates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Stable id used as a label (`subsidio`, `ips_salud`, ...).
    pub id: String,
    /// Display name in Spanish.
    pub name: String,
    /// The queue of delegates that receives the area's comments at once.
    pub delegate_queue: String,
    /// Whether health-risk terms in hours apply (EPS and IPS areas).
    #[serde(default)]
    pub health: bool,
}

/// A client-oriented theme within one area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    /// Stable id used as a label, unique across areas.
    pub id: String,
    /// Id of the area the theme belongs to.
    pub area: String,
    /// Display name in Spanish.
    pub name: String,
    /// One-line definition.
    pub definition: String,
    /// Example phrases a comment about this theme may contain.
    #[serde(default)]
    pub examples: Vec<String>,
}

impl Taxonomy {
    /// Parses and validates a taxonomy from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, TaxonomyError> {
        let taxonomy: Taxonomy =
            toml::from_str(text).map_err(|e| TaxonomyError::Syntax(e.to_string()))?;
        taxonomy.validate()?;
        Ok(taxonomy)
    }

    /// Checks unique ids, well-formed ids, that every theme's area exists, that every term is positive and, when
    /// present, that the escalation section is usable (see [`Taxonomy::validate_escalation`]).
    pub fn validate(&self) -> Result<(), TaxonomyError> {
        if self.types.is_empty() {
            return Err(TaxonomyError::Empty("types"));
        }
        if self.areas.is_empty() {
            return Err(TaxonomyError::Empty("areas"));
        }
        check_ids("type", self.types.iter().map(|t| t.id.as_str()))?;
        check_ids("area", self.areas.iter().map(|a| a.id.as_str()))?;
        check_ids("theme", self.themes.iter().map(|t| t.id.as_str()))?;
        for theme in &self.themes {
            if self.area(&theme.area).is_none() {
                return Err(TaxonomyError::UnknownArea {
                    theme: theme.id.clone(),
                    area: theme.area.clone(),
                });
            }
        }
        for ty in &self.types {
            if let Some(0) = ty.term_business_days {
                return Err(TaxonomyError::NonPositiveTerm {
                    entry: format!("type {}", ty.id),
                    value: 0,
                });
            }
        }
        let t = &self.terms;
        for (entry, value) in [
            (
                "terms.information_business_days",
                t.information_business_days,
            ),
            ("terms.consulta_business_days", t.consulta_business_days),
            ("terms.forwarding_business_days", t.forwarding_business_days),
            (
                "terms.acknowledgement_business_days",
                t.acknowledgement_business_days,
            ),
            ("terms.health_risk_hours.vital", t.health_risk_hours.vital),
            (
                "terms.health_risk_hours.priorizado",
                t.health_risk_hours.priorizado,
            ),
            ("terms.health_risk_hours.simple", t.health_risk_hours.simple),
        ] {
            if value == 0 {
                return Err(TaxonomyError::NonPositiveTerm {
                    entry: entry.to_string(),
                    value,
                });
            }
        }
        self.validate_escalation()
    }

    /// Checks the escalation section: every cue list non-empty and every cue well formed, the threshold strictly
    /// between 0 and 1, and the employer rule naming known areas and types. Passes when there is no section.
    pub fn validate_escalation(&self) -> Result<(), TaxonomyError> {
        let Some(escalation) = &self.escalation else {
            return Ok(());
        };
        let cue_lists = [
            (
                "escalation.health_risk.vital_cues",
                &escalation.health_risk.vital_cues,
            ),
            (
                "escalation.health_risk.priorizado_cues",
                &escalation.health_risk.priorizado_cues,
            ),
            (
                "escalation.legal_threat.cues",
                &escalation.legal_threat.cues,
            ),
            (
                "escalation.repeated_contact.cues",
                &escalation.repeated_contact.cues,
            ),
            (
                "escalation.employer_complaint.client_types",
                &escalation.employer_complaint.client_types,
            ),
        ];
        for (entry, cues) in cue_lists {
            if cues.is_empty() {
                return Err(TaxonomyError::Invalid(format!("{entry} must not be empty")));
            }
            for cue in cues {
                CuePattern::parse(cue)
                    .map_err(|why| TaxonomyError::Invalid(format!("{entry}: {why}")))?;
            }
        }
        let employer = &escalation.employer_complaint;
        if employer.types.is_empty() {
            return Err(TaxonomyError::Invalid(
                "escalation.employer_complaint.types must not be empty".into(),
            ));
        }
        for area in &employer.areas {
            if self.area(area).is_none() {
                return Err(TaxonomyError::Invalid(format!(
                    "escalation.employer_complaint.areas names unknown area `{area}`"
                )));
            }
        }
        for ty in &employer.types {
            if self.comment_type(ty).is_none() {
                return Err(TaxonomyError::Invalid(format!(
                    "escalation.employer_complaint.types names unknown type `{ty}`"
                )));
            }
        }
        let threshold = escalation.human_review.low_confidence_threshold;
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(TaxonomyError::Invalid(format!(
                "escalation.human_review.low_confidence_threshold must be in (0, 1), got {threshold}"
            )));
        }
        Ok(())
    }

    /// The type with this id.
    pub fn comment_type(&self, id: &str) -> Option<&CommentType> {
        self.types.iter().find(|t| t.id == id)
    }

    /// The area with this id.
    pub fn area(&self, id: &str) -> Option<&Area> {
        self.areas.iter().find(|a| a.id == id)
    }

    /// The theme with this id.
    pub fn theme(&self, id: &str) -> Option<&Theme> {
        self.themes.iter().find(|t| t.id == id)
    }

    /// The themes of one area, in file order.
    pub fn themes_of<'a>(&'a self, area: &'a str) -> impl Iterator<Item = &'a Theme> + 'a {
        self.themes.iter().filter(move |t| t.area == area)
    }
}

fn check_ids<'a>(
    kind: &'static str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), TaxonomyError> {
    let mut seen = HashSet::new();
    for id in ids {
        let well_formed = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(TaxonomyError::BadId {
                kind,
                id: id.to_string(),
            });
        }
        if !seen.insert(id) {
            return Err(TaxonomyError::DuplicateId {
                kind,
                id: id.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id = "t"
name = "test"
version = 1
[terms]
information_business_days = 10
consulta_business_days = 30
forwarding_business_days = 5
acknowledgement_business_days = 5
delay_notice_lead_business_days = 2
[terms.health_risk_hours]
vital = 24
priorizado = 48
simple = 72
[[types]]
id = "queja"
name = "Queja"
definition = "conducta"
term_business_days = 15
[[areas]]
id = "subsidio"
name = "Subsidio"
delegate_queue = "q"
[[themes]]
id = "cuota"
area = "subsidio"
name = "Cuota"
definition = "pago"
"#;

    const ESCALATION: &str = r#"
[escalation.health_risk]
vital_priority = "urgente"
vital_cues = ["sin medicament*"]
priorizado_priority = "alta"
priorizado_cues = ["embaraz*"]
[escalation.legal_threat]
priority = "urgente"
cues = ["tutela"]
[escalation.repeated_contact]
priority = "alta"
cues = ["otra vez"]
[escalation.employer_complaint]
priority = "alta"
client_types = ["empresa"]
areas = ["subsidio"]
types = ["queja"]
[escalation.human_review]
priority = "normal"
low_confidence_threshold = 0.5
"#;

    fn check_escalation_err(edit: (&str, &str), expected: &str) {
        let text = format!("{MINIMAL}{}", ESCALATION.replacen(edit.0, edit.1, 1));
        let err = Taxonomy::from_toml_str(&text).expect_err("edited escalation must be rejected");
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn escalation_section_is_optional_and_validated() {
        let without = Taxonomy::from_toml_str(MINIMAL).expect("no section is valid");
        assert!(without.escalation.is_none());
        let with = Taxonomy::from_toml_str(&format!("{MINIMAL}{ESCALATION}"))
            .expect("minimal escalation is valid");
        let escalation = with.escalation.expect("section was given");
        assert_eq!(escalation.legal_threat.priority, Priority::Urgente);
        assert_eq!(escalation.human_review.low_confidence_threshold, 0.5);

        check_escalation_err(
            ("cues = [\"tutela\"]", "cues = []"),
            "escalation.legal_threat.cues must not be empty",
        );
        check_escalation_err(
            (
                "vital_cues = [\"sin medicament*\"]",
                "vital_cues = [\" ¿? \"]",
            ),
            "escalation.health_risk.vital_cues: cue ` ¿? ` has no letters or digits",
        );
        check_escalation_err(
            ("[\"embaraz*\"]", "[\"em*\"]"),
            "escalation.health_risk.priorizado_cues: cue `em*`: a prefix needs at least 3 letters before `*`",
        );
        check_escalation_err(
            ("threshold = 0.5", "threshold = 1.0"),
            "escalation.human_review.low_confidence_threshold must be in (0, 1), got 1",
        );
        check_escalation_err(
            ("threshold = 0.5", "threshold = 0.0"),
            "escalation.human_review.low_confidence_threshold must be in (0, 1), got 0",
        );
        check_escalation_err(
            ("areas = [\"subsidio\"]", "areas = [\"empresas\"]"),
            "escalation.employer_complaint.areas names unknown area `empresas`",
        );
        check_escalation_err(
            ("types = [\"queja\"]", "types = [\"reclamo\"]"),
            "escalation.employer_complaint.types names unknown type `reclamo`",
        );
        let unknown_priority = format!(
            "{MINIMAL}{}",
            ESCALATION.replacen("priority = \"alta\"", "priority = \"maxima\"", 1)
        );
        let err = Taxonomy::from_toml_str(&unknown_priority).expect_err("unknown priority");
        assert!(
            err.to_string().contains("unknown variant `maxima`"),
            "{err}"
        );
    }

    fn check_err(edit: (&str, &str), expected: &str) {
        let text = MINIMAL.replacen(edit.0, edit.1, 1);
        let err = Taxonomy::from_toml_str(&text).expect_err("edited taxonomy must be rejected");
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn minimal_taxonomy_loads() {
        let t = Taxonomy::from_toml_str(MINIMAL).expect("minimal taxonomy is valid");
        assert_eq!(t.themes_of("subsidio").count(), 1);
        assert_eq!(
            t.comment_type("queja").and_then(|q| q.term_business_days),
            Some(15)
        );
    }

    #[test]
    fn invalid_entries_are_named() {
        check_err(
            ("area = \"subsidio\"", "area = \"salud\""),
            "theme `cuota` names unknown area `salud`",
        );
        check_err(
            ("term_business_days = 15", "term_business_days = 0"),
            "type queja: term must be positive, got 0",
        );
        check_err(
            ("vital = 24", "vital = 0"),
            "terms.health_risk_hours.vital: term must be positive, got 0",
        );
        check_err(
            ("id = \"cuota\"", "id = \"Cuota Mal\""),
            "theme id `Cuota Mal` must be non-empty lower-case ascii letters, digits or `_`",
        );
        let unknown = MINIMAL.replacen("id = \"cuota\"", "id = \"cuota\"\nfoo = 1", 1);
        let err = Taxonomy::from_toml_str(&unknown).expect_err("unknown field must be rejected");
        assert!(err.to_string().contains("unknown field `foo`"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = format!(
            "{MINIMAL}\n[[themes]]\nid = \"cuota\"\narea = \"subsidio\"\nname = \"x\"\ndefinition = \"y\"\n"
        );
        let err = Taxonomy::from_toml_str(&text).expect_err("duplicate theme");
        assert_eq!(
            err,
            TaxonomyError::DuplicateId {
                kind: "theme",
                id: "cuota".into()
            }
        );
    }
}
