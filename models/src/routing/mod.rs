//! Routing: business-day calendar, due dates, escalation rules and personal-data masking.

pub mod calendar;
