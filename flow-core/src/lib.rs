//! # flow-core
//!
//! The math of normalizing flows, written once, for firmware and for the host: `#![no_std]`, no
//! allocation, generic over the scalar ([`Real`]: `f32` or `f64`) and over the stored weight type
//! ([`Weight`]).
//!
//! - [`layers`]: every layer type, each with `inverse` (data → base, density), `forward`
//!   (base → data, sampling), log|det J| and the vector-Jacobian product used for gradients.
//! - [`base`]: base distributions.
//! - [`flow`]: a flow = layers + base: `log_prob`, `sample`, `grad_log_prob`, parameter gradients.
//! - [`model`]: the model description (serde) and the model file format.
//! - [`runtime`]: validate a model file held in memory (e.g. flash) and evaluate it with fixed-size
//!   scratch memory; bad bytes give an `Err`, never a panic.
//!
//! Conventions: `log p(x) = log p_base(z) + log|det ∂z/∂x|` with `z = inverse(x)`.
#![cfg_attr(not(any(test, feature = "std", feature = "testing")), no_std)]
#![warn(missing_docs)]
// Index loops over triangular and strided matrices mirror the formulas in the docs.
#![allow(clippy::needless_range_loop)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod baked;
pub mod base;
pub mod block;
pub mod flow;
pub mod layers;
pub mod math;
pub mod model;
pub mod nn;
mod real;
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
