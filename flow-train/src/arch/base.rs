//! The base distributions `flow-train fit --base …` trains: the standard normal (no parameters,
//! the default), a diagonal normal with learned means and scales, a mixture of `K` of them, or
//! independent Student-t coordinates with learned locations, scales and degrees of freedom.

use flow_core::base::{mixture, student_t};
use flow_core::model::MAX_COMPONENTS;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Trainable;
use crate::error::UnknownName;

/// The base distribution of a model to train. Serialized as its CLI name (`"gmm:4"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum BaseKind {
    /// N(0, I), no parameters (`standard`).
    #[default]
    Standard,
    /// N(μ, diag σ²) with learned μ and ln σ (`diag`): a one-component mixture.
    Diag,
    /// A mixture of `components` diagonal normals with learned weights, means and scales
    /// (`gmm:K`; [`flow_core::base::GaussianMixture`]).
    Gmm {
        /// K, in `1..=MAX_COMPONENTS`.
        components: usize,
    },
    /// Independent Student-t coordinates with learned μ, ln σ and ln ν (`student-t`;
    /// [`flow_core::base::StudentT`]), for data with heavy tails.
    StudentT,
}

/// The degrees of freedom a `student-t` base starts from (then learned per coordinate).
pub const STUDENT_T_INITIAL_DF: f64 = 10.0;

impl std::fmt::Display for BaseKind {
    /// The CLI name: `standard`, `diag`, `gmm:K` or `student-t`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseKind::Standard => f.write_str("standard"),
            BaseKind::Diag => f.write_str("diag"),
            BaseKind::Gmm { components } => write!(f, "gmm:{components}"),
            BaseKind::StudentT => f.write_str("student-t"),
        }
    }
}

impl std::str::FromStr for BaseKind {
    type Err = UnknownName;

    /// `standard`, `diag`, `gmm:K` (K in 1..=256) or `student-t`.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let unknown = || UnknownName {
            kind: "base",
            name: s.into(),
            choices: format!("standard, diag, gmm:K with K in 1..={MAX_COMPONENTS}, or student-t"),
        };
        match s {
            "standard" => Ok(BaseKind::Standard),
            "diag" => Ok(BaseKind::Diag),
            "student-t" => Ok(BaseKind::StudentT),
            _ => {
                let k: usize = s
                    .strip_prefix("gmm:")
                    .ok_or_else(unknown)?
                    .parse()
                    .map_err(|_| unknown())?;
                if (1..=MAX_COMPONENTS).contains(&k) {
                    Ok(BaseKind::Gmm { components: k })
                } else {
                    Err(unknown())
                }
            }
        }
    }
}

impl From<BaseKind> for String {
    fn from(b: BaseKind) -> String {
        b.to_string()
    }
}

impl TryFrom<String> for BaseKind {
    type Error = UnknownName;
    fn try_from(s: String) -> Result<Self, UnknownName> {
        s.parse()
    }
}

/// Appends the base's weights (after every layer's) and sets it. A diagonal normal starts as the
/// standard normal (its single logit stays 0); a mixture starts with equal weights, unit scales
/// and means drawn uniformly in ±1 (the data are standardized); Student-t coordinates start at
/// μ = 0, σ = 1 and ν = [`STUDENT_T_INITIAL_DF`].
pub(super) fn push_base(t: &mut Trainable, kind: BaseKind, d: usize, rng: &mut ChaCha8Rng) {
    let k = match kind {
        BaseKind::Standard => return,
        BaseKind::Diag => 1,
        BaseKind::Gmm { components } => components,
        BaseKind::StudentT => {
            let mut p = vec![0.0; 2 * d];
            p.extend(std::iter::repeat_n(STUDENT_T_INITIAL_DF.ln(), d));
            debug_assert_eq!(p.len(), student_t::n_params(d));
            t.trainable.extend(std::iter::repeat_n(true, p.len()));
            t.parts.set_student_t_base(&p);
            return;
        }
    };
    let mut p = vec![0.0; k];
    p.extend((0..k * d).map(|_| if k == 1 { 0.0 } else { rng.gen_range(-1.0..1.0) }));
    p.extend(std::iter::repeat_n(0.0, k * d));
    debug_assert_eq!(p.len(), mixture::n_params(k, d));
    // One component's logit is a constant (the softmax of one value is 1).
    t.trainable.extend((0..p.len()).map(|i| k > 1 || i > 0));
    t.parts.set_mixture_base(k as u16, &p);
}
