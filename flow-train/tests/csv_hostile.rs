//! Hostile inputs for `flow_train::csv`: every refusal names the file, line, field and column, and
//! every accepted oddity (CRLF, BOM, spaces, quotes, blank lines) reads as the plain file would.
//! Plus bit-exact write -> read round trips and the writer's atomicity.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flow_train::csv::{
    constant_columns, read_csv, write_csv, CsvError, InvalidKind, ReadOptions, ReadReport, Table,
    MAX_LINE_BYTES,
};

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flow-train-csv-{}-{n}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// File names in the directory, sorted.
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn all() -> ReadOptions {
    ReadOptions::default()
}

fn dropping() -> ReadOptions {
    ReadOptions {
        drop_invalid: true,
        ..Default::default()
    }
}

fn selecting(cols: &[&str]) -> ReadOptions {
    ReadOptions {
        columns: Some(cols.iter().map(|c| c.to_string()).collect()),
        ..Default::default()
    }
}

fn read(path: &Path, opts: &ReadOptions) -> (Table, ReadReport) {
    read_csv(path, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads `contents` expecting an error; returns it with its message, which must name the path and
/// contain each of `parts`.
fn refuse(
    dir: &Scratch,
    contents: impl AsRef<[u8]>,
    opts: &ReadOptions,
    parts: &[&str],
) -> (CsvError, String) {
    let path = dir.file("in.csv", contents);
    let e = match read_csv(&path, opts) {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "path missing: {msg}"
    );
    for p in parts {
        assert!(msg.contains(p), "{p:?} missing from: {msg}");
    }
    (e, msg)
}

/// The table's rows as vectors (for comparisons).
fn rows_of(t: &Table) -> Vec<Vec<f64>> {
    t.rows().map(<[f64]>::to_vec).collect()
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------------------- file-level

#[test]
fn missing_file_names_the_path() {
    let d = Scratch::new("missing");
    let path = d.0.join("no-such-file.csv");
    let e = read_csv(&path, &all()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(&e, CsvError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("cannot open"),
        "{msg}"
    );
}

#[test]
fn directory_is_refused() {
    let d = Scratch::new("dir");
    let e = read_csv(&d.0, &all()).unwrap_err();
    assert!(matches!(e, CsvError::Open { .. }), "{e}");
    assert!(e.to_string().contains(&d.0.display().to_string()));
}

#[test]
fn empty_and_blank_files_are_refused() {
    let d = Scratch::new("empty");
    for contents in ["", "\n", "\r\n\r\n", "  \n\t\n", "\u{feff}", "\u{feff}\n"] {
        let (e, msg) = refuse(&d, contents, &all(), &["empty file", "header row"]);
        assert!(matches!(e, CsvError::Empty { .. }), "{contents:?}: {msg}");
    }
}

#[test]
fn header_only_is_refused_naming_the_header_line() {
    let d = Scratch::new("header-only");
    for (contents, line) in [
        ("x0,x1", 1),
        ("x0,x1\n", 1),
        ("x0,x1\r\n\r\n  \n", 1),
        ("\n\nx0,x1\n", 3),
    ] {
        let (e, _) = refuse(&d, contents, &all(), &["no data rows", &format!("line {line}")]);
        assert!(
            matches!(e, CsvError::NoData { header_line, .. } if header_line == line),
            "{contents:?}"
        );
    }
}

#[test]
fn invalid_utf8_names_the_line() {
    let d = Scratch::new("utf8");
    let (e, _) = refuse(&d, b"x0,x1\n1,2\n3,\xff\n", &all(), &["line 3", "UTF-8"]);
    assert!(matches!(e, CsvError::NotUtf8 { line: 3, .. }));
    // An Excel "Unicode text" export: UTF-16 with a byte-order mark.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("x0,x1\n1,2\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    refuse(&d, utf16, &all(), &["line 1", "UTF-16"]);
}

#[test]
fn overlong_line_is_refused() {
    let d = Scratch::new("long");
    let mut text = b"x0\n1\n".to_vec();
    text.resize(text.len() + MAX_LINE_BYTES + 1, b'7');
    text.push(b'\n');
    let (e, _) = refuse(&d, text, &all(), &["line 3", "longer than"]);
    assert!(matches!(e, CsvError::LineTooLong { line: 3, .. }));
}

// ------------------------------------------------------------------------------------ header

#[test]
fn duplicate_column_names_are_refused() {
    let d = Scratch::new("dup");
    let (e, _) = refuse(
        &d,
        "a,b,a\n1,2,3\n",
        &all(),
        &["line 1", "duplicate column name 'a'", "fields 1 and 3"],
    );
    assert!(matches!(
        e,
        CsvError::DuplicateColumn {
            first: 1,
            second: 3,
            ..
        }
    ));
    // Spaces and quotes do not make names distinct.
    refuse(&d, "a, \"b\" ,b\n1,2,3\n", &all(), &["'b'", "fields 2 and 3"]);
}

#[test]
fn empty_column_name_is_refused() {
    let d = Scratch::new("empty-name");
    refuse(
        &d,
        "a,,c\n1,2,3\n",
        &all(),
        &["line 1", "header field 2 is empty"],
    );
    // A trailing comma on the header leaves an unnamed last column.
    refuse(&d, "a,b,\n1,2,\n", &all(), &["line 1", "header field 3 is empty"]);
}

#[test]
fn missing_header_row_is_refused() {
    let d = Scratch::new("no-header");
    let (e, _) = refuse(
        &d,
        "1.5,2\n3,4\n",
        &all(),
        &["line 1", "all numbers", "\"1.5,2\"", "column names"],
    );
    assert!(matches!(e, CsvError::HeaderLooksNumeric { line: 1, .. }));
}

/// Semicolons and tabs are detected from the header line (decimal commas in semicolon files);
/// a delimiter given that the header does not use is an error naming the one it does.
#[test]
fn semicolon_and_tab_files_are_detected_and_a_wrong_delimiter_is_named() {
    use flow_train::csv::Delimiter;
    let d = Scratch::new("delim");
    let semi = d.file("semi.csv", "x0;x1\n1,5;2,5\n-3;4e2\n\"7,25\" ; 8\n");
    assert_eq!(
        rows_of(&read(&semi, &all()).0),
        vec![vec![1.5, 2.5], vec![-3.0, 400.0], vec![7.25, 8.0]]
    );
    // Tabs delimit; spaces around fields are still ignored; an empty field between tabs is empty.
    let tab = d.file("tab.tsv", "a\tb\tc\n1\t 2 \t3\n4\t5\t6\r\n");
    let (t, _) = read(&tab, &all());
    assert_eq!(t.columns, ["a", "b", "c"]);
    assert_eq!(rows_of(&t), vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    refuse(&d, "a\tb\n1\t\t\n", &all(), &["line 2", "field"]);
    // A delimiter inside quotes does not count, nor split.
    let quoted = d.file("q.csv", "\"a;b\",c\n1,2\n");
    assert_eq!(read(&quoted, &all()).0.columns, ["a;b", "c"]);
    assert_eq!(Delimiter::detect("\"a,b\";\"c,d\""), Delimiter::Semicolon);
    assert_eq!(Delimiter::detect("a,b;c"), Delimiter::Comma); // the comma first
    assert_eq!(Delimiter::detect("a,\tb"), Delimiter::Comma); // a tab padding a comma file
    assert_eq!(Delimiter::detect("only"), Delimiter::Comma);
    // Given explicitly: the comma on a semicolon file is refused with a hint, in either case.
    let comma = ReadOptions {
        delimiter: Some(Delimiter::Comma),
        ..Default::default()
    };
    refuse(&d, "x0;x1\n1,5;2,5\n", &comma, &["line 1", "';'", "--delimiter"]);
    refuse(&d, "x0\tx1\n1\t2\n", &comma, &["line 1", "'\\t'", "--delimiter"]);
    let semi_given = ReadOptions {
        delimiter: Some(Delimiter::Semicolon),
        ..Default::default()
    };
    assert_eq!(rows_of(&read(&semi, &semi_given).0)[0], vec![1.5, 2.5]);
    // A comma file keeps rejecting decimal commas (a comma there is a delimiter).
    refuse(
        &d,
        "x0,x1\n\"1,5\",2\n",
        &all(),
        &["line 2", "not a number", "\"1,5\""],
    );
    assert!("pipe"
        .parse::<Delimiter>()
        .unwrap_err()
        .to_string()
        .contains("','"));
    assert_eq!("tab".parse::<Delimiter>(), Ok(Delimiter::Tab));
}

#[test]
fn classic_mac_line_ends_are_named() {
    let d = Scratch::new("cr");
    let (e, _) = refuse(
        &d,
        "x0,x1\r1,2\r3,4\r",
        &all(),
        &["line 1", "carriage return", "old Mac"],
    );
    assert!(matches!(e, CsvError::CarriageReturn { line: 1, .. }));
}

#[test]
fn malformed_quotes_name_line_and_field() {
    let d = Scratch::new("quotes");
    let (e, _) = refuse(
        &d,
        "x0,x1\n1,2\n3,\"4\n",
        &all(),
        &["line 3", "field 2 (column 'x1')", "unterminated quoted field"],
    );
    assert!(matches!(
        e,
        CsvError::Malformed {
            line: 3,
            field: 2,
            ..
        }
    ));
    refuse(
        &d,
        "x0,x1\n\"1\"5,2\n",
        &all(),
        &["line 2", "field 1 (column 'x0')", "text after the closing quote"],
    );
    refuse(
        &d,
        "\"x0,x1\n1,2\n",
        &all(),
        &["line 1", "field 1", "unterminated"],
    );
}

/// A quoted field may span lines: a text column with line breaks (not read), a header name with
/// one; errors after such a record still name the editor's line, and an unclosed quote names the
/// line it opens on. Mixed `\n` and `\r\n` line ends read alike.
#[test]
fn quoted_fields_span_lines_and_line_numbers_stay_right() {
    let d = Scratch::new("multiline");
    let text = "x0,note,x1\n1,\"two\nlines\",2\r\n3,\"a \"\"quoted\"\"\r\n, and more\",4\n5,plain,6\n";
    let p = d.file("m.csv", text);
    let (t, _) = read(&p, &selecting(&["x0", "x1"]));
    assert_eq!(rows_of(&t), vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]);
    let p = d.file("h.csv", "\"first\nname\",x1\n1,2\n");
    assert_eq!(read(&p, &all()).0.columns, ["first\nname", "x1"]);
    // The record of lines 2-3, then line 4; line 5 is bad.
    refuse(
        &d,
        "x0,note\n1,\"a\nb\"\n2,x\noops,y\n",
        &selecting(&["x0"]),
        &["line 5", "\"oops\""],
    );
    let (e, _) = refuse(
        &d,
        "x0,x1\n1,2\n3,\"4\n5,6\n7,8\n",
        &all(),
        &["line 3", "unterminated quoted field"],
    );
    assert!(matches!(
        e,
        CsvError::Malformed {
            line: 3,
            field: 2,
            ..
        }
    ));
    // A quote inside an unquoted field does not open one.
    let p = d.file("q.csv", "x0,tag\n1,ab\"c\n2,d\n");
    assert_eq!(
        rows_of(&read(&p, &selecting(&["x0"])).0),
        vec![vec![1.0], vec![2.0]]
    );
    // Semicolons: a quoted field spanning lines, then decimal commas.
    let p = d.file("s.csv", "x;n\n1,5;\"a\r\nb\"\n2,5;c\n");
    assert_eq!(
        rows_of(&read(&p, &selecting(&["x"])).0),
        vec![vec![1.5], vec![2.5]]
    );
}

// ------------------------------------------------------------------------------------- rows

#[test]
fn ragged_rows_name_line_and_column() {
    let d = Scratch::new("ragged");
    let (e, _) = refuse(
        &d,
        "x0,x1,x2\n1,2,3\n4,5\n",
        &all(),
        &[
            "line 3",
            "2 fields, but the header has 3 columns",
            "no value for column 'x2', field 3",
        ],
    );
    assert!(matches!(
        e,
        CsvError::Ragged {
            line: 3,
            expected: 3,
            found: 2,
            ..
        }
    ));
    let (e, _) = refuse(
        &d,
        "x0,x1\n1,2\n3,4,5\n",
        &all(),
        &[
            "line 3",
            "3 fields, but the header has 2",
            "field 3 has no column",
        ],
    );
    assert!(matches!(
        e,
        CsvError::Ragged {
            line: 3,
            found: 3,
            ..
        }
    ));
    // A trailing comma is an extra (empty) field.
    refuse(&d, "x0,x1\n1,2,\n", &all(), &["line 2", "3 fields"]);
    // Ragged rows are errors even when dropping invalid rows, and with a column selection.
    refuse(
        &d,
        "x0,x1\n1,2\n3\n",
        &dropping(),
        &["line 3", "no value for column 'x1'"],
    );
    refuse(
        &d,
        "x0,x1\n1,2\n3\n",
        &selecting(&["x0"]),
        &["line 3", "no value for column 'x1'"],
    );
    // A ragged row with bad text is reported as ragged (the structural problem).
    refuse(&d, "x0,x1,x2\nabc,1\n", &all(), &["line 2", "2 fields"]);
}

#[test]
fn non_numeric_field_quotes_the_text() {
    let d = Scratch::new("text");
    let (e, _) = refuse(
        &d,
        "x0,x1\n1,2\n3, abc \n",
        &all(),
        &["line 3", "field 2 (column 'x1')", "not a number: \"abc\""],
    );
    match e {
        CsvError::NotNumeric {
            line,
            field,
            column,
            text,
            ..
        } => {
            assert_eq!((line, field, column.as_str(), text.as_str()), (3, 2, "x1", "abc"));
        }
        e => panic!("{e}"),
    }
    // Not droppable.
    refuse(
        &d,
        "x0,x1\n1,2\n3,abc\n",
        &dropping(),
        &["line 3", "column 'x1'", "\"abc\""],
    );
    // Thousands separators, decimal commas, hex, unicode spaces are text.
    refuse(
        &d,
        "x0,x1\n\"1,000\",2\n",
        &all(),
        &["line 2", "column 'x0'", "\"1,000\""],
    );
    refuse(&d, "x0,x1\n0x1F,2\n", &all(), &["line 2", "\"0x1F\""]);
    refuse(&d, "x0,x1\n\u{a0}1,2\n", &all(), &["line 2", "\"\\u{a0}1\""]);
    // Very long text is cut in the message.
    let long = "z".repeat(10_000);
    let (_, msg) = refuse(
        &d,
        format!("x0\n{long}\n"),
        &all(),
        &["line 2", "column 'x0'", "...\""],
    );
    assert!(msg.len() < 300, "{msg}");
}

#[test]
fn invalid_values_are_errors_naming_line_and_column() {
    let d = Scratch::new("invalid");
    let cases = [
        ("", InvalidKind::Empty, "empty field"),
        ("  ", InvalidKind::Empty, "empty field"),
        ("\"\"", InvalidKind::Empty, "empty field"),
        ("nan", InvalidKind::NaN, "NaN \"nan\""),
        ("NaN", InvalidKind::NaN, "NaN \"NaN\""),
        ("inf", InvalidKind::Infinite, "infinite value \"inf\""),
        ("-inf", InvalidKind::Infinite, "infinite value \"-inf\""),
        ("+Infinity", InvalidKind::Infinite, "infinite value \"+Infinity\""),
        ("1e400", InvalidKind::OutOfRange, "out of f64 range \"1e400\""),
        ("NA", InvalidKind::Missing, "missing value \"NA\""),
        ("null", InvalidKind::Missing, "missing value \"null\""),
    ];
    for (text, kind, words) in cases {
        let contents = format!("a,b,c\n1,2,3\n4,{text},6\n");
        let (e, _) = refuse(
            &d,
            contents,
            &all(),
            &["line 3", "field 2 (column 'b')", words, "drop-invalid"],
        );
        match e {
            CsvError::Invalid {
                line: 3,
                field: 2,
                column,
                kind: k,
                ..
            } => {
                assert_eq!((column.as_str(), k), ("b", kind), "{text:?}");
            }
            e => panic!("{text:?}: {e}"),
        }
    }
}

#[test]
fn drop_invalid_drops_and_counts_rows() {
    let d = Scratch::new("drop");
    let path = d.file("in.csv", "a,b\n1,2\nnan,3\n4,\n5,inf\n,\n6,7\n-inf,NA\n8,1e999\n");
    let (t, report) = read(&path, &dropping());
    assert_eq!(rows_of(&t), vec![vec![1.0, 2.0], vec![6.0, 7.0]]);
    assert_eq!(report, ReadReport { dropped: 6 });
    // Without the option the first one is the error.
    let e = read_csv(&path, &all()).unwrap_err();
    assert!(
        matches!(
            e,
            CsvError::Invalid {
                line: 3,
                field: 1,
                ..
            }
        ),
        "{e}"
    );
    // Invalid values in unselected columns do not drop the row.
    let (t, report) = read(
        &path,
        &ReadOptions {
            drop_invalid: true,
            columns: Some(cols(&["a"])),
            ..Default::default()
        },
    );
    assert_eq!(
        rows_of(&t),
        vec![vec![1.0], vec![4.0], vec![5.0], vec![6.0], vec![8.0]]
    );
    assert_eq!(report.dropped, 3);
    // A row with an invalid value *and* text is an error (text is never dropped).
    refuse(
        &d,
        "a,b\n1,2\nnan,x\n",
        &dropping(),
        &["line 3", "field 2 (column 'b')", "not a number: \"x\""],
    );
}

#[test]
fn all_rows_dropped_is_an_error() {
    let d = Scratch::new("all-dropped");
    let (e, _) = refuse(
        &d,
        "a,b\nnan,1\n2,\n",
        &dropping(),
        &["all 2 data rows", "dropped"],
    );
    assert!(matches!(e, CsvError::AllDropped { dropped: 2, .. }));
}

// -------------------------------------------------------------------------------- selection

#[test]
fn unknown_selected_column_lists_the_available_ones() {
    let d = Scratch::new("unknown-col");
    let (e, _) = refuse(
        &d,
        "x0,x1,label\n1,2,3\n",
        &selecting(&["x1", "y"]),
        &["no column 'y'", "available: x0, x1, label"],
    );
    assert!(matches!(e, CsvError::UnknownColumn { ref column, .. } if column == "y"));
}

#[test]
fn selection_reorders_and_skips_text_columns() {
    let d = Scratch::new("select");
    let path = d.file("in.csv", "id,x0,species,x1\nA,1,setosa,2\nB,3,virginica,4\n");
    let (t, report) = read(&path, &selecting(&["x1", "x0"]));
    assert_eq!(t.columns, cols(&["x1", "x0"]));
    assert_eq!(rows_of(&t), vec![vec![2.0, 1.0], vec![4.0, 3.0]]);
    assert_eq!(report.dropped, 0);
    // Without a selection the text column is an error naming it.
    let e = read_csv(&path, &all()).unwrap_err().to_string();
    assert!(
        e.contains("line 2") && e.contains("field 1 (column 'id')") && e.contains("\"A\""),
        "{e}"
    );
}

#[test]
fn bad_selections_are_refused() {
    let d = Scratch::new("bad-select");
    refuse(
        &d,
        "a,b\n1,2\n",
        &selecting(&["a", "a"]),
        &["column 'a' is selected twice"],
    );
    refuse(&d, "a,b\n1,2\n", &selecting(&[]), &["selection is empty"]);
}

// --------------------------------------------------------------------------------- accepted

#[test]
fn accepts_crlf_bom_spaces_quotes_and_blank_lines() {
    let d = Scratch::new("accept");
    let plain = read(&d.file("plain.csv", "x0,x1\n1.5,-2\n3,4e-3\n"), &all());
    let variants = [
        "x0,x1\n1.5,-2\n3,4e-3",                               // no final newline
        "x0,x1\r\n1.5,-2\r\n3,4e-3\r\n",                       // CRLF
        "\u{feff}x0,x1\n1.5,-2\n3,4e-3\n",                     // UTF-8 BOM
        "  x0 ,\tx1\t\n 1.5 , -2 \n3\t,\t4e-3  \n",            // spaces and tabs around fields
        "\"x0\",\"x1\"\n\"1.5\",\"-2\"\n\" 3 \",\"4e-3\"\n",   // quoted names and numbers
        "\n\nx0,x1\n\n1.5,-2\n   \n3,4e-3\n\n\n",              // blank lines anywhere
        "\u{feff}\"x0\" , x1\r\n+1.5,-2.0\r\n\r\n3.,.004\r\n", // all at once
    ];
    for v in variants {
        let got = read(&d.file("v.csv", v), &all());
        assert_eq!(got, plain, "{v:?}");
    }
}

#[test]
fn line_numbers_count_blank_and_crlf_lines() {
    let d = Scratch::new("lines");
    refuse(
        &d,
        "\r\nx0,x1\r\n1,2\r\n\r\n3,oops\r\n",
        &all(),
        &["line 5", "column 'x1'", "\"oops\""],
    );
}

#[test]
fn quoted_column_names_with_commas() {
    let d = Scratch::new("quoted-names");
    let path = d.file("in.csv", "\"a, b\",\"say \"\"hi\"\"\"\n1,2\n");
    let (t, _) = read(&path, &all());
    assert_eq!(t.columns, cols(&["a, b", "say \"hi\""]));
    assert_eq!(rows_of(&t), vec![vec![1.0, 2.0]]);
}

#[test]
fn constant_columns_are_reported() {
    let d = Scratch::new("constant");
    let (t, _) = read(&d.file("in.csv", "a,b,c\n1,5,0\n2,5,-0\n3,5.0,0e3\n"), &all());
    assert_eq!(constant_columns(&t), cols(&["b", "c"]));
    let (t, _) = read(&d.file("one.csv", "a,b\n1,2\n"), &all());
    assert_eq!(
        constant_columns(&t),
        cols(&["a", "b"]),
        "a single row is constant"
    );
}

// ---------------------------------------------------------------------------------- writing

/// Deterministic finite doubles across the whole exponent range (xorshift over bit patterns).
fn awkward_values() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        0.1,
        -0.1,
        1.0 / 3.0,
        std::f64::consts::PI,
        1e-7,
        1e21,
        123456789012345680.0,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        5e-324,                                // smallest subnormal
        f64::from_bits(0x000f_ffff_ffff_ffff), // largest subnormal
        9007199254740993.0,                    // 2^53 + 1 (rounds)
        0.30000000000000004,
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while v.len() < 3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if f.is_finite() {
            v.push(f);
        }
    }
    v
}

#[test]
fn round_trip_is_bit_exact() {
    let d = Scratch::new("round-trip");
    let path = d.0.join("out.csv");
    let vals = awkward_values();
    let rows: Vec<Vec<f64>> = vals.chunks(3).map(|c| c.to_vec()).collect();
    let names = cols(&["a", "b", "c"]);
    write_csv(&path, &names, rows.clone().into_iter()).unwrap();
    let (t, report) = read(&path, &all());
    assert_eq!(t.columns, names);
    assert_eq!(report.dropped, 0);
    assert_eq!(t.len(), rows.len());
    for (got, want) in t.rows().zip(&rows) {
        let bits = |r: &[f64]| r.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(got), bits(want));
    }
    assert_eq!(d.listing(), vec!["out.csv".to_string()], "no temporary file left");
}

#[test]
fn round_trip_of_odd_column_names() {
    let d = Scratch::new("names");
    let path = d.0.join("out.csv");
    let names = cols(&["a, b", "say \"hi\"", " padded ", "plain"]);
    write_csv(&path, &names, std::iter::once(vec![1.0, 2.0, 3.0, 4.0])).unwrap();
    let (t, _) = read(&path, &all());
    assert_eq!(t.columns, vec!["a, b", "say \"hi\"", "padded", "plain"]);
    assert_eq!(rows_of(&t), vec![vec![1.0, 2.0, 3.0, 4.0]]);
}

#[test]
fn written_text_is_shortest_round_trip() {
    let d = Scratch::new("text");
    let path = d.0.join("out.csv");
    write_csv(
        &path,
        &cols(&["x0", "x1"]),
        vec![vec![0.1, -0.0], vec![1.0, 1e-7], vec![2.5e300, 42.0]].into_iter(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "x0,x1\n0.1,-0.0\n1.0,1e-7\n2.5e300,42.0\n"
    );
}

#[test]
fn non_finite_values_are_written_and_read_back_as_invalid() {
    let d = Scratch::new("nonfinite");
    let path = d.0.join("out.csv");
    let rows = vec![vec![1.0, f64::NAN], vec![f64::NEG_INFINITY, 2.0], vec![3.0, 4.0]];
    write_csv(&path, &cols(&["x", "log_prob"]), rows.into_iter()).unwrap();
    let e = read_csv(&path, &all()).unwrap_err().to_string();
    assert!(
        e.contains("line 2") && e.contains("column 'log_prob'") && e.contains("NaN"),
        "{e}"
    );
    let (t, report) = read(&path, &dropping());
    assert_eq!((rows_of(&t), report.dropped), (vec![vec![3.0, 4.0]], 2));
}

#[test]
fn write_replaces_atomically_and_leaves_target_on_error() {
    let d = Scratch::new("atomic");
    let path = d.file("out.csv", "old contents\n");
    // A ragged row fails the write part way: the old file stays, the temp file is removed.
    let rows = vec![vec![1.0, 2.0], vec![3.0]];
    let e = write_csv(&path, &cols(&["a", "b"]), rows.into_iter()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("data row 2 has 1 values for 2 columns"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old contents\n");
    assert_eq!(d.listing(), vec!["out.csv".to_string()]);
    // A good write replaces it.
    write_csv(&path, &cols(&["a", "b"]), std::iter::once(vec![1.0, 2.0])).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1.0,2.0\n");
    assert_eq!(d.listing(), vec!["out.csv".to_string()]);
}

#[test]
fn write_refuses_headers_it_could_not_read_back() {
    let d = Scratch::new("bad-header");
    let path = d.0.join("out.csv");
    let one = || std::iter::once(vec![1.0, 2.0]);
    for (names, words) in [
        (cols(&["a", "a"]), "duplicate column name 'a'"),
        (cols(&["a", " "]), "column 2 has an empty name"),
        (cols(&["a", "b\nc"]), "line break"),
    ] {
        let e = write_csv(&path, &names, one()).unwrap_err();
        assert!(e.to_string().contains(words), "{e}");
    }
    assert!(write_csv(&path, &[], std::iter::empty()).is_err());
    assert!(d.listing().is_empty(), "{:?}", d.listing());
}

#[test]
fn write_into_a_missing_directory_fails_cleanly() {
    let d = Scratch::new("no-dir");
    let path = d.0.join("nope").join("out.csv");
    assert!(write_csv(&path, &cols(&["a"]), std::iter::once(vec![1.0])).is_err());
    assert!(!path.exists());
}

#[test]
fn zero_rows_write_a_header_that_reads_as_no_data() {
    let d = Scratch::new("zero-rows");
    let path = d.0.join("out.csv");
    write_csv(&path, &cols(&["x0", "x1"]), std::iter::empty()).unwrap();
    let e = read_csv(&path, &all()).unwrap_err();
    assert!(matches!(e, CsvError::NoData { header_line: 1, .. }), "{e}");
}
