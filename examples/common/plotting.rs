// Shared by the `anomaly`, `conditional` and `posterior` examples through `include!` (not an example itself):
// a minimal PNG canvas, axes with ticks and a 5×7 bitmap font, so no plotting or font library is
// needed. Items one example does not use are allowed to be dead there.
// ---------------------------------------------------------------------------------------------
// Minimal PNG plotting: a canvas, axes with ticks, a 5×7 font (no plotting or font library)
// ---------------------------------------------------------------------------------------------

type Rgb = [u8; 3];
const PANEL: usize = 400;
const PLOT: i64 = 320;
const LEFT: i64 = 60;
const TOP: i64 = 24;
const FRAME: Rgb = [60, 60, 60];
const TEXT: Rgb = [30, 30, 30];
const GRID_LINE: Rgb = [225, 225, 225];

struct Canvas {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

#[allow(dead_code)]
impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            rgb: vec![255; 3 * w * h],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
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
    fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
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

    fn legend(&mut self, mut x: i64, y: i64, items: &[(Rgb, &str)]) {
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
    fn save(&self, name: &str) -> Result<String, String> {
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

fn text_width(s: &str) -> i64 {
    (6 * s.chars().count() as i64 - 1).max(0)
}

/// A square plot area inside the panel whose top-left corner is (px, py), mapping data ranges.
struct Axes {
    x0: i64,
    y0: i64,
    xr: (f64, f64),
    yr: (f64, f64),
}

#[allow(dead_code)]
impl Axes {
    fn new(px: i64, py: i64, xr: (f64, f64), yr: (f64, f64)) -> Self {
        Axes {
            x0: px + LEFT,
            y0: py + TOP,
            xr,
            yr,
        }
    }

    /// Axes over the central 99.8 % of `pts` plus a margin.
    fn fit(px: i64, py: i64, pts: &[(f64, f64)]) -> Self {
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let range = |v: &[f64]| {
            let (lo, hi) = (percentile(v, 0.001), percentile(v, 0.999));
            let m = 0.08 * (hi - lo).max(1e-9);
            (lo - m, hi + m)
        };
        Axes::new(px, py, range(&xs), range(&ys))
    }

    fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.x0 as f64 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * (PLOT - 1) as f64,
            self.y0 as f64 + (self.yr.1 - y) / (self.yr.1 - self.yr.0) * (PLOT - 1) as f64,
        )
    }

    fn inside(&self, x: i64, y: i64) -> bool {
        x >= self.x0 && y >= self.y0 && x < self.x0 + PLOT && y < self.y0 + PLOT
    }

    fn set(&self, cv: &mut Canvas, x: i64, y: i64, c: Rgb) {
        if self.inside(x, y) {
            cv.set(x, y, c);
        }
    }

    /// Frame, grid, ticks with labels, title and axis names.
    fn draw(&self, cv: &mut Canvas, title: &str, xname: &str, yname: &str) {
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
    fn dot(&self, cv: &mut Canvas, x: f64, y: f64, r: i64, c: Rgb) {
        let (px, py) = self.to_px(x, y);
        let (px, py) = (px.round() as i64, py.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                self.set(cv, px + dx, py + dy, c);
            }
        }
    }

    /// A circle outline of radius `r` pixels.
    fn ring(&self, cv: &mut Canvas, x: f64, y: f64, r: i64, c: Rgb) {
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
    fn polyline(&self, cv: &mut Canvas, pts: &[(f64, f64)], c: Rgb) {
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
    fn heatmap(&self, cv: &mut Canvas, cells: i64, f: &mut dyn FnMut(f64, f64) -> f64) {
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

    fn bin_edges(&self, n: usize) -> impl Iterator<Item = (usize, f64, f64)> + '_ {
        let w = (self.xr.1 - self.xr.0) / n as f64;
        (0..n).map(move |i| (i, self.xr.0 + i as f64 * w, self.xr.0 + (i + 1) as f64 * w))
    }

    /// Filled histogram bars spanning the x range.
    fn bars(&self, cv: &mut Canvas, h: &[f64], c: Rgb) {
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
    fn steps(&self, cv: &mut Canvas, h: &[f64], c: Rgb) {
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
fn nice_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
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

fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        "0".into()
    } else {
        s
    }
}

/// A 5×7 glyph (rows top to bottom, bit 4 = leftmost column); lower case draws as upper case.
fn glyph(c: char) -> [u8; 7] {
    const FONT: &[(char, [u8; 7])] = &[
        ('0', [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E]),
        ('1', [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        ('2', [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
        ('3', [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
        ('4', [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
        ('5', [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
        ('6', [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
        ('7', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
        ('8', [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
        ('9', [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
        ('A', [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11]),
        ('B', [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E]),
        ('C', [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E]),
        ('D', [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C]),
        ('E', [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F]),
        ('F', [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10]),
        ('G', [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F]),
        ('H', [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11]),
        ('I', [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        ('J', [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C]),
        ('K', [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11]),
        ('L', [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F]),
        ('M', [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11]),
        ('N', [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11]),
        ('O', [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
        ('P', [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10]),
        ('Q', [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D]),
        ('R', [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11]),
        ('S', [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E]),
        ('T', [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
        ('U', [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
        ('V', [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04]),
        ('W', [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A]),
        ('X', [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11]),
        ('Y', [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04]),
        ('Z', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F]),
        ('-', [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00]),
        ('+', [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00]),
        ('.', [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C]),
        (',', [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08]),
        (':', [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00]),
        ('=', [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00]),
        ('_', [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F]),
        ('/', [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00]),
        ('(', [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02]),
        (')', [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08]),
        ('%', [0x19, 0x19, 0x02, 0x04, 0x08, 0x13, 0x13]),
        ('|', [0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
        ('*', [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00]),
        (' ', [0; 7]),
    ];
    let c = c.to_ascii_uppercase();
    FONT.iter()
        .find(|e| e.0 == c)
        .map_or([0x00, 0x1F, 0x11, 0x11, 0x11, 0x1F, 0x00], |e| e.1)
}

/// The `q` quantile of `v` (nearest rank).
fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((q * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)]
}
