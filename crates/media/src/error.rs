//! What can go wrong while processing a video, split by who must act: the video's owner
//! ([`ProcessError::Rejected`], in plain words), or the operator (everything else, with
//! ffmpeg's own words kept in `stderr_tail`).

use std::time::Duration;
use turtlemen_storage::StorageError;

/// Why processing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The file cannot become a video; the message is for the video's owner (no ffmpeg
    /// jargon). Retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// The options cannot work (an unknown preset, a zero segment length); fix the configuration.
    #[error("invalid media options: {0}")]
    InvalidOptions(String),
    /// ffmpeg or ffprobe failed on a file that looked valid, or could not be started.
    #[error("{message}")]
    Failed { message: String, stderr_tail: String },
    /// ffmpeg made no progress for too long, or ran past the overall limit; it was killed.
    #[error("ffmpeg was stopped: {reason}")]
    TimedOut { reason: Timeout, stderr_tail: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Which limit a killed ffmpeg hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No progress reported for this long.
    Stalled(Duration),
    /// The whole run took longer than this.
    Total(Duration),
}

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Timeout::Stalled(d) => write!(f, "no progress for {} s", d.as_secs_f64()),
            Timeout::Total(d) => write!(f, "still running after {} s", d.as_secs_f64()),
        }
    }
}

impl ProcessError {
    /// Whether running the same job again cannot succeed (the file or the options are at
    /// fault, not the machine).
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProcessError::Rejected(_) | ProcessError::InvalidOptions(_))
    }

    /// ffmpeg's last words, when it ran.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            ProcessError::Failed { stderr_tail, .. } | ProcessError::TimedOut { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
        let context = context.into();
        move |source| ProcessError::Io { context, source }
    }
}
