//! A minimal PNG canvas with axes, ticks and the project's 5×7 font
//! ([`flow_train::plot::font`]), so the examples need no plotting or font library.

use crate::OUT;

pub type Rgb = [u8; 3];
pub const PANEL: usize = 400;
pub const PLOT: i64 = 320;
pub const LEFT: i64 = 60;
pub const TOP: i64 = 24;
pub const FRAME: Rgb = [60, 60, 60];
pub const TEXT: Rgb = [30, 30, 30];
pub const GRID_LINE: Rgb = [225, 225, 225];

pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub rgb: Vec<u8>,
}

#[allow(dead_code)]
impl Canvas {
    pub fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            rgb: vec![255; 3 * w * h],
        }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            for (gy, row) in glyph(ch).iter().enumerate() {
                for gx in 0..5 {
                    if row >> (4 - gx) & 1 == 1 {
                        self.set(x + 6 * k as i64 + gx, y + gy as i64, c);
                    }
                }
            }
        }
    }

    /// Text reading upwards, starting at the bottom (x, y).
    pub fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            for (gy, row) in glyph(ch).iter().enumerate() {
                for gx in 0..5 {
                    if row >> (4 - gx) & 1 == 1 {
                        self.set(x + gy as i64, y - 6 * k as i64 - gx, c);
                    }
                }
            }
        }
    }

    pub fn legend(&mut self, mut x: i64, y: i64, items: &[(Rgb, &str)]) {
        for &(c, name) in items {
            for dy in 0..7 {
                for dx in 0..7 {
                    self.set(x + dx, y + dy, c);
                }
            }
            self.text(x + 10, y, name, TEXT);
            x += 10 + text_width(name) + 16;
        }
    }

    /// Writes `examples/out/<name>` and returns its path.
    pub fn save(&self, name: &str) -> Result<String, String> {
        let path = format!("{OUT}/{name}");
        let file = std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| format!("{path}: {e}"))?;
        writer
            .write_image_data(&self.rgb)
            .map_err(|e| format!("{path}: {e}"))?;
        writer.finish().map_err(|e| format!("{path}: {e}"))?;
        Ok(path)
    }
}

pub fn text_width(s: &str) -> i64 {
    (6 * s.chars().count() as i64 - 1).max(0)
}

/// A square plot area inside the panel whose top-left corner is (px, py), mapping data ranges.
pub struct Axes {
    pub x0: i64,
    pub y0: i64,
    pub xr: (f64, f64),
    pub yr: (f64, f64),
}

#[allow(dead_code)]
impl Axes {
    pub fn new(px: i64, py: i64, xr: (f64, f64), yr: (f64, f64)) -> Self {
        Axes {
            x0: px + LEFT,
            y0: py + TOP,
            xr,
            yr,
        }
    }

    /// Axes over the central 99.8 % of `pts` plus a margin.
    pub fn fit(px: i64, py: i64, pts: &[(f64, f64)]) -> Self {
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let range = |v: &[f64]| {
            let (lo, hi) = (percentile(v, 0.001), percentile(v, 0.999));
            let m = 0.08 * (hi - lo).max(1e-9);
            (lo - m, hi + m)
        };
        Axes::new(px, py, range(&xs), range(&ys))
    }

    pub fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.x0 as f64 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * (PLOT - 1) as f64,
            self.y0 as f64 + (self.yr.1 - y) / (self.yr.1 - self.yr.0) * (PLOT - 1) as f64,
        )
    }

    pub fn inside(&self, x: i64, y: i64) -> bool {
        x >= self.x0 && y >= self.y0 && x < self.x0 + PLOT && y < self.y0 + PLOT
    }

    pub fn set(&self, cv: &mut Canvas, x: i64, y: i64, c: Rgb) {
        if self.inside(x, y) {
            cv.set(x, y, c);
        }
    }

    /// Frame, grid, ticks with labels, title and axis names.
    pub fn draw(&self, cv: &mut Canvas, title: &str, xname: &str, yname: &str) {
        let (ticks_x, sx) = nice_ticks(self.xr.0, self.xr.1);
        let (ticks_y, sy) = nice_ticks(self.yr.0, self.yr.1);
        for &t in &ticks_x {
            let (px, _) = self.to_px(t, self.yr.0);
            let px = px.round() as i64;
            for y in self.y0..self.y0 + PLOT {
                cv.set(px, y, GRID_LINE);
            }
            for y in 0..4 {
                cv.set(px, self.y0 + PLOT + y, FRAME);
            }
            let label = fmt_tick(t, sx);
            cv.text(px - text_width(&label) / 2, self.y0 + PLOT + 6, &label, TEXT);
        }
        for &t in &ticks_y {
            let (_, py) = self.to_px(self.xr.0, t);
            let py = py.round() as i64;
            for x in self.x0..self.x0 + PLOT {
                cv.set(x, py, GRID_LINE);
            }
            for x in 1..5 {
                cv.set(self.x0 - x, py, FRAME);
            }
            let label = fmt_tick(t, sy);
            cv.text(self.x0 - 7 - text_width(&label), py - 3, &label, TEXT);
        }
        for k in 0..PLOT {
            for (x, y) in [
                (self.x0 + k, self.y0),
                (self.x0 + k, self.y0 + PLOT - 1),
                (self.x0, self.y0 + k),
                (self.x0 + PLOT - 1, self.y0 + k),
            ] {
                cv.set(x, y, FRAME);
            }
        }
        cv.text(
            self.x0 + (PLOT - text_width(title)) / 2,
            self.y0 - 14,
            title,
            TEXT,
        );
        cv.text(
            self.x0 + (PLOT - text_width(xname)) / 2,
            self.y0 + PLOT + 18,
            xname,
            TEXT,
        );
        cv.text_up(
            self.x0 - LEFT + 4,
            self.y0 + (PLOT + text_width(yname)) / 2,
            yname,
            TEXT,
        );
    }

    /// A filled square dot of half-width `r` pixels.
    pub fn dot(&self, cv: &mut Canvas, x: f64, y: f64, r: i64, c: Rgb) {
        let (px, py) = self.to_px(x, y);
        let (px, py) = (px.round() as i64, py.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                self.set(cv, px + dx, py + dy, c);
            }
        }
    }

    /// A circle outline of radius `r` pixels.
    pub fn ring(&self, cv: &mut Canvas, x: f64, y: f64, r: i64, c: Rgb) {
        let (px, py) = self.to_px(x, y);
        for k in 0..64 {
            let a = k as f64 / 64.0 * std::f64::consts::TAU;
            for rr in [r as f64, r as f64 + 0.7] {
                self.set(
                    cv,
                    (px + rr * a.cos()).round() as i64,
                    (py + rr * a.sin()).round() as i64,
                    c,
                );
            }
        }
    }

    /// A 2-pixel-wide polyline, clipped to the plot area.
    pub fn polyline(&self, cv: &mut Canvas, pts: &[(f64, f64)], c: Rgb) {
        for w in pts.windows(2) {
            let (a, b) = (self.to_px(w[0].0, w[0].1), self.to_px(w[1].0, w[1].1));
            let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).clamp(1, 4000);
            for k in 0..=n {
                let t = k as f64 / n as f64;
                let (x, y) = (
                    (a.0 + t * (b.0 - a.0)).round() as i64,
                    (a.1 + t * (b.1 - a.1)).round() as i64,
                );
                self.set(cv, x, y, c);
                self.set(cv, x + 1, y, c);
                self.set(cv, x, y + 1, c);
            }
        }
    }

    /// `f(x, y)` on a `cells` × `cells` grid over the plot area, in viridis scaled to its maximum.
    pub fn heatmap(&self, cv: &mut Canvas, cells: i64, f: &mut dyn FnMut(f64, f64) -> f64) {
        let centre = |k: i64, r: (f64, f64)| r.0 + (k as f64 + 0.5) / cells as f64 * (r.1 - r.0);
        let mut vals = Vec::with_capacity((cells * cells) as usize);
        for j in 0..cells {
            for i in 0..cells {
                vals.push(f(centre(i, self.xr), centre(cells - 1 - j, self.yr)));
            }
        }
        let top = vals
            .iter()
            .cloned()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-300);
        for py in 1..PLOT - 1 {
            for px in 1..PLOT - 1 {
                let (i, j) = (px * cells / PLOT, py * cells / PLOT);
                let c = flow_train::plot::viridis(vals[(j * cells + i) as usize] / top);
                cv.set(self.x0 + px, self.y0 + py, c);
            }
        }
    }

    pub fn bin_edges(&self, n: usize) -> impl Iterator<Item = (usize, f64, f64)> + '_ {
        let w = (self.xr.1 - self.xr.0) / n as f64;
        (0..n).map(move |i| (i, self.xr.0 + i as f64 * w, self.xr.0 + (i + 1) as f64 * w))
    }

    /// Filled histogram bars spanning the x range.
    pub fn bars(&self, cv: &mut Canvas, h: &[f64], c: Rgb) {
        for (i, a, b) in self.bin_edges(h.len()) {
            let (xa, y) = self.to_px(a, h[i]);
            let (xb, y0) = self.to_px(b, 0.0);
            for x in xa.round() as i64..xb.round() as i64 {
                for yy in y.round() as i64..=y0.round() as i64 {
                    self.set(cv, x, yy, c);
                }
            }
        }
    }

    /// A histogram outline spanning the x range.
    pub fn steps(&self, cv: &mut Canvas, h: &[f64], c: Rgb) {
        let mut pts = vec![(self.xr.0, 0.0)];
        for (i, a, b) in self.bin_edges(h.len()) {
            pts.push((a, h[i]));
            pts.push((b, h[i]));
        }
        pts.push((self.xr.1, 0.0));
        self.polyline(cv, &pts, c);
    }
}

/// Ticks at a 1-2-5 step, about 5 of them, inside [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

pub fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        "0".into()
    } else {
        s
    }
}

/// The glyph of `c` in the shared font, lower case drawn as upper case.
fn glyph(c: char) -> [u8; 7] {
    flow_train::plot::font::glyph(c.to_ascii_uppercase())
}

/// The `q` quantile of `v` (nearest rank).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((q * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)]
}
