//! Review 58: `RemoteDurable`'s rounds task relies on the shielded waker
//! (`seglog_segment::shielded`), whose `contain` dropped the caught panic's payload
//! *outside* its catch_unwind. A caller's waker panicking with a payload whose `Drop` panics
//! (caller code, `std::panic::panic_any`) unwound out of the send and ended the rounds task:
//! every later append failed `RemoteStopped`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use support::fault::FaultStore;
use support::remote::remote_writer;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiters_panic_payload_does_not_end_the_rounds_task() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();
    let gate = faults.pause_next_put("/chunks/");
    let held = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.append("exec-0", "tenant-a", b"held").await })
    };
    gate.reached.notified().await;
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
    let held = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the held append never returned")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = tokio::time::timeout(
        Duration::from_secs(30),
        remote.append("exec-0", "tenant-a", b"later"),
    )
    .await
    .expect("a later append hung");
    assert!(
        held.is_ok() && later.is_ok(),
        "a caller's waker's panic payload, dropped outside contain's catch, ended the rounds \
         task: held {held:?}, later {later:?}"
    );
    std::mem::forget(bad);
    let _ = log;
}
