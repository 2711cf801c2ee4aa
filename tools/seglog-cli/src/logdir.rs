//! A read-only view of a log directory or segment file: no lock, no writes, no memory maps.
//! Safe on a log another process is appending to.

use anyhow::{bail, Context, Result};
use seglog_segment::format::parse_segment_file_name;
use seglog_segment::inspect::{
    analyze_segment, list_segment_files, read_file, Leftover, SegmentAnalysis,
};
use seglog_segment::io::StdFs;
use seglog_segment::SegmentInfo;
use std::path::{Path, PathBuf};

/// One segment file, read and analysed.
pub struct SegmentView {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub analysis: SegmentAnalysis,
    /// Whether it is the last segment of its directory (only its tail may be torn).
    pub is_last: bool,
    /// A file with no record that the next open removes without loss (no header).
    pub leftover: Option<Leftover>,
    /// Whether the next open cuts damage in it as a torn tail (`seglog::tail_may_be_torn`):
    /// in the last segment, or in the one before a cut creation named far from its records.
    pub may_be_torn: bool,
}

/// How bad the worst damage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Clean,
    TornTail,
    Corrupt,
}

impl SegmentView {
    pub fn segment_number(&self) -> Option<u64> {
        self.analysis.header.as_ref().ok().map(|h| h.segment_number)
    }

    /// Clean, a torn tail (only possible in the last segment) or a leftover the next open
    /// removes, or corruption.
    pub fn health(&self) -> Health {
        if self.analysis.header.is_err() {
            return match self.leftover {
                Some(_) => Health::TornTail,
                None => Health::Corrupt,
            };
        }
        match &self.analysis.damage {
            None => Health::Clean,
            Some(d) if self.may_be_torn && d.later_durable_record.is_none() => Health::TornTail,
            Some(_) => Health::Corrupt,
        }
    }

    /// The segment as the index layer describes it (for checkpoint checks).
    pub fn info(&self) -> Option<SegmentInfo> {
        let h = self.analysis.header.as_ref().ok()?;
        Some(SegmentInfo {
            number: h.segment_number,
            first_lsn: h.first_lsn,
            last_lsn: self.analysis.last_lsn,
            path: self.path.clone(),
            data_end: self.bytes.len() as u64,
            sealed: !self.is_last,
            created_unix_nanos: h.created_unix_nanos,
            record_salt: h.record_salt(),
            clustered: h.clustered,
        })
    }
}

/// The segment files at `path`: every segment of a directory, or one file.
pub fn segment_paths(path: &Path) -> Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        let files = list_segment_files(&StdFs, path)
            .with_context(|| format!("cannot list {}", path.display()))?;
        if files.is_empty() {
            bail!(
                "{} holds no segment files (*.seg): not a seglog log directory",
                path.display()
            );
        }
        Ok(files.into_iter().map(|(_, p)| p).collect())
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Reads and analyses one segment file.
pub fn read_segment(path: &Path, prev_lsn: u64, is_last: bool) -> Result<SegmentView> {
    let bytes =
        read_file(&StdFs, path).with_context(|| format!("cannot read {}", path.display()))?;
    let analysis = analyze_segment(&bytes, prev_lsn);
    Ok(SegmentView {
        path: path.to_path_buf(),
        bytes,
        analysis,
        is_last,
        leftover: None,
        may_be_torn: is_last,
    })
}

/// The first LSN a segment file's name gives.
fn name_lsn(path: &Path) -> Option<u64> {
    parse_segment_file_name(path.file_name()?.to_str()?)?.ok()
}

/// Visits every segment at `path` in log order, reading one at a time (memory: one segment).
pub fn for_each_segment(path: &Path, mut f: impl FnMut(&SegmentView) -> Result<()>) -> Result<()> {
    let paths = segment_paths(path)?;
    let single_file = paths.len() == 1 && !path.is_dir();
    // For the files with no header: the directory's listing, by first LSN.
    let listing: Vec<(u64, PathBuf)> = if single_file {
        Vec::new()
    } else {
        paths
            .iter()
            .filter_map(|p| Some((name_lsn(p)?, p.clone())))
            .collect()
    };
    let mut prev_lsn = 0;
    // The greatest LSN so far, commit markers included: where the open's check of a file of
    // zeros looks (format.md §4, step 1).
    let mut greatest_lsn = 0;
    for (i, p) in paths.iter().enumerate() {
        let is_last = single_file || i + 1 == paths.len();
        let mut view = read_segment(p, prev_lsn, is_last)?;
        if listing.len() == paths.len() {
            let read = || format!("cannot read {}", path.display());
            if view.analysis.header.is_err() {
                view.leftover =
                    seglog::judge_leftover(&StdFs, &listing, i, &view.bytes, greatest_lsn)
                        .with_context(read)?;
            }
            view.may_be_torn =
                seglog::tail_may_be_torn(&StdFs, &listing, i, &view.bytes, &view.analysis)
                    .with_context(read)?;
        }
        prev_lsn = prev_lsn.max(view.analysis.last_lsn);
        greatest_lsn = greatest_lsn.max(view.analysis.last_lsn_with_markers);
        f(&view)?;
    }
    Ok(())
}

/// The state of a sealed segment's index checkpoint.
// `verify` now takes its report from the library (`seglog::verify_dir`); `stats` matches the
// variants only, and the details stay for whoever shows them next.
#[allow(dead_code)]
pub enum CheckpointState {
    Missing,
    Valid(usize),
    Stale(String),
    Damaged(String),
}

/// Checks the checkpoint of a sealed segment (read-only).
pub fn checkpoint_state(dir: &Path, view: &SegmentView) -> CheckpointState {
    let Some(info) = view.info() else {
        return CheckpointState::Missing;
    };
    let path = dir.join(seglog_index::checkpoint::checkpoint_file_name(
        info.first_lsn,
    ));
    let bytes = match read_file(&StdFs, &path) {
        Ok(b) => b,
        Err(_) if !path.exists() => return CheckpointState::Missing,
        Err(e) => return CheckpointState::Damaged(e.to_string()),
    };
    match seglog_index::checkpoint::decode(&bytes, &info) {
        Ok(cp) => match seglog_index::checkpoint::disagreement(&view.bytes, &view.analysis, &cp) {
            None => CheckpointState::Valid(cp.records.len()),
            Some(why) => CheckpointState::Damaged(why),
        },
        // A checkpoint of another version of this segment (rewritten, or cut by recovery)
        // is harmless; anything else under a final name is damage.
        Err(defect) if defect.is_harmless() => CheckpointState::Stale(defect.to_string()),
        Err(defect) => CheckpointState::Damaged(defect.to_string()),
    }
}

/// A segment whose file left the directory for object storage (its stub), with what its
/// checkpoint in the directory says of its records.
pub struct OffloadedView {
    pub segment: seglog::OffloadedSegment,
    /// `None` when the checkpoint is missing or does not describe the segment (the log then
    /// does not open: corruption).
    pub checkpoint: Option<seglog_index::checkpoint::DecodedCheckpoint>,
}

impl OffloadedView {
    /// The checkpoint's records of `execution`, as (first sequence, event count).
    pub fn events_of(&self, execution: &str) -> Vec<(u64, u32)> {
        let Some(cp) = &self.checkpoint else {
            return Vec::new();
        };
        cp.records
            .iter()
            .filter(|r| cp.strings.get(r.execution as usize).map(String::as_str) == Some(execution))
            .map(|r| (r.first_seq, r.event_count))
            .collect()
    }
}

/// The offloaded segments of the log directory at `path`, in log order (none for a segment
/// file, or a directory without stubs). Their records are not in the directory: commands
/// that show records say so rather than show fewer without a word.
pub fn offloaded_segments(path: &Path) -> Result<Vec<OffloadedView>> {
    if !path.is_dir() {
        return Ok(Vec::new());
    }
    let stubs = seglog::offloaded_segments_in(path)
        .with_context(|| format!("cannot read the offload stubs of {}", path.display()))?;
    // A stub whose segment file is also here (an offload or a rehydration a crash
    // interrupted; the next open settles it) is the same segment: the file shows it.
    let local: std::collections::BTreeSet<u64> = list_segment_files(&StdFs, path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .into_iter()
        .map(|(first_lsn, _)| first_lsn)
        .collect();
    Ok(stubs
        .into_iter()
        .filter(|s| !local.contains(&s.first_lsn))
        .map(|segment| {
            let info = segment.info(path);
            let name = seglog_index::checkpoint::checkpoint_file_name(segment.first_lsn);
            let checkpoint = read_file(&StdFs, &path.join(name))
                .ok()
                .and_then(|bytes| seglog_index::checkpoint::decode(&bytes, &info).ok());
            OffloadedView {
                segment,
                checkpoint,
            }
        })
        .collect())
}
