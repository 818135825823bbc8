//! # flow-macros
//!
//! `#[flow("models/moons.flow")]` bakes a normalizing-flow model file into the struct it annotates:
//! weights in `static` arrays (flash), every size a compile-time constant, no allocation, no dynamic
//! dispatch. The math stays in `flow-core`; the generated code is data plus a typed composition of
//! `flow-core`'s layer structs (see `flow_core::baked`).
//!
//! ```
//! // A two-layer MAF (D = 2) from this crate's test models; paths are relative to the crate
//! // that invokes the macro. The crate needs `flow-core` as a dependency too.
//! #[flow_macros::flow("tests/models/tiny.flow")]
//! pub struct Tiny;
//!
//! let lp: f32 = Tiny::log_prob(&[0.5, -0.2]);
//! let (z, ldj) = Tiny::inverse(&[0.5, -0.2]);           // base point, log|det ∂z/∂x|
//! let x: [f32; 2] = Tiny::sample(&[0.1, 1.3]);          // standard-normal noise → sample
//! let g: [f32; 2] = Tiny::grad_log_prob(&[0.5, -0.2]);  // ∇ₓ log p
//! assert!(lp.is_finite() && ldj.is_finite());
//! assert!(z.iter().chain(&x).chain(&g).all(|v| v.is_finite()));
//! assert_eq!(Tiny::DIM, 2);
//! ```
//!
//! Works in `#![no_std]` crates (firmware): the generated code uses `core` and `flow-core` only;
//! `WEIGHT_BYTES` and `SCRATCH_BYTES` say what it costs in flash and on the stack.
//!
//! # Arguments
//! - the model file's path, a string literal, relative to the invoking crate's
//!   `CARGO_MANIFEST_DIR` (or absolute);
//! - `precision = "f32"` (default) or `"f64"`: the scalar the methods compute in. The weights'
//!   `static` arrays keep the file's type either way: `f32`, or `f64` for files of format
//!   version 2. f64 evaluation widens `f32` weights exactly; f32 evaluation of `f64` weights rounds
//!   each weight to `f32` as it reads it (as the runtime evaluator does, bit for bit).
//!
//! # Generated API (D = dimension, C = context dimension, S = the precision)
//! - `const DIM`, `CONTEXT_DIM`, `PARAMS`, `WEIGHT_BYTES` (bytes of weights in flash: 4 or 8 per
//!   weight, the file's weight type),
//!   `SCRATCH_BYTES` (the stack scratch every method uses, measured on the composition itself);
//! - `log_prob(&[S; D]) -> S`, `grad_log_prob(&[S; D]) -> [S; D]`,
//!   `inverse(&[S; D]) -> ([S; D], S)` (base point, log|det ∂z/∂x|),
//!   `forward(&[S; D]) -> ([S; D], S)`, `sample(&[S; D]) -> [S; D]` (from standard-normal noise),
//!   `sample_with(&mut impl RngCore) -> [S; D]`, `log_prob_batch(&[[S; D]], &mut [S])`,
//!   `sample_batch(&[[S; D]], &mut [[S; D]])` (noise rows → sample rows),
//!   `grad_log_prob_batch(&[[S; D]], &mut [[S; D]], &mut [S])` (gradients and log p per row);
//!   `SCRATCH_BYTES` includes the batch methods' blocks of `flow_core::block::BLOCK` samples
//!   (16 on x86-64, 8 on aarch64, 1 on targets without SIMD such as Cortex-M);
//! - with C > 0 every method takes `&[S; C]` as its second argument;
//! - an implementation of `flow_core::baked::BakedFlow<S>` (slices, checked lengths).
//!
//! The generated code is data and types: the weights as `static` arrays decoded at compile time
//! from the model file's own bytes, the layer composition, the scratch sizes; every method body is
//! one call into `flow_core::baked` (see `tests/expand/tiny.expanded.rs`).
//!
//! # Errors
//! The model is checked at compile time; every problem (missing file, bad magic or version,
//! checksum mismatch, corrupt description, NaN or infinite weights, unsupported layer kinds or
//! options, dimensions that do not chain, a `golden` section in the metadata that does not have
//! the shape `flow-train` writes, …) is reported at once, on the path literal. The macro
//! never writes files; it emits `include_bytes!` of the model so that editing it rebuilds.
//!
//! # Layout
//! `parse.rs` (attribute arguments) → `check.rs` (read, validate, measure) → `generate.rs` (one
//! function per layer kind). Adding a layer kind: `check::supported` and a `gen_<kind>` function
//! with its arm in `generate::gen_layer`.

use proc_macro::TokenStream;

mod check;
mod generate;
mod golden;
mod parse;

/// Bakes a model file into the annotated struct. See the crate documentation.
#[proc_macro_attribute]
pub fn flow(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: proc_macro2::TokenStream = item.into();
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the item so that its uses do not add errors of their own.
        Err(e) => {
            let e = e.into_compile_error();
            quote::quote!(#item #e).into()
        }
    }
}

/// The whole expansion on `proc_macro2` tokens (unit tests call it directly).
fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args: parse::Args = syn::parse2(attr)?;
    let item = parse::item(item);
    let model = check::check(&args);
    match (item, model) {
        (Ok(item), Ok(model)) => generate::generate(&item, &args, &model),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests;
