//! One module per subcommand; each turns its checked arguments into calls on the library crates.

pub mod audit;
pub mod data;
pub mod data_scale;
pub mod deep;
pub mod encoder;
pub mod eval;
pub mod feedback;
pub mod retrain;
pub mod route;
pub mod serve;
pub mod train;
