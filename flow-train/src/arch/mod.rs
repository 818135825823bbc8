//! Architectures: the layer stacks `flow-train fit --flow …` builds, with their initial weights.
//!
//! Defaults (chosen to fit the 2-D benchmarks well, and to match zuko's where zuko has one):
//! - `maf` / `iaf`: affine autoregressive layers, orders alternating natural / reversed (zuko),
//!   scale `exp(softclip(a, ln 1e3))` (zuko's slope 1e-3), hidden 64×64 ReLU.
//! - `nsf`: autoregressive rational-quadratic splines, 8 bins on [−5, 5], zuko's parameterization.
//! - `realnvp` / `nsf-coupling`: coupling layers with alternating halves as masks.
//! - `planar` / `radial`: `transforms` single layers (no network).
//!
//! Networks use PyTorch's default initialization (weights and biases uniform in ±1/√fan_in);
//! the last layer of every conditioner is scaled by 1e-2 so each layer starts close to the identity.
//! Masked MADE weights are zero and stay zero (their gradients are masked).

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::layers::elementwise::ElementwiseKind;
use flow_core::model::{LayerDesc, Span};
use flow_core::nn::Activation;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ArchError, UnknownName};

mod base;
mod nets;
mod spline;

pub use base::BaseKind;

pub use nets::{coupling_mask, Trainable};
use nets::{push_coupling_net, push_made};

/// The flow families the CLI can fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowKind {
    /// Masked autoregressive flow (affine).
    Maf,
    /// Inverse autoregressive flow (affine).
    Iaf,
    /// RealNVP affine coupling.
    Realnvp,
    /// Neural spline flow, autoregressive.
    Nsf,
    /// Neural spline flow, coupling.
    NsfCoupling,
    /// Planar flows.
    Planar,
    /// Radial flows.
    Radial,
}

impl FlowKind {
    /// Every family, in the order of `flow-train fit --help`.
    pub const ALL: [FlowKind; 7] = [
        FlowKind::Maf,
        FlowKind::Iaf,
        FlowKind::Realnvp,
        FlowKind::Nsf,
        FlowKind::NsfCoupling,
        FlowKind::Planar,
        FlowKind::Radial,
    ];

    /// Transforms of a flow of this family when none are asked for: 16 planar or radial maps
    /// (each is cheap and weak), 5 of the others.
    pub fn default_transforms(self) -> usize {
        match self {
            FlowKind::Planar | FlowKind::Radial => 16,
            _ => 5,
        }
    }

    /// One line on the family (`flow-train fit --help`).
    pub fn about(self) -> &'static str {
        match self {
            FlowKind::Maf => "Masked autoregressive flow (affine)",
            FlowKind::Iaf => "Inverse autoregressive flow (affine)",
            FlowKind::Realnvp => "RealNVP affine coupling",
            FlowKind::Nsf => "Neural spline flow, autoregressive",
            FlowKind::NsfCoupling => "Neural spline flow, coupling",
            FlowKind::Planar => "Planar flows",
            FlowKind::Radial => "Radial flows",
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Maf => "maf",
            FlowKind::Iaf => "iaf",
            FlowKind::Realnvp => "realnvp",
            FlowKind::Nsf => "nsf",
            FlowKind::NsfCoupling => "nsf-coupling",
            FlowKind::Planar => "planar",
            FlowKind::Radial => "radial",
        }
    }
}

impl std::str::FromStr for FlowKind {
    type Err = UnknownName;

    /// The family named `s` ([`FlowKind::name`]).
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                kind: "flow",
                name: s.into(),
                choices: format!("one of {}", names.join(", ")),
            })
    }
}

/// Shape of the flow to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Family.
    pub flow: FlowKind,
    /// Number of transforms.
    pub transforms: usize,
    /// Hidden widths of every conditioner.
    pub hidden: Vec<usize>,
    /// Spline bins.
    pub bins: usize,
    /// Spline bound B.
    pub bound: f64,
    /// Hidden activation.
    pub activation: Activation,
    /// Fixed elementwise maps applied to the data first (before the standardization), e.g.
    /// `Log` for positive data or `Logit` for data in (0, 1).
    #[serde(default)]
    pub pre: Vec<ElementwiseKind>,
    /// Coupling masks on the checkerboard of a row-major `L × L` lattice when `D = L²` (this is
    /// `L`; 0 = alternate features, see [`coupling_mask`]).
    #[serde(default)]
    pub checkerboard: usize,
    /// The base distribution (trained with the layers unless standard).
    #[serde(default)]
    pub base: BaseKind,
}

impl Default for ArchConfig {
    fn default() -> Self {
        ArchConfig {
            flow: FlowKind::Maf,
            transforms: 5,
            hidden: vec![64, 64],
            bins: 8,
            bound: 5.0,
            activation: Activation::Relu,
            pre: Vec::new(),
            checkerboard: 0,
            base: BaseKind::Standard,
        }
    }
}

/// zuko's affine scale: `ln s = softclip(a, −ln 1e-3)`.
pub fn zuko_scale() -> AffineScale {
    AffineScale::SoftclipExp {
        bound: -(1e-3f64).ln(),
    }
}

/// Builds an untrained model of dimension `d` with `c` context inputs. `standardize` holds the
/// per-column (mean, std) of the training data after the `pre` maps; it becomes a fixed affine
/// layer after them. `context` holds the (mean, std) of the `c` context columns; it becomes the
/// model's fixed context standardization (its first layer), so the model takes raw-unit context.
pub fn build(
    cfg: &ArchConfig,
    d: usize,
    c: usize,
    standardize: Option<(&[f64], &[f64])>,
    context: Option<(&[f64], &[f64])>,
    rng: &mut ChaCha8Rng,
) -> Result<Trainable, ArchError> {
    if d == 0 {
        return Err("no columns to model".into());
    }
    if d == 1 && c == 0 && matches!(cfg.flow, FlowKind::Realnvp | FlowKind::NsfCoupling) {
        return Err(format!(
            "{} needs at least 2 columns (or context columns) to condition on; use maf or nsf for 1 column",
            cfg.flow.name()
        )
        .into());
    }
    let mut t = Trainable::new(d, c);
    if let Some((mean, std)) = context {
        if mean.len() != c || std.len() != c || std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(format!(
                "the context standardization needs {c} means and {c} positive standard deviations"
            )
            .into());
        }
        let mut p = mean.to_vec();
        p.extend_from_slice(std);
        let params = t.push(&p, &vec![false; p.len()]);
        t.parts.push_layer(LayerDesc::ContextStandardize { params });
    }
    for &kind in &cfg.pre {
        if kind.n_params(d) != 0 {
            return Err(format!("{kind:?} needs parameters; only parameter-free maps can come first").into());
        }
        t.parts.push_layer(LayerDesc::Elementwise {
            kind,
            params: Span::default(),
        });
    }
    if let Some((mean, std)) = standardize {
        let mut p = mean.to_vec();
        p.extend_from_slice(std);
        let params = t.push(&p, &vec![false; p.len()]);
        t.parts.push_layer(LayerDesc::Elementwise {
            kind: ElementwiseKind::Affine,
            params,
        });
    }
    for k in 0..cfg.transforms {
        let order: Vec<u16> = if k % 2 == 0 {
            (0..d as u16).collect()
        } else {
            (0..d as u16).rev().collect()
        };
        match cfg.flow {
            FlowKind::Maf | FlowKind::Iaf => {
                let (net, order, hidden_degrees) =
                    push_made(&mut t, &order, c, &cfg.hidden, 2, cfg.activation, rng);
                t.parts.push_layer(LayerDesc::AffineAutoregressive {
                    net,
                    order,
                    hidden_degrees,
                    scale: zuko_scale(),
                    layout: AffineLayout::ShiftScale,
                    direction: if cfg.flow == FlowKind::Maf {
                        Direction::Maf
                    } else {
                        Direction::Iaf
                    },
                });
            }
            FlowKind::Realnvp => {
                let mask = coupling_mask(d, k, cfg.checkerboard);
                let (net, mask) = push_coupling_net(&mut t, &mask, c, &cfg.hidden, 2, cfg.activation, rng);
                t.parts.push_layer(LayerDesc::AffineCoupling {
                    net,
                    mask,
                    scale: zuko_scale(),
                    layout: AffineLayout::ShiftScale,
                    additive: false,
                });
            }
            FlowKind::Planar => {
                if c > 0 {
                    return Err("planar flows take no context".into());
                }
                // u, w small and random, b = 0: close to the identity, not degenerate.
                let p: Vec<f64> = (0..2 * d)
                    .map(|_| rng.gen_range(-0.1..0.1))
                    .chain([0.0])
                    .collect();
                let params = t.push(&p, &vec![true; p.len()]);
                t.parts.push_layer(LayerDesc::Planar { params });
            }
            FlowKind::Radial => {
                if c > 0 {
                    return Err("radial flows take no context".into());
                }
                // Centres spread over the standardized data, weak initial contraction.
                let mut p: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.5..1.5)).collect();
                p.extend_from_slice(&[0.0, -2.0]);
                let params = t.push(&p, &vec![true; p.len()]);
                t.parts.push_layer(LayerDesc::Radial { params });
            }
            FlowKind::Nsf | FlowKind::NsfCoupling => {
                let structure = if cfg.flow == FlowKind::Nsf {
                    spline::Structure::Autoregressive
                } else {
                    spline::Structure::Coupling
                };
                let arch = spline::SplineArch {
                    bins: cfg.bins,
                    bound: cfg.bound,
                    hidden: &cfg.hidden,
                    activation: cfg.activation,
                    checkerboard: cfg.checkerboard,
                };
                spline::push_layer(&mut t, &arch, structure, &order, k, c, rng)?
            }
        }
    }
    base::push_base(&mut t, cfg.base, d, rng);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Precision, Schedule};

    /// The CLI names are the serde names (model files record them) and parse back; an unknown
    /// name is an error that lists the choices.
    #[test]
    fn names_parse_back_and_match_serde() {
        for k in FlowKind::ALL {
            assert_eq!(k.name().parse::<FlowKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
        }
        for s in Schedule::ALL {
            assert_eq!(s.name().parse::<Schedule>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.name()));
        }
        for b in [
            BaseKind::Standard,
            BaseKind::Diag,
            BaseKind::Gmm { components: 4 },
            BaseKind::StudentT,
        ] {
            assert_eq!(b.to_string().parse::<BaseKind>(), Ok(b));
            assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{b}\""));
        }
        for bad in ["gmm", "gmm:0", "gmm:257", "gmm:x", "normal"] {
            let e = bad.parse::<BaseKind>().unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("gmm:K"), "{e}");
        }
        let e = "nvp".parse::<FlowKind>().unwrap_err().to_string();
        assert!(e.contains("'nvp'") && e.contains("nsf-coupling"), "{e}");
    }
}
