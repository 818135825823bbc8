//! Support shared by the runnable examples (`examples/`) and the end-to-end tests (`tests/`) of
//! the flow crates: the examples' command-line options, their model files and checks, and their
//! pictures.

pub mod args;
pub mod model;
pub mod plotting;

/// Where the examples write their pictures and fitted models (`examples/out`).
pub const OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/out");
