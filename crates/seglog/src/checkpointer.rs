//! Writes an index checkpoint for every sealed segment, off the append path.

use crate::CheckpointMode;
use bytes::Bytes;
use parking_lot::Mutex;
use seglog_segment::io::FileSystem;
use seglog_segment::{DirGuard, SealListener, SegmentInfo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Work for the checkpoint thread.
enum Job {
    /// Write the checkpoint of a sealed segment.
    Write(SegmentInfo, Bytes),
    /// Tell the sender that every job queued before this one is done.
    Barrier(mpsc::Sender<()>),
}

/// The checkpoint writer: a thread fed through a channel (or nothing, inline/off).
pub(crate) struct Checkpointer {
    mode: CheckpointMode,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    written: Arc<AtomicU64>,
}

fn write_one<F: FileSystem>(
    fs: &F,
    dir: &DirGuard,
    info: &SegmentInfo,
    bytes: &Bytes,
    written: &AtomicU64,
) {
    // A checkpoint written by path into another log's directory would describe segments it
    // does not have.
    if let Err(e) = dir.check(fs) {
        tracing::warn!(segment = info.number, error = %e, "index checkpoint not written");
        return;
    }
    match seglog_index::checkpoint::write(fs, dir.dir(), info, bytes) {
        Ok(_) => {
            written.fetch_add(1, Ordering::Relaxed);
        }
        // Not fatal: without its checkpoint the segment is scanned on the next open.
        Err(e) => tracing::warn!(segment = info.number, error = %e, "index checkpoint not written"),
    }
}

impl Checkpointer {
    pub fn start<F: FileSystem + Clone>(fs: F, dir: DirGuard, mode: CheckpointMode) -> Arc<Self> {
        let written = Arc::new(AtomicU64::new(0));
        let (sender, thread) = if mode == CheckpointMode::Background {
            let (tx, rx) = mpsc::channel::<Job>();
            let w = written.clone();
            let handle = std::thread::Builder::new()
                .name("seglog-checkpoint".into())
                .spawn(move || {
                    for job in rx {
                        match job {
                            Job::Write(info, bytes) => write_one(&fs, &dir, &info, &bytes, &w),
                            Job::Barrier(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .map_err(|e| tracing::warn!(error = %e, "cannot start the checkpoint thread; checkpoints off"))
                .ok();
            (handle.is_some().then_some(tx), handle)
        } else {
            (None, None)
        };
        Arc::new(Checkpointer {
            mode,
            sender: Mutex::new(sender),
            thread: Mutex::new(thread),
            written,
        })
    }

    /// Queues a sealed segment. Without a background thread, does nothing.
    pub fn submit(&self, info: SegmentInfo, bytes: Bytes) {
        if let Some(tx) = self.sender.lock().as_ref() {
            let _ = tx.send(Job::Write(info, bytes));
        }
    }

    /// Returns once every checkpoint queued before the call is written (or given up on), so
    /// that none of them can appear after the caller deletes checkpoints.
    pub fn barrier(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        let sent = self
            .sender
            .lock()
            .as_ref()
            .is_some_and(|tx| tx.send(Job::Barrier(done_tx)).is_ok());
        if sent {
            // An error means the thread is gone: nothing of it can still write.
            let _ = done_rx.recv();
        }
    }

    /// Checkpoints a sealed segment as the mode says: queued for the thread, written now, or
    /// not at all.
    pub fn checkpoint<F: FileSystem>(
        &self,
        fs: &F,
        dir: &DirGuard,
        info: &SegmentInfo,
        bytes: &Bytes,
    ) {
        match self.mode {
            CheckpointMode::Background => self.submit(info.clone(), bytes.clone()),
            CheckpointMode::Inline => write_one(fs, dir, info, bytes, &self.written),
            CheckpointMode::Off => {}
        }
    }

    /// The seal listener for the segment layer.
    pub fn listener<F: FileSystem + Clone>(
        self: &Arc<Self>,
        fs: F,
        dir: DirGuard,
    ) -> Option<SealListener> {
        if self.mode == CheckpointMode::Off {
            return None;
        }
        let me = self.clone();
        Some(Box::new(move |info: &SegmentInfo, bytes: &Bytes| {
            me.checkpoint(&fs, &dir, info, bytes)
        }))
    }

    /// The mode it was started with.
    pub fn mode(&self) -> CheckpointMode {
        self.mode
    }

    /// Checkpoints written since open.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(&self) {
        self.sender.lock().take();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}
