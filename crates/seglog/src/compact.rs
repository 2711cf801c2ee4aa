//! Compaction of a live log: [`Log::compact`] carries out a [`Plan`] while appends and reads
//! go on.
//!
//! The steps, and why each is safe:
//! 1. Under the index's write lock the executions to drop are marked *erasing*: from here on
//!    appends to them fail, so every record they will ever have in this incarnation is
//!    already in the log.
//! 2. If one of them has a record in a segment that is not sealed (the active one, or one
//!    the writer has queued records for but not created yet), the writer rolls, so that all
//!    of their records are in sealed segments, which is all compaction touches.
//! 3. The sealed segments holding their records (and those the plan merges) are rewritten
//!    without them (`seglog_compact::rewrite_runs`), outside every lock.
//! 4. The segment layer swaps the new segments in crash-atomically (docs/format.md §6).
//! 5. Under the index's write lock the dropped executions leave the index, the surviving
//!    records move to their new places, and the new segments become visible, all at once.
//!    Readers that looked positions up before this retry (`layout_epoch`).
//! 6. The new segments get index checkpoints; the old segments' checkpoints go.

use crate::log::Log;
use crate::policy_view::Gathered;
use crate::{Error, Result};
use seglog_compact::{group_into_runs, rewrite_runs, IndexView, LastEvent};
use seglog_compact::{Plan, RewriteStats, SegmentSummary};
use seglog_index::Location;
use seglog_segment::io::FileSystem;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How to carry out a plan. Set with the builder methods of the same names:
/// `CompactOptions::default().dry_run(true)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactOptions {
    /// Count what would be reclaimed, change nothing. Default: false. Over offloaded
    /// segments (with a segment source set), the counts of executions and events are the
    /// real run's, and the byte figures cover the local segments only (the real run
    /// rehydrates the offloaded ones first).
    pub dry_run: bool,
    /// Largest segment compaction writes, in bytes. Default (`None`): the log's
    /// `segment_size_bytes`.
    pub target_segment_bytes: Option<u64>,
}

/// Builder methods: each sets the field of the same name.
impl CompactOptions {
    /// Sets [`CompactOptions::dry_run`].
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`CompactOptions::target_segment_bytes`] (`None`: the log's segment size).
    #[must_use]
    pub fn target_segment_bytes(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.target_segment_bytes = bytes.into();
        self
    }
}

/// What a compaction did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// True for a dry run: nothing was changed.
    pub dry_run: bool,
    /// Executions dropped.
    pub executions_dropped: u64,
    /// Events dropped.
    pub events_dropped: u64,
    /// Disk space given back: bytes of the old segments minus those of the new ones (in a
    /// dry run, the bytes of the records that would be dropped).
    pub bytes_reclaimed: u64,
    /// The active segment was sealed first because it held records to drop.
    pub rolled_active_segment: bool,
    /// The rewrite's counts.
    pub rewrite: RewriteStats,
    /// Wall time.
    pub duration: Duration,
}

/// Marks the current thread as the one compacting, for as long as it lives; on the way out,
/// releases the directory lock if the log was closed from this thread meanwhile.
struct CompactionThread<'a, F: FileSystem> {
    shared: &'a crate::log::Shared<F>,
}

impl<'a, F: FileSystem> CompactionThread<'a, F> {
    fn enter(shared: &'a crate::log::Shared<F>) -> Self {
        *shared.compaction_thread.lock() = Some(std::thread::current().id());
        CompactionThread { shared }
    }
}

impl<F: FileSystem> Drop for CompactionThread<'_, F> {
    fn drop(&mut self) {
        *self.shared.compaction_thread.lock() = None;
        if self
            .shared
            .unlock_after_compaction
            .swap(false, Ordering::AcqRel)
        {
            self.shared.segments.release_lock();
        }
    }
}

/// The executions of `index` that `plan` drops: only the incarnations the plan saw. An id
/// erased by another compaction since and created again (perhaps by another tenant) names
/// another execution (review 101), and so does one another tenant created at an LSN a lost
/// record gave back (review 108).
fn dropped_by(plan: &Plan, index: &seglog_index::ExecutionIndex) -> Vec<String> {
    plan.drop_executions
        .iter()
        .filter(|id| {
            index.get(id).is_some_and(|e| {
                plan.drops(id, e.created_lsn(), index.tenant_of(id).unwrap_or_default())
            })
        })
        .cloned()
        .collect()
}

/// Where a compaction's plan comes from.
pub(crate) enum PlanSource<'a> {
    /// Made by the caller beforehand ([`Log::compact_blocking`]).
    Given(&'a Plan),
    /// Made by the compaction, so that no append lands between the view and the marking of
    /// what the plan drops (automatic retention: an execution an append has just made
    /// recent must not be dropped as old). Made from a view taken before step 1
    /// ([`EarlyPlan`]) when nothing it drops has changed by step 1; else made again at step
    /// 1 from a view taken under the index's write lock.
    AtStart(&'a dyn Fn(&IndexView) -> Plan),
}

/// A plan made at the start, before step 1, and what it rests on.
///
/// Why it may be carried out at step 1 when no execution it drops has had an append since:
/// the compaction lock is held throughout, so nothing but appends (their publication, rolls,
/// new executions) changed the log in between, and the plan is the one the pass would have
/// made had it taken its view under the write lock at that earlier moment. What it drops is
/// exactly as old and as large as its view said, so it drops nothing appended after the
/// view; the log has only grown since, so retention by size frees no more than it needs
/// (a later pass frees the rest).
struct EarlyPlan {
    plan: Plan,
    /// The events (`ExecutionSummary::events`) each execution the plan drops had in its view.
    events_seen: HashMap<String, u64>,
}

impl EarlyPlan {
    fn new(view: IndexView, make: &dyn Fn(&IndexView) -> Plan) -> Self {
        let plan = make(&view);
        let events_seen = view
            .executions
            .into_iter()
            .filter(|e| plan.drop_executions.contains(&e.id))
            .map(|e| (e.id, e.events))
            .collect();
        EarlyPlan { plan, events_seen }
    }

    /// True when no execution the plan drops has had an append since its view (call under
    /// the index's write lock). One erased and created again is left to step 1's
    /// incarnation check, which keeps it.
    fn still_holds(&self, index: &seglog_index::ExecutionIndex) -> bool {
        self.plan.drop_executions.iter().all(|id| {
            index
                .get(id)
                .is_none_or(|e| self.events_seen.get(id) == Some(&e.last_seq()))
        })
    }
}

impl<F: FileSystem + Clone> Log<F> {
    /// The segments as policies see them.
    fn segment_summaries(&self) -> Vec<SegmentSummary> {
        self.segments()
            .into_iter()
            .map(|s| SegmentSummary {
                number: s.number,
                first_lsn: s.first_lsn,
                bytes: s.data_end,
                sealed: s.sealed,
                clustered: s.clustered,
            })
            .collect()
    }

    /// A snapshot of the index for compaction policies: every execution, also one whose
    /// appends are not durable yet (a buffered append, or one in flight, is counted in its
    /// `events`), so that an erasure planned from it covers every append that returned
    /// before. With `with_last_events`, each execution's last event is read too (for
    /// predicates such as "finished"); it is `None` while that event is not durable yet.
    ///
    /// # Errors
    /// [`Error::Closed`]; with `with_last_events`, errors reading the events.
    pub fn compaction_view(&self, with_last_events: bool) -> Result<IndexView> {
        self.check_open()?;
        // Durable appends nobody has published yet, visible first (for the last events).
        self.publish_if_due();
        // The segment table read under the index lock: a compaction relocates the records
        // and installs its segments under the write lock, so the view pairs the table with
        // the index it belongs to (review 107: a table from before a merge with an index from
        // after it left every relocated execution at 0 bytes, seemingly offloaded).
        let mut view = self.gather().finish();
        if with_last_events {
            for e in &mut view.executions {
                e.last_event = self
                    .read_range(&e.id, e.events, 1)?
                    .pop()
                    .map(|ev| LastEvent {
                        encoding: ev.encoding,
                        payload: ev.payload,
                    });
            }
        }
        Ok(view)
    }

    /// A view's raw material (`policy_view`), taken under the index's read lock.
    fn gather(&self) -> Gathered {
        let index = self.shared.index.read();
        Gathered::take(&index, self.segment_summaries())
    }

    /// Carries out `plan` on the live log (blocking): drops its executions from the index
    /// and from the bytes on disk, and rewrites the segments it names. Appends and reads go
    /// on meanwhile; appends to executions being dropped fail with [`Error::Erasing`].
    /// `progress` is told (input bytes done, input bytes in all) as the rewrite advances.
    ///
    /// Crash-safe: a crash at any moment leaves the log as it was before or as it is after.
    ///
    /// # Errors
    /// [`Error::Closed`], I/O errors and corruption found in the segments read. An error
    /// after the new segments were committed poisons the log; reopening finishes the job.
    pub fn compact_blocking(
        &self,
        plan: &Plan,
        options: CompactOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CompactionReport> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let one_at_a_time = self.shared.compaction.lock();
        self.compact_locked(one_at_a_time, PlanSource::Given(plan), options, progress)
    }

    /// A compaction, unless another one is running (then `Ok(None)` at once): for
    /// automatic retention, which must never wait for the compaction lock — a `close` made
    /// from a running compaction's progress callback waits for retention to stop.
    pub(crate) fn compact_if_idle(
        &self,
        plan: PlanSource<'_>,
        options: CompactOptions,
    ) -> Result<Option<CompactionReport>> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let Some(one_at_a_time) = self.shared.compaction.try_lock() else {
            return Ok(None);
        };
        self.compact_locked(one_at_a_time, plan, options, &mut |_, _| {})
            .map(Some)
    }

    /// The compaction, with the compaction lock held (`_one_at_a_time`).
    fn compact_locked(
        &self,
        _one_at_a_time: parking_lot::MutexGuard<'_, ()>,
        source: PlanSource<'_>,
        options: CompactOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CompactionReport> {
        let started = Instant::now();
        let _span = tracing::info_span!("compaction", dir = %self.shared.dir.display()).entered();
        let _on_this_thread = CompactionThread::enter(&self.shared);
        self.check_open()?;
        let planned_at_start;
        let mut report = CompactionReport {
            dry_run: options.dry_run,
            ..CompactionReport::default()
        };
        let automatic = matches!(source, PlanSource::AtStart(_));
        // An explicit erasure of records in offloaded segments brings those segments back
        // first, when a source can read them (before any index lock: it reads the bucket).
        // Automatic retention never downloads: it skips such executions (below).
        if let PlanSource::Given(plan) = &source {
            if !automatic && !options.dry_run {
                // Only what the plan drops: another tenant's execution of a named id (made
                // since the plan's view) is neither downloaded nor read (review 110).
                let dropped = dropped_by(plan, &self.shared.index.read());
                self.rehydrate_for(&dropped)?;
            }
        }
        // A plan made at the start counts durable events by what is published (the
        // segments' sizes count what is durable): publish what has become durable first, or
        // a log only appended to would look as if it held nothing droppable (review 102).
        if automatic {
            self.publish_if_due();
        }
        // A plan made at the start is first made outside the write lock, from a view whose
        // sort appends do not wait for, with the events each execution it drops had then.
        let early = match &source {
            PlanSource::AtStart(make) => Some(EarlyPlan::new(self.gather().finish(), *make)),
            PlanSource::Given(_) => None,
        };
        // Step 1: fix the set of executions to drop, and stop appends to them.
        let (plan, doomed, needs_roll) = {
            let index = self.shared.index.write();
            let plan = match source {
                PlanSource::Given(plan) => plan,
                PlanSource::AtStart(make) => {
                    planned_at_start = match early {
                        Some(early) if early.still_holds(&index) => early.plan,
                        // An execution it drops was appended to since: plan again, from a
                        // view taken under this lock, where no append can land.
                        _ => make(&Gathered::take(&index, self.segment_summaries()).finish()),
                    };
                    &planned_at_start
                }
            };
            // Under the index lock no append can move the tail. A record may still sit in a
            // segment the writer has not even created yet, so ask "sealed?", not "active?".
            let sealed: BTreeSet<u64> = self
                .segments()
                .iter()
                .filter(|s| s.sealed)
                .map(|s| s.number)
                .collect();
            let mut doomed = dropped_by(plan, &index);
            // Offloaded segments are never rewritten: an execution with records in one is
            // skipped by automatic retention, and an explicit plan that drops it is refused
            // (docs/scale-out.md, "Read-through").
            // A dry run with a source set previews the erasure the real run (which
            // rehydrates first) carries out: its counts are the index's; its byte figures
            // cover the local segments (review 22).
            let previewed = options.dry_run && self.shared.offloaded.has_source();
            if let Some((id, segment)) = self
                .offloaded_records_of(&index, &doomed)
                .first()
                .filter(|_| !previewed)
            {
                if !automatic {
                    tracing::warn!(execution = %id, segment, "compaction refused: records in an offloaded segment");
                    return Err(Error::Offloaded {
                        segment: *segment,
                        what: "an erasure of the records in it (compaction)",
                    });
                }
                let skipped: BTreeSet<String> = self
                    .offloaded_records_of(&index, &doomed)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                tracing::info!(
                    executions = skipped.len(),
                    "retention skips executions with records in offloaded segments"
                );
                doomed.retain(|id| !skipped.contains(id));
            }
            let needs_roll = doomed.iter().any(|id| {
                index.get(id).is_some_and(|e| {
                    e.records()
                        .iter()
                        .any(|l| !sealed.contains(&u64::from(l.segment)))
                })
            });
            for id in &doomed {
                let e = index.get(id);
                report.executions_dropped += 1;
                report.events_dropped += e.map_or(0, |e| e.last_seq());
            }
            if !options.dry_run && !doomed.is_empty() {
                self.shared
                    .erasing
                    .lock()
                    .extend(doomed.iter().map(|d| Box::from(d.as_str())));
                self.shared.erasing_active.store(true, Ordering::Release);
            }
            (plan, doomed, needs_roll)
        };
        let result = self.compact_marked(plan, options, &doomed, needs_roll, &mut report, progress);
        if !doomed.is_empty() && !options.dry_run {
            let _index = self.shared.index.write();
            self.shared.erasing.lock().clear();
            self.shared.erasing_active.store(false, Ordering::Release);
        }
        result?;
        report.duration = started.elapsed();
        tracing::info!(
            dry_run = report.dry_run,
            executions = report.executions_dropped,
            events = report.events_dropped,
            bytes_reclaimed = report.bytes_reclaimed,
            segments_in = report.rewrite.input_segments,
            segments_out = report.rewrite.output_segments,
            took_ms = report.duration.as_millis() as u64,
            "compaction done"
        );
        Ok(report)
    }

    /// Steps 2–6, with the doomed executions already marked.
    fn compact_marked(
        &self,
        plan: &Plan,
        options: CompactOptions,
        doomed: &[String],
        needs_roll: bool,
        report: &mut CompactionReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let segments = &self.shared.segments;
        // Step 2. A dry run reads the active segment's durable records instead.
        if needs_roll && !options.dry_run {
            report.rolled_active_segment = segments.roll()?.is_some();
        }
        let infos = self.segments();
        let chosen: BTreeSet<u64> = {
            let index = self.shared.index.read();
            // Every segment holding a doomed record is sealed now; should one not be, the
            // rewrite refuses it (`NotSealed`) rather than leave a record behind.
            let mut chosen: BTreeSet<u64> = doomed
                .iter()
                .filter_map(|id| index.get(id))
                .flat_map(|e| e.records().iter().map(|l| u64::from(l.segment)))
                .collect();
            chosen.extend(
                plan.rewrite_segments
                    .iter()
                    .filter(|n| infos.iter().any(|i| i.number == **n && i.sealed)),
            );
            // Only a dry run gets here with records in offloaded segments (see step 1): it
            // reads none of them.
            if options.dry_run {
                chosen.retain(|n| self.shared.offloaded.get(*n).is_none());
            }
            chosen
        };
        if chosen.is_empty() {
            return Ok(());
        }
        // Offloaded segments keep their place in the order (never chosen): a run of
        // segments to merge never spans one, so no output overlaps its LSNs.
        let order: Vec<u64> = self.order_with_offloaded(&infos);
        if let Some(&missing) = chosen.iter().find(|n| !order.contains(n)) {
            if !options.dry_run {
                return Err(seglog_compact::Error::NotSealed(missing).into());
            }
        }
        let runs = group_into_runs(&order, &chosen);
        let total: u64 = infos
            .iter()
            .filter(|i| chosen.contains(&i.number))
            .map(|i| i.data_end)
            .sum();
        let doomed_ids: HashSet<&[u8], ahash::RandomState> =
            doomed.iter().map(|d| d.as_bytes()).collect();
        let mut done = 0u64;
        let rewritten = rewrite_runs(
            segments,
            &runs,
            &|id| doomed_ids.contains(id),
            options
                .target_segment_bytes
                .unwrap_or(segments.options().segment_size_bytes),
            options.dry_run,
            plan.cluster_by_execution,
            &mut |bytes| {
                done += bytes;
                progress(done, total);
            },
        )?;
        report.rewrite = rewritten.stats.clone();
        if options.dry_run {
            report.bytes_reclaimed = rewritten.stats.bytes_dropped;
            return Ok(());
        }
        report.bytes_reclaimed = rewritten
            .stats
            .input_bytes
            .saturating_sub(rewritten.stats.output_bytes);
        let inputs: Vec<u64> = chosen.iter().copied().collect();
        // Before the commit point: every record that stays must have a new home. A record
        // the rewrite could not read (damage the checkpoints hid at open) would otherwise
        // be lost when the inputs go.
        if let Err(e) = self.check_every_survivor_moved(&chosen, doomed, &rewritten.moves) {
            rewritten
                .outputs
                .into_iter()
                .for_each(seglog_segment::BuiltSegment::abandon);
            return Err(e);
        }
        let input_first_lsns: Vec<u64> = infos
            .iter()
            .filter(|i| chosen.contains(&i.number))
            .map(|i| i.first_lsn)
            .collect();
        // Step 4.
        let replacement = segments.replace_segments(&inputs, rewritten.outputs)?;
        // Step 5.
        let outputs = {
            let mut index = self.shared.index.write();
            index.remove_executions(doomed.iter().map(String::as_str));
            let replaced: HashSet<u32> = inputs
                .iter()
                .filter_map(|&n| u32::try_from(n).ok())
                .collect();
            let moves = &rewritten.moves;
            if let Err(e) = index.relocate(&replaced, |l| {
                moves
                    .moved_to(l.position())
                    .and_then(|p| Location::from_position(p).ok())
            }) {
                // The disk holds the new segments; an index that cannot follow is a bug,
                // and serving from it could return wrong data. Stop; reopening rebuilds.
                let e = Error::from(e);
                segments.poison(&seglog_segment::Error::InvalidReplacement(e.to_string()));
                return Err(e);
            }
            // IMPORTANT: the epoch moves before the new segments are installed: a reader
            // that looked positions up before this and reads in the new table must see the
            // epoch moved when it checks after its read, and retry, instead of returning
            // `NoSuchRecord` (the table's lock orders the two). And it moves again after
            // them, as a read-only refresh does: a global read takes the segment table
            // without the index lock, so it may load the first move and still list the old
            // table; when a segment it listed is gone, it must find the epoch moved (review
            // 53's stress test: "no record at segment 1", 1 run in 5).
            self.shared.layout_epoch.fetch_add(1, Ordering::AcqRel);
            #[cfg(test)]
            if let Some(hook) = self.shared.between_epoch_moves.lock().as_ref() {
                hook(self);
            }
            let outputs = segments.install(replacement);
            let epoch = self.shared.layout_epoch.fetch_add(1, Ordering::AcqRel) + 1;
            // The read-ahead handles may name the old segments: they go, so that their space
            // comes back once the last map of them is dropped.
            self.shared.read_ahead.forget(epoch);
            outputs
        };
        // Step 6.
        self.checkpoint_replacement(&outputs, &input_first_lsns);
        Ok(())
    }

    /// Fails, naming segment and offset, when a record of an execution that stays sits in
    /// a rewritten segment but was not copied, or is not the record the index says is there
    /// (another execution or first sequence: the open took its segment from a checkpoint
    /// and never read it). Copied as it is, such a record would put a sequence out of line
    /// into the outputs, which the next open reads, and the log would not open.
    fn check_every_survivor_moved(
        &self,
        rewritten: &BTreeSet<u64>,
        doomed: &[String],
        moves: &seglog_compact::Moves,
    ) -> Result<()> {
        let corrupt = |position: seglog_segment::RecordPosition, reason: String| -> Error {
            seglog_segment::Error::Corruption {
                segment: position.segment,
                offset: position.offset,
                reason,
            }
            .into()
        };
        // Noted under the index's lock, checked against the records after it: appenders
        // need the lock, and reading every record kept takes a while. The rewritten (sealed)
        // segments do not change, nor do their records' entries: compactions take turns.
        // (where, which execution, first sequence and events; a first sequence of 0 is
        // unknown: sequences start at 1).
        let mut kept: Vec<(Location, u32, u64, u64)> = Vec::new();
        // (execution, tenant) of the executions noted.
        let mut executions: Vec<(String, String)> = Vec::new();
        {
            let index = self.shared.index.read();
            for e in index.executions() {
                if doomed.iter().any(|d| d == e.id()) {
                    continue;
                }
                let mut noted = false;
                for (i, l) in e.records().iter().enumerate() {
                    let position = l.position();
                    if !rewritten.contains(&position.segment) {
                        continue;
                    }
                    if moves.moved_to(position).is_none() {
                        return Err(corrupt(
                            position,
                            format!(
                                "a record of execution {:?} could not be read for compaction; \
                                 nothing was changed",
                                e.id()
                            ),
                        ));
                    }
                    if !noted {
                        let tenant = index.tenant_of(e.id()).unwrap_or_default().to_owned();
                        executions.push((e.id().to_owned(), tenant));
                        noted = true;
                    }
                    let execution = u32::try_from(executions.len() - 1).unwrap_or(u32::MAX);
                    let first_seq = e.record_first_seq(i).unwrap_or(0);
                    // Up to the next record's first sequence, or the execution's last.
                    let next = e
                        .record_first_seq(i + 1)
                        .unwrap_or(e.last_seq().saturating_add(1));
                    kept.push((*l, execution, first_seq, next.saturating_sub(first_seq)));
                }
            }
        }
        // In file order: the reads follow each other through the (just read) inputs.
        kept.sort_unstable_by_key(|&(l, _, _, _)| (l.segment, l.offset));
        for (location, execution, first_seq, events) in kept {
            let position = location.position();
            let record = self.shared.segments.read(position)?;
            let view = record.view();
            let (execution, tenant) = executions
                .get(execution as usize)
                .map_or(("", ""), |(e, t)| (e.as_str(), t.as_str()));
            if view.execution_id() != execution.as_bytes()
                || view.tenant_id() != tenant.as_bytes()
                || view.first_seq() != first_seq
                || u64::from(view.event_count()) != events
            {
                return Err(corrupt(
                    position,
                    format!(
                        "the record there is not the one of execution {execution:?} (tenant \
                         {tenant:?}, events {first_seq}..{}) the index holds; nothing was \
                         changed",
                        first_seq + events.saturating_sub(1)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Index checkpoints for the new segments; the old segments' checkpoints go, in every
    /// checkpoint mode: they hold the ids of the executions dropped. Checkpoints queued
    /// before (an input sealed by the roll, say) are written first, so none of them can
    /// reappear afterwards.
    fn checkpoint_replacement(
        &self,
        outputs: &[seglog_segment::SegmentInfo],
        old_first_lsns: &[u64],
    ) {
        let fs = self.shared.segments.file_system();
        let dir = &self.shared.dir;
        let guard = self.shared.segments.dir_guard();
        self.shared.checkpointer.barrier();
        // Removed by path: from another log's directory if this one's moved.
        if let Err(e) = guard.check(fs) {
            tracing::warn!(error = %e, "old checkpoints not removed; the next open removes them");
            return;
        }
        for lsn in old_first_lsns {
            let path = dir.join(seglog_index::checkpoint::checkpoint_file_name(*lsn));
            if let Err(e) = fs.remove(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove an old checkpoint");
                }
            }
        }
        // IMPORTANT: the removals are durable before compaction returns: an erased id must
        // not come back in a power cut.
        if let Err(e) = fs.sync_dir(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the removal of old checkpoints");
        }
        for info in outputs {
            let Ok(bytes) = self.shared.segments.segment_bytes(info.number) else {
                continue;
            };
            self.shared
                .checkpointer
                .checkpoint(fs, &guard, info, &bytes);
        }
    }

    /// [`Self::compact_blocking`] off the async runtime's threads (in place outside a tokio
    /// runtime), without progress.
    ///
    /// # Cancel safety
    /// Dropping the future does not stop the work: it runs on tokio's blocking pool to its
    /// end, and the compaction's result is lost with the future (the log is
    /// as before or as after it, as for any compaction).
    ///
    /// # Errors
    /// As [`Self::compact_blocking`].
    pub async fn compact(&self, plan: Plan, options: CompactOptions) -> Result<CompactionReport> {
        let log = self.clone();
        crate::offload::run_blocking("compaction", move || {
            log.compact_blocking(&plan, options, &mut |_, _| {})
        })
        .await
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
