//! The calibration figure of `flow-train calibrate`: one rank histogram per dimension (up to
//! [`MAX_RANK_PANELS`]) and the expected-coverage curve, panels of [`PANEL`] side by side.
//!
//! - Rank histogram: counts of the ranks 0 ..= L in [`rank_bins`] bins, the expected count of a
//!   calibrated model as a line and its 99 % binomial band shaded.
//! - Coverage: empirical coverage against credibility level, the diagonal and the band
//!   `± KS_99/√N` of a calibrated model.

use std::path::Path;

use super::*;
use crate::calibrate::{histogram, Calibration};
use crate::error::PlotError;

/// At most this many rank-histogram panels (the first dimensions).
pub const MAX_RANK_PANELS: usize = 4;

/// Colour of the expected-count line and the calibrated band's edge.
const EXPECTED: [u8; 3] = [120, 120, 120];
/// The 99 % band of a calibrated model.
const BAND: [u8; 3] = [225, 225, 225];

/// Bins of a rank histogram for `L` samples: `min(L + 1, 20)`; bin `b` holds the ranks from
/// `⌊b (L + 1) / bins⌋` up to the next bin's first.
pub fn rank_bins(l: usize) -> usize {
    (l + 1).min(20)
}

/// First rank of bin `b` of `bins` for `L` samples.
fn bin_start(b: usize, bins: usize, l: usize) -> usize {
    b * (l + 1) / bins
}

/// Writes the figure of `cal` (dimension names `names`) to `path` as a PNG.
pub fn write_calibration_png(cal: &Calibration, names: &[String], path: &Path) -> Result<(), PlotError> {
    let k = cal.ranks.len().min(MAX_RANK_PANELS);
    let mut cv = Canvas::new(PANEL * (k + 1), PANEL);
    let p = PANEL as i64;
    for j in 0..k {
        let panel = Rect {
            x: j as i64 * p,
            y: 0,
            w: p,
            h: p,
        };
        let name = names.get(j).map_or("", |s| s.as_str());
        rank_panel(&mut cv, panel, &cal.ranks[j], cal.samples, name);
    }
    coverage_panel(
        &mut cv,
        Rect {
            x: k as i64 * p,
            y: 0,
            w: p,
            h: p,
        },
        cal,
    );
    let png = cv
        .encode_png()
        .map_err(|e| format!("{}: cannot encode PNG: {e}", path.display()))?;
    io::write_atomic(path, &png).map_err(|e| e.to_string().into())
}

fn rank_panel(cv: &mut Canvas, panel: Rect, ranks: &[usize], l: usize, name: &str) {
    let bins = rank_bins(l);
    let h = histogram(ranks, l);
    let n = ranks.len() as f64;
    // (first rank as a fraction, next bin's, count, expected count, half width of the 99 % band)
    let cols: Vec<(f64, f64, f64, f64, f64)> = (0..bins)
        .map(|b| {
            let (r0, r1) = (bin_start(b, bins, l), bin_start(b + 1, bins, l));
            let q = (r1 - r0) as f64 / (l + 1) as f64;
            let count = h[r0..r1].iter().sum::<usize>() as f64;
            let at = |r: usize| r as f64 / (l + 1) as f64;
            (at(r0), at(r1), count, n * q, 2.576 * (n * q * (1.0 - q)).sqrt())
        })
        .collect();
    let top = cols.iter().map(|c| c.2.max(c.3 + c.4)).fold(1.0, f64::max) * 1.1;
    let ax = Axes {
        r: plot_area(panel),
        x: (0.0, 1.0),
        y: (0.0, top),
    };
    cv.fill(ax.r, BACKGROUND);
    let tint = mix(MODEL_COLOUR, BACKGROUND, 0.45);
    for &(a, b, count, expected, band) in &cols {
        let (xa, xb) = (ax.px(a).round() as i64, ax.px(b).round() as i64);
        let (ya, yb) = (
            ax.py(expected + band).round() as i64,
            ax.py((expected - band).max(0.0)).round() as i64,
        );
        for x in xa..xb {
            for y in ya..yb {
                cv.set_clipped(x, y, BAND, ax.r);
            }
        }
        for x in xa..xb - 1 {
            for y in ax.py(count).round() as i64..ax.r.y + ax.r.h {
                cv.set_clipped(x, y, tint, ax.r);
            }
        }
        let y = ax.py(expected);
        cv.thick_line((xa as f64, y), (xb as f64, y), EXPECTED, ax.r);
    }
    title(cv, panel, "SBC RANKS", &[(tint, name), (EXPECTED, "CALIBRATED")]);
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some("RANK / (L + 1)"),
            y_name: None,
            y_labels: true,
            integer_x: false,
        },
    );
}

fn coverage_panel(cv: &mut Canvas, panel: Rect, cal: &Calibration) {
    let ax = Axes {
        r: plot_area(panel),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
    };
    cv.fill(ax.r, BACKGROUND);
    let b = cal.bound();
    // The band |coverage − α| ≤ bound, column by column.
    for x in ax.r.x..ax.r.x + ax.r.w {
        let a = (x - ax.r.x) as f64 / ax.r.w as f64;
        let (ya, yb) = (
            ax.py((a + b).min(1.0)).round() as i64,
            ax.py((a - b).max(0.0)).round() as i64,
        );
        for y in ya..yb {
            cv.set_clipped(x, y, BAND, ax.r);
        }
    }
    grid_lines(cv, &ax, false, true);
    cv.thick_line((ax.px(0.0), ax.py(0.0)), (ax.px(1.0), ax.py(1.0)), EXPECTED, ax.r);
    let pts: Vec<(f64, f64)> = cal
        .coverage()
        .into_iter()
        .map(|(a, c)| (ax.px(a), ax.py(c)))
        .collect();
    for w in pts.windows(2) {
        cv.thick_line(w[0], w[1], MODEL_COLOUR, ax.r);
    }
    title(
        cv,
        panel,
        "COVERAGE",
        &[(MODEL_COLOUR, "HPD"), (EXPECTED, "CALIBRATED")],
    );
    decorate(
        cv,
        &ax,
        Deco {
            x_name: Some("CREDIBILITY"),
            y_name: None,
            y_labels: true,
            integer_x: false,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_bins_cover_every_rank_once() {
        for l in [0, 1, 9, 12, 99, 100, 257] {
            let bins = rank_bins(l);
            assert_eq!(bin_start(0, bins, l), 0);
            assert_eq!(bin_start(bins, bins, l), l + 1);
            assert!((0..bins).all(|b| bin_start(b, bins, l) < bin_start(b + 1, bins, l)));
        }
    }
}
