//! `flow-train plot`: a PNG picture of a model, its samples next to the data, and its training
//! curve. Everything is drawn here (no plotting or font library): frames, tick marks, a 5×7
//! bitmap font for tick labels and titles, and a viridis colour map.
//!
//! Layout (sizes in pixels; the tests rely on it):
//! - D ≤ 2: panels of [`PANEL`] × [`PANEL`] side by side, each with a square plot area of
//!   [`PLOT`] × [`PLOT`] at ([`MARGIN_LEFT`], [`MARGIN_TOP`]) inside the panel.
//!   - 2-D unconditional: (1) the density `exp(log p)` on a [`GRID`] × [`GRID`] grid over the data's
//!     bounding box (the samples' central 99 % when there is no data) plus a 10 % margin, viridis,
//!     with up to [`MAX_DOTS`] data points (or 1000 samples) drawn on top as [`DOT`] pixels;
//!     (2) [`N_SAMPLES`] samples ([`MODEL_COLOUR`]) and the data ([`DATA_COLOUR`]) on the same axes;
//!     (3) train and validation NLL per epoch, when the model carries a training history.
//!   - conditional: samples for up to [`MAX_CONTEXTS`] context rows (taken from the data, spread
//!     over its sorted distinct context rows; zeros without data) in [`CONTEXT_COLOURS`], over the
//!     data in [`DATA_GREY`]; then the training curve.
//!   - 1-D: histograms of the data (filled) and the samples (outline), with the model density as a
//!     line for unconditional models; then the training curve.
//! - D > 2: a legend strip of [`LEGEND_HEIGHT`], then a k × k grid of [`CELL`] cells for the first
//!   k = min(D, 4) dimensions (row i, column j: dimension j across, i up; diagonal: histograms),
//!   and the training curve panel to the right of the grid at the top.

use std::path::Path;

use flow_core::flow::Flow;
use flow_core::model::builder::ModelParts;
use flow_core::runtime::{flow_of, BaseView, Layers};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

mod calibration;
pub mod font;
pub use calibration::{rank_bins, write_calibration_png, MAX_RANK_PANELS};

use crate::error::PlotError;
use crate::io::{self, Meta};
use crate::train::EpochInfo;

/// Side of a full-size panel.
pub const PANEL: usize = 400;
/// Side of the square plot area inside a panel.
pub const PLOT: usize = 330;
/// Left edge of the plot area inside a panel.
pub const MARGIN_LEFT: usize = 56;
/// Top edge of the plot area inside a panel.
pub const MARGIN_TOP: usize = 30;
/// Side of a cell of the pairwise grid (D > 2).
pub const CELL: usize = 220;
/// Height of the legend strip above the pairwise grid.
pub const LEGEND_HEIGHT: usize = 24;
/// Density grid resolution per axis.
pub const GRID: usize = 200;
/// Samples drawn for the scatter panels (unconditional models).
pub const N_SAMPLES: usize = 2000;
/// Samples drawn per context row (conditional models).
pub const N_SAMPLES_PER_CONTEXT: usize = 1000;
/// At most this many data points are drawn (evenly strided) in each scatter.
pub const MAX_DOTS: usize = 2000;
/// At most this many context rows are drawn for conditional models.
pub const MAX_CONTEXTS: usize = 4;

/// Image and scatter-panel background.
pub const BACKGROUND: [u8; 3] = [255, 255, 255];
/// The dots drawn over the density heat map.
pub const DOT: [u8; 3] = [255, 255, 255];
/// Data points (unconditional models).
pub const DATA_COLOUR: [u8; 3] = [31, 119, 180];
/// Model samples (unconditional models) and the validation curve.
pub const MODEL_COLOUR: [u8; 3] = [255, 127, 14];
/// Data points behind the samples of conditional models.
pub const DATA_GREY: [u8; 3] = [180, 180, 180];
/// Samples per context row (conditional models).
pub const CONTEXT_COLOURS: [[u8; 3]; MAX_CONTEXTS] =
    [[255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189]];
/// Frames and tick marks.
pub const FRAME: [u8; 3] = [60, 60, 60];
/// Tick labels and titles.
pub const TEXT: [u8; 3] = [30, 30, 30];
/// Grid lines of the scatter and curve panels.
pub const GRID_LINE: [u8; 3] = [230, 230, 230];

/// Draws `model` (and optionally the data in `data`, a CSV whose columns are matched by the names
/// stored in the model) into the PNG `output`, written atomically. See the module documentation
/// for what the picture shows. Errors name the file (and the column) at fault.
pub fn plot(model: &Path, data: Option<&Path>, output: &Path) -> Result<(), PlotError> {
    let (parts, meta) = io::read_model(model).map_err(|e| e.to_string())?;
    let m = Model::new(parts);
    let names = names_or(&meta.columns, m.d, "x");
    let ctx_names = names_or(&meta.context_columns, m.c, "c");
    let table = match data {
        Some(p) => Some(load_table(p, &names, &ctx_names)?),
        None => None,
    };
    let canvas = render(&m, &meta, table.as_ref(), &names, &ctx_names);
    let png = canvas
        .encode_png()
        .map_err(|e| format!("{}: cannot encode PNG: {e}", output.display()))?;
    io::write_atomic(output, &png).map_err(|e| e.to_string().into())
}

fn names_or(stored: &[String], n: usize, prefix: &str) -> Vec<String> {
    if stored.len() == n {
        stored.to_vec()
    } else {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Model and data
// ---------------------------------------------------------------------------------------------

struct Model {
    parts: ModelParts,
    /// The weights as the file stores them (see `ModelParts::stored_weights`).
    stored: Vec<f64>,
    d: usize,
    c: usize,
}

type RtFlow<'a> = Flow<f64, Layers<'a, f64>, BaseView<'a, f64>>;

impl Model {
    fn new(parts: ModelParts) -> Self {
        let stored = parts.stored_weights();
        let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
        Model { parts, stored, d, c }
    }

    fn flow(&self) -> RtFlow<'_> {
        flow_of::<f64, f64>(&self.parts.desc, &self.stored, &self.parts.ints)
    }

    /// `n` samples (row-major); rows with a non-finite value are dropped.
    fn samples(&self, n: usize, ctx: &[f64], seed: u64) -> Vec<f64> {
        let flow = self.flow();
        let mut scratch = vec![0.0; flow.scratch_len()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = vec![0.0; self.d];
        let mut out = Vec::with_capacity(n * self.d);
        for _ in 0..n {
            flow.sample_with(&mut rng, ctx, &mut x, &mut scratch);
            if x.iter().all(|v| v.is_finite()) {
                out.extend_from_slice(&x);
            }
        }
        out
    }

    /// Densities `exp(log p)` at row-major points, in parallel; non-finite results become 0.
    fn densities(&self, points: &[f64], ctx: &[f64]) -> Vec<f64> {
        let flow = self.flow();
        let n_scratch = flow.scratch_len();
        points
            .par_chunks(self.d)
            .map_init(
                || vec![0.0; n_scratch],
                |scratch, x| {
                    let p = flow.log_prob(x, ctx, scratch).exp();
                    if p.is_finite() {
                        p
                    } else {
                        0.0
                    }
                },
            )
            .collect()
    }
}

/// Data rows (finite ones only), row-major.
struct Table {
    x: Vec<f64>,
    ctx: Vec<f64>,
}

fn load_table(path: &Path, names: &[String], ctx_names: &[String]) -> Result<Table, PlotError> {
    let shown = path.display().to_string();
    let all: Vec<String> = names.iter().chain(ctx_names).cloned().collect();
    let (table, _) = crate::csv::read_table(path, Some(&all), false, None).map_err(|e| {
        let e = e.to_string();
        if e.contains(&shown) {
            e
        } else {
            format!("{shown}: {e}")
        }
    })?;
    let x = table.select(names, path).map_err(|e| e.to_string())?;
    let ctx = table.select(ctx_names, path).map_err(|e| e.to_string())?;
    let mut t = Table {
        x: Vec::new(),
        ctx: Vec::new(),
    };
    let (d, c) = (names.len().max(1), ctx_names.len());
    for (r, xr) in x.chunks(d).enumerate() {
        let cr = ctx.get(r * c..(r + 1) * c).unwrap_or(&[]);
        if xr.iter().chain(cr).all(|v| v.is_finite()) {
            t.x.extend_from_slice(xr);
            t.ctx.extend_from_slice(cr);
        }
    }
    if t.x.is_empty() {
        return Err(format!("{shown}: no data rows with finite values").into());
    }
    Ok(t)
}

/// Up to [`MAX_CONTEXTS`] distinct context rows, spread over the sorted distinct rows.
fn pick_contexts(ctx: &[f64], c: usize) -> Vec<Vec<f64>> {
    let mut rows: Vec<Vec<f64>> = ctx.chunks(c).map(|r| r.to_vec()).collect();
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows.dedup();
    let m = rows.len();
    if m <= MAX_CONTEXTS {
        return rows;
    }
    (0..MAX_CONTEXTS)
        .map(|k| {
            let q = 0.1 + 0.8 * k as f64 / (MAX_CONTEXTS - 1) as f64;
            rows[(q * (m - 1) as f64).round() as usize].clone()
        })
        .collect()
}

/// Legend labels of context rows: `name=value` for one short-named column, else the values (at most
/// two, then `..`).
fn context_labels(contexts: &[Vec<f64>], names: &[String]) -> Vec<String> {
    contexts
        .iter()
        .map(|ctx| {
            let values: Vec<String> = ctx.iter().take(2).map(|&v| fmt_sig(v)).collect();
            let mut label = values.join(",");
            if names.len() == 1 && names[0].chars().count() <= 8 {
                label = format!("{}={label}", names[0]);
            } else if ctx.len() > 2 {
                label.push_str(",..");
            }
            label
        })
        .collect()
}

/// Points to draw in one colour.
struct Series {
    pts: Vec<f64>,
    colour: [u8; 3],
    label: String,
    /// Drawn as a filled histogram (data) rather than an outline (samples).
    filled: bool,
}

/// At most `max` rows of `pts` (dimension `d`), evenly strided.
fn strided(pts: &[f64], d: usize, max: usize) -> Vec<f64> {
    let n = pts.len() / d;
    if n <= max {
        return pts.to_vec();
    }
    (0..max)
        .flat_map(|k| pts[k * n / max * d..(k * n / max + 1) * d].iter().copied())
        .collect()
}

/// Per-dimension plotting ranges: the data's bounding box, or the samples' 0.5–99.5 % quantiles
/// without data; plus 10 % on each side.
fn bounds(data: Option<&Table>, samples: &[&Series], d: usize) -> Vec<(f64, f64)> {
    (0..d)
        .map(|j| {
            let (lo, hi) = match data {
                Some(t) => {
                    t.x.iter()
                        .skip(j)
                        .step_by(d)
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                            (a.min(v), b.max(v))
                        })
                }
                None => {
                    let mut v: Vec<f64> = samples
                        .iter()
                        .flat_map(|s| s.pts.iter().skip(j).step_by(d).copied())
                        .collect();
                    v.sort_by(f64::total_cmp);
                    if v.is_empty() {
                        (-3.0, 3.0)
                    } else {
                        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
                        (q(0.005), q(0.995))
                    }
                }
            };
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5 - 0.05 * lo.abs(), lo + 0.5 + 0.05 * lo.abs())
            };
            let pad = 0.1 * (hi - lo);
            (lo - pad, hi + pad)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The figure
// ---------------------------------------------------------------------------------------------

fn render(m: &Model, meta: &Meta, data: Option<&Table>, names: &[String], ctx_names: &[String]) -> Canvas {
    let d = m.d;
    let history: &[EpochInfo] = meta.training.as_ref().map(|t| &t.history[..]).unwrap_or(&[]);
    let has_curve = !history.is_empty();

    // Series: the data first, then the samples.
    let mut series = Vec::new();
    let mut data_series = None;
    if let Some(t) = data {
        let (colour, label) = if m.c == 0 {
            (DATA_COLOUR, "DATA")
        } else {
            (DATA_GREY, "DATA")
        };
        data_series = Some(Series {
            pts: strided(&t.x, d, MAX_DOTS),
            colour,
            label: label.into(),
            filled: true,
        });
    }
    if m.c == 0 {
        let pts = m.samples(N_SAMPLES, &[], 1);
        series.push(Series {
            pts,
            colour: MODEL_COLOUR,
            label: "MODEL".into(),
            filled: false,
        });
    } else {
        let contexts = match data {
            Some(t) => pick_contexts(&t.ctx, m.c),
            None => vec![vec![0.0; m.c]],
        };
        let labels = context_labels(&contexts, ctx_names);
        for (k, (ctx, label)) in contexts.iter().zip(labels).enumerate() {
            let pts = m.samples(N_SAMPLES_PER_CONTEXT, ctx, 1 + k as u64);
            series.push(Series {
                pts,
                colour: CONTEXT_COLOURS[k],
                label,
                filled: false,
            });
        }
    }
    let sample_refs: Vec<&Series> = series.iter().collect();
    let b = bounds(data, &sample_refs, d);
    let all: Vec<&Series> = data_series.iter().chain(series.iter()).collect();

    if d <= 2 {
        let mut n_panels = 1 + usize::from(has_curve);
        let heat = d == 2 && m.c == 0;
        n_panels += usize::from(heat);
        let mut cv = Canvas::new(n_panels * PANEL, PANEL);
        let mut k = 0;
        let mut next = || {
            let r = Rect {
                x: (k * PANEL) as i64,
                y: 0,
                w: PANEL as i64,
                h: PANEL as i64,
            };
            k += 1;
            r
        };
        if d == 2 {
            if heat {
                let dots = match data {
                    Some(t) => strided(&t.x, 2, MAX_DOTS),
                    None => strided(&series[0].pts, 2, 1000),
                };
                heatmap_panel(&mut cv, next(), m, (b[0], b[1]), &dots, names);
            }
            let title = if m.c == 0 { "SAMPLES" } else { "SAMPLES BY CONTEXT" };
            scatter_panel(&mut cv, next(), title, &all, (b[0], b[1]), names);
        } else {
            let line = (m.c == 0).then(|| {
                let xs: Vec<f64> = (0..GRID)
                    .map(|i| b[0].0 + (i as f64 + 0.5) / GRID as f64 * (b[0].1 - b[0].0))
                    .collect();
                let ps = m.densities(&xs, &[]);
                xs.into_iter().zip(ps).collect::<Vec<_>>()
            });
            histogram_panel(&mut cv, next(), &all, b[0], &names[0], line.as_deref());
        }
        if has_curve {
            curve_panel(&mut cv, next(), history);
        }
        return cv;
    }

    // D > 2: pairwise grid.
    let k = d.min(4);
    let grid_w = k * CELL;
    let width = grid_w + if has_curve { PANEL } else { 0 };
    let height = (LEGEND_HEIGHT + k * CELL).max(if has_curve { PANEL } else { 0 });
    let mut cv = Canvas::new(width, height);
    let items: Vec<([u8; 3], &str)> = all.iter().map(|s| (s.colour, s.label.as_str())).collect();
    let title = if m.c == 0 { "PAIRS" } else { "PAIRS BY CONTEXT" };
    heading(&mut cv, (8, grid_w as i64 - 4), (9, 3), title, &items);
    for i in 0..k {
        for j in 0..k {
            let cell = Rect {
                x: (j * CELL) as i64,
                y: (LEGEND_HEIGHT + i * CELL) as i64,
                w: CELL as i64,
                h: CELL as i64,
            };
            let plot = Rect {
                x: cell.x + 46,
                y: cell.y + 18,
                w: CELL as i64 - 54,
                h: CELL as i64 - 54,
            };
            let x_name = (i + 1 == k).then_some(names[j].as_str());
            let y_name = (j == 0).then_some(names[i].as_str());
            if i == j {
                let hist = Hist::new(&all, j, d, b[j], 40);
                let ax = Axes {
                    r: plot,
                    x: b[j],
                    y: (0.0, hist.max * 1.1),
                };
                cv.fill(plot, BACKGROUND);
                grid_lines(&mut cv, &ax, false, false);
                hist.draw(&mut cv, &ax, &all);
                decorate(
                    &mut cv,
                    &ax,
                    Deco {
                        x_name,
                        y_name,
                        y_labels: false,
                        integer_x: false,
                    },
                );
            } else {
                let ax = Axes {
                    r: plot,
                    x: b[j],
                    y: b[i],
                };
                cv.fill(plot, BACKGROUND);
                grid_lines(&mut cv, &ax, false, true);
                scatter(&mut cv, &ax, &all, (j, i), d, 1);
                decorate(
                    &mut cv,
                    &ax,
                    Deco {
                        x_name,
                        y_name,
                        y_labels: true,
                        integer_x: false,
                    },
                );
            }
        }
    }
    if has_curve {
        curve_panel(
            &mut cv,
            Rect {
                x: grid_w as i64,
                y: 0,
                w: PANEL as i64,
                h: PANEL as i64,
            },
            history,
        );
    }
    cv
}

fn plot_area(panel: Rect) -> Rect {
    Rect {
        x: panel.x + MARGIN_LEFT as i64,
        y: panel.y + MARGIN_TOP as i64,
        w: PLOT as i64,
        h: PLOT as i64,
    }
}

fn title(cv: &mut Canvas, panel: Rect, title: &str, items: &[([u8; 3], &str)]) {
    let xs = (panel.x + MARGIN_LEFT as i64, panel.x + panel.w - 4);
    heading(cv, xs, (panel.y + 11, panel.y + 4), title, items);
}

/// A title followed by legend items (colour swatch, label) between `xs.0` and `xs.1`: on one row at
/// `ys.0` when they fit, else on two rows from `ys.1` (items that still do not fit are left out).
fn heading(cv: &mut Canvas, xs: (i64, i64), ys: (i64, i64), title: &str, items: &[([u8; 3], &str)]) {
    const GAP: i64 = 14;
    let labels: Vec<String> = items.iter().map(|(_, l)| l.to_uppercase()).collect();
    let widths: Vec<i64> = labels.iter().map(|l| 13 + text_width(l)).collect();
    let start = xs.0 + text_width(title) + 2 * GAP;
    let one_row = start + widths.iter().map(|w| w + GAP).sum::<i64>() - GAP <= xs.1;
    let mut y = if one_row { ys.0 } else { ys.1 };
    cv.text(xs.0, y, title, TEXT);
    let mut x = start;
    let mut second = false;
    for ((c, _), (label, w)) in items.iter().zip(labels.iter().zip(widths)) {
        if x + w > xs.1 {
            if second || x == xs.0 {
                break;
            }
            (x, y, second) = (xs.0, y + 13, true);
            if x + w > xs.1 {
                break;
            }
        }
        cv.fill(
            Rect {
                x,
                y: y - 1,
                w: 9,
                h: 9,
            },
            *c,
        );
        cv.text(x + 13, y, label, TEXT);
        x += w + GAP;
    }
}

fn heatmap_panel(
    cv: &mut Canvas,
    panel: Rect,
    m: &Model,
    b: ((f64, f64), (f64, f64)),
    dots: &[f64],
    names: &[String],
) {
    let ((x0, x1), (y0, y1)) = b;
    let g = GRID;
    let node = |i: usize, lo: f64, hi: f64| lo + (i as f64 + 0.5) / g as f64 * (hi - lo);
    let pts: Vec<f64> = (0..g * g)
        .flat_map(|k| [node(k % g, x0, x1), node(k / g, y0, y1)])
        .collect();
    let dens = m.densities(&pts, &[]);
    let max = dens.iter().copied().fold(0.0, f64::max);
    let ax = Axes {
        r: plot_area(panel),
        x: b.0,
        y: b.1,
    };
    let r = ax.r;
    for py in 0..r.h {
        // Continuous grid index of this pixel row (nodes at cell centres, y up).
        let v = ((r.h - py) as f64 - 0.5) / r.h as f64 * g as f64 - 0.5;
        for px in 0..r.w {
            let u = (px as f64 + 0.5) / r.w as f64 * g as f64 - 0.5;
            let p = bilinear(&dens, g, u, v);
            let t = if max > 0.0 { p / max } else { 0.0 };
            cv.set(r.x + px, r.y + py, viridis(t));
        }
    }
    for p in dots.chunks(2) {
        if let Some((x, y)) = ax.to_px(p[0], p[1]) {
            cv.set(x as i64, y as i64, DOT);
        }
    }
    title(cv, panel, "DENSITY", &[]);
    colour_bar(
        cv,
        Rect {
            x: r.x + r.w + 4,
            y: r.y,
            w: 6,
            h: r.h,
        },
    );
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some(&names[0]),
            y_name: Some(&names[1]),
            y_labels: true,
            integer_x: false,
        },
    );
}

fn colour_bar(cv: &mut Canvas, r: Rect) {
    for py in 0..r.h {
        let c = viridis(1.0 - py as f64 / (r.h - 1) as f64);
        for px in 0..r.w {
            cv.set(r.x + px, r.y + py, c);
        }
    }
    cv.frame(r, FRAME);
}

fn bilinear(grid: &[f64], g: usize, u: f64, v: f64) -> f64 {
    let top = (g - 1) as f64;
    let (u, v) = (u.clamp(0.0, top), v.clamp(0.0, top));
    let (i, j) = ((u.floor() as usize).min(g - 2), (v.floor() as usize).min(g - 2));
    let (fu, fv) = (u - i as f64, v - j as f64);
    let at = |i: usize, j: usize| grid[j * g + i];
    let a = at(i, j) * (1.0 - fu) + at(i + 1, j) * fu;
    let b = at(i, j + 1) * (1.0 - fu) + at(i + 1, j + 1) * fu;
    a * (1.0 - fv) + b * fv
}

fn scatter_panel(
    cv: &mut Canvas,
    panel: Rect,
    name: &str,
    all: &[&Series],
    b: ((f64, f64), (f64, f64)),
    names: &[String],
) {
    let ax = Axes {
        r: plot_area(panel),
        x: b.0,
        y: b.1,
    };
    cv.fill(ax.r, BACKGROUND);
    grid_lines(cv, &ax, false, true);
    scatter(cv, &ax, all, (0, 1), 2, 2);
    let items: Vec<([u8; 3], &str)> = all.iter().map(|s| (s.colour, s.label.as_str())).collect();
    title(cv, panel, name, &items);
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some(&names[0]),
            y_name: Some(&names[1]),
            y_labels: true,
            integer_x: false,
        },
    );
}

/// Draws the series' points interleaved (so that no series hides another), as `size`² squares.
fn scatter(cv: &mut Canvas, ax: &Axes, all: &[&Series], (jx, jy): (usize, usize), d: usize, size: i64) {
    let mut order: Vec<(f64, usize, usize)> = Vec::new();
    for (s, series) in all.iter().enumerate() {
        let n = series.pts.len() / d;
        order.extend((0..n).map(|i| (i as f64 / n as f64, s, i)));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, s, i) in order {
        let p = &all[s].pts[i * d..(i + 1) * d];
        if let Some((x, y)) = ax.to_px(p[jx], p[jy]) {
            let (x, y) = (x as i64 - size / 2, y as i64 - size / 2);
            for dy in 0..size {
                for dx in 0..size {
                    cv.set_clipped(x + dx, y + dy, all[s].colour, ax.r);
                }
            }
        }
    }
}

/// Density-normalized histograms of one coordinate of every series.
struct Hist {
    counts: Vec<Vec<f64>>,
    range: (f64, f64),
    max: f64,
}

impl Hist {
    fn new(all: &[&Series], j: usize, d: usize, range: (f64, f64), bins: usize) -> Self {
        let width = (range.1 - range.0) / bins as f64;
        let counts: Vec<Vec<f64>> = all
            .iter()
            .map(|s| {
                let mut h = vec![0.0; bins];
                let n = (s.pts.len() / d).max(1) as f64;
                for v in s.pts.iter().skip(j).step_by(d) {
                    let b = ((v - range.0) / width).floor();
                    if b >= 0.0 && (b as usize) < bins {
                        h[b as usize] += 1.0 / (n * width);
                    }
                }
                h
            })
            .collect();
        let max = counts.iter().flatten().copied().fold(0.0, f64::max).max(1e-300);
        Hist { counts, range, max }
    }

    fn draw(&self, cv: &mut Canvas, ax: &Axes, all: &[&Series]) {
        let bins = self.counts.first().map_or(0, |c| c.len());
        let width = (self.range.1 - self.range.0) / bins as f64;
        let edge = |k: usize| self.range.0 + k as f64 * width;
        for (h, s) in self.counts.iter().zip(all).filter(|(_, s)| s.filled) {
            let tint = mix(s.colour, BACKGROUND, 0.45);
            for (k, &v) in h.iter().enumerate() {
                let (xa, xb) = (ax.px(edge(k)).round() as i64, ax.px(edge(k + 1)).round() as i64);
                let top = ax.py(v).round() as i64;
                for x in xa..xb {
                    for y in top..ax.r.y + ax.r.h {
                        cv.set_clipped(x, y, tint, ax.r);
                    }
                }
            }
        }
        for (h, s) in self.counts.iter().zip(all).filter(|(_, s)| !s.filled) {
            let mut prev: Option<(f64, f64)> = None;
            for (k, &v) in h.iter().enumerate() {
                let (xa, xb, y) = (ax.px(edge(k)), ax.px(edge(k + 1)), ax.py(v));
                if let Some((px, py)) = prev {
                    cv.thick_line((px, py), (xa, y), s.colour, ax.r);
                }
                cv.thick_line((xa, y), (xb, y), s.colour, ax.r);
                prev = Some((xb, y));
            }
        }
    }
}

fn histogram_panel(
    cv: &mut Canvas,
    panel: Rect,
    all: &[&Series],
    range: (f64, f64),
    name: &str,
    line: Option<&[(f64, f64)]>,
) {
    let hist = Hist::new(all, 0, 1, range, 60);
    let top = line
        .map_or(0.0, |l| l.iter().map(|p| p.1).fold(0.0, f64::max))
        .max(hist.max)
        * 1.1;
    let ax = Axes {
        r: plot_area(panel),
        x: range,
        y: (0.0, top),
    };
    cv.fill(ax.r, BACKGROUND);
    grid_lines(cv, &ax, false, true);
    hist.draw(cv, &ax, all);
    let mut items: Vec<([u8; 3], &str)> = all.iter().map(|s| (s.colour, s.label.as_str())).collect();
    if let Some(l) = line {
        for w in l.windows(2) {
            cv.thick_line(
                (ax.px(w[0].0), ax.py(w[0].1)),
                (ax.px(w[1].0), ax.py(w[1].1)),
                FRAME,
                ax.r,
            );
        }
        items.push((FRAME, "DENSITY"));
    }
    title(cv, panel, "HISTOGRAM", &items);
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some(name),
            y_name: None,
            y_labels: true,
            integer_x: false,
        },
    );
}

/// Reads one value of an epoch's record.
type Getter = fn(&EpochInfo) -> f64;

fn curve_panel(cv: &mut Canvas, panel: Rect, history: &[EpochInfo]) {
    let n = history.len();
    let vals = history
        .iter()
        .flat_map(|h| [h.train_nll, h.val_nll])
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if hi > lo {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let pad = 0.02 * n.saturating_sub(1) as f64;
    let xr = if n > 1 {
        (1.0 - pad, n as f64 + pad)
    } else {
        (0.5, 1.5)
    };
    let ax = Axes {
        r: plot_area(panel),
        x: xr,
        y: (lo, hi),
    };
    cv.fill(ax.r, BACKGROUND);
    grid_lines(cv, &ax, true, true);
    let best = history
        .iter()
        .filter(|h| h.val_nll.is_finite())
        .min_by(|a, b| a.val_nll.total_cmp(&b.val_nll))
        .map(|h| h.epoch);
    if let Some(e) = best {
        let x = ax.px(e as f64).round() as i64;
        for y in (ax.r.y..ax.r.y + ax.r.h).step_by(2) {
            cv.set_clipped(x, y, [150, 150, 150], ax.r);
        }
    }
    let lines: [(Getter, [u8; 3]); 2] = [(|h| h.train_nll, DATA_COLOUR), (|h| h.val_nll, MODEL_COLOUR)];
    for (get, colour) in lines {
        let pts: Vec<Option<(f64, f64)>> = history
            .iter()
            .map(|h| {
                let v = get(h);
                v.is_finite().then(|| (ax.px(h.epoch as f64), ax.py(v)))
            })
            .collect();
        for w in pts.windows(2) {
            if let (Some(a), Some(b)) = (w[0], w[1]) {
                cv.thick_line(a, b, colour, ax.r);
            }
        }
        if n <= 60 {
            for (x, y) in pts.into_iter().flatten() {
                let (x, y) = (x.round() as i64, y.round() as i64);
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        cv.set_clipped(x + dx, y + dy, colour, ax.r);
                    }
                }
            }
        }
    }
    title(
        cv,
        panel,
        "NLL",
        &[(DATA_COLOUR, "TRAIN"), (MODEL_COLOUR, "VALIDATION")],
    );
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some("EPOCH"),
            y_name: None,
            y_labels: true,
            integer_x: true,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Axes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x && x < self.x + self.w && y >= self.y && y < self.y + self.h
    }
}

/// A plot area and the data ranges it shows.
struct Axes {
    r: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn px(&self, x: f64) -> f64 {
        self.r.x as f64 + (x - self.x.0) / (self.x.1 - self.x.0) * self.r.w as f64
    }

    fn py(&self, y: f64) -> f64 {
        (self.r.y + self.r.h) as f64 - (y - self.y.0) / (self.y.1 - self.y.0) * self.r.h as f64
    }

    /// Pixel of a data point, `None` outside the plot area.
    fn to_px(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (px, py) = (self.px(x).floor(), self.py(y).floor());
        (px.is_finite() && py.is_finite() && self.r.contains(px as i64, py as i64)).then_some((px, py))
    }
}

struct Deco<'a> {
    x_name: Option<&'a str>,
    y_name: Option<&'a str>,
    y_labels: bool,
    integer_x: bool,
}

/// 1-2-5 ticks inside `[lo, hi]`, about `target` of them.
fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> (Vec<f64>, f64) {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return (Vec::new(), 1.0);
    }
    let raw = (hi - lo) / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    if integer {
        step = step.max(1.0).round();
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

fn fmt_tick(v: f64, step: f64) -> String {
    if v.abs() < step * 1e-6 {
        return "0".into();
    }
    if v.abs() >= 1e5 || step < 1e-4 {
        return format!("{v:.1e}");
    }
    let dec = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.dec$}")
}

/// A number with about 3 significant digits, trailing zeros removed.
fn fmt_sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{}", if v == 0.0 { 0.0 } else { v });
    }
    if v.abs() >= 1e4 || v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let dec = (2.0 - v.abs().log10().floor()).max(0.0) as usize;
    let s = format!("{v:.dec$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn grid_lines(cv: &mut Canvas, ax: &Axes, integer_x: bool, horizontal: bool) {
    let r = ax.r;
    for x in nice_ticks(ax.x.0, ax.x.1, 5, integer_x).0 {
        let px = ax.px(x).round() as i64;
        for y in r.y..r.y + r.h {
            cv.set_clipped(px, y, GRID_LINE, r);
        }
    }
    if horizontal {
        for y in nice_ticks(ax.y.0, ax.y.1, 5, false).0 {
            let py = ax.py(y).round() as i64;
            for x in r.x..r.x + r.w {
                cv.set_clipped(x, py, GRID_LINE, r);
            }
        }
    }
}

/// Frame, tick marks, tick labels and axis names around a plot area.
fn decorate(cv: &mut Canvas, ax: &Axes, deco: Deco) {
    let r = ax.r;
    cv.frame(
        Rect {
            x: r.x - 1,
            y: r.y - 1,
            w: r.w + 2,
            h: r.h + 2,
        },
        FRAME,
    );
    let bottom = r.y + r.h;
    let (ticks, step) = nice_ticks(ax.x.0, ax.x.1, 5, deco.integer_x);
    for x in ticks {
        let px = ax.px(x).round() as i64;
        for y in bottom + 1..bottom + 5 {
            cv.set(px, y, FRAME);
        }
        let label = fmt_tick(x, step);
        cv.text(px - text_width(&label) / 2, bottom + 7, &label, TEXT);
    }
    let mut widest = 0;
    if deco.y_labels {
        let (ticks, step) = nice_ticks(ax.y.0, ax.y.1, 5, false);
        for y in ticks {
            let py = ax.py(y).round() as i64;
            for x in r.x - 5..r.x - 1 {
                cv.set(x, py, FRAME);
            }
            let label = fmt_tick(y, step);
            widest = widest.max(text_width(&label));
            cv.text(r.x - 8 - text_width(&label), py - 3, &label, TEXT);
        }
    }
    if let Some(name) = deco.x_name {
        let name = name.to_uppercase();
        cv.text(r.x + (r.w - text_width(&name)) / 2, bottom + 19, &name, TEXT);
    }
    if let Some(name) = deco.y_name {
        let name = name.to_uppercase();
        let x = (r.x - 8 - widest - 12).max(r.x - 44);
        cv.text_up(x, r.y + (r.h + text_width(&name)) / 2, &name, TEXT);
    }
}

// ---------------------------------------------------------------------------------------------
// Colours
// ---------------------------------------------------------------------------------------------

/// matplotlib's viridis (CC0) sampled at 33 evenly spaced points of its 256-entry table.
const VIRIDIS: [[u8; 3]; 33] = [
    [68, 1, 84],
    [71, 13, 96],
    [72, 24, 106],
    [72, 35, 116],
    [71, 45, 123],
    [69, 55, 129],
    [66, 64, 134],
    [62, 73, 137],
    [59, 82, 139],
    [55, 91, 141],
    [51, 99, 141],
    [47, 107, 142],
    [44, 114, 142],
    [41, 122, 142],
    [38, 130, 142],
    [35, 137, 142],
    [33, 145, 140],
    [31, 151, 139],
    [31, 159, 136],
    [33, 166, 133],
    [39, 173, 129],
    [49, 181, 123],
    [61, 188, 116],
    [76, 194, 108],
    [92, 200, 99],
    [110, 206, 88],
    [129, 211, 77],
    [149, 216, 64],
    [170, 220, 50],
    [192, 223, 37],
    [213, 226, 26],
    [234, 229, 26],
    [253, 231, 37],
];

/// Viridis at `t` in [0, 1] (clamped), linearly interpolated in RGB between the table's entries.
pub fn viridis(t: f64) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let f = t * (VIRIDIS.len() - 1) as f64;
    let i = (f.floor() as usize).min(VIRIDIS.len() - 2);
    let a = f - i as f64;
    let (p, q) = (VIRIDIS[i], VIRIDIS[i + 1]);
    std::array::from_fn(|k| (p[k] as f64 + a * (q[k] as f64 - p[k] as f64)).round() as u8)
}

/// `a` moved a fraction `t` towards `b`.
fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> [u8; 3] {
    std::array::from_fn(|k| (a[k] as f64 + t * (b[k] as f64 - a[k] as f64)).round() as u8)
}

// ---------------------------------------------------------------------------------------------
// Canvas, lines and text
// ---------------------------------------------------------------------------------------------

struct Canvas {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            rgb: BACKGROUND.repeat(w * h),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    fn set_clipped(&mut self, x: i64, y: i64, c: [u8; 3], clip: Rect) {
        if clip.contains(x, y) {
            self.set(x, y, c);
        }
    }

    fn fill(&mut self, r: Rect, c: [u8; 3]) {
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                self.set(x, y, c);
            }
        }
    }

    fn frame(&mut self, r: Rect, c: [u8; 3]) {
        for x in r.x..r.x + r.w {
            self.set(x, r.y, c);
            self.set(x, r.y + r.h - 1, c);
        }
        for y in r.y..r.y + r.h {
            self.set(r.x, y, c);
            self.set(r.x + r.w - 1, y, c);
        }
    }

    /// A 2-pixel-wide line (Bresenham, doubled), clipped to `clip`.
    fn thick_line(&mut self, a: (f64, f64), b: (f64, f64), c: [u8; 3], clip: Rect) {
        let lim = |v: f64| v.clamp(-1e5, 1e5).round() as i64;
        let (mut x0, mut y0, x1, y1) = (lim(a.0), lim(a.1), lim(b.0), lim(b.1));
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        let steep = -dy > dx;
        loop {
            self.set_clipped(x0, y0, c, clip);
            if steep {
                self.set_clipped(x0 + 1, y0, c, clip);
            } else {
                self.set_clipped(x0, y0 + 1, c, clip);
            }
            if x0 == x1 && y0 == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x0 += sx;
            }
            if e2 <= dx {
                err += dx;
                y0 += sy;
            }
        }
    }

    /// Text in the 5×7 font with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..5 {
                    if row >> (4 - gx) & 1 == 1 {
                        self.set(x + 6 * k as i64 + gx, y + gy as i64, c);
                    }
                }
            }
        }
    }

    /// Text rotated a quarter turn counter-clockwise (reading upwards), starting at the bottom
    /// (x, y) with the tops of the letters facing left.
    fn text_up(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..5 {
                    if row >> (4 - gx) & 1 == 1 {
                        self.set(x + gy as i64, y - 6 * k as i64 - gx, c);
                    }
                }
            }
        }
    }

    fn encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&self.rgb)?;
            writer.finish()?;
        }
        Ok(out)
    }
}

fn text_width(s: &str) -> i64 {
    (6 * s.chars().count() as i64 - 1).max(0)
}

/// The glyph of `c` in the shared font ([`font::glyph`]), lower case drawn as upper case.
fn glyph(c: char) -> [u8; 7] {
    font::glyph(c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_monotone_lightness() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f64::NAN), [68, 1, 84]);
        let lum = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        for k in 0..100 {
            assert!(
                lum(viridis((k + 1) as f64 / 100.0)) >= lum(viridis(k as f64 / 100.0)) - 0.5,
                "{k}"
            );
        }
    }

    #[test]
    fn ticks_are_nice() {
        let (t, s) = nice_ticks(-0.3, 2.2, 5, false);
        assert_eq!(s, 0.5);
        assert_eq!(t, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(fmt_tick(-0.5, 0.5), "-0.5");
        assert_eq!(fmt_tick(1e-17, 0.5), "0");
        let (t, _) = nice_ticks(1.0, 3.0, 5, true);
        assert_eq!(t, vec![1.0, 2.0, 3.0]);
        assert_eq!(fmt_sig(0.123456), "0.123");
        assert_eq!(fmt_sig(2.0), "2");
    }

    #[test]
    fn contexts_are_spread_and_distinct() {
        let ctx: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        let c = pick_contexts(&ctx, 1);
        assert_eq!(c, vec![vec![1.0], vec![3.0], vec![6.0], vec![8.0]]);
        assert_eq!(pick_contexts(&[1.0, 0.0, 1.0], 1), vec![vec![0.0], vec![1.0]]);
    }
}
