//! One-line human descriptions of layers (for `inspect`).

use flow_core::model::LayerDesc;

/// A short description of a layer: kind, network sizes, options.
pub fn layer(l: &LayerDesc) -> String {
    let sizes = |s: &[usize]| s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("x");
    match l {
        LayerDesc::Elementwise { kind, params } => format!("elementwise {kind:?} ({} params)", params.len),
        LayerDesc::AffineAutoregressive {
            net,
            scale,
            direction,
            ..
        } => format!(
            "affine autoregressive {direction:?}, MADE {} {:?}, scale {scale:?}",
            sizes(&net.sizes),
            net.activation
        ),
        LayerDesc::SplineAutoregressive {
            net,
            spline,
            direction,
            ..
        } => format!(
            "spline autoregressive {direction:?}, MADE {} {:?}, {spline:?}",
            sizes(&net.sizes),
            net.activation
        ),
        LayerDesc::AffineCoupling {
            net, scale, additive, ..
        } => format!(
            "affine coupling{}, MLP {} {:?}, scale {scale:?}",
            if *additive { " (additive)" } else { "" },
            sizes(&net.sizes),
            net.activation
        ),
        LayerDesc::SplineCoupling { net, spline, .. } => {
            format!(
                "spline coupling, MLP {} {:?}, {spline:?}",
                sizes(&net.sizes),
                net.activation
            )
        }
        LayerDesc::Planar { .. } => "planar".into(),
        LayerDesc::Radial { .. } => "radial".into(),
        LayerDesc::ActNorm { .. } => "actnorm".into(),
        LayerDesc::BatchNorm { eps, .. } => format!("batch norm (eval), eps {eps}"),
        LayerDesc::LuLinear { eps, .. } => format!("LU linear, eps {eps}"),
        LayerDesc::Permutation { perm } => format!("permutation of {}", perm.len),
        LayerDesc::ContextStandardize { params } => {
            format!("context standardization ({} context columns)", params.len / 2)
        }
    }
}
