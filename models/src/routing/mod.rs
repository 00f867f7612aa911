//! Routing: business-day calendar, due dates, escalation rules and personal-data masking.

pub mod calendar;
pub mod due;
pub mod escalation;
pub mod fold;
