//! Repairing a damaged log directory (`seglog repair`): plan the salvage, ask, cut, check.
//!
//! The cut is the library's own [`crate::RecoveryMode::Salvage`] open; this module adds what
//! a person repairing a log needs around it:
//! - *what will go, before it goes*: [`plan_salvage`] reads the files with the scan recovery
//!   uses and lists the segment cut (where, how many bytes and records), the segments
//!   removed after it, and damaged checkpoints;
//! - *no writer in between*: [`repair_dir`] takes the directory's lock first (failing with
//!   [`seglog_segment::Error::Locked`] when a writer has the log open) and holds it while it
//!   plans, asks, opens in salvage mode (through a file system that knows the lock is held)
//!   and verifies, so the log that is cut is the log that was planned;
//! - *proof it did what it said*: after the open, the files are compared with the plan (the
//!   cut segment ends at the planned offset, the removed segments are gone, every other
//!   segment is whole), and the directory is verified ([`crate::verify_dir`]).
//!
//! Invariant: nothing is changed unless the plan is non-empty and `confirm` approved it; a
//! salvage open that fails (records that contradict each other before the damage) fails
//! before its first cut.

mod plan;
mod prelocked;

pub use plan::{
    plan_salvage, DamagedCheckpoint, KeptSegment, RemovedSegment, SalvagePlan, SegmentCut,
};
use seglog_segment::format::SEGMENT_HEADER_LEN;

use crate::{CheckpointMode, Error, Log, Options, RecoveryMode, Result, VerifyReport};
use prelocked::PreLocked;
use seglog_segment::format::LogId;
use seglog_segment::io::{FileSystem, StdFs};
use std::path::Path;

/// What [`repair_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// What the repair changes (or, when not `repaired`, would have changed).
    pub plan: SalvagePlan,
    /// True when the plan was carried out; false when there was nothing to do or `confirm`
    /// said no (then nothing was changed).
    pub repaired: bool,
    /// Where the files after the repair differ from the plan (empty when they match, as they
    /// must: the plan and the cut use the same scan, under one lock).
    pub differences: Vec<String>,
    /// The directory verified after the repair (before it, when nothing was done).
    pub verified: VerifyReport,
}

/// [`repair_dir_with_fs`] on real files.
///
/// # Errors
/// As [`repair_dir_with_fs`].
pub fn repair_dir(
    dir: impl AsRef<Path>,
    confirm: impl FnOnce(&SalvagePlan) -> bool,
) -> Result<RepairReport> {
    repair_dir_with_fs(StdFs, dir.as_ref(), confirm)
}

/// Repairs the log in `dir`: takes its lock, plans the salvage ([`plan_salvage`]), and if
/// there is something to do and `confirm` approves the plan, opens the log in
/// [`RecoveryMode::Salvage`] (which cuts), closes it, removes the damaged checkpoints, checks
/// the files against the plan and verifies the directory. The lock is held from before the
/// plan until after the verification.
///
/// # Errors
/// [`seglog_segment::Error::Locked`] (through [`Error::Segment`]) when another process has
/// the log open: nothing was read or changed; a missing directory; damage salvage cannot
/// repair (see [`plan_salvage`]), refused before any change; I/O errors; errors of the
/// salvage open (records that contradict each other before the damage: nothing was cut).
///
/// The cut is made by copy and rename, never in place: a backup made by
/// [`crate::Log::backup`], which hard-links sealed segments, keeps every byte.
pub fn repair_dir_with_fs<F: FileSystem + Clone>(
    fs: F,
    dir: &Path,
    confirm: impl FnOnce(&SalvagePlan) -> bool,
) -> Result<RepairReport> {
    refuse_unless_a_log(&fs, dir)?;
    let _lock = lock(&fs, dir)?;
    // A damaged identity would stop the salvage open after the question: refused now, before
    // anything is asked or cut (review 45). `mend_log_id` writes it again.
    seglog_segment::log_id::read(&fs, dir)?;
    let plan = plan_salvage(&fs, dir)?;
    if plan.is_empty() || !confirm(&plan) {
        return Ok(RepairReport {
            verified: crate::verify_dir_with_fs(&fs, dir)?,
            plan,
            repaired: false,
            differences: Vec::new(),
        });
    }
    let options = salvage_options();
    let held = PreLocked {
        inner: fs.clone(),
        // As the open names it: a log opened by a relative path works by its absolute one.
        locked: fs.absolute(dir).map_err(|e| Error::io("getcwd", dir, e))?,
    };
    let log = Log::open_with_fs(held, dir.to_path_buf(), options)?;
    log.close()?;
    // The open finished any interrupted offload: it wrote the segment's checkpoint again
    // from the file, then removed the file. An offloaded segment's checkpoint is its only
    // index, and the open that just succeeded checked it: never removed (review 51).
    let offloaded = offloaded_first_lsns(&fs, dir)?;
    let offloaded_checkpoint = |path: &Path| {
        offloaded
            .iter()
            .any(|&lsn| dir.join(seglog_index::checkpoint::checkpoint_file_name(lsn)) == path)
    };
    for cp in plan
        .damaged_checkpoints
        .iter()
        .filter(|cp| !offloaded_checkpoint(&cp.path))
    {
        match fs.remove(&cp.path) {
            Ok(()) => {}
            // Removed by the open already (it no longer described its segment).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &cp.path, e)),
        }
    }
    if !plan.damaged_checkpoints.is_empty() {
        // IMPORTANT: a damaged checkpoint must not come back after a power cut.
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    let differences = compare(&fs, &plan, &offloaded)?;
    Ok(RepairReport {
        verified: crate::verify_dir_with_fs(&fs, dir)?,
        plan,
        repaired: true,
        differences,
    })
}

/// A salvage keeps the offloaded segments (their stubs and checkpoints: their bytes are in
/// the bucket) when the log it leaves still opens (format.md §7): every offloaded segment
/// lies before the last local segment left and is numbered below the highest of them and
/// as none of them, and its checkpoint is valid (the open indexes its records from it). An
/// interrupted offload (stub and file both here) is the open's to finish: its stub must
/// describe the very file, and the salvage must not cut or remove that file (the bucket
/// holds its bytes; the open removes it). Anything else is refused here, before anything
/// is asked or cut: such a log is restored from its bucket instead.
pub(super) fn check_offloaded<F: FileSystem>(fs: &F, dir: &Path, plan: &SalvagePlan) -> Result<()> {
    let restore = "restore the log from its bucket (`seglog restore`) instead";
    let (stubs, _) = crate::offloaded::stub::list(fs, dir)
        .map_err(|e| Error::Unrepairable(format!("{e}; {restore}")))?;
    if stubs.is_empty() {
        return Ok(());
    }
    let verified = crate::verify_dir_with_fs(fs, dir)?;
    let changed_by_salvage = |path: &Path| {
        plan.cut.as_ref().is_some_and(|c| c.path == path)
            || plan.removed.iter().any(|r| r.path == path)
            || plan.incomplete_segment.as_deref() == Some(path)
            || plan.empty_files.iter().any(|e| e == path)
    };
    let mut interrupted = Vec::new();
    for stub in &stubs {
        let Some(local) = verified
            .segments
            .iter()
            .find(|l| l.first_lsn == Some(stub.first_lsn))
        else {
            continue;
        };
        if read_header(fs, &local.path)? != Some(stub.header_bytes) {
            return Err(Error::Unrepairable(format!(
                "the offload stub of first LSN {} describes another segment than the file {} \
                 (an offload of another copy of the log?); {restore}",
                stub.first_lsn,
                local.path.display()
            )));
        }
        if changed_by_salvage(&local.path) {
            return Err(Error::Unrepairable(format!(
                "segment {} was being offloaded (its stub is committed, its file still here) \
                 and the salvage would cut or remove that file: open the log normally first \
                 (the open finishes the offload and removes the file; its bytes are in the \
                 bucket), then repair again if needed",
                stub.number
            )));
        }
        interrupted.push(local.path.clone());
    }
    // The local segments the salvage leaves (the cut one among them), less the files of
    // interrupted offloads the open removes (unless one is the last: then it stays local).
    let kept: Vec<&crate::VerifiedSegment> = verified
        .segments
        .iter()
        .filter(|s| plan.kept.iter().any(|k| k.path == s.path))
        .collect();
    let last_kept = kept.last().map(|k| k.path.clone());
    let local_left: Vec<&crate::VerifiedSegment> = kept
        .into_iter()
        .filter(|k| !interrupted.contains(&k.path) || Some(&k.path) == last_kept.as_ref())
        .collect();
    let last_first_lsn = local_left.iter().filter_map(|k| k.first_lsn).max();
    let highest_number = local_left.iter().filter_map(|k| k.number).max();
    for stub in stubs.iter().filter(|s| {
        !verified
            .segments
            .iter()
            .any(|l| l.first_lsn == Some(s.first_lsn))
    }) {
        let after = last_first_lsn.is_none_or(|last| stub.first_lsn > last);
        let numbered_above = highest_number.is_none_or(|high| stub.number >= high)
            || local_left.iter().any(|k| k.number == Some(stub.number));
        if after || numbered_above {
            return Err(Error::Unrepairable(format!(
                "segment {} is offloaded and the salvage would leave it {}: the log it leaves \
                 would not open (an offloaded segment must come before the last local one and \
                 be numbered below it); {restore}",
                stub.number,
                if after {
                    "after the last local segment"
                } else {
                    "numbered at or above the local segments it keeps"
                }
            )));
        }
    }
    if let Some(bad) = verified
        .offloaded
        .iter()
        .find(|o| o.health() != crate::Health::Clean)
    {
        let state = match &bad.checkpoint {
            crate::CheckpointCheck::Missing => "missing".to_owned(),
            crate::CheckpointCheck::Damaged(r) | crate::CheckpointCheck::Stale(r) => {
                format!("damaged ({r})")
            }
            other => format!("{other:?}"),
        };
        return Err(Error::Unrepairable(format!(
            "offloaded segment {}'s checkpoint is {state}: its records cannot be indexed, and \
             a salvage cannot rebuild it (its bytes are in the bucket); {restore}",
            bad.number
        )));
    }
    Ok(())
}

/// The first LSNs of the offloaded segments of `dir` (their stubs).
fn offloaded_first_lsns<F: FileSystem>(fs: &F, dir: &Path) -> Result<Vec<u64>> {
    Ok(crate::offloaded::stub::list(fs, dir)?
        .0
        .iter()
        .map(|s| s.first_lsn)
        .collect())
}

/// The directory a segment file lies in.
fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// The first [`SEGMENT_HEADER_LEN`] bytes of the file at `path` (`None` when it is shorter).
fn read_header<F: FileSystem>(fs: &F, path: &Path) -> Result<Option<[u8; SEGMENT_HEADER_LEN]>> {
    use seglog_segment::io::SegmentFile;
    let file = fs
        .open_read_only(path)
        .map_err(|e| Error::io("open", path, e))?;
    if file.len().map_err(|e| Error::io("stat", path, e))? < SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(header))
}

/// The options of the salvage open. Nothing is appended: no reservation, no zeroing thread;
/// checkpoints of segments the open seals (a compaction output left last) are written
/// before it returns.
#[allow(
    clippy::field_reassign_with_default,
    reason = "Options becomes #[non_exhaustive]: no struct literal"
)]
fn salvage_options() -> Options {
    let mut options = Options::default();
    options.recovery_mode = RecoveryMode::Salvage;
    options.preallocate = false;
    options.zero_ahead_bytes = 0;
    options.prepare_next_segment = false;
    options.checkpoints = CheckpointMode::Inline;
    options
}

/// True when `bytes`, found at a path the plan removed, are a segment the salvage open
/// started afresh under the same name (the log's next LSN is the removed segment's first,
/// as after a cut that kept a clustered segment's greatest LSN): a whole header, of another
/// segment file than the removed one, and no event record.
fn started_again(bytes: &[u8], path: &Path, plan: &SalvagePlan) -> bool {
    let analysis = seglog_segment::inspect::analyze_segment(bytes, 0);
    let Ok(header) = &analysis.header else {
        return false;
    };
    // The incomplete segment had no whole header; a removed one is known by its salt (its
    // number may be given out again).
    let another = plan.incomplete_segment.as_deref() == Some(path)
        || plan.empty_files.iter().any(|e| e == path)
        || plan
            .removed
            .iter()
            .any(|r| r.path == path && r.record_salt != Some(header.record_salt()));
    another && analysis.record_offsets.is_empty() && analysis.damage.is_none()
}

/// Where the directory after the salvage differs from the plan: a removed segment still
/// there, a kept segment gone, damaged, or holding another number of records, a cut segment
/// that does not end where the plan cut it (a commit marker after the cut is the close's).
fn compare<F: FileSystem>(fs: &F, plan: &SalvagePlan, offloaded: &[u64]) -> Result<Vec<String>> {
    let mut differences = Vec::new();
    let gone = plan
        .removed
        .iter()
        .map(|r| &r.path)
        .chain(plan.incomplete_segment.as_ref())
        .chain(plan.empty_files.iter());
    for path in gone {
        match seglog_segment::inspect::read_file(fs, path) {
            Err(seglog_segment::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
            Ok(bytes) if started_again(&bytes, path, plan) => {}
            Ok(_) => differences.push(format!("{} was to be removed but is there", path.display())),
        }
    }
    for kept in &plan.kept {
        let bytes = match seglog_segment::inspect::read_file(fs, &kept.path) {
            Ok(b) => b,
            Err(seglog_segment::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // An interrupted offload the open finished: the segment is kept, offloaded.
                if offloaded.iter().any(|&lsn| {
                    dir_of(&kept.path).join(seglog_segment::format::segment_file_name(lsn))
                        == kept.path
                }) {
                    continue;
                }
                differences.push(format!(
                    "{} was to be kept but is gone",
                    kept.path.display()
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let analysis = seglog_segment::inspect::analyze_segment(&bytes, 0);
        let records = analysis.record_offsets.len() as u64;
        if analysis.header.is_err() || analysis.damage.is_some() || records != kept.records {
            differences.push(format!(
                "{} was to keep {} valid records, it has {records}{}",
                kept.path.display(),
                kept.records,
                if analysis.damage.is_some() || analysis.header.is_err() {
                    " and is damaged"
                } else {
                    ""
                }
            ));
        }
        if let Some(cut) = plan.cut.as_ref().filter(|c| c.path == kept.path) {
            // Intact up to the cut, and nothing after it but the close's commit marker.
            let room = seglog_segment::format::COMMIT_MARKER_LEN as u64;
            if analysis.data_end < cut.offset || analysis.file_bytes > cut.offset + room {
                differences.push(format!(
                    "{} was to be cut at {}: its intact bytes now end at {} of {}",
                    kept.path.display(),
                    cut.offset,
                    analysis.data_end,
                    analysis.file_bytes
                ));
            }
        }
    }
    Ok(differences)
}

/// Writes `id` as the identity of the log in `dir` (docs/format.md §9), under the directory's
/// lock (refused while a writer has the log open): for a log whose `LOG_ID` is damaged (its
/// writer then refuses to open), with the identity its bucket's manifest names (`seglog
/// remote status` prints it), or with a new one ([`LogId::random`]) for a log that was never
/// shipped. A log of another identity than its bucket's manifest is refused by its ships.
///
/// # Errors
/// [`seglog_segment::Error::Locked`] (through [`Error::Segment`]) when another process has
/// the log open; [`Error::Unrepairable`] for a directory that holds no segment file; I/O
/// errors.
pub fn mend_log_id_with_fs<F: FileSystem>(fs: &F, dir: &Path, id: LogId) -> Result<()> {
    refuse_unless_a_log(fs, dir)?;
    let _lock = lock(fs, dir)?;
    seglog_segment::log_id::write(fs, dir, id)?;
    tracing::info!(dir = %dir.display(), log_id = %id, "wrote the log's identity");
    Ok(())
}

/// [`mend_log_id_with_fs`] on real files.
///
/// # Errors
/// As [`mend_log_id_with_fs`].
pub fn mend_log_id(dir: impl AsRef<Path>, id: LogId) -> Result<()> {
    mend_log_id_with_fs(&StdFs, dir.as_ref(), id)
}

/// Never creates a log where there is none (the lock file would be the first write): a
/// directory without a segment file is refused.
fn refuse_unless_a_log<F: FileSystem>(fs: &F, dir: &Path) -> Result<()> {
    match fs.list(dir) {
        Ok(names)
            if names
                .iter()
                .any(|n| n.ends_with(seglog_segment::format::SEGMENT_SUFFIX)) =>
        {
            Ok(())
        }
        Ok(_) => Err(Error::Unrepairable(format!(
            "{} holds no segment files: not a seglog log directory",
            dir.display()
        ))),
        Err(e) => Err(Error::io("list", dir, e)),
    }
}

/// The directory's lock, or [`seglog_segment::Error::Locked`] while a writer holds it (a
/// log of this process letting go of it is waited for, as an open does).
fn lock<F: FileSystem>(fs: &F, dir: &Path) -> Result<F::DirLock> {
    seglog_segment::lock_log_dir(fs, dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::Segment(seglog_segment::Error::Locked {
            dir: dir.to_path_buf(),
        }),
        _ => Error::io("lock", dir, e),
    })
}
