//! Support shared by the runnable examples (`examples/`) and the end-to-end tests (`tests/`) of
//! the flow crates: the examples' command-line options, their model files and checks, and their
//! pictures.

pub mod args;
pub mod model;
pub mod plotting;

/// An example's `main`: runs `run`, and on an error prints `error: …` and exits with status 1.
pub fn main_with(run: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Where the examples write their pictures and fitted models (`examples/out`).
pub const OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/out");
