//! Review 150: `Log::close_async` now runs a claimed close on a thread of its own
//! ("seglog-close", `ClaimedClose::start`), no longer on tokio's blocking pool. Its cancel
//! safety still promises that dropping the future "does not stop the close, which runs to its
//! end". On the pool it did even at shutdown: a runtime's drop waits for its blocking tasks,
//! so a program that starts `close_async`, drops the future (a `timeout` around it, a
//! `select!`, or plain fire-and-forget) and returns from `main` exited only after the close
//! had drained the log. A plain `std::thread` is not waited for: the process exits in the
//! middle of the close, and everything the close was to make durable — the buffered appends
//! of an import, the commit marker, the prefix checkpoint — is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::process::Command;

const CHILD_ENV: &str = "SEGLOG_REVIEW150_CHILD_DIR";
const EVENTS: usize = 20_000;

fn options() -> Options {
    let mut options = Options::default();
    // Buffered appends stay queued until a commit round: here, the close's drain.
    options.buffered_write_bytes = 1 << 40;
    options
}

/// The program: an import of buffered appends, then `close_async` at shutdown, whose
/// future is dropped; then `main` returns (its runtime is dropped first, as
/// `#[tokio::main]` does).
fn child(dir: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = Log::open(dir, options()).await.unwrap();
        let payload = vec![b'p'; 1000];
        for _ in 0..EVENTS {
            log.append_batch_buffered("import", "t", &[&payload[..]])
                .unwrap();
        }
        // Documented as cancel safe: the close runs to its end whether or not it is awaited.
        drop(log.close_async());
        // The rest of the program's shutdown: one more blocking task. (The pool takes its
        // tasks in order, so once this one ran, the task that joins the close has started;
        // tokio drops unrun a blocking task still queued when the runtime shuts down, which
        // the log cannot prevent.)
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    });
    drop(rt);
}

#[test]
fn a_dropped_close_async_still_runs_to_its_end_before_the_program_exits() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_dropped_close_async_still_runs_to_its_end_before_the_program_exits",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
    let log = Log::open_blocking(dir.path(), options()).unwrap();
    let read = log.read("import").unwrap().len();
    log.close().unwrap();
    assert_eq!(
        read, EVENTS,
        "the program started close_async, dropped its future and exited; only {read} of \
         {EVENTS} buffered events were stored: the close's thread died with the process, \
         where the runtime's drop used to wait for the close on its blocking pool"
    );
}
