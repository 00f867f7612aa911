//! The `pqrs` service library: where models come from, the axum application (`http`) and the QA store of
//! predictions and corrections (`store`). The binary in `main.rs` parses the command line and calls into here.
#![deny(missing_docs)]

pub mod http;
pub mod model_source;
pub mod store;
