//! Replacing sealed segments by new ones, crash-atomically (docs/format.md §6).
//!
//! The protocol, in order:
//! 1. The new segments are written under temporary names and fsynced (`builder`).
//! 2. The manifest is written to `REPLACE.tmp`, fsynced, renamed to `REPLACE`, and the
//!    directory fsynced. **This is the commit point**: before it, recovery removes the
//!    temporary files and the old segments stay; after it, recovery finishes the switch.
//! 3. [`apply_manifest`]: each new segment is renamed to its real name (which may replace an
//!    old segment of the same first LSN), the other old segments are removed, the directory
//!    is fsynced.
//! 4. `REPLACE` is removed and the directory fsynced.
//!
//! Step 3 is idempotent, so a crash during it, or during its rerun by recovery, only means
//! running it again. An old segment is removed only if its header still carries the number
//! the manifest gives it, so a manifest can never remove a segment written after it.

use crate::format::{
    segment_file_name, ReplacementManifest, SegmentHeader, MANIFEST_FILE_NAME, MANIFEST_MAX_LEN,
    MANIFEST_TEMP_FILE_NAME, REPLACEMENT_TEMP_SUFFIX, SEGMENT_HEADER_LEN,
};
use crate::io::{FileSystem, SegmentFile};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// The temporary name of the segment that will be called `final_path`.
pub(crate) fn temp_path_for(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(REPLACEMENT_TEMP_SUFFIX);
    PathBuf::from(name)
}

fn corrupt(reason: String) -> Error {
    Error::Corruption {
        segment: 0,
        offset: 0,
        reason,
    }
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_present<F: FileSystem>(fs: &F, path: &Path) -> Result<bool> {
    match fs.remove(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Steps 2: makes `manifest` the committed manifest of `dir`. When this returns Ok, the
/// replacement will happen, even if the process dies now.
///
/// By path, so `guard` is checked right before the manifest is created and right before its
/// rename (review 46): a directory moved meanwhile, another log opened at its path, must not
/// receive this log's committed manifest (that log's next open would carry it out). A temp
/// manifest created there in the window between check and creation is left to that log's
/// next open, which discards it as a crashed compaction's.
pub(crate) fn commit_manifest<F: FileSystem>(
    fs: &F,
    guard: &crate::DirGuard,
    manifest: &ReplacementManifest,
) -> Result<()> {
    let dir = guard.dir();
    let tmp = dir.join(MANIFEST_TEMP_FILE_NAME);
    let path = dir.join(MANIFEST_FILE_NAME);
    guard.check(fs)?;
    remove_if_present(fs, &tmp)?;
    let file = fs
        .create_new(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all_at(&manifest.encode(), 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    // IMPORTANT: the manifest's bytes must be durable before its name is: a torn manifest
    // under the final name could not be told from damage.
    file.sync_data()
        .map_err(|e| Error::io("sync_data", &tmp, e))?;
    drop(file);
    // IMPORTANT: the new segments' names are durable before the manifest's can be. One
    // fsync after the rename would not do: a file system that does not keep directory
    // operations in order (ext4 without a journal, among others) can persist the rename and
    // lose a creation before it, leaving a manifest that names a missing file (review 20).
    if !crate::teeth::skipped(crate::teeth::SyncPoint::ReplacementNamesDirFsync) {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    guard.check(fs)?;
    fs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &path, e))?;
    // IMPORTANT: the commit point.
    if !crate::teeth::skipped(crate::teeth::SyncPoint::ManifestDirFsync) {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(())
}

/// The segment number in the header of the file at `path`; `None` when the file is missing,
/// `Some(None)` when its header does not decode.
fn header_number<F: FileSystem>(fs: &F, path: &Path) -> Result<Option<Option<u64>>> {
    let file = match fs.open_read_only(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(Some(
            SegmentHeader::decode(&buf).ok().map(|h| h.segment_number),
        )),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(None)),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Step 3 (idempotent): puts the outputs in place and removes the inputs.
pub(crate) fn apply_manifest<F: FileSystem>(
    fs: &F,
    dir: &Path,
    manifest: &ReplacementManifest,
) -> Result<()> {
    let mut output_names = BTreeSet::new();
    for o in &manifest.outputs {
        let final_path = dir.join(segment_file_name(o.first_lsn));
        let temp = temp_path_for(&final_path);
        output_names.insert(o.first_lsn);
        match fs.open_read_only(&temp) {
            Ok(file) => {
                let len = file.len().map_err(|e| Error::io("stat", &temp, e))?;
                if len != o.len {
                    return Err(corrupt(format!(
                        "{} holds {len} bytes but the replacement manifest says {}",
                        temp.display(),
                        o.len
                    )));
                }
                drop(file);
                fs.rename(&temp, &final_path)
                    .map_err(|e| Error::io("rename", &final_path, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed by an earlier run of this step: it must be there now.
                if header_number(fs, &final_path)? != Some(Some(o.segment_number)) {
                    return Err(corrupt(format!(
                        "the replacement manifest names segment {} at {}, which is missing",
                        o.segment_number,
                        final_path.display()
                    )));
                }
            }
            Err(e) => return Err(Error::io("open", &temp, e)),
        }
    }
    for i in &manifest.inputs {
        if output_names.contains(&i.first_lsn) {
            continue; // the rename above replaced it
        }
        let path = dir.join(segment_file_name(i.first_lsn));
        match header_number(fs, &path)? {
            None => {}
            // Only segment files can carry that name; an undecodable header is the old
            // segment's (every later segment starts at a later LSN).
            Some(n) if n.is_none() || n == Some(i.segment_number) => {
                remove_if_present(fs, &path)?;
            }
            Some(other) => {
                tracing::warn!(path = %path.display(), ?other, expected = i.segment_number, "replacement input has another segment's number; left in place")
            }
        }
    }
    // IMPORTANT: the renames and removals are durable before the manifest may go.
    fs.sync_dir(dir)
        .map_err(|e| Error::io("sync_dir", dir, e))?;
    Ok(())
}

/// Step 4: forgets the manifest once it is carried out.
pub(crate) fn retire_manifest<F: FileSystem>(fs: &F, dir: &Path) -> Result<()> {
    remove_if_present(fs, &dir.join(MANIFEST_FILE_NAME))?;
    // IMPORTANT: a manifest that outlived its replacement would be carried out again at the
    // next open; the header check keeps that harmless, this fsync keeps it rare.
    fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}

/// What [`finish_at_open`] did.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// A committed replacement was carried out.
    pub rolled_forward: bool,
    /// Temporary files of an uncommitted replacement were removed.
    pub discarded_files: usize,
}

/// Recovery's part: carries out a committed replacement, discards an uncommitted one.
pub(crate) fn finish_at_open<F: FileSystem>(fs: &F, dir: &Path) -> Result<Finished> {
    let mut done = Finished::default();
    let path = dir.join(MANIFEST_FILE_NAME);
    match fs.open_read_only(&path) {
        Ok(file) => {
            let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
            if len > MANIFEST_MAX_LEN {
                return Err(corrupt(format!(
                    "{} is {len} bytes, more than any manifest",
                    path.display()
                )));
            }
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, 0)
                .map_err(|e| Error::io("read", &path, e))?;
            let manifest = ReplacementManifest::decode(&bytes)
                .map_err(|reason| corrupt(format!("{}: {reason}", path.display())))?;
            tracing::warn!(
                inputs = manifest.inputs.len(),
                outputs = manifest.outputs.len(),
                "finishing a compaction that a crash interrupted"
            );
            apply_manifest(fs, dir, &manifest)?;
            retire_manifest(fs, dir)?;
            done.rolled_forward = true;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("open", &path, e)),
    }
    let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    for name in names {
        if name.ends_with(REPLACEMENT_TEMP_SUFFIX) || name == MANIFEST_TEMP_FILE_NAME {
            remove_if_present(fs, &dir.join(&name))?;
            done.discarded_files += 1;
        }
    }
    if done.discarded_files > 0 {
        tracing::warn!(
            files = done.discarded_files,
            "discarded the files of a compaction that never committed"
        );
        // IMPORTANT: the removals must be durable before a new compaction reuses the names.
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(done)
}
