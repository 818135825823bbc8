//! # flow-train
//!
//! Fit normalizing flows by maximum likelihood on the host, and the tools around model files:
//! evaluate, sample, inspect, plot, import from zuko / nflows / FlowJAX, verify.
//!
//! The library entry point is [`fit`]; the `flow-train` binary is a command line over this crate
//! (`flow-train --help`; install it with `cargo install --path flow-train`): it parses the
//! arguments and prints, the library does neither.
//!
//! ```
//! use flow_train::{datasets, fit, ArchConfig, Dataset, FitConfig};
//!
//! let rows: Vec<Vec<f64>> = datasets::generate("moons", 2000, 1)?.iter().map(|p| p.to_vec()).collect();
//! let data = Dataset::from_rows(vec!["x".into(), "y".into()], &rows);
//! let config = FitConfig {
//!     arch: ArchConfig { transforms: 2, hidden: vec![16, 16], ..ArchConfig::default() },
//!     epochs: 3,
//!     threads: 1,
//!     ..FitConfig::default()
//! };
//! let outcome = fit(&data, &config)?;
//! assert!(outcome.best_val_nll.is_finite());
//!
//! // The fitted model as model-file bytes, evaluated by flow-core's runtime evaluator.
//! let bytes = outcome.model.parts.to_bytes("{}");
//! let store = flow_train::golden::aligned(&bytes);
//! let file = &flow_core::bytemuck::cast_slice::<u64, u8>(&store)[..bytes.len()];
//! let mut flow = flow_core::runtime::Evaluator::<f64, 16384>::new(file)?;
//! assert!(flow.log_prob(&[0.5, 0.25], &[])?.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`train`] | [`fit`]: maximum likelihood with Adam, schedules, validation, early stopping, all cores |
//! | [`arch`] | the flow families (`FlowKind`: MAF, IAF, RealNVP, NSF, …) and their initialization |
//! | [`import`] | zuko, nflows and FlowJAX flows from `flow-fixture/1` JSON (`python/flow_export.py`) |
//! | [`golden`] | golden vectors stored in every model file (`golden_for` picks the probes), and `verify` |
//! | [`eval`] | `log_probs` of a model on a data set |
//! | [`calibrate`] | simulation-based calibration and expected coverage of a posterior model |
//! | [`reverse_kl`] | [`fit_target`]: reverse-KL fits to an unnormalized density ([`target`]: φ⁴, funnel, banana, closures) |
//! | [`importance`] | exact answers from an approximate flow: importance weights, ESS, evidence, independence Metropolis–Hastings |
//! | [`posterior`] | posterior draws inside the prior's bounds (`sample_within`), many observations at once |
//! | [`footprint`] | flash, RAM, stack and instructions of a baked model on a Cortex-M4F (qemu) |
//! | [`csv`], [`npy`], [`datasets`], [`plot`], [`io`] | data in (CSV, NumPy), figures and model files out |
//! | [`error`] | [`Error`]: one enum over every module's error (`?` across modules) |

pub mod arch;
pub mod calibrate;
pub mod csv;
pub mod datasets;
pub mod describe;
pub mod error;
pub mod eval;
pub mod footprint;
pub mod golden;
pub mod import;
pub mod importance;
pub mod io;
pub mod npy;
pub mod plot;
pub mod posterior;
pub mod reverse_kl;
pub mod target;
pub mod train;

pub use arch::{ArchConfig, FlowKind};
pub use error::{Error, Result};
pub use reverse_kl::{fit_target, fit_target_with, TargetConfig, TargetOutcome};
pub use target::Target;
pub use train::{fit, fit_with, Dataset, FitConfig, FitOutcome};
