//! Ownership: claiming a log's prefix, and the [`Tier`] handle the owner ships through.
//!
//! A node claims by writing the manifest id after the newest with the writer epoch one
//! higher, create-only: of several nodes claiming at once, exactly one write succeeds, and
//! every earlier owner's next manifest write collides with it (the manifest a claim writes
//! is never deleted, nor the last one of any writer: see `orphans.rs`), which is how it
//! learns it is fenced.

use crate::claim_record::ClaimRecord;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::objects::{self, Commit};
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

/// The owner's handle on a log's prefix: its claim (epoch and nonce) and the newest
/// manifest it knows it wrote. Ships, orphan collection and the checks they make are
/// serialized through it.
pub struct Tier {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: Path,
    pub(crate) epoch: u64,
    pub(crate) nonce: String,
    /// The id of the manifest this claim wrote: the first of this writer's. The manifests
    /// after it and before the writer's newest are its own, and only those are ever pruned.
    pub(crate) claim_manifest_id: u64,
    /// Ship the active segment's durable bytes as chunks ([`Tier::with_active_chunks`]).
    pub(crate) ship_active: bool,
    /// Taken through [`Tier::lock_state`] only.
    pub(crate) state: tokio::sync::Mutex<TierState>,
    /// The keys an orphan collection is deleting now (outside the state lock): a round
    /// waits before reusing one (`orphans.rs`).
    pub(crate) deleting: Arc<crate::orphans::Deleting>,
}

pub(crate) struct TierState {
    /// The newest manifest this writer wrote (or its claim copied).
    pub(crate) latest: Manifest,
    /// Set once a newer owner was seen: sticky, every later call fails.
    pub(crate) fenced_by: Option<(u64, u64)>,
    /// Where the chunks of the active segment stand (learnt from the bucket when unknown).
    pub(crate) chunks: Option<crate::active::ChunkProgress>,
    /// The directory whose claim record (`TIER_CLAIM`) names this claim.
    pub(crate) recorded_in: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("prefix", &self.prefix.as_ref())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `n + 1` for a manifest id or an epoch read from the bucket, which may hold anything.
pub(crate) fn next_number(prefix: &Path, n: u64) -> Result<u64> {
    n.checked_add(1).ok_or_else(|| Error::Conflict {
        key: crate::keys::manifest_dir(prefix).to_string(),
        reason: "manifest ids or epochs are exhausted".into(),
    })
}

fn random_nonce() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io {
        op: "getrandom",
        path: std::path::PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Tier {
    /// Claims the log stored under `prefix`: writes the next manifest with an epoch one
    /// higher than the newest's (epoch 1 and manifest 1 for an empty prefix), naming the
    /// same segments. From then on the previous owner is fenced.
    ///
    /// # Errors
    /// [`Error::ClaimLost`] when another node claimed the same manifest id first (this node
    /// owns nothing; read the new owner's manifest before trying again), store errors (the
    /// claim may or may not have happened: claiming again is safe), [`Error::Corruption`] /
    /// [`Error::UnsupportedVersion`] for a newest manifest this build cannot trust.
    pub async fn claim(store: Arc<dyn ObjectStore>, prefix: Path) -> Result<Tier> {
        let latest = objects::latest_manifest(store.as_ref(), &prefix).await?;
        Self::claim_from(store, prefix, latest).await
    }

    /// Claims the log only if its newest manifest is still `seen` (`None`: the prefix is
    /// still empty): the takeover of a failover controller that judged the owner of
    /// manifest `seen` dead, and must not take the log from whoever claimed it since. Of
    /// several nodes calling it with the same `seen`, exactly one wins.
    ///
    /// # Errors
    /// [`Error::ClaimLost`] when the newest manifest is not `seen` any more, or another node
    /// won the race; otherwise as [`Tier::claim`].
    pub async fn claim_after(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        seen: Option<u64>,
    ) -> Result<Tier> {
        let latest = objects::latest_manifest(store.as_ref(), &prefix).await?;
        if let Some(newest) = latest.as_ref().filter(|m| Some(m.manifest_id) != seen) {
            return Err(Error::ClaimLost {
                manifest_id: newest.manifest_id,
                winner_epoch: newest.writer_epoch,
            });
        }
        Self::claim_from(store, prefix, latest).await
    }

    /// Claims the log for the local directory `dir` (a restore's destination, or the
    /// directory of a log that continues the bucket's): as [`Tier::claim`], but first
    /// refuses a directory whose log another node has claimed since this directory's last
    /// claim ([`Error::TakenOver`], nothing claimed), and records the new claim in `dir`
    /// (`TIER_CLAIM`) before the manifest that makes it.
    ///
    /// # Errors
    /// [`Error::TakenOver`], I/O errors writing the record; otherwise as [`Tier::claim`].
    pub async fn claim_for_directory(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        dir: &std::path::Path,
    ) -> Result<Tier> {
        let latest = objects::latest_manifest(store.as_ref(), &prefix).await?;
        let dir = dir.to_path_buf();
        let record = crate::ship::blocking({
            let dir = dir.clone();
            move || ClaimRecord::read(&dir)
        })
        .await?;
        if let (Some(record), Some(newest)) = (&record, &latest) {
            record.check_still_ours(&dir, newest)?;
        }
        // Another log's directory (its identity, if it has one yet) must not fence this
        // log's owner: the first ship would refuse it, after the claim.
        if let Some(newest) = &latest {
            let (local, holds_a_log) = crate::ship::blocking({
                let dir = dir.clone();
                move || {
                    let local = seglog_segment::log_id::read(&seglog_segment::io::StdFs, &dir)
                        .map_err(|e| Error::Log(seglog::Error::from(e)))?;
                    Ok((local, holds_segments(&dir)?))
                }
            })
            .await?;
            crate::divergence::check_identity(newest, local)?;
            // A log with no identity cannot be the bucket's log once the bucket names one:
            // its writer makes `LOG_ID` before any ship names it. (A directory with no
            // segment, a restore's destination, has none either, and is claimed.)
            if let (Some(named), None, true) = (newest.log_identity(), local, holds_a_log) {
                return Err(Error::Diverged(format!(
                    "the bucket's manifest {} describes log {named}, the local directory holds \
                     a log with no identity (made before identities, or its LOG_ID lost): not \
                     this log's directory",
                    newest.manifest_id
                )));
            }
        }
        let nonce = record.and_then(|r| r.unconfirmed_nonce(latest.as_ref()));
        Self::claim_recorded(store, prefix, latest, Some((dir, nonce))).await
    }

    async fn claim_from(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        latest: Option<Manifest>,
    ) -> Result<Tier> {
        Self::claim_recorded(store, prefix, latest, None).await
    }

    /// Claims after `latest`; with `record_in` (a directory, and the nonce of an earlier
    /// unconfirmed claim of it to use again, if any), records the claim there first.
    async fn claim_recorded(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        latest: Option<Manifest>,
        record_in: Option<(std::path::PathBuf, Option<String>)>,
    ) -> Result<Tier> {
        let (id, epoch, segments, active, log_id) =
            latest.map_or((0, 0, Vec::new(), None, None), |m| {
                (
                    m.manifest_id,
                    m.writer_epoch,
                    m.segments,
                    m.active,
                    m.log_id,
                )
            });
        let manifest = Manifest {
            format_version: Manifest::version_for(&active),
            manifest_id: next_number(&prefix, id)?,
            writer_epoch: next_number(&prefix, epoch)?,
            writer_nonce: match record_in.as_ref().and_then(|(_, nonce)| nonce.clone()) {
                Some(nonce) => nonce,
                None => random_nonce()?,
            },
            created_unix_millis: now_unix_millis(),
            segments,
            active,
            log_id,
        };
        let recorded_in = record_in.as_ref().map(|(dir, _)| dir.clone());
        if let Some((dir, _)) = record_in {
            // IMPORTANT: before the PUT, so that a crash after it never leaves the directory
            // looking like another node's claim took it over.
            let record = ClaimRecord {
                epoch: manifest.writer_epoch,
                nonce: manifest.writer_nonce.clone(),
            };
            crate::ship::blocking(move || record.write(&dir)).await?;
        }
        let latest = match objects::commit_manifest(store.as_ref(), &prefix, &manifest).await? {
            Commit::Done => manifest,
            Commit::OwnEarlier(found) => found,
            Commit::Taken(found) => {
                return Err(Error::ClaimLost {
                    manifest_id: found.manifest_id,
                    winner_epoch: found.writer_epoch,
                })
            }
        };
        // A create-only PUT proves the id was free, not that it follows the newest manifest:
        // the owner prunes its own manifests below its newest, so a claimant that listed one
        // of those as the newest and stalled until it was pruned writes into a freed id. The
        // owner then goes on above it, unfenced: that claim owns nothing.
        if objects::any_manifest_after(store.as_ref(), &prefix, latest.manifest_id).await? {
            let newest = objects::latest_manifest(store.as_ref(), &prefix).await?;
            let (manifest_id, winner_epoch) =
                newest.map_or((latest.manifest_id, 0), |m| (m.manifest_id, m.writer_epoch));
            tracing::warn!(prefix = %prefix, claimed = latest.manifest_id, newest = manifest_id, "claim landed below a newer manifest: lost");
            return Err(Error::ClaimLost {
                manifest_id,
                winner_epoch,
            });
        }
        tracing::info!(prefix = %prefix, epoch = latest.writer_epoch, manifest = latest.manifest_id, "claimed log");
        Ok(Tier {
            store,
            prefix,
            epoch: latest.writer_epoch,
            nonce: latest.writer_nonce.clone(),
            claim_manifest_id: latest.manifest_id,
            ship_active: false,
            state: tokio::sync::Mutex::new(TierState {
                latest,
                fenced_by: None,
                chunks: None,
                recorded_in,
            }),
            deleting: Arc::default(),
        })
    }

    /// Turns on chunk shipping: every [`Tier::ship`] round also uploads the active
    /// segment's bytes made durable since the last round, as the next chunk, so that the
    /// loss window is one ship interval rather than the active segment (docs/scale-out.md,
    /// "Chunk shipping"). Off by default.
    #[must_use]
    pub fn with_active_chunks(mut self) -> Tier {
        self.ship_active = true;
        self
    }

    /// This writer's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The log's prefix in the bucket.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The newest manifest this writer wrote.
    pub async fn manifest(&self) -> Manifest {
        self.lock_state().await.latest.clone()
    }

    /// The state lock. Whoever releases it runs the next waiter's waker, often a ship round
    /// on the remote-durability task: waiters queue a shielded waker, never their caller's,
    /// so that a caller's waker that panics fails nobody else's round and leaves the lock's
    /// hand-over intact (review 57; `seglog_segment::shielded`).
    pub(crate) async fn lock_state(&self) -> tokio::sync::MutexGuard<'_, TierState> {
        seglog_segment::shielded(self.state.lock(), "a tier caller's").await
    }

    /// The error of a writer that `found` (at the id it tried to write) fenced, or a
    /// conflict when `found` breaks the ownership rules (a lower or equal epoch).
    pub(crate) fn fenced_by(&self, state: &mut TierState, found: &Manifest) -> Error {
        if found.writer_epoch > self.epoch {
            state.fenced_by = Some((found.writer_epoch, found.manifest_id));
            tracing::error!(prefix = %self.prefix, own_epoch = self.epoch, newer_epoch = found.writer_epoch, "fenced by a newer owner");
            Error::Fenced {
                own_epoch: self.epoch,
                newer_epoch: found.writer_epoch,
                manifest_id: found.manifest_id,
            }
        } else {
            Error::Conflict {
                key: crate::keys::manifest_key(&self.prefix, found.manifest_id).to_string(),
                reason: format!(
                    "written by another writer with epoch {} (own epoch {}): only a claim raises the epoch",
                    found.writer_epoch, self.epoch
                ),
            }
        }
    }

    /// Fails with [`Error::Fenced`] once this writer has been fenced.
    pub(crate) fn check_not_fenced(&self, state: &TierState) -> Result<()> {
        match state.fenced_by {
            Some((newer_epoch, manifest_id)) => Err(Error::Fenced {
                own_epoch: self.epoch,
                newer_epoch,
                manifest_id,
            }),
            None => Ok(()),
        }
    }

    /// Checks that no manifest follows this writer's newest: one GET of the next id. Manifest
    /// ids are dense (each is written create-only at the id after the newest its writer
    /// read), so if that id is free no later one exists and nobody has claimed the log since.
    pub(crate) async fn check_next_id_free(&self, state: &mut TierState) -> Result<()> {
        loop {
            let next_id = next_number(&self.prefix, state.latest.manifest_id)?;
            match objects::read_manifest(self.store.as_ref(), &self.prefix, next_id).await? {
                None => return Ok(()),
                Some(found)
                    if found.writer_nonce == self.nonce && found.writer_epoch == self.epoch =>
                {
                    // An earlier commit of ours whose outcome was unknown: adopt it, and look
                    // at the id after it (a claim may have followed it).
                    state.latest = found;
                }
                Some(found) => return Err(self.fenced_by(state, &found)),
            }
        }
    }

    /// Brings `state.latest` up to the store's newest manifest when that one is this
    /// writer's own (an earlier commit whose outcome was unknown), and fails with
    /// [`Error::Fenced`] when it is a newer owner's. Used before deleting anything.
    pub(crate) async fn confirm_ownership(&self, state: &mut TierState) -> Result<()> {
        self.check_not_fenced(state)?;
        let newest = objects::latest_manifest(self.store.as_ref(), &self.prefix).await?;
        let Some(newest) = newest else {
            return Err(Error::NoManifest {
                prefix: self.prefix.to_string(),
            });
        };
        if newest.writer_nonce == self.nonce && newest.writer_epoch == self.epoch {
            if newest.manifest_id >= state.latest.manifest_id {
                state.latest = newest;
            }
            return Ok(());
        }
        Err(self.fenced_by(state, &newest))
    }
}

/// Whether `dir` holds a segment, local (`.seg`) or offloaded (`.off`): a log, not a
/// restore's destination (which holds at most its lock and a claim record).
fn holds_segments(dir: &std::path::Path) -> Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::Io {
                op: "read_dir",
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::Io {
            op: "read_dir",
            path: dir.to_path_buf(),
            source: e,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".seg") || name.ends_with(".off") {
            return Ok(true);
        }
    }
    Ok(false)
}
