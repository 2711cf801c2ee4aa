//! Restore: claim the log, download what the newest manifest names into an empty directory
//! (and the active segment's durable prefix from its chunks), check every byte against the
//! manifest, then open it with the engine's normal recovery and
//! roll, so the first append goes to a fresh segment number and no shipped segment changes.
//!
//! What must hold: nothing is written into the directory that does not match its manifest
//! entry (length, CRC-32, and for a segment its header's number, first LSN and salt), and the
//! log is opened only once every file is in place and synced.

use crate::claim::Tier;
use crate::error::{Error, Result};
use crate::manifest::{ObjectRef, SegmentEntry};
use crate::objects;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStore;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// A restored log, ready to append to, and the claim that owns it.
#[derive(Debug)]
pub struct Restored {
    /// The claim: ship the log through it ([`Tier::ship`]).
    pub tier: Tier,
    /// The log, opened by the normal recovery, its last shipped segment sealed.
    pub log: seglog::Log,
    /// What was downloaded.
    pub report: RestoreReport,
}

/// What a restore downloaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The manifest restored from (the claim's).
    pub manifest_id: u64,
    /// Segments downloaded.
    pub segments: usize,
    /// Checkpoints downloaded.
    pub checkpoints: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// The highest LSN restored (0 for an empty log).
    pub last_lsn: u64,
    /// Bytes of the active segment rebuilt from its chunks (0: none, or no chunk shipping).
    pub active_bytes: u64,
}

/// Claims the log under `prefix` and restores it into `dir` (which must be absent or
/// empty), then opens it with `options`. The previous owner is fenced from the claim on.
/// When the manifest names an active segment (chunk shipping), its durable prefix is
/// rebuilt from its chunks, which an end marker then closes.
///
/// # Errors
/// [`Error::DestinationNotEmpty`]; the claim's errors ([`Error::ClaimLost`] …); store
/// errors; [`Error::Corruption`] when an object is missing or differs from its manifest
/// entry (nothing is opened then; the directory holds what was downloaded so far: remove it
/// before retrying); the log's open errors.
pub async fn restore(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    dir: impl Into<PathBuf>,
    options: seglog::Options,
) -> Result<Restored> {
    let dir = dir.into();
    check_empty(&dir)?;
    let tier = Tier::claim(store, prefix).await?;
    let manifest = tier.manifest().await;
    let mut report = RestoreReport {
        manifest_id: manifest.manifest_id,
        last_lsn: manifest.last_lsn(),
        ..RestoreReport::default()
    };
    create_dir(&dir)?;
    for entry in &manifest.segments {
        let bytes = fetch_segment(tier.store().as_ref(), entry).await?;
        write_file(
            &dir,
            &seglog_segment::format::segment_file_name(entry.first_lsn),
            &bytes,
        )
        .await?;
        report.segments += 1;
        report.bytes += bytes.len() as u64;
        if let Some(checkpoint) = &entry.checkpoint {
            let bytes = fetch_object(tier.store().as_ref(), checkpoint).await?;
            let name = seglog_index::checkpoint::checkpoint_file_name(entry.first_lsn);
            write_file(&dir, &name, &bytes).await?;
            report.checkpoints += 1;
            report.bytes += bytes.len() as u64;
        }
    }
    // The active segment's durable prefix, from its chunks (after which the previous owner
    // can upload none: an end marker closes them).
    let mut expected: Vec<(u64, u64, u64, u64)> = manifest
        .segments
        .iter()
        .map(|e| (e.number, e.first_lsn, e.record_salt, e.segment.len))
        .collect();
    if let Some(active) = &manifest.active {
        if let Some(bytes) = crate::active::rebuild(&tier, active).await? {
            let name = seglog_segment::format::segment_file_name(active.first_lsn);
            write_file(&dir, &name, &bytes).await?;
            report.active_bytes = bytes.len() as u64;
            report.bytes += bytes.len() as u64;
            expected.push((
                active.number,
                active.first_lsn,
                active.record_salt,
                bytes.len() as u64,
            ));
        } else {
            // No record in its chunks (it was empty when it was named, or its owner was
            // lost before chunk 0), and the end marker keeps it so: the restored log will
            // not have it, so the manifest stops naming it (review 14).
            tier.forget_empty_active(active).await?;
        }
    }
    sync_dir(&dir).await?;
    let log = seglog::Log::open(dir, options).await?;
    // IMPORTANT: the last restored segment would otherwise be the active one, and the
    // first append would change a segment the manifest names (or the previous owner's
    // chunks hold). Rolling seals it as it is.
    log.roll().await?;
    let restored: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    report.last_lsn = restored.iter().map(|s| s.last_lsn).max().unwrap_or(0);
    let matches = restored.len() == expected.len()
        && restored
            .iter()
            .zip(&expected)
            .all(|(s, &(number, first_lsn, salt, len))| {
                s.number == number
                    && s.first_lsn == first_lsn
                    && s.record_salt == salt
                    && s.data_end == len
            });
    if !matches {
        return Err(Error::Corruption {
            key: crate::keys::manifest_key(tier.prefix(), manifest.manifest_id).to_string(),
            reason: "the restored log's sealed segments differ from the manifest's".into(),
        });
    }
    tracing::info!(
        segments = report.segments,
        bytes = report.bytes,
        last_lsn = report.last_lsn,
        "restored log"
    );
    Ok(Restored { tier, log, report })
}

fn check_empty(dir: &FsPath) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Error::DestinationNotEmpty(dir.to_path_buf())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            op: "read_dir",
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

fn create_dir(dir: &FsPath) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        op: "create_dir",
        path: dir.to_path_buf(),
        source: e,
    })
}

/// Downloads the segment `entry` names and checks it as [`restore`] does: its length and
/// CRC-32 are the manifest's, and its header (magic, CRC, segment number, first LSN, salt)
/// is that segment's. Reads only (`seglog remote verify` and `dump` use it).
///
/// # Errors
/// [`Error::Corruption`] when the object is missing or differs from `entry`; store errors.
pub async fn fetch_segment(store: &dyn ObjectStore, entry: &SegmentEntry) -> Result<Bytes> {
    let bytes = fetch_object(store, &entry.segment).await?;
    check_segment_header(entry, &bytes)?;
    Ok(bytes)
}

/// Downloads an object a manifest names (a segment or a checkpoint), refusing it unless its
/// length and CRC-32 are the manifest's. Never reads more than the manifest's length.
///
/// # Errors
/// [`Error::Corruption`] when the object is missing or differs from `object`; store errors.
pub async fn fetch_object(store: &dyn ObjectStore, object: &ObjectRef) -> Result<Bytes> {
    let key = Path::from(object.key.as_str());
    let bytes = objects::get_bounded(store, &key, object.len)
        .await?
        .ok_or_else(|| Error::corruption(&key, "named by the manifest but missing"))?;
    if bytes.len() as u64 != object.len || crc32fast::hash(&bytes) != object.crc32 {
        return Err(Error::corruption(
            &key,
            format!(
                "{} bytes that differ from the manifest's {} bytes and CRC",
                bytes.len(),
                object.len
            ),
        ));
    }
    Ok(bytes)
}

fn check_segment_header(entry: &SegmentEntry, bytes: &[u8]) -> Result<()> {
    let key = Path::from(entry.segment.key.as_str());
    let header = seglog_segment::format::SegmentHeader::decode(bytes)
        .map_err(|e| Error::corruption(&key, format!("bad segment header: {e:?}")))?;
    if header.segment_number != entry.number
        || header.first_lsn != entry.first_lsn
        || header.record_salt() != entry.record_salt
    {
        return Err(Error::corruption(
            &key,
            "segment header differs from the manifest entry",
        ));
    }
    Ok(())
}

/// Writes `name` in `dir` and fdatasyncs it.
async fn write_file(dir: &FsPath, name: &str, bytes: &Bytes) -> Result<()> {
    let path = dir.join(name);
    let bytes = bytes.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let io = |op, e| Error::Io {
            op,
            path: path.clone(),
            source: e,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io("create", e))?;
        file.write_all(&bytes).map_err(|e| io("write", e))?;
        file.sync_data().map_err(|e| io("sync_data", e))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}

/// IMPORTANT: the files' directory entries are durable only once the directory is fsynced;
/// the log is opened after, so no restored segment can vanish under it in a power cut.
async fn sync_dir(dir: &FsPath) -> Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Io {
                op: "sync_dir",
                path: dir.clone(),
                source: e,
            })
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}
