//! datasets crate (placeholder while the foundation lands).
