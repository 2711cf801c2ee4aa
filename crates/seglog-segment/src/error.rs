//! The segment layer's one error type.
//!
//! Corruption is kept apart from I/O: an `Io` error says the operating system refused
//! something, a `Corruption` says the bytes on disk are not what the writer wrote.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the segment layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system failed an operation on `path`.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done (`"write"`, `"sync_data"`, `"open"` …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },

    /// A file of the log other than a segment (its identity, `LOG_ID`) holds bytes a correct
    /// writer cannot have produced.
    #[error("damaged file {}: {reason}", path.display())]
    DamagedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do about it, for a human.
        reason: String,
    },

    /// Bytes on disk that a correct writer cannot have produced.
    #[error("corruption in segment {segment} at offset {offset}: {reason}")]
    Corruption {
        /// Segment number (from its header), or 0 when the header itself is unreadable.
        segment: u64,
        /// Byte offset of the bad record or header within the segment file.
        offset: u64,
        /// What is wrong, for a human.
        reason: String,
    },

    /// A record whose checksum does not match its bytes, read outside recovery.
    #[error("checksum mismatch in segment {segment} at offset {offset}")]
    ChecksumMismatch {
        /// Segment number.
        segment: u64,
        /// Byte offset of the record.
        offset: u64,
    },

    /// A write or fsync failed earlier; nothing more is accepted until the log is reopened.
    ///
    /// After a failed fsync the kernel may have dropped the dirty pages and cleared the error
    /// (PostgreSQL's "fsyncgate"), so retrying and trusting a later fsync would be a lie.
    #[error("the log is poisoned by an earlier I/O failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the log; its source is the operating system's error
        /// (so that a full disk, `ENOSPC`, is told apart from a failing one, `EIO`).
        #[source]
        cause: PoisonCause,
    },

    /// An append larger than the configured maximum record size. Nothing was written.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    TooLarge {
        /// Encoded size of the record that was refused.
        size: u64,
        /// The configured limit.
        max: u64,
    },

    /// An execution or tenant id outside the 1..=255 byte limit, or an empty batch.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),

    /// Another process (or another `open` in this one) holds the directory's lock.
    #[error("log directory {} is locked by another writer", dir.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },

    /// The log was closed; no further appends or reads are served.
    #[error("the log is closed")]
    Closed,

    /// The segment was written by a format version this build does not read.
    #[error("segment {} has format version {found}; this build reads versions 1 to {supported}", path.display())]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// Version found in the header.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },

    /// The options cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// A position that does not name a record of this log.
    #[error("no record at segment {segment} offset {offset}")]
    NoSuchRecord {
        /// Segment number.
        segment: u64,
        /// Byte offset.
        offset: u64,
    },

    /// A wait for a record that was never submitted: no round would ever make it durable.
    #[error("no record with LSN {lsn} was submitted (the next LSN is {next_lsn})")]
    NotSubmitted {
        /// The LSN waited for.
        lsn: u64,
        /// The LSN the next submit takes.
        next_lsn: u64,
    },

    /// The log is open read-only ([`crate::SegmentLog::open_read_only`]): appends, syncs,
    /// rolls and replacements are refused, and nothing was written.
    #[error("the log is open read-only")]
    ReadOnly,

    /// A reader without the directory lock could not find the directory's segments in a
    /// consistent state: they kept changing (or a crashed compaction waits for the next
    /// writer's open to finish it). Nothing was changed; retry later.
    #[error("log directory {} kept changing while it was read without a lock; retry", dir.display())]
    DirectoryChanging {
        /// The log directory.
        dir: PathBuf,
    },

    /// The log's directory was renamed or removed while the log was open: its path no longer
    /// names the directory the log locked. The change that needed the directory (a roll, a
    /// checkpoint, a compaction) was refused before touching it, so nothing was written into
    /// whatever the path names now. Close the log and open it where its directory is.
    #[error(
        "log directory {} was moved or removed while the log was open (the path no longer names the directory the log locked); reopen the log where its directory is now",
        dir.display()
    )]
    DirectoryMoved {
        /// The path the log was opened at.
        dir: PathBuf,
    },

    /// The directory holds a restore's marker (`RESTORE_IN_PROGRESS`): a restore is writing
    /// it, or one was interrupted and it may hold part of a log. Run the restore again (it
    /// clears what the interrupted one left), or remove the directory.
    #[error(
        "{} holds an unfinished restore (RESTORE_IN_PROGRESS): restore again, or remove it",
        dir.display()
    )]
    RestoreInProgress {
        /// The directory.
        dir: PathBuf,
    },

    /// A backup's destination exists and is not an empty directory. Nothing was written.
    #[error("backup destination {} is not empty", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },

    /// A segment replacement (compaction) that would break the log's order, or that names
    /// segments which are not sealed segments of this log. Nothing was changed.
    #[error("invalid segment replacement: {0}")]
    InvalidReplacement(String),
}

impl Error {
    /// Wraps an `io::Error` with the operation and path it concerns.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when another writer holds the log directory ([`Error::Locked`]).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }

    /// True when the log is poisoned by an earlier write or fsync failure.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned { .. })
    }

    /// What poisoned the log, for [`Error::Poisoned`].
    pub fn poison_cause(&self) -> Option<&PoisonCause> {
        match self {
            Error::Poisoned { cause } => Some(cause),
            _ => None,
        }
    }

    /// True for errors that mean the bytes on disk are damaged (as opposed to the OS failing).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corruption { .. } | Error::ChecksumMismatch { .. } | Error::DamagedFile { .. }
        )
    }
}

/// Why a log was poisoned: the failure's message and, when the operating system refused an
/// operation, its error (kind and `errno`), kept as this error's source. Cheap to clone:
/// every later call on the poisoned log reports the same cause.
#[derive(Debug, Clone)]
pub struct PoisonCause {
    message: Arc<str>,
    os: Option<Arc<io::Error>>,
}

impl PoisonCause {
    /// The cause of `error`, which poisons a log.
    pub(crate) fn of(error: &Error) -> Self {
        let os = match error {
            Error::Io { source, .. } => Some(Arc::new(match source.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(source.kind(), source.to_string()),
            })),
            // Poisoned again by a step that found the log poisoned: the first cause stands.
            Error::Poisoned { cause } => return cause.clone(),
            _ => None,
        };
        PoisonCause {
            message: Arc::from(error.to_string()),
            os,
        }
    }

    /// A cause that is not an error of the operating system's (a panic in a commit round).
    pub(crate) fn other(message: &str) -> Self {
        PoisonCause {
            message: Arc::from(message),
            os: None,
        }
    }

    /// The kind of the operating system's error, when an I/O failure poisoned the log.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        self.os.as_deref().map(io::Error::kind)
    }

    /// The operating system's error code (`errno`), when it gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os.as_deref().and_then(io::Error::raw_os_error)
    }
}

impl std::fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PoisonCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.os
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
