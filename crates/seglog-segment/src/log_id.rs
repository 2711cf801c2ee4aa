//! The log directory's `LOG_ID` file (the bytes: `format::LogId`, docs/format.md §9):
//! read at every open, made once by the first writer's open, copied by backups and restores.

use crate::format::{LogId, LOG_ID_FILE_LEN, LOG_ID_FILE_NAME, LOG_ID_TEMP_FILE_NAME};
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use std::io;
use std::path::Path;

/// The identity of the log in `dir`; `None` when it has none yet (a log made by a build
/// before identities, never opened for writing since).
///
/// # Errors
/// [`Error::DamagedFile`] for a file that is not a log id this build reads; I/O errors.
pub fn read<F: FileSystem>(fs: &F, dir: &Path) -> Result<Option<LogId>> {
    let path = dir.join(LOG_ID_FILE_NAME);
    let file = match fs.open_read_only(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let damaged = |reason: &str| Error::DamagedFile {
        path: path.clone(),
        reason: format!(
            "{reason}: the log's identity is damaged; `seglog repair <dir> --log-id <id>` \
             writes it again (the id `seglog remote status <url>` prints for a log shipped to \
             a bucket), `--new-log-id` gives a log that was never shipped a new one"
        ),
    };
    // Checked before reading: the length is the file's, not ours to trust.
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    if len != LOG_ID_FILE_LEN as u64 {
        return Err(damaged("not 32 bytes long"));
    }
    let mut bytes = [0u8; LOG_ID_FILE_LEN];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    LogId::decode(&bytes).map(Some).map_err(damaged)
}

/// `found` (what [`read`] returned before recovery, so that a damaged identity stops an open
/// before it cuts anything), or a new identity made now (random, durable) if there was none.
///
/// # Errors
/// I/O errors making the file.
pub(crate) fn ensure<F: FileSystem>(fs: &F, dir: &Path, found: Option<LogId>) -> Result<LogId> {
    if let Some(id) = found {
        return Ok(id);
    }
    let id = LogId::random().map_err(|e| Error::io("getrandom", dir, e))?;
    write(fs, dir, id)?;
    tracing::info!(dir = %dir.display(), log_id = %id, "the log has a new identity");
    Ok(id)
}

/// Makes `id` the identity of the log in `dir`, durably (a temp file, synced, renamed over
/// `LOG_ID`, the directory synced): a crash leaves the old file or the new one, whole.
/// For a new log, a backup's copy and a restore's destination.
///
/// # Errors
/// I/O errors.
pub fn write<F: FileSystem>(fs: &F, dir: &Path, id: LogId) -> Result<()> {
    crate::io::replace_file_durably(
        fs,
        dir,
        LOG_ID_FILE_NAME,
        LOG_ID_TEMP_FILE_NAME,
        &id.encode(),
    )
}
