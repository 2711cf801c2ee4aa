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
use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::HashSet;
use std::time::Duration;

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

impl Tier {
    /// Deletes the listed object if it is older than the grace period (last modified by
    /// the store's clock vs ours); `false` when it is younger and was kept.
    async fn delete_if_old(
        &self,
        meta: &object_store::ObjectMeta,
        grace_millis: i64,
        now_millis: i64,
    ) -> Result<bool> {
        let age_millis = now_millis.saturating_sub(meta.last_modified.timestamp_millis());
        if age_millis < grace_millis {
            return Ok(false);
        }
        match self.store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(Error::store("delete", &meta.location, e)),
        }
    }

    /// The chunks of active segments the newest manifest does not name (segments sealed and
    /// shipped since, or never named), under the same rules: a folder of an epoch ≤ the
    /// collector's, each chunk older than the grace period. Only `chunks/<folder>/<index>`
    /// keys are considered.
    async fn collect_chunks(
        &self,
        state: &crate::claim::TierState,
        grace_millis: i64,
        now_millis: i64,
        report: &mut OrphanReport,
    ) -> Result<()> {
        let dir = self.prefix.clone().join(keys::CHUNK_DIR);
        let named = state
            .latest
            .active
            .map(|a| keys::chunk_folder(&self.prefix, &a));
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| Error::store("list", &dir, e))?;
        for meta in metas {
            let Some(mut parts) = meta.location.prefix_match(&dir) else {
                continue;
            };
            let (Some(folder), Some(_index), None) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(epoch) = keys::parse_chunk_folder_epoch(folder.as_ref()) else {
                continue;
            };
            if keys::parse_chunk_index(&meta.location).is_none()
                || named
                    .as_ref()
                    .is_some_and(|n| meta.location.prefix_matches(n))
            {
                continue;
            }
            if epoch > self.epoch {
                report.kept_newer_epoch += 1;
                continue;
            }
            if !self.delete_if_old(&meta, grace_millis, now_millis).await? {
                report.kept_young += 1;
                continue;
            }
            report.deleted.push(meta.location.to_string());
        }
        Ok(())
    }

    /// Deletes this writer's own manifests strictly between the one its claim wrote and its
    /// newest, once older than the grace period (module docs: no other writer ever reads or
    /// writes those ids again). The caller has just confirmed that the newest manifest is
    /// this writer's.
    async fn prune_own_manifests(
        &self,
        state: &crate::claim::TierState,
        grace_millis: i64,
        now_millis: i64,
        report: &mut OrphanReport,
    ) -> Result<()> {
        let first = self.claim_manifest_id;
        let newest = state.latest.manifest_id;
        if newest.saturating_sub(first) < 2 {
            return Ok(());
        }
        let listing = crate::objects::manifest_listing(self.store.as_ref(), &self.prefix).await?;
        for (id, meta) in listing {
            if id <= first || id >= newest {
                continue;
            }
            if self.delete_if_old(&meta, grace_millis, now_millis).await? {
                report.manifests_deleted.push(meta.location.to_string());
            }
        }
        Ok(())
    }

    /// Deletes the segments and checkpoints under the prefix that the newest manifest does
    /// not name, that an epoch ≤ this writer's uploaded, and that are older than `grace`;
    /// then this writer's own manifests older than `grace` between the one its claim wrote
    /// and its newest (which are kept, as is every other writer's manifest). Set `grace`
    /// well above the longest time between an upload and its manifest commit (default
    /// advice: an hour).
    ///
    /// # Errors
    /// [`Error::Fenced`] when this writer no longer owns the log (nothing is deleted), store
    /// errors (what was deleted before stays deleted; running again is safe).
    pub async fn collect_orphans(&self, grace: Duration) -> Result<OrphanReport> {
        let mut state = self.state.lock().await;
        self.confirm_ownership(&mut state).await?;
        let named: HashSet<&str> = state.latest.named_keys().collect();
        let now_millis = crate::claim::now_unix_millis() as i64;
        let grace_millis = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut report = OrphanReport::default();
        for dir in [keys::SEGMENT_DIR, keys::CHECKPOINT_DIR] {
            let dir = self.prefix.clone().join(dir);
            let metas: Vec<_> = self
                .store
                .list(Some(&dir))
                .try_collect()
                .await
                .map_err(|e| Error::store("list", &dir, e))?;
            for meta in metas
                .iter()
                .filter(|m| keys::directly_in(&dir, &m.location))
            {
                let Some(epoch) = keys::parse_object_epoch(&meta.location) else {
                    continue;
                };
                if named.contains(meta.location.as_ref()) {
                    continue;
                }
                if epoch > self.epoch {
                    report.kept_newer_epoch += 1;
                    continue;
                }
                if !self.delete_if_old(meta, grace_millis, now_millis).await? {
                    report.kept_young += 1;
                    continue;
                }
                report.deleted.push(meta.location.to_string());
            }
        }
        self.collect_chunks(&state, grace_millis, now_millis, &mut report)
            .await?;
        self.prune_own_manifests(&state, grace_millis, now_millis, &mut report)
            .await?;
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
