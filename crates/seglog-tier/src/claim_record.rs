//! The claim a log directory was last written under (`TIER_CLAIM`, docs/scale-out.md
//! "Ownership"): the epoch and nonce of the claim a node made for it, written durably
//! **before** that claim's manifest PUT.
//!
//! Why: a node whose log another node took over must not take it back with its old
//! directory. When the new owner has shipped something, the old directory no longer
//! continues the bucket's log and the divergence check refuses it; but until then the
//! newest manifest (the new owner's claim) names exactly what the old directory holds, and
//! the old node's claim would fence the live owner, whose appends since its claim exist only
//! on its own disk. The record tells the two apart: a newest manifest with a higher epoch,
//! or the recorded epoch with another nonce, is someone else's claim.
//!
//! Written before the PUT, so that a crash between the two never makes a node's own claim
//! look like a stranger's; a record whose claim never landed has an epoch above the
//! newest manifest's, which is no one else's claim either. A directory without the file (a
//! log shipped by an older build, or never claimed) is not checked.

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::staging::{io, sync_dir};
use std::io::Write;
use std::path::Path;

/// File name of the record in a log directory.
pub const CLAIM_RECORD_FILE_NAME: &str = "TIER_CLAIM";

/// Name it is written under before the rename that replaces the previous record.
const TEMP_NAME: &str = "TIER_CLAIM.tmp";

/// First line of the file.
const MAGIC: &str = "seglog-tier claim 1";

/// The file is a few dozen bytes; anything longer is not one.
const MAX_BYTES: u64 = 4096;

/// A claim made for a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimRecord {
    pub epoch: u64,
    pub nonce: String,
}

impl ClaimRecord {
    fn encode(&self) -> String {
        format!("{MAGIC}\nepoch {}\nnonce {}\n", self.epoch, self.nonce)
    }

    fn decode(text: &str) -> Option<ClaimRecord> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let epoch = lines.next()?.strip_prefix("epoch ")?.parse().ok()?;
        let nonce = lines.next()?.strip_prefix("nonce ")?;
        let well_formed = !nonce.is_empty()
            && nonce.len() <= 64
            && nonce.bytes().all(|b| b.is_ascii_hexdigit())
            && lines.next().is_none();
        well_formed.then(|| ClaimRecord {
            epoch,
            nonce: nonce.to_string(),
        })
    }

    /// The record in `dir`, if there is one.
    ///
    /// # Errors
    /// I/O errors; [`Error::Corruption`] for a file that is not a record.
    pub fn read(dir: &Path) -> Result<Option<ClaimRecord>> {
        let path = dir.join(CLAIM_RECORD_FILE_NAME);
        // Only a regular file: opening a FIFO (or a device) would block, or read forever.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(Error::Corruption {
                    key: path.display().to_string(),
                    reason: "not a regular file".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("stat", &path)(e)),
        }
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &path)(e)),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut text)
            .map_err(io("read", &path))?;
        ClaimRecord::decode(&text)
            .map(Some)
            .ok_or(Error::Corruption {
                key: path.display().to_string(),
                reason: "not a claim record".into(),
            })
    }

    /// Writes the record into `dir` durably (temp file, fsync, rename, directory fsync).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let temp = dir.join(TEMP_NAME);
        let path = dir.join(CLAIM_RECORD_FILE_NAME);
        // A new file of our own: whatever the name held (a crash's leftover, or a FIFO or a
        // symlink someone put there) is removed, not opened or followed (review 28).
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &temp)(e)),
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io("create", &temp))?;
        file.write_all(self.encode().as_bytes())
            .map_err(io("write", &temp))?;
        file.sync_all().map_err(io("fsync", &temp))?;
        std::fs::rename(&temp, &path).map_err(io("rename", &path))?;
        sync_dir(dir)
    }

    /// The nonce to claim with after `newest` (`None`: the prefix is empty): this record's,
    /// when it is a claim of this directory at exactly the epoch that claim would have,
    /// whose outcome is unknown (its PUT may still land, or have landed unseen); so that a
    /// retry settles against it as the node's own earlier attempt rather than losing to
    /// it. `None`: draw a new one.
    pub fn unconfirmed_nonce(&self, newest: Option<&Manifest>) -> Option<String> {
        let next_epoch = newest.map_or(1, |m| m.writer_epoch.saturating_add(1));
        (self.epoch == next_epoch).then(|| self.nonce.clone())
    }

    /// Fails when `newest` is a claim by another node made after this record's: the
    /// directory's log was taken over.
    ///
    /// # Errors
    /// [`Error::TakenOver`].
    pub fn check_still_ours(&self, dir: &Path, newest: &Manifest) -> Result<()> {
        let newer = newest.writer_epoch > self.epoch
            || (newest.writer_epoch == self.epoch && newest.writer_nonce != self.nonce);
        if newer {
            return Err(Error::TakenOver {
                dir: dir.to_path_buf(),
                own_epoch: self.epoch,
                newer_epoch: newest.writer_epoch,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_record_reads_back_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ClaimRecord::read(dir.path()).unwrap(), None);
        let record = ClaimRecord {
            epoch: 7,
            nonce: "00ff".into(),
        };
        record.write(dir.path()).unwrap();
        assert_eq!(ClaimRecord::read(dir.path()).unwrap(), Some(record));
        for bad in [
            "",
            "seglog-tier claim 1\nepoch x\nnonce 00\n",
            "seglog-tier claim 1\nepoch 1\nnonce zz\n",
            "seglog-tier claim 1\nepoch 1\nnonce 00\nmore\n",
            "seglog-tier claim 2\nepoch 1\nnonce 00\n",
        ] {
            std::fs::write(dir.path().join(CLAIM_RECORD_FILE_NAME), bad).unwrap();
            assert!(ClaimRecord::read(dir.path()).is_err(), "{bad:?}");
        }
        // A huge file is not read whole.
        std::fs::write(dir.path().join(CLAIM_RECORD_FILE_NAME), vec![b'a'; 1 << 20]).unwrap();
        assert!(ClaimRecord::read(dir.path()).is_err());
    }
}
