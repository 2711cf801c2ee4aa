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
    let mut done = Ok(());
    for run in runs {
        done = job.run(run, progress);
        if done.is_err() {
            break;
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
            let (first_lsn, data_end) = self
                .segments
                .iter()
                .find(|i| i.number == number && (i.sealed || self.dry_run))
                .map(|i| (i.first_lsn, i.data_end))
                .ok_or(Error::NotSealed(number))?;
            let run_first_lsn = *run_first_lsn.get_or_insert(first_lsn);
            self.stats.input_segments += 1;
            self.stats.input_bytes += data_end;
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
