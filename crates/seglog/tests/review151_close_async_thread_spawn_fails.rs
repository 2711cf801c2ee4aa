//! Review 151: `ClaimedClose::start` (log.rs) falls back to a plain `log.close()` on the
//! blocking pool when the "seglog-close" thread cannot be started, on the premise that
//! dropping the job drops the `ClaimedClose` and so "the claim is given back". The change
//! deleted `impl Drop for ClaimedClose` (which called `close_gate.release_claim()`), so
//! nothing gives the claim back: the gate stays `Closing(None)`, the fallback `log.close()`
//! waits at `CloseGate::enter(true)` for a close nobody runs, and the `close_async` future
//! never resolves (and the pool thread is held for good). Thread creation fails in
//! practice under thread or address-space exhaustion; here an `RLIMIT_AS` just above the
//! process's current size makes it fail (root ignores `RLIMIT_NPROC`): a thread's 2 MiB
//! stack does not fit, the close's few small allocations do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

fn vm_size_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Sets this process's soft address-space limit in place, with no helper process: a
/// `prlimit` child had to be started while the limit was in force, and that spawn itself
/// could fail for want of memory (seen in CI).
fn set_as_limit(soft: Option<u64>) {
    use rustix::process::{setrlimit, Resource, Rlimit};
    setrlimit(
        Resource::As,
        Rlimit {
            current: soft,
            maximum: None,
        },
    )
    .unwrap();
}

#[test]
fn close_async_whose_close_thread_cannot_start_still_closes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = rt.block_on(async {
        let log = Log::open(dir.path(), Options::default()).await.unwrap();
        log.append("e", "t", b"before").await.unwrap();
        // One idle pool thread (kept 10 s), so the fallback's `spawn_blocking` needs no new one.
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        log
    });

    let closing = {
        // In the runtime's context, as an async caller is: `close_async` spawns from there.
        let _context = rt.enter();
        set_as_limit(Some(vm_size_bytes() + (1 << 20)));
        let spawn_fails = std::thread::Builder::new().spawn(|| ()).is_err();
        // `close_async` starts the close when called: the thread spawn is tried here.
        let closing = spawn_fails.then(|| log.close_async());
        set_as_limit(None);
        assert!(spawn_fails, "could not make thread creation fail");
        closing.unwrap()
    };

    let outcome =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), closing).await });
    rt.shutdown_background();
    let result = outcome.expect(
        "close_async never resolved: the close thread could not start, the claim was never \
         given back (ClaimedClose lost its Drop), and the fallback close waits at the gate \
         for it",
    );
    result.unwrap();
    assert!(log.is_closed());
}
