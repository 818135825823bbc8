//! Model files on disk: atomic writes, reads with errors that name the path, and the metadata
//! (column names, training record, golden vectors) kept in the file's JSON section.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    #[serde(with = "crate::jsonf64::one")]
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

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed and
/// synced, then renamed over `path`. A crash at any point leaves either the old file or the new
/// one, never a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelIoError> {
    let io = |source| ModelIoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
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
