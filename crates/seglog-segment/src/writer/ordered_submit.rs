//! Submits numbered by the caller's own state in log order, under the commit lock.
//!
//! A layer above that numbers records from its own state (the engine gives each record of
//! an execution the next sequence number) needs those numbers in the same order as the log.
//! Holding a lock of its own around [`SegmentLog::submit`] does that, but then every
//! appender queues on two locks in turn. [`SegmentLog::submit_in_order`] instead runs the
//! caller's numbering inside the commit lock's own section: one lock, one queue.

use super::group_commit::CommitState;
use super::{Appended, Inner, SegmentLog};
use crate::format::EncodedRecord;
use crate::io::FileSystem;
use crate::Result;

/// The commit queue, lent to the closure of [`SegmentLog::submit_in_order`].
pub struct OrderedQueue<'a, F: FileSystem> {
    inner: &'a Inner<F>,
    st: &'a mut CommitState,
}

impl<F: FileSystem> OrderedQueue<'_, F> {
    /// As [`SegmentLog::submit`]: the record takes the next LSN and position in the log.
    ///
    /// # Errors
    /// As [`SegmentLog::submit`].
    pub fn submit(&mut self, record: EncodedRecord) -> Result<Appended> {
        self.inner.check_record_size(&record)?;
        self.inner.queue_record(self.st, record)
    }
}

impl<F: FileSystem> SegmentLog<F> {
    /// Runs `f` with the commit lock held, lending it the queue: records it submits take
    /// their places in the log in the order `f` runs relative to every other submit, so `f`
    /// may number them from its own state without a lock of its own around the submit.
    ///
    /// `f` holds up every appender and every commit round while it runs: it must be short
    /// and must not block. It may *try* other locks (the engine tries its index lock and
    /// falls back to an ordinary submit when that fails), never wait for one: a lock that
    /// is elsewhere held while this log is called into would deadlock.
    ///
    /// # Errors
    /// [`crate::Error::ReadOnly`] on a read-only log; otherwise whatever `f` returns.
    pub fn submit_in_order<T>(&self, f: impl FnOnce(&mut OrderedQueue<'_, F>) -> T) -> Result<T> {
        self.check_writable()?;
        let mut st = self.inner.commit.lock();
        Ok(f(&mut OrderedQueue {
            inner: &self.inner,
            st: &mut st,
        }))
    }
}
