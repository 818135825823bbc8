//! # flow-train
//!
//! Fit normalizing flows by maximum likelihood on the host, and the tools around model files:
//! evaluate, sample, inspect, plot, import from zuko / nflows / FlowJAX, verify.
//!
//! The library entry point is [`fit`]: `flow_train::fit(&data, &config) -> Result<FitOutcome, _>`;
//! the `flow-train` binary is a thin command line over this crate.

pub mod arch;
mod arch_spline;
pub mod cli;
pub mod csv;
pub mod datasets;
pub mod describe;
pub mod footprint;
pub mod golden;
pub mod import;
pub mod io;
pub mod jsonf64;
pub mod plot;
pub mod train;

pub use arch::{ArchConfig, FlowKind};
pub use train::{fit, fit_with, Dataset, FitConfig, FitOutcome};
