//! Golden vectors from a model file's metadata (written by `flow-train fit` and `import`): probe
//! points with the reference path's f64 answers. The generated code checks the baked methods
//! against them (`golden_errors`, and a `#[test]` unless `verify = false`).

use flow_core::model::file;

/// The parts of `flow-train`'s golden vectors that the generated check uses.
#[derive(Debug)]
pub struct Golden {
    /// Probe points.
    pub points: Vec<Vec<f64>>,
    /// Context per point.
    pub context: Vec<Vec<f64>>,
    /// log p per point.
    pub log_prob: Vec<f64>,
    /// Base point per point.
    pub base: Vec<Vec<f64>>,
    /// log|det| of the inverse per point.
    pub ldj: Vec<f64>,
    /// Standard-normal noise vectors.
    pub noise: Vec<Vec<f64>>,
    /// Context per noise vector.
    pub noise_context: Vec<Vec<f64>>,
    /// sample(noise).
    pub sample: Vec<Vec<f64>>,
}

/// A number as `flow-train` writes it: a JSON number, or `"NaN"`, `"inf"`, `"-inf"`.
fn num(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn vec1(v: &serde_json::Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(num).collect()
}

fn vec2(v: &serde_json::Value) -> Option<Vec<Vec<f64>>> {
    v.as_array()?.iter().map(vec1).collect()
}

/// The golden vectors of a model file, if its metadata has well-formed ones.
pub fn read(bytes: &[u8]) -> Option<Golden> {
    let meta: serde_json::Value = serde_json::from_str(file::split(bytes).ok()?.meta).ok()?;
    let g = meta.get("golden")?;
    let golden = Golden {
        points: vec2(g.get("points")?)?,
        context: vec2(g.get("context")?)?,
        log_prob: vec1(g.get("log_prob")?)?,
        base: vec2(g.get("base")?)?,
        ldj: vec1(g.get("ldj")?)?,
        noise: vec2(g.get("noise")?)?,
        noise_context: vec2(g.get("noise_context")?)?,
        sample: vec2(g.get("sample")?)?,
    };
    let n = golden.points.len();
    let m = golden.noise.len();
    let consistent = golden.context.len() == n
        && golden.log_prob.len() == n
        && golden.base.len() == n
        && golden.ldj.len() == n
        && golden.noise_context.len() == m
        && golden.sample.len() == m;
    consistent.then_some(golden)
}
