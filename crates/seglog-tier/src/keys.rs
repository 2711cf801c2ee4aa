//! Object keys under a log's prefix (docs/scale-out.md, "Bucket layout").
//!
//! ```text
//! <prefix>/manifest/<id:020>
//! <prefix>/segments/<first_lsn:020>-<number:020>-<salt:016x>-e<epoch:020>.seg
//! <prefix>/checkpoints/<first_lsn:020>-<number:020>-<salt:016x>-e<epoch:020>.idx
//! <prefix>/chunks/<first_lsn:020>-<number:020>-<salt:016x>-e<epoch:020>/<index:020>
//! ```
//!
//! A chunk's key has no epoch of its own: the chunks of one active segment are numbered
//! 0, 1, 2 … in one folder (named with the epoch of the writer that first named the segment
//! active), so a fenced writer's next chunk collides with the end marker a restore wrote.
//!
//! A segment's key names the segment (first LSN, number, random salt: a compaction output
//! that takes an input's name has another salt) and the epoch of the writer that uploaded
//! it. Every key is written with `PutMode::Create` and never overwritten, so two writers can
//! never write the same key: the newer owner's objects always carry a higher epoch than the
//! zombie's, which is what lets orphan collection leave them alone.

use object_store::path::Path;

/// Folder of the manifests.
pub const MANIFEST_DIR: &str = "manifest";
/// Folder of the segments.
pub const SEGMENT_DIR: &str = "segments";
/// Folder of the index checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// Folder of the active segments' chunks (one folder per active segment).
pub const CHUNK_DIR: &str = "chunks";

/// `<prefix>/manifest/`.
pub fn manifest_dir(prefix: &Path) -> Path {
    prefix.clone().join(MANIFEST_DIR)
}

/// The key of manifest `id`.
pub fn manifest_key(prefix: &Path, id: u64) -> Path {
    manifest_dir(prefix).join(format!("{id:020}"))
}

/// The manifest id of a key listed under `manifest/` (`None` for anything else).
pub fn parse_manifest_id(key: &Path) -> Option<u64> {
    let name = key.filename()?;
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

fn stem(first_lsn: u64, number: u64, salt: u64, epoch: u64) -> String {
    format!("{first_lsn:020}-{number:020}-{salt:016x}-e{epoch:020}")
}

/// The key a segment is uploaded to by the writer of `epoch`.
pub fn segment_key(prefix: &Path, first_lsn: u64, number: u64, salt: u64, epoch: u64) -> Path {
    prefix
        .clone()
        .join(SEGMENT_DIR)
        .join(format!("{}.seg", stem(first_lsn, number, salt, epoch)))
}

/// The key a segment's checkpoint is uploaded to by the writer of `epoch`.
pub fn checkpoint_key(prefix: &Path, first_lsn: u64, number: u64, salt: u64, epoch: u64) -> Path {
    prefix
        .clone()
        .join(CHECKPOINT_DIR)
        .join(format!("{}.idx", stem(first_lsn, number, salt, epoch)))
}

/// The folder of the chunks of `active`.
pub fn chunk_folder(prefix: &Path, active: &crate::manifest::ActiveSegment) -> Path {
    prefix.clone().join(CHUNK_DIR).join(stem(
        active.first_lsn,
        active.number,
        active.record_salt,
        active.chunks_epoch,
    ))
}

/// The key of chunk `index` in `folder`.
pub fn chunk_key(folder: &Path, index: u64) -> Path {
    folder.clone().join(format!("{index:020}"))
}

/// The index of a chunk key (`None` for anything else).
pub fn parse_chunk_index(key: &Path) -> Option<u64> {
    let name = key.filename()?;
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// The epoch in a chunk folder's name (`None` for a name this build did not write).
pub fn parse_chunk_folder_epoch(name: &str) -> Option<u64> {
    parse_stem_epoch(name)
}

/// The epoch of the writer that uploaded a segment or checkpoint key (`None` for a key this
/// build did not write: orphan collection never deletes those).
pub fn parse_object_epoch(key: &Path) -> Option<u64> {
    let name = key.filename()?;
    let stem = name
        .strip_suffix(".seg")
        .or_else(|| name.strip_suffix(".idx"))?;
    parse_stem_epoch(stem)
}

fn parse_stem_epoch(stem: &str) -> Option<u64> {
    let mut parts = stem.split('-');
    let (lsn, number, salt, epoch) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || lsn.len() != 20 || number.len() != 20 || salt.len() != 16 {
        return None;
    }
    let epoch = epoch.strip_prefix('e')?;
    if epoch.len() != 20 || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    epoch.parse().ok()
}

/// True when `key` sits directly in `dir` (not in a folder below it, where another log's
/// prefix may nest: listings are recursive; review 12).
pub(crate) fn directly_in(dir: &Path, key: &Path) -> bool {
    key.prefix_match(dir)
        .is_some_and(|mut rest| rest.next().is_some() && rest.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_their_ids_and_epochs() {
        let prefix = Path::from("logs/p7");
        let m = manifest_key(&prefix, 42);
        assert_eq!(m.as_ref(), "logs/p7/manifest/00000000000000000042");
        assert_eq!(parse_manifest_id(&m), Some(42));
        assert_eq!(parse_manifest_id(&Path::from("logs/p7/manifest/42")), None);
        let s = segment_key(&prefix, 5, 2, 0xabc, 9);
        assert_eq!(
            s.as_ref(),
            "logs/p7/segments/00000000000000000005-00000000000000000002-0000000000000abc-e00000000000000000009.seg"
        );
        assert_eq!(parse_object_epoch(&s), Some(9));
        assert_eq!(
            parse_object_epoch(&checkpoint_key(&prefix, 5, 2, 0xabc, 10)),
            Some(10)
        );
        assert_eq!(
            parse_object_epoch(&Path::from("logs/p7/segments/x.seg")),
            None
        );
    }
}
