//! benches crate (placeholder while the foundation lands).
