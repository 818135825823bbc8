//! The likelihood-free-inference workflow: bounds, posterior draws inside them, calibration, and
//! the `sample` / `calibrate` commands.

use std::path::PathBuf;
use std::process::Command;

use flow_core::flow::standard_normal;
use flow_core::model::builder::ModelParts;
use flow_core::runtime::flow_of;
use flow_train::arch::{build, ArchConfig, FlowKind};
use flow_train::calibrate;
use flow_train::io::{self, Meta};
use flow_train::posterior::{sample_within, Bounds, PosteriorError, MIN_ACCEPTANCE, MIN_PROPOSALS};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An untrained MAF with the standardization `mean`, `std` (and context statistics when
/// `c > 0`): close to N(mean, diag std²) whatever the context.
fn near_normal(d: usize, c: usize, mean: f64, std: f64) -> ModelParts {
    let cfg = ArchConfig {
        flow: FlowKind::Maf,
        transforms: 2,
        hidden: vec![8],
        ..ArchConfig::default()
    };
    let (m, s) = (vec![mean; d], vec![std; d]);
    let (cm, cs) = (vec![3.0; c], vec![10.0; c]);
    let context = Some((&cm[..], &cs[..])).filter(|_| c > 0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    build(&cfg, d, c, Some((&m, &s)), context, &mut rng)
        .unwrap()
        .parts
}

#[test]
fn bounds_parse_one_pair_for_all_columns_or_one_per_column() {
    let b = Bounds::parse("-1,2", 3).unwrap();
    assert_eq!((b.low, b.high), (vec![-1.0; 3], vec![2.0; 3]));
    let b = Bounds::parse("-1, 1, 0, inf", 2).unwrap();
    assert_eq!((&b.low, &b.high), (&vec![-1.0, 0.0], &vec![1.0, f64::INFINITY]));
    assert!(b.contains(&[0.5, 1e300]) && !b.contains(&[0.5, -0.1]) && !b.contains(&[f64::NAN, 1.0]));
    let msg = |s: &str, d: usize| Bounds::parse(s, d).unwrap_err().to_string();
    assert!(msg("-1,1,0", 2).contains("3 values"), "{}", msg("-1,1,0", 2));
    assert!(msg("-1,x", 2).contains("'x' is not a number"));
    assert!(msg("1,1", 2).contains("lower bound 1 must be below the upper bound 1"));
}

#[test]
fn bounds_csv_is_matched_by_name_and_bad_rows_name_their_line() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bounds_csv");
    std::fs::create_dir_all(&dir).unwrap();
    let cols = vec!["a".to_string(), "b".to_string()];
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let b = Bounds::from_csv(&write("ok.csv", "column,low,high\nb,0,5\na,-1,1\n"), &cols).unwrap();
    assert_eq!((b.low, b.high), (vec![-1.0, 0.0], vec![1.0, 5.0]));
    let err = |name: &str, text: &str| {
        Bounds::from_csv(&write(name, text), &cols)
            .unwrap_err()
            .to_string()
    };
    assert!(err("h.csv", "name,lo,hi\na,0,1\n").contains("header must be 'column,low,high'"));
    let e = err("n.csv", "column,low,high\na,0,1\nb,zero,1\n");
    assert!(
        e.contains("line 3") && e.contains("'zero' is not a number"),
        "{e}"
    );
    let e = err("m.csv", "column,low,high\na,0,1\n");
    assert!(e.contains("no bounds for column 'b'"), "{e}");
    let e = err("u.csv", "column,low,high\na,0,1\nc,0,1\n");
    assert!(
        e.contains("line 3") && e.contains("no modelled column 'c'"),
        "{e}"
    );
}

/// Draws from a flow close to N(0, I) inside [−1, 1]²: all inside, acceptance near the normal's
/// mass there (0.6827² ≈ 0.466), the same for any thread count, and an error far outside.
#[test]
fn sample_within_keeps_draws_inside_and_reports_the_acceptance() {
    let parts = near_normal(2, 1, 0.0, 1.0);
    let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let b = Bounds::parse("-1,1", 2).unwrap();
    let contexts = [0.0, 50.0, -20.0];
    let s = sample_within(&flow, &contexts, &b, 4000, 7, MIN_ACCEPTANCE).unwrap();
    assert_eq!(s.samples.len(), 3 * 4000 * 2);
    assert!(s.samples.chunks(2).all(|x| b.contains(x)));
    let rate = s.acceptance();
    assert!((rate - 0.466).abs() < 0.03, "acceptance {rate}");
    let (_, lowest) = s.lowest();
    assert!(lowest <= rate && lowest > 0.4);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let again = one.install(|| sample_within(&flow, &contexts, &b, 4000, 7, MIN_ACCEPTANCE).unwrap());
    assert_eq!(again, s);
    // A box the flow barely reaches.
    match sample_within(
        &flow,
        &contexts,
        &Bounds::parse("4,5", 2).unwrap(),
        10,
        7,
        MIN_ACCEPTANCE,
    ) {
        Err(PosteriorError::LowAcceptance {
            row: 0, drawn, rate, ..
        }) => {
            assert_eq!(drawn, MIN_PROPOSALS);
            assert!(rate < MIN_ACCEPTANCE);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sample_within(&flow, &contexts, &b, 10, 7, 0.0),
        Err(PosteriorError::Floor(0.0))
    );
}

/// A flow close to the simulations' distribution is calibrated; one that is three times too
/// narrow is over-confident and fails.
#[test]
fn calibration_passes_a_matching_model_and_fails_an_over_confident_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let theta: Vec<f64> = (0..2 * 400).map(|_| standard_normal(&mut rng)).collect();
    let ctx = vec![0.0; 400];
    for (std, calibrated) in [(1.0, true), (1.0 / 3.0, false)] {
        let parts = near_normal(2, 1, 0.0, std);
        let flow = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
        let cal = calibrate::calibrate(&flow, &theta, &ctx, 99, 5);
        assert_eq!(cal.n(), 400);
        let (err, signed) = cal.coverage_error();
        assert_eq!(
            cal.is_calibrated(),
            calibrated,
            "std {std}: coverage error {err}, bound {}",
            cal.bound()
        );
        if !calibrated {
            assert!(signed < 0.0 && err > 0.3, "over-confident: {signed}");
            assert!(cal.rank_ks(0) > cal.bound());
        }
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flow-train"))
        .args(args)
        .output()
        .expect("flow-train runs")
}

/// `sample` writes, for each context row, the draws `Flow::sample_with` makes one at a time from
/// the seed's stream; `--within` keeps them inside and prints the acceptance; `calibrate` prints
/// its statistics and exits 1 for a miscalibrated model.
#[test]
fn sample_and_calibrate_commands() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("posterior_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let parts = near_normal(2, 1, 0.0, 1.0);
    let meta = Meta {
        columns: vec!["t0".into(), "t1".into()],
        context_columns: vec!["x".into()],
        ..Meta::default()
    };
    io::write_model(std::path::Path::new(&p("m.flow")), &parts, &meta).unwrap();
    std::fs::write(p("ctx.csv"), "x\n1.5\n-40\n").unwrap();
    let out = run(&[
        "sample",
        &p("m.flow"),
        "-n",
        "50",
        "--seed",
        "9",
        "--context-file",
        &p("ctx.csv"),
        "-o",
        &p("s.csv"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(p("s.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(text.lines().next(), Some("x,t0,t1"));
    assert_eq!(rows.len(), 100);
    let w = parts.stored_weights();
    let flow = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut scratch = vec![0.0; flow.scratch_len()];
    for (k, r) in rows.iter().enumerate() {
        let ctx = [if k < 50 { 1.5 } else { -40.0 }];
        let mut x = [0.0; 2];
        flow.sample_with(&mut rng, &ctx, &mut x, &mut scratch);
        assert_eq!((r[0], r[1], r[2]), (ctx[0], x[0], x[1]), "row {k}");
    }

    // No draws: the header line alone, with its newline.
    let out = run(&[
        "sample",
        &p("m.flow"),
        "-n",
        "0",
        "--context-file",
        &p("ctx.csv"),
        "-o",
        &p("z.csv"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(p("z.csv")).unwrap(), "x,t0,t1\n");

    let out = run(&[
        "sample",
        &p("m.flow"),
        "-n",
        "300",
        "--context-file",
        &p("ctx.csv"),
        "--within",
        "-1,1,0,inf",
        "-o",
        &p("w.csv"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rate: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("acceptance_rate="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((rate - 0.6827 * 0.5).abs() < 0.05, "{stdout}");
    assert!(stdout.contains("lowest_acceptance_rate="), "{stdout}");
    let text = std::fs::read_to_string(p("w.csv")).unwrap();
    assert_eq!(text.lines().count(), 601);
    assert!(text.lines().skip(1).all(|l| {
        let v: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        v[1].abs() <= 1.0 && v[2] >= 0.0
    }));
    let out = run(&[
        "sample",
        &p("m.flow"),
        "--context-file",
        &p("ctx.csv"),
        "--within",
        "6,7",
        "-o",
        &p("f.csv"),
    ]);
    assert!(!out.status.success());
    // Both rows fail; the error names the first whatever the threads did.
    assert!(String::from_utf8_lossy(&out.stderr).contains("context row 0: only"));
    assert!(
        !std::path::Path::new(&p("f.csv")).exists(),
        "no output after an error"
    );

    // Calibration: simulations from the model's own near-N(0, I) pass; three times wider fail.
    for (scale, ok) in [(1.0, true), (3.0, false)] {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut csv = String::from("x,t0,t1\n");
        for _ in 0..300 {
            let (a, b) = (
                standard_normal(&mut rng) * scale,
                standard_normal(&mut rng) * scale,
            );
            csv.push_str(&format!("0.5,{a},{b}\n"));
        }
        std::fs::write(p("sims.csv"), csv).unwrap();
        let out = run(&["calibrate", &p("m.flow"), &p("sims.csv"), "-o", &p("cal.png")]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.success(), ok, "{stdout}");
        assert!(stdout.contains("simulations=300 samples=99"), "{stdout}");
        assert!(
            stdout.contains(if ok { "calibrate=ok" } else { "calibrate=FAILED" }),
            "{stdout}"
        );
        let png = std::fs::read(p("cal.png")).unwrap();
        let decoder = png::Decoder::new(&png[..]);
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (1200, 400));
    }
}
