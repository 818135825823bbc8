//! Import flows trained with zuko, nflows and FlowJAX from the `flow-fixture/1` JSON format
//! (written by `python/flow_export.py`, or the fixtures in the peers' test data).
//!
//! Each library's conventions are reproduced exactly (see the per-library modules). Nothing is
//! guessed: an unknown constructor, option or parameter name is an error that names it, and every
//! parameter in the file must be used.
//!
//! Weight precision: the model file stores the weights as `f64` (format version 2) when the
//! library's parameters were float64 (FlowJAX runs with x64), so that our f64 evaluation uses them
//! exactly, and as `f32` (version 1) otherwise (torch's float32 parameters lose nothing).
//! [`source_is_float64`] decides from the values, not from the `dtype` labels (FlowJAX's exporter
//! labels its float64 leaves `float32`). `flow-train import --weights f32|f64` overrides it, e.g.
//! `--weights f32` for half the flash at the cost of ~4e-7 relative in log p.

mod flowjax;
mod nflows;
mod zuko;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use flow_core::model::builder::ModelParts;
use flow_core::model::file::WeightType;
use flow_core::nn::Activation;
use serde::Deserialize;

use crate::error::ImportError;
use crate::golden::{self, Golden};
use crate::io::{Meta, META_FORMAT};

/// One tensor of the source model.
#[derive(Clone, Debug, Deserialize)]
pub struct Tensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// `float32`, `int64` or `bool`.
    pub dtype: String,
    /// Flat row-major data (numbers or booleans).
    pub data: Vec<serde_json::Value>,
}

impl Tensor {
    /// The data as f64 (booleans as 0/1).
    pub fn values(&self) -> Vec<f64> {
        self.data
            .iter()
            .map(|v| match v {
                serde_json::Value::Bool(b) => f64::from(u8::from(*b)),
                v => v.as_f64().unwrap_or(f64::NAN),
            })
            .collect()
    }
}

/// The flow's constructor and its arguments.
#[derive(Clone, Debug, Deserialize)]
pub struct Constructor {
    /// e.g. `zuko.flows.MAF`.
    pub constructor: String,
    /// Its keyword arguments.
    #[serde(default)]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// FlowJAX: the base distribution.
    #[serde(default)]
    pub base_dist: Option<String>,
}

/// Base noise → sample pairs.
#[derive(Clone, Debug, Deserialize)]
pub struct SamplePairs {
    /// Standard-normal base noise.
    pub base: Vec<Vec<f64>>,
    /// Context per pair (or null).
    pub context: Option<Vec<Vec<f64>>>,
    /// The library's sample.
    pub x: Vec<Vec<f64>>,
}

/// A `flow-fixture/1` file.
#[derive(Clone, Debug, Deserialize)]
pub struct Fixture {
    /// `flow-fixture/1`.
    pub format: String,
    /// `zuko`, `nflows` or `flowjax`.
    pub library: String,
    /// e.g. `1.6.0`.
    pub library_version: String,
    /// e.g. `torch 2.15.0`.
    #[serde(default)]
    pub framework: String,
    /// Constructor.
    pub flow: Constructor,
    /// Free text from the exporter.
    #[serde(default)]
    pub notes: String,
    /// Every tensor by name.
    pub params: BTreeMap<String, Tensor>,
    /// Probe points.
    pub points: Vec<Vec<f64>>,
    /// Context per point, or null.
    pub context: Option<Vec<Vec<f64>>>,
    /// The library's float64 log p of each point.
    pub log_prob: Vec<f64>,
    /// The library's own float32 log p (null when it ran in float64).
    pub log_prob_f32: Option<Vec<f64>>,
    /// Base → sample pairs.
    pub sample: SamplePairs,
}

/// Tracks which parameters an importer used, so leftovers are reported.
pub(crate) struct Params<'a> {
    all: &'a BTreeMap<String, Tensor>,
    used: BTreeSet<String>,
}

impl<'a> Params<'a> {
    fn new(all: &'a BTreeMap<String, Tensor>) -> Self {
        Params {
            all,
            used: BTreeSet::new(),
        }
    }

    /// The tensor `name` with the expected shape.
    pub(crate) fn get(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f64>, ImportError> {
        let t = self
            .all
            .get(name)
            .ok_or_else(|| format!("missing parameter '{name}'"))?;
        if t.shape != shape {
            return Err(format!("parameter '{name}' has shape {:?}, expected {shape:?}", t.shape).into());
        }
        self.used.insert(name.to_string());
        Ok(t.values())
    }

    /// The shape of `name`, if present.
    pub(crate) fn shape(&self, name: &str) -> Option<&[usize]> {
        self.all.get(name).map(|t| &t.shape[..])
    }

    fn leftovers(&self) -> Vec<&str> {
        self.all
            .keys()
            .filter(|k| !self.used.contains(*k))
            .map(|k| k.as_str())
            .collect()
    }
}

/// Reads a kwarg as usize.
pub(crate) fn kw_usize(c: &Constructor, key: &str) -> Result<Option<usize>, ImportError> {
    match c.kwargs.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|v| Some(v as usize))
            .ok_or_else(|| format!("option '{key}' is not an integer: {v}").into()),
    }
}

/// The conditioners' activation from option `key` of `c`, written by the exporter as a name:
/// `names` are the library's names of ReLU, Tanh, ELU and SiLU, in that order; ReLU (every
/// library's default) when the option is absent.
pub(crate) fn activation_option(
    c: &Constructor,
    key: &str,
    names: [&str; 4],
) -> Result<Activation, ImportError> {
    let Some(v) = c.kwargs.get(key) else {
        return Ok(Activation::Relu);
    };
    let ours = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Elu,
        Activation::Silu,
    ];
    match names.iter().position(|n| v.as_str() == Some(n)) {
        Some(i) => Ok(ours[i]),
        None => Err(format!(
            "{}: unsupported {key} {v} (supported: {})",
            c.constructor,
            names.join(", ")
        )
        .into()),
    }
}

/// Rejects kwargs outside `known`.
pub(crate) fn check_kwargs(c: &Constructor, known: &[&str]) -> Result<(), ImportError> {
    let unknown: Vec<&String> = c.kwargs.keys().filter(|k| !known.contains(&k.as_str())).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: unsupported option(s) {} (supported: {})",
            c.constructor,
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )
        .into())
    }
}

/// Converts a fixture into model parts (f64 weights as the library stores them).
pub fn to_parts(fx: &Fixture) -> Result<ModelParts, ImportError> {
    if fx.format != "flow-fixture/1" {
        return Err(format!("unknown format '{}' (expected flow-fixture/1)", fx.format).into());
    }
    let mut p = Params::new(&fx.params);
    let parts = match fx.library.as_str() {
        "zuko" => zuko::import(fx, &mut p)?,
        "nflows" => nflows::import(fx, &mut p)?,
        "flowjax" => flowjax::import(fx, &mut p)?,
        other => {
            return Err(format!("unsupported library '{other}' (supported: zuko, nflows, flowjax)").into())
        }
    };
    let left = p.leftovers();
    if !left.is_empty() {
        return Err(format!("unknown parameter name(s): {}", left.join(", ")).into());
    }
    flow_core::runtime::validate(&parts.desc, &parts.weights, &parts.ints)
        .map_err(|e| format!("imported model is invalid: {e}"))?;
    Ok(parts)
}

/// True when the library's parameters were float64: a `float64` dtype, or any floating-point
/// value that is not an `f32` (the values decide: FlowJAX's exporter labels float64 leaves
/// `float32`). Torch's float32 parameters are `f32` values, exactly representable.
pub fn source_is_float64(fx: &Fixture) -> bool {
    fx.params.values().any(|t| {
        t.dtype == "float64"
            || (t.dtype.starts_with("float") && t.values().iter().any(|&v| v as f32 as f64 != v))
    })
}

/// Golden vectors of an imported model: the fixture's probe points and noise, our f64 answers,
/// and the library's own answers kept alongside.
pub fn golden_for(fx: &Fixture, parts: &ModelParts) -> Golden {
    let c = parts.desc.context_dim as usize;
    let ctx = fx
        .context
        .clone()
        .unwrap_or_else(|| vec![vec![0.0; c]; fx.points.len()]);
    let nctx = fx
        .sample
        .context
        .clone()
        .unwrap_or_else(|| vec![vec![0.0; c]; fx.sample.base.len()]);
    // FlowJAX's exporter pushes its noise through the bijection only, skipping the learned base
    // Normal(μ, σ); our `sample(ε)` is `forward(μ + σ ε)`, so the matching noise is (b − μ)/σ.
    let noise = match (&parts.desc.base, fx.library.as_str()) {
        (flow_core::model::BaseDesc::DiagNormal { params }, "flowjax") => {
            let w = &parts.weights[params.offset as usize..(params.offset + params.len) as usize];
            let d = w.len() / 2;
            fx.sample
                .base
                .iter()
                .map(|b| {
                    b.iter()
                        .enumerate()
                        .map(|(i, &v)| (v - w[i]) / w[d + i])
                        .collect()
                })
                .collect()
        }
        _ => fx.sample.base.clone(),
    };
    let mut g = golden::compute(parts, fx.points.clone(), ctx, noise, nctx);
    g.source_log_prob = Some(fx.log_prob.clone());
    g.source_sample = Some(fx.sample.x.clone());
    g
}

/// Reads a fixture file.
pub fn read_fixture(path: &Path) -> Result<Fixture, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a flow-fixture/1 file: {e}", path.display()).into())
}

/// `flow-train import`: fixture → model file (with golden vectors and the source description).
///
/// `weights` chooses how the file stores the weights; `None` means `f64` when the library's
/// parameters were float64 ([`source_is_float64`]) and `f32` otherwise.
pub fn import_file(
    path: &Path,
    output: &Path,
    weights: Option<WeightType>,
) -> Result<(ModelParts, Meta), ImportError> {
    let fx = read_fixture(path)?;
    let mut parts = to_parts(&fx).map_err(|e| format!("{}: {e}", path.display()))?;
    let source_f64 = source_is_float64(&fx);
    parts.weight_type = weights.unwrap_or(if source_f64 {
        WeightType::F64
    } else {
        WeightType::F32
    });
    let d = parts.desc.dim as usize;
    let c = parts.desc.context_dim as usize;
    let meta = Meta {
        format: META_FORMAT.into(),
        columns: (0..d).map(|i| format!("x{i}")).collect(),
        context_columns: (0..c).map(|i| format!("c{i}")).collect(),
        flow: format!("{} {}", fx.library, fx.flow.constructor),
        training: None,
        target_fit: None,
        source: Some(serde_json::json!({
            "library": fx.library, "library_version": fx.library_version, "framework": fx.framework,
            "constructor": fx.flow.constructor, "kwargs": fx.flow.kwargs,
            // True when the file stores f32 weights and some imported parameter was not an f32
            // value (its f64 evaluation then moves by the rounding; `verify` allows for it).
            "weights_rounded_to_f32": parts.weight_type == WeightType::F32
                && parts.weights.iter().any(|&w| w as f32 as f64 != w),
        })),
        golden: Some(golden_for(&fx, &parts)),
    };
    crate::io::write_model(output, &parts, &meta).map_err(|e| e.to_string())?;
    Ok((parts, meta))
}
