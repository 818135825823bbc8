//! The picture: truth, observed, Wiener and flow MAP for three test fields.

use flow_train::plot::font::glyph;

use super::*;

/// Screen pixels per field pixel.
pub(crate) const ZOOM: usize = 24;
pub(crate) const PANEL: usize = SIDE * ZOOM;
pub(crate) const MARGIN: usize = 12;
pub(crate) const GAP: usize = 10;
pub(crate) const TITLE_H: usize = 26;
pub(crate) const LABEL_H: usize = 16;
pub(crate) const BAR_W: usize = 16;
pub(crate) const ROWS: usize = 3;
pub(crate) const BACKGROUND: [u8; 3] = [255, 255, 255];
pub(crate) const MASKED: [u8; 3] = [160, 160, 160];
pub(crate) const INK: [u8; 3] = [20, 20, 20];

pub(crate) struct Canvas {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) rgb: Vec<u8>,
}

impl Canvas {
    pub(crate) fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: [u8; 3]) {
        for yy in y..(y + h).min(self.h) {
            for xx in x..(x + w).min(self.w) {
                self.rgb[3 * (yy * self.w + xx)..3 * (yy * self.w + xx) + 3].copy_from_slice(&c);
            }
        }
    }

    /// Text in the 5×7 font, `scale` screen pixels per font pixel, top-left at (x, y).
    pub(crate) fn text(&mut self, x: usize, y: usize, s: &str, scale: usize) {
        for (n, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + (6 * n + col) * scale, y + r * scale);
                        self.rect(px, py, scale, scale, INK);
                    }
                }
            }
        }
    }

    pub(crate) fn panel(
        &mut self,
        x: usize,
        y: usize,
        values: &[f64; D],
        shown: Option<&[bool; D]>,
        sc: &Scale,
    ) {
        for i in 0..D {
            let c = match shown {
                Some(m) if !m[i] => MASKED,
                _ => viridis(sc.t(values[i])),
            };
            self.rect(x + (i % SIDE) * ZOOM, y + (i / SIDE) * ZOOM, ZOOM, ZOOM, c);
        }
    }
}

/// A logarithmic colour scale.
pub(crate) struct Scale {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
}

impl Scale {
    /// Position of `v` on the scale, in [0, 1].
    pub(crate) fn t(&self, v: f64) -> f64 {
        if v <= self.lo {
            0.0
        } else {
            ((v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())).min(1.0)
        }
    }
}

pub(crate) fn text_width(s: &str, scale: usize) -> usize {
    (6 * s.chars().count()).saturating_sub(1) * scale
}

/// Truth / observed (masked pixels grey) / Wiener / flow MAP for the first three test fields, one
/// shared logarithmic colour scale over `(lo, hi)` (values outside, including non-positive noisy
/// data, take the end colours).
pub(crate) fn picture(
    path: &std::path::Path,
    cases: &[Case],
    recon: &[Recon],
    (lo, hi): (f64, f64),
) -> std::io::Result<()> {
    let rows = ROWS.min(cases.len());
    let scale = Scale { lo, hi };
    let bar_x = MARGIN + 4 * PANEL + 3 * GAP + 2 * GAP;
    let mut cv = Canvas {
        w: bar_x + BAR_W + 6 + 30 + MARGIN,
        h: MARGIN + TITLE_H + rows * (PANEL + LABEL_H) + rows.saturating_sub(1) * GAP + MARGIN,
        rgb: Vec::new(),
    };
    cv.rgb = BACKGROUND.repeat(cv.w * cv.h);
    let titles = ["truth", "observed", "Wiener", "flow MAP"];
    for (j, t) in titles.iter().enumerate() {
        let x = MARGIN + j * (PANEL + GAP) + (PANEL - text_width(t, 2)) / 2;
        cv.text(x, MARGIN, t, 2);
    }
    for (r, (case, rec)) in cases.iter().zip(recon).take(rows).enumerate() {
        let y = MARGIN + TITLE_H + r * (PANEL + LABEL_H + GAP);
        cv.panel(MARGIN, y, &case.truth, None, &scale);
        cv.panel(MARGIN + PANEL + GAP, y, &case.data, Some(&case.observed), &scale);
        for (j, est) in [WIENER, FLOW].into_iter().enumerate() {
            let x = MARGIN + (2 + j) * (PANEL + GAP);
            cv.panel(x, y, &rec.est[est], None, &scale);
            let mse = (0..D)
                .map(|i| (rec.est[est][i] - case.truth[i]).powi(2))
                .sum::<f64>()
                / D as f64;
            let label = format!("mse {mse:.3}");
            cv.text(x + (PANEL - text_width(&label, 1)) / 2, y + PANEL + 5, &label, 1);
        }
        let label = format!("{} masked", case.observed.iter().filter(|o| !**o).count());
        let x = MARGIN + PANEL + GAP;
        cv.text(x + (PANEL - text_width(&label, 1)) / 2, y + PANEL + 5, &label, 1);
    }
    // Colour bar from 0 (bottom) to vmax (top).
    let (top, h) = (MARGIN + TITLE_H, cv.h - MARGIN - (MARGIN + TITLE_H) - LABEL_H);
    for k in 0..h {
        cv.rect(bar_x, top + k, BAR_W, 1, viridis(1.0 - k as f64 / (h - 1) as f64));
    }
    for (v, yy) in [(hi, top), ((lo * hi).sqrt(), top + h / 2 - 3), (lo, top + h - 7)] {
        let label = if v < 1.0 {
            format!("{v:.2}")
        } else {
            format!("{v:.1}")
        };
        cv.text(bar_x + BAR_W + 4, yy, &label, 1);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, cv.w as u32, cv.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(&cv.rgb).map_err(std::io::Error::other)?;
    }
    std::fs::write(path, png_bytes)
}

/// Viridis, the table flow-train's plots use.
pub(crate) fn viridis(t: f64) -> [u8; 3] {
    flow_train::plot::viridis(t)
}
