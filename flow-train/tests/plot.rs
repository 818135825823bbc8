//! `flow_train::plot::plot`: fit tiny models, draw them, decode the PNG and check what is where.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use flow_train::io::{Meta, TrainingRecord, META_FORMAT};
use flow_train::plot::{
    self, BACKGROUND, CELL, CONTEXT_COLOURS, DATA_COLOUR, DOT, LEGEND_HEIGHT, MARGIN_LEFT, MARGIN_TOP,
    MODEL_COLOUR, PANEL, PLOT,
};
use flow_train::{fit, Dataset, FitConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plot").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Two blobs in 2-D, correlated Gaussian in 3-D; `context` adds a 0/1 column `c` that moves the
/// blob.
fn make_data(d: usize, n: usize, context: bool) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cols: Vec<String> = (0..d).map(|j| format!("v{j}")).collect();
    if context {
        cols.push("c".into());
    }
    let rows = (0..n)
        .map(|i| {
            let side = if i % 2 == 0 { -1.5 } else { 1.5 };
            let e: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
            let mut r: Vec<f64> = if d == 2 && !context {
                vec![side + 0.4 * e[0], 0.5 * side + 0.4 * e[1]]
            } else if context {
                let c = (i % 2) as f64;
                vec![3.0 * c + 0.5 * e[0], -2.0 * c + 0.5 * e[1]]
            } else {
                (0..d)
                    .map(|j| e[j] + if j > 0 { 0.8 * e[0] } else { 0.0 })
                    .collect()
            };
            if context {
                r.push((i % 2) as f64);
            }
            r
        })
        .collect();
    (cols, rows)
}

fn write_csv(path: &Path, cols: &[String], rows: &[Vec<f64>]) {
    let mut s = cols.join(",") + "\n";
    for r in rows {
        s += &r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        s += "\n";
    }
    std::fs::write(path, s).unwrap();
}

/// Fits a tiny model on the data (the last column is the context when `context`) and writes it.
fn fit_model(path: &Path, cols: &[String], rows: &[Vec<f64>], context: bool, epochs: usize) {
    let c = usize::from(context);
    let d = cols.len() - c;
    let data = Dataset {
        columns: cols[..d].to_vec(),
        context_columns: cols[d..].to_vec(),
        x: rows.iter().flat_map(|r| r[..d].to_vec()).collect(),
        ctx: rows.iter().flat_map(|r| r[d..].to_vec()).collect(),
    };
    let mut cfg = FitConfig::default();
    cfg.arch.hidden = vec![8, 8];
    cfg.arch.transforms = 2;
    cfg.epochs = epochs;
    cfg.threads = 2; // deterministic on every machine
    cfg.batch_size = 64;
    cfg.lr = 1e-2;
    cfg.seed = 1;
    let out = fit(&data, &cfg).unwrap();
    let meta = Meta {
        format: META_FORMAT.into(),
        columns: data.columns.clone(),
        context_columns: data.context_columns.clone(),
        flow: "maf".into(),
        training: Some(TrainingRecord::of(&cfg, &out)),
        ..Default::default()
    };
    flow_train::io::write_model(path, &out.model.parts, &meta).unwrap();
}

struct Image {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        Image {
            w: info.width as usize,
            h: info.height as usize,
            rgb: buf,
        }
    }

    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.w + x);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Pixel colour counts in `[x, x + w) × [y, y + h)`.
    fn counts(&self, x: usize, y: usize, w: usize, h: usize) -> HashMap<[u8; 3], usize> {
        let mut m = HashMap::new();
        for yy in y..y + h {
            for xx in x..x + w {
                *m.entry(self.px(xx, yy)).or_insert(0) += 1;
            }
        }
        m
    }

    /// Counts in the plot area of panel `k` (panels side by side).
    fn plot_area(&self, k: usize) -> HashMap<[u8; 3], usize> {
        self.counts(k * PANEL + MARGIN_LEFT, MARGIN_TOP, PLOT, PLOT)
    }
}

fn most_common(m: &HashMap<[u8; 3], usize>) -> [u8; 3] {
    *m.iter().max_by_key(|(_, &n)| n).unwrap().0
}

fn n(m: &HashMap<[u8; 3], usize>, c: [u8; 3]) -> usize {
    m.get(&c).copied().unwrap_or(0)
}

#[test]
fn two_d_model_heat_map_scatter_and_curve() {
    let dir = dir("2d");
    let (cols, rows) = make_data(2, 800, false);
    write_csv(&dir.join("data.csv"), &cols, &rows);
    fit_model(&dir.join("m.flow"), &cols, &rows, false, 4);
    let out = dir.join("m.png");
    plot::plot(&dir.join("m.flow"), Some(&dir.join("data.csv")), &out).unwrap();
    let img = Image::read(&out);
    assert_eq!((img.w, img.h), (3 * PANEL, PANEL));

    // (1) Heat map: a smooth colour map with many distinct colours, nearly no background, and the
    // data dots on top.
    let heat = img.plot_area(0);
    assert!(
        heat.len() > 150,
        "heat map has only {} distinct colours",
        heat.len()
    );
    assert_ne!(most_common(&heat), BACKGROUND);
    let dots = n(&heat, DOT);
    assert!(dots > 200 && dots < PLOT * PLOT / 10, "{dots} dot pixels");
    let dark = plot::viridis(0.0);
    assert!(
        n(&heat, dark) > PLOT * PLOT / 20,
        "the low-density corners are dark"
    );

    // (2) Samples vs data: white background, both colours present in quantity.
    let sc = img.plot_area(1);
    assert_eq!(most_common(&sc), BACKGROUND);
    assert!(n(&sc, DATA_COLOUR) > 500, "data pixels {}", n(&sc, DATA_COLOUR));
    assert!(
        n(&sc, MODEL_COLOUR) > 500,
        "sample pixels {}",
        n(&sc, MODEL_COLOUR)
    );
    assert!(
        sc.len() < 40,
        "scatter panel is flat colours ({} distinct)",
        sc.len()
    );

    // (3) Training curve: both polylines.
    let cu = img.plot_area(2);
    assert_eq!(most_common(&cu), BACKGROUND);
    assert!(n(&cu, DATA_COLOUR) > 20 && n(&cu, MODEL_COLOUR) > 20);

    // Frames and tick labels outside the plot areas are dark, the margins otherwise background.
    assert_eq!(img.px(5, 5), BACKGROUND);
    assert_eq!(
        img.px(PANEL + MARGIN_LEFT + PLOT / 2, MARGIN_TOP - 1),
        plot::FRAME
    );

    // Without data: the samples set the box, 1000 of them are the dots.
    let out2 = dir.join("m-nodata.png");
    plot::plot(&dir.join("m.flow"), None, &out2).unwrap();
    let img2 = Image::read(&out2);
    assert_eq!((img2.w, img2.h), (3 * PANEL, PANEL));
    let heat2 = img2.plot_area(0);
    assert!(heat2.len() > 150 && n(&heat2, DOT) > 200);
    assert_eq!(n(&img2.plot_area(1), DATA_COLOUR), 0);
    assert!(n(&img2.plot_area(1), MODEL_COLOUR) > 500);

    // The write is atomic: no temporary file (`.NAME.PID.N.tmp`, `flow_train::io`) is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn three_d_model_draws_a_pairwise_grid() {
    let dir = dir("3d");
    let (cols, rows) = make_data(3, 600, false);
    write_csv(&dir.join("data.csv"), &cols, &rows);
    fit_model(&dir.join("m.flow"), &cols, &rows, false, 4);
    let out = dir.join("m.png");
    plot::plot(&dir.join("m.flow"), Some(&dir.join("data.csv")), &out).unwrap();
    let img = Image::read(&out);
    assert_eq!((img.w, img.h), (3 * CELL + PANEL, LEGEND_HEIGHT + 3 * CELL));
    for i in 0..3 {
        for j in 0..3 {
            let cell = img.counts(j * CELL + 46, LEGEND_HEIGHT + i * CELL + 18, CELL - 54, CELL - 54);
            assert_eq!(most_common(&cell), BACKGROUND, "cell ({i}, {j})");
            assert!(
                n(&cell, MODEL_COLOUR) > 50,
                "cell ({i}, {j}): samples {}",
                n(&cell, MODEL_COLOUR)
            );
            if i != j {
                assert!(
                    n(&cell, DATA_COLOUR) > 50,
                    "cell ({i}, {j}): data {}",
                    n(&cell, DATA_COLOUR)
                );
            } else {
                // Histograms: the data as filled bars in a lighter tint, not as dots.
                assert_eq!(n(&cell, DATA_COLOUR), 0, "cell ({i}, {i})");
                assert!(cell.len() >= 3);
            }
        }
    }
    // The training curve to the right of the grid.
    let curve = img.counts(3 * CELL + MARGIN_LEFT, MARGIN_TOP, PLOT, PLOT);
    assert!(n(&curve, DATA_COLOUR) > 20 && n(&curve, MODEL_COLOUR) > 20);
}

#[test]
fn conditional_model_draws_one_colour_per_context() {
    let dir = dir("cond");
    let (cols, rows) = make_data(2, 600, true);
    write_csv(&dir.join("data.csv"), &cols, &rows);
    fit_model(&dir.join("m.flow"), &cols, &rows, true, 20);
    let out = dir.join("m.png");
    plot::plot(&dir.join("m.flow"), Some(&dir.join("data.csv")), &out).unwrap();
    let img = Image::read(&out);
    assert_eq!(
        (img.w, img.h),
        (2 * PANEL, PANEL),
        "samples and curve, no heat map"
    );
    let sc = img.plot_area(0);
    // Two distinct context values in the data: two colours of samples.
    assert!(n(&sc, CONTEXT_COLOURS[0]) > 300 && n(&sc, CONTEXT_COLOURS[1]) > 300);
    assert_eq!(n(&sc, CONTEXT_COLOURS[2]) + n(&sc, CONTEXT_COLOURS[3]), 0);
    // The sample clouds of the two contexts sit apart (context 1 is shifted right).
    let mean_x = |c: [u8; 3]| {
        let (mut s, mut k) = (0.0, 0.0);
        for y in MARGIN_TOP..MARGIN_TOP + PLOT {
            for x in MARGIN_LEFT..MARGIN_LEFT + PLOT {
                if img.px(x, y) == c {
                    s += x as f64;
                    k += 1.0;
                }
            }
        }
        s / k
    };
    let shift = mean_x(CONTEXT_COLOURS[1]) - mean_x(CONTEXT_COLOURS[0]);
    assert!(shift > 40.0, "context shift {shift} px");

    // The data in grey behind the samples.
    assert!(n(&sc, plot::DATA_GREY) > 300);

    // Without data: a single zero context.
    let out = dir.join("m-nodata.png");
    plot::plot(&dir.join("m.flow"), None, &out).unwrap();
    let sc = Image::read(&out).plot_area(0);
    assert_eq!(n(&sc, plot::DATA_GREY), 0);
    assert!(n(&sc, CONTEXT_COLOURS[0]) > 300);
    assert_eq!(n(&sc, CONTEXT_COLOURS[1]), 0);
}

#[test]
fn errors_name_the_file_and_column() {
    let dir = dir("errors");
    let (cols, rows) = make_data(2, 200, false);
    fit_model(&dir.join("m.flow"), &cols, &rows, false, 4);
    let missing = dir.join("no-such-data.csv");
    let e = plot::plot(&dir.join("m.flow"), Some(&missing), &dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert!(!dir.join("x.png").exists());

    let wrong = dir.join("wrong.csv");
    write_csv(&wrong, &["v0".to_string(), "other".to_string()], &rows);
    let e = plot::plot(&dir.join("m.flow"), Some(&wrong), &dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&wrong.display().to_string()) && e.contains("'v1'"),
        "{e}"
    );

    let no_model = dir.join("none.flow");
    let e = plot::plot(&no_model, None, &dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&no_model.display().to_string()), "{e}");

    let all: HashSet<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(!all.iter().any(|f| f.to_string_lossy().ends_with(".png")));
}
