//! Review 153: a cancelled async append's commit round now runs on the log's round runner
//! (a plain std thread) rather than tokio's blocking pool. A runtime's drop used to wait for
//! that round (and so for the directory lock to go with the log); now it does not, so a
//! program that drops its log and its runtime and reopens the directory finds it locked.
//! Fixed: the last handle's drop leaves a blocking task on the handing runtime that waits
//! for the runner's rounds (`RoundRunner::hold_runtime_until_led`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::time::Duration;

#[test]
fn reopen_after_dropping_log_and_runtime_finds_the_directory_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = Log::open(dir.path(), Options::default()).await.unwrap();
        log.append("warm", "t", b"w").await.unwrap();
        // A large batch: its round (write + fdatasync) takes a while.
        let payload = vec![b'p'; 1 << 20];
        let payloads: Vec<&[u8]> = (0..48).map(|_| &payload[..]).collect();
        let task = {
            let log = log.clone();
            let payloads: Vec<Vec<u8>> = payloads.iter().map(|p| p.to_vec()).collect();
            tokio::spawn(async move {
                // Polled once (the round is handed over), then given up.
                let r =
                    tokio::time::timeout(Duration::ZERO, log.append_batch("big", "t", &payloads))
                        .await;
                r.is_ok()
            })
        };
        let finished = task.await.unwrap();
        eprintln!("append finished within the first poll: {finished}");
        drop(log);
        // As for `close_async` (review 150): a runtime's drop waits for the blocking tasks its
        // pool has started, and drops queued ones unrun. The pool takes tasks in order, so
        // once this one ran, the task the drop above handed to it has started.
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    });
    drop(rt);
    let reopened = Log::open_blocking(dir.path(), Options::default());
    match &reopened {
        Ok(_) => {}
        Err(e) => eprintln!("reopen: {e} (locked: {})", e.is_locked()),
    }
    let log = reopened.expect(
        "the log and its runtime were dropped, yet the directory is still locked: the \
         cancelled append's round runs on the round runner, which the runtime's drop \
         does not wait for",
    );
    assert_eq!(log.read("warm").unwrap().len(), 1);
    log.close().unwrap();
}
