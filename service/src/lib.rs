//! The `pqrs` service library: where models come from, and (in `http`) the axum application. The binary in
//! `main.rs` parses the command line and calls into here.
#![deny(missing_docs)]

pub mod http;
pub mod model_source;
