//! Posterior sampling for neural posterior estimation: draws of `θ ~ q(θ | x)` restricted to the
//! prior's support, for many observations `x` at once.
//!
//! A conditional flow fitted to simulations `(θ, x)` puts a little mass outside a bounded prior
//! (a box of physically allowed parameters). [`sample_within`] draws from `q(θ | x)` restricted
//! to the box, `q(θ | x) 1[θ ∈ box] / P_q(box | x)`, by rejection, until every context row has its
//! `n` draws, and reports the acceptance rate `P_q(box | x)` it saw for each row. A posterior that
//! lies mostly outside the prior means the model is wrong (or the observation is not one the
//! simulator makes): below [`MIN_ACCEPTANCE`] (or the caller's floor) the draw stops with
//! [`PosteriorError::LowAcceptance`] rather than spinning.
//!
//! Determinism: context row `r` draws from its own ChaCha8 stream (`seed`, stream `r`), so the
//! result is the same for any number of threads.

use std::cmp::Ordering;
use std::path::Path;

use flow_core::base::Base;
use flow_core::flow::{standard_normal, Flow};
use flow_core::layers::Bijection;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The default floor of the acceptance rate of [`sample_within`]: 1 % (a posterior with 99 % of
/// its mass outside the prior is a wrong model, and rejection would cost 100 draws per sample).
pub const MIN_ACCEPTANCE: f64 = 0.01;

/// Proposals a context row draws before its acceptance rate is compared with the floor (fewer
/// say too little about it).
pub const MIN_PROPOSALS: usize = 1000;

/// Why bounds could not be read or samples not drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PosteriorError {
    /// A bounds specification that does not parse or does not fit the model.
    #[error("bounds: {0}")]
    Bounds(String),
    /// An acceptance floor outside (0, 1].
    #[error("the acceptance floor must be in (0, 1], not {0}")]
    Floor(f64),
    /// The acceptance rate of a context row fell below the floor.
    #[error(
        "context row {row}: only {accepted} of {drawn} draws ({rate:.4}) fall inside the bounds, \
         below the floor of {floor}; the posterior lies mostly outside them (a wrong model, an \
         observation the simulator does not make, or bounds that are not the prior's)"
    )]
    LowAcceptance {
        /// Context row (0-based, in file order).
        row: usize,
        /// Draws inside the bounds.
        accepted: usize,
        /// Draws made.
        drawn: usize,
        /// `accepted / drawn`.
        rate: f64,
        /// The floor.
        floor: f64,
    },
}

/// A box `low[i] ≤ θᵢ ≤ high[i]` (bounds may be infinite).
#[derive(Clone, Debug, PartialEq)]
pub struct Bounds {
    /// Lower bounds, one per modelled column.
    pub low: Vec<f64>,
    /// Upper bounds, one per modelled column.
    pub high: Vec<f64>,
}

impl Bounds {
    /// Parses `LOW,HIGH` (every column) or `LOW0,HIGH0,LOW1,HIGH1,…` (one pair per column) for
    /// `d` columns; `inf` and `-inf` are allowed.
    pub fn parse(spec: &str, d: usize) -> Result<Self, PosteriorError> {
        let values = spec
            .split(',')
            .map(|t| {
                let t = t.trim();
                t.parse::<f64>()
                    .map_err(|_| PosteriorError::Bounds(format!("'{t}' is not a number (in '{spec}')")))
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let pairs: Vec<(f64, f64)> = match values.len() {
            2 => vec![(values[0], values[1]); d],
            n if n == 2 * d => values.chunks(2).map(|p| (p[0], p[1])).collect(),
            n => {
                return Err(PosteriorError::Bounds(format!(
                "'{spec}' has {n} values; give LOW,HIGH for every column or one pair per column ({} values)",
                2 * d
            )))
            }
        };
        Self::from_pairs(&pairs)
    }

    /// Reads a CSV with the header `column,low,high` and one row per modelled column, matched
    /// to `columns` by name (every column needs a row).
    pub fn from_csv(path: &Path, columns: &[String]) -> Result<Self, PosteriorError> {
        let err = |m: String| PosteriorError::Bounds(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let header: Vec<&str> = match lines.next() {
            Some((_, h)) => h
                .trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .collect(),
            None => return Err(err("empty file".into())),
        };
        if header != ["column", "low", "high"] {
            return Err(err(format!(
                "the header must be 'column,low,high', not '{}'",
                header.join(",")
            )));
        }
        let mut pairs: Vec<Option<(f64, f64)>> = vec![None; columns.len()];
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let at = |m: String| err(format!("line {}: {m}", i + 1));
            if f.len() != 3 {
                return Err(at(format!("{} fields, expected 3", f.len())));
            }
            let num = |t: &str| t.parse::<f64>().map_err(|_| at(format!("'{t}' is not a number")));
            let (lo, hi) = (num(f[1])?, num(f[2])?);
            let Some(k) = columns.iter().position(|c| c == f[0]) else {
                return Err(at(format!(
                    "no modelled column '{}' (the model's are {})",
                    f[0],
                    columns.join(", ")
                )));
            };
            if pairs[k].replace((lo, hi)).is_some() {
                return Err(at(format!("column '{}' appears twice", f[0])));
            }
        }
        let pairs = pairs
            .iter()
            .zip(columns)
            .map(|(p, c)| p.ok_or_else(|| err(format!("no bounds for column '{c}'"))))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_pairs(&pairs)
    }

    fn from_pairs(pairs: &[(f64, f64)]) -> Result<Self, PosteriorError> {
        if let Some((i, (lo, hi))) = pairs
            .iter()
            .enumerate()
            .find(|(_, (lo, hi))| lo.partial_cmp(hi) != Some(Ordering::Less))
        {
            return Err(PosteriorError::Bounds(format!(
                "column {i}: the lower bound {lo} must be below the upper bound {hi}"
            )));
        }
        Ok(Bounds {
            low: pairs.iter().map(|p| p.0).collect(),
            high: pairs.iter().map(|p| p.1).collect(),
        })
    }

    /// Whether `low ≤ θ ≤ high` in every column (NaN is outside).
    pub fn contains(&self, theta: &[f64]) -> bool {
        theta
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .all(|(&t, (&lo, &hi))| lo <= t && t <= hi)
    }
}

/// Draws of [`sample_within`].
#[derive(Clone, Debug, PartialEq)]
pub struct WithinSamples {
    /// `n` draws of D values for each context row, row after row.
    pub samples: Vec<f64>,
    /// Draws made for each context row until its `n`-th was inside (`n / drawn` is its
    /// acceptance rate).
    pub drawn: Vec<usize>,
    /// Draws per context row.
    pub n: usize,
}

impl WithinSamples {
    /// The acceptance rate over all context rows (NaN when nothing was drawn, `n = 0`).
    pub fn acceptance(&self) -> f64 {
        let drawn: usize = self.drawn.iter().sum();
        (self.n * self.drawn.len()) as f64 / drawn as f64
    }

    /// The lowest acceptance rate of a context row, and the row (NaN when `n = 0`).
    pub fn lowest(&self) -> (usize, f64) {
        self.drawn
            .iter()
            .enumerate()
            .map(|(r, &m)| (r, self.n as f64 / m as f64))
            .fold(
                (0, f64::NAN),
                |a, b| if a.1.is_nan() || b.1 < a.1 { b } else { a },
            )
    }
}

/// `n` draws from `q(θ | x)` restricted to `bounds` for each of the context rows in `contexts`
/// (`C` values per row; one empty row for an unconditional flow), in parallel over the rows.
///
/// Fails with [`PosteriorError::LowAcceptance`] when a row's acceptance rate is below
/// `min_acceptance` once it has made [`MIN_PROPOSALS`] draws (the first such row, in row order).
pub fn sample_within<L, B>(
    flow: &Flow<f64, L, B>,
    contexts: &[f64],
    bounds: &Bounds,
    n: usize,
    seed: u64,
    min_acceptance: f64,
) -> Result<WithinSamples, PosteriorError>
where
    L: Bijection<f64> + Sync,
    B: Base<f64> + Sync,
{
    let (d, c) = (flow.dim(), flow.context_dim());
    if !(min_acceptance > 0.0 && min_acceptance <= 1.0) {
        return Err(PosteriorError::Floor(min_acceptance));
    }
    if bounds.low.len() != d {
        return Err(PosteriorError::Bounds(format!(
            "{} bounds for a model of {d} columns",
            bounds.low.len()
        )));
    }
    let rows: Vec<&[f64]> = if c == 0 {
        vec![&[]]
    } else {
        contexts.chunks_exact(c).collect()
    };
    // Every row's outcome, then the first failure in row order (whatever the threads did).
    let outcomes: Vec<_> = rows
        .par_iter()
        .enumerate()
        .map(|(r, ctx)| row_within(flow, ctx, bounds, n, seed, r, min_acceptance))
        .collect();
    let per_row = outcomes.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut samples = Vec::with_capacity(n * d * rows.len());
    let mut drawn = Vec::with_capacity(rows.len());
    for (s, m) in per_row {
        samples.extend(s);
        drawn.push(m);
    }
    Ok(WithinSamples { samples, drawn, n })
}

/// One context row of [`sample_within`]: batches sized by the acceptance seen so far.
fn row_within<L: Bijection<f64>, B: Base<f64>>(
    flow: &Flow<f64, L, B>,
    ctx: &[f64],
    bounds: &Bounds,
    n: usize,
    seed: u64,
    row: usize,
    floor: f64,
) -> Result<(Vec<f64>, usize), PosteriorError> {
    let d = flow.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(row as u64);
    let mut scratch = vec![0.0; flow.batch_scratch_len()];
    let (mut kept, mut drawn) = (Vec::with_capacity(n * d), 0usize);
    let (mut eps, mut xs) = (Vec::new(), Vec::new());
    while kept.len() < n * d {
        let accepted = kept.len() / d;
        let rate = if drawn == 0 {
            1.0
        } else {
            (accepted as f64 / drawn as f64).max(floor)
        };
        let want = (((n - accepted) as f64 / rate) * 1.1).ceil() as usize;
        let batch = want.clamp(64, 1 << 16);
        eps.clear();
        eps.extend((0..batch * d).map(|_| standard_normal(&mut rng)));
        xs.resize(batch * d, 0.0);
        flow.sample_batch(&eps, ctx, &mut xs, &mut scratch);
        for x in xs.chunks_exact(d) {
            drawn += 1;
            if bounds.contains(x) {
                kept.extend_from_slice(x);
                if kept.len() == n * d {
                    break;
                }
            }
            if drawn % MIN_PROPOSALS == 0 {
                let accepted = kept.len() / d;
                let rate = accepted as f64 / drawn as f64;
                if rate < floor {
                    return Err(PosteriorError::LowAcceptance {
                        row,
                        accepted,
                        drawn,
                        rate,
                        floor,
                    });
                }
            }
        }
    }
    Ok((kept, drawn))
}
