//! Golden vectors from a model file's metadata (written by `flow-train fit` and `import`): probe
//! points with the reference path's f64 answers. The generated code checks the baked methods
//! against them (`golden_errors`, and a `#[test]` unless `verify = false`).
//!
//! The schema is `flow_core::model::golden::Golden`, the one `flow-train` writes with serde: a
//! `golden` section that does not deserialize into it, or whose lengths disagree, is a compile
//! error naming the field (a mismatch must not silently drop the generated test).

use flow_core::model::file;
pub use flow_core::model::golden::Golden;

/// The golden vectors of a model file of dimensions `dim` and `context_dim`: `Ok(None)` when its
/// metadata has none (or is not JSON: a file from another writer), an error naming the field when
/// a `golden` section is there but does not have the shape `flow-train` writes.
pub fn read(bytes: &[u8], dim: usize, context_dim: usize) -> Result<Option<Golden>, String> {
    let Some(mut meta) = file::split(bytes)
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.meta).ok())
    else {
        return Ok(None);
    };
    let Some(g) = meta.get_mut("golden").map(serde_json::Value::take) else {
        return Ok(None);
    };
    let golden: Golden = serde_path_to_error::deserialize(g).map_err(|e| {
        let at = e.path().to_string();
        format!(
            "the golden vectors' `{at}` does not have the shape flow-train writes: {}",
            e.inner()
        )
    })?;
    match golden.shape_problem(dim, context_dim) {
        Some(why) => Err(format!("the golden vectors' {why}")),
        None => Ok(Some(golden)),
    }
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
        let (parts, _) = flow_core::model::builder::ModelParts::from_bytes(&good).unwrap();
        let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
        let g = read(&good, d, c)
            .unwrap()
            .expect("golden.flow has golden vectors");
        assert!(!g.points.is_empty() && g.points.len() == g.log_prob.len());
        assert!(read(&with_meta("{}"), d, c).unwrap().is_none());
        assert!(read(&with_meta("not json"), d, c).unwrap().is_none());
        let meta: serde_json::Value = serde_json::from_str(file::split(&good).unwrap().meta).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut m = meta.clone();
            f(&mut m["golden"]);
            read(&with_meta(&m.to_string()), d, c).unwrap_err()
        };
        let e = edit(&|g| {
            g.as_object_mut().unwrap().remove("ldj");
        });
        assert!(e.contains("missing field `ldj`"), "{e}");
        let e = edit(&|g| g["log_prob"] = serde_json::json!("x"));
        assert!(e.contains("`log_prob` does not have the shape"), "{e}");
        let e = edit(&|g| g["points"][0][1] = serde_json::json!("two"));
        assert!(
            e.contains("`points`") && e.contains("not a number: \"two\""),
            "{e}"
        );
        let e = edit(&|g| {
            g["sample"].as_array_mut().unwrap().pop();
        });
        assert!(e.contains("`sample` has"), "{e}");
        let e = edit(&|g| {
            g["base"][0].as_array_mut().unwrap().push(serde_json::json!(1.0));
        });
        assert!(e.contains("`base`[0] has"), "{e}");
    }
}
