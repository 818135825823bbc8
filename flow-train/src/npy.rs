//! NumPy arrays in and out (via the `npyz` crate): `.npy` files and `.npz` archives as a
//! [`Table`], and `.npy` output.
//!
//! # What is read
//!
//! * `.npy`: one 2-D array (a 1-D array is one column) of `float32` or `float64` (`<f4`, `<f8`,
//!   big-endian too), C or Fortran order; rows are samples. An array has no column names: its
//!   columns are named by the caller (the model's columns, then its context columns, when their
//!   number matches) or `x0`, `x1`, …
//! * `.npz` (`np.savez`, `np.savez_compressed`): every array is 1-D (one column, named after the
//!   array) or 2-D (`k` columns named `name0` … `name{k-1}`) of the same length; commands pick
//!   columns by those names (`--columns`, `--context`, a model's stored names).
//! * Values must be finite: a NaN or infinite value is an error naming its row (1-based) and
//!   column, or with `drop_invalid` its row is dropped and counted, as in [`crate::csv`].
//!
//! Other dtypes (integers, complex, structured, pickled objects), 0-D or 3-D and higher arrays,
//! empty arrays and files that end before their header says are errors that say which.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

use crate::csv::{ReadReport, Table};

/// Why a NumPy file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file cannot be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Not a `.npy` file, or a malformed header or archive.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the array inside an archive).
        what: String,
    },
    /// A NaN or infinite value (without `drop_invalid`).
    #[error("{}: row {row}: column '{column}': {value} (drop such rows with drop_invalid / --drop-invalid)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based row.
        row: usize,
        /// Column name.
        column: String,
        /// The value.
        value: f64,
    },
}

/// Whether `path` names a NumPy file (`.npy` or `.npz`, any case).
pub fn is_numpy(path: &Path) -> bool {
    matches!(extension(path).as_deref(), Some("npy" | "npz"))
}

fn extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// One array, row-major (`values[i * cols + j]`).
struct Array {
    values: Vec<f64>,
    cols: usize,
    /// A 1-D array (one column, named after the array in an archive).
    one_d: bool,
}

impl Array {
    fn rows(&self) -> usize {
        self.values.len().checked_div(self.cols).unwrap_or(0)
    }
}

/// Reads `.npy` or `.npz` (by extension) as a table. `names` names a `.npy` array's columns
/// when it has that many (else `x0`, `x1`, …); an archive's columns are named by its arrays.
///
/// Memory: the table, plus one array's copy while a Fortran-order array is transposed or an
/// archive's arrays are interleaved.
pub fn read_numpy(
    path: &Path,
    names: Option<&[String]>,
    drop_invalid: bool,
) -> Result<(Table, ReadReport), NpyError> {
    let format = |what: String| NpyError::Format {
        path: path.to_path_buf(),
        what,
    };
    let (columns, mut values) = if extension(path).as_deref() == Some("npz") {
        read_npz(path)?
    } else {
        let file = File::open(path).map_err(|source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let npy = NpyFile::new(BufReader::new(file)).map_err(|e| format(format!("not a .npy file: {e}")))?;
        let a = read_array(npy).map_err(format)?;
        let columns = match names {
            Some(n) if n.len() == a.cols => n.to_vec(),
            _ => (0..a.cols).map(|j| format!("x{j}")).collect(),
        };
        (columns, a.values)
    };
    let w = columns.len();
    if values.is_empty() || w == 0 {
        return Err(format("no rows".into()));
    }
    // Rows with a non-finite value: refused, or dropped in place.
    let mut dropped = 0;
    let mut kept = 0;
    for i in 0..values.len() / w {
        let row = i * w..(i + 1) * w;
        if let Some(j) = values[row.clone()].iter().position(|v| !v.is_finite()) {
            if !drop_invalid {
                return Err(NpyError::Invalid {
                    path: path.to_path_buf(),
                    row: i + 1,
                    column: columns[j].clone(),
                    value: values[i * w + j],
                });
            }
            dropped += 1;
            continue;
        }
        values.copy_within(row, kept * w);
        kept += 1;
    }
    values.truncate(kept * w);
    if values.is_empty() {
        return Err(format(format!("all {dropped} rows have a NaN or infinite value")));
    }
    Ok((Table { columns, values }, ReadReport { dropped }))
}

/// The arrays of an archive as named columns (row-major), all of one length.
fn read_npz(path: &Path) -> Result<(Vec<String>, Vec<f64>), NpyError> {
    let format = |what: String| NpyError::Format {
        path: path.to_path_buf(),
        what,
    };
    let mut zip = npyz::npz::NpzArchive::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => NpyError::Io {
            path: path.to_path_buf(),
            source: e,
        },
        _ => format(format!("not an .npz archive: {e}")),
    })?;
    let names: Vec<String> = zip.array_names().map(str::to_string).collect();
    if names.is_empty() {
        return Err(format("the archive holds no arrays".into()));
    }
    let (mut columns, mut arrays) = (Vec::new(), Vec::<Array>::new());
    for name in &names {
        let npy = zip
            .by_name(name)
            .map_err(|e| format(format!("array '{name}': {e}")))?
            .ok_or_else(|| format(format!("array '{name}' is listed but missing")))?;
        let a = read_array(npy).map_err(|w| format(format!("array '{name}': {w}")))?;
        if let Some(first) = arrays.first().filter(|f| f.rows() != a.rows()) {
            return Err(format(format!(
                "array '{}' has {} rows, array '{name}' {}: the arrays must have one length",
                names[0],
                first.rows(),
                a.rows()
            )));
        }
        for j in 0..a.cols {
            let c = if a.one_d {
                name.clone()
            } else {
                format!("{name}{j}")
            };
            if columns.contains(&c) {
                return Err(format(format!("two columns are named '{c}'")));
            }
            columns.push(c);
        }
        arrays.push(a);
    }
    let n = arrays[0].rows();
    let mut values = Vec::with_capacity(n * columns.len());
    for i in 0..n {
        for a in &arrays {
            values.extend_from_slice(&a.values[i * a.cols..(i + 1) * a.cols]);
        }
    }
    Ok((columns, values))
}

/// Reads one array, row-major: float32 or float64, 1-D or 2-D, C or Fortran order.
fn read_array<R: io::Read>(npy: NpyFile<R>) -> Result<Array, String> {
    let shape = npy.shape().to_vec();
    let (rows, cols) = match shape[..] {
        [n] => (n as usize, 1),
        [n, k] => (n as usize, k as usize),
        _ => {
            return Err(format!(
                "a {}-D array (shape {shape:?}); only 1-D and 2-D arrays (rows × columns) are read",
                shape.len()
            ))
        }
    };
    let fortran = npy.order() == Order::Fortran && shape.len() == 2;
    let flat: Vec<f64> = match npy.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 8 => {
            npy.into_vec::<f64>().map_err(|e| truncated(e, rows * cols))?
        }
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4 => npy
            .into_vec::<f32>()
            .map_err(|e| truncated(e, rows * cols))?
            .into_iter()
            .map(f64::from)
            .collect(),
        other => {
            return Err(format!(
                "dtype {} is not float32 or float64 (convert with .astype(np.float64))",
                other.descr()
            ))
        }
    };
    if flat.len() != rows * cols {
        return Err(truncated(io::ErrorKind::UnexpectedEof.into(), rows * cols));
    }
    let values = if fortran {
        (0..rows * cols)
            .map(|k| flat[(k % cols) * rows + k / cols])
            .collect()
    } else {
        flat
    };
    Ok(Array {
        values,
        cols,
        one_d: shape.len() == 1,
    })
}

fn truncated(e: io::Error, expected: usize) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("truncated: the header says {expected} values, the file ends before them")
    } else {
        format!("cannot read the values: {e}")
    }
}

/// Writes `rows` (each `columns` values) as a 2-D float64 `.npy` array (C order), atomically.
pub fn write_npy(path: &Path, columns: usize, rows: &[f64]) -> io::Result<()> {
    if columns == 0 || !rows.len().is_multiple_of(columns) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} values do not make rows of {columns}", rows.len()),
        ));
    }
    crate::io::write_atomic_with(path, |file| {
        let mut w = BufWriter::new(file);
        let shape = [(rows.len() / columns) as u64, columns as u64];
        let mut out = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut w)
            .begin_nd()?;
        out.extend(rows.iter().copied())?;
        out.finish()?;
        w.flush()
    })
}
