//! Shipping: upload the log's sealed segments (and their checkpoints) that the manifest does
//! not name yet, then commit a manifest naming exactly the log's sealed segments (and, with
//! chunk shipping, its active segment, whose chunks `active` uploads after the commit).
//!
//! What must hold:
//! - nothing is committed unless the local log continues the newest manifest's
//!   (`divergence`): every segment it drops from the manifest was replaced or erased by a
//!   local compaction;
//! - every object a committed manifest names was uploaded whole before the commit (the
//!   commit is the last step, and an upload that cannot be confirmed fails the round);
//! - a manifest names a consistent prefix of the log: all of its sealed segments as one
//!   listing saw them, so a compaction's inputs and outputs are swapped in one commit;
//! - a segment's bytes are taken only after its header is read back and found to be the
//!   segment the listing named (a compaction may replace a file under the same name), and
//!   a checkpoint only after it decodes as that segment's checkpoint.

use crate::active;
use crate::claim::{now_unix_millis, Tier, TierState};
use crate::divergence;
use crate::error::{Error, Result};
use crate::keys;
use crate::manifest::{ActiveSegment, Manifest, ObjectRef, SegmentEntry};
use crate::objects::{self, Commit};
use bytes::Bytes;
use seglog_segment::SegmentInfo;

/// How many manifests of its own a ship may find ahead of it (earlier commits whose outcome
/// was unknown) before it gives up for this round.
const MAX_OWN_EARLIER: usize = 8;

/// What one [`Tier::ship`] round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipReport {
    /// The manifest committed by this round (`None`: nothing new to name).
    pub committed_manifest: Option<u64>,
    /// Segments uploaded.
    pub segments_uploaded: usize,
    /// Checkpoints uploaded.
    pub checkpoints_uploaded: usize,
    /// Chunks of the active segment uploaded ([`Tier::with_active_chunks`]).
    pub chunks_uploaded: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Segments the newest manifest names after the round.
    pub segments_named: usize,
    /// A segment changed under the round (a compaction replaced it): nothing was committed,
    /// the next round ships the new layout.
    pub deferred: bool,
}

/// When a round checks that no node claimed the log (the next manifest id's GET) in a round
/// with nothing new to name: before its chunk (background shipping: a zombie learns of the
/// claim before uploading), or after it (remote durability: `Ok` then proves the chunk
/// preceded any claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimCheck {
    BeforeChunk,
    AfterChunk,
}

/// A sealed segment read from the local directory and checked against its listing.
struct LocalSegment {
    info: SegmentInfo,
    bytes: Bytes,
    checkpoint: Option<Bytes>,
}

/// Reads a sealed segment's file and its checkpoint; `Ok(None)` when the file is not (any
/// more) the segment `info` describes.
fn read_local(info: &SegmentInfo, want_checkpoint: bool) -> Result<Option<LocalSegment>> {
    let bytes = match std::fs::read(&info.path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                op: "read",
                path: info.path.clone(),
                source: e,
            })
        }
    };
    let same = bytes.len() as u64 == info.data_end
        && seglog_segment::format::SegmentHeader::decode(&bytes).is_ok_and(|h| {
            h.segment_number == info.number
                && h.first_lsn == info.first_lsn
                && h.record_salt() == info.record_salt
        });
    if !same {
        return Ok(None);
    }
    let checkpoint = if want_checkpoint {
        read_checkpoint(info)?
    } else {
        None
    };
    Ok(Some(LocalSegment {
        info: info.clone(),
        bytes: Bytes::from(bytes),
        checkpoint,
    }))
}

/// The segment's checkpoint file, if there is one that decodes as this segment's.
fn read_checkpoint(info: &SegmentInfo) -> Result<Option<Bytes>> {
    let Some(dir) = info.path.parent() else {
        return Ok(None);
    };
    let path = dir.join(seglog_index::checkpoint::checkpoint_file_name(
        info.first_lsn,
    ));
    match std::fs::read(&path) {
        Ok(b) if seglog_index::checkpoint::decode(&b, info).is_ok() => Ok(Some(Bytes::from(b))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            op: "read",
            path,
            source: e,
        }),
    }
}

/// Whether the local segment `info` names is a compaction output (its header's `COMPACTED`
/// flag); `Ok(None)` when its file is gone or is not that segment any more (a compaction
/// replaced it under the same name).
fn read_compacted_flag(info: &SegmentInfo) -> Result<Option<bool>> {
    use std::io::Read;
    let io = |op, e| Error::Io {
        op,
        path: info.path.clone(),
        source: e,
    };
    let mut file = match std::fs::File::open(&info.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", e)),
    };
    let mut header = [0u8; seglog_segment::format::SEGMENT_HEADER_LEN];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io("read", e)),
    }
    let header =
        seglog_segment::format::SegmentHeader::decode(&header).map_err(|e| Error::Corruption {
            key: info.path.display().to_string(),
            reason: format!("local segment header: {e:?}"),
        })?;
    let same = header.segment_number == info.number
        && header.first_lsn == info.first_lsn
        && header.record_salt() == info.record_salt;
    Ok(same.then_some(header.compacted))
}

fn same_segment(entry: &SegmentEntry, info: &SegmentInfo) -> bool {
    entry.number == info.number
        && entry.first_lsn == info.first_lsn
        && entry.record_salt == info.record_salt
        && entry.segment.len == info.data_end
}

/// Before claiming a log to continue it from a local directory: fails with
/// [`Error::Diverged`] unless `log` continues the log the newest manifest under `prefix`
/// describes (the divergence check a ship round makes, read-only; the active segment's
/// chunks are not read). A node whose log another node took over and wrote to fails here,
/// before its claim would fence that node (the check the first ship round makes after the
/// claim comes too late for that).
///
/// # Errors
/// [`Error::Diverged`]; store errors reading the manifest; I/O errors reading segment
/// headers.
pub async fn check_continues(
    store: &dyn object_store::ObjectStore,
    prefix: &object_store::path::Path,
    log: &seglog::Log,
) -> Result<()> {
    let Some(manifest) = objects::latest_manifest(store, prefix).await? else {
        return Ok(());
    };
    // A directory another node's claim took over since its own last claim: even when the
    // new owner has shipped nothing yet (its manifest then names what this log holds).
    let dir = log.dir().to_path_buf();
    let record = blocking({
        let dir = dir.clone();
        move || crate::claim_record::ClaimRecord::read(&dir)
    })
    .await?;
    if let Some(record) = record {
        record.check_still_ours(&dir, &manifest)?;
    }
    divergence::check_identity(&manifest, log.log_id())?;
    let listed = crate::read_through::shipped_listing(log);
    // `Changed` (a compaction moved a segment meanwhile) is left to the round after the
    // claim, which checks again.
    blocking(move || divergence::check(&manifest, &listed, None, read_compacted_flag))
        .await
        .map(|_| ())
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

impl Tier {
    /// Ships `log`: uploads its sealed segments (and checkpoints) not yet named, then
    /// commits a manifest naming all of its sealed segments; with
    /// [`Tier::with_active_chunks`], names the active segment and uploads its newly durable
    /// bytes as the next chunk (else the active segment is not shipped: docs/scale-out.md,
    /// "Loss window").
    ///
    /// When another node has claimed the log, returns [`Error::Fenced`] and **poisons
    /// `log`**: every later append to it fails, so the zombie cannot acknowledge writes the
    /// new owner will never see.
    ///
    /// # Errors
    /// [`Error::Fenced`] (sticky: every later call returns it), [`Error::Diverged`] when the
    /// log does not continue the manifest's (another log, sealed data lost, or an active
    /// segment shorter than or different from its shipped chunks: see docs/scale-out.md,
    /// "Shipping"), [`Error::SyncFailed`] (the log is poisoned), store and I/O errors (the
    /// round may be retried: every step is idempotent).
    pub async fn ship(&self, log: &seglog::Log) -> Result<ShipReport> {
        self.ship_checked(log, ClaimCheck::BeforeChunk).await
    }

    /// [`Tier::ship`] for `Durability::Remote` (`remote.rs`): a round whose `Ok`
    /// acknowledges appends. The claim check (the next manifest id's GET) comes **after**
    /// the chunk PUT instead of before it, so that `Ok` proves no node had claimed the log
    /// when the chunk was already in the bucket: every later restore then lists it, with no
    /// bound on how long the round may stall between its check and its PUT (with the check
    /// first, a round stalled past a claim, a restore, the new owner's ship and an orphan
    /// collection of the old chunk folder, end marker included, would land its chunk where
    /// nobody reads it, and acknowledge).
    pub(crate) async fn ship_acknowledging(&self, log: &seglog::Log) -> Result<ShipReport> {
        self.ship_checked(log, ClaimCheck::AfterChunk).await
    }

    async fn ship_checked(&self, log: &seglog::Log, check: ClaimCheck) -> Result<ShipReport> {
        let result = self.ship_round(log, check).await;
        if let Err(e @ (Error::Fenced { .. } | Error::SyncFailed { .. })) = &result {
            log.poison(&e.to_string());
        }
        let report = result?;
        // The round's work is done and stands: a record that cannot be written is tried
        // again next round, and fails no acknowledgement.
        if let Err(e) = self.record_claim_in(log).await {
            tracing::warn!(dir = %log.dir().display(), error = %e, "cannot record the claim in the log's directory");
        }
        Ok(report)
    }

    /// After a round that found this writer still the owner: makes `dir`'s claim record name
    /// this claim, once per directory. A claim made through [`Tier::claim`] (which knows no
    /// directory) would otherwise leave an older record there, and the owner's own directory
    /// would look taken over at its next continue (review 28). A record never moves back:
    /// one naming a later epoch is left alone.
    async fn record_claim_in(&self, log: &seglog::Log) -> Result<()> {
        let dir = log.dir();
        let mut state = self.lock_state().await;
        if state.recorded_in.as_deref() == Some(dir) {
            return Ok(());
        }
        // Never into a directory that has taken the log's place at its path (review 44):
        // that is another log's record.
        log.check_dir()?;
        let ours = crate::claim_record::ClaimRecord {
            epoch: self.epoch,
            nonce: self.nonce.clone(),
        };
        let path = dir.to_path_buf();
        blocking(
            move || match crate::claim_record::ClaimRecord::read(&path)? {
                Some(found) if found == ours || found.epoch > ours.epoch => Ok(()),
                _ => ours.write(&path),
            },
        )
        .await?;
        state.recorded_in = Some(dir.to_path_buf());
        Ok(())
    }

    async fn ship_round(&self, log: &seglog::Log, check: ClaimCheck) -> Result<ShipReport> {
        let mut state = self.lock_state().await;
        self.check_not_fenced(&state)?;
        // Before anything is uploaded: another log's segments must not go under this prefix.
        divergence::check_identity(&state.latest, log.log_id())?;
        let log_id = log
            .log_id()
            .map(|id| id.to_string())
            .or_else(|| state.latest.log_id.clone());
        let mut report = ShipReport::default();
        // Offloaded segments (read-through) are sealed segments of the log too.
        let segments = crate::read_through::shipped_listing(log);
        // IMPORTANT: the active segment is opened (and its header checked) right after the
        // listing, and its chunk is read through that handle: a seal and a compaction that
        // replace the file under the same name meanwhile cannot slip another segment's
        // bytes into the chunk (review 14).
        let active_file = match segments.iter().find(|s| !s.sealed) {
            Some(info) if self.ship_active => {
                let info = info.clone();
                match blocking(move || active::open_segment(&info)).await? {
                    Some(open) => Some(open),
                    None => {
                        tracing::info!("the active segment changed under the round; deferred");
                        return self.defer(&mut state, report).await;
                    }
                }
            }
            _ => None,
        };
        // The active segment the manifest names, when the log still has it: its chunks must
        // not reach past it, or hold other bytes than it (review 14).
        let named_local = state.latest.active.and_then(|a| {
            segments
                .iter()
                .find(|s| a.same_segment(s.number, s.first_lsn, s.record_salt))
                .map(|s| (a, s.clone()))
        });
        let chunks_end = match named_local {
            Some((named, local)) => match self.known_progress(&mut state, named, &local).await? {
                Some(progress) => Some(progress.shipped_end),
                None => {
                    tracing::info!("the named active segment changed under the round; deferred");
                    return self.defer(&mut state, report).await;
                }
            },
            None => None,
        };
        let (manifest, listed) = (state.latest.clone(), segments.clone());
        let verdict = blocking(move || {
            divergence::check(&manifest, &listed, chunks_end, read_compacted_flag)
        })
        .await?;
        if verdict == divergence::Verdict::Changed {
            tracing::info!("a segment changed under the divergence check (compaction?); deferred");
            return self.defer(&mut state, report).await;
        }
        let active_info = active_file.as_ref().map(|f| f.info.clone());
        // Without chunk shipping, the active segment the manifest names stays named while it
        // is the log's active segment: its chunks hold shipped events no sealed segment does
        // until it is shipped sealed (review 14: dropping it had its chunks collected).
        let kept_active = state.latest.active.filter(|a| {
            !self.ship_active
                && segments
                    .iter()
                    .any(|s| !s.sealed && a.same_segment(s.number, s.first_lsn, s.record_salt))
        });
        let sealed: Vec<SegmentInfo> = segments.into_iter().filter(|s| s.sealed).collect();
        let mut entries = Vec::with_capacity(sealed.len());
        for info in sealed {
            let known = state
                .latest
                .segments
                .iter()
                .find(|e| same_segment(e, &info))
                .cloned();
            if let Some(entry) = known.as_ref().filter(|e| e.checkpoint.is_some()) {
                entries.push(entry.clone());
                continue;
            }
            let read_info = info.clone();
            let need_segment = known.is_none();
            let local = if need_segment {
                blocking(move || read_local(&read_info, true)).await?
            } else {
                blocking(move || {
                    Ok(read_checkpoint(&read_info)?.map(|checkpoint| LocalSegment {
                        info: read_info,
                        bytes: Bytes::new(),
                        checkpoint: Some(checkpoint),
                    }))
                })
                .await?
            };
            let Some(local) = local else {
                if let Some(entry) = known {
                    // Shipped already; its checkpoint is not written yet.
                    entries.push(entry);
                    continue;
                }
                tracing::info!(
                    segment = info.number,
                    "segment changed under the ship (compaction?); deferred"
                );
                return self.defer(&mut state, report).await;
            };
            let entry = match known {
                Some(mut entry) => {
                    entry.checkpoint = self.upload_checkpoint(&local, &mut report).await?;
                    entry
                }
                None => self.upload_segment(&local, &mut report).await?,
            };
            entries.push(entry);
        }
        // The active segment whose chunks are shipped: the one the manifest names already
        // (whoever named it), or the log's new active segment, under this writer's epoch.
        let active = active_info
            .as_ref()
            .map(|info| match state.latest.active {
                Some(a) if a.same_segment(info.number, info.first_lsn, info.record_salt) => a,
                _ => ActiveSegment {
                    number: info.number,
                    first_lsn: info.first_lsn,
                    record_salt: info.record_salt,
                    chunks_epoch: self.epoch,
                },
            })
            .or(kept_active);
        if entries == state.latest.segments
            && active == state.latest.active
            && log_id == state.latest.log_id
        {
            // Nothing to name; still learn whether another node took the log, so that a
            // zombie with nothing to ship is fenced as soon as one with something would be.
            if check == ClaimCheck::BeforeChunk {
                self.check_next_id_free(&mut state).await?;
            }
            report.segments_named = entries.len();
        } else {
            self.commit(&mut state, entries, active, log_id, &mut report)
                .await?;
        }
        // IMPORTANT: after the commit naming the active segment, never before: a chunk of a
        // segment no manifest names would be found by no restore.
        if let Some(open) = &active_file {
            self.ship_chunk(&mut state, open, &mut report).await?;
        }
        if check == ClaimCheck::AfterChunk {
            // IMPORTANT: after the chunk PUT (see `ship_acknowledging`): the next manifest
            // id still free proves no claim came before the chunk, so every restore lists it.
            self.check_next_id_free(&mut state).await?;
        }
        Ok(report)
    }

    /// Ends a round that found the log's files changing under it (a compaction, a seal, or
    /// a directory gone with its disk) and commits nothing: it still learns whether another
    /// node took the log (the next manifest id's GET), so that a zombie whose segments keep
    /// changing or vanished is fenced (and poisoned by `ship`) as soon as any other.
    async fn defer(&self, state: &mut TierState, mut report: ShipReport) -> Result<ShipReport> {
        self.check_next_id_free(state).await?;
        report.deferred = true;
        Ok(report)
    }

    /// For a restore that found no record in the chunks of the active segment the claimed
    /// manifest names (after its end marker closed them): commits a manifest that no longer
    /// names it. Nothing shipped is dropped, and the restored log, which does not have that
    /// segment (its roll creates one with the same number and first LSN, another salt),
    /// continues the manifest: its ships pass the divergence check (review 14).
    ///
    /// # Errors
    /// As [`Tier::ship`]'s commit: `Fenced`, `Conflict`, store errors.
    pub(crate) async fn forget_empty_active(&self, segment: &ActiveSegment) -> Result<()> {
        let mut state = self.lock_state().await;
        self.check_not_fenced(&state)?;
        if state.latest.active.as_ref() != Some(segment) {
            return Ok(());
        }
        let entries = state.latest.segments.clone();
        let log_id = state.latest.log_id.clone();
        let mut report = ShipReport::default();
        self.commit(&mut state, entries, None, log_id, &mut report)
            .await
    }

    /// Commits a manifest naming `entries` and `active` at the id after the newest.
    async fn commit(
        &self,
        state: &mut TierState,
        entries: Vec<SegmentEntry>,
        active: Option<ActiveSegment>,
        log_id: Option<String>,
        report: &mut ShipReport,
    ) -> Result<()> {
        for _ in 0..MAX_OWN_EARLIER {
            let next = Manifest {
                format_version: Manifest::version_for(&active),
                manifest_id: crate::claim::next_number(&self.prefix, state.latest.manifest_id)?,
                writer_epoch: self.epoch,
                writer_nonce: self.nonce.clone(),
                created_unix_millis: now_unix_millis(),
                segments: entries.clone(),
                active,
                log_id: log_id.clone(),
            };
            match objects::commit_manifest(self.store.as_ref(), &self.prefix, &next).await? {
                Commit::Done => {
                    report.committed_manifest = Some(next.manifest_id);
                    report.segments_named = next.segments.len();
                    state.latest = next;
                    return Ok(());
                }
                // An earlier commit of ours whose outcome was unknown: it is our newest.
                Commit::OwnEarlier(found) => state.latest = found,
                Commit::Taken(found) => return Err(self.fenced_by(state, &found)),
            }
        }
        Err(Error::Conflict {
            key: keys::manifest_dir(&self.prefix).to_string(),
            reason: "too many manifests of this writer ahead of the one it knew".into(),
        })
    }

    async fn upload_segment(
        &self,
        local: &LocalSegment,
        report: &mut ShipReport,
    ) -> Result<SegmentEntry> {
        let info = &local.info;
        let key = keys::segment_key(
            &self.prefix,
            info.first_lsn,
            info.number,
            info.record_salt,
            self.epoch,
        );
        let crc32 = crc32fast::hash(&local.bytes);
        self.deleting.wait_for(&key).await;
        objects::upload_immutable(self.store.as_ref(), &key, local.bytes.clone(), crc32).await?;
        report.segments_uploaded += 1;
        report.bytes_uploaded += local.bytes.len() as u64;
        Ok(SegmentEntry {
            number: info.number,
            first_lsn: info.first_lsn,
            last_lsn: info.last_lsn,
            record_salt: info.record_salt,
            segment: ObjectRef {
                key: key.to_string(),
                len: local.bytes.len() as u64,
                crc32,
            },
            checkpoint: self.upload_checkpoint(local, report).await?,
        })
    }

    async fn upload_checkpoint(
        &self,
        local: &LocalSegment,
        report: &mut ShipReport,
    ) -> Result<Option<ObjectRef>> {
        let Some(bytes) = &local.checkpoint else {
            return Ok(None);
        };
        let info = &local.info;
        let key = keys::checkpoint_key(
            &self.prefix,
            info.first_lsn,
            info.number,
            info.record_salt,
            self.epoch,
        );
        let crc32 = crc32fast::hash(bytes);
        self.deleting.wait_for(&key).await;
        objects::upload_immutable(self.store.as_ref(), &key, bytes.clone(), crc32).await?;
        report.checkpoints_uploaded += 1;
        report.bytes_uploaded += bytes.len() as u64;
        Ok(Some(ObjectRef {
            key: key.to_string(),
            len: bytes.len() as u64,
            crc32,
        }))
    }
}
