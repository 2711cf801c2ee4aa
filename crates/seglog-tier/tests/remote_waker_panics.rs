//! A caller's waker that panics (when woken, or with a payload whose drop panics) while a
//! `RemoteDurable` round runs: the rounds task goes on for everyone else.
//!
//! Review 57: the `RemoteDurable` rounds task contained a panic of a caller's waker when it
//! *sent* a round's outcome, but not the other place it runs callers' wakers: the claim's
//! state lock (`Tier::state`, a `tokio::sync::Mutex`) is held by every ship round, and a
//! caller queued on it (here `Tier::manifest`, through `RemoteDurable::tier`) is woken by
//! whoever drops the guard, at the end of a round on the rounds task. A caller's waker that
//! panicked there ended the rounds task for everyone: the waiter of that round was never told
//! it was confirmed, and every later append failed `RemoteStopped`. Waiters on the lock now
//! queue a shielded waker (`Tier::lock_state`).
//!
//! The caller whose waker panicked is not polled again here, and tokio's lock is fair: it
//! was handed the lock, and holds it until its future is dropped, as any stalled call holding
//! the tier's lock does. The rounds go on once it is.
//!
//! Review 58: `RemoteDurable`'s rounds task relies on the shielded waker
//! (`seglog_segment::shielded`), whose `contain` dropped the caught panic's payload
//! *outside* its catch_unwind. A caller's waker panicking with a payload whose `Drop` panics
//! (caller code, `std::panic::panic_any`) unwound out of the send and ended the rounds task:
//! every later append failed `RemoteStopped`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use seglog_tier::RemoteDurable;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use support::fault::{FaultStore, Gate};
use support::remote::remote_writer;

struct Panics;
impl Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("the caller's waker panicked");
    }
}

struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the caller's panic payload panicked when dropped");
    }
}

struct PanicsWithBomb;
impl Wake for PanicsWithBomb {
    fn wake(self: Arc<Self>) {
        std::panic::panic_any(Bomb);
    }
}

/// A remote writer with one append acknowledged and a second one whose round is held at its
/// chunk PUT (`gate`), holding the claim's state lock.
struct Held {
    remote: RemoteDurable,
    log: seglog::Log,
    held: tokio::task::JoinHandle<seglog_tier::Result<u64>>,
    gate: Gate,
    _root: tempfile::TempDir,
}

async fn a_round_held_at_its_put() -> Held {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store, &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();
    let gate = faults.pause_next_put("/chunks/");
    let held = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.append("exec-0", "tenant-a", b"held").await })
    };
    gate.reached.notified().await;
    Held {
        remote,
        log,
        held,
        gate,
        _root: root,
    }
}

/// The held append's outcome, then (`pause` later) a new append's: each must return
/// within 30 s.
async fn held_then_a_later_append(
    remote: &RemoteDurable,
    held: tokio::task::JoinHandle<seglog_tier::Result<u64>>,
    pause: Duration,
) -> (seglog_tier::Result<u64>, seglog_tier::Result<u64>) {
    let held = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the held append never returned")
        .unwrap();
    tokio::time::sleep(pause).await;
    let later = tokio::time::timeout(
        Duration::from_secs(30),
        remote.append("exec-0", "tenant-a", b"later"),
    )
    .await
    .expect("a later append hung");
    (held, later)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waker_queued_on_the_claim_lock_does_not_stop_the_rounds_for_everyone_else() {
    // A round is held at its chunk PUT, holding the claim's state lock.
    let Held {
        remote,
        log,
        held,
        gate,
        _root,
    } = a_round_held_at_its_put().await;
    // Another caller reads the manifest meanwhile, polled with a waker that panics: it
    // queues on the lock the round holds.
    let tier = remote.tier().clone();
    let mut manifest = Box::pin(async move { tier.manifest().await });
    let waker = Waker::from(Arc::new(Panics));
    assert!(manifest
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    gate.resume.notify_one();
    // The held round ends and releases the lock: that wakes the panicking waker. Its task
    // never polls its future again; its owner drops it a little later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(manifest);
    let (held, later) = held_then_a_later_append(&remote, held, Duration::ZERO).await;
    assert!(
        held.is_ok() && later.is_ok(),
        "another caller's panicking waker, woken when the round released the claim's lock, \
         ended the rounds task: held append {held:?}, later append {later:?}"
    );
    let _ = log;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiters_panic_payload_does_not_end_the_rounds_task() {
    let Held {
        remote,
        log,
        held,
        gate,
        _root,
    } = a_round_held_at_its_put().await;
    // A caller waits for the bucket, polled with a waker that panics with a payload whose
    // drop panics: it is queued for the next round.
    let waiting = remote.clone();
    let mut bad = Box::pin(async move { waiting.wait_in_bucket().await });
    let bomb = Waker::from(Arc::new(PanicsWithBomb));
    assert!(bad
        .as_mut()
        .poll(&mut Context::from_waker(&bomb))
        .is_pending());
    gate.resume.notify_one();
    let (held, later) = held_then_a_later_append(&remote, held, Duration::from_millis(500)).await;
    assert!(
        held.is_ok() && later.is_ok(),
        "a caller's waker's panic payload, dropped outside contain's catch, ended the rounds \
         task: held {held:?}, later {later:?}"
    );
    std::mem::forget(bad);
    let _ = log;
}
