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
    remaining: usize,
    /// The creation LSN of the execution's incarnation this reader follows, once known.
    incarnation: Option<u64>,
    chunk: VecDeque<Event>,
    done: bool,
}

impl<F: FileSystem> EventReader<'_, F> {
    fn fill(&mut self) -> Result<()> {
        let want = self.remaining.min(CHUNK_EVENTS);
        let (events, created_lsn) = self.log.read_chunk(&self.execution, self.next_seq, want)?;
        match (self.incarnation, created_lsn) {
            (Some(followed), Some(now)) if followed != now => {
                return Err(Error::Erased {
                    execution: self.execution.clone(),
                })
            }
            // Gone (erased, not created again): nothing more, unless we had read some of it.
            (Some(_), None) => {
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
        self.remaining -= events.len();
        self.chunk.extend(events);
        Ok(())
    }
}

impl<F: FileSystem> Iterator for EventReader<'_, F> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.chunk.is_empty() && !self.done && self.remaining > 0 {
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
        EventReader {
            log: self,
            execution: execution.to_owned(),
            next_seq: from_seq.max(1),
            remaining: usize::MAX,
            incarnation: None,
            chunk: VecDeque::new(),
            done: false,
        }
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
        let mut next_seq = from_seq.max(1);
        let mut want = 16;
        let mut incarnation = None;
        loop {
            let (events, now) = self.read_chunk(execution, next_seq, want)?;
            if out.is_empty() {
                incarnation = now;
            } else if now != incarnation {
                return Err(Error::Erased {
                    execution: execution.to_owned(),
                });
            }
            let complete = events.len() < want;
            for event in events {
                if !out.is_empty() && bytes.saturating_add(event.payload.len()) > max_bytes {
                    return Ok(out);
                }
                bytes = bytes.saturating_add(event.payload.len());
                next_seq = event.seq + 1;
                out.push(event);
            }
            if complete {
                return Ok(out);
            }
            want = (want * 2).min(CHUNK_EVENTS);
        }
    }
}
