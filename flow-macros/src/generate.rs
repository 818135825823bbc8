//! Generation: data (`static` arrays) and a typed composition of `flow-core`'s layer structs,
//! monomorphized for the model's sizes. No math is emitted: every method calls `Flow`'s kernels.
//!
//! Shape of the output (all inside `const _: () = { … };` so that nothing leaks into the caller's
//! namespace):
//!
//! ```text
//! const MODEL: &[u8] = include_bytes!(…);        // the file (rebuilds when it changes)
//! const SCRATCH: usize = …;                       // measured in `check`
//! static L0_SIZES: [usize; K] = [...];            // one set per layer (see `gen_affine_ar`)
//! static L0_PARAMS: Aligned<[W; N]> = Aligned(baked::f32_array(MODEL, at));  // an MLP's weights, from the file
//! static BASE_PARAMS: [W; M] = baked::f32_array(MODEL, at);                   // (W: f32; f64: f64_array)
//! type FlowLayers = Chain<L0, Chain<L1, L2>>;
//! static FLOW: Flow<S, FlowLayers, FlowBase> = Flow::new(Chain(…), …);
//! impl BakedFlow<S> for Name { consts, types, the scratch types, FLOW }  // every method provided
//! impl Name { consts and array methods, one call each into flow_core::baked::fixed }
//! ```
//!
//! Adding a layer kind: write `gen_<kind>(index, fields…, model) -> LayerCode` next to
//! [`gen_affine_ar`] and add its arm to [`gen_layer`] (and to `check::supported`).

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::layers::spline::{SplineKind, SplineOpts};
use flow_core::model::file::WeightType;
use flow_core::model::{BaseDesc, LayerDesc, NetDesc, Span};
use flow_core::nn::Activation;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use syn::DeriveInput;

use crate::check::{kind_name, Model};
use crate::parse::{Args, Precision};

/// What one layer (or the base) contributes: its `static`s, its type and the constant expression
/// that builds it.
pub struct LayerCode {
    /// `static` items (weights, sizes).
    pub items: TokenStream,
    /// The layer's type, e.g. `::flow_core::layers::autoregressive::AffineAutoregressive<'static, f32>`.
    pub ty: TokenStream,
    /// A constant expression of that type referring to the items.
    pub value: TokenStream,
}

/// The weight type of the generated arrays and layer types: the file's, `f32` or `f64`.
fn weight_ty(m: &Model) -> TokenStream {
    match m.weight_type {
        WeightType::F32 => quote!(f32),
        WeightType::F64 => quote!(f64),
    }
}

/// The weights of `span` as a constant expression decoding them from the model file's bytes
/// (`MODEL`, the `include_bytes!` of the file): `f32_array::<N>(MODEL, at)` or `f64_array`, exact
/// whatever the value, and the count N.
fn weight_array(m: &Model, span: Span) -> syn::Result<(TokenStream, Literal)> {
    let n = weights(m, span)?.len();
    let at = Literal::usize_unsuffixed(m.weights_at + span.offset as usize * m.weight_type.size());
    let arr = match m.weight_type {
        WeightType::F32 => quote!(baked::f32_array(MODEL, #at)),
        WeightType::F64 => quote!(baked::f64_array(MODEL, #at)),
    };
    Ok((arr, Literal::usize_unsuffixed(n)))
}

/// An `f64` option value, exactly.
fn f64_lit(v: f64) -> TokenStream {
    let bits = hex(v.to_bits(), 16);
    quote!(f64::from_bits(#bits))
}

/// `0x3f80_0000`-style literal.
fn hex(v: u64, digits: usize) -> TokenStream {
    let s = format!("{v:0digits$x}");
    let mut grouped = String::from("0x");
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 4 == 0 {
            grouped.push('_');
        }
        grouped.push(ch);
    }
    // A hex integer literal always parses; fall back to decimal rather than panic.
    grouped.parse::<TokenStream>().unwrap_or_else(|_| {
        let lit = Literal::u64_unsuffixed(v);
        quote!(#lit)
    })
}

/// The weights of `span` (the checker guaranteed they exist).
fn weights(m: &Model, span: Span) -> syn::Result<&[f64]> {
    span.range(m.weights.len())
        .and_then(|r| m.weights.get(r))
        .ok_or_else(|| {
            syn::Error::new(
                proc_macro2::Span::call_site(),
                "internal: weight span out of range",
            )
        })
}

/// `path::Variant` for a unit variant, named by its `Debug` form (so new unit variants need no
/// edit here); an error for anything else.
fn unit_variant(path: TokenStream, value: &dyn core::fmt::Debug, what: &str) -> syn::Result<TokenStream> {
    let name = format!("{value:?}");
    match syn::parse_str::<syn::Ident>(&name) {
        Ok(v) => Ok(quote!(#path::#v)),
        Err(_) => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("unsupported {what} `{name}`"),
        )),
    }
}

fn activation(a: Activation) -> syn::Result<TokenStream> {
    unit_variant(quote!(::flow_core::nn::Activation), &a, "activation")
}

fn scale(s: AffineScale) -> syn::Result<TokenStream> {
    let p = quote!(::flow_core::layers::affine::AffineScale);
    Ok(match s {
        AffineScale::SoftclipExp { bound } => {
            let b = f64_lit(bound);
            quote!(#p::SoftclipExp { bound: #b })
        }
        AffineScale::SoftplusEps { eps } => {
            let e = f64_lit(eps);
            quote!(#p::SoftplusEps { eps: #e })
        }
        AffineScale::Sigmoid { eps } => {
            let e = f64_lit(eps);
            quote!(#p::Sigmoid { eps: #e })
        }
        AffineScale::SoftplusOffset { offset, eps } => {
            let (o, e) = (f64_lit(offset), f64_lit(eps));
            quote!(#p::SoftplusOffset { offset: #o, eps: #e })
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("unsupported scale {other:?}"),
            ))
        }
    })
}

/// An MLP's `static`s (`L{i}_SIZES`, `L{i}_PARAMS`) and its `Mlp` value.
fn gen_net(i: usize, net: &NetDesc, m: &Model) -> syn::Result<(TokenStream, TokenStream)> {
    let sizes_id = format_ident!("L{}_SIZES", i);
    let params_id = format_ident!("L{}_PARAMS", i);
    let sizes = net.sizes.iter().map(|&s| Literal::usize_unsuffixed(s));
    let k = Literal::usize_unsuffixed(net.sizes.len());
    let (arr, n) = weight_array(m, net.params)?;
    let wt = weight_ty(m);
    let act = activation(net.activation)?;
    let residual = net.residual;
    Ok((
        quote! {
            static #sizes_id: [usize; #k] = [#(#sizes),*];
            static #params_id: Aligned<[#wt; #n]> = Aligned(#arr);
        },
        quote! {
            ::flow_core::nn::Mlp { sizes: &#sizes_id, params: &#params_id.0, activation: #act, residual: #residual }
        },
    ))
}

/// `LayerDesc::AffineAutoregressive` → `flow_core::layers::autoregressive::AffineAutoregressive`.
fn gen_affine_ar(
    i: usize,
    net: &NetDesc,
    scale_: AffineScale,
    layout: AffineLayout,
    direction: Direction,
    m: &Model,
) -> syn::Result<LayerCode> {
    let (items, mlp) = gen_net(i, net, m)?;
    let p = quote!(::flow_core::layers::autoregressive);
    let d = Literal::usize_unsuffixed(m.desc.dim as usize);
    let sc = scale(scale_)?;
    let lay = unit_variant(
        quote!(::flow_core::layers::affine::AffineLayout),
        &layout,
        "affine layout",
    )?;
    let dir = unit_variant(
        quote!(::flow_core::layers::autoregressive::Direction),
        &direction,
        "direction",
    )?;
    let wt = weight_ty(m);
    Ok(LayerCode {
        items,
        ty: quote!(#p::AffineAutoregressive<'static, #wt>),
        value: quote! {
            #p::AffineAutoregressive {
                net: #mlp,
                dim: #d,
                transformer: ::flow_core::layers::affine::Affine::new(#sc, #lay),
                direction: #dir,
            }
        },
    })
}

/// `static L{i}_PARAMS: [W; N]` for a layer's own weights.
fn gen_params(i: usize, span: Span, m: &Model) -> syn::Result<(TokenStream, proc_macro2::Ident)> {
    let id = format_ident!("L{}_PARAMS", i);
    let (arr, n) = weight_array(m, span)?;
    let wt = weight_ty(m);
    Ok((quote!(static #id: [#wt; #n] = #arr;), id))
}

/// `static L{i}_INTS: [u16; N]` (coupling masks, permutations).
fn gen_ints(i: usize, span: Span, m: &Model) -> syn::Result<(TokenStream, proc_macro2::Ident)> {
    let id = format_ident!("L{}_INTS", i);
    let v = span
        .range(m.ints.len())
        .and_then(|r| m.ints.get(r))
        .ok_or_else(|| {
            syn::Error::new(
                proc_macro2::Span::call_site(),
                "internal: integer span out of range",
            )
        })?;
    let n = Literal::usize_unsuffixed(v.len());
    let at = Literal::usize_unsuffixed(m.ints_at + 2 * span.offset as usize);
    Ok((quote!(static #id: [u16; #n] = baked::u16_array(MODEL, #at);), id))
}

/// A `SplineOpts` constant.
fn spline_opts(o: &SplineOpts) -> syn::Result<TokenStream> {
    let p = quote!(::flow_core::layers::spline);
    let bins = Literal::usize_unsuffixed(o.bins);
    let (bound, ls) = (f64_lit(o.bound), f64_lit(o.logit_scale));
    let kind = match o.kind {
        SplineKind::Zuko { slope } => {
            let s = f64_lit(slope);
            quote!(#p::SplineKind::Zuko { slope: #s })
        }
        SplineKind::Nflows {
            min_bin_width,
            min_bin_height,
            min_derivative,
        } => {
            let (a, b, c) = (
                f64_lit(min_bin_width),
                f64_lit(min_bin_height),
                f64_lit(min_derivative),
            );
            quote!(#p::SplineKind::Nflows { min_bin_width: #a, min_bin_height: #b, min_derivative: #c })
        }
        SplineKind::FlowJax {
            min_width,
            min_derivative,
        } => {
            let (a, c) = (f64_lit(min_width), f64_lit(min_derivative));
            quote!(#p::SplineKind::FlowJax { min_width: #a, min_derivative: #c })
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("unsupported spline {other:?}"),
            ))
        }
    };
    Ok(quote!(#p::SplineOpts { bins: #bins, bound: #bound, kind: #kind, logit_scale: #ls }))
}

/// `LayerDesc::SplineAutoregressive` → `SplineAutoregressive`.
fn gen_spline_ar(
    i: usize,
    net: &NetDesc,
    spline: &SplineOpts,
    direction: Direction,
    m: &Model,
) -> syn::Result<LayerCode> {
    let (items, mlp) = gen_net(i, net, m)?;
    let d = Literal::usize_unsuffixed(m.desc.dim as usize);
    let sp = spline_opts(spline)?;
    let dir = unit_variant(
        quote!(::flow_core::layers::autoregressive::Direction),
        &direction,
        "direction",
    )?;
    let p = quote!(::flow_core::layers::autoregressive);
    let wt = weight_ty(m);
    Ok(LayerCode {
        items,
        ty: quote!(#p::SplineAutoregressive<'static, #wt>),
        value: quote!(#p::SplineAutoregressive { net: #mlp, dim: #d, transformer: #sp, direction: #dir }),
    })
}

/// `LayerDesc::AffineCoupling` → `AffineCoupling` with a `u16` mask.
fn gen_affine_coupling(
    i: usize,
    net: &NetDesc,
    mask: Span,
    scale_: AffineScale,
    layout: AffineLayout,
    additive: bool,
    m: &Model,
) -> syn::Result<LayerCode> {
    let (net_items, mlp) = gen_net(i, net, m)?;
    let (mask_items, mask_id) = gen_ints(i, mask, m)?;
    let sc = scale(scale_)?;
    let lay = unit_variant(
        quote!(::flow_core::layers::affine::AffineLayout),
        &layout,
        "affine layout",
    )?;
    let p = quote!(::flow_core::layers::coupling);
    let wt = weight_ty(m);
    Ok(LayerCode {
        items: quote!(#net_items #mask_items),
        ty: quote!(#p::AffineCoupling<'static, #wt, u16>),
        value: quote!(#p::AffineCoupling { net: #mlp, mask: &#mask_id, transformer: ::flow_core::layers::affine::Affine { scale: #sc, layout: #lay, additive: #additive } }),
    })
}

/// `LayerDesc::SplineCoupling` → `SplineCoupling` with a `u16` mask.
fn gen_spline_coupling(
    i: usize,
    net: &NetDesc,
    mask: Span,
    spline: &SplineOpts,
    m: &Model,
) -> syn::Result<LayerCode> {
    let (net_items, mlp) = gen_net(i, net, m)?;
    let (mask_items, mask_id) = gen_ints(i, mask, m)?;
    let sp = spline_opts(spline)?;
    let p = quote!(::flow_core::layers::coupling);
    let wt = weight_ty(m);
    Ok(LayerCode {
        items: quote!(#net_items #mask_items),
        ty: quote!(#p::SplineCoupling<'static, #wt, u16>),
        value: quote!(#p::SplineCoupling { net: #mlp, mask: &#mask_id, transformer: #sp }),
    })
}

/// Builds a layer's value from the name of its weight array.
type ValueOf<'a> = Box<dyn Fn(&proc_macro2::Ident) -> TokenStream + 'a>;

/// Layers that are just a weight slice (plus constants): planar, radial, ActNorm, batch norm, LU,
/// elementwise.
fn gen_simple(i: usize, l: &LayerDesc, m: &Model) -> syn::Result<LayerCode> {
    let d = Literal::usize_unsuffixed(m.desc.dim as usize);
    let l_ = quote!(::flow_core::layers);
    let wt = weight_ty(m);
    let (span, ty, value): (Span, TokenStream, ValueOf<'_>) = match l {
        LayerDesc::Planar { params } => (
            *params,
            quote!(#l_::planar::Planar<'static, #wt>),
            Box::new(|id| quote!(#l_::planar::Planar { params: &#id })),
        ),
        LayerDesc::Radial { params } => (
            *params,
            quote!(#l_::radial::Radial<'static, #wt>),
            Box::new(|id| quote!(#l_::radial::Radial { params: &#id })),
        ),
        LayerDesc::ActNorm { params } => (
            *params,
            quote!(#l_::actnorm::ActNorm<'static, #wt>),
            Box::new(|id| quote!(#l_::actnorm::ActNorm { params: &#id })),
        ),
        LayerDesc::BatchNorm { params, eps } => {
            let e = f64_lit(*eps);
            (
                *params,
                quote!(#l_::batchnorm::BatchNorm<'static, #wt>),
                Box::new(move |id| quote!(#l_::batchnorm::BatchNorm { params: &#id, eps: #e })),
            )
        }
        LayerDesc::LuLinear { params, eps } => {
            let e = f64_lit(*eps);
            let d = d.clone();
            (
                *params,
                quote!(#l_::lu_linear::LuLinear<'static, #wt>),
                Box::new(move |id| quote!(#l_::lu_linear::LuLinear { dim: #d, params: &#id, eps: #e })),
            )
        }
        LayerDesc::Elementwise { kind, params } => {
            let k = unit_variant(
                quote!(#l_::elementwise::ElementwiseKind),
                kind,
                "elementwise kind",
            )?;
            let d = d.clone();
            (
                *params,
                quote!(#l_::elementwise::Elementwise<'static, #wt>),
                Box::new(move |id| quote!(#l_::elementwise::Elementwise { kind: #k, dim: #d, params: &#id })),
            )
        }
        other => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("internal: {} is not a simple layer", kind_name(other)),
            ))
        }
    };
    let (items, id) = gen_params(i, span, m)?;
    Ok(LayerCode {
        items,
        ty,
        value: value(&id),
    })
}

/// `LayerDesc::Permutation` → `Permutation`.
fn gen_permutation(i: usize, perm: Span, m: &Model) -> syn::Result<LayerCode> {
    let (items, id) = gen_ints(i, perm, m)?;
    let p = quote!(::flow_core::layers::permutation);
    Ok(LayerCode {
        items,
        ty: quote!(#p::Permutation<'static>),
        value: quote!(#p::Permutation { perm: &#id }),
    })
}

/// Dispatch on the layer kind: one `gen_*` function per kind.
fn gen_layer(i: usize, l: &LayerDesc, m: &Model) -> syn::Result<LayerCode> {
    match l {
        LayerDesc::AffineAutoregressive {
            net,
            scale,
            layout,
            direction,
            ..
        } => gen_affine_ar(i, net, *scale, *layout, *direction, m),
        LayerDesc::SplineAutoregressive {
            net,
            spline,
            direction,
            ..
        } => gen_spline_ar(i, net, spline, *direction, m),
        LayerDesc::AffineCoupling {
            net,
            mask,
            scale,
            layout,
            additive,
        } => gen_affine_coupling(i, net, *mask, *scale, *layout, *additive, m),
        LayerDesc::SplineCoupling { net, mask, spline } => gen_spline_coupling(i, net, *mask, spline, m),
        LayerDesc::Permutation { perm } => gen_permutation(i, *perm, m),
        // `generate` takes a leading one off; the validator allows no other.
        LayerDesc::ContextStandardize { .. } => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("layer {i}: context standardization must be the first layer"),
        )),
        LayerDesc::Planar { .. }
        | LayerDesc::Radial { .. }
        | LayerDesc::ActNorm { .. }
        | LayerDesc::BatchNorm { .. }
        | LayerDesc::LuLinear { .. }
        | LayerDesc::Elementwise { .. } => gen_simple(i, l, m),
        // `check` rejects unknown kinds first; never panic if it did not.
        #[allow(unreachable_patterns)]
        other => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("unsupported layer kind `{}`", kind_name(other)),
        )),
    }
}

/// The base distribution.
fn gen_base(m: &Model) -> syn::Result<LayerCode> {
    let p = quote!(::flow_core::base);
    let d = Literal::usize_unsuffixed(m.desc.dim as usize);
    let wt = weight_ty(m);
    let params = |span: Span| weight_array(m, span);
    Ok(match &m.desc.base {
        BaseDesc::StandardNormal => LayerCode {
            items: quote!(),
            ty: quote!(#p::StandardNormal),
            value: quote!(#p::StandardNormal { dim: #d }),
        },
        BaseDesc::DiagNormal { params: span } => {
            let (arr, n) = params(*span)?;
            LayerCode {
                items: quote!(static BASE_PARAMS: [#wt; #n] = #arr;),
                ty: quote!(#p::DiagNormal<'static, #wt>),
                value: quote!(#p::DiagNormal { params: &BASE_PARAMS }),
            }
        }
        BaseDesc::CholeskyNormal { params: span } => {
            let (arr, n) = params(*span)?;
            LayerCode {
                items: quote!(static BASE_PARAMS: [#wt; #n] = #arr;),
                ty: quote!(#p::CholeskyNormal<'static, #wt>),
                value: quote!(#p::CholeskyNormal { dim: #d, params: &BASE_PARAMS }),
            }
        }
        BaseDesc::GaussianMixture {
            components,
            params: span,
        } => {
            let (arr, n) = params(*span)?;
            let k = Literal::usize_unsuffixed(*components as usize);
            LayerCode {
                items: quote!(static BASE_PARAMS: [#wt; #n] = #arr;),
                ty: quote!(#p::GaussianMixture<'static, #wt>),
                value: quote!(#p::GaussianMixture { dim: #d, components: #k, params: &BASE_PARAMS }),
            }
        }
        BaseDesc::StudentT { params: span } => {
            let (arr, n) = params(*span)?;
            LayerCode {
                items: quote!(static BASE_PARAMS: [#wt; #n] = #arr;),
                ty: quote!(#p::StudentT<'static, #wt>),
                value: quote!(#p::StudentT { params: &BASE_PARAMS }),
            }
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("unsupported base {other:?}"),
            ))
        }
    })
}

/// The layers as `Chain(l₀, Chain(l₁, …))` (`Identity` without layers): the same nesting
/// `check::measure` builds to measure the scratch.
fn compose(layers: Vec<LayerCode>, dim: usize) -> LayerCode {
    let chain = quote!(::flow_core::layers::chain::Chain);
    let mut it = layers.into_iter().rev();
    let Some(mut acc) = it.next() else {
        let d = Literal::usize_unsuffixed(dim);
        return LayerCode {
            items: quote!(),
            ty: quote!(::flow_core::baked::Identity),
            value: quote!(::flow_core::baked::Identity { dim: #d }),
        };
    };
    for l in it {
        let (items, ty, value) = (l.items, l.ty, l.value);
        let (acc_items, acc_ty, acc_value) = (acc.items, acc.ty, acc.value);
        acc = LayerCode {
            items: quote!(#items #acc_items),
            ty: quote!(#chain<#ty, #acc_ty>),
            value: quote!(#chain(#value, #acc_value)),
        };
    }
    acc
}

/// `StandardizedContext { stats, inner }`: the context standardization (layer 0) around `inner`.
fn wrap_context(span: Span, inner: LayerCode, m: &Model) -> syn::Result<LayerCode> {
    let (items, id) = gen_params(0, span, m)?;
    let p = quote!(::flow_core::layers::context);
    let wt = weight_ty(m);
    let (inner_items, inner_ty, inner_value) = (inner.items, inner.ty, inner.value);
    Ok(LayerCode {
        items: quote!(#items #inner_items),
        ty: quote!(#p::StandardizedContext<'static, #wt, #inner_ty>),
        value: quote!(#p::StandardizedContext { stats: &#id, inner: #inner_value }),
    })
}

/// The whole expansion.
pub fn generate(item: &DeriveInput, args: &Args, m: &Model) -> syn::Result<TokenStream> {
    let name = &item.ident;
    let s = match args.precision {
        Precision::F32 => quote!(f32),
        Precision::F64 => quote!(f64),
    };
    let s_size = match args.precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    };
    let dim = m.desc.dim as usize;
    let cdim = m.desc.context_dim as usize;
    // A leading context standardization wraps the layers that map x (as `runtime::Layers` does).
    let (context, maps) = match m.desc.layers.split_first() {
        Some((LayerDesc::ContextStandardize { params }, rest)) => (Some(*params), rest),
        _ => (None, &m.desc.layers[..]),
    };
    let first = usize::from(context.is_some());
    let layers = maps
        .iter()
        .enumerate()
        .map(|(i, l)| gen_layer(first + i, l, m))
        .collect::<syn::Result<Vec<_>>>()?;
    let mut layers = compose(layers, dim);
    if let Some(span) = context {
        layers = wrap_context(span, layers, m)?;
    }
    let base = gen_base(m)?;

    let (layer_items, layers_ty, layers_value) = (layers.items, layers.ty, layers.value);
    let (base_items, base_ty, base_value) = (base.items, base.ty, base.value);
    let include = &m.include;
    let path = args.path.value();
    let d = Literal::usize_unsuffixed(dim);
    let c = Literal::usize_unsuffixed(cdim);
    let scratch = Literal::usize_unsuffixed(m.scratch);
    let params = Literal::usize_unsuffixed(m.n_params);
    let weight_bytes = Literal::usize_unsuffixed(m.weight_type.size() * m.n_params);
    let s_size = Literal::usize_unsuffixed(s_size);
    // The batch methods keep `BLOCK` samples' scratch (BLOCK is 1 on targets without SIMD).
    let scratch_bytes = quote!(#s_size * SCRATCH * BLOCK);

    // Context: an argument `ctx: &[S; C]` when C > 0, else nothing (and `&[]` to the kernels).
    let (ctx_param, ctx) = if cdim > 0 {
        (quote!(ctx: &[#s; #c],), quote!(ctx))
    } else {
        (quote!(), quote!(&[]))
    };
    let ctx_doc = if cdim > 0 { " given the context `ctx`" } else { "" };
    let doc = |what: &str| format!(" {what}{ctx_doc} (baked from `{path}`).");
    let d_log_prob = doc("log p(x)");
    let d_grad = doc("∇ₓ log p(x)");
    let d_inverse = doc("Data → base: the base point z and log|det ∂z/∂x|");
    let d_forward = doc("Base → data: the data point x and log|det ∂x/∂z|");
    let d_sample = doc("A sample from standard-normal base noise `eps`");
    let d_sample_with = doc("A sample with standard-normal noise drawn from `rng`");
    let d_sample_batch = doc(
        "Samples from the base noise in each row of `eps` into the rows of `xs` (the first min(eps.len(), xs.len()) rows)",
    );
    let d_batch = doc("log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows)");
    let d_sample_lp = doc(
        "A sample from standard-normal base noise `eps` and its log p from the same pass, without inverting (the sample is `sample`'s)",
    );
    let d_sample_lp_batch = doc(
        "`sample_and_log_prob` of each row of `eps`: samples into the rows of `xs`, log p into `out` (the first min(eps.len(), xs.len(), out.len()) rows)",
    );
    let d_grad_batch = doc(
        "∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first min(xs.len(), grads.len(), out.len()) rows)",
    );

    let (golden_impl, golden_test) = gen_golden(item, args, m);
    let f = quote!(fixed);

    Ok(quote! {
        #item

        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        #[allow(non_upper_case_globals, missing_docs, long_running_const_eval)]
        const _: () = {
            use ::flow_core::baked::{self, fixed};
            use ::flow_core::block::{Aligned, BLOCK};
            /// The model file, whose bytes the weights are decoded from at compile time.
            const MODEL: &[u8] = ::core::include_bytes!(#include);
            /// Scratch elements every method needs: `Flow::scratch_len` of `FLOW`, measured by the macro.
            const SCRATCH: usize = #scratch;
            #layer_items
            #base_items
            type FlowLayers = #layers_ty;
            type FlowBase = #base_ty;
            static FLOW: ::flow_core::Flow<#s, FlowLayers, FlowBase> = ::flow_core::Flow::new(#layers_value, #base_value);

            #[automatically_derived]
            impl ::flow_core::baked::BakedFlow<#s> for #name {
                const DIM: usize = #d;
                const CONTEXT_DIM: usize = #c;
                const PARAMS: usize = #params;
                const WEIGHT_BYTES: usize = #weight_bytes;
                type Layers = FlowLayers;
                type Base = FlowBase;
                type Scratch = [#s; SCRATCH];
                type BlockScratch = Aligned<[#s; SCRATCH * BLOCK]>;
                const FLOW: &'static ::flow_core::Flow<#s, FlowLayers, FlowBase> = &FLOW;
            }

            #[automatically_derived]
            impl #name {
                /// Data dimension D.
                pub const DIM: usize = #d;
                /// Context dimension C (0: unconditional).
                pub const CONTEXT_DIM: usize = #c;
                /// Number of parameters (layers, then base).
                pub const PARAMS: usize = #params;
                /// Bytes of weights in `static` arrays (flash).
                pub const WEIGHT_BYTES: usize = #weight_bytes;
                /// Bytes of the largest scratch array a method puts on the stack (the batch methods: `BLOCK` samples').
                pub const SCRATCH_BYTES: usize = #scratch_bytes;

                #[doc = #d_log_prob]
                pub fn log_prob(x: &[#s; #d], #ctx_param) -> #s {
                    #f::log_prob::<Self, #s>(x, #ctx)
                }

                #[doc = #d_grad]
                pub fn grad_log_prob(x: &[#s; #d], #ctx_param) -> [#s; #d] {
                    #f::grad_log_prob::<Self, #s, #d>(x, #ctx)
                }

                #[doc = #d_inverse]
                pub fn inverse(x: &[#s; #d], #ctx_param) -> ([#s; #d], #s) {
                    #f::inverse::<Self, #s, #d>(x, #ctx)
                }

                #[doc = #d_forward]
                pub fn forward(z: &[#s; #d], #ctx_param) -> ([#s; #d], #s) {
                    #f::forward::<Self, #s, #d>(z, #ctx)
                }

                #[doc = #d_sample]
                pub fn sample(eps: &[#s; #d], #ctx_param) -> [#s; #d] {
                    #f::sample::<Self, #s, #d>(eps, #ctx)
                }

                #[doc = #d_sample_with]
                pub fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(rng: &mut R, #ctx_param) -> [#s; #d] {
                    #f::sample_with::<Self, #s, R, #d>(rng, #ctx)
                }

                #[doc = #d_sample_lp]
                pub fn sample_and_log_prob(eps: &[#s; #d], #ctx_param) -> ([#s; #d], #s) {
                    #f::sample_and_log_prob::<Self, #s, #d>(eps, #ctx)
                }

                #[doc = #d_sample_lp_batch]
                pub fn sample_and_log_prob_batch(eps: &[[#s; #d]], #ctx_param xs: &mut [[#s; #d]], out: &mut [#s]) {
                    #f::sample_and_log_prob_batch::<Self, #s, #d>(eps, #ctx, xs, out)
                }

                #[doc = #d_batch]
                pub fn log_prob_batch(xs: &[[#s; #d]], #ctx_param out: &mut [#s]) {
                    #f::log_prob_batch::<Self, #s, #d>(xs, #ctx, out)
                }

                #[doc = #d_sample_batch]
                pub fn sample_batch(eps: &[[#s; #d]], #ctx_param xs: &mut [[#s; #d]]) {
                    #f::sample_batch::<Self, #s, #d>(eps, #ctx, xs)
                }

                #[doc = #d_grad_batch]
                pub fn grad_log_prob_batch(xs: &[[#s; #d]], #ctx_param grads: &mut [[#s; #d]], out: &mut [#s]) {
                    #f::grad_log_prob_batch::<Self, #s, #d>(xs, #ctx, grads, out)
                }
            }

            #golden_impl
        };

        #golden_test
    })
}

/// `[[f64::from_bits(…), …], …]`.
fn f64_rows(rows: &[Vec<f64>]) -> TokenStream {
    let rows = rows.iter().map(|r| {
        let v = r.iter().map(|&x| f64_lit(x));
        quote!([#(#v),*])
    });
    quote!([#(#rows),*])
}

/// The golden-vector check: `golden_errors()` and `GOLDEN_TOLERANCE` on the type, and (unless
/// `verify = false`) a `#[cfg(test)]` test in the caller's crate that asserts them.
fn gen_golden(item: &DeriveInput, args: &Args, m: &Model) -> (TokenStream, TokenStream) {
    let Some(g) = &m.golden else {
        return (quote!(), quote!());
    };
    let name = &item.ident;
    // The tolerance table of `flow_core::model::golden`.
    let (s, tol) = match args.precision {
        Precision::F32 => (quote!(f32), quote!(::flow_core::model::golden::TOL_F32)),
        Precision::F64 => (quote!(f64), quote!(::flow_core::model::golden::TOL_F64)),
    };
    let d = Literal::usize_unsuffixed(m.desc.dim as usize);
    let c = Literal::usize_unsuffixed(m.desc.context_dim as usize);
    let n = Literal::usize_unsuffixed(g.points.len());
    let k = Literal::usize_unsuffixed(g.noise.len());
    let (points, context, base, noise, nctx, sample) = (
        f64_rows(&g.points),
        f64_rows(&g.context),
        f64_rows(&g.base),
        f64_rows(&g.noise),
        f64_rows(&g.noise_context),
        f64_rows(&g.sample),
    );
    let lp = g.log_prob.iter().map(|&v| f64_lit(v));
    let ldj = g.ldj.iter().map(|&v| f64_lit(v));
    let ctx_arg = if m.desc.context_dim > 0 {
        quote!(, &cv)
    } else {
        quote!()
    };
    let path = args.path.value();
    let doc = format!(
        " Largest errors `[log_prob, base point, log-det, sample]` of the baked methods against the golden vectors stored in `{path}`, each relative to `1 + |reference|` (NaN-safe: a NaN where the reference is a number counts as infinite)."
    );
    let imp = quote! {
        #[automatically_derived]
        impl #name {
            /// Tolerance of [`Self::golden_errors`] for this precision.
            pub const GOLDEN_TOLERANCE: f64 = #tol;

            #[doc = #doc]
            pub fn golden_errors() -> [f64; 4] {
                const POINTS: [[f64; #d]; #n] = #points;
                const CONTEXT: [[f64; #c]; #n] = #context;
                const LOG_PROB: [f64; #n] = [#(#lp),*];
                const BASE: [[f64; #d]; #n] = #base;
                const LDJ: [f64; #n] = [#(#ldj),*];
                const NOISE: [[f64; #d]; #k] = #noise;
                const NOISE_CONTEXT: [[f64; #c]; #k] = #nctx;
                const SAMPLE: [[f64; #d]; #k] = #sample;
                fn rel(a: f64, b: f64) -> f64 {
                    if a == b {
                        return 0.0;
                    }
                    let e = (a - b) / (1.0 + if b < 0.0 { -b } else { b });
                    let e = if e < 0.0 { -e } else { e };
                    if e == e { e } else { f64::INFINITY }
                }
                fn keep(worst: &mut f64, e: f64) {
                    if e > *worst {
                        *worst = e;
                    }
                }
                // Iterators and constant indices only: no panic path in the generated code.
                let mut worst = [0.0f64; 4];
                let points = POINTS.iter().zip(CONTEXT.iter());
                let expected = LOG_PROB.iter().zip(BASE.iter().zip(LDJ.iter()));
                for ((p, c), (&lp, (base, &ldj))) in points.zip(expected) {
                    let x = p.map(|v| v as #s);
                    let cv = c.map(|v| v as #s);
                    let _ = &cv;
                    keep(&mut worst[0], rel(Self::log_prob(&x #ctx_arg) as f64, lp));
                    let (z, l) = Self::inverse(&x #ctx_arg);
                    for (&zj, &bj) in z.iter().zip(base.iter()) {
                        keep(&mut worst[1], rel(zj as f64, bj));
                    }
                    keep(&mut worst[2], rel(l as f64, ldj));
                }
                let noise = NOISE.iter().zip(NOISE_CONTEXT.iter());
                for ((n, c), sample) in noise.zip(SAMPLE.iter()) {
                    let e = n.map(|v| v as #s);
                    let cv = c.map(|v| v as #s);
                    let _ = &cv;
                    let x = Self::sample(&e #ctx_arg);
                    for (&xj, &sj) in x.iter().zip(sample.iter()) {
                        keep(&mut worst[3], rel(xj as f64, sj));
                    }
                }
                worst
            }
        }
    };
    if !args.verify {
        return (imp, quote!());
    }
    let test_name = format_ident!("__flow_golden_vectors_of_{}", name);
    let msg = format!("{name} (baked from `{path}`) disagrees with the model's golden vectors: ");
    let test = quote! {
        #[cfg(test)]
        #[test]
        #[allow(non_snake_case)]
        fn #test_name() {
            let e = #name::golden_errors();
            let tol = #name::GOLDEN_TOLERANCE;
            assert!(
                e.iter().all(|&v| v <= tol),
                "{}[log_prob, base, log_det, sample] errors {:?} > tolerance {}",
                #msg,
                e,
                tol
            );
        }
    };
    (imp, test)
}
