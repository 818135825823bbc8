//! Checking: read the model file, validate it, measure what the generated code needs.
//!
//! Every problem becomes one `syn::Error` on the path literal (`"<path>: <reason>"`), and all of
//! them are reported together. A file that cannot be split into sections or whose description does
//! not decode stops the check there (nothing after it can be read); past that point the checks
//! are independent: dimensions, non-finite weights, each layer (kind, network sizes, options,
//! spans and masks through `flow-core`'s validator) and the base.
//!
//! Adding a layer kind: list it in [`supported`] (and give it a `gen_*` function in
//! [`crate::generate`]); its structural checks come from `flow_core::runtime::validate`, and
//! dimension checks that deserve a clearer message than the validator's go in [`check_layer`].

use flow_core::layers::{Cotangent, Grads};
use std::path::{Path, PathBuf};

use flow_core::baked::Identity;
use flow_core::flow::Flow;
use flow_core::layers::chain::Chain;
use flow_core::layers::context::StandardizedContext;
use flow_core::layers::Bijection;
use flow_core::model::file::{self, FormatError, WeightType};
use flow_core::model::{BaseDesc, LayerDesc, ModelDesc, NetDesc, Span, MAX_DIM};
use flow_core::runtime::{self, AnyLayer, Invalid, Layers};
use flow_core::{Real, Weight};
use syn::LitStr;

use crate::parse::{Args, Precision};

/// Most weights a model may have to be baked (16 MiB of `f32`, 32 of `f64`); beyond that the token stream and
/// the compiler's memory grow out of proportion, and no flash holds it anyway.
pub const MAX_WEIGHTS: usize = 1 << 22;

/// A model that passed every check, with what generation needs.
#[derive(Debug)]
pub struct Model {
    /// The description.
    pub desc: ModelDesc,
    /// The weight section, as `f64` (exact for `f32` weights).
    pub weights: Vec<f64>,
    /// How the file stores the weights, and so the type of the generated `static` arrays.
    pub weight_type: WeightType,
    /// `include_bytes!` argument: the path as an expression (relative paths go through
    /// `env!("CARGO_MANIFEST_DIR")`, like the macro resolved them).
    pub include: proc_macro2::TokenStream,
    /// Scratch elements of the baked flow, from `Flow::scratch_len` on the same composition.
    pub scratch: usize,
    /// Parameters (layers, then base), from `Flow::n_params`.
    pub n_params: usize,
    /// The integer section (coupling masks, permutations).
    pub ints: Vec<u16>,
    /// Byte offset of the weight section in the file (the generated `static`s decode their
    /// weights from the file's bytes there).
    pub weights_at: usize,
    /// Byte offset of the integer section in the file.
    pub ints_at: usize,
    /// Golden vectors from the model's metadata, when it has them.
    pub golden: Option<crate::golden::Golden>,
}

/// Reads and checks the model named by `args`.
pub fn check(args: &Args) -> syn::Result<Model> {
    let lit = &args.path;
    let (abs, include) = resolve(lit)?;
    let bytes = std::fs::read(&abs).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "model file not found (relative paths start at the crate's CARGO_MANIFEST_DIR)".to_string()
        } else {
            format!("cannot read the model file: {e}")
        };
        error(lit, &why)
    })?;
    match check_bytes(&bytes, args.precision) {
        Ok(model) => Ok(Model {
            include,
            golden: crate::golden::read(&bytes, model.desc.dim as usize, model.desc.context_dim as usize)
                .map_err(|why| error(lit, &why))?,
            ..model
        }),
        Err(problems) => {
            let mut all: Option<syn::Error> = None;
            for p in &problems {
                match all.as_mut() {
                    Some(all) => all.combine(error(lit, p)),
                    None => all = Some(error(lit, p)),
                }
            }
            Err(all.unwrap_or_else(|| error(lit, "invalid model")))
        }
    }
}

fn error(lit: &LitStr, why: &str) -> syn::Error {
    syn::Error::new(lit.span(), format!("{}: {why}", lit.value()))
}

/// The file's path on disk, and the tokens of the same path for `include_bytes!`.
fn resolve(lit: &LitStr) -> syn::Result<(PathBuf, proc_macro2::TokenStream)> {
    let rel = lit.value();
    if Path::new(&rel).is_absolute() {
        return Ok((PathBuf::from(&rel), quote::quote!(#lit)));
    }
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .ok_or_else(|| error(lit, "CARGO_MANIFEST_DIR is not set (build with cargo)"))?;
    let tail = LitStr::new(&format!("/{rel}"), lit.span());
    Ok((
        Path::new(&dir).join(&rel),
        quote::quote!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), #tail)),
    ))
}

fn format_reason(e: FormatError) -> String {
    match e {
        FormatError::CorruptDescription => {
            "corrupt model description (it does not decode, under a valid checksum: written by an incompatible writer?)".into()
        }
        other => other.to_string(),
    }
}

/// The variant name of a layer (`Planar`, …), from its `Debug` form so new kinds need no edit here.
pub fn kind_name(l: &LayerDesc) -> String {
    format!("{l:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The layer kinds the macro can bake. Add a kind here and in `generate::gen_layer`.
pub fn supported(l: &LayerDesc) -> bool {
    // Every kind of the format version this crate reads; the check stays for future kinds.
    let _ = l;
    true
}

const SUPPORTED: &str = "every layer kind of format version 1";

/// Where weight `index` belongs, for messages.
fn owner(desc: &ModelDesc, index: usize) -> String {
    let inside = |span: Span| span.range(usize::MAX).is_some_and(|r| r.contains(&index));
    for (i, l) in desc.layers.iter().enumerate() {
        if weight_span(l).is_some_and(inside) {
            return format!("layer {i}");
        }
    }
    if inside(desc.base.params()) {
        "base".into()
    } else {
        "unused".into()
    }
}

/// The weight span of a layer, where it has one.
fn weight_span(l: &LayerDesc) -> Option<Span> {
    Some(runtime::layer_span(l)).filter(|s| s.len > 0)
}

/// Checks that a layer's network maps `D + C` inputs to `n_out` outputs.
fn check_net(net: &NetDesc, n_in: usize, n_out: usize, d: usize, c: usize) -> Option<String> {
    let s = &net.sizes;
    let sizes = format!("{:?}", s.as_slice());
    if s.len() < 2 {
        return Some(format!(
            "network sizes {sizes} need at least an input and an output"
        ));
    }
    let first = s.first().copied().unwrap_or(0);
    let last = s.last().copied().unwrap_or(0);
    if first != n_in || last != n_out {
        return Some(format!(
            "dimensions do not chain: the network's sizes are {sizes}, but with D = {d} and C = {c} it must \
             take D + C = {n_in} inputs and give 2·D = {n_out} outputs"
        ));
    }
    if s.contains(&0) {
        return Some(format!("network sizes {sizes} have an empty layer"));
    }
    None
}

/// The macro's own checks of one supported layer, with clearer messages than the validator's.
fn check_layer(l: &LayerDesc, d: usize, c: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let LayerDesc::AffineAutoregressive { net, scale, .. } = l {
        if let Some(m) = check_net(net, d + c, 2 * d, d, c) {
            out.push(m);
        }
        if let Some(why) = scale.out_of_range() {
            out.push(format!("unsupported option: scale {scale:?} ({why})"));
        }
    }
    out
}

/// A validator error as a message about layer `i` (the validator saw it as layer 0).
fn invalid_message(e: Invalid, i: usize) -> String {
    let s = e.to_string();
    let s = s.strip_prefix("layer 0: ").unwrap_or(&s).to_string();
    match e {
        Invalid::BadOption { .. } => format!("layer {i}: unsupported option ({s})"),
        _ => format!("layer {i}: {s}"),
    }
}

/// The weights in the file's own type, for the validator and the measurement (which must see
/// exactly what the generated code holds).
enum Typed {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Typed {
    fn new(weight_type: WeightType, weights: &[f64]) -> Self {
        match weight_type {
            // Exact: the values came from f32.
            WeightType::F32 => Typed::F32(weights.iter().map(|&w| w as f32).collect()),
            WeightType::F64 => Typed::F64(weights.to_vec()),
        }
    }

    fn validate(&self, desc: &ModelDesc, ints: &[u16]) -> Result<(), Invalid> {
        match self {
            Typed::F32(w) => runtime::validate(desc, w, ints),
            Typed::F64(w) => runtime::validate(desc, w, ints),
        }
    }

    fn measure(&self, desc: &ModelDesc, ints: &[u16], precision: Precision) -> (usize, usize) {
        match (self, precision) {
            (Typed::F32(w), Precision::F32) => measure::<f32, f32>(desc, w, ints),
            (Typed::F32(w), Precision::F64) => measure::<f64, f32>(desc, w, ints),
            (Typed::F64(w), Precision::F32) => measure::<f32, f64>(desc, w, ints),
            (Typed::F64(w), Precision::F64) => measure::<f64, f64>(desc, w, ints),
        }
    }
}

/// Everything that can be checked from the bytes: the model (without `include` and `golden`,
/// which [`check`] adds), or every problem found.
pub fn check_bytes(bytes: &[u8], precision: Precision) -> Result<Model, Vec<String>> {
    let sec = file::split(bytes).map_err(|e| vec![format_reason(e)])?;
    let desc = file::decode_desc(sec.desc).map_err(|e| vec![format_reason(e)])?;
    let weight_type = sec.weight_type;
    let weights: Vec<f64> = sec.weight_values().collect();
    let ints: Vec<u16> = sec
        .ints
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (d, c) = (desc.dim as usize, desc.context_dim as usize);
    if d == 0 || d > MAX_DIM || c > MAX_DIM {
        return Err(vec![format!(
            "dimensions out of range: D = {d}, C = {c} (D in 1..={MAX_DIM}, C in 0..={MAX_DIM})"
        )]);
    }
    let mut problems = Vec::new();
    if weights.len() > MAX_WEIGHTS {
        problems.push(format!(
            "{} weights is too many to bake (at most {MAX_WEIGHTS}); use the runtime evaluator",
            weights.len()
        ));
    }

    // Non-finite weights (for f64 weights: also beyond the f32 range, which f32 evaluation reads
    // as infinite): all counted, the first few named. The other checks run on a copy where they
    // are zero, so that they still report their own problems.
    let finite = |w: f64| w.is_finite() && (w as f32).is_finite();
    let bad: Vec<usize> = (0..weights.len()).filter(|&i| !finite(weights[i])).collect();
    if !bad.is_empty() {
        let named: Vec<String> = bad
            .iter()
            .take(3)
            .map(|&i| format!("#{i} ({}) = {:e}", owner(&desc, i), weights[i]))
            .collect();
        let more = if bad.len() > 3 { ", …" } else { "" };
        let n = bad.len();
        let noun = if n == 1 { "weight is" } else { "weights are" };
        let what = match weight_type {
            WeightType::F32 => "NaN or infinite",
            WeightType::F64 => "NaN, infinite or beyond the f32 range",
        };
        problems.push(format!("{n} {noun} {what}: {}{more}", named.join(", ")));
    }
    let clean: Vec<f64> = weights.iter().map(|&w| if finite(w) { w } else { 0.0 }).collect();
    let clean = Typed::new(weight_type, &clean);

    // Each layer, on its own: kind, own checks, then the shared validator on a one-layer model.
    for (i, l) in desc.layers.iter().enumerate() {
        if !supported(l) {
            problems.push(format!(
                "layer {i}: unsupported layer kind `{}` (this macro bakes: {SUPPORTED})",
                kind_name(l)
            ));
            continue;
        }
        let own = check_layer(l, d, c);
        if !own.is_empty() {
            problems.extend(own.into_iter().map(|m| format!("layer {i}: {m}")));
            continue;
        }
        // The validator checks the base before the layers: give it a standard-normal base here
        // (the base is checked on its own below, and the layout of both by the final check).
        let mut one = desc.clone();
        one.base = BaseDesc::StandardNormal;
        one.layers.clear();
        let _ = one.layers.push(l.clone());
        if let Err(e) = clean.validate(&one, &ints) {
            problems.push(invalid_message(e, i));
        }
    }
    // The base, with no layers.
    let mut bare = desc.clone();
    bare.layers.clear();
    if let Err(e) = clean.validate(&bare, &ints) {
        problems.push(format!("base distribution: {e}"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Belt and braces: the whole model through the validator the runtime evaluator uses.
    let typed = Typed::new(weight_type, &weights);
    if let Err(e) = typed.validate(&desc, &ints) {
        return Err(vec![e.to_string()]);
    }
    let (scratch, n_params) = typed.measure(&desc, &ints, precision);
    // The sections are subslices of `bytes`: their offsets are address differences.
    let offset = |section: &[u8]| section.as_ptr() as usize - bytes.as_ptr() as usize;
    Ok(Model {
        desc,
        weights,
        weight_type,
        include: proc_macro2::TokenStream::new(),
        scratch,
        n_params,
        ints,
        weights_at: offset(sec.weights),
        ints_at: offset(sec.ints),
        golden: None,
    })
}

/// A boxed layer composition, so that the macro can build the generated code's `Chain` nesting
/// at run time and ask it (not a formula) how much scratch it needs.
struct Boxed<'a, S>(Box<dyn Bijection<S> + 'a>);

impl<S: Real> Bijection<S> for Boxed<'_, S> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn context_dim(&self) -> usize {
        self.0.context_dim()
    }
    fn n_params(&self) -> usize {
        self.0.n_params()
    }
    fn scratch_len(&self) -> usize {
        self.0.scratch_len()
    }
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        self.0.inverse(x, ctx, z, scratch)
    }
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        self.0.forward(z, ctx, x, scratch)
    }
    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        self.0.inverse_acc(x, ctx, z, ldj, scratch)
    }
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        self.0.forward_acc(z, ctx, x, ldj, scratch)
    }
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.0.inverse_vjp(x, ctx, cot, grads, scratch)
    }
    fn forward_vjp_scratch_len(&self) -> usize {
        self.0.forward_vjp_scratch_len()
    }
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.0.forward_vjp(z, ctx, cot, grads, scratch)
    }
}

/// `Chain(l₀, Chain(l₁, … l_{n−1}))`, the nesting `generate` emits (`Identity` without layers).
fn compose<'a, S: Real, W: Weight>(layers: &[AnyLayer<'a, W>], dim: usize) -> Boxed<'a, S> {
    match layers {
        [] => Boxed(Box::new(Identity { dim })),
        [only] => Boxed(Box::new(*only)),
        [first, rest @ ..] => Boxed(Box::new(Chain(*first, compose::<S, W>(rest, dim)))),
    }
}

/// Scratch elements and parameters of the baked flow, built the way the generated code builds it.
fn measure<S: Real, W: Weight>(desc: &ModelDesc, weights: &[W], ints: &[u16]) -> (usize, usize) {
    let view = Layers { desc, weights, ints };
    let layers: Vec<AnyLayer<'_, W>> = (0..view.len()).map(|i| view.layer(i)).collect();
    let base = runtime::flow_of::<S, W>(desc, weights, ints).base;
    let inner = compose::<S, W>(&layers, desc.dim as usize);
    let stats = view.context_stats();
    let layers = StandardizedContext { stats, inner };
    let flow: Flow<S, _, _> = Flow::new(layers, base);
    (flow.scratch_len(), flow.n_params())
}
