//! Restore: claim the log, download what the newest manifest names (and the active segment's
//! durable prefix from its chunks) into a directory marked `RESTORE_IN_PROGRESS`, check every
//! byte against the manifest, add a fresh, empty segment after everything (so the first
//! append goes to a new segment and no shipped segment changes), remove the marker (the
//! commit point), then open it with the engine's normal recovery. Until then nothing opens
//! the directory; an error clears it, a crash leaves it for the next restore (`staging.rs`).
//!
//! A *lazy* restore ([`FetchSegments::Lazily`]) downloads no sealed segment that has a
//! checkpoint: it fetches the checkpoint and the segment's 64-byte header (a ranged GET),
//! and writes the checkpoint and an offload stub (docs/format.md §7) in its place; reads of
//! its records then go to the bucket through a [`ReadThrough`] attached to the log. So that
//! the open accepts the stubs (offloaded segments lie before the last local segment and are
//! numbered below it), the fresh segment is numbered above every segment the manifest names.
//!
//! What must hold: nothing is written into the directory that does not match its manifest
//! entry (length, CRC-32, and for a segment its header's number, first LSN and salt; for a
//! lazily restored segment: the checkpoint's length, CRC-32 and own checks against the
//! segment the header describes, the header against the entry, the object's length), and the
//! log is opened only once every file is in place and synced.

use crate::claim::Tier;
use crate::error::{Error, Result};
use crate::fetch_ahead::{FetchAhead, FetchAheadLimits};
use crate::manifest::{Manifest, ObjectRef, SegmentEntry};
use crate::objects;
use crate::read_through::{ReadThrough, ReadThroughOptions};
use crate::staging::Restoring;
use bytes::Bytes;
use futures_util::FutureExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use seglog_segment::format::SEGMENT_HEADER_LEN;
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
    /// The read-through the log reads its offloaded segments through (a lazy restore's,
    /// already attached; `None` for a restore that downloaded every segment). Run its
    /// retention passes ([`ReadThrough::offload`]) with the same object.
    pub read_through: Option<ReadThrough>,
}

/// How a restore gets the sealed segments the manifest names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchSegments {
    /// Download every segment whole (the directory holds the whole log).
    #[default]
    Whole,
    /// Download only each segment's checkpoint and header, and leave the segment in the
    /// bucket (an offload stub records where); a segment shipped without a checkpoint is
    /// downloaded whole. Reads of old executions then go to the bucket.
    Lazily,
}

/// Settings of [`restore_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// How sealed segments are fetched. Default: [`FetchSegments::Whole`].
    pub fetch_segments: FetchSegments,
    /// The read-through a lazy restore attaches to the log (its cache and block sizes; its
    /// `keep_local_segments` is for later retention passes).
    pub read_through: ReadThroughOptions,
    /// How many objects (segments, checkpoints, chunks) are fetched at once, and how many
    /// bytes of them the restore holds in memory ahead of the one it is writing. Default:
    /// 16 objects, 256 MiB.
    pub fetch_ahead: FetchAheadLimits,
}

impl RestoreOptions {
    /// Sets [`Self::fetch_segments`].
    #[must_use]
    pub fn fetch_segments(mut self, fetch: FetchSegments) -> Self {
        self.fetch_segments = fetch;
        self
    }

    /// Sets [`Self::read_through`].
    #[must_use]
    pub fn read_through(mut self, options: ReadThroughOptions) -> Self {
        self.read_through = options;
        self
    }

    /// Sets [`Self::fetch_ahead`].
    #[must_use]
    pub fn fetch_ahead(mut self, limits: FetchAheadLimits) -> Self {
        self.fetch_ahead = limits;
        self
    }
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
    /// Segments left in the bucket (a lazy restore): a stub and their checkpoint written.
    pub segments_offloaded: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// The highest LSN restored (0 for an empty log).
    pub last_lsn: u64,
    /// Bytes of the active segment rebuilt from its chunks (0: none, or no chunk shipping).
    pub active_bytes: u64,
}

/// Claims the log under `prefix` and restores it into `dir` (which must be absent or
/// empty, or left by an interrupted restore), then opens it with `options`. The previous
/// owner is fenced from the claim on. Until the restore's last step, `dir` holds a
/// `RESTORE_IN_PROGRESS` marker that every open refuses, so it never opens as part of a log.
/// When the manifest names an active segment (chunk shipping), its durable prefix is
/// rebuilt from its chunks, which an end marker then closes.
///
/// # Errors
/// [`Error::DestinationNotEmpty`]; the claim's errors ([`Error::ClaimLost`] …); store
/// errors; [`Error::Corruption`] when an object is missing or differs from its manifest
/// entry (nothing is opened then, and the directory is left empty: what was downloaded is
/// removed); [`Error::RestoreRunning`] when another restore is writing `dir`; the log's
/// open errors.
pub async fn restore(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    dir: impl Into<PathBuf>,
    options: seglog::Options,
) -> Result<Restored> {
    restore_with(store, prefix, dir, options, RestoreOptions::default()).await
}

/// [`restore`], fetching the sealed segments as `restore_options` says: with
/// [`FetchSegments::Lazily`], only their checkpoints and headers (see the module docs); the
/// log then reads them through [`Restored::read_through`].
///
/// # Errors
/// As [`restore`]; for a lazy restore also [`Error::Corruption`] when a checkpoint fails
/// its own checks against the segment, or a segment's header (or its object's length)
/// differs from the manifest entry; [`Error::Io`] when the read-through cannot start.
///
/// # Cancel safety
/// The restore runs as a task of its own: dropping the future does not stop it halfway (a
/// write it started would otherwise land after its directory lock was released: review 24);
/// it runs to its end, and its result is lost with the future.
pub async fn restore_with(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    dir: impl Into<PathBuf>,
    options: seglog::Options,
    restore_options: RestoreOptions,
) -> Result<Restored> {
    let dir = dir.into();
    tokio::spawn(restore_task(store, prefix, dir, options, restore_options))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// [`restore_with`]'s work, on a task of its own.
async fn restore_task(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    dir: PathBuf,
    options: seglog::Options,
    restore_options: RestoreOptions,
) -> Result<Restored> {
    let restoring = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Restoring::begin(&dir))
            .await
            .map_err(|e| Error::Task(e.to_string()))??
    };
    // Everything up to the commit point; on an error, what was written is removed (every
    // write it started has ended: each is awaited).
    let staged = async {
        let tier = Tier::claim_for_directory(store, prefix, &dir).await?;
        let manifest = tier.manifest().await;
        let mut report = RestoreReport {
            manifest_id: manifest.manifest_id,
            last_lsn: manifest.last_lsn(),
            ..RestoreReport::default()
        };
        let lazy = restore_options.fetch_segments == FetchSegments::Lazily
            && manifest.segments.iter().any(|e| e.checkpoint.is_some());
        // Where the fresh segment starts: after every LSN and first LSN restored.
        let mut fresh_first_lsn = manifest
            .segments
            .iter()
            .map(|e| e.last_lsn.max(e.first_lsn))
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let mut fresh_number = manifest
            .segments
            .iter()
            .map(|e| e.number)
            .max()
            .unwrap_or(0);
        let mut offloaded_numbers = Vec::new();
        // Fetched (and checked) ahead, several at a time; written here, in order, each write
        // awaited (an error then removes everything written: nothing lands after it).
        let store = tier.store().clone();
        let entries: Vec<(u64, (SegmentEntry, bool))> = manifest
            .segments
            .iter()
            .map(|entry| {
                let lazily = lazy && entry.checkpoint.is_some();
                (fetch_size(entry, lazily), (entry.clone(), lazily))
            })
            .collect();
        let mut fetched =
            FetchAhead::new(entries, restore_options.fetch_ahead, |(entry, lazily)| {
                fetch_entry(store.clone(), entry, lazily)
            });
        while let Some(entry) = fetched.next().await {
            match entry? {
                FetchedEntry::Lazily(lazily) => {
                    report.bytes += lazily.downloaded();
                    write_lazily(&dir, &lazily).await?;
                    report.segments_offloaded += 1;
                    report.checkpoints += 1;
                    offloaded_numbers.push(lazily.number);
                }
                FetchedEntry::Whole {
                    first_lsn,
                    bytes,
                    last_lsn_with_markers,
                    checkpoint,
                } => {
                    // Commit markers included: the fresh segment starts after every LSN the
                    // segment holds, whatever its manifest entry says.
                    fresh_first_lsn = fresh_first_lsn.max(last_lsn_with_markers.saturating_add(1));
                    write_file(
                        &dir,
                        &seglog_segment::format::segment_file_name(first_lsn),
                        &bytes,
                    )
                    .await?;
                    report.segments += 1;
                    report.bytes += bytes.len() as u64;
                    if let Some(bytes) = checkpoint {
                        let name = seglog_index::checkpoint::checkpoint_file_name(first_lsn);
                        write_file(&dir, &name, &bytes).await?;
                        report.checkpoints += 1;
                        report.bytes += bytes.len() as u64;
                    }
                }
            }
        }
        drop(fetched);
        // The active segment's durable prefix, from its chunks (after which the previous owner
        // can upload none: an end marker closes them).
        let mut expected: Vec<(u64, u64, u64, u64)> = manifest
            .segments
            .iter()
            .map(|e| (e.number, e.first_lsn, e.record_salt, e.segment.len))
            .collect();
        if let Some(active) = &manifest.active {
            fresh_number = fresh_number.max(active.number);
            // LSNs below its first were given out (and seen by global readers) even when its
            // chunks hold no record and it is dropped below: never hand them out again
            // (review 21).
            fresh_first_lsn = fresh_first_lsn.max(active.first_lsn);
            if let Some(bytes) =
                crate::active::rebuild(&tier, active, restore_options.fetch_ahead).await?
            {
                // The active segment becomes a sealed local one before the fresh segment: it
                // must be whole, and the fresh one starts after its last LSN.
                let analysis = seglog_segment::inspect::analyze_segment(&bytes, 0);
                if let Some(damage) = &analysis.damage {
                    return Err(Error::corruption(
                        &crate::keys::chunk_folder(tier.prefix(), active),
                        format!("the rebuilt active segment is damaged: {damage:?}"),
                    ));
                }
                // Commit markers included: a segment of markers alone (clean closes with no
                // append since the roll) has LSNs the fresh one must not take (review 19).
                fresh_first_lsn = fresh_first_lsn
                    .max(analysis.last_lsn_with_markers.saturating_add(1))
                    .max(active.first_lsn.saturating_add(1));
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
        // IMPORTANT: the last restored segment would otherwise be the active one, and the first
        // append would change a segment the manifest names (or the previous owner's chunks hold).
        // And the open refuses offloaded segments after the last local segment or numbered at or
        // above a local one (format.md §7), and the writer numbers new segments from the highest
        // local number. So a fresh, empty segment after everything, numbered above every segment
        // the manifest names (compaction outputs may be numbered above the active segment), is
        // the last local segment and takes the first append, so no shipped segment changes.
        write_fresh_segment(&dir, fresh_number.saturating_add(1), fresh_first_lsn).await?;
        // The restored log is the bucket's log: it keeps its identity, so its ships continue
        // the prefix. (A manifest from before identities names none: the open makes one, and
        // the first ship names it.)
        if let Some(id) = manifest.log_identity() {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                seglog_segment::log_id::write(&seglog_segment::io::StdFs, &dir, id)
                    .map_err(|e| Error::Log(seglog::Error::from(e)))
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        }
        Ok::<_, Error>((tier, manifest, report, lazy, offloaded_numbers, expected))
    };
    // A panic on the way is an error like any other: what was written is removed (every
    // write the restore started was awaited, so none lands after the removal).
    let staged = std::panic::AssertUnwindSafe(staged)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Task(format!("the restore panicked: {what}")))
        });
    let (tier, manifest, mut report, lazy, offloaded_numbers, expected) = match staged {
        Ok(staged) => staged,
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || restoring.abandon()).await;
            return Err(e);
        }
    };
    // IMPORTANT: the commit point: until the marker goes, nothing opens the directory, so
    // the log appears there whole or not at all (review 19).
    tokio::task::spawn_blocking(move || restoring.commit())
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    let log = seglog::Log::open(dir, options).await?;
    let read_through = if lazy {
        let read_through = ReadThrough::new(tier.store().clone(), restore_options.read_through)?;
        read_through.attach(&log);
        Some(read_through)
    } else {
        None
    };
    let mut restored: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let offloaded = log.offloaded_segments();
    restored.extend(offloaded.iter().map(|o| o.info(log.dir())));
    restored.sort_by_key(|s| s.first_lsn);
    report.last_lsn = restored.iter().map(|s| s.last_lsn).max().unwrap_or(0);
    if offloaded
        .iter()
        .map(|o| o.number)
        .ne(offloaded_numbers.iter().copied())
    {
        return Err(Error::Corruption {
            key: crate::keys::manifest_key(tier.prefix(), manifest.manifest_id).to_string(),
            reason: "the restored log's offloaded segments differ from the manifest's".into(),
        });
    }
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
        offloaded = report.segments_offloaded,
        "restored log"
    );
    Ok(Restored {
        tier,
        log,
        report,
        read_through,
    })
}

/// How many manifests [`read_newest`] reads through before it reports what it found.
const READ_NEWEST_ATTEMPTS: usize = 4;

/// Reads what the newest manifest names through `read`, which returns its result and
/// whether an object the manifest names was missing or bad. When one was and the newest
/// manifest has moved on meanwhile, reads again through the newer one: a reader that is not
/// the owner (`seglog remote verify`, `remote dump`) races the owner's orphan collection,
/// which deletes a compaction's inputs once no manifest names them (review 31), and an
/// object the newer manifest still names is checked again there. `Ok(None)`: no manifest.
///
/// # Errors
/// What `read` returns; store errors; [`Error::Corruption`] for a manifest that does not
/// decode.
pub async fn read_newest<T, E, F, Fut>(
    store: &dyn ObjectStore,
    prefix: &Path,
    mut read: F,
) -> std::result::Result<Option<(Manifest, T)>, E>
where
    E: From<Error>,
    F: FnMut(Manifest) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(T, bool), E>>,
{
    let Some(mut manifest) = objects::latest_manifest(store, prefix).await? else {
        return Ok(None);
    };
    let mut attempt = 1;
    loop {
        let (found, something_bad) = read(manifest.clone()).await?;
        if !something_bad || attempt == READ_NEWEST_ATTEMPTS {
            return Ok(Some((manifest, found)));
        }
        match objects::latest_manifest(store, prefix).await? {
            Some(newer) if newer.manifest_id != manifest.manifest_id => manifest = newer,
            _ => return Ok(Some((manifest, found))),
        }
        attempt += 1;
    }
}

/// Downloads the segment `entry` names and checks it as [`restore`] does: its length and
/// CRC-32 are the manifest's, and its header (magic, CRC, segment number, first LSN, salt)
/// is that segment's. Reads only (`seglog remote verify` and `dump` use it). A reader that
/// is not the log's owner reads through [`read_newest`]: the owner's orphan collection may
/// delete what an older manifest names.
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

/// What a restore fetched for one sealed segment, checked against its manifest entry,
/// before anything of it is written.
enum FetchedEntry {
    /// The segment whole (checked: whole records to its last byte), and its checkpoint.
    Whole {
        first_lsn: u64,
        bytes: Bytes,
        /// The segment's last LSN, commit markers included.
        last_lsn_with_markers: u64,
        checkpoint: Option<Bytes>,
    },
    /// A lazy restore's: the checkpoint, and the stub of the segment left in the bucket.
    Lazily(LazySegment),
}

/// What a lazy restore writes for a sealed segment left in the bucket.
struct LazySegment {
    number: u64,
    first_lsn: u64,
    checkpoint: Bytes,
    stub: seglog::OffloadedSegment,
}

impl LazySegment {
    /// Bytes downloaded for it: the checkpoint and the segment's header.
    fn downloaded(&self) -> u64 {
        self.checkpoint.len() as u64 + SEGMENT_HEADER_LEN as u64
    }
}

/// The bytes fetching `entry` holds in memory (what fetching ahead budgets).
fn fetch_size(entry: &SegmentEntry, lazily: bool) -> u64 {
    let checkpoint = entry.checkpoint.as_ref().map_or(0, |c| c.len);
    if lazily {
        checkpoint + SEGMENT_HEADER_LEN as u64
    } else {
        entry.segment.len + checkpoint
    }
}

/// Fetches and checks what a restore writes for `entry`: the segment whole and its
/// checkpoint, or (`lazily`) the checkpoint and header only. Reads only.
async fn fetch_entry(
    store: Arc<dyn ObjectStore>,
    entry: SegmentEntry,
    lazily: bool,
) -> Result<FetchedEntry> {
    if lazily {
        if let Some(checkpoint) = &entry.checkpoint {
            return fetch_lazily(store.as_ref(), &entry, checkpoint)
                .await
                .map(FetchedEntry::Lazily);
        }
    }
    let bytes = fetch_segment(store.as_ref(), &entry).await?;
    // A sealed segment is whole records to its last byte: checked here, before the commit
    // point, not by the open after it (review 23: a segment with zeros after its records,
    // CRC as the manifest says, failed only the post-open check). Off the runtime's workers:
    // it reads every record.
    let analysis = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || seglog_segment::inspect::analyze_segment(&bytes, 0))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    };
    if analysis.damage.is_some() || analysis.data_end != bytes.len() as u64 {
        return Err(Error::corruption(
            &Path::from(entry.segment.key.as_str()),
            format!(
                "not a whole sealed segment: intact to byte {} of {} ({:?})",
                analysis.data_end,
                bytes.len(),
                analysis.damage
            ),
        ));
    }
    let checkpoint = match &entry.checkpoint {
        Some(checkpoint) => Some(fetch_object(store.as_ref(), checkpoint).await?),
        None => None,
    };
    Ok(FetchedEntry::Whole {
        first_lsn: entry.first_lsn,
        bytes,
        last_lsn_with_markers: analysis.last_lsn_with_markers,
        checkpoint,
    })
}

/// A lazy restore of sealed segment `entry`: fetches its checkpoint (length and CRC-32 as
/// the manifest says, then the checkpoint's own checks against the segment) and its header
/// (a ranged GET of 64 bytes, checked against the entry, of an object of the manifest's
/// length), and describes the segment for its offload stub. Reads only.
async fn fetch_lazily(
    store: &dyn ObjectStore,
    entry: &SegmentEntry,
    checkpoint: &ObjectRef,
) -> Result<LazySegment> {
    let checkpoint_bytes = fetch_object(store, checkpoint).await?;
    let header_bytes = fetch_header(store, entry).await?;
    let segment_key = Path::from(entry.segment.key.as_str());
    let checkpoint_key = Path::from(checkpoint.key.as_str());
    let header = seglog_segment::format::SegmentHeader::decode(&header_bytes)
        .map_err(|e| Error::corruption(&segment_key, format!("bad segment header: {e:?}")))?;
    let info = seglog::SegmentInfo {
        number: entry.number,
        first_lsn: entry.first_lsn,
        last_lsn: entry.last_lsn,
        // Where it would lie: the checkpoint's checks do not read it.
        path: PathBuf::from(seglog_segment::format::segment_file_name(entry.first_lsn)),
        data_end: entry.segment.len,
        sealed: true,
        created_unix_nanos: header.created_unix_nanos,
        record_salt: entry.record_salt,
        clustered: header.clustered,
    };
    let decoded = seglog_index::checkpoint::decode(&checkpoint_bytes, &info).map_err(|d| {
        Error::corruption(
            &checkpoint_key,
            format!("not a checkpoint of segment {}: {d:?}", entry.number),
        )
    })?;
    let first_lsn = entry.first_lsn;
    let last_event_lsn = decoded
        .records
        .iter()
        .map(|r| r.lsn)
        .max()
        .unwrap_or(first_lsn.saturating_sub(1));
    if decoded
        .records
        .iter()
        .any(|r| r.lsn < first_lsn || r.lsn > entry.last_lsn)
    {
        return Err(Error::corruption(
            &checkpoint_key,
            format!(
                "lists a record outside the segment's LSNs {first_lsn}..={}",
                entry.last_lsn
            ),
        ));
    }
    let stub = seglog::OffloadedSegment::from_header(
        header_bytes,
        entry.segment.len,
        entry.last_lsn.max(last_event_lsn),
        last_event_lsn,
        entry.segment.crc32,
        entry.segment.key.clone(),
    )
    .map_err(|e| Error::corruption(&segment_key, format!("cannot describe it: {e}")))?;
    Ok(LazySegment {
        number: entry.number,
        first_lsn,
        checkpoint: checkpoint_bytes,
        stub,
    })
}

/// Writes a lazily restored segment's checkpoint and offload stub, each crash-atomically.
async fn write_lazily(dir: &FsPath, segment: &LazySegment) -> Result<()> {
    let name = seglog_index::checkpoint::checkpoint_file_name(segment.first_lsn);
    write_file_atomically(dir, &name, segment.checkpoint.clone()).await?;
    let dir_owned = dir.to_path_buf();
    let stub = segment.stub.clone();
    tokio::task::spawn_blocking(move || seglog::write_offload_stub(&dir_owned, &stub))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(Error::from)
}

/// The first 64 bytes of the segment `entry` names (a ranged GET), refused unless the
/// object has the manifest's length and the header is that segment's (magic, CRC, number,
/// first LSN, salt).
async fn fetch_header(
    store: &dyn ObjectStore,
    entry: &SegmentEntry,
) -> Result<[u8; SEGMENT_HEADER_LEN]> {
    let key = Path::from(entry.segment.key.as_str());
    let range = 0..SEGMENT_HEADER_LEN as u64;
    if entry.segment.len < range.end {
        return Err(Error::corruption(
            &key,
            format!("{} bytes: shorter than a segment header", entry.segment.len),
        ));
    }
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        ..GetOptions::default()
    };
    let result = match store.get_opts(&key, opts).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::corruption(&key, "named by the manifest but missing"))
        }
        Err(e) => return Err(Error::store("get", &key, e)),
    };
    if result.meta.size != entry.segment.len || result.range != range {
        return Err(Error::corruption(
            &key,
            format!(
                "{} bytes (sent {:?}), the manifest says {}",
                result.meta.size, result.range, entry.segment.len
            ),
        ));
    }
    let bytes = objects::read_body(result, &key, SEGMENT_HEADER_LEN as u64).await?;
    let header: [u8; SEGMENT_HEADER_LEN] = bytes.as_ref().try_into().map_err(|_| {
        Error::corruption(&key, format!("{} bytes for a segment header", bytes.len()))
    })?;
    check_segment_header(entry, &header)?;
    Ok(header)
}

/// Writes an empty segment (its header alone) numbered `number`, starting at `first_lsn`,
/// fdatasynced (the caller syncs the directory).
async fn write_fresh_segment(dir: &FsPath, number: u64, first_lsn: u64) -> Result<()> {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let header =
        seglog_segment::format::SegmentHeader::new(number, first_lsn, created).map_err(|e| {
            Error::Io {
                op: "random salt",
                path: dir.to_path_buf(),
                source: e,
            }
        })?;
    let name = seglog_segment::format::segment_file_name(first_lsn);
    write_file(dir, &name, &Bytes::copy_from_slice(&header.encode())).await
}

/// Writes `name` in `dir` crash-atomically: a temp file, fdatasynced, renamed, and the
/// directory fsynced.
async fn write_file_atomically(dir: &FsPath, name: &str, bytes: Bytes) -> Result<()> {
    let tmp = format!("{name}.restore.tmp");
    write_file(dir, &tmp, &bytes).await?;
    let (from, to) = (dir.join(&tmp), dir.join(name));
    tokio::task::spawn_blocking(move || {
        std::fs::rename(&from, &to).map_err(|e| Error::Io {
            op: "rename",
            path: to.clone(),
            source: e,
        })
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    sync_dir(dir).await
}
