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

/// The golden vectors of a model file: `Ok(None)` when its metadata has none (or is not JSON: a
/// file from another writer), an error naming the field when a `golden` section is there but does
/// not have the shape `flow-train` writes (a mismatch must not silently drop the generated test).
pub fn read(bytes: &[u8]) -> Result<Option<Golden>, String> {
    let Some(meta) = file::split(bytes)
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.meta).ok())
    else {
        return Ok(None);
    };
    let Some(g) = meta.get("golden") else {
        return Ok(None);
    };
    let field = |name: &str| {
        g.get(name)
            .ok_or_else(|| format!("the golden vectors have no `{name}`"))
    };
    let bad = |name: &str, what: &str| format!("the golden vectors' `{name}` is not {what}");
    let one = |name: &str| vec1(field(name)?).ok_or_else(|| bad(name, "an array of numbers"));
    let two = |name: &str| vec2(field(name)?).ok_or_else(|| bad(name, "an array of arrays of numbers"));
    let golden = Golden {
        points: two("points")?,
        context: two("context")?,
        log_prob: one("log_prob")?,
        base: two("base")?,
        ldj: one("ldj")?,
        noise: two("noise")?,
        noise_context: two("noise_context")?,
        sample: two("sample")?,
    };
    let (n, m) = (golden.points.len(), golden.noise.len());
    let lengths = [
        ("context", golden.context.len(), n, "points"),
        ("log_prob", golden.log_prob.len(), n, "points"),
        ("base", golden.base.len(), n, "points"),
        ("ldj", golden.ldj.len(), n, "points"),
        ("noise_context", golden.noise_context.len(), m, "noise"),
        ("sample", golden.sample.len(), m, "noise"),
    ];
    for (name, got, want, of) in lengths {
        if got != want {
            return Err(format!(
                "the golden vectors' `{name}` has {got} entries for {want} `{of}`"
            ));
        }
    }
    Ok(Some(golden))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A good model's bytes with its metadata replaced by `meta`.
    fn with_meta(meta: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(dir.join("tests/models/golden.flow")).unwrap();
        let (parts, _) = flow_core::model::builder::ModelParts::from_bytes(&bytes).unwrap();
        parts.to_bytes(meta)
    }

    #[test]
    fn well_formed_missing_and_malformed_golden_sections() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let good = std::fs::read(dir.join("tests/models/golden.flow")).unwrap();
        let g = read(&good).unwrap().expect("golden.flow has golden vectors");
        assert!(!g.points.is_empty() && g.points.len() == g.log_prob.len());
        assert!(read(&with_meta("{}")).unwrap().is_none());
        assert!(read(&with_meta("not json")).unwrap().is_none());
        let meta: serde_json::Value = serde_json::from_str(file::split(&good).unwrap().meta).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut m = meta.clone();
            f(&mut m["golden"]);
            read(&with_meta(&m.to_string())).unwrap_err()
        };
        let e = edit(&|g| {
            g.as_object_mut().unwrap().remove("ldj");
        });
        assert!(e.contains("no `ldj`"), "{e}");
        let e = edit(&|g| g["log_prob"] = serde_json::json!("x"));
        assert!(e.contains("`log_prob` is not an array of numbers"), "{e}");
        let e = edit(&|g| {
            g["sample"].as_array_mut().unwrap().pop();
        });
        assert!(e.contains("`sample` has"), "{e}");
    }
}
