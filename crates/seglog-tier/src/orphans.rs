//! Orphan collection: deleting uploaded objects that no manifest will ever need.
//!
//! An upload that was never named (a crash or failure before the manifest commit, a zombie's
//! upload after it was fenced) and an object the newest manifest stopped naming (a
//! compaction's input) are orphans. What must hold — checked in this order, each a reason
//! to keep an object:
//! 1. only the owner collects: the store's newest manifest must be this writer's own (same
//!    epoch and nonce), else [`Error::Fenced`] and nothing is deleted;
//! 2. only objects uploaded by an epoch ≤ the collector's (parsed from the key): a newer
//!    owner's uploads, even ones it has not named yet, carry a higher epoch, so a collector
//!    fenced between its check and its deletes still cannot touch them;
//! 3. only objects the newest manifest does not name (a newer owner's manifest names only
//!    objects the collector's newest names, or its own higher-epoch uploads);
//! 4. only objects older than the grace period (last modified by the store's clock vs ours);
//! 5. never a key this build did not write (unparseable names are left alone).
//!
//! The same rules apply to the chunks of active segments (`chunks/<folder>/<index>`): a
//! folder the newest manifest does not name as its active segment's is an orphan, its epoch
//! (in the folder's name) that of the writer that named it.
//!
//! The collection lists without holding the claim's state lock, then deletes in batches:
//! each batch is checked again under the lock against the newest manifest (a ship round may
//! have named an object since the listing) and marked as being deleted, and the lock is
//! released before the DELETEs, so that ship rounds, and the acknowledgements of
//! `Durability::Remote` rounds, do not wait for a whole collection (review 29). A round that
//! would reuse an uploaded object being deleted waits for its deletion and uploads it again.
//!
//! Manifests are pruned too, but only the collector's own, and never two kinds of them. A
//! writer learns that it is fenced when the id after its newest manifest is taken (its next
//! commit collides, or the GET of that id finds another writer's manifest), so an id a stale
//! writer may still write must never fall free. The ids a writer ever touches after its
//! newest known manifest `k` are `k + 1` (its own commit whose outcome was unknown, if any,
//! and otherwise the next owner's claim) and, after adopting that own commit, the id after
//! it (again the next owner's claim). So the manifest a claim writes and the last manifest
//! of every writer are kept, and what falls free lies strictly between a writer's claim and
//! its newest: ids only that writer wrote, and which no other writer ever probes. Each
//! owner prunes its own run of manifests in [`Tier::collect_orphans`]; a writer that stopped
//! before its collection leaves what it wrote since its last one (docs/scale-out.md).

use crate::claim::Tier;
use crate::error::{Error, Result};
use crate::keys;
use crate::manifest::Manifest;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectMeta;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Objects deleted per batch: one bulk DELETE request on S3 (at most 1,000 keys per
/// request), and the most a ship round waits behind.
const DELETE_BATCH: usize = 100;

/// What [`Tier::collect_orphans`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrphanReport {
    /// Objects deleted.
    pub deleted: Vec<String>,
    /// Orphans kept because they are younger than the grace period.
    pub kept_young: usize,
    /// Unnamed objects of a newer epoch (another owner's), kept.
    pub kept_newer_epoch: usize,
    /// This writer's own manifests deleted: those after its claim's and before its newest.
    pub manifests_deleted: Vec<String>,
}

/// A listed object the collection means to delete, with what makes it deletable, checked
/// again under the lock just before its batch goes.
enum Candidate {
    /// A segment or a checkpoint: deletable while the newest manifest does not name it.
    Uploaded(ObjectMeta),
    /// A chunk: deletable while the newest manifest names another active segment's folder.
    Chunk(ObjectMeta),
    /// One of this writer's own manifests: deletable while it is below the newest.
    Manifest(u64, ObjectMeta),
}

impl Candidate {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Candidate::Uploaded(m) | Candidate::Chunk(m) | Candidate::Manifest(_, m) => m,
        }
    }

    fn location(&self) -> &Path {
        &self.meta().location
    }

    fn still_deletable(&self, tier: &Tier, kept: &Kept<'_>) -> bool {
        match self {
            Candidate::Uploaded(m) => !kept.named.contains(m.location.as_ref()),
            Candidate::Chunk(m) => !kept
                .chunk_folder
                .as_ref()
                .is_some_and(|folder| m.location.prefix_matches(folder)),
            Candidate::Manifest(id, _) => *id > tier.claim_manifest_id && *id < kept.manifest_id,
        }
    }
}

/// What a manifest keeps: the objects it names, its active segment's chunk folder, and its
/// own id (the owner's manifests below it may go). Built once per check, not per object.
struct Kept<'a> {
    named: HashSet<&'a str>,
    chunk_folder: Option<Path>,
    manifest_id: u64,
}

impl<'a> Kept<'a> {
    fn by(tier: &Tier, newest: &'a Manifest) -> Kept<'a> {
        Kept {
            named: newest.named_keys().collect(),
            chunk_folder: newest.active.map(|a| keys::chunk_folder(&tier.prefix, &a)),
            manifest_id: newest.manifest_id,
        }
    }
}

/// The keys orphan collections are deleting now, outside the claim's state lock, each with
/// the number of batches deleting it (two collections may run at once: a key stays marked
/// until the last of their DELETEs has ended).
#[derive(Debug, Default)]
pub(crate) struct Deleting {
    keys: parking_lot::Mutex<HashMap<String, usize>>,
    done: tokio::sync::Notify,
}

impl Deleting {
    fn mark(&self, keys: impl Iterator<Item = String>) {
        let mut marked = self.keys.lock();
        for key in keys {
            *marked.entry(key).or_default() += 1;
        }
    }

    fn unmark<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        {
            let mut marked = self.keys.lock();
            for key in keys {
                if let Some(batches) = marked.get_mut(key) {
                    *batches = batches.saturating_sub(1);
                    if *batches == 0 {
                        marked.remove(key);
                    }
                }
            }
        }
        self.done.notify_waiters();
    }

    /// Waits while `key` is being deleted (a ship round about to reuse an uploaded object
    /// it finds in the bucket must upload it again instead).
    pub(crate) async fn wait_for(&self, key: &Path) {
        loop {
            // Created before the check, so an unmark between the two is not missed.
            let done = self.done.notified();
            if !self.keys.lock().contains_key(key.as_ref()) {
                return;
            }
            // Shielded: `unmark` wakes every waiter at once, on the collector's task.
            seglog_segment::shielded(done, "a ship round's").await;
        }
    }
}

/// The age test of the grace period (last modified by the store's clock vs ours).
struct Grace {
    grace_millis: i64,
    now_millis: i64,
}

impl Grace {
    fn passed(&self, meta: &ObjectMeta) -> bool {
        let age_millis = self
            .now_millis
            .saturating_sub(meta.last_modified.timestamp_millis());
        age_millis >= self.grace_millis
    }
}

/// The epoch in the folder name of a `chunks/<folder>/<index>` key (`None` for any other).
fn chunk_folder_epoch(dir: &Path, location: &Path) -> Option<u64> {
    let mut parts = location.prefix_match(dir)?;
    let (Some(folder), Some(_index), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    keys::parse_chunk_folder_epoch(folder.as_ref())
}

impl Tier {
    async fn list_dir(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| Error::store("list", dir, e))
    }

    /// Files a listed object uploaded by `epoch`: dropped if `named` names it, kept (and
    /// counted) if a newer epoch uploaded it or it is younger than the grace period, else a
    /// candidate.
    fn consider(
        &self,
        candidate: Candidate,
        epoch: u64,
        named: &Kept<'_>,
        grace: &Grace,
        report: &mut OrphanReport,
        out: &mut Vec<Candidate>,
    ) {
        if !candidate.still_deletable(self, named) {
            return;
        }
        if epoch > self.epoch {
            report.kept_newer_epoch += 1;
        } else if grace.passed(candidate.meta()) {
            out.push(candidate);
        } else {
            report.kept_young += 1;
        }
    }

    /// The segments and checkpoints that `named` does not name, of an epoch ≤ this
    /// writer's, past the grace period.
    async fn uploaded_candidates(
        &self,
        named: &Kept<'_>,
        grace: &Grace,
        report: &mut OrphanReport,
        out: &mut Vec<Candidate>,
    ) -> Result<()> {
        for dir in [keys::SEGMENT_DIR, keys::CHECKPOINT_DIR] {
            let dir = self.prefix.clone().join(dir);
            for meta in self.list_dir(&dir).await? {
                if !keys::directly_in(&dir, &meta.location) {
                    continue;
                }
                let Some(epoch) = keys::parse_object_epoch(&meta.location) else {
                    continue;
                };
                self.consider(Candidate::Uploaded(meta), epoch, named, grace, report, out);
            }
        }
        Ok(())
    }

    /// The chunks of active segments `named` does not name (segments sealed and shipped
    /// since, or never named), under the same rules: a folder of an epoch ≤ the
    /// collector's, each chunk past the grace period. Only `chunks/<folder>/<index>` keys.
    async fn chunk_candidates(
        &self,
        named: &Kept<'_>,
        grace: &Grace,
        report: &mut OrphanReport,
        out: &mut Vec<Candidate>,
    ) -> Result<()> {
        let dir = self.prefix.clone().join(keys::CHUNK_DIR);
        for meta in self.list_dir(&dir).await? {
            let Some(epoch) = chunk_folder_epoch(&dir, &meta.location) else {
                continue;
            };
            if keys::parse_chunk_index(&meta.location).is_none() {
                continue;
            }
            self.consider(Candidate::Chunk(meta), epoch, named, grace, report, out);
        }
        Ok(())
    }

    /// This writer's own manifests strictly between the one its claim wrote and its newest
    /// manifest `named`, past the grace period (module docs: no other writer ever reads or writes
    /// those ids again).
    async fn manifest_candidates(
        &self,
        named: &Kept<'_>,
        grace: &Grace,
        out: &mut Vec<Candidate>,
    ) -> Result<()> {
        if named.manifest_id.saturating_sub(self.claim_manifest_id) < 2 {
            return Ok(());
        }
        let listing = crate::objects::manifest_listing(
            self.store.as_ref(),
            &self.prefix,
            Some(self.claim_manifest_id),
        )
        .await?;
        out.extend(
            listing
                .into_iter()
                .map(|(id, meta)| Candidate::Manifest(id, meta))
                .filter(|c| c.still_deletable(self, named))
                .filter(|c| grace.passed(c.meta())),
        );
        Ok(())
    }

    /// Deletes one batch: under the lock, checks again that this writer owns the log and
    /// brings its view up to its own newest manifest in the bucket (a round whose commit's
    /// outcome it never learnt may have named a candidate since the listing: review 30) with
    /// the GET of the id after its newest, as a ship round does (ids are dense, and pruning
    /// never frees that id),
    /// keeps the candidates that manifest leaves deletable and marks them as being deleted;
    /// then deletes them without the lock, in a task of its own, so
    /// that a collection dropped mid-batch still ends the batch and unmarks its keys (a key
    /// left marked would hold every round that reuses it; one unmarked while its DELETE may
    /// still land would let a round name an object about to vanish).
    async fn delete_batch(&self, batch: Vec<Candidate>, report: &mut OrphanReport) -> Result<()> {
        let doomed: Vec<Candidate> = {
            let mut state = self.lock_state().await;
            self.check_not_fenced(&state)?;
            self.check_next_id_free(&mut state).await?;
            let kept = Kept::by(self, &state.latest);
            let doomed: Vec<Candidate> = batch
                .into_iter()
                .filter(|c| c.still_deletable(self, &kept))
                .collect();
            self.deleting
                .mark(doomed.iter().map(|c| c.location().to_string()));
            doomed
        };
        let locations: Vec<Path> = doomed.iter().map(|c| c.location().clone()).collect();
        let task = tokio::spawn({
            let (store, deleting) = (self.store.clone(), self.deleting.clone());
            async move {
                let stream = futures_util::stream::iter(locations.clone().into_iter().map(Ok));
                let result = store
                    .delete_stream(stream.boxed())
                    .map(|r| match r {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(e),
                    })
                    .try_collect::<Vec<()>>()
                    .await;
                deleting.unmark(locations.iter().map(|l| l.as_ref()));
                result
            }
        });
        let result = task.await.map_err(|e| Error::Task(e.to_string()))?;
        if let Err(e) = result {
            let key = doomed
                .first()
                .map(|c| c.location().clone())
                .unwrap_or_default();
            return Err(Error::store("delete", &key, e));
        }
        for c in doomed {
            match c {
                Candidate::Manifest(_, m) => report.manifests_deleted.push(m.location.to_string()),
                Candidate::Uploaded(m) | Candidate::Chunk(m) => {
                    report.deleted.push(m.location.to_string())
                }
            }
        }
        Ok(())
    }

    /// Deletes the segments and checkpoints under the prefix that the newest manifest does
    /// not name, that an epoch ≤ this writer's uploaded, and that are older than `grace`;
    /// the chunks of active segments the newest manifest no longer names, under the same
    /// rules; then this writer's own manifests older than `grace` between the one its claim
    /// wrote and its newest (which are kept, as is every other writer's manifest). Set
    /// `grace` well above the longest time between an upload and its manifest commit
    /// (default advice: an hour). Ship rounds go on while it runs (module docs).
    ///
    /// # Errors
    /// [`Error::Fenced`] when this writer no longer owns the log (nothing is deleted; a
    /// writer fenced during the collection stops at its next batch), store errors (what was
    /// deleted before stays deleted; running again is safe).
    pub async fn collect_orphans(&self, grace: Duration) -> Result<OrphanReport> {
        let newest = {
            let mut state = self.lock_state().await;
            self.confirm_ownership(&mut state).await?;
            state.latest.clone()
        };
        let named = Kept::by(self, &newest);
        let grace = Grace {
            grace_millis: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX),
            now_millis: crate::claim::now_unix_millis() as i64,
        };
        let mut report = OrphanReport::default();
        let mut candidates = Vec::new();
        self.uploaded_candidates(&named, &grace, &mut report, &mut candidates)
            .await?;
        self.chunk_candidates(&named, &grace, &mut report, &mut candidates)
            .await?;
        self.manifest_candidates(&named, &grace, &mut candidates)
            .await?;
        let mut candidates = candidates.into_iter().peekable();
        while candidates.peek().is_some() {
            let batch: Vec<Candidate> = candidates.by_ref().take(DELETE_BATCH).collect();
            self.delete_batch(batch, &mut report).await?;
        }
        if !report.deleted.is_empty() || !report.manifests_deleted.is_empty() {
            tracing::info!(
                deleted = report.deleted.len(),
                manifests = report.manifests_deleted.len(),
                "collected orphans"
            );
        }
        Ok(report)
    }
}
