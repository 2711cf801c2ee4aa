//! The divergence check a ship makes before it commits: the local log must continue the
//! log the newest manifest describes, since the commit names the local log's sealed
//! segments and nothing else, and orphan collection then deletes whatever is no longer
//! named.
//!
//! What must hold, for every segment `e` the manifest names (review 12):
//! - the local log reaches at least as far as the manifest (its sealed records, or the start
//!   of its active segment: a compaction may erase the last sealed records whole);
//! - `e` is a local sealed segment (same number, first LSN and record salt) of the same
//!   length; or
//! - `e` was replaced by a compaction: every local segment holding LSNs of `e`'s range is a
//!   compaction output (header flag `COMPACTED`), and there may be none (a compaction, or
//!   retention, which is a compaction, erased `e` whole). A segment `e` with no records
//!   holds nothing to lose.
//!
//! - the active segment it names (chunk shipping) is a local segment at least as long as
//!   its shipped chunks (`chunks_end`, when the caller knows it), or the local log has moved
//!   past it and only compaction outputs hold its first LSN.
//!
//! Anything else — a local segment that is not a compaction output holding LSNs `e` holds,
//! a matching segment of another length, or still active — is another log: the ship fails
//! with [`Error::Diverged`] and commits nothing.
//!
//! What the segments cannot show (a wrong local log that was itself compacted over `e`'s
//! LSNs, or that has no record in `e`'s range at all), the identities do: a manifest that
//! names a log id refuses a local log of another ([`check_identity`]). A manifest written
//! before identities, or a local log read-only opened without one, is judged by its
//! segments alone.

use crate::error::{Error, Result};
use crate::manifest::{ActiveSegment, Manifest};
use seglog_segment::SegmentInfo;
use std::collections::HashMap;

/// Fails with [`Error::Diverged`] when the manifest names a log identity and the local
/// log has another one.
///
/// # Errors
/// [`Error::Diverged`].
pub(crate) fn check_identity(
    manifest: &Manifest,
    local: Option<seglog_segment::format::LogId>,
) -> Result<()> {
    match (manifest.log_identity(), local) {
        (Some(named), Some(local)) if named != local => Err(Error::Diverged(format!(
            "the bucket's manifest {} describes log {named}, the local directory holds log \
             {local}: another log's directory, or another log's prefix",
            manifest.manifest_id
        ))),
        _ => Ok(()),
    }
}

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The local log continues the manifest's: committing its sealed segments drops only
    /// segments a compaction replaced or erased.
    Continues,
    /// A local file was not the segment the listing named when its header was read (a
    /// compaction replaced it): decide at the next round.
    Changed,
}

/// Checks that `local` (the log's segments, in log order) continues `manifest`.
/// `is_compaction_output` reads a local segment's header flag: `Ok(None)` when the file is
/// no longer the segment its info names. It is asked only about local segments that hold
/// LSNs of a manifest segment they are not.
///
/// # Errors
/// [`Error::Diverged`] as in the module's header; the errors of `is_compaction_output`.
pub(crate) fn check(
    manifest: &Manifest,
    local: &[SegmentInfo],
    chunks_end: Option<u64>,
    mut is_compaction_output: impl FnMut(&SegmentInfo) -> Result<Option<bool>>,
) -> Result<Verdict> {
    // How far the log has come: past its last sealed record, and past everything before
    // its active segment (a compaction may have erased the last sealed records whole).
    let local_extent = local
        .iter()
        .map(|s| {
            if s.sealed {
                s.last_lsn
            } else {
                s.first_lsn.saturating_sub(1)
            }
        })
        .max()
        .unwrap_or(0);
    if manifest.last_lsn() > local_extent {
        return Err(Error::Diverged(format!(
            "the manifest names LSNs up to {}, the log reaches only {local_extent}",
            manifest.last_lsn()
        )));
    }
    let by_identity: HashMap<(u64, u64, u64), &SegmentInfo> = local
        .iter()
        .map(|s| ((s.number, s.first_lsn, s.record_salt), s))
        .collect();
    for entry in &manifest.segments {
        if let Some(info) = by_identity.get(&(entry.number, entry.first_lsn, entry.record_salt)) {
            if !info.sealed || info.data_end != entry.segment.len {
                return Err(Error::Diverged(format!(
                    "the manifest names segment {} (first LSN {}) sealed at {} bytes; the local \
                     one is {} at {} bytes",
                    entry.number,
                    entry.first_lsn,
                    entry.segment.len,
                    if info.sealed { "sealed" } else { "active" },
                    info.data_end
                )));
            }
            continue;
        }
        if entry.last_lsn < entry.first_lsn {
            continue; // no records: nothing to lose
        }
        for holder in holders(local, entry.first_lsn, entry.last_lsn) {
            match is_compaction_output(holder)? {
                None => return Ok(Verdict::Changed),
                Some(true) if holder.sealed => {}
                Some(_) => {
                    return Err(Error::Diverged(format!(
                        "the manifest names segment {} (LSNs {}..={}, salt {:016x}), which the \
                         local log does not have; local segment {} holds LSNs of that range and \
                         is not a compaction output",
                        entry.number,
                        entry.first_lsn,
                        entry.last_lsn,
                        entry.record_salt,
                        holder.number
                    )))
                }
            }
        }
    }
    if let Some(active) = &manifest.active {
        return check_active(active, local, chunks_end, is_compaction_output);
    }
    Ok(Verdict::Continues)
}

/// The active segment the manifest names (chunk shipping), whose chunks hold shipped
/// events no sealed segment does: the local log must hold it (active, or sealed since), or
/// have moved past it with only compaction outputs holding its first LSN (it was sealed,
/// then compacted or erased whole). Its end is not in the manifest, so its first LSN stands
/// for its range; a local copy shorter than `chunks_end` (where its chunks end) lost
/// shipped bytes and is `Diverged`.
fn check_active(
    active: &ActiveSegment,
    local: &[SegmentInfo],
    chunks_end: Option<u64>,
    mut is_compaction_output: impl FnMut(&SegmentInfo) -> Result<Option<bool>>,
) -> Result<Verdict> {
    if let Some(s) = local
        .iter()
        .find(|s| active.same_segment(s.number, s.first_lsn, s.record_salt))
    {
        return match chunks_end {
            Some(end) if s.data_end < end => Err(Error::Diverged(format!(
                "the manifest names active segment {} (first LSN {}, salt {:016x}), whose \
                 chunks reach offset {end}; the local one is {} bytes (review 14)",
                active.number, active.first_lsn, active.record_salt, s.data_end
            ))),
            _ => Ok(Verdict::Continues),
        };
    }
    let diverged = |why: String| {
        Err(Error::Diverged(format!(
            "the manifest names active segment {} (first LSN {}, salt {:016x}), whose chunks \
             hold shipped events; {why}",
            active.number, active.first_lsn, active.record_salt
        )))
    };
    if !local.iter().any(|s| s.first_lsn > active.first_lsn) {
        return diverged("the local log neither has it nor has moved past it".into());
    }
    for holder in holders(local, active.first_lsn, active.first_lsn) {
        match is_compaction_output(holder)? {
            None => return Ok(Verdict::Changed),
            Some(true) if holder.sealed => {}
            Some(_) => {
                return diverged(format!(
                    "local segment {} holds its first LSN and is not a compaction output",
                    holder.number
                ))
            }
        }
    }
    Ok(Verdict::Continues)
}

/// The local segments that may hold records with LSNs in `first..=last`. A segment's
/// records lie in `first_lsn..=last_lsn`, except a clustered one's (format.md §3.5), which
/// lie anywhere before the next segment's first LSN; no segment's records reach the next
/// segment's first LSN, so only the last segment starting at or before `first`, and those
/// starting inside the range, are candidates.
fn holders(local: &[SegmentInfo], first: u64, last: u64) -> impl Iterator<Item = &SegmentInfo> {
    let end = local.partition_point(|s| s.first_lsn <= last);
    let start = local
        .partition_point(|s| s.first_lsn <= first)
        .saturating_sub(1)
        .min(end);
    (start..end)
        .filter(move |&i| {
            let s = &local[i];
            let records_end = if s.clustered {
                local
                    .get(i + 1)
                    .map_or(u64::MAX, |next| next.first_lsn.saturating_sub(1))
            } else {
                s.last_lsn
            };
            records_end >= first
        })
        .map(move |i| &local[i])
}

#[cfg(test)]
mod tests;
