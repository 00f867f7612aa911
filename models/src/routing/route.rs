//! Routing one classified comment: escalation rules in order, the delegate queue, the health-risk level and the
//! due dates.
//!
//! Rules, evaluated in this order; each one that fires adds a [`Reason`] and the route takes the highest priority:
//!
//! | rule | fires when |
//! |---|---|
//! | `riesgo_salud` | a health-risk cue is in the text and the type has a legal term (thanks for an emergency service is not a risk) |
//! | `amenaza_legal` | a legal-threat cue (tutela, demanda, Supersalud, abogado, medios) |
//! | `contacto_repetido` | a repeated-contact cue ("otra vez", "tercera vez que llamo") |
//! | `queja_empleador` | the type is a complaint type and the client type or the area denotes an employer |
//! | `revision_humana` | a head is missing or unknown, a type or area confidence is below the threshold, or a head asks for review |
//!
//! In a health area every comment whose type has a legal term gets a Supersalud risk level: the level of its cue, or
//! riesgo simple without one, and its term in hours.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::due::{HealthRisk, PetitionKind, TermBasis, TermQuery, due_for};
use super::escalation::{CompiledRules, Priority};
use crate::prediction::{HeadPrediction, Prediction};
use crate::taxonomy::{Area, CommentType, Taxonomy};

/// Name of the prediction head that holds the comment type.
pub const TYPE_HEAD: &str = "type";
/// Name of the prediction head that holds the area.
pub const AREA_HEAD: &str = "area";

/// Everything routing needs to know about one comment.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// The comment as received (any case, with or without accents).
    pub text: &'a str,
    /// When the caja received it, in the offset of the channel (Colombia is `-05:00`).
    pub received_at: DateTime<FixedOffset>,
    /// Client type from the intake (`afiliado`, `empresa`, `aportante`, ...), if known.
    pub client_type: Option<&'a str>,
    /// The classifier's answer; heads `type` and `area` are read by name.
    pub prediction: &'a Prediction,
    /// What a petición asks for; not predicted, set by the intake form or a delegate.
    pub petition_kind: PetitionKind,
    /// The matter is outside the caja's competence and must be forwarded (art. 21 of Ley 1755 de 2015).
    pub outside_competence: bool,
}

impl<'a> RouteInput<'a> {
    /// An input with no client type, a general petition kind and the matter within the caja's competence.
    pub fn new(
        text: &'a str,
        received_at: DateTime<FixedOffset>,
        prediction: &'a Prediction,
    ) -> Self {
        Self {
            text,
            received_at,
            client_type: None,
            prediction,
            petition_kind: PetitionKind::General,
            outside_competence: false,
        }
    }
}

/// Which rule produced a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// A health-risk cue.
    RiesgoSalud,
    /// A threat of legal action, a supervisor or the media.
    AmenazaLegal,
    /// The client has been in touch before about the same matter.
    ContactoRepetido,
    /// A queja or reclamo from an employer.
    QuejaEmpleador,
    /// The classification needs a person.
    RevisionHumana,
}

/// Why a rule fired, in words a delegate can check against the comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The rule.
    pub rule: RuleId,
    /// What it found (`cue "tutela*" matched "TUTELA"`).
    pub detail: String,
}

/// Where a comment goes, how urgently, and by when it must be answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// True when any rule fired.
    pub escalate: bool,
    /// True when the classification must be checked by a person (rule `revision_humana`).
    pub human_review: bool,
    /// The highest priority among the rules that fired; `normal` when none did.
    pub priority: Priority,
    /// One entry per rule that fired, in rule order.
    pub reasons: Vec<Reason>,
    /// The comment type used for the term, when the type head named a type of the taxonomy.
    pub comment_type: Option<String>,
    /// The area, when the area head named an area of the taxonomy.
    pub area: Option<String>,
    /// The delegates' queue of the area.
    pub delegate_queue: Option<String>,
    /// The Supersalud risk level, for comments in health areas whose type has a legal term.
    pub health_risk: Option<HealthRisk>,
    /// Why the term applies.
    pub term_basis: TermBasis,
    /// The term in words (`15 días hábiles`, `24 horas`).
    pub term: String,
    /// End of the term.
    pub due_at: DateTime<FixedOffset>,
    /// Latest moment to announce that the term cannot be met, when such a notice is owed.
    pub notice_due_at: Option<DateTime<FixedOffset>>,
}

/// Routes one comment. Never fails: missing or unknown heads are reported in the reasons and send the comment to
/// human review, and the term falls back to the shortest petition term.
pub fn route(taxonomy: &Taxonomy, rules: &CompiledRules, input: &RouteInput<'_>) -> Route {
    let scan = rules.scan(input.text);
    let section = rules.section();
    let mut reasons = Vec::new();
    let mut priority = Priority::Normal;
    let mut fire = |rule: RuleId, rule_priority: Priority, detail: String| {
        priority = priority.max(rule_priority);
        reasons.push(Reason { rule, detail });
    };

    let mut review_notes = Vec::new();
    let type_head = read_head(input.prediction, TYPE_HEAD, &mut review_notes);
    let area_head = read_head(input.prediction, AREA_HEAD, &mut review_notes);
    let comment_type =
        type_head.and_then(|h| known(h, taxonomy.comment_type(&h.label), &mut review_notes));
    let area = area_head.and_then(|h| known(h, taxonomy.area(&h.label), &mut review_notes));

    // A type without a legal term (felicitación) carries no risk; an unknown type is treated as a risk to be safe.
    let may_carry_risk = comment_type.is_none_or(|t| t.term_business_days.is_some());
    let cue_risk = rules.health_risk(&scan).filter(|_| may_carry_risk);
    if let Some((level, hit)) = &cue_risk {
        let level_priority = match level {
            HealthRisk::Vital => section.health_risk.vital_priority,
            _ => section.health_risk.priorizado_priority,
        };
        fire(
            RuleId::RiesgoSalud,
            level_priority,
            format!(
                "{}: cue \"{}\" matched \"{}\"",
                level.name(),
                hit.cue,
                hit.found
            ),
        );
    }
    let health_risk = area.filter(|a| a.health && may_carry_risk).map(|_| {
        cue_risk
            .as_ref()
            .map_or(HealthRisk::Simple, |(level, _)| *level)
    });

    if let Some(hit) = rules.legal_threat(&scan) {
        fire(
            RuleId::AmenazaLegal,
            section.legal_threat.priority,
            format!("cue \"{}\" matched \"{}\"", hit.cue, hit.found),
        );
    }
    if let Some(hit) = rules.repeated_contact(&scan) {
        fire(
            RuleId::ContactoRepetido,
            section.repeated_contact.priority,
            format!("cue \"{}\" matched \"{}\"", hit.cue, hit.found),
        );
    }
    if let Some(detail) = employer_complaint(rules, input.client_type, comment_type, area) {
        fire(
            RuleId::QuejaEmpleador,
            section.employer_complaint.priority,
            detail,
        );
    }

    let threshold = section.human_review.low_confidence_threshold;
    for head in [type_head, area_head].into_iter().flatten() {
        if head.confidence < threshold {
            review_notes.push(format!(
                "head `{}` confidence {:.2} for `{}` is below {threshold:.2}",
                head.head, head.confidence, head.label
            ));
        }
    }
    for head in input.prediction.heads.iter().filter(|h| h.needs_review) {
        review_notes.push(format!(
            "head `{}` asks for review of `{}`",
            head.head, head.label
        ));
    }
    let human_review = !review_notes.is_empty();
    if human_review {
        fire(
            RuleId::RevisionHumana,
            section.human_review.priority,
            review_notes.join("; "),
        );
    }

    let due = due_for(
        taxonomy,
        &TermQuery {
            comment_type,
            area,
            health_risk,
            petition_kind: input.petition_kind,
            outside_competence: input.outside_competence,
        },
        input.received_at,
    );
    Route {
        escalate: !reasons.is_empty(),
        human_review,
        priority,
        reasons,
        comment_type: comment_type.map(|t| t.id.clone()),
        area: area.map(|a| a.id.clone()),
        delegate_queue: area.map(|a| a.delegate_queue.clone()),
        health_risk,
        term_basis: due.term.basis,
        term: due.description,
        due_at: due.due_at,
        notice_due_at: due.notice_due_at,
    }
}

fn read_head<'p>(
    prediction: &'p Prediction,
    name: &str,
    notes: &mut Vec<String>,
) -> Option<&'p HeadPrediction> {
    let head = prediction.head(name);
    if head.is_none() {
        notes.push(format!("the prediction has no `{name}` head"));
    }
    head
}

fn known<'t, T>(
    head: &HeadPrediction,
    entry: Option<&'t T>,
    notes: &mut Vec<String>,
) -> Option<&'t T> {
    if entry.is_none() {
        notes.push(format!(
            "head `{}` label `{}` is not in the taxonomy",
            head.head, head.label
        ));
    }
    entry
}

fn employer_complaint(
    rules: &CompiledRules,
    client_type: Option<&str>,
    comment_type: Option<&CommentType>,
    area: Option<&Area>,
) -> Option<String> {
    let rule = &rules.section().employer_complaint;
    let ty = comment_type.filter(|t| rule.types.contains(&t.id))?;
    if let Some(client) = client_type.filter(|c| rules.is_employer_client(c)) {
        return Some(format!("{} from client type `{client}`", ty.id));
    }
    let area = area.filter(|a| rule.areas.contains(&a.id))?;
    Some(format!("{} in area `{}`", ty.id, area.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prediction::HeadPrediction;

    const TAXONOMY: &str = include_str!("../../../datasets/taxonomy/comfama.toml");

    fn setup() -> (Taxonomy, CompiledRules) {
        let taxonomy = Taxonomy::from_toml_str(TAXONOMY).expect("shipped taxonomy is valid");
        let rules = CompiledRules::from_taxonomy(&taxonomy).expect("shipped rules compile");
        (taxonomy, rules)
    }

    fn head(name: &str, label: &str, confidence: f32) -> HeadPrediction {
        HeadPrediction {
            head: name.into(),
            label: label.into(),
            confidence,
            top_k: Vec::new(),
            needs_review: false,
            explanation: Vec::new(),
        }
    }

    fn predicted(ty: &str, area: &str) -> Prediction {
        Prediction {
            heads: vec![head(TYPE_HEAD, ty, 0.9), head(AREA_HEAD, area, 0.9)],
        }
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("test instants are RFC 3339")
    }

    const MONDAY: &str = "2026-06-01T10:00:00-05:00";

    fn route_text(text: &str, prediction: &Prediction) -> Route {
        let (taxonomy, rules) = setup();
        route(
            &taxonomy,
            &rules,
            &RouteInput::new(text, at(MONDAY), prediction),
        )
    }

    fn rules_fired(route: &Route) -> Vec<RuleId> {
        route.reasons.iter().map(|r| r.rule).collect()
    }

    #[test]
    fn plain_reclamo_goes_to_its_area_without_escalation() {
        let r = route_text(
            "no me han pagado la cuota monetaria de mayo",
            &predicted("reclamo", "subsidio"),
        );
        assert!(!r.escalate && !r.human_review, "{r:?}");
        assert_eq!(r.priority, Priority::Normal);
        assert_eq!(r.delegate_queue.as_deref(), Some("delegados-subsidio"));
        assert_eq!(r.term, "15 días hábiles");
        // Monday 1 Jun 2026: 2-5 Jun (4), (8 Jun Corpus), 9-12 (8), (15 Jun Sagrado Corazón), 16-19 (12), 22-24 (15).
        assert_eq!(r.due_at, at("2026-06-24T23:59:59-05:00"));
        assert_eq!(r.notice_due_at, Some(at("2026-06-22T23:59:59-05:00")));
        assert_eq!(r.health_risk, None);
    }

    #[test]
    fn health_risk_cue_sets_level_and_hours_in_health_areas() {
        let r = route_text(
            "LA AFILIADA MANIFIESTA QUE ESTA SIN MEDICAMENTOS PARA LA PRESION HACE 15 DIAS",
            &predicted("reclamo", "eps_subsidiada"),
        );
        assert_eq!(rules_fired(&r), [RuleId::RiesgoSalud]);
        assert_eq!(r.priority, Priority::Urgente);
        assert_eq!(r.health_risk, Some(HealthRisk::Vital));
        assert_eq!(r.term, "24 horas");
        assert_eq!(r.due_at, at("2026-06-02T10:00:00-05:00"));
        assert_eq!(r.notice_due_at, None);
        assert!(
            r.reasons[0].detail.contains("SIN MEDICAMENTOS"),
            "{:?}",
            r.reasons
        );

        let r = route_text(
            "mi hija esta embarazada y no le dan cita con el ginecologo",
            &predicted("queja", "ips_salud"),
        );
        assert_eq!(r.health_risk, Some(HealthRisk::Priorizado));
        assert_eq!(r.priority, Priority::Alta);
        assert_eq!(r.term, "48 horas");

        // A health-area comment without a cue is riesgo simple and does not escalate.
        let r = route_text(
            "la sala de espera estaba muy sucia",
            &predicted("queja", "ips_salud"),
        );
        assert!(!r.escalate);
        assert_eq!(r.health_risk, Some(HealthRisk::Simple));
        assert_eq!(r.term, "72 horas");
    }

    #[test]
    fn health_risk_cue_outside_health_areas_escalates_without_hours() {
        let r = route_text(
            "necesito el subsidio, mi hijo tiene discapacidad",
            &predicted("peticion", "subsidio"),
        );
        assert_eq!(rules_fired(&r), [RuleId::RiesgoSalud]);
        assert_eq!(r.health_risk, None);
        assert_eq!(r.term, "15 días hábiles");
    }

    #[test]
    fn thanks_for_an_emergency_service_is_not_a_risk() {
        let r = route_text(
            "gracias al personal de urgencias por la atencion",
            &predicted("felicitacion", "ips_salud"),
        );
        assert!(!r.escalate, "{r:?}");
        assert_eq!(r.health_risk, None);
        assert_eq!(r.term_basis, TermBasis::Acknowledgement);
        assert_eq!(r.notice_due_at, None);
    }

    #[test]
    fn legal_threats_escalate_urgently() {
        for text in [
            "si no me responden pongo una TUTELA",
            "voy a poner la queja en la Superintendencia",
            "ya hable con mi abogado",
            "esto lo voy a llevar a los medios de comunicacion",
            "LOS VOY A DEMANDAR",
            "me quejare ante la supersalud",
        ] {
            let r = route_text(text, &predicted("queja", "subsidio"));
            assert_eq!(rules_fired(&r), [RuleId::AmenazaLegal], "{text}");
            assert_eq!(r.priority, Priority::Urgente, "{text}");
        }
    }

    #[test]
    fn repeated_contact_escalates() {
        for text in [
            "es la tercera vez que llamo por lo mismo",
            "OTRA VES SIN RESPUESTA",
            "ya he llamado varias veces",
            "nuevamente solicito el certificado",
        ] {
            let r = route_text(text, &predicted("reclamo", "subsidio"));
            assert_eq!(rules_fired(&r), [RuleId::ContactoRepetido], "{text}");
            assert_eq!(r.priority, Priority::Alta);
        }
    }

    #[test]
    fn employer_complaints_by_client_type_or_area() {
        let (taxonomy, rules) = setup();
        let prediction = predicted("reclamo", "cartera");
        let mut input = RouteInput::new(
            "nos cobraron intereses de mora que no debemos",
            at(MONDAY),
            &prediction,
        );
        input.client_type = Some("Aportante");
        let r = route(&taxonomy, &rules, &input);
        assert_eq!(rules_fired(&r), [RuleId::QuejaEmpleador]);
        assert_eq!(r.priority, Priority::Alta);

        let r = route_text(
            "el asesor empresarial nunca nos devuelve las llamadas",
            &predicted("queja", "atencion_empresas"),
        );
        assert_eq!(rules_fired(&r), [RuleId::QuejaEmpleador]);

        // A felicitación from an employer is not a complaint; nor is an afiliado's reclamo.
        let r = route_text(
            "excelente el evento de fin de ano",
            &predicted("felicitacion", "atencion_empresas"),
        );
        assert!(!r.escalate);
        input.client_type = Some("afiliado");
        assert!(!route(&taxonomy, &rules, &input).escalate);
    }

    #[test]
    fn low_confidence_and_review_flags_ask_for_a_person() {
        let mut prediction = predicted("queja", "subsidio");
        prediction.heads[0].confidence = 0.31;
        let r = route_text("mal servicio", &prediction);
        assert_eq!(rules_fired(&r), [RuleId::RevisionHumana]);
        assert!(r.human_review && r.escalate);
        assert_eq!(r.priority, Priority::Normal);
        assert!(r.reasons[0].detail.contains("0.31"), "{:?}", r.reasons);

        let mut prediction = predicted("queja", "subsidio");
        prediction.heads.push(HeadPrediction {
            needs_review: true,
            ..head("theme", "cuota_monetaria_pago", 0.7)
        });
        let r = route_text("mal servicio", &prediction);
        assert_eq!(rules_fired(&r), [RuleId::RevisionHumana]);
        assert!(r.reasons[0].detail.contains("theme"));
    }

    #[test]
    fn missing_or_unknown_heads_are_reported_not_fatal() {
        let r = route_text("texto cualquiera", &Prediction::default());
        assert!(r.human_review);
        assert_eq!(r.area, None);
        assert_eq!(r.delegate_queue, None);
        assert_eq!(r.term_basis, TermBasis::UnknownType);
        assert_eq!(r.term, "10 días hábiles");
        let detail = &r.reasons[0].detail;
        assert!(
            detail.contains("no `type` head") && detail.contains("no `area` head"),
            "{detail}"
        );

        let r = route_text("texto", &predicted("denuncia", "subsidio"));
        assert!(
            r.reasons[0]
                .detail
                .contains("`denuncia` is not in the taxonomy")
        );
        assert_eq!(r.delegate_queue.as_deref(), Some("delegados-subsidio"));
    }

    #[test]
    fn several_rules_fire_in_order_and_priority_is_the_highest() {
        let mut prediction = predicted("reclamo", "eps_subsidiada");
        prediction.heads[1].confidence = 0.2;
        let r = route_text(
            "TERCERA VEZ QUE LLAMO, MI BEBE SIGUE SIN LA MEDICINA, VOY A PONER TUTELA",
            &prediction,
        );
        assert_eq!(
            rules_fired(&r),
            [
                RuleId::RiesgoSalud,
                RuleId::AmenazaLegal,
                RuleId::ContactoRepetido,
                RuleId::RevisionHumana
            ]
        );
        assert_eq!(r.priority, Priority::Urgente);
        assert_eq!(r.health_risk, Some(HealthRisk::Vital));
        let json = serde_json::to_value(&r).expect("routes serialise");
        assert_eq!(json["priority"], "urgente");
        assert_eq!(json["reasons"][1]["rule"], "amenaza_legal");
        assert_eq!(json["health_risk"], "vital");
    }

    #[test]
    fn forwarding_when_outside_competence() {
        let (taxonomy, rules) = setup();
        let prediction = predicted("peticion", "subsidio");
        let mut input = RouteInput::new("quiero saber de mi pension", at(MONDAY), &prediction);
        input.outside_competence = true;
        let r = route(&taxonomy, &rules, &input);
        assert_eq!(r.term_basis, TermBasis::Forwarding);
        // 2, 3, 4, 5, (8 Corpus), 9 Jun.
        assert_eq!(r.due_at, at("2026-06-09T23:59:59-05:00"));
    }

    #[test]
    fn taxonomy_without_escalation_cannot_compile_rules() {
        let mut taxonomy = Taxonomy::from_toml_str(TAXONOMY).expect("valid");
        taxonomy.escalation = None;
        let err = CompiledRules::from_taxonomy(&taxonomy).expect_err("no section");
        assert!(err.to_string().contains("no [escalation] section"), "{err}");
    }
}
