//! The dry run: what a plan would reclaim, worked out from the segment files without opening
//! the log.
//!
//! Opening a log writes to it, even when nothing is appended: it takes the `LOCK` file
//! (creating it), finishes or discards an interrupted compaction, cuts a torn tail, fsyncs the
//! active segment, preallocates it to the opener's segment size, and writes index
//! checkpoints. So the dry run reads the files the way `seglog dump` does (positional reads,
//! no lock, no map), builds the [`IndexView`] that `Log::compaction_view` would build after
//! that open, and counts what the plan drops with the library's own rules (`Log::compact`
//! in a dry run): the policies are the library's, only the counting is redone here.
//!
//! What opening would refuse, this refuses too, as corruption: damage in a sealed segment or
//! proven acknowledged, a header that does not fit its file name or follow the segment
//! before it, ids that are not UTF-8, an execution whose sequence jumps or whose tenant
//! changes. A torn tail is left out, as opening would cut it, and so are the files opening
//! removes without loss (a cut creation, a file of zeros where no LSN is missing), judged as
//! `seglog verify` judges them.

use crate::logdir::{for_each_segment, read_segment, Health};
use anyhow::{bail, Context, Result};
use seglog::compaction::{ExecutionSummary, IndexView, LastEvent, Plan, SegmentSummary};
use seglog::CompactionReport;
use seglog_segment::format::{parse_segment_file_name, MANIFEST_FILE_NAME};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A log directory as opening it would find it, read without opening it.
pub struct ReadOnlyLog {
    /// The view a policy sees.
    pub view: IndexView,
    /// The segment files in log order (the ones the view lists).
    paths: Vec<PathBuf>,
}

fn corruption(segment: u64, offset: u64, reason: String) -> anyhow::Error {
    seglog_segment::Error::Corruption {
        segment,
        offset,
        reason,
    }
    .into()
}

impl ReadOnlyLog {
    /// Reads every segment of `dir`; with `with_last_events`, keeps each execution's last
    /// event (for "finished" predicates).
    ///
    /// # Errors
    /// I/O errors; corruption that would make opening the log fail; a compaction that a
    /// crash interrupted after its commit point (the next open finishes it, which changes
    /// what there is to plan).
    pub fn scan(dir: &Path, with_last_events: bool) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a log directory", dir.display());
        }
        if dir.join(MANIFEST_FILE_NAME).exists() {
            bail!(
                "{} holds {MANIFEST_FILE_NAME}: a compaction was interrupted after its commit point and the next open of the log finishes it; run `seglog compact` without --dry-run (or open the log once), then retry",
                dir.display()
            );
        }
        let mut views = Vec::new();
        let mut kept_paths = Vec::new();
        let mut executions: Vec<ExecutionSummary> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut numbers = BTreeSet::new();
        let mut prev_lsn = 0u64;
        // Whether the last file is one the open removes (a cut creation).
        let mut last_removed = false;
        for_each_segment(dir, |seg| {
            // A file the open removes without loss (format.md §4, step 1): a file of zeros
            // inside the log where no LSN is missing, or a last one whose creation a crash cut.
            if seg.leftover.is_some() {
                last_removed = seg.is_last;
                return Ok(());
            }
            let path = &seg.path;
            let header = match &seg.analysis.header {
                Ok(h) => *h,
                Err(defect) => {
                    return Err(corruption(0, 0, format!("{}: {defect}", path.display())))
                }
            };
            let number = header.segment_number;
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_segment_file_name)
                .and_then(|r| r.ok());
            if named != Some(header.first_lsn) {
                return Err(corruption(
                    number,
                    0,
                    format!(
                        "file name says first LSN {named:?} but header says {}",
                        header.first_lsn
                    ),
                ));
            }
            if header.first_lsn <= prev_lsn {
                return Err(corruption(
                    number,
                    0,
                    format!(
                        "first LSN {} does not follow LSN {prev_lsn} of the previous segment",
                        header.first_lsn
                    ),
                ));
            }
            if !numbers.insert(number) {
                return Err(corruption(number, 0, "segment number used twice".into()));
            }
            if seg.health() == Health::Corrupt {
                let (offset, reason) = seg.analysis.damage.as_ref().map_or_else(
                    || (0, "damaged".to_string()),
                    |d| (d.offset, d.defect.to_string()),
                );
                return Err(corruption(number, offset, reason));
            }
            for &offset in &seg.analysis.record_offsets {
                let Some(r) = seg.analysis.record(&seg.bytes, offset) else {
                    continue;
                };
                let bad =
                    |what: &str| corruption(number, offset, format!("{what} id is not UTF-8"));
                let id = std::str::from_utf8(r.execution_id()).map_err(|_| bad("execution"))?;
                let tenant = std::str::from_utf8(r.tenant_id()).map_err(|_| bad("tenant"))?;
                let slot = *by_id.entry(id.to_owned()).or_insert_with(|| {
                    executions.push(ExecutionSummary {
                        id: id.to_owned(),
                        tenant: tenant.to_owned(),
                        events: 0,
                        durable_events: 0,
                        created_lsn: r.lsn(),
                        last_timestamp_unix_nanos: i64::MIN,
                        segments: Vec::new(),
                        bytes: 0,
                        last_event: None,
                    });
                    executions.len() - 1
                });
                let e = &mut executions[slot];
                if e.tenant != tenant {
                    return Err(corruption(
                        number,
                        offset,
                        format!("execution {id:?} changes tenant"),
                    ));
                }
                if r.first_seq() != e.events + 1 {
                    return Err(corruption(
                        number,
                        offset,
                        format!(
                            "execution {id:?} jumps from sequence {} to {}",
                            e.events,
                            r.first_seq()
                        ),
                    ));
                }
                e.events = r.first_seq() + u64::from(r.event_count()) - 1;
                // A closed log: every record read is durable.
                e.durable_events = e.events;
                e.last_timestamp_unix_nanos =
                    e.last_timestamp_unix_nanos.max(r.timestamp_unix_nanos());
                if e.segments.last() != Some(&number) {
                    e.segments.push(number);
                }
                e.bytes += r.len() as u64;
                if with_last_events {
                    e.last_event = r.events().last().map(|p| LastEvent {
                        encoding: r.encoding(),
                        payload: p.to_vec().into(),
                    });
                }
            }
            prev_lsn = seg.analysis.last_lsn.max(header.first_lsn - 1);
            views.push(SegmentSummary {
                number,
                first_lsn: header.first_lsn,
                bytes: seg.analysis.data_end,
                sealed: !seg.is_last,
                clustered: header.clustered,
            });
            kept_paths.push(path.clone());
            Ok(())
        })?;
        // Opening removes an interrupted last segment: the one before it is the active one.
        if last_removed {
            if let Some(last) = views.last_mut() {
                last.sealed = false;
            }
        }
        Ok(ReadOnlyLog {
            view: IndexView {
                now_unix_nanos: now_unix_nanos(),
                // Segments are read in log order, so each execution's list is ascending.
                executions,
                segments: views,
            },
            paths: kept_paths,
        })
    }

    /// What carrying out `plan` would reclaim, counted as `Log::compact` counts in a dry
    /// run: the executions and events dropped, and the sealed segments read (segments
    /// holding a dropped record, plus the sealed ones the plan rewrites) with the bytes of
    /// the dropped records in them. Reads the segments it counts again.
    ///
    /// # Errors
    /// I/O errors.
    pub fn estimate(&self, plan: &Plan) -> Result<CompactionReport> {
        let started = std::time::Instant::now();
        let mut report = CompactionReport {
            dry_run: true,
            ..CompactionReport::default()
        };
        let doomed: Vec<&ExecutionSummary> = self
            .view
            .executions
            .iter()
            .filter(|e| plan.drop_executions.contains(&e.id))
            .collect();
        report.executions_dropped = doomed.len() as u64;
        report.events_dropped = doomed.iter().map(|e| e.events).sum();
        let mut chosen: BTreeSet<u64> = doomed
            .iter()
            .flat_map(|e| e.segments.iter().copied())
            .collect();
        chosen.extend(
            self.view
                .segments
                .iter()
                .filter(|s| s.sealed && plan.rewrite_segments.contains(&s.number))
                .map(|s| s.number),
        );
        let doomed_ids: HashSet<&[u8]> = doomed.iter().map(|e| e.id.as_bytes()).collect();
        let stats = &mut report.rewrite;
        for (summary, path) in self.view.segments.iter().zip(&self.paths) {
            if !chosen.contains(&summary.number) {
                continue;
            }
            stats.input_segments += 1;
            stats.input_bytes += summary.bytes;
            let seg = read_segment(path, 0, false)
                .with_context(|| format!("cannot read {} again", path.display()))?;
            for &offset in &seg.analysis.record_offsets {
                // Only what the first pass saw (a live writer may have appended since).
                if offset >= summary.bytes {
                    break;
                }
                let Some(r) = seg.analysis.record(&seg.bytes, offset) else {
                    continue;
                };
                if doomed_ids.contains(r.execution_id()) {
                    stats.records_dropped += 1;
                    stats.events_dropped += u64::from(r.event_count());
                    stats.bytes_dropped += r.len() as u64;
                } else {
                    stats.records_kept += 1;
                }
            }
        }
        report.bytes_reclaimed = report.rewrite.bytes_dropped;
        report.duration = started.elapsed();
        Ok(report)
    }
}

fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
