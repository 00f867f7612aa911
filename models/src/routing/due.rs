//! Response terms and due dates of a comment, from the taxonomy's terms and the business-day calendar.
//!
//! Choices, so that every date can be explained to a delegate or an auditor:
//!
//! - **Counting starts the next business day.** Day 1 of a term in días hábiles is the first business day after the
//!   calendar date of `received_at` (in its own offset), as Ley 1755 de 2015 counts terms "from the day after
//!   receipt". A comment received on a weekend, on a holiday or after office hours is therefore counted from the
//!   next business day too: its receipt time does not matter, only its date. Some entities treat such comments as
//!   received on the next business day and start counting the day after that; this module does not, so a due date
//!   is never later than the law's.
//! - **A term ends at the end of its last day**: 23:59:59 of the last business day, in the offset of `received_at`.
//! - **Terms in hours** (Supersalud health risk) run on the clock from `received_at`, weekends and holidays
//!   included, because the circular counts hours of attention, not días hábiles.
//! - **The delay notice** (art. 14 parágrafo: a term that cannot be met must be announced before it expires) is due
//!   at the end of the business day `terms.delay_notice_lead_business_days` before the last day of the term. It
//!   applies to the terms of Ley 1755 and of the caja's types, not to forwarding, acknowledgements or hours.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use serde::Serialize;

use super::calendar::add_business_days;
use crate::taxonomy::{Area, CommentType, Taxonomy};

/// Supersalud risk level of a health comment (Circular Externa 2023151000000010-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthRisk {
    /// Riesgo simple: 72 hours in the shipped taxonomy.
    Simple,
    /// Riesgo priorizado: 48 hours.
    Priorizado,
    /// Riesgo vital: 24 hours.
    Vital,
}

impl HealthRisk {
    /// Spanish name of the level.
    pub fn name(self) -> &'static str {
        match self {
            HealthRisk::Simple => "riesgo simple",
            HealthRisk::Priorizado => "riesgo priorizado",
            HealthRisk::Vital => "riesgo vital",
        }
    }
}

/// What a petición asks for, which decides its term under art. 14 of Ley 1755 de 2015.
///
/// The classifier does not predict it; the intake form or a delegate sets it, and it defaults to a general petition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PetitionKind {
    /// Any other petition: the type's own term.
    #[default]
    General,
    /// A request for documents or information (`terms.information_business_days`).
    Information,
    /// A consulta to the caja about matters in its charge (`terms.consulta_business_days`).
    Consulta,
}

/// Why a term applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "basis", content = "detail")]
pub enum TermBasis {
    /// The comment type's own term (`term_business_days` of the type).
    CommentType(String),
    /// A petition for documents or information.
    Information,
    /// A consulta.
    Consulta,
    /// Forwarding to the competent entity (art. 21).
    Forwarding,
    /// An acknowledgement, for types without a legal term (felicitaciones).
    Acknowledgement,
    /// A health comment's risk level in a health area.
    HealthRisk(HealthRisk),
    /// The type is unknown, so the shortest term a petition can have applies, to be safe.
    UnknownType,
}

/// How long a term is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "unit", content = "value")]
pub enum TermLength {
    /// Días hábiles counted from the next business day.
    BusinessDays(u32),
    /// Clock hours from receipt.
    Hours(u32),
}

impl TermLength {
    /// Spanish description: `15 días hábiles`, `1 día hábil`, `24 horas`.
    pub fn description(self) -> String {
        match self {
            TermLength::BusinessDays(1) => "1 día hábil".to_string(),
            TermLength::BusinessDays(n) => format!("{n} días hábiles"),
            TermLength::Hours(1) => "1 hora".to_string(),
            TermLength::Hours(n) => format!("{n} horas"),
        }
    }
}

/// A term with the reason it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    /// Why this term applies.
    pub basis: TermBasis,
    /// Its length.
    pub length: TermLength,
}

impl Term {
    /// Whether a delay notice is owed before the term expires (see the module notes).
    pub fn needs_delay_notice(&self) -> bool {
        matches!(
            self.basis,
            TermBasis::CommentType(_)
                | TermBasis::Information
                | TermBasis::Consulta
                | TermBasis::UnknownType
        )
    }
}

/// What decides the term of one comment.
#[derive(Debug, Clone, Copy, Default)]
pub struct TermQuery<'a> {
    /// The comment type, when known.
    pub comment_type: Option<&'a CommentType>,
    /// The area that answers, when known.
    pub area: Option<&'a Area>,
    /// The risk level, for comments in health areas.
    pub health_risk: Option<HealthRisk>,
    /// What a petición asks for.
    pub petition_kind: PetitionKind,
    /// The matter is outside the caja's competence and must be forwarded.
    pub outside_competence: bool,
}

/// Chooses the term of a comment, first rule that applies:
///
/// 1. outside competence → forwarding term;
/// 2. a health area with a risk level and a type that has a legal term → hours of that level;
/// 3. a type without a legal term (felicitación) → acknowledgement;
/// 4. a petición for information or a consulta → their terms;
/// 5. the type's own term;
/// 6. unknown type → the shortest term among the types and the information term.
pub fn select_term(taxonomy: &Taxonomy, query: &TermQuery<'_>) -> Term {
    let terms = &taxonomy.terms;
    if query.outside_competence {
        return Term {
            basis: TermBasis::Forwarding,
            length: TermLength::BusinessDays(terms.forwarding_business_days),
        };
    }
    let type_term = query.comment_type.map(|t| t.term_business_days);
    let health_area = query.area.is_some_and(|a| a.health);
    if let (true, Some(risk), None | Some(Some(_))) = (health_area, query.health_risk, type_term) {
        let hours = match risk {
            HealthRisk::Vital => terms.health_risk_hours.vital,
            HealthRisk::Priorizado => terms.health_risk_hours.priorizado,
            HealthRisk::Simple => terms.health_risk_hours.simple,
        };
        return Term {
            basis: TermBasis::HealthRisk(risk),
            length: TermLength::Hours(hours),
        };
    }
    match (query.comment_type, type_term) {
        (Some(_), Some(None)) => Term {
            basis: TermBasis::Acknowledgement,
            length: TermLength::BusinessDays(terms.acknowledgement_business_days),
        },
        (Some(ty), Some(Some(days))) => match (ty.id.as_str(), query.petition_kind) {
            ("peticion", PetitionKind::Information) => Term {
                basis: TermBasis::Information,
                length: TermLength::BusinessDays(terms.information_business_days),
            },
            ("peticion", PetitionKind::Consulta) => Term {
                basis: TermBasis::Consulta,
                length: TermLength::BusinessDays(terms.consulta_business_days),
            },
            _ => Term {
                basis: TermBasis::CommentType(ty.id.clone()),
                length: TermLength::BusinessDays(days),
            },
        },
        _ => {
            let shortest = taxonomy
                .types
                .iter()
                .filter_map(|t| t.term_business_days)
                .chain([terms.information_business_days])
                .min()
                .unwrap_or(terms.information_business_days);
            Term {
                basis: TermBasis::UnknownType,
                length: TermLength::BusinessDays(shortest),
            }
        }
    }
}

/// When a comment must be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    /// The term applied.
    pub term: Term,
    /// Spanish description of the term (`15 días hábiles`).
    pub description: String,
    /// Day 1 of a term in business days; `None` for terms in hours.
    pub counted_from: Option<NaiveDate>,
    /// End of the term.
    pub due_at: DateTime<FixedOffset>,
    /// Latest moment to tell the client that the term cannot be met, when such a notice is owed.
    pub notice_due_at: Option<DateTime<FixedOffset>>,
}

/// Due date and delay-notice date of `term` for a comment received at `received_at`.
///
/// `notice_lead_business_days` is `terms.delay_notice_lead_business_days`. When the lead is as long as the term, the
/// notice is due at once (`received_at`).
pub fn due_dates(
    term: &Term,
    received_at: DateTime<FixedOffset>,
    notice_lead_business_days: u32,
) -> Due {
    let description = term.length.description();
    match term.length {
        TermLength::Hours(hours) => Due {
            term: term.clone(),
            description,
            counted_from: None,
            due_at: received_at + Duration::hours(i64::from(hours)),
            notice_due_at: None,
        },
        TermLength::BusinessDays(days) => {
            let received_on = received_at.date_naive();
            let offset = *received_at.offset();
            let last_day = add_business_days(received_on, days);
            let notice_due_at = term.needs_delay_notice().then(|| {
                match days.checked_sub(notice_lead_business_days) {
                    Some(n) if n > 0 => end_of_day(add_business_days(received_on, n), offset),
                    _ => received_at,
                }
            });
            Due {
                term: term.clone(),
                description,
                counted_from: Some(add_business_days(received_on, 1)),
                due_at: end_of_day(last_day, offset),
                notice_due_at,
            }
        }
    }
}

/// Term and due dates of one comment in one call.
pub fn due_for(
    taxonomy: &Taxonomy,
    query: &TermQuery<'_>,
    received_at: DateTime<FixedOffset>,
) -> Due {
    let term = select_term(taxonomy, query);
    due_dates(
        &term,
        received_at,
        taxonomy.terms.delay_notice_lead_business_days,
    )
}

fn end_of_day(date: NaiveDate, offset: FixedOffset) -> DateTime<FixedOffset> {
    let last_second = NaiveTime::from_hms_opt(23, 59, 59).expect("23:59:59 is a valid time");
    offset
        .from_local_datetime(&date.and_time(last_second))
        .single()
        .expect("a fixed offset maps every local time to exactly one instant")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAXONOMY: &str = include_str!("../../../datasets/taxonomy/comfama.toml");

    fn taxonomy() -> Taxonomy {
        Taxonomy::from_toml_str(TAXONOMY).expect("shipped taxonomy is valid")
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("test instants are RFC 3339")
    }

    /// What a test comment is: type, area and the other inputs of [`TermQuery`], by id.
    #[derive(Clone, Copy)]
    struct Case {
        ty: &'static str,
        area: &'static str,
        risk: Option<HealthRisk>,
        kind: PetitionKind,
        outside: bool,
    }

    fn of_type(ty: &'static str) -> Case {
        Case {
            ty,
            area: "subsidio",
            risk: None,
            kind: PetitionKind::General,
            outside: false,
        }
    }

    fn query<'a>(taxonomy: &'a Taxonomy, case: Case) -> TermQuery<'a> {
        TermQuery {
            comment_type: taxonomy.comment_type(case.ty),
            area: taxonomy.area(case.area),
            health_risk: case.risk,
            petition_kind: case.kind,
            outside_competence: case.outside,
        }
    }

    /// Checks term, due date and notice for a comment received at `received`.
    fn check(case: Case, received: &str, description: &str, due: &str, notice: Option<&str>) {
        let taxonomy = taxonomy();
        let got = due_for(&taxonomy, &query(&taxonomy, case), at(received));
        assert_eq!(got.description, description, "term for {received}");
        assert_eq!(got.due_at, at(due), "due date for {received}");
        assert_eq!(got.notice_due_at, notice.map(at), "notice for {received}");
    }

    #[test]
    fn petition_over_christmas_and_new_year() {
        // Thursday 24 Dec 2026 17:30. Counted days: 28, 29, 30, 31 Dec (25 Dec and 1 Jan are holidays), then
        // 4, 5, 6, 7, 8 Jan (Reyes moves to Monday 11 Jan), 12, 13, 14, 15, 18, 19 Jan 2027: day 15 is 19 Jan.
        // The notice is due 2 business days earlier: day 13, Friday 15 Jan.
        check(
            of_type("peticion"),
            "2026-12-24T17:30:00-05:00",
            "15 días hábiles",
            "2027-01-19T23:59:59-05:00",
            Some("2027-01-15T23:59:59-05:00"),
        );
        check(
            of_type("reclamo"),
            "2026-12-24T17:30:00-05:00",
            "15 días hábiles",
            "2027-01-19T23:59:59-05:00",
            Some("2027-01-15T23:59:59-05:00"),
        );
    }

    #[test]
    fn information_and_consulta_petitions() {
        let kind = |kind| Case {
            kind,
            ..of_type("peticion")
        };
        // Day 10 from 24 Dec 2026: 28, 29, 30, 31, 4, 5, 6, 7, 8, 12 Jan.
        check(
            kind(PetitionKind::Information),
            "2026-12-24T17:30:00-05:00",
            "10 días hábiles",
            "2027-01-12T23:59:59-05:00",
            Some("2027-01-07T23:59:59-05:00"),
        );
        // Monday 30 Mar 2026, Holy Week: 31 Mar, 1 Apr, (2-3 Apr holidays), 6-10 Apr = 7, 13-17 = 12, 20-24 = 17,
        // 27 Apr-1 May minus 1 May = 21, 4-8 May = 26, 11-14 May = 30th on Thursday 14 May.
        check(
            kind(PetitionKind::Consulta),
            "2026-03-30T09:00:00-05:00",
            "30 días hábiles",
            "2026-05-14T23:59:59-05:00",
            Some("2026-05-12T23:59:59-05:00"),
        );
        // Consulta applies only to peticiones: a queja keeps its own term.
        check(
            Case {
                kind: PetitionKind::Consulta,
                ..of_type("queja")
            },
            "2026-03-30T09:00:00-05:00",
            "15 días hábiles",
            "2026-04-22T23:59:59-05:00",
            Some("2026-04-20T23:59:59-05:00"),
        );
    }

    #[test]
    fn receipt_on_a_weekend_or_after_hours_counts_from_the_next_business_day() {
        // Saturday 14 Mar 2026 and Friday 13 Mar at 22:00 both count from Monday 16; San José is Monday 23.
        // Days: 16-20 (5), 24-27 (9), 30, 31 (11), 1 Apr (12), (2-3 Apr holidays), 6, 7, 8 (15).
        for received in ["2026-03-14T10:00:00-05:00", "2026-03-13T22:00:00-05:00"] {
            check(
                of_type("queja"),
                received,
                "15 días hábiles",
                "2026-04-08T23:59:59-05:00",
                Some("2026-04-06T23:59:59-05:00"),
            );
        }
        // The date is read in the comment's own offset: Thursday 23:30 in Bogotá is Friday 04:30 in UTC.
        let taxonomy = taxonomy();
        let query = query(&taxonomy, of_type("queja"));
        let in_bogota = due_for(&taxonomy, &query, at("2026-03-12T23:30:00-05:00"));
        let in_utc = due_for(&taxonomy, &query, at("2026-03-13T04:30:00+00:00"));
        assert_eq!(in_bogota.counted_from, NaiveDate::from_ymd_opt(2026, 3, 13));
        assert_eq!(in_utc.counted_from, NaiveDate::from_ymd_opt(2026, 3, 16));
        assert_eq!(in_utc.due_at, at("2026-04-08T23:59:59+00:00"));
    }

    #[test]
    fn receipt_before_a_monday_holiday_bridge() {
        // Friday 14 Aug 2026; Monday 17 is the Asunción holiday (moved from Saturday 15). Day 1 is Tuesday 18:
        // 18-21 (4), 24-28 (9), 31 Aug-4 Sep (14), Monday 7 Sep (15).
        check(
            of_type("queja"),
            "2026-08-14T16:00:00-05:00",
            "15 días hábiles",
            "2026-09-07T23:59:59-05:00",
            Some("2026-09-03T23:59:59-05:00"),
        );
    }

    #[test]
    fn felicitacion_gets_an_acknowledgement_without_notice() {
        // Friday 31 Jul 2026: 3, 4, 5, 6 Aug, (7 Aug holiday), 10 Aug.
        check(
            of_type("felicitacion"),
            "2026-07-31T08:00:00-05:00",
            "5 días hábiles",
            "2026-08-10T23:59:59-05:00",
            None,
        );
    }

    #[test]
    fn forwarding_outside_competence() {
        check(
            Case {
                outside: true,
                ..of_type("peticion")
            },
            "2026-07-31T08:00:00-05:00",
            "5 días hábiles",
            "2026-08-10T23:59:59-05:00",
            None,
        );
    }

    #[test]
    fn health_risk_terms_run_on_the_clock() {
        let health = |risk| Case {
            area: "eps_subsidiada",
            risk: Some(risk),
            ..of_type("queja")
        };
        // Thursday 24 Dec 2026 17:30: the hours cross Navidad and the weekend.
        check(
            health(HealthRisk::Vital),
            "2026-12-24T17:30:00-05:00",
            "24 horas",
            "2026-12-25T17:30:00-05:00",
            None,
        );
        check(
            health(HealthRisk::Priorizado),
            "2026-12-24T17:30:00-05:00",
            "48 horas",
            "2026-12-26T17:30:00-05:00",
            None,
        );
        check(
            health(HealthRisk::Simple),
            "2026-12-31T23:00:00-05:00",
            "72 horas",
            "2027-01-03T23:00:00-05:00",
            None,
        );
        // A risk level outside a health area does not give hours.
        check(
            Case {
                risk: Some(HealthRisk::Vital),
                ..of_type("queja")
            },
            "2026-12-24T17:30:00-05:00",
            "15 días hábiles",
            "2027-01-19T23:59:59-05:00",
            Some("2027-01-15T23:59:59-05:00"),
        );
    }

    #[test]
    fn unknown_type_gets_the_shortest_petition_term() {
        let taxonomy = taxonomy();
        let term = select_term(&taxonomy, &TermQuery::default());
        assert_eq!(term.basis, TermBasis::UnknownType);
        assert_eq!(term.length, TermLength::BusinessDays(10));
        assert!(term.needs_delay_notice());
    }

    #[test]
    fn a_lead_as_long_as_the_term_asks_for_the_notice_at_once() {
        let term = Term {
            basis: TermBasis::CommentType("queja".into()),
            length: TermLength::BusinessDays(2),
        };
        let received = at("2026-06-01T10:00:00-05:00");
        let due = due_dates(&term, received, 2);
        assert_eq!(due.notice_due_at, Some(received));
        assert_eq!(due.due_at, at("2026-06-03T23:59:59-05:00"));
        assert_eq!(TermLength::BusinessDays(1).description(), "1 día hábil");
        assert_eq!(TermLength::Hours(1).description(), "1 hora");
    }
}
