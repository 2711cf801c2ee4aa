//! The synchronization primitives of the commit path — the commit lock, the durable
//! watermark, the waiters' state (their bell is in `writer::bell`) — and of the queue of appends waiting to
//! be published (`DurableQueue`), in one place, so that the `seglog_loom` cfg flag can swap in
//! loom's model-checked versions (`tests/loom_group_commit.rs`, `tests/loom_durable_queue.rs`).
//! Everything else keeps parking_lot and std: only the coordinator's own interleavings are
//! explored.

#[cfg(not(seglog_loom))]
mod imp {
    pub use parking_lot::Mutex;
    pub use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};

    pub mod thread {
        pub use std::thread::yield_now;
    }
}

#[cfg(seglog_loom)]
mod imp {
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};

    pub mod thread {
        pub use loom::thread::yield_now;
    }

    /// loom's mutex with parking_lot's signature (no lock poisoning).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

pub(crate) use imp::*;
