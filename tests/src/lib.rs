//! tests crate (placeholder while the foundation lands).
