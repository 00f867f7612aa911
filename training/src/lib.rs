//! training crate (placeholder while the foundation lands).
