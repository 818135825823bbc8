//! # flow-core
//!
//! Normalizing flows — exact, normalized probability densities that can also be sampled — for
//! firmware and fast CPU code. This crate is the math, written once: every layer's `inverse`
//! (data → base, the density direction), `forward` (base → data, sampling), log|det J| and
//! vector-Jacobian products; base distributions; the model file format; and a runtime evaluator
//! that validates a model file held in memory (flash, a buffer) and evaluates it with fixed-size
//! scratch memory. `#![no_std]`, no allocation, no panics on any input; generic over the scalar
//! ([`Real`]: `f32` or `f64`) and the stored weight type ([`Weight`]).
//!
//! Models come from `flow-train` (fit, or import from zuko / nflows / FlowJAX). Bake one into
//! fixed-size code with `flow-macros`, or evaluate its bytes at run time:
//!
//! ```
//! use flow_core::runtime::{Aligned, Evaluator};
//!
//! // A MAF fitted on the two-moons data set by `flow-train fit` (D = 2, no context).
//! static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../examples/models/moons.flow"));
//!
//! // Validates header, checksum, description, weights and the scratch need, once.
//! let mut flow = Evaluator::<f32, 4096>::new(&MODEL.0)?;
//! let log_p = flow.log_prob(&[0.5, 0.25], &[])?;      // log p(x), in nats
//! let mut x = [0.0f32; 2];
//! flow.sample(&[0.1, -1.3], &[], &mut x)?;            // standard-normal noise → a sample
//! assert!(log_p.is_finite() && x.iter().all(|v| v.is_finite()));
//! # Ok::<(), flow_core::runtime::Error>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`layers`] | every layer type and the [`Bijection`] trait they implement |
//! | [`nn`] | dense layers, MLPs and MADE masks (the conditioners) |
//! | [`base`] | base distributions: standard, diagonal and full-covariance normal |
//! | [`flow`] | a flow = layers + base: `log_prob`, `sample`, `grad_log_prob`, batches |
//! | [`model`] | the model description and the file format (`model::file`) |
//! | [`runtime`] | [`runtime::Evaluator`]: validated bytes → `log_prob`, `sample`, … |
//! | [`baked`] | the trait and runtime pieces that `flow-macros`' generated code calls |
//!
//! # Conventions
//! `z = inverse(x)`, `log p(x) = log p_base(z) + log|det ∂z/∂x|`; `forward` maps base noise to
//! data. The baked code, the runtime evaluator and the trainer call the same kernels in the same
//! order, so they agree bit for bit, on the host and on a Cortex-M4F: libm on both, and fused
//! multiply-adds (one instruction where the processor has it, [`arch`]). On x86-64 the dense
//! kernels pick AVX2 or AVX-512 at run time ([`arch::kernel`]), with the same bits.
//!
//! # Features
//! | feature | what |
//! |---|---|
//! | (none) | `no_std`, no `alloc`: everything needed to evaluate and sample a model |
//! | `alloc` | owned model types and writers for host tools ([`model::builder`]) |
//! | `std` | `alloc` + `std` |
//! | `micromath` | micromath's approximations of exp/ln/sqrt instead of libm (f32; faster, less exact) |
//! | `rayon` | `par_*` batch methods over all cores |
//! | `testing` | finite-difference checks for other crates' tests |
//!
//! # no_std
//! Checked for `thumbv7em-none-eabihf` (Cortex-M4F) in CI, with a `#![no_main]` firmware that
//! calls every method of baked models and links only when no panic path survives optimization.
//! Errors are values ([`runtime::Error`], which implements `core::error::Error`).
#![cfg_attr(not(any(test, feature = "std", feature = "testing")), no_std)]
#![warn(missing_docs)]
// Index loops over triangular and strided matrices mirror the formulas in the docs.
#![allow(clippy::needless_range_loop)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod arch;
pub mod baked;
pub mod base;
pub mod block;
pub mod cotangent;
pub mod flow;
pub mod lanes;
pub mod layers;
pub mod math;
pub mod model;
pub mod nn;
mod real;
pub mod rng;
pub mod runtime;
mod slicing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use base::Base;
pub use bytemuck;
pub use flow::Flow;
pub use heapless;
pub use layers::Bijection;
pub use real::{Real, Weight};
