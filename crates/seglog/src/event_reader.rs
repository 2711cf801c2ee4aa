//! Reading a big execution a chunk at a time: the index lock is held only to look up one
//! chunk's locations (never for the whole execution), and the caller holds at most one
//! chunk of events in memory — the way raft-engine's `fetch_entries_to` bounds a read.

use crate::log::Log;
use crate::read::Event;
use crate::{Error, Result};
use seglog_segment::io::FileSystem;
use std::collections::VecDeque;

/// Events looked up (and loaded) per chunk.
pub(crate) const CHUNK_EVENTS: usize = 1024;

/// An iterator over one execution's events, from a sequence number on, read in chunks of
/// at most 1,024 events (see [`Log::events`]). Each chunk is read as [`Log::read_range`]
/// reads; across chunks, the reader checks that the execution is still the one it started
/// on: if a compaction erased it meanwhile (and an append created it again), the next item
/// is [`Error::Erased`] and the iteration ends.
///
/// Events appended while the iteration runs are returned if they are durable by the time
/// their chunk is read; the iteration ends at the first chunk that finds nothing more.
pub struct EventReader<'a, F: FileSystem> {
    log: &'a Log<F>,
    execution: String,
    next_seq: u64,
    /// Events the next chunk asks for: doubles up to [`CHUNK_EVENTS`].
    chunk_events: usize,
    /// The creation LSN of the execution's incarnation this reader follows, once known.
    incarnation: Option<u64>,
    chunk: VecDeque<Event>,
    done: bool,
}

impl<'a, F: FileSystem> EventReader<'a, F> {
    fn fill(&mut self) -> Result<()> {
        let want = self.chunk_events;
        let (events, created_lsn) = self.log.read_chunk(&self.execution, self.next_seq, want)?;
        match (self.incarnation, created_lsn) {
            // Erased since (and maybe created again): what follows is not this execution.
            (Some(followed), now) if now != Some(followed) => {
                return Err(Error::Erased {
                    execution: self.execution.clone(),
                })
            }
            (None, now) => self.incarnation = now,
            _ => {}
        }
        if events.len() < want {
            self.done = true;
        }
        if let Some(last) = events.last() {
            self.next_seq = last.seq + 1;
        }
        self.chunk_events = (want * 2).min(CHUNK_EVENTS);
        self.chunk.extend(events);
        Ok(())
    }

    fn starting_with(log: &'a Log<F>, execution: &str, from_seq: u64, chunk_events: usize) -> Self {
        EventReader {
            log,
            execution: execution.to_owned(),
            next_seq: from_seq.max(1),
            chunk_events,
            incarnation: None,
            chunk: VecDeque::new(),
            done: false,
        }
    }
}

impl<F: FileSystem> Iterator for EventReader<'_, F> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.chunk.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.chunk.pop_front().map(Ok)
    }
}

impl<F: FileSystem> Log<F> {
    /// The events of `execution` from sequence `from_seq` on, as an iterator that reads a
    /// chunk at a time: for executions too big to collect into one `Vec`, and so that no
    /// lookup holds the index for longer than one chunk (appends wait for it). Unknown
    /// execution: an empty iterator.
    ///
    /// ```
    /// # fn main() -> seglog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = seglog::Log::open_blocking(dir.path(), seglog::Options::default())?;
    /// for i in 0..3u8 {
    ///     log.append_blocking("exec", "tenant", &[i])?;
    /// }
    /// let seqs: Vec<u64> = log.events("exec", 2).map(|e| e.map(|e| e.seq)).collect::<Result<_, _>>()?;
    /// assert_eq!(seqs, [2, 3]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Each item: those of [`Self::read`], and [`Error::Erased`] when a compaction erased the
    /// execution between two chunks.
    pub fn events(&self, execution: &str, from_seq: u64) -> EventReader<'_, F> {
        EventReader::starting_with(self, execution, from_seq, CHUNK_EVENTS)
    }

    /// Events of `execution` from `from_seq` on, until their payloads add up to `max_bytes`
    /// (always at least one event, if there is one): a read whose memory the caller bounds,
    /// as raft-engine's `fetch_entries_to(max_size)`. Continue from the last event's
    /// sequence + 1.
    ///
    /// # Errors
    /// As [`Self::events`].
    pub fn read_bounded(
        &self,
        execution: &str,
        from_seq: u64,
        max_bytes: usize,
    ) -> Result<Vec<Event>> {
        // Chunks that start small and double, so that a small budget never loads a full
        // chunk of big events it will not return.
        let mut out: Vec<Event> = Vec::new();
        let mut bytes = 0usize;
        for event in EventReader::starting_with(self, execution, from_seq, 16) {
            let event = event?;
            if !out.is_empty() && bytes.saturating_add(event.payload.len()) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(event.payload.len());
            out.push(event);
        }
        Ok(out)
    }
}
