//! Routing: business-day calendar, due dates, escalation rules and personal-data masking.
//!
//! Entry points: [`route`] for one classified comment (rules from [`CompiledRules::from_taxonomy`]), [`mask`] for
//! personal data, and [`calendar`] and [`due`] for dates on their own.

pub mod calendar;
pub mod due;
pub mod escalation;
pub mod fold;
pub mod mask;
pub mod names;
pub mod route;

pub use due::{Due, HealthRisk, PetitionKind, Term, TermBasis, TermLength, TermQuery};
pub use escalation::{CompiledRules, CueHit, CuePattern, CueScan, Priority};
pub use mask::{Masked, Span, SpanKind, find_spans, mask};
pub use route::{Reason, Route, RouteInput, RuleId, route};
