//! Consistency checks with a typed report: [`Log::verify`] for an open log (writable or
//! read-only) and [`verify_dir`] for a directory nobody needs to open (what `seglog verify`
//! runs). Both read every record of every segment and check its checksum (damage that an
//! index checkpoint hid at open is found here), compare each sealed segment's checkpoint with
//! its records entry by entry, and check the records against each other as an index rebuilt
//! from them would (dense sequences, one tenant per execution, LSNs increasing across
//! segments). [`Log::verify`] also compares that index with the log's own.
//!
//! A scan stops at a segment's first bad record: what follows cannot be delimited, so a
//! segment reports at most one checksum failure. Damage is reported, not raised; errors are
//! for what prevents the check (I/O).

pub(crate) mod checks;
mod leftover;
mod offloaded;

pub use leftover::{judge_leftover, tail_may_be_torn};
pub use offloaded::VerifiedOffload;
pub use seglog_segment::inspect::Leftover;

use crate::log::Log;
use crate::Result;
use checks::{check_checkpoint, Rebuilt};
use seglog_segment::format::RecordDefect;
use seglog_segment::inspect::{analyze_segment, list_segment_files, read_file, SegmentAnalysis};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::SegmentInfo;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How bad a finding is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Health {
    /// Nothing wrong.
    Clean,
    /// Only a torn tail: bytes of appends that were never acknowledged (normal after a
    /// crash, and in a log being appended to); the next open cuts them. Or a
    /// [`Damage::Leftover`], which the next open removes.
    TornTail,
    /// Acknowledged data is damaged, or a header, a checkpoint or the index contradicts the
    /// records.
    Corrupt,
}

/// What is wrong with a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Its header does not decode: the segment cannot be read.
    Header(String),
    /// A file under a segment name that holds no record, which the next open removes
    /// without loss (format.md §4, step 1): the last segment, whose creation a crash cut (no
    /// header, nothing written after where it would be), or a file of zeros inside the log
    /// where no record is missing. Counted as [`Health::TornTail`].
    Leftover(Leftover),
    /// The last segment's records stop being valid at `offset`, and nothing after proves the
    /// bytes there were acknowledged.
    TornTail {
        /// First bad byte.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Acknowledged bytes are damaged: in a sealed segment, in the durable part of an open
    /// log's segment, or proven by a later durable record.
    Corrupt {
        /// First bad byte.
        offset: u64,
        /// What is wrong there.
        reason: String,
        /// The later valid record (offset, LSN) that proves it was acknowledged, if any.
        proven_by: Option<(u64, u64)>,
    },
}

/// The state of a sealed segment's index checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointCheck {
    /// The last segment has none (it is not sealed); nor does a segment whose header is bad.
    NotApplicable,
    /// None: the open scans the segment.
    Missing,
    /// It matches the segment's records, entry by entry.
    Valid {
        /// Records it lists.
        records: usize,
    },
    /// It describes another version of the segment; the open ignores it.
    Stale(String),
    /// It does not decode, or it contradicts the records: corruption.
    Damaged(String),
}

/// What a verification found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Segment number (`None` when the header is unreadable).
    pub number: Option<u64>,
    /// First LSN from the header.
    pub first_lsn: Option<u64>,
    /// Whether it is the last segment (only its tail may be torn).
    pub is_last: bool,
    /// Valid records read.
    pub records: u64,
    /// End of the intact part, in bytes.
    pub intact_bytes: u64,
    /// Bytes read (the written part of the file, or an open log's durable part).
    pub bytes: u64,
    /// Records whose checksum does not match (0 or 1: the scan stops there).
    pub checksum_failures: u64,
    /// The first damage, if any.
    pub damage: Option<Damage>,
    /// Its index checkpoint.
    pub checkpoint: CheckpointCheck,
}

impl VerifiedSegment {
    /// How bad what was found in this segment is.
    pub fn health(&self) -> Health {
        let bytes = match &self.damage {
            None => Health::Clean,
            Some(Damage::TornTail { .. } | Damage::Leftover(_)) => Health::TornTail,
            Some(_) => Health::Corrupt,
        };
        match self.checkpoint {
            CheckpointCheck::Damaged(_) => Health::Corrupt,
            _ => bytes,
        }
    }
}

/// What [`Log::verify`] or [`verify_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Every segment, in log order.
    pub segments: Vec<VerifiedSegment>,
    /// Where the records contradict each other or the log's index (at most 20 listed).
    pub index_problems: Vec<String>,
    /// How many such problems there are in all.
    pub index_problem_count: usize,
    /// The offloaded segments (their file left the directory, their bytes are in object
    /// storage), in log order: their stub and checkpoint, not their bytes.
    pub offloaded: Vec<VerifiedOffload>,
    /// Why the log's identity (`LOG_ID`, format.md §9) cannot be read, when it cannot: a
    /// writer refuses to open such a log (corruption; `seglog repair --log-id` mends it).
    pub identity_problem: Option<String>,
}

impl VerifyReport {
    /// The worst finding.
    pub fn health(&self) -> Health {
        let segments = self
            .segments
            .iter()
            .map(VerifiedSegment::health)
            .chain(self.offloaded.iter().map(VerifiedOffload::health))
            .max()
            .unwrap_or(Health::Clean);
        if self.index_problem_count > 0 || self.identity_problem.is_some() {
            Health::Corrupt
        } else {
            segments
        }
    }

    /// True when nothing at all is wrong.
    pub fn is_clean(&self) -> bool {
        self.health() == Health::Clean
    }

    /// Valid records in all.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Intact bytes in all.
    pub fn intact_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.intact_bytes).sum()
    }
}

/// Describes one segment's analysis. `may_be_torn`: the open takes its damage for a torn
/// tail ([`tail_may_be_torn`]); `durable`: the bytes are an open log's durable part, in
/// which any damage is damage to acknowledged data.
fn describe(
    path: PathBuf,
    analysis: &SegmentAnalysis,
    (is_last, may_be_torn): (bool, bool),
    durable: bool,
) -> VerifiedSegment {
    let header = analysis.header.as_ref().ok();
    let damage = match (&analysis.header, &analysis.damage) {
        (Err(h), _) => Some(Damage::Header(h.to_string())),
        (Ok(_), None) => None,
        (Ok(h), Some(d))
            if may_be_torn
                && !durable
                && h.tail_may_be_torn()
                && d.later_durable_record.is_none() =>
        {
            Some(Damage::TornTail {
                offset: d.offset,
                reason: d.defect.to_string(),
            })
        }
        (Ok(_), Some(d)) => Some(Damage::Corrupt {
            offset: d.offset,
            reason: d.defect.to_string(),
            proven_by: d.later_durable_record,
        }),
    };
    let checksum_failures = u64::from(
        analysis
            .damage
            .as_ref()
            .is_some_and(|d| d.defect == RecordDefect::Checksum),
    );
    VerifiedSegment {
        path,
        number: header.map(|h| h.segment_number),
        first_lsn: header.map(|h| h.first_lsn),
        is_last,
        records: analysis.record_offsets.len() as u64,
        intact_bytes: analysis.data_end,
        bytes: analysis.file_bytes,
        checksum_failures,
        damage,
        checkpoint: CheckpointCheck::NotApplicable,
    }
}

/// The segment as the index layer sees it (for the checkpoint check).
fn info_of(
    path: &Path,
    analysis: &SegmentAnalysis,
    bytes: usize,
    sealed: bool,
) -> Option<SegmentInfo> {
    let h = analysis.header.as_ref().ok()?;
    Some(SegmentInfo {
        number: h.segment_number,
        first_lsn: h.first_lsn,
        last_lsn: analysis.last_lsn,
        path: path.to_path_buf(),
        data_end: bytes as u64,
        sealed,
        created_unix_nanos: h.created_unix_nanos,
        record_salt: h.record_salt(),
        clustered: h.clustered,
    })
}

/// [`verify_dir_with_fs`] on real files.
///
/// # Errors
/// As [`verify_dir_with_fs`].
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_dir_with_fs(&StdFs, dir.as_ref())
}

/// Verifies the log in `dir` without opening it: takes no lock and writes nothing, so it is
/// safe on a log another process has open (whose tail then shows as torn while an append is
/// in flight). Reads one segment at a time (memory: one segment, plus an index of the
/// records). A compaction switching segments meanwhile can make it report damage that is
/// not there; run it again.
///
/// # Errors
/// I/O errors (a missing directory among them); a `.seg` file whose name is malformed.
pub fn verify_dir_with_fs<F: FileSystem>(fs: &F, dir: &Path) -> Result<VerifyReport> {
    let files = list_segment_files(fs, dir)?;
    let mut report = VerifyReport {
        identity_problem: seglog_segment::log_id::read(fs, dir)
            .err()
            .map(|e| e.to_string()),
        ..VerifyReport::default()
    };
    let mut rebuilt = Rebuilt::new();
    let mut prev_lsn = 0u64;
    // The greatest LSN of the local files so far, commit markers included: where the open's
    // check of a file of zeros looks (format.md §4, step 1).
    let mut greatest_lsn = 0u64;
    let mut offloaded = offloaded::Pending::list(fs, dir, &mut rebuilt);
    let count = files.len();
    let mut local_numbers = Vec::with_capacity(count);
    for (i, (name_lsn, path)) in files.iter().enumerate() {
        let (name_lsn, path) = (*name_lsn, path.clone());
        let is_last = i + 1 == count;
        prev_lsn = prev_lsn.max(offloaded.verify_before(
            fs,
            dir,
            name_lsn,
            &mut rebuilt,
            &mut report.offloaded,
        ));
        let bytes = read_file(fs, &path)?;
        let analysis = analyze_segment(&bytes, prev_lsn);
        let may_be_torn = tail_may_be_torn(fs, &files, i, &bytes, &analysis)?;
        let mut seg = describe(path.clone(), &analysis, (is_last, may_be_torn), false);
        if analysis.header.is_err() {
            if let Some(what) = judge_leftover(fs, &files, i, &bytes, greatest_lsn)? {
                seg.damage = Some(Damage::Leftover(what));
            }
        }
        if let Ok(h) = analysis.header.as_ref() {
            if h.first_lsn != name_lsn {
                rebuilt.problem(format!(
                    "{}: the file name says first LSN {name_lsn}, the header {}",
                    path.display(),
                    h.first_lsn
                ));
            } else if h.first_lsn <= prev_lsn {
                rebuilt.problem(format!(
                    "{}: first LSN {} does not follow LSN {prev_lsn}",
                    path.display(),
                    h.first_lsn
                ));
            }
            rebuilt.add_segment(h.segment_number, &bytes, &analysis);
            local_numbers.push(h.segment_number);
            if !is_last {
                if let Some(info) = info_of(&path, &analysis, bytes.len(), true) {
                    seg.checkpoint = check_checkpoint(fs, dir, &info, &bytes, &analysis);
                }
            }
        }
        prev_lsn = prev_lsn.max(analysis.last_lsn);
        greatest_lsn = greatest_lsn.max(analysis.last_lsn_with_markers);
        report.segments.push(seg);
    }
    offloaded.verify_rest(fs, dir, &mut rebuilt, &mut report.offloaded);
    offloaded::check_numbers(&local_numbers, &report.offloaded, &mut rebuilt);
    report.index_problems = rebuilt.problems;
    report.index_problem_count = rebuilt.problem_count;
    Ok(report)
}

impl<F: FileSystem + Clone> Log<F> {
    /// Verifies the log as it serves it (blocking): every durable record of every segment is
    /// read through the log's own handles and checked, each sealed segment's checkpoint is
    /// compared with its records, and the records with the log's in-memory index (every
    /// record the index places in the verified bytes must be there, for the same execution
    /// and tenant, and the other way round). Appends and reads go on; a writable log's
    /// compactions wait until it is done. On a read-only log it verifies the current view.
    ///
    /// # Errors
    /// [`crate::Error::Closed`], I/O errors; [`crate::Error::InvalidOptions`] from a
    /// compaction's progress callback. Damage is reported, not raised.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.check_open()?;
        let _no_compaction = self.hold_off_compaction()?;
        let fs = self.shared.segments.file_system();
        let infos = self.segments();
        let mut report = VerifyReport::default();
        let mut rebuilt = Rebuilt::new();
        let mut verified: HashMap<u64, u64> = HashMap::new();
        let mut prev_lsn = 0u64;
        let mut offloaded = offloaded::Pending::list(fs, &self.shared.dir, &mut rebuilt);
        let count = infos.len();
        for (i, info) in infos.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let before = report.offloaded.len();
            prev_lsn = prev_lsn.max(offloaded.verify_before(
                fs,
                &self.shared.dir,
                info.first_lsn,
                &mut rebuilt,
                &mut report.offloaded,
            ));
            for o in &report.offloaded[before..] {
                if matches!(o.checkpoint, CheckpointCheck::Valid { .. }) {
                    verified.insert(o.number, o.bytes);
                }
            }
            let bytes = self.shared.segments.segment_bytes(info.number)?;
            let analysis = analyze_segment(&bytes, prev_lsn);
            let mut seg = describe(info.path.clone(), &analysis, (is_last, is_last), true);
            rebuilt.add_segment(info.number, &bytes, &analysis);
            if info.sealed && !is_last {
                seg.checkpoint = check_checkpoint(fs, &self.shared.dir, &info, &bytes, &analysis);
            }
            verified.insert(info.number, bytes.len() as u64);
            prev_lsn = prev_lsn.max(analysis.last_lsn);
            report.segments.push(seg);
        }
        self.compare_index(&mut rebuilt, &verified);
        report.index_problems = rebuilt.problems;
        report.index_problem_count = rebuilt.problem_count;
        Ok(report)
    }

    /// Compares the log's index, within the verified bytes (segment → durable end), with
    /// the one rebuilt from the records.
    fn compare_index(&self, rebuilt: &mut Rebuilt, verified: &HashMap<u64, u64>) {
        let live = self.shared.index.read();
        let within = |l: &&seglog_index::Location| {
            verified
                .get(&u64::from(l.segment))
                .is_some_and(|end| u64::from(l.offset) < *end)
        };
        let mut found = Vec::new();
        for e in live.executions() {
            let mine: Vec<_> = e.records().iter().filter(within).copied().collect();
            let from_records = rebuilt.index.get(e.id());
            let theirs = from_records.map_or(&[][..], |r| r.records());
            if mine.as_slice() != theirs {
                found.push(format!(
                    "execution {:?}: the index places {} records in the verified bytes, the \
                     records say {}",
                    e.id(),
                    mine.len(),
                    theirs.len()
                ));
            } else if !mine.is_empty() && live.tenant_of(e.id()) != rebuilt.index.tenant_of(e.id())
            {
                found.push(format!(
                    "execution {:?}: the index names another tenant",
                    e.id()
                ));
            }
        }
        for r in rebuilt.index.executions() {
            if live.get(r.id()).is_none() {
                found.push(format!(
                    "execution {:?} has records but is not in the index",
                    r.id()
                ));
            }
        }
        drop(live);
        for f in found {
            rebuilt.problem(f);
        }
    }
}
