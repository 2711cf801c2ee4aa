//! Running blocking work (opening, compacting, backing up a log) from async code: on tokio's
//! blocking pool when there is a tokio runtime, in place otherwise (another executor, or a
//! plain `block_on`), where there is no pool to hand it to and the caller's thread is the
//! one that waits anyway.

use crate::{Error, Result};

/// Runs `work` off the async runtime's worker threads where there is a runtime; `what` names
/// it in the error of a task that could not finish (a panic, a runtime shutting down).
pub(crate) async fn run_blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::InvalidOptions(format!("{what} task failed: {e}")))?
}
