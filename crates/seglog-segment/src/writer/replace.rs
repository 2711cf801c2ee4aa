//! Compaction's entry points into the writer: forcing a roll, writing new segments, and
//! replacing sealed segments by them (the protocol is in `crate::replacement`).
//!
//! The active segment is never an input. Replacements are serialized (`replace_lock`).

use super::{Inner, SegmentLog};
use crate::builder::{remove_temp, BuiltSegment, SegmentBuilder};
use crate::format::{
    segment_file_name, ManifestInput, ManifestOutput, ReplacementManifest, SegmentHeader,
};
use crate::io::{FileSystem, SegmentFile};
use crate::replacement::{
    apply_manifest, commit_manifest, remove_if_present, retire_manifest, temp_path_for,
};
use crate::segment::{SegmentEntry, SegmentInfo};
use crate::{Error, Result};
use std::sync::Arc;

/// A committed replacement whose new segments are not yet visible to readers of this
/// process: hand it to [`SegmentLog::install`] (under whatever lock keeps the caller's own
/// positions consistent with it).
#[must_use = "a committed replacement must be installed"]
pub struct Replacement<F: FileSystem> {
    inputs: Vec<u64>,
    outputs: Vec<Arc<SegmentEntry<F>>>,
}

impl<F: FileSystem> Replacement<F> {
    /// The new segments.
    pub fn outputs(&self) -> Vec<SegmentInfo> {
        self.outputs.iter().map(|e| e.info()).collect()
    }
}

impl<F: FileSystem + Clone> SegmentLog<F> {
    /// Seals the active segment now if it holds any record, and starts a new one; returns
    /// the number of the segment sealed. Either way, when it returns every record submitted
    /// before the call is durable and in a sealed segment. Use before compacting records
    /// that may not be sealed yet.
    ///
    /// # Errors
    /// As [`Self::wait_durable`].
    pub fn roll(&self) -> Result<Option<u64>> {
        self.check_writable()?;
        let (lsn, sealed) = self.inner.submit_roll()?;
        self.inner.wait_durable(lsn)?;
        Ok(sealed)
    }

    /// Starts a new segment whose first LSN (and file name) is `first_lsn`, under a
    /// temporary name, with a fresh segment number.
    ///
    /// # Errors
    /// [`Error::Poisoned`], [`Error::Closed`], I/O errors.
    pub fn segment_builder(&self, first_lsn: u64) -> Result<SegmentBuilder<F>> {
        self.new_segment_builder(first_lsn, false)
    }

    /// As [`Self::segment_builder`], for a clustered segment (header flag `CLUSTERED`,
    /// docs/format.md §3.5): records are pushed grouped by execution, each execution's in LSN
    /// order. Its records must all lie below the next segment's first LSN (the caller's
    /// duty: a clustered output replaces exactly one input and takes its name).
    ///
    /// # Errors
    /// As [`Self::segment_builder`].
    pub fn clustered_segment_builder(&self, first_lsn: u64) -> Result<SegmentBuilder<F>> {
        self.new_segment_builder(first_lsn, true)
    }

    fn new_segment_builder(&self, first_lsn: u64, clustered: bool) -> Result<SegmentBuilder<F>> {
        self.check_writable()?;
        self.inner.check_dir()?;
        let number = self.inner.reserve_segment_number()?;
        let final_path = self.inner.dir.join(segment_file_name(first_lsn.max(1)));
        let temp_path = temp_path_for(&final_path);
        remove_if_present(&self.inner.fs, &temp_path)?;
        let file = self
            .inner
            .fs
            .create_new(&temp_path)
            .map_err(|e| Error::io("create", &temp_path, e))?;
        let header = SegmentHeader {
            // Its LSNs may skip: the writer never appends to it (see `SegmentLog::open`).
            compacted: true,
            clustered,
            ..SegmentHeader::new(number, first_lsn.max(1), super::roll::now_unix_nanos())
                .map_err(|e| Error::io("getrandom", &temp_path, e))?
        };
        Ok(SegmentBuilder::new(
            self.inner.fs.clone(),
            self.inner.dir_guard.clone(),
            file,
            temp_path,
            final_path,
            header,
        ))
    }

    /// Replaces the sealed segments `inputs` by `outputs`, crash-atomically: when this
    /// returns Ok the replacement is durable; a crash at any moment leaves either every input
    /// or every output. Readers of this process still see the inputs until [`Self::install`].
    ///
    /// # Errors
    /// [`Error::InvalidReplacement`] (nothing changed), errors before the commit point
    /// (nothing changed; the outputs are removed), and errors after it, which poison the log:
    /// reopening finishes the replacement.
    pub fn replace_segments(
        &self,
        inputs: &[u64],
        outputs: Vec<BuiltSegment<F>>,
    ) -> Result<Replacement<F>> {
        let _one_at_a_time = self.inner.replace_lock.lock();
        let abandon = |outputs: Vec<BuiltSegment<F>>| outputs.into_iter().for_each(|o| o.abandon());
        let prepared = self
            .inner
            .commit
            .lock()
            .check_usable()
            .and_then(|()| self.check_writable())
            .and_then(|()| self.inner.check_dir())
            .and_then(|()| self.plan_replacement(inputs, &outputs));
        let manifest = match prepared {
            Ok(m) => m,
            Err(e) => {
                abandon(outputs);
                return Err(e);
            }
        };
        // Map the new segments before committing, so nothing after the commit point can fail
        // but the file operations of the protocol.
        let temps: Vec<_> = outputs.iter().map(|o| o.temp_path.clone()).collect();
        let mut entries = Vec::with_capacity(outputs.len());
        for o in outputs {
            match o.file.map() {
                Ok(view) => {
                    let view = view.slice(..(o.len as usize).min(view.len()));
                    let entry =
                        SegmentEntry::new(o.header, o.final_path, o.file, o.len, o.last_lsn);
                    entry.seal(Some(view));
                    entries.push(Arc::new(entry));
                }
                Err(e) => {
                    let err = Error::io("map", &o.temp_path, e);
                    drop(entries);
                    temps
                        .iter()
                        .for_each(|p| remove_temp(&self.inner.fs, &self.inner.dir_guard, p));
                    return Err(err);
                }
            }
        }
        if let Err(e) = commit_manifest(&self.inner.fs, &self.inner.dir_guard, &manifest) {
            // The manifest may or may not be durable: only a reopen can tell (fsyncgate).
            self.inner.poison(&e);
            return Err(e);
        }
        // Renames and removals by path: not in a directory that took this one's place (the
        // poisoned log's reopen, where its directory is, finishes the replacement).
        let finished = self
            .inner
            .check_dir()
            .and_then(|()| apply_manifest(&self.inner.fs, &self.inner.dir, &manifest))
            .and_then(|()| retire_manifest(&self.inner.fs, &self.inner.dir));
        if let Err(e) = finished {
            self.inner.poison(&e);
            return Err(e);
        }
        tracing::info!(
            inputs = ?inputs,
            outputs = ?entries.iter().map(|e| e.number()).collect::<Vec<_>>(),
            "replaced segments"
        );
        Ok(Replacement {
            inputs: inputs.to_vec(),
            outputs: entries,
        })
    }

    /// Makes a committed replacement visible: readers see the new segments from now on.
    /// Records already read keep their bytes (a removed file lives on while mapped).
    pub fn install(&self, replacement: Replacement<F>) -> Vec<SegmentInfo> {
        let infos = replacement.outputs();
        let mut table = self.inner.segments.write();
        for n in &replacement.inputs {
            table.remove(n);
        }
        for e in replacement.outputs {
            table.insert(e.number(), e);
        }
        infos
    }

    /// Checks that the replacement keeps the log's invariants and writes its manifest.
    fn plan_replacement(
        &self,
        inputs: &[u64],
        outputs: &[BuiltSegment<F>],
    ) -> Result<ReplacementManifest> {
        let invalid = |why: String| Error::InvalidReplacement(why);
        let table = self.inner.segments.read();
        let mut manifest = ReplacementManifest::default();
        for n in inputs {
            let entry = table
                .get(n)
                .ok_or_else(|| invalid(format!("segment {n} is not in the log")))?;
            if !entry.info().sealed {
                return Err(invalid(format!("segment {n} is not sealed")));
            }
            if manifest.inputs.iter().any(|i| i.segment_number == *n) {
                return Err(invalid(format!("segment {n} is listed twice")));
            }
            manifest.inputs.push(ManifestInput {
                segment_number: *n,
                first_lsn: entry.header.first_lsn,
            });
        }
        // The log after the replacement: (first LSN, last LSN) of every segment, in order.
        let mut after: Vec<(u64, u64)> = table
            .values()
            .filter(|e| !inputs.contains(&e.number()))
            .map(|e| {
                let i = e.info();
                (i.first_lsn, i.last_lsn)
            })
            .collect();
        for o in outputs {
            if table.contains_key(&o.number()) {
                return Err(invalid(format!("segment number {} is taken", o.number())));
            }
            after.push((o.header.first_lsn, o.last_lsn));
            manifest.outputs.push(ManifestOutput {
                segment_number: o.number(),
                first_lsn: o.header.first_lsn,
                len: o.len,
            });
        }
        after.sort_unstable();
        for pair in after.windows(2) {
            if pair[0].1 >= pair[1].0 || pair[0].0 == pair[1].0 {
                return Err(invalid(format!(
                    "segments starting at LSN {} and {} would overlap",
                    pair[0].0, pair[1].0
                )));
            }
        }
        Ok(manifest)
    }
}

impl<F: FileSystem> Inner<F> {
    /// A segment number never used in this log.
    fn reserve_segment_number(&self) -> Result<u64> {
        let mut st = self.commit.lock();
        st.check_usable()?;
        let n = st.next_segment_number;
        st.next_segment_number += 1;
        Ok(n)
    }
}
