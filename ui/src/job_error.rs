//! Why a background job failed. The engine's and the endpoint's errors keep their types, so the
//! app can tell a cancelled run or a refused token from other failures; the screens show the
//! error's text, which names the file, column or address and what to do.

use std::path::PathBuf;

use wick_core::publish::PublishError;
use wick_core::WickError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Data, training, models and packages.
    #[error(transparent)]
    Engine(#[from] WickError),
    /// The endpoint's answer, or why it could not be reached.
    #[error(transparent)]
    Endpoint(#[from] PublishError),
    /// A file the job writes.
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// What the job was doing when `source` failed, in words the screen shows first.
    #[error("{doing}: {source}")]
    While {
        doing: String,
        source: Box<JobError>,
    },
    /// A failure the job words itself: what went wrong and what to do.
    #[error("{0}")]
    Message(String),
}

impl JobError {
    /// `source`, with what the job was doing when it failed.
    pub fn while_(doing: impl Into<String>, source: impl Into<JobError>) -> Self {
        Self::While {
            doing: doing.into(),
            source: Box::new(source.into()),
        }
    }

    /// The run stopped because someone pressed *Stop*, not because it failed.
    pub fn is_cancelled(&self) -> bool {
        match self {
            Self::Engine(WickError::Cancelled) => true,
            Self::While { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }
}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        Self::Message(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> Self {
        Self::Message(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_run_is_told_from_a_failed_one_through_its_context() {
        let stopped = JobError::while_("training run 3", WickError::Cancelled);
        assert!(stopped.is_cancelled());
        let failed = JobError::while_("training run 3", WickError::InvalidSpec("bad".into()));
        assert!(!failed.is_cancelled());
        assert_eq!(failed.to_string(), "training run 3: bad");
    }
}
