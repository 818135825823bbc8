//! NumPy input (`.npy`, `.npz`) and output (`eval -o out.npy`): dtypes, orders, archives, and
//! the errors for what is not read.

use std::path::{Path, PathBuf};
use std::process::Command;

use flow_train::csv::read_table;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("numpy")
        .join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A version-1.0 `.npy` file: `descr` (e.g. `<f8`), order, shape, raw element bytes.
fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape_text}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn f64_le(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write(d: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn npy_dtypes_and_orders_read_as_the_same_table() {
    let d = dir("orders");
    // The table [[1, 2, 3], [4, 5, 6]] four ways.
    let c_f64 = write(
        &d,
        "c64.npy",
        &npy_bytes("<f8", false, &[2, 3], &f64_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
    );
    let f_f64 = write(
        &d,
        "f64.npy",
        &npy_bytes("<f8", true, &[2, 3], &f64_le(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0])),
    );
    let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let c_f32 = write(&d, "c32.npy", &npy_bytes("<f4", false, &[2, 3], &f32s));
    let be: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let c_be = write(&d, "be.npy", &npy_bytes(">f8", false, &[2, 3], &be));
    let want = names(&["a", "b", "c"]);
    for p in [&c_f64, &f_f64, &c_f32, &c_be] {
        let (t, report) = read_table(p, Some(&want), false, None).unwrap();
        assert_eq!(t.columns, want, "{p:?}");
        assert_eq!(t.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "{p:?}");
        assert_eq!(report.dropped, 0);
    }
    // Without names that fit, the columns are x0, x1, ...
    let (t, _) = read_table(&c_f64, Some(&names(&["a"])), false, None).unwrap();
    assert_eq!(t.columns, names(&["x0", "x1", "x2"]));
    // A 1-D array is one column.
    let one = write(
        &d,
        "one.npy",
        &npy_bytes("<f8", false, &[3], &f64_le(&[7.0, 8.0, 9.0])),
    );
    let (t, _) = read_table(&one, None, false, None).unwrap();
    assert_eq!((t.columns, t.values), (names(&["x0"]), vec![7.0, 8.0, 9.0]));
}

#[test]
fn malformed_npy_files_say_what_is_wrong() {
    let d = dir("bad");
    let err = |name: &str, bytes: &[u8]| {
        let p = write(&d, name, bytes);
        let e = read_table(&p, None, false, None).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        e
    };
    let e = err("int.npy", &npy_bytes("<i8", false, &[2, 1], &[0; 16]));
    assert!(e.contains("dtype '<i8' is not float32 or float64"), "{e}");
    let e = err("3d.npy", &npy_bytes("<f8", false, &[1, 2, 2], &f64_le(&[0.0; 4])));
    assert!(e.contains("3-D array") && e.contains("[1, 2, 2]"), "{e}");
    let e = err("short.npy", &npy_bytes("<f8", false, &[4, 2], &f64_le(&[0.0; 5])));
    assert!(e.contains("truncated") && e.contains("8 values"), "{e}");
    let e = err("text.npy", b"x0,x1\n1,2\n");
    assert!(e.contains("not a .npy file"), "{e}");
    let e = err("empty.npy", &npy_bytes("<f8", false, &[0, 2], &[]));
    assert!(e.contains("no rows"), "{e}");
    // NaN: an error naming row and column, or the row dropped.
    let nan = npy_bytes(
        "<f8",
        false,
        &[3, 2],
        &f64_le(&[1.0, 2.0, 3.0, f64::NAN, 5.0, 6.0]),
    );
    let p = write(&d, "nan.npy", &nan);
    let e = read_table(&p, Some(&names(&["a", "b"])), false, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 2: column 'b': NaN") && e.contains("--drop-invalid"),
        "{e}"
    );
    let (t, report) = read_table(&p, None, true, None).unwrap();
    assert_eq!((t.values, report.dropped), (vec![1.0, 2.0, 5.0, 6.0], 1));
}

/// An archive as `np.savez` / `np.savez_compressed` writes it: 1-D arrays are named columns, a
/// 2-D array gives `name0`, `name1`, ...
#[test]
fn npz_arrays_are_named_columns() {
    use npyz::WriterBuilder;
    let d = dir("npz");
    for (file, method) in [
        ("stored.npz", npyz::zip::CompressionMethod::Stored),
        ("deflated.npz", npyz::zip::CompressionMethod::Deflated),
    ] {
        let p = d.join(file);
        let mut npz = npyz::npz::NpzWriter::create(&p).unwrap();
        let opts = || npyz::zip::write::FileOptions::default().compression_method(method);
        let mut w = npz
            .array::<f64>("theta", opts())
            .unwrap()
            .default_dtype()
            .shape(&[3])
            .begin_nd()
            .unwrap();
        w.extend([0.5, 1.5, 2.5]).unwrap();
        w.finish().unwrap();
        let mut w = npz
            .array::<f32>("x", opts())
            .unwrap()
            .default_dtype()
            .shape(&[3, 2])
            .begin_nd()
            .unwrap();
        w.extend([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        w.finish().unwrap();
        drop(npz);
        let (t, _) = read_table(&p, None, false, None).unwrap();
        let mut cols = t.columns.clone();
        cols.sort();
        assert_eq!(cols, names(&["theta", "x0", "x1"]), "{file}");
        assert_eq!(
            t.select(&names(&["x1", "theta"]), &p).unwrap(),
            [2.0, 0.5, 4.0, 1.5, 6.0, 2.5],
            "{file}"
        );
    }
    // Arrays of different lengths.
    let p = d.join("ragged.npz");
    let mut npz = npyz::npz::NpzWriter::create(&p).unwrap();
    for (name, n) in [("a", 3), ("b", 2)] {
        let mut w = npz
            .array::<f64>(name, Default::default())
            .unwrap()
            .default_dtype()
            .shape(&[n])
            .begin_nd()
            .unwrap();
        w.extend((0..n).map(|i| i as f64)).unwrap();
        w.finish().unwrap();
    }
    drop(npz);
    let e = read_table(&p, None, false, None).unwrap_err().to_string();
    assert!(e.contains("must have one length"), "{e}");
    let e = read_table(&write(&d, "junk.npz", b"not a zip"), None, false, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an .npz archive"), "{e}");
}

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flow-train"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flow-train {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `fit` on a `.npy` file, `eval` on the same array (the model's columns by position) with
/// `-o out.npy` (input columns then log p), equal to `eval` of the same rows as CSV.
#[test]
fn fit_and_eval_on_npy_files() {
    let d = dir("cli");
    let p = |n: &str| d.join(n).to_string_lossy().into_owned();
    run(&[
        "data",
        "moons",
        "--n",
        "600",
        "--seed",
        "3",
        "-o",
        &p("moons.csv"),
    ]);
    let text = std::fs::read_to_string(p("moons.csv")).unwrap();
    let vals: Vec<f64> = text
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()))
        .collect();
    std::fs::write(p("moons.npy"), npy_bytes("<f8", false, &[600, 2], &f64_le(&vals))).unwrap();
    let fit = run(&[
        "fit",
        &p("moons.npy"),
        "-o",
        &p("m.flow"),
        "--epochs",
        "2",
        "--quiet",
        "--threads",
        "1",
    ]);
    assert!(fit.contains("best_val_nll="), "{fit}");
    let a = run(&["eval", &p("m.flow"), &p("moons.npy"), "-o", &p("lp.npy")]);
    let b = run(&["eval", &p("m.flow"), &p("moons.csv"), "--drop-invalid"]);
    // The CSV's columns are x0, x1, as the names fit gave the array's columns.
    assert_eq!(a.lines().last(), b.lines().last());
    let bytes = std::fs::read(p("lp.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[600, 3]);
    let out: Vec<f64> = npy.into_vec().unwrap();
    assert_eq!(out[0..2], vals[0..2]);
    let mean: f64 = out.chunks(3).map(|r| r[2]).sum::<f64>() / 600.0;
    let reported: f64 = a.lines().last().unwrap().split_whitespace().next().unwrap()
        ["mean_log_prob=".len()..]
        .parse()
        .unwrap();
    assert!(
        (mean - reported).abs() < 1e-12 * (1.0 + reported.abs()),
        "{mean} vs {reported}"
    );
    // The other readers of data files take arrays too.
    run(&["plot", &p("m.flow"), "--data", &p("moons.npy"), "-o", &p("m.png")]);
    assert!(std::fs::metadata(p("m.png")).unwrap().len() > 1000);
}
