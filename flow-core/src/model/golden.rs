//! Golden vectors: reference answers that travel inside a model file's metadata (the JSON key
//! `"golden"`), and the tolerances every check of them uses.
//!
//! `flow-train fit` and `import` write them: probe points evaluated in f64 with the weights as
//! stored, through the reference path ([`crate::runtime::flow_of`]). `flow-train verify` and the
//! code `flow-macros` generates re-evaluate them. The schema ([`Golden`], serde, feature `alloc`)
//! is defined here once, for the writer and both readers.
//!
//! # Tolerances
//! Each error is relative to `1 + |reference|` (the source tolerances: to `max(1, |reference|)`
//! for log p, absolute for samples).
//!
//! | check | tolerance | why |
//! |---|---|---|
//! | f64 evaluation vs the golden vectors | [`TOL_F64`] = 1e-9 | the same f64 arithmetic: any difference means the weights or the code changed |
//! | f32 evaluation vs the golden vectors | [`TOL_F32`] = 2e-3 | f32 carries ~6e-8 relative precision; each network sums up to a few hundred products (error ~√n·ε), libm's `expf`/`logf` are within 1 ULP and K layers compose: 1e-5–1e-4 on typical points, more in the far tails and at spline bounds (docs/numerics.md) |
//! | imported model, our f64 vs the library's float64 | [`TOL_SOURCE`] = 1e-8 | the same formulas in another order agree to ~1e-13 on every fixture; room for longer flows |
//! | the same, float64 parameters stored as f32 | [`TOL_SOURCE_ROUNDED`] = 1e-5 | rounding each weight (~3e-8 relative) moves log p by ~4e-7 relative on the fixtures |

/// f64 evaluation against the golden vectors, relative to `1 + |reference|`.
pub const TOL_F64: f64 = 1e-9;
/// f32 evaluation against the golden vectors, relative to `1 + |reference|`.
pub const TOL_F32: f64 = 2e-3;
/// Imported models: our f64 against the source library's float64, relative to `max(1, |ref|)`
/// for log p and absolute for samples.
pub const TOL_SOURCE: f64 = 1e-8;
/// As [`TOL_SOURCE`] when the library's parameters were float64 and the model file stores them as
/// f32 (`flow-train import --weights f32`; by default such parameters are stored as f64).
pub const TOL_SOURCE_ROUNDED: f64 = 1e-5;

#[cfg(any(test, feature = "alloc"))]
pub use owned::Golden;

#[cfg(any(test, feature = "alloc"))]
mod owned {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use serde::{Deserialize, Serialize};

    /// Probe points and the reference path's answers, as the metadata's `"golden"` holds them
    /// (non-finite values as `"NaN"`, `"inf"`, `"-inf"`: [`super::super::nonfinite`]).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct Golden {
        /// Probe points (D each).
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub points: Vec<Vec<f64>>,
        /// Context of each point (C each; empty when unconditional).
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub context: Vec<Vec<f64>>,
        /// log p of each point.
        #[serde(with = "crate::model::nonfinite::vec")]
        pub log_prob: Vec<f64>,
        /// `inverse(point)`: the base point.
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub base: Vec<Vec<f64>>,
        /// `inverse(point)`: log|det|.
        #[serde(with = "crate::model::nonfinite::vec")]
        pub ldj: Vec<f64>,
        /// Standard-normal noise vectors.
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub noise: Vec<Vec<f64>>,
        /// Context of each noise vector.
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub noise_context: Vec<Vec<f64>>,
        /// `sample(noise)`.
        #[serde(with = "crate::model::nonfinite::vec2")]
        pub sample: Vec<Vec<f64>>,
        /// For imported models: the source library's own float64 log p of `points`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_log_prob: Option<Vec<f64>>,
        /// For imported models: the source library's samples of `noise`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_sample: Option<Vec<Vec<f64>>>,
    }

    impl Golden {
        /// What is wrong with the shape, if anything: every list as long as `points` (or
        /// `noise`), every vector D long (C for contexts). A message naming the field.
        pub fn shape_problem(&self, dim: usize, context_dim: usize) -> Option<String> {
            let (n, m) = (self.points.len(), self.noise.len());
            let counts = [
                ("context", self.context.len(), n, "points"),
                ("log_prob", self.log_prob.len(), n, "points"),
                ("base", self.base.len(), n, "points"),
                ("ldj", self.ldj.len(), n, "points"),
                ("noise_context", self.noise_context.len(), m, "noise"),
                ("sample", self.sample.len(), m, "noise"),
            ];
            for (name, got, want, of) in counts {
                if got != want {
                    return Some(format!("`{name}` has {got} entries for {want} `{of}`"));
                }
            }
            if let Some(s) = &self.source_log_prob {
                if s.len() != n {
                    return Some(format!(
                        "`source_log_prob` has {} entries for {n} `points`",
                        s.len()
                    ));
                }
            }
            if let Some(s) = &self.source_sample {
                if s.len() != m {
                    return Some(format!("`source_sample` has {} entries for {m} `noise`", s.len()));
                }
            }
            let rows: [(&str, &Vec<Vec<f64>>, usize); 6] = [
                ("points", &self.points, dim),
                ("context", &self.context, context_dim),
                ("base", &self.base, dim),
                ("noise", &self.noise, dim),
                ("noise_context", &self.noise_context, context_dim),
                ("sample", &self.sample, dim),
            ];
            for (name, rows, len) in rows {
                if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != len) {
                    return Some(format!("`{name}`[{i}] has {} values, not {len}", r.len()));
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Golden;
    use alloc::vec;

    fn good() -> Golden {
        Golden {
            points: vec![vec![0.5, f64::NAN]],
            context: vec![vec![]],
            log_prob: vec![-1.0],
            base: vec![vec![0.1, f64::INFINITY]],
            ldj: vec![0.2],
            noise: vec![vec![1.0, 2.0], vec![0.0, 0.0]],
            noise_context: vec![vec![], vec![]],
            sample: vec![vec![3.0, 4.0], vec![0.0, f64::NEG_INFINITY]],
            source_log_prob: None,
            source_sample: None,
        }
    }

    #[test]
    fn round_trips_through_json_with_non_finite_values() {
        let g = good();
        let s = serde_json::to_string(&g).unwrap();
        assert!(
            s.contains("\"NaN\"") && s.contains("\"-inf\"") && !s.contains("source"),
            "{s}"
        );
        let back: Golden = serde_json::from_str(&s).unwrap();
        assert!(back.points[0][1].is_nan());
        assert_eq!(back.sample, g.sample);
        assert_eq!(back.shape_problem(2, 0), None);
    }

    #[test]
    fn shape_problems_name_the_field() {
        let mut g = good();
        g.ldj.clear();
        assert_eq!(
            g.shape_problem(2, 0).unwrap(),
            "`ldj` has 0 entries for 1 `points`"
        );
        let mut g = good();
        g.sample[1].pop();
        assert_eq!(g.shape_problem(2, 0).unwrap(), "`sample`[1] has 1 values, not 2");
        assert!(good().shape_problem(2, 1).unwrap().starts_with("`context`[0]"));
        let mut g = good();
        g.source_log_prob = Some(vec![]);
        assert!(g.shape_problem(2, 0).unwrap().contains("source_log_prob"));
    }
}
