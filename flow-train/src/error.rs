//! One error type for the library.
//!
//! Each module keeps its own error (a [`csv::CsvError`] names the line and
//! field, a [`train::FitError`] says why training cannot start, …), and
//! [`Error`] wraps every one of them, so `?` carries any of them across modules and a caller that
//! does not care which module failed matches on one enum. All implement [`std::error::Error`].

use crate::{csv, datasets, importance, io, npy, posterior, reverse_kl, train};

/// Defines an error type that is a message: what went wrong, with the name of the file, option or
/// parameter involved. `From<String>` lets the module build it with `format!` and `?`.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<String> for $name {
            fn from(message: String) -> Self {
                Self(message)
            }
        }

        impl From<&str> for $name {
            fn from(message: &str) -> Self {
                Self(message.to_owned())
            }
        }
    };
}

message_error!(
    /// A flow that cannot be built from its [`ArchConfig`](crate::ArchConfig) and data shape.
    ArchError
);
message_error!(
    /// A fixture that cannot be imported: unsupported constructor, option or module (named), a
    /// missing or misshapen parameter, or an imported model the validator rejects.
    ImportError
);
message_error!(
    /// A footprint that cannot be measured: a missing tool (cargo, the thumbv7em target, qemu),
    /// a build that failed (its output), or a firmware run that did not finish.
    FootprintError
);
message_error!(
    /// A figure that cannot be drawn: an unreadable model or data file, columns that do not match
    /// the model, or a file that cannot be written.
    PlotError
);

/// A name that is not one of the choices (`--flow`, `--schedule`, `--precision`, `--delimiter`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{name}' ({choices})")]
pub struct UnknownName {
    /// What was being named: `flow`, `schedule`, …
    pub kind: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names.
    pub choices: String,
}

/// Any error of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a CSV file.
    #[error(transparent)]
    Csv(#[from] csv::CsvError),
    /// Selecting columns of a table.
    #[error(transparent)]
    Table(#[from] csv::TableError),
    /// Reading or writing a NumPy file.
    #[error(transparent)]
    Npy(#[from] npy::NpyError),
    /// Reading or writing a model file.
    #[error(transparent)]
    ModelIo(#[from] io::ModelIoError),
    /// A data set that cannot be generated.
    #[error(transparent)]
    Data(#[from] datasets::DataError),
    /// Building a flow.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// Starting a maximum-likelihood fit.
    #[error(transparent)]
    Fit(#[from] train::FitError),
    /// Starting a reverse-KL fit.
    #[error(transparent)]
    Target(#[from] reverse_kl::TargetError),
    /// Sampling a posterior within the prior's bounds.
    #[error(transparent)]
    Posterior(#[from] posterior::PosteriorError),
    /// Importance weights and their estimates.
    #[error(transparent)]
    Importance(#[from] importance::ImportanceError),
    /// Importing a zuko, nflows or FlowJAX fixture.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Measuring a footprint.
    #[error(transparent)]
    Footprint(#[from] FootprintError),
    /// Drawing a figure.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// An unknown name.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_errors_convert_and_keep_their_message() {
        fn import() -> Result<(), ImportError> {
            Err("zuko.flows.Foo: unsupported".into())
        }
        let e: Error = import().unwrap_err().into();
        assert!(matches!(e, Error::Import(_)));
        assert_eq!(e.to_string(), "zuko.flows.Foo: unsupported");
        let e: Error = "x".parse::<crate::FlowKind>().unwrap_err().into();
        assert!(
            matches!(e, Error::UnknownName(UnknownName { kind: "flow", .. })),
            "{e}"
        );
        assert!(e.to_string().starts_with("unknown flow 'x' (one of maf"), "{e}");
    }
}
