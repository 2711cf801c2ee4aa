//! The rewrite: copies the records that survive a [`crate::Plan`] out of sealed segments
//! into new ones, and records where each went.
//!
//! Inputs are grouped into *runs* of segments adjacent in the log; each run becomes zero or
//! more new segments, cut at `target_bytes`, so the new segments cover exactly the LSN
//! ranges of the old ones and the log stays in order. The first new segment of a run takes
//! the run's first file name (replacing it when the manifest is carried out).
//!
//! Nothing here changes the log: the new segments sit under temporary names until the
//! caller commits them with `SegmentLog::replace_segments`; on error they are removed.

use crate::{Error, Result};
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::{BuiltSegment, RecordPosition, SegmentBuilder, SegmentLog};
use std::collections::{BTreeMap, BTreeSet};

/// Where every surviving record of the rewritten segments went.
#[derive(Debug, Default)]
pub struct Moves {
    /// Per old segment: (old offset, new segment, new offset), by old offset.
    by_segment: BTreeMap<u64, Vec<(u32, u32, u32)>>,
}

impl Moves {
    /// The new position of the record that was at `old`, or `None` if it was dropped (or
    /// was never in a rewritten segment).
    pub fn moved_to(&self, old: RecordPosition) -> Option<RecordPosition> {
        let moves = self.by_segment.get(&old.segment)?;
        let i = moves
            .binary_search_by_key(&old.offset, |m| u64::from(m.0))
            .ok()?;
        let (_, segment, offset) = moves[i];
        Some(RecordPosition {
            segment: u64::from(segment),
            offset: u64::from(offset),
        })
    }

    /// The old segments.
    pub fn segments(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_segment.keys().copied()
    }
}

/// What a rewrite did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Segments read.
    pub input_segments: u64,
    /// Their bytes.
    pub input_bytes: u64,
    /// Segments written.
    pub output_segments: u64,
    /// Their bytes.
    pub output_bytes: u64,
    /// Records copied.
    pub records_kept: u64,
    /// Records dropped.
    pub records_dropped: u64,
    /// Events in the records dropped.
    pub events_dropped: u64,
    /// Bytes of the records dropped.
    pub bytes_dropped: u64,
}

/// The result of [`rewrite_runs`].
pub struct Rewritten<F: FileSystem> {
    /// The new segments, durable under temporary names (empty in a dry run).
    pub outputs: Vec<BuiltSegment<F>>,
    /// Where each surviving record went (empty in a dry run).
    pub moves: Moves,
    /// Counts.
    pub stats: RewriteStats,
}

/// Splits `chosen` into runs of segments adjacent in `log_order` (every segment of the log,
/// in order).
pub fn group_into_runs(log_order: &[u64], chosen: &BTreeSet<u64>) -> Vec<Vec<u64>> {
    let mut runs: Vec<Vec<u64>> = Vec::new();
    let mut in_run = false;
    for n in log_order {
        if chosen.contains(n) {
            match runs.last_mut() {
                Some(run) if in_run => run.push(*n),
                _ => runs.push(vec![*n]),
            }
            in_run = true;
        } else {
            in_run = false;
        }
    }
    runs
}

/// Rewrites each run without the records `drop` selects (by execution id), cutting new
/// segments at `target_bytes`. With `dry_run`, only counts. `progress` is told the input
/// bytes done after each segment.
///
/// With `cluster`, and for every input that is already clustered, a segment is rewritten
/// alone into one *clustered* output that takes its name (docs/format.md §3.5): its
/// surviving records grouped by execution, groups in the order of their first LSN, each
/// group in LSN order. So every output still covers the LSN range of its input, and an
/// index rebuilt from the outputs creates executions in the same order as before.
///
/// # Errors
/// [`Error::NotSealed`] for an input that is not sealed (a dry run may count the active
/// segment's durable records), errors reading the inputs
/// (corruption included) or writing the outputs. Outputs written so far are removed.
pub fn rewrite_runs<F: FileSystem + Clone>(
    log: &SegmentLog<F>,
    runs: &[Vec<u64>],
    drop: &dyn Fn(&[u8]) -> bool,
    target_bytes: u64,
    dry_run: bool,
    cluster: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Rewritten<F>> {
    let mut job = Job {
        log,
        segments: log.segments(),
        drop,
        target_bytes,
        dry_run,
        outputs: Vec::new(),
        current: None,
        moves: Moves::default(),
        stats: RewriteStats::default(),
    };
    let clustered: BTreeSet<u64> = job
        .segments
        .iter()
        .filter(|i| cluster || i.clustered)
        .map(|i| i.number)
        .collect();
    let mut done = Ok(());
    'runs: for run in runs {
        for piece in split_at_clustered(run, &clustered) {
            done = match piece {
                Piece::Clustered(number) => job.cluster_one(number, progress),
                Piece::InOrder(run) => job.run(run, progress),
            };
            if done.is_err() {
                break 'runs;
            }
        }
    }
    match done {
        Ok(()) => Ok(Rewritten {
            stats: job.stats,
            moves: job.moves,
            outputs: job.outputs,
        }),
        Err(e) => {
            if let Some(b) = job.current.take() {
                b.abandon();
            }
            job.outputs.into_iter().for_each(BuiltSegment::abandon);
            Err(e)
        }
    }
}

/// A part of a run: a segment to cluster alone, or adjacent segments rewritten in log order.
enum Piece<'r> {
    Clustered(u64),
    InOrder(&'r [u64]),
}

/// Splits `run` so that every segment in `clustered` stands alone.
fn split_at_clustered<'r>(run: &'r [u64], clustered: &BTreeSet<u64>) -> Vec<Piece<'r>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, n) in run.iter().enumerate() {
        if clustered.contains(n) {
            if start < i {
                pieces.push(Piece::InOrder(&run[start..i]));
            }
            pieces.push(Piece::Clustered(*n));
            start = i + 1;
        }
    }
    if start < run.len() {
        pieces.push(Piece::InOrder(&run[start..]));
    }
    pieces
}

struct Job<'a, F: FileSystem + Clone> {
    log: &'a SegmentLog<F>,
    /// The log's segments when the rewrite began (sealed ones never change).
    segments: Vec<seglog_segment::SegmentInfo>,
    drop: &'a dyn Fn(&[u8]) -> bool,
    target_bytes: u64,
    dry_run: bool,
    outputs: Vec<BuiltSegment<F>>,
    current: Option<SegmentBuilder<F>>,
    moves: Moves,
    stats: RewriteStats,
}

impl<F: FileSystem + Clone> Job<'_, F> {
    fn run(&mut self, run: &[u64], progress: &mut dyn FnMut(u64)) -> Result<()> {
        let mut run_first_lsn = None;
        for &number in run {
            let (first_lsn, data_end) = self.input(number)?;
            let run_first_lsn = *run_first_lsn.get_or_insert(first_lsn);
            let mut moved = Vec::new();
            let records = self.log.records_from(RecordPosition {
                segment: number,
                offset: SEGMENT_HEADER_LEN as u64,
            })?;
            for record in records {
                let record = record?;
                let view = record.view();
                if (self.drop)(view.execution_id()) {
                    self.stats.records_dropped += 1;
                    self.stats.events_dropped += u64::from(view.event_count());
                    self.stats.bytes_dropped += view.len() as u64;
                    continue;
                }
                self.stats.records_kept += 1;
                if self.dry_run {
                    continue;
                }
                let full = self.current.as_ref().is_some_and(|b| {
                    !b.is_empty() && b.len() + view.len() as u64 > self.target_bytes
                });
                if full {
                    self.finish_current()?;
                }
                let builder = match self.current.as_mut() {
                    Some(b) => b,
                    None => {
                        // The run's first new segment takes the run's first name; later ones
                        // are named by their first record.
                        let first_lsn = if self.run_has_output(run_first_lsn) {
                            view.lsn()
                        } else {
                            run_first_lsn
                        };
                        self.current.insert(self.log.segment_builder(first_lsn)?)
                    }
                };
                let offset = builder.push(&view)?;
                let limit = || Error::LimitExceeded("segment number or offset past u32");
                moved.push((
                    u32::try_from(record.position().offset).map_err(|_| limit())?,
                    u32::try_from(builder.number()).map_err(|_| limit())?,
                    u32::try_from(offset).map_err(|_| limit())?,
                ));
            }
            if !moved.is_empty() {
                self.moves.by_segment.insert(number, moved);
            }
            progress(data_end);
        }
        self.finish_current()
    }

    /// Rewrites segment `number` alone into one clustered segment of the same name: first
    /// the surviving records' places, grouped by execution; then the copies, group by group.
    fn cluster_one(&mut self, number: u64, progress: &mut dyn FnMut(u64)) -> Result<()> {
        let (first_lsn, data_end) = self.input(number)?;
        // Per execution (in the order met), its surviving records as (LSN, old offset).
        let mut groups: Vec<Vec<(u64, u64)>> = Vec::new();
        let mut group_of: std::collections::HashMap<Box<[u8]>, usize> =
            std::collections::HashMap::new();
        for record in self.log.records_from(RecordPosition {
            segment: number,
            offset: SEGMENT_HEADER_LEN as u64,
        })? {
            let record = record?;
            let view = record.view();
            if (self.drop)(view.execution_id()) {
                self.stats.records_dropped += 1;
                self.stats.events_dropped += u64::from(view.event_count());
                self.stats.bytes_dropped += view.len() as u64;
                continue;
            }
            self.stats.records_kept += 1;
            let g = match group_of.get(view.execution_id()) {
                Some(&g) => g,
                None => {
                    groups.push(Vec::new());
                    group_of.insert(Box::from(view.execution_id()), groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[g].push((view.lsn(), record.position().offset));
        }
        if self.dry_run {
            progress(data_end);
            return Ok(());
        }
        // Each execution's records in LSN order (sequence order); executions in the order of
        // their first LSN here, which is creation order for those created in this segment.
        for g in &mut groups {
            g.sort_unstable();
        }
        groups.sort_unstable_by_key(|g| g.first().map_or(0, |r| r.0));
        let mut moved = Vec::new();
        let builder = self
            .current
            .insert(self.log.clustered_segment_builder(first_lsn)?);
        for &(_, old_offset) in groups.iter().flatten() {
            let record = self.log.read(RecordPosition {
                segment: number,
                offset: old_offset,
            })?;
            let offset = builder.push(&record.view())?;
            let limit = || Error::LimitExceeded("segment number or offset past u32");
            moved.push((
                u32::try_from(old_offset).map_err(|_| limit())?,
                u32::try_from(builder.number()).map_err(|_| limit())?,
                u32::try_from(offset).map_err(|_| limit())?,
            ));
        }
        // `Moves` looks old offsets up by binary search.
        moved.sort_unstable();
        if !moved.is_empty() {
            self.moves.by_segment.insert(number, moved);
        }
        progress(data_end);
        self.finish_current()
    }

    /// First LSN and data end of input `number`, counted in the stats.
    fn input(&mut self, number: u64) -> Result<(u64, u64)> {
        let (first_lsn, data_end) = self
            .segments
            .iter()
            .find(|i| i.number == number && (i.sealed || self.dry_run))
            .map(|i| (i.first_lsn, i.data_end))
            .ok_or(Error::NotSealed(number))?;
        self.stats.input_segments += 1;
        self.stats.input_bytes += data_end;
        Ok((first_lsn, data_end))
    }

    /// True once this run has produced a segment (finished or in progress).
    fn run_has_output(&self, run_first_lsn: u64) -> bool {
        self.outputs
            .last()
            .is_some_and(|o| o.first_lsn() >= run_first_lsn)
    }

    fn finish_current(&mut self) -> Result<()> {
        if let Some(b) = self.current.take() {
            if b.is_empty() {
                b.abandon();
            } else {
                let built = b.finish()?;
                self.stats.output_segments += 1;
                self.stats.output_bytes += built.len();
                self.outputs.push(built);
            }
        }
        Ok(())
    }
}
