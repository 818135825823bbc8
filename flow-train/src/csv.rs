//! Numeric CSV files: a streaming reader with precise errors, and an atomic writer.
//!
//! # What [`read_csv`] accepts
//!
//! * A header row of column names is required: non-empty, no duplicates, and not all numbers (a file
//!   whose first row is data is refused instead of losing that row). Blank lines (empty or only spaces
//!   and tabs) are skipped anywhere, before the header too; line numbers in errors still count them,
//!   so they are the numbers an editor shows.
//! * Fields separated by commas, semicolons or tabs ([`Delimiter`]): [`ReadOptions::delimiter`], or
//!   by default the first of comma, semicolon, tab that the header line holds outside quotes (a
//!   comma when it holds none). Spaces around a field are ignored, and tabs too unless
//!   they are the delimiter; a field may be quoted (`"1.5"`, `"a name, with a comma"`, `""` for a
//!   quote inside); a quoted field may span lines (the record then runs on to the line that closes
//!   it, and errors name the line it starts on). In semicolon-separated files a value with one
//!   comma and no point is read with a decimal comma (`1,5` is 1.5), as spreadsheets in many
//!   locales write them.
//! * `\n` or `\r\n` line ends, a final line with or without its newline, a UTF-8 byte-order mark.
//! * Values in Rust's `f64` syntax (`1`, `-2.5e-3`, `.5`, `+7`, `1E6`). A field that is empty, `NaN`,
//!   `inf`/`-infinity`, out of `f64` range (`1e400`) or one of the [`MISSING_MARKERS`] (`NA`,
//!   `null`, ...) is *invalid*: an error, or with [`ReadOptions::drop_invalid`] its row is dropped and
//!   counted in [`ReadReport::dropped`]. Any other text is an error either way.
//! * With [`ReadOptions::columns`], only the selected columns are parsed, so other columns may hold
//!   text (labels, ids); every row must still have one field per header column.
//!
//! Every error's message names the file, and where they apply the 1-based line number, the 1-based
//! field number and the column name, with the offending text quoted, e.g.
//! `data.csv: line 7: field 2 (column 'x1'): not a number: "abc"`.
//!
//! The reader holds one line at a time (a reused buffer, at most [`MAX_LINE_BYTES`]) plus the parsed
//! numbers, so memory follows the size of the table, not of the text.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::UnknownName;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The longest line [`read_csv`] accepts, in bytes (without its line end): 16 MiB.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Field texts (compared ignoring ASCII case) that mean "no value", as written by R, pandas,
/// spreadsheets and databases. They are invalid values like `NaN`, not parse errors.
pub const MISSING_MARKERS: &[&str] = &["NA", "N/A", "#N/A", "NULL", "None"];

/// Longest field text quoted in an error message (longer text is cut, with `...`).
const QUOTE_CHARS: usize = 60;

/// A numeric table, row-major in one buffer: `values[i * w + j]` (`w = columns.len()`) is the
/// value of column `columns[j]` in data row `i` (one allocation, 8 bytes per value).
///
/// Tables from [`read_csv`] are rectangular (`values.len()` is a multiple of `columns.len()`),
/// finite, with distinct non-empty column names and at least one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names, in the order of the values in each row.
    pub columns: Vec<String>,
    /// Values, row after row.
    pub values: Vec<f64>,
}

impl Table {
    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.columns.len()).unwrap_or(0)
    }

    /// True without data rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data rows, each `columns.len()` values (none for a table without columns).
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.values.chunks_exact(self.columns.len().max(1))
    }

    /// The values of the columns `names` (in that order) of every row, row after row; a name
    /// that is not a column is [`CsvError::UnknownColumn`] (for the file `path`). The one column
    /// selector of flow-train: `fit`, `eval` and `plot` pick their columns here.
    pub fn select(&self, names: &[String], path: &Path) -> Result<Vec<f64>, CsvError> {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| {
                self.columns
                    .iter()
                    .position(|h| h == n)
                    .ok_or_else(|| CsvError::UnknownColumn {
                        path: path.to_path_buf(),
                        column: n.clone(),
                        available: self.columns.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        // Every row has one value per column (the reader's guarantee), so the indices are in
        // range; a short row would give no values rather than panic.
        Ok(self
            .rows()
            .flat_map(|r| idx.iter().filter_map(move |&i| r.get(i).copied()))
            .collect())
    }
}

/// Options of [`read_csv`]. The default reads every column and fails on invalid values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Drop rows with an invalid value (empty, NaN, infinite, out of range or a
    /// [missing marker](MISSING_MARKERS)) in a read column, counting them in [`ReadReport::dropped`],
    /// instead of failing. Text that is not a number is an error either way.
    pub drop_invalid: bool,
    /// Read only these columns, in this order (the table's columns are exactly these). `None` reads
    /// all columns in file order.
    pub columns: Option<Vec<String>>,
    /// The field delimiter; `None` detects it from the header line (module docs).
    pub delimiter: Option<Delimiter>,
}

/// A field delimiter of [`read_csv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `;` (values may use a decimal comma)
    Semicolon,
    /// a tab
    Tab,
}

impl Delimiter {
    /// Every delimiter, in the order [`Delimiter::detect`] tries them.
    pub const ALL: [Delimiter; 3] = [Delimiter::Comma, Delimiter::Semicolon, Delimiter::Tab];

    /// The character.
    pub fn char(self) -> char {
        match self {
            Delimiter::Comma => ',',
            Delimiter::Semicolon => ';',
            Delimiter::Tab => '\t',
        }
    }

    /// The delimiter a header line uses: the first of [`Delimiter::ALL`] that occurs in it outside
    /// quotes (a comma when none does). The order makes tabs padding a comma-separated header
    /// (`a,\tb`) stay padding.
    pub fn detect(header: &str) -> Delimiter {
        let mut seen = [false; 3];
        let mut quoted = false;
        for c in header.chars() {
            if c == '"' {
                quoted = !quoted;
            } else if !quoted {
                if let Some(k) = Self::ALL.iter().position(|d| d.char() == c) {
                    seen[k] = true;
                }
            }
        }
        let first = seen.iter().position(|&s| s).unwrap_or(0);
        Self::ALL[first]
    }
}

impl std::str::FromStr for Delimiter {
    type Err = UnknownName;

    /// `,` (or `comma`), `;` (or `semicolon`), `tab` (or a tab character).
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "," | "comma" => Ok(Delimiter::Comma),
            ";" | "semicolon" => Ok(Delimiter::Semicolon),
            "tab" | "\t" | "\\t" => Ok(Delimiter::Tab),
            other => Err(UnknownName {
                kind: "delimiter",
                name: other.into(),
                choices: "',', ';' or 'tab'".into(),
            }),
        }
    }
}

/// What [`read_csv`] did besides returning the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Data rows dropped for an invalid value (only with [`ReadOptions::drop_invalid`]).
    pub dropped: usize,
}

/// Why a field's value cannot be used, though the field is not a syntax error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Nothing (or only spaces) between the commas.
    Empty,
    /// One of the [`MISSING_MARKERS`].
    Missing,
    /// `NaN` (any case, any sign).
    NaN,
    /// `inf` or `infinity` (any case, any sign).
    Infinite,
    /// A number too large for `f64` (`1e400`).
    OutOfRange,
}

impl fmt::Display for InvalidKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidKind::Empty => "empty field",
            InvalidKind::Missing => "missing value",
            InvalidKind::NaN => "NaN",
            InvalidKind::Infinite => "infinite value",
            InvalidKind::OutOfRange => "value out of f64 range",
        })
    }
}

/// Errors of [`read_csv`]. Each message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file cannot be opened (missing, a directory, no permission).
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading failed part way.
    #[error("{}: line {line}: read error: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// 1-based line being read.
        line: usize,
        /// The cause.
        source: io::Error,
    },
    /// A line is not UTF-8 text.
    #[error("{}: line {line}: not valid UTF-8 text{hint}", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Extra advice (e.g. for UTF-16 files), empty or starting with a separator.
        hint: &'static str,
    },
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("{}: line {line}: longer than {limit} bytes", path.display())]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The limit, [`MAX_LINE_BYTES`].
        limit: usize,
    },
    /// No header row: the file is empty or blank.
    #[error("{}: empty file (a header row of column names is required)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A header row but no data rows.
    #[error("{}: no data rows (only the header, on line {header_line})", path.display())]
    NoData {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        header_line: usize,
    },
    /// Every data row had an invalid value and was dropped ([`ReadOptions::drop_invalid`]).
    #[error("{}: all {dropped} data rows have an invalid value and were dropped; nothing left", path.display())]
    AllDropped {
        /// The file.
        path: PathBuf,
        /// Rows dropped.
        dropped: usize,
    },
    /// With a delimiter given, the header is one column whose name contains another delimiter.
    #[error(
        "{}: line {line}: the header is a single column containing {delimiter:?}: \
         the file is not separated by the delimiter given (pass --delimiter {delimiter:?}, or none to detect it)",
        path.display()
    )]
    Delimiter {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The suspected delimiter.
        delimiter: char,
    },
    /// The header line holds a carriage return: the file has classic Mac (`\r`-only) line ends.
    #[error(
        "{}: line {line}: carriage return inside the header line (old Mac line ends?); \
         use \\n or \\r\\n line ends",
        path.display()
    )]
    CarriageReturn {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
    },
    /// A header field is empty.
    #[error("{}: line {line}: header field {field} is empty (every column needs a name)", path.display())]
    EmptyColumnName {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// 1-based field number.
        field: usize,
    },
    /// Two header fields have the same name.
    #[error("{}: line {line}: duplicate column name '{column}' (fields {first} and {second})", path.display())]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The repeated name.
        column: String,
        /// 1-based field number of its first use.
        first: usize,
        /// 1-based field number of the repeat.
        second: usize,
    },
    /// Every header field is a number: the file most likely has no header row.
    #[error(
        "{}: line {line}: the header row is all numbers ({text:?}); \
         a first row of column names is required",
        path.display()
    )]
    HeaderLooksNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The header line (cut if long).
        text: String,
    },
    /// A selected column is not in the header.
    #[error("{}: no column '{column}' (available: {})", path.display(), available.join(", "))]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The selected name.
        column: String,
        /// The header's names.
        available: Vec<String>,
    },
    /// [`ReadOptions::columns`] names a column twice.
    #[error("{}: column '{column}' is selected twice", path.display())]
    DuplicateSelection {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// [`ReadOptions::columns`] is `Some` but empty.
    #[error("{}: the column selection is empty", path.display())]
    EmptySelection {
        /// The file.
        path: PathBuf,
    },
    /// A quoted field is not closed on its line, or has text after its closing quote.
    #[error("{}: line {line}: {}: {reason}", path.display(), at(*field, column.as_deref()))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based field number.
        field: usize,
        /// The field's column, if the header has one there (`None` in the header itself).
        column: Option<String>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A data row has a different number of fields than the header.
    #[error(
        "{}: line {line}: {found} fields, but the header has {expected} columns ({})",
        path.display(),
        ragged_detail(*expected, *found, missing.as_deref())
    )]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Number of header columns.
        expected: usize,
        /// Number of fields on the line.
        found: usize,
        /// With too few fields, the first column without a value.
        missing: Option<String>,
    },
    /// A read field is text that is not a number.
    #[error("{}: line {line}: {}: not a number: {text:?}", path.display(), at(*field, Some(column)))]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based field number.
        field: usize,
        /// The field's column.
        column: String,
        /// The field's text (unquoted, trimmed, cut if long).
        text: String,
    },
    /// A read field is empty, NaN, infinite, out of range or a missing marker, and
    /// [`ReadOptions::drop_invalid`] is off.
    #[error(
        "{}: line {line}: {}: {kind}{} (drop such rows with drop_invalid / --drop-invalid)",
        path.display(),
        at(*field, Some(column)),
        if text.is_empty() { String::new() } else { format!(" {text:?}") }
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based field number.
        field: usize,
        /// The field's column.
        column: String,
        /// What is wrong with the value.
        kind: InvalidKind,
        /// The field's text (unquoted, trimmed, cut if long).
        text: String,
    },
}

/// "field 2 (column 'x1')".
fn at(field: usize, column: Option<&str>) -> String {
    match column {
        Some(c) => format!("field {field} (column '{c}')"),
        None => format!("field {field}"),
    }
}

fn ragged_detail(expected: usize, found: usize, missing: Option<&str>) -> String {
    match missing {
        Some(c) if found < expected => format!("no value for column '{c}', field {}", found + 1),
        _ => format!("field {} has no column", expected + 1),
    }
}

/// `text` for an error message, cut to [`QUOTE_CHARS`] characters.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Reads a numeric CSV file with a header row (see the [module docs](self) for the accepted format).
///
/// Returns the table (the selected columns, or all) and a report of dropped rows. Fails on the
/// first problem, with an error naming the path, line, field and column.
///
/// ```no_run
/// # use std::path::Path;
/// # use flow_train::csv::{read_csv, ReadOptions};
/// let opts = ReadOptions { drop_invalid: true, columns: Some(vec!["x1".into(), "x0".into()]), ..Default::default() };
/// let (table, report) = read_csv(Path::new("data.csv"), &opts)?;
/// println!("{} rows of {:?}, {} dropped", table.len(), table.columns, report.dropped);
/// # Ok::<(), flow_train::csv::CsvError>(())
/// ```
pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<(Table, ReadReport), CsvError> {
    let open_err = |source| CsvError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    if file.metadata().map_err(open_err)?.is_dir() {
        return Err(open_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        )));
    }
    let mut lines = Lines {
        reader: BufReader::with_capacity(1 << 16, file),
        buf: Vec::new(),
        line: 0,
        path,
    };

    // Header.
    // Header: the first line that is not blank (detected on it alone, then read as a record).
    let mut record = String::new();
    let (header_line, delimiter) = loop {
        match lines.next_line()? {
            None => {
                return Err(CsvError::Empty {
                    path: path.to_path_buf(),
                })
            }
            Some((_, text)) if is_blank(text) => continue,
            Some((line, text)) => {
                let delimiter = opts.delimiter.unwrap_or_else(|| Delimiter::detect(text));
                record.push_str(text);
                break (line, delimiter);
            }
        }
    };
    continue_record(&mut lines, &mut record, delimiter, header_line)?;
    let names = parse_header(path, header_line, &record, delimiter, opts.delimiter.is_some())?;

    // Selection: `slot[field]` is the field's position in the output row, if it is read.
    let (columns, slot) = select(path, &names, opts.columns.as_deref())?;
    let width = columns.len();

    let mut values: Vec<f64> = Vec::new();
    let mut row = vec![0.0; width];
    let mut dropped = 0;
    while let Some((line, text)) = lines.next_line()? {
        // A line that leaves a quoted field open runs on into the next ones (copied into `record`);
        // the others are read in place.
        let text = if text.contains('"') && ends_quoted(text, delimiter) {
            record.clear();
            record.push_str(text);
            continue_record(&mut lines, &mut record, delimiter, line)?;
            record.as_str()
        } else {
            text
        };
        if is_blank(text) {
            continue;
        }
        row.iter_mut().for_each(|v| *v = 0.0);
        let mut found = 0;
        let mut not_numeric: Option<(usize, String)> = None;
        let mut invalid: Option<(usize, InvalidKind, String)> = None;
        for (i, field) in Fields::of(text, delimiter).enumerate() {
            found = i + 1;
            let field = field.map_err(|reason| CsvError::Malformed {
                path: path.to_path_buf(),
                line,
                field: i + 1,
                column: names.get(i).cloned(),
                reason,
            })?;
            let Some(&Some(j)) = slot.get(i) else { continue };
            let field = match delimiter {
                Delimiter::Semicolon => decimal_comma(field),
                _ => field,
            };
            match parse_value(&field) {
                Ok(v) => row[j] = v,
                Err(None) => {
                    not_numeric.get_or_insert_with(|| (i, excerpt(&field)));
                }
                Err(Some(kind)) => {
                    invalid.get_or_insert_with(|| (i, kind, excerpt(&field)));
                }
            }
        }
        if found != names.len() {
            return Err(CsvError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: names.len(),
                found,
                missing: names.get(found).cloned(),
            });
        }
        if let Some((i, text)) = not_numeric {
            let column = names[i].clone();
            return Err(CsvError::NotNumeric {
                path: path.to_path_buf(),
                line,
                field: i + 1,
                column,
                text,
            });
        }
        if let Some((i, kind, text)) = invalid {
            if opts.drop_invalid {
                dropped += 1;
                continue;
            }
            let column = names[i].clone();
            return Err(CsvError::Invalid {
                path: path.to_path_buf(),
                line,
                field: i + 1,
                column,
                kind,
                text,
            });
        }
        values.extend_from_slice(&row);
    }
    if values.is_empty() {
        let path = path.to_path_buf();
        return Err(if dropped > 0 {
            CsvError::AllDropped { path, dropped }
        } else {
            CsvError::NoData { path, header_line }
        });
    }
    Ok((Table { columns, values }, ReadReport { dropped }))
}

/// Why [`read_table`] failed: the CSV reader's error or the NumPy reader's.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// From [`read_csv`].
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// From [`crate::npy::read_numpy`].
    #[error(transparent)]
    Npy(#[from] crate::npy::NpyError),
}

/// Reads a table from a CSV file, or from a NumPy `.npy` / `.npz` file by its extension (see
/// [`crate::npy`]; `names` names a `.npy` array's columns when it has that many).
pub fn read_table(
    path: &Path,
    names: Option<&[String]>,
    drop_invalid: bool,
    delimiter: Option<Delimiter>,
) -> Result<(Table, ReadReport), TableError> {
    if crate::npy::is_numpy(path) {
        return Ok(crate::npy::read_numpy(path, names, drop_invalid)?);
    }
    let opts = ReadOptions {
        drop_invalid,
        columns: None,
        delimiter,
    };
    Ok(read_csv(path, &opts)?)
}

/// Names of the columns whose values are all equal (zero variance), in table order.
///
/// Such a column cannot be standardized and gives a flow a degenerate dimension, so callers usually
/// refuse or drop it. Values are compared with `==` (so `0.0` equals `-0.0`; a column holding a NaN is
/// never constant). A table without rows has no constant columns.
pub fn constant_columns(t: &Table) -> Vec<String> {
    let Some(first) = t.rows().next() else {
        return Vec::new();
    };
    t.columns
        .iter()
        .enumerate()
        .filter(|&(j, _)| t.rows().all(|r| r.get(j).is_some_and(|&v| v == first[j])))
        .map(|(_, name)| name.clone())
        .collect()
}

/// Writes `rows` under the header `columns` as CSV, atomically: the text goes to a temporary file in
/// the same directory, which is flushed to disk (`fsync`) and then renamed over `path`, so readers
/// see the old file or the complete new one, never a partial one; on an error `path` is untouched
/// and the temporary file removed.
///
/// Values are written with Rust's shortest round-trip formatting (`{:?}` of `f64`: `0.1`, `1.0`,
/// `-0.0`, `1e-7`, `NaN`, `inf`), so [`read_csv`] gets back the same bits for finite values.
/// Column names are quoted when they need it (a comma, a quote, spaces at an end).
///
/// Fails with [`io::ErrorKind::InvalidInput`] (message without the path, for the caller to add) for:
/// no columns, an empty or duplicate column name, a name containing a line break, or a row with
/// the wrong number of values.
pub fn write_csv(path: &Path, columns: &[String], rows: impl Iterator<Item = Vec<f64>>) -> io::Result<()> {
    check_columns(columns)?;
    if path.file_name().is_none() {
        return Err(invalid_input(format!("no file name in {path:?}")));
    }
    crate::io::write_atomic_with(path, |file| write_rows(file, columns, rows))
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn check_columns(columns: &[String]) -> io::Result<()> {
    if columns.is_empty() {
        return Err(invalid_input("no columns to write".into()));
    }
    let mut seen = HashMap::new();
    for (i, c) in columns.iter().enumerate() {
        if c.trim().is_empty() {
            return Err(invalid_input(format!("column {} has an empty name", i + 1)));
        }
        if c.contains(['\n', '\r']) {
            return Err(invalid_input(format!("column name {c:?} contains a line break")));
        }
        if let Some(first) = seen.insert(c.as_str(), i) {
            return Err(invalid_input(format!(
                "duplicate column name '{c}' (columns {} and {})",
                first + 1,
                i + 1
            )));
        }
    }
    Ok(())
}

fn write_rows(file: &mut File, columns: &[String], rows: impl Iterator<Item = Vec<f64>>) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, file);
    for (j, c) in columns.iter().enumerate() {
        if j > 0 {
            w.write_all(b",")?;
        }
        let needs_quotes = c.contains([',', '"']) || c.trim_matches([' ', '\t']) != c;
        if needs_quotes {
            write!(w, "\"{}\"", c.replace('"', "\"\""))?;
        } else {
            w.write_all(c.as_bytes())?;
        }
    }
    w.write_all(b"\n")?;
    for (i, row) in rows.enumerate() {
        if row.len() != columns.len() {
            return Err(invalid_input(format!(
                "data row {} has {} values for {} columns",
                i + 1,
                row.len(),
                columns.len()
            )));
        }
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                w.write_all(b",")?;
            }
            write!(w, "{v:?}")?;
        }
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Whether a record's text ends inside a quoted field: a quote opens a field only at its start
/// (after padding), `""` inside it is one quote, as [`Fields`] reads them.
fn ends_quoted(text: &str, delimiter: Delimiter) -> bool {
    let d = delimiter.char();
    let (mut at_start, mut quoted) = (true, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    quoted = false;
                }
            }
        } else if c == d {
            at_start = true;
        } else if at_start && c == '"' {
            quoted = true;
            at_start = false;
        } else if !(c == ' ' || (c == '\t' && d != '\t')) {
            at_start = false;
        }
    }
    quoted
}

/// Appends to `record` (a record starting on line `first` that leaves a quoted field open) the
/// lines after it until the field closes or the file ends, joined with `\n`, at most
/// [`MAX_LINE_BYTES`] in all.
fn continue_record<R: BufRead>(
    lines: &mut Lines<'_, R>,
    record: &mut String,
    delimiter: Delimiter,
    first: usize,
) -> Result<(), CsvError> {
    while ends_quoted(record, delimiter) {
        let Some((_, text)) = lines.next_line()? else {
            break; // the parser reports the unterminated field
        };
        if record.len() + 1 + text.len() > MAX_LINE_BYTES {
            return Err(CsvError::LineTooLong {
                path: lines.path.to_path_buf(),
                line: first,
                limit: MAX_LINE_BYTES,
            });
        }
        record.push('\n');
        record.push_str(text);
    }
    Ok(())
}

/// Line-by-line reader over a reused buffer; strips line ends and the BOM, checks UTF-8 and length.
struct Lines<'p, R> {
    reader: R,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    line: usize,
    path: &'p Path,
}

impl<R: BufRead> Lines<'_, R> {
    fn next_line(&mut self) -> Result<Option<(usize, &str)>, CsvError> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| CsvError::Read {
                path: self.path.to_path_buf(),
                line: self.line + 1,
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut end = self.buf.len();
        if self.buf[end - 1] == b'\n' {
            end -= 1;
        } else if end > MAX_LINE_BYTES {
            return Err(CsvError::LineTooLong {
                path: self.path.to_path_buf(),
                line: self.line,
                limit: MAX_LINE_BYTES,
            });
        }
        if end > 0 && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        let mut start = 0;
        if self.line == 1 && self.buf[..end].starts_with("\u{feff}".as_bytes()) {
            start = 3;
        }
        match std::str::from_utf8(&self.buf[start..end]) {
            Ok(text) => Ok(Some((self.line, text))),
            Err(_) => {
                let utf16 = self.line == 1
                    && (self.buf.starts_with(&[0xff, 0xfe]) || self.buf.starts_with(&[0xfe, 0xff]));
                let hint = if utf16 {
                    " (it looks like UTF-16: save the file as UTF-8)"
                } else {
                    ""
                };
                Err(CsvError::NotUtf8 {
                    path: self.path.to_path_buf(),
                    line: self.line,
                    hint,
                })
            }
        }
    }
}

fn is_blank(text: &str) -> bool {
    text.trim_matches([' ', '\t']).is_empty()
}

/// `1,5` → `1.5`: a field with one comma and no point, in a semicolon-separated file.
fn decimal_comma(field: Cow<'_, str>) -> Cow<'_, str> {
    if field.matches(',').count() == 1 && !field.contains('.') {
        Cow::Owned(field.replace(',', "."))
    } else {
        field
    }
}

fn parse_header(
    path: &Path,
    line: usize,
    text: &str,
    delimiter: Delimiter,
    given: bool,
) -> Result<Vec<String>, CsvError> {
    if text.contains('\r') {
        return Err(CsvError::CarriageReturn {
            path: path.to_path_buf(),
            line,
        });
    }
    let mut names: Vec<String> = Vec::new();
    for (i, field) in Fields::of(text, delimiter).enumerate() {
        let field = field.map_err(|reason| CsvError::Malformed {
            path: path.to_path_buf(),
            line,
            field: i + 1,
            column: None,
            reason,
        })?;
        names.push(field.into_owned());
    }
    if let ([only], true) = (names.as_slice(), given) {
        let others = Delimiter::ALL.map(Delimiter::char);
        if let Some(delimiter) = only
            .chars()
            .find(|c| others.contains(c) && *c != delimiter.char())
        {
            return Err(CsvError::Delimiter {
                path: path.to_path_buf(),
                line,
                delimiter,
            });
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(CsvError::EmptyColumnName {
                path: path.to_path_buf(),
                line,
                field: i + 1,
            });
        }
        if let Some(first) = seen.insert(name, i) {
            return Err(CsvError::DuplicateColumn {
                path: path.to_path_buf(),
                line,
                column: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(CsvError::HeaderLooksNumeric {
            path: path.to_path_buf(),
            line,
            text: excerpt(text),
        });
    }
    Ok(names)
}

/// The output columns and, per header field, its position in the output row (if read).
fn select(
    path: &Path,
    names: &[String],
    wanted: Option<&[String]>,
) -> Result<(Vec<String>, Vec<Option<usize>>), CsvError> {
    let Some(wanted) = wanted else {
        return Ok((names.to_vec(), (0..names.len()).map(Some).collect()));
    };
    if wanted.is_empty() {
        return Err(CsvError::EmptySelection {
            path: path.to_path_buf(),
        });
    }
    let mut slot = vec![None; names.len()];
    for (j, w) in wanted.iter().enumerate() {
        let i = names
            .iter()
            .position(|n| n == w)
            .ok_or_else(|| CsvError::UnknownColumn {
                path: path.to_path_buf(),
                column: w.clone(),
                available: names.to_vec(),
            })?;
        if slot[i].is_some() {
            return Err(CsvError::DuplicateSelection {
                path: path.to_path_buf(),
                column: w.clone(),
            });
        }
        slot[i] = Some(j);
    }
    Ok((wanted.to_vec(), slot))
}

/// A field's value: `Err(None)` for text that is not a number, `Err(Some(kind))` for an invalid one.
fn parse_value(text: &str) -> Result<f64, Option<InvalidKind>> {
    if text.is_empty() {
        return Err(Some(InvalidKind::Empty));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) if v.is_nan() => Err(Some(InvalidKind::NaN)),
        Ok(_) if text.bytes().any(|b| b.eq_ignore_ascii_case(&b'i')) => Err(Some(InvalidKind::Infinite)),
        Ok(_) => Err(Some(InvalidKind::OutOfRange)),
        Err(_) if MISSING_MARKERS.iter().any(|m| m.eq_ignore_ascii_case(text)) => {
            Err(Some(InvalidKind::Missing))
        }
        Err(_) => Err(None),
    }
}

/// The fields of one record split at the delimiter `D`: trimmed of spaces and tabs (only spaces
/// when `D` is a tab), unquoted. Yields an error (and stops) at a malformed quoted field. `D` is a
/// constant so that each delimiter gets its own specialized splitter ([`Fields::of`] picks it).
struct Fields<'a, const D: char> {
    rest: Option<&'a str>,
}

impl<'a, const D: char> Fields<'a, D> {
    /// What is trimmed around a field.
    const PAD: [char; 2] = if D == '\t' { [' ', ' '] } else { [' ', '\t'] };
}

/// [`Fields`] for a delimiter known at run time.
enum AnyFields<'a> {
    Comma(Fields<'a, ','>),
    Semicolon(Fields<'a, ';'>),
    Tab(Fields<'a, '\t'>),
}

impl<'a> Fields<'a, ','> {
    /// The fields of `line` split at `delimiter`.
    fn of(line: &'a str, delimiter: Delimiter) -> AnyFields<'a> {
        let rest = Some(line);
        match delimiter {
            Delimiter::Comma => AnyFields::Comma(Fields { rest }),
            Delimiter::Semicolon => AnyFields::Semicolon(Fields { rest }),
            Delimiter::Tab => AnyFields::Tab(Fields { rest }),
        }
    }
}

impl<'a> Iterator for AnyFields<'a> {
    type Item = Result<Cow<'a, str>, &'static str>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            AnyFields::Comma(f) => f.next(),
            AnyFields::Semicolon(f) => f.next(),
            AnyFields::Tab(f) => f.next(),
        }
    }
}

impl<'a, const D: char> Iterator for Fields<'a, D> {
    type Item = Result<Cow<'a, str>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let (pad, delimiter) = (Self::PAD, D);
        let s = self.rest.take()?.trim_start_matches(pad);
        let Some(quoted) = s.strip_prefix('"') else {
            return Some(Ok(Cow::Borrowed(match s.find(delimiter) {
                Some(k) => {
                    self.rest = Some(&s[k + delimiter.len_utf8()..]);
                    s[..k].trim_end_matches(pad)
                }
                None => s.trim_end_matches(pad),
            })));
        };
        // A quoted field: `""` stands for one quote; the closing quote ends it.
        let mut owned: Option<String> = None;
        let mut from = 0;
        loop {
            let Some(k) = quoted[from..].find('"') else {
                return Some(Err(
                    "unterminated quoted field (no closing quote before the end of the file)",
                ));
            };
            let q = from + k;
            if quoted[q + 1..].starts_with('"') {
                owned.get_or_insert_with(String::new).push_str(&quoted[from..=q]);
                from = q + 2;
                continue;
            }
            let value = match owned {
                Some(mut o) => {
                    o.push_str(&quoted[from..q]);
                    Cow::Owned(o.trim_matches(pad).to_string())
                }
                None => Cow::Borrowed(quoted[..q].trim_matches(pad)),
            };
            let after = quoted[q + 1..].trim_start_matches(pad);
            if let Some(rest) = after.strip_prefix(delimiter) {
                self.rest = Some(rest);
            } else if !after.is_empty() {
                return Some(Err("text after the closing quote"));
            }
            return Some(Ok(value));
        }
    }
}

#[cfg(test)]
mod tests {
    /// `select` takes the named columns in the order asked, row after row, and names a missing
    /// column with the ones there are.
    #[test]
    fn select_picks_named_columns_in_order() {
        let t = Table {
            columns: vec!["a".into(), "b".into(), "c".into()],
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let p = Path::new("t.csv");
        assert_eq!(
            t.select(&["c".into(), "a".into()], p).unwrap(),
            [3.0, 1.0, 6.0, 4.0]
        );
        assert!(t.select(&[], p).unwrap().is_empty());
        let e = t.select(&["a".into(), "z".into()], p).unwrap_err().to_string();
        assert_eq!(e, "t.csv: no column 'z' (available: a, b, c)");
    }

    use super::*;

    fn fields(line: &str) -> Vec<Result<String, &'static str>> {
        Fields::of(line, Delimiter::Comma)
            .map(|f| f.map(|c| c.into_owned()))
            .collect()
    }

    #[test]
    fn splits_trims_and_unquotes() {
        let ok = |v: &[&str]| v.iter().map(|s| Ok(s.to_string())).collect::<Vec<_>>();
        assert_eq!(fields("1,2,3"), ok(&["1", "2", "3"]));
        assert_eq!(fields(" 1 ,\t2\t, 3 "), ok(&["1", "2", "3"]));
        assert_eq!(fields("\"1.5\", \" 2 \" ,3"), ok(&["1.5", "2", "3"]));
        assert_eq!(fields("\"a, b\",\"say \"\"hi\"\"\""), ok(&["a, b", "say \"hi\""]));
        assert_eq!(fields("1,2,"), ok(&["1", "2", ""]));
        assert_eq!(fields(""), ok(&[""]));
        assert_eq!(fields("\"\",1"), ok(&["", "1"]));
        assert!(fields("1,\"2")[1].is_err());
        assert!(fields("\"1\"x,2")[0].is_err());
        assert_eq!(fields("1\"5,2"), ok(&["1\"5", "2"]));
    }

    #[test]
    fn value_classes() {
        assert_eq!(parse_value("1.5"), Ok(1.5));
        assert_eq!(parse_value("-2e-3"), Ok(-2e-3));
        assert_eq!(parse_value(".5"), Ok(0.5));
        assert_eq!(parse_value("+7"), Ok(7.0));
        assert_eq!(parse_value("1e-400"), Ok(0.0));
        assert_eq!(parse_value(""), Err(Some(InvalidKind::Empty)));
        for t in ["nan", "NaN", "-nan", "NAN"] {
            assert_eq!(parse_value(t), Err(Some(InvalidKind::NaN)), "{t}");
        }
        for t in ["inf", "-inf", "+Infinity", "INF"] {
            assert_eq!(parse_value(t), Err(Some(InvalidKind::Infinite)), "{t}");
        }
        assert_eq!(parse_value("1e400"), Err(Some(InvalidKind::OutOfRange)));
        assert_eq!(parse_value("-1e999"), Err(Some(InvalidKind::OutOfRange)));
        for t in ["NA", "na", "N/A", "#N/A", "null", "None"] {
            assert_eq!(parse_value(t), Err(Some(InvalidKind::Missing)), "{t}");
        }
        for t in [
            "abc", "1,5", "0x10", "1.5.3", "1 000", "\u{a0}1", "--1", "e5", "-", "nil",
        ] {
            assert_eq!(parse_value(t), Err(None), "{t}");
        }
    }

    #[test]
    fn excerpt_cuts_long_text_on_a_char_boundary() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(100);
        let e = excerpt(&long);
        assert!(e.ends_with("...") && e.chars().count() == QUOTE_CHARS + 3);
    }

    #[test]
    fn constant_columns_compares_exactly() {
        let t = Table {
            columns: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            values: vec![1.0, 0.0, 1.0, f64::NAN, 1.0, -0.0, 1.0 + 1e-15, f64::NAN],
        };
        assert_eq!(constant_columns(&t), vec!["a".to_string(), "b".to_string()]);
        assert!(constant_columns(&Table::default()).is_empty());
    }
}
