//! Fetching ahead: a restore needs many objects in order (sealed segments, checkpoints, the
//! active segment's chunks). Fetched one after the other, each costs a full round trip (tens
//! of milliseconds to S3's first byte), so a restore of an active segment shipped as
//! thousands of chunks would take minutes. [`FetchAhead`] keeps several fetches in flight,
//! each a task of its own (so they progress while the caller writes what it already has), and
//! hands their results back in order.
//!
//! Bounded twice: by a number of objects, and by their bytes (known before the GET: the
//! manifest's lengths, a listing's sizes), so that fetching ahead never holds more than the
//! budget in memory besides the object the caller is working on (one object larger than the
//! budget is fetched alone). A fetch only reads: a fetcher dropped early (the caller failed)
//! aborts the fetches in flight and nothing is left behind. Whatever writes to the
//! destination stays with the caller, in order, each write awaited.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::future::Future;

/// How far a restore fetches ahead ([`crate::RestoreOptions::fetch_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchAheadLimits {
    /// Objects in flight at most (at least 1).
    pub objects: usize,
    /// Bytes of objects in flight at most (one object larger than this is fetched alone).
    pub bytes: u64,
}

impl Default for FetchAheadLimits {
    /// 16 objects, 256 MiB: two default (128 MiB) segments, or many chunks.
    fn default() -> Self {
        FetchAheadLimits {
            objects: 16,
            bytes: 256 << 20,
        }
    }
}

impl FetchAheadLimits {
    /// One object at a time (no fetching ahead).
    pub const ONE_AT_A_TIME: FetchAheadLimits = FetchAheadLimits {
        objects: 1,
        bytes: 0,
    };
}

/// A spawned fetch, aborted when dropped.
struct Fetch<T>(tokio::task::JoinHandle<Result<T>>);

impl<T> Drop for Fetch<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Results of `fetch` over `items` (each with its size in bytes, which the fetch must not
/// exceed: the caller bounds each read by it), in the items' order, with up to
/// [`FetchAheadLimits`] of them in flight.
pub(crate) struct FetchAhead<I: Iterator, F, T> {
    items: std::iter::Peekable<I>,
    fetch: F,
    limits: FetchAheadLimits,
    in_flight: VecDeque<(u64, Fetch<T>)>,
    in_flight_bytes: u64,
}

impl<I, X, F, Fut, T> FetchAhead<I, F, T>
where
    I: Iterator<Item = (u64, X)>,
    F: FnMut(X) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    /// Starts fetching the first of `items`.
    pub(crate) fn new(
        items: impl IntoIterator<IntoIter = I>,
        limits: FetchAheadLimits,
        fetch: F,
    ) -> Self {
        let mut ahead = FetchAhead {
            items: items.into_iter().peekable(),
            fetch,
            limits,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
        };
        ahead.start_more();
        ahead
    }

    /// The next item's result, `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<Result<T>> {
        self.start_more();
        let (size, mut fetch) = self.in_flight.pop_front()?;
        // Its budget is freed when the caller asks for the next one: until then, the caller
        // holds it.
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(size);
        let result = (&mut fetch.0).await;
        Some(result.unwrap_or_else(|e| Err(Error::Task(e.to_string()))))
    }

    fn start_more(&mut self) {
        while self.in_flight.len() < self.limits.objects.max(1) {
            let Some((size, _)) = self.items.peek() else {
                return;
            };
            let size = *size;
            if !self.in_flight.is_empty()
                && self.in_flight_bytes.saturating_add(size) > self.limits.bytes
            {
                return;
            }
            let Some((_, item)) = self.items.next() else {
                return;
            };
            let task = tokio::spawn((self.fetch)(item));
            self.in_flight.push_back((size, Fetch(task)));
            self.in_flight_bytes = self.in_flight_bytes.saturating_add(size);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Fetches that take longer the earlier they are: results still come back in order,
    /// and the most in flight at once respects both limits.
    async fn run(limits: FetchAheadLimits, sizes: &[u64]) -> (Vec<usize>, usize) {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let n = sizes.len();
        let items = sizes.iter().copied().enumerate().map(|(i, s)| (s, i));
        let mut ahead = FetchAhead::new(items, limits, |i| {
            let (now, most) = (now.clone(), most.clone());
            async move {
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                let wait = (n - i) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(i)
            }
        });
        let mut out = Vec::new();
        while let Some(r) = ahead.next().await {
            out.push(r.unwrap());
        }
        (out, most.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_in_order_within_both_limits() {
        let limits = FetchAheadLimits {
            objects: 4,
            bytes: 100,
        };
        let (out, most) = run(limits, &[10; 20]).await;
        assert_eq!(out, (0..20).collect::<Vec<_>>());
        assert_eq!(most, 4, "the object limit");
        let (out, most) = run(limits, &[40; 12]).await;
        assert_eq!(out, (0..12).collect::<Vec<_>>());
        assert_eq!(most, 2, "the byte limit: two of 40 fit in 100");
        let (out, most) = run(limits, &[500, 500, 10]).await;
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(most, 1, "an object over the budget is fetched alone");
        let (out, most) = run(FetchAheadLimits::ONE_AT_A_TIME, &[1; 5]).await;
        assert_eq!(out, (0..5).collect::<Vec<_>>());
        assert_eq!(most, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_fetcher_aborts_what_is_in_flight() {
        /// Counts its drops: an aborted fetch drops its future, and so this.
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let finished = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let items = (0..8).map(|i| (1u64, i));
        let mut ahead = FetchAhead::new(items, FetchAheadLimits::default(), |i: usize| {
            made.fetch_add(1, Ordering::SeqCst);
            let finished = finished.clone();
            let guard = Dropped(dropped.clone());
            async move {
                let _guard = guard;
                if i > 0 {
                    // Far longer than any test: only an abort ends it.
                    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            }
        });
        assert_eq!(ahead.next().await.unwrap().unwrap(), 0);
        drop(ahead);
        // Every fetch made is dropped: the finished one, and each one in flight (which, left
        // running, would sleep for ten minutes).
        assert!(made.load(Ordering::SeqCst) > 1, "nothing was fetched ahead");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while dropped.load(Ordering::SeqCst) < made.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "fetches in flight were not aborted: {} made, {} dropped",
                made.load(Ordering::SeqCst),
                dropped.load(Ordering::SeqCst)
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
