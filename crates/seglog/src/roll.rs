//! Sealing the active segment on demand, and poisoning the log from outside: the two hooks
//! a layer that ships sealed segments elsewhere (`seglog-tier`) needs from the engine.
//!
//! - [`Log::roll_blocking`] seals the active segment now, so that a restored log's first
//!   append goes to a fresh segment number and the shipped segments never change again.
//! - [`Log::poison`] stops every later append, for a layer that learns the log must not be
//!   written any more (another node has taken ownership of it).

use crate::{Error, Log, Result};
use seglog_segment::io::FileSystem;

impl<F: FileSystem + Clone> Log<F> {
    /// Seals the active segment if it holds any record and starts a new one, with a fresh
    /// segment number; returns the number of the segment sealed (`None` when the active
    /// segment was empty and nothing changed). When it returns, every record appended
    /// before the call is durable and in a sealed segment.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadOnly`] for a read-only log, and the writer's errors
    /// (poisoning, I/O).
    pub fn roll_blocking(&self) -> Result<Option<u64>> {
        self.check_open()?;
        if self.shared.segments.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(self.shared.segments.roll()?)
    }

    /// [`Self::roll_blocking`] off the async runtime's threads (in place outside a tokio
    /// runtime).
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the work: it runs on tokio's blocking pool to its
    /// end, so the segment may be sealed after the future is gone.
    ///
    /// # Errors
    /// As [`Self::roll_blocking`].
    pub async fn roll(&self) -> Result<Option<u64>> {
        let log = self.clone();
        crate::offload::run_blocking("roll", move || log.roll_blocking()).await
    }
}

impl<F: FileSystem> Log<F> {
    /// Poisons the log: every later append fails with a poisoning error naming `cause`,
    /// until the log is reopened; reads go on. For a layer above that learns the log must
    /// not be written any more (`seglog-tier` calls it when another node has fenced this
    /// one). Idempotent: the first cause is kept.
    pub fn poison(&self, cause: &str) {
        self.shared.segments.poison(&seglog_segment::Error::Io {
            op: "poison",
            path: self.shared.dir.clone(),
            source: std::io::Error::other(cause.to_string()),
        });
    }
}
