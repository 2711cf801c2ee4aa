//! Review 157: dropping a log's last handle panics ("OS can't spawn worker thread") when no
//! thread can be started while a cancelled append's round runs on the round runner.
//!
//! Commit 90a2635 made `LastHandle::drop` call `RoundRunner::hold_runtime_until_led`, which
//! calls `Handle::spawn_blocking` on the runtime that handed the latest round. Tokio's
//! `spawn_blocking` *panics* when its pool has no idle thread and the OS refuses a new one
//! (`SpawnError::NoThreads` → `panic!("OS can't spawn worker thread: ...")`; only a
//! shut-down pool is reported quietly). So the drop of a `Log` — something a program does on
//! every path, error paths and unwinding included — panics under thread or address-space
//! exhaustion (the same condition review 151 used), and a panic in a drop during another
//! panic aborts the process. The round runner's own `run` treats the very same failure
//! gracefully (it leads the round on the caller's thread, with a warning); the new drop path
//! does not. (Under `RLIMIT_AS` the failure is EAGAIN, which tokio tolerates only when its pool
//! already has a thread; a fresh or idle-expired pool has none.) With the default background
//! checkpointer the drop first joins that thread, and the stack it frees may make room for
//! the one thread the drop then needs; the test writes checkpoints inline so that the limit
//! is still in force there, as it is under real exhaustion that one freed thread does not
//! relieve.
//!
//! Here: a current-thread runtime (its blocking pool has no thread yet), a spawned task's
//! append cancelled after its first poll (its round — a 1.5 s fsync under SimFs's sync
//! latency — handed to the runner), then `RLIMIT_AS` just above the process's size, so that a
//! thread's stack does not fit, and `drop(log)`.
//!
//! Fixed (2026-12-08): the last handle's drop no longer leaves a blocking task, nor waits;
//! an open of the directory in this process waits for the departing log instead
//! (`seglog-segment`'s `departing.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Log, Options};
use std::time::{Duration, Instant};

const SYNC: Duration = Duration::from_millis(1500);

fn vm_size_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

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
fn dropping_the_last_handle_does_not_panic_when_no_thread_can_start() {
    let fs = SimFs::new();
    // Checkpoints written inline: the default background checkpointer's thread is joined by
    // the drop before it reaches the round runner, and the stack it frees makes room for the
    // one thread the drop then starts; the limit below must still be in force there.
    let options = Options::default().checkpoints(CheckpointMode::Inline);
    let log = Log::open_with_fs(fs.clone(), "/log", options).unwrap();
    log.append_blocking("warm", "t", b"w").unwrap();
    fs.set_sync_latency(SYNC);
    let syncs_before = fs.syncs_started();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on({
        let log = log.clone();
        async move {
            tokio::spawn(async move {
                // Polled once (its round handed to the round runner), then given up.
                let _ = tokio::time::timeout(Duration::ZERO, log.append("exec", "t", b"cancelled"))
                    .await;
            })
            .await
            .unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == syncs_before {
        assert!(
            Instant::now() < deadline,
            "setup: the round's fsync never began"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    set_as_limit(Some(vm_size_bytes() + (1 << 20)));
    let spawn_fails = std::thread::Builder::new().spawn(|| ()).is_err();
    let dropped = spawn_fails
        .then(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(log))));
    set_as_limit(None);
    assert!(spawn_fails, "setup: could not make thread creation fail");
    // Let the round end.
    std::thread::sleep(SYNC + Duration::from_millis(300));
    drop(rt);
    if let Some(Err(panic)) = dropped {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "dropping the log's last handle panicked: {msg:?} (hold_runtime_until_led's \
             spawn_blocking found no pool thread and could not start one)"
        );
    }
}
