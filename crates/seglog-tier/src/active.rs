//! Chunk shipping of the active segment (docs/scale-out.md, "Chunk shipping"): between
//! seals, each ship round uploads the active segment's bytes made durable since the last
//! round as the next numbered chunk; a restore rebuilds the segment's durable prefix from
//! its chunks, then closes the sequence with an end marker.
//!
//! What must hold:
//! - a chunk is uploaded only for the active segment the newest manifest names (the
//!   manifest commit that names it comes first), with `PutMode::Create`, at the index after
//!   the last one confirmed, holding exactly the bytes after the last confirmed chunk's end,
//!   up to the segment's durable end: chunks 0..n laid end to end are a durable prefix of
//!   the segment file;
//! - a restore uses chunks 0..n up to the first end marker, or writes one at n+1 with
//!   `PutMode::Create` (re-listing if it collides with a chunk uploaded meanwhile), so that
//!   no chunk can follow what it restored: the previous owner's next chunk collides with
//!   the marker, and it learns it is fenced (its log is poisoned);
//! - a chunk found at the index a writer meant to create is settled by reading it: an end
//!   marker of a newer epoch fences the writer; its own earlier upload (same epoch, same
//!   start) is adopted.
//! - a chunk's bytes are read through the handle the round opened right after listing the
//!   segment, whose header (number, first LSN, salt) was checked through it, and only after
//!   an fdatasync through it: they are that segment's bytes (a compaction renames another
//!   file over it), and durable under any `SyncMode` (review 14);
//! - a writer that learns from the bucket where the chunks stand checks the local segment
//!   against them (at least as long, the last chunk's bytes at its offsets): else
//!   `Diverged`, before anything is committed (review 14).

use crate::chunk::{self, Kind};
use crate::claim::{Tier, TierState};
use crate::error::{Error, Result};
use crate::fetch_ahead::{FetchAhead, FetchAheadLimits};
use crate::keys;
use crate::manifest::ActiveSegment;
use crate::objects::{self, Created};
use crate::ship::ShipReport;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_segment::SegmentInfo;
use std::sync::Arc;

/// Largest chunk object this build reads: a whole segment and a header.
const MAX_CHUNK_BYTES: u64 = crate::manifest::MAX_OBJECT_BYTES + chunk::HEADER_LEN as u64;

/// How many times a restore re-lists when its end marker collides with a chunk uploaded
/// meanwhile (each collision means the previous owner uploaded one more chunk).
const END_MARKER_ATTEMPTS: usize = 16;

/// Where a writer's chunks of one active segment stand.
#[derive(Debug, Clone)]
pub(crate) struct ChunkProgress {
    segment: ActiveSegment,
    /// The index the next chunk is uploaded at.
    next_index: u64,
    /// The segment file offset the next chunk starts at (the end of the last one).
    pub(crate) shipped_end: u64,
    /// A restore's end marker (of this writer's epoch or an older one) closes the chunks:
    /// none can follow, `shipped_end` is where the restore's copy ends.
    closed: bool,
}

/// A local segment file opened through one handle, whose header (read through that handle)
/// is the segment its listing named. A compaction replaces a file by renaming another over
/// it, so bytes read through this handle are that segment's even if it is replaced since.
#[derive(Debug, Clone)]
pub(crate) struct OpenSegment {
    pub(crate) info: SegmentInfo,
    file: std::sync::Arc<std::fs::File>,
}

/// Opens `info`'s file and checks its header; `Ok(None)` when the file is gone or is not
/// (any more) that segment.
pub(crate) fn open_segment(info: &SegmentInfo) -> Result<Option<OpenSegment>> {
    use std::os::unix::fs::FileExt;
    let io = |op, e| Error::Io {
        op,
        path: info.path.clone(),
        source: e,
    };
    let file = match std::fs::File::open(&info.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", e)),
    };
    let mut header = [0u8; seglog_segment::format::SEGMENT_HEADER_LEN];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io("read", e)),
    }
    if !header_is(&header, info) {
        return Ok(None);
    }
    Ok(Some(OpenSegment {
        info: info.clone(),
        file: std::sync::Arc::new(file),
    }))
}

impl OpenSegment {
    /// Bytes `from..to` of the segment, read through the handle; `Ok(None)` when the file
    /// is shorter (it is not the segment the listing saw).
    fn read_range(&self, from: u64, to: u64) -> Result<Option<Bytes>> {
        use std::os::unix::fs::FileExt;
        let len = usize::try_from(to.saturating_sub(from)).map_err(|_| Error::Corruption {
            key: self.info.path.display().to_string(),
            reason: format!("range {from}..{to} does not fit in memory"),
        })?;
        let mut buf = vec![0u8; len];
        match self.file.read_exact_at(&mut buf, from) {
            Ok(()) => Ok(Some(Bytes::from(buf))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::Io {
                op: "read",
                path: self.info.path.clone(),
                source: e,
            }),
        }
    }

    /// IMPORTANT: a chunk ships only bytes this fdatasync made durable, whatever the log's
    /// `SyncMode` (with `SyncMode::Never`, `data_end` counts bytes only handed to the OS): a
    /// power cut then leaves the local segment holding at least what its chunks hold, so a
    /// restarted owner's chunks never continue another incarnation of the segment.
    fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|source| Error::SyncFailed {
            path: self.info.path.clone(),
            source,
        })
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// The chunks in `folder`, ascending, with their sizes as listed; refuses a gap in the
/// numbering.
async fn list_chunks(store: &dyn ObjectStore, folder: &Path) -> Result<Vec<(Path, u64)>> {
    let metas: Vec<_> = store
        .list(Some(folder))
        .try_collect()
        .await
        .map_err(|e| Error::store("list", folder, e))?;
    let mut found: Vec<(u64, Path, u64)> = metas
        .into_iter()
        .filter(|m| keys::directly_in(folder, &m.location))
        .filter_map(|m| keys::parse_chunk_index(&m.location).map(|i| (i, m.location, m.size)))
        .collect();
    found.sort_by_key(|(i, _, _)| *i);
    for (expected, (index, key, _)) in found.iter().enumerate() {
        if *index != expected as u64 {
            return Err(Error::corruption(key, "chunk numbering has a gap"));
        }
    }
    Ok(found.into_iter().map(|(_, k, size)| (k, size)).collect())
}

/// Reads and checks chunk `index` of `segment` at `key`; `Ok(None)` when it is not there.
async fn read_chunk(
    store: &dyn ObjectStore,
    key: &Path,
    segment: &ActiveSegment,
    index: u64,
) -> Result<Option<(chunk::Header, Bytes)>> {
    read_chunk_within(store, key, segment, index, MAX_CHUNK_BYTES).await
}

/// [`read_chunk`] of a chunk known (listed) to be at most `max_len` bytes: a longer one is
/// refused as corruption (chunks are never overwritten, so a store's listing of one is its
/// size), so what fetching ahead budgets by the listing is what it holds.
async fn read_chunk_within(
    store: &dyn ObjectStore,
    key: &Path,
    segment: &ActiveSegment,
    index: u64,
    max_len: u64,
) -> Result<Option<(chunk::Header, Bytes)>> {
    let Some(bytes) = objects::get_bounded(store, key, max_len.min(MAX_CHUNK_BYTES)).await? else {
        return Ok(None);
    };
    let (header, payload) = chunk::decode(&bytes).map_err(|r| Error::corruption(key, r))?;
    if !segment.same_segment(header.number, header.first_lsn, header.record_salt)
        || header.index != index
    {
        return Err(Error::corruption(
            key,
            "a chunk of another segment or index than its key's",
        ));
    }
    Ok(Some((header, payload)))
}

impl Tier {
    /// Uploads the active segment's bytes made durable since the last chunk, as the next
    /// chunk. `active` is the log's active segment as the round listed and opened it; the
    /// chunk is shipped only if the newest manifest names it.
    pub(crate) async fn ship_chunk(
        &self,
        state: &mut TierState,
        active: &OpenSegment,
        report: &mut ShipReport,
    ) -> Result<()> {
        let info = &active.info;
        let Some(segment) = state.latest.active else {
            return Ok(());
        };
        if !segment.same_segment(info.number, info.first_lsn, info.record_salt) {
            return Ok(());
        }
        let progress = match state.chunks.take().filter(|p| p.segment == segment) {
            Some(p) => p,
            None => match self.chunk_progress(state, segment, Some(active)).await? {
                Some(p) => p,
                None => {
                    report.deferred = true;
                    return Ok(());
                }
            },
        };
        state.chunks = Some(progress.clone());
        if progress.closed {
            return Err(Error::Conflict {
                key: keys::chunk_folder(&self.prefix, &segment).to_string(),
                reason: "the active segment's chunks were closed by a restore, and the segment \
                         is still active here"
                    .into(),
            });
        }
        if info.data_end < progress.shipped_end {
            return Err(Error::Diverged(format!(
                "the chunks of active segment {} reach offset {}, the local segment only {}",
                info.number, progress.shipped_end, info.data_end
            )));
        }
        let to = info.data_end;
        let mut progress = progress;
        // Usually one chunk; more when an earlier attempt's chunk turns out to be in the
        // bucket and to end before `to` (`ship_one_chunk`).
        while progress.shipped_end < to {
            let Some(next) = self
                .ship_one_chunk(state, active, segment, &progress, to, report)
                .await?
            else {
                return Ok(());
            };
            progress = next;
            state.chunks = Some(progress.clone());
        }
        Ok(())
    }

    /// Uploads `from..to` of the active segment (`from`: where `progress` says its chunks
    /// end) as the next chunk; returns the new progress (`None`: the round is deferred). An
    /// ambiguous PUT settled as our own earlier attempt (same index, epoch and start) counts
    /// for what that attempt covered, which may end before `to`: the caller then ships the
    /// rest as the next chunk. (Counting it as reaching `to` acknowledged, in
    /// `Durability::Remote`, bytes no object holds: review 17.)
    async fn ship_one_chunk(
        &self,
        state: &mut TierState,
        active: &OpenSegment,
        segment: ActiveSegment,
        progress: &ChunkProgress,
        to: u64,
        report: &mut ShipReport,
    ) -> Result<Option<ChunkProgress>> {
        let (file, from) = (active.clone(), progress.shipped_end);
        let payload = blocking(move || {
            file.sync_data()?;
            file.read_range(from, to)
        })
        .await?;
        let Some(payload) = payload else {
            // The file opened is shorter than its listing said: not that segment any more.
            // The next round sees the new layout.
            report.deferred = true;
            return Ok(None);
        };
        let folder = keys::chunk_folder(&self.prefix, &segment);
        let key = keys::chunk_key(&folder, progress.next_index);
        let header = chunk::Header {
            kind: Kind::Data,
            number: segment.number,
            first_lsn: segment.first_lsn,
            record_salt: segment.record_salt,
            index: progress.next_index,
            start: from,
            writer_epoch: self.epoch,
            payload_len: payload.len() as u64,
        };
        let encoded = chunk::encode(&header, &payload);
        let shipped_end = match objects::put_create(self.store.as_ref(), &key, encoded).await {
            Created::Yes => to,
            outcome => {
                // Our own earlier attempt, a restore's end marker, or nothing (failed).
                match read_chunk(self.store.as_ref(), &key, &segment, progress.next_index).await? {
                    Some((found, _))
                        if found.kind == Kind::Data
                            && found.writer_epoch == self.epoch
                            && found.start == from =>
                    {
                        let end = found.start.saturating_add(found.payload_len);
                        if end > to || end <= from {
                            return Err(Error::Diverged(format!(
                                "our own chunk {} of active segment {} covers {from}..{end}, \
                                 the local segment's durable bytes end at {to}",
                                progress.next_index, segment.number
                            )));
                        }
                        end
                    }
                    Some(_) => {
                        // Somebody else wrote our next chunk: only a newer owner's restore
                        // does. Fenced (and the log poisoned by `ship`) if so.
                        self.confirm_ownership(state).await?;
                        return Err(Error::Conflict {
                            key: key.to_string(),
                            reason: "another writer's chunk, while this writer owns the log".into(),
                        });
                    }
                    None => {
                        return Err(match outcome {
                            Created::Unknown(e) => Error::store("put", &key, e),
                            _ => Error::Conflict {
                                key: key.to_string(),
                                reason:
                                    "the store reported the chunk exists, then that it does not"
                                        .into(),
                            },
                        })
                    }
                }
            }
        };
        report.chunks_uploaded += 1;
        report.bytes_uploaded += shipped_end - from;
        Ok(Some(ChunkProgress {
            segment,
            next_index: progress.next_index + 1,
            shipped_end,
            closed: false,
        }))
    }

    /// Where the chunks of `segment` stand: the cached progress, or (after a restart, a
    /// claim, or the first round for it) what the bucket holds, checked against `local`.
    /// `Ok(None)` when `local`'s file is no longer that segment (the round is deferred).
    ///
    /// # Errors
    /// [`Error::Diverged`] when the local segment is shorter than the chunks or its bytes
    /// differ from the last chunk's (another incarnation of the segment); `Fenced` when a
    /// newer owner's restore closed the chunks; store errors.
    pub(crate) async fn known_progress(
        &self,
        state: &mut TierState,
        segment: ActiveSegment,
        local: &SegmentInfo,
    ) -> Result<Option<ChunkProgress>> {
        if let Some(p) = state.chunks.as_ref().filter(|p| p.segment == segment) {
            return Ok(Some(p.clone()));
        }
        let info = local.clone();
        let Some(open) = blocking(move || open_segment(&info)).await? else {
            return Ok(None);
        };
        let progress = self.chunk_progress(state, segment, Some(&open)).await?;
        if let Some(p) = &progress {
            state.chunks = Some(p.clone());
        }
        Ok(progress)
    }

    /// Where the chunks of `segment` stand in the bucket: the index after the last, and its
    /// end. When `local` is given, it must hold the chunks' bytes: at least as long, and the
    /// same bytes as the last data chunk (`Ok(None)` when it is no longer that segment).
    async fn chunk_progress(
        &self,
        state: &mut TierState,
        segment: ActiveSegment,
        local: Option<&OpenSegment>,
    ) -> Result<Option<ChunkProgress>> {
        let folder = keys::chunk_folder(&self.prefix, &segment);
        let listed: Vec<Path> = list_chunks(self.store.as_ref(), &folder)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut progress = ChunkProgress {
            segment,
            next_index: listed.len() as u64,
            shipped_end: 0,
            closed: false,
        };
        let Some(last) = listed.last() else {
            return Ok(Some(progress));
        };
        let index = progress.next_index - 1;
        let payload = match read_chunk(self.store.as_ref(), last, &segment, index).await? {
            Some((h, payload)) if h.kind == Kind::Data => {
                progress.shipped_end = h.start + h.payload_len;
                Some((h.start, payload))
            }
            Some((h, _)) if h.kind == Kind::End && h.writer_epoch <= self.epoch => {
                // Closed by a restore of this claim (or an older one): its copy ends there.
                progress.shipped_end = h.start;
                progress.closed = true;
                None
            }
            _ => {
                // Closed by a newer owner's restore (fenced), or listed but gone.
                self.confirm_ownership(state).await?;
                return Err(Error::Conflict {
                    key: last.to_string(),
                    reason:
                        "the active segment's chunks were closed while this writer owns the log"
                            .into(),
                });
            }
        };
        let Some(local) = local else {
            return Ok(Some(progress));
        };
        if local.info.data_end < progress.shipped_end {
            return Err(Error::Diverged(format!(
                "the chunks of segment {} (first LSN {}) reach offset {}, the local segment \
                 only {}: it lost bytes that were shipped",
                segment.number, segment.first_lsn, progress.shipped_end, local.info.data_end
            )));
        }
        if let Some((start, payload)) = payload {
            let (file, end) = (local.clone(), progress.shipped_end);
            let Some(bytes) = blocking(move || file.read_range(start, end)).await? else {
                return Ok(None);
            };
            if bytes != payload {
                return Err(Error::Diverged(format!(
                    "the local segment {} (first LSN {}) differs from its shipped chunk {} \
                     (offsets {start}..{end}): another incarnation of the segment",
                    segment.number, segment.first_lsn, index
                )));
            }
        }
        Ok(Some(progress))
    }
}

/// True when `bytes` start with the header of the segment `info` names.
fn header_is(bytes: &[u8], info: &SegmentInfo) -> bool {
    seglog_segment::format::SegmentHeader::decode(bytes).is_ok_and(|h| {
        h.segment_number == info.number
            && h.first_lsn == info.first_lsn
            && h.record_salt() == info.record_salt
    })
}

/// What the chunks of an active segment hold: their durable prefix, and how many were listed.
struct ChunkedPrefix {
    bytes: Vec<u8>,
    /// An end marker closed the chunks.
    ended: bool,
    listed: usize,
}

/// The durable prefix the chunks in `folder` hold, read in order (several fetched at a time:
/// thousands of chunks are not one round trip each) up to the first end marker or the last
/// chunk listed.
async fn read_chunks(
    store: &Arc<dyn ObjectStore>,
    folder: &Path,
    segment: &ActiveSegment,
    fetch_ahead: FetchAheadLimits,
) -> Result<ChunkedPrefix> {
    let listed = list_chunks(store.as_ref(), folder).await?;
    let count = listed.len();
    let mut fetched = FetchAhead::new(
        listed.into_iter().enumerate().map(|(index, (key, size))| {
            let size = size.min(MAX_CHUNK_BYTES);
            (size, (index as u64, key, size, store.clone(), *segment))
        }),
        fetch_ahead,
        |(index, key, size, store, segment)| async move {
            let chunk = read_chunk_within(store.as_ref(), &key, &segment, index, size).await?;
            let (h, payload) = chunk.ok_or_else(|| Error::corruption(&key, "listed but gone"))?;
            Ok((key, h, payload))
        },
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = fetched.next().await {
        let (key, h, payload) = chunk?;
        let key = &key;
        if h.kind == Kind::End {
            return Ok(ChunkedPrefix {
                bytes,
                ended: true,
                listed: count,
            });
        }
        if h.start != bytes.len() as u64 {
            return Err(Error::corruption(
                key,
                format!(
                    "starts at {}, the chunks before end at {}",
                    h.start,
                    bytes.len()
                ),
            ));
        }
        if (bytes.len() + payload.len()) as u64 > crate::manifest::MAX_OBJECT_BYTES {
            return Err(Error::corruption(
                key,
                "the chunks add up to more than a segment",
            ));
        }
        bytes.extend_from_slice(&payload);
    }
    Ok(ChunkedPrefix {
        bytes,
        ended: false,
        listed: count,
    })
}

/// `bytes` as the active segment `segment`: `None` when they hold no record, an error when
/// their segment header is not the manifest's.
fn as_active_segment(
    bytes: Vec<u8>,
    segment: &ActiveSegment,
    folder: &Path,
) -> Result<Option<Bytes>> {
    // No chunk holds a byte: nothing was shipped. Anything shipped starts with the segment's
    // header, checked even when nothing follows it (review 48: 64 zero bytes passed as an
    // empty segment).
    if bytes.is_empty() {
        return Ok(None);
    }
    let header = seglog_segment::format::SegmentHeader::decode(&bytes)
        .map_err(|e| Error::corruption(folder, format!("bad segment header: {e:?}")))?;
    if !segment.same_segment(
        header.segment_number,
        header.first_lsn,
        header.record_salt(),
    ) {
        return Err(Error::corruption(
            folder,
            "the chunks' segment header differs from the manifest's active segment",
        ));
    }
    if bytes.len() <= seglog_segment::format::SEGMENT_HEADER_LEN {
        return Ok(None);
    }
    Ok(Some(Bytes::from(bytes)))
}

/// Reads, without changing anything, the durable prefix of the active segment `active` that
/// its chunks under `prefix` hold now (up to an end marker, or the last chunk listed), and
/// the number of chunks listed. `None` when they hold no record. For readers that are not
/// the owner (`seglog remote verify`, `dump`, `events`): the owner may ship more meanwhile.
///
/// # Errors
/// [`Error::Corruption`] for a chunk that does not decode, is another segment's, leaves a
/// gap, or a prefix whose header is not the segment's; store errors.
pub async fn fetch_active_segment(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    active: &ActiveSegment,
) -> Result<(Option<Bytes>, usize)> {
    let folder = keys::chunk_folder(prefix, active);
    let read = read_chunks(store, &folder, active, FetchAheadLimits::default()).await?;
    Ok((as_active_segment(read.bytes, active, &folder)?, read.listed))
}

/// For a restore by `tier`: the durable prefix of `segment` its chunks hold, up to the
/// first end marker, or (when there is none) up to the last chunk, after writing an end
/// marker behind it. `Ok(None)` when the chunks hold no record (nothing to rebuild).
///
/// # Errors
/// [`Error::Corruption`] for a chunk that does not decode, is another segment's, leaves a
/// gap, or a prefix whose header is not the segment's; store errors; [`Error::Conflict`]
/// when the end marker kept colliding.
pub(crate) async fn rebuild(
    tier: &Tier,
    segment: &ActiveSegment,
    fetch_ahead: FetchAheadLimits,
) -> Result<Option<Bytes>> {
    let store = tier.store().as_ref();
    let folder = keys::chunk_folder(tier.prefix(), segment);
    for _ in 0..END_MARKER_ATTEMPTS {
        let ChunkedPrefix {
            bytes,
            ended,
            listed: chunks,
        } = read_chunks(tier.store(), &folder, segment, fetch_ahead).await?;
        if !ended {
            let index = chunks as u64;
            let key = keys::chunk_key(&folder, index);
            let end = chunk::encode(
                &chunk::Header {
                    kind: Kind::End,
                    number: segment.number,
                    first_lsn: segment.first_lsn,
                    record_salt: segment.record_salt,
                    index,
                    start: bytes.len() as u64,
                    writer_epoch: tier.epoch(),
                    payload_len: 0,
                },
                &[],
            );
            match objects::put_create(store, &key, end).await {
                Created::Yes => {}
                outcome => match read_chunk(store, &key, segment, index).await? {
                    Some((h, _)) if h.kind == Kind::End && h.writer_epoch == tier.epoch() => {}
                    // A chunk the previous owner uploaded meanwhile: take it too.
                    Some(_) => continue,
                    None => return Err(match outcome {
                        Created::Unknown(e) => Error::store("put", &key, e),
                        _ => Error::Conflict {
                            key: key.to_string(),
                            reason:
                                "the store reported the end marker exists, then that it does not"
                                    .into(),
                        },
                    }),
                },
            }
        }
        return as_active_segment(bytes, segment, &folder);
    }
    Err(Error::Conflict {
        key: folder.to_string(),
        reason: "the end marker kept colliding with new chunks".into(),
    })
}
