//! What can go wrong while building, checking or removing a lab.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LabError {
    /// The machine cannot host the lab as it is (not root, no netns, missing packages): one sentence.
    #[error("{0}")]
    Requirement(String),
    /// The request itself is wrong (bad name, a different lab of the same name is up).
    #[error("{0}")]
    Usage(String),
    #[error("{what} ({path}): {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    /// Ctrl-C; what was half built was removed.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The VM of `lab up --vm` could not start or its lab did not come up.
    #[error("{0}")]
    Vm(String),
    /// Nodes that did not come up; `detail` holds the end of their logs.
    #[error("lab nodes did not come up: {nodes}")]
    #[diagnostic(help("{detail}"))]
    NotReady { nodes: String, detail: String },
}

impl LabError {
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        LabError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Requirement and usage problems are the user's to fix (exit code 1, one sentence).
    pub fn is_for_the_user(&self) -> bool {
        matches!(self, LabError::Requirement(_) | LabError::Usage(_))
    }
}

/// `result.ctx("what", path)` turns an io::Error into a [`LabError::Io`] naming what was done.
pub trait IoContext<T> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T, LabError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T, LabError> {
        self.map_err(|e| LabError::io(what, path, e))
    }
}
