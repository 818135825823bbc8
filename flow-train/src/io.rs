//! Model files on disk: atomic writes, reads with errors that name the path, and the metadata
//! (column names, training record, golden vectors) kept in the file's JSON section.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flow_core::model::builder::ModelParts;
use serde::{Deserialize, Serialize};

use crate::train::{EpochInfo, FitConfig, StopReason};

/// The `format` tag of the metadata this version writes.
pub const META_FORMAT: &str = "flow-train/1";

/// What a model file's metadata holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always [`META_FORMAT`] when written by flow-train (other writers may omit it).
    #[serde(default)]
    pub format: String,
    /// Names of the modelled columns, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Names of the context columns, in order.
    #[serde(default)]
    pub context_columns: Vec<String>,
    /// How the model was made (`fit`: the flow family; `import`: the library).
    #[serde(default)]
    pub flow: String,
    /// The training record, for `fit` models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingRecord>,
    /// The reverse-KL training record, for `fit-target` models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_fit: Option<TargetFitRecord>,
    /// The source library's description, for imported models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
    /// Reference answers computed in f64 when the file was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden: Option<crate::golden::Golden>,
}

/// How a model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// The configuration.
    pub config: FitConfig,
    /// Best validation NLL.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub best_val_nll: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Why it stopped.
    pub stop: StopReason,
    /// Rows used for training / validation.
    pub n_train: usize,
    /// Rows held out.
    pub n_val: usize,
    /// Per-epoch curve.
    pub history: Vec<EpochInfo>,
}

impl TrainingRecord {
    /// The record of a fit of `config` that ended with `out`.
    pub fn of(config: &FitConfig, out: &crate::train::FitOutcome) -> Self {
        TrainingRecord {
            config: config.clone(),
            best_val_nll: out.best_val_nll,
            epochs: out.epochs,
            seconds: out.seconds,
            stop: out.stop,
            n_train: out.n_train,
            n_val: out.n_val,
            history: out.history.clone(),
        }
    }
}

/// How a model was fitted to a target density by reverse KL (`flow-train fit-target`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFitRecord {
    /// The target and its parameters, e.g. `phi4 lattice=8 m2=-4 lambda=8`.
    pub target: String,
    /// The configuration.
    pub config: crate::reverse_kl::TargetConfig,
    /// Steps run.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// ESS / N of the final evaluation.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub ess: f64,
    /// Mean `log q − log p*` of the final evaluation.
    #[serde(with = "flow_core::model::nonfinite::one")]
    pub kl: f64,
    /// Per-step curve.
    pub history: Vec<crate::reverse_kl::StepInfo>,
}

/// Errors reading or writing model files.
#[derive(Debug, thiserror::Error)]
pub enum ModelIoError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a valid model.
    #[error("{path}: invalid model file: {reason}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelIoError> {
    write_atomic_with(path, |f| f.write_all(bytes)).map_err(|source| ModelIoError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `path` atomically through `write`: into a new temporary file in the same directory
/// (`.NAME.PID.N.tmp`), synced, then renamed over `path`. A crash at any point leaves either the
/// old file or the new one, never a partial file; on an error the temporary file is removed and
/// `path` is untouched. Every file flow-train writes (models, CSVs) goes through here.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut fs::File) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut file) = create_temp(dir, &name)?;
    let result = write(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    match result {
        Ok(()) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Creates a new, unique temporary file next to the target (`.NAME.PID.N.tmp`).
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes the rename durable (best effort: not every platform can open or sync a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Serializes a model and writes it atomically.
pub fn write_model(path: &Path, parts: &ModelParts, meta: &Meta) -> Result<(), ModelIoError> {
    let json = serde_json::to_string(meta).expect("metadata serializes");
    write_atomic(path, &parts.to_bytes(&json))
}

/// Reads and validates a model file.
pub fn read_model(path: &Path) -> Result<(ModelParts, Meta), ModelIoError> {
    let bytes = fs::read(path).map_err(|source| ModelIoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| ModelIoError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let (parts, meta) = ModelParts::from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
    let meta: Meta = if meta.is_empty() {
        Meta::default()
    } else {
        serde_json::from_str(&meta).map_err(|e| invalid(format!("metadata: {e}")))?
    };
    Ok((parts, meta))
}
