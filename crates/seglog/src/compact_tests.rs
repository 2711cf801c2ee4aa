//! Plans made at the start (automatic retention's): appends are not held up while the
//! plan's view is sorted, and a plan whose executions had an append meanwhile is made
//! again under the write lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::PlanSource;
use crate::{CompactOptions, Log, Options};
use seglog_compact::{policy, IndexView, Plan};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

fn open(dir: &std::path::Path) -> Log {
    Log::open_blocking(dir, Options::default()).unwrap()
}

/// Runs `append` on another thread and waits (up to 20 s) for it to return: true if it did.
fn append_returns_meanwhile(append: impl FnOnce() + Send + 'static) -> bool {
    let (done, returned) = mpsc::channel();
    std::thread::spawn(move || {
        append();
        let _ = done.send(());
    });
    returned.recv_timeout(Duration::from_secs(20)).is_ok()
}

#[test]
fn appends_go_on_while_a_plan_made_at_the_start_is_being_made() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append_blocking("old", "t", b"1").unwrap();
    let appended_meanwhile = AtomicUsize::new(0);
    let make = |view: &IndexView| {
        let other = log.clone();
        if append_returns_meanwhile(move || {
            other
                .append_blocking("other", "t", b"during the plan")
                .unwrap();
        }) {
            appended_meanwhile.fetch_add(1, Ordering::SeqCst);
        }
        policy::drop_executions(view, ["old"])
    };
    let report = log
        .compact_if_idle(PlanSource::AtStart(&make), CompactOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        appended_meanwhile.load(Ordering::SeqCst),
        1,
        "an append waited for the whole plan (the index's write lock held while planning)"
    );
    assert_eq!(report.executions_dropped, 1);
    assert!(!log.exists("old").unwrap());
    assert_eq!(log.read("other").unwrap().len(), 1);
    log.close().unwrap();
}

#[test]
fn a_plan_whose_execution_had_an_append_meanwhile_is_made_again_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append_blocking("quiet", "t", b"1").unwrap();
    // A policy that drops executions of one event: "quiet" has one in the first view; the
    // append made while the plan is made gives it a second, so the plan made again keeps it.
    let calls = AtomicUsize::new(0);
    let make = |view: &IndexView| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let other = log.clone();
            assert!(append_returns_meanwhile(move || {
                other
                    .append_blocking("quiet", "t", b"2, acknowledged")
                    .unwrap();
            }));
        }
        let ones: Vec<&str> = view
            .executions
            .iter()
            .filter(|e| e.events == 1)
            .map(|e| e.id.as_str())
            .collect();
        let plan: Plan = policy::drop_executions(view, ones);
        plan
    };
    let report = log
        .compact_if_idle(PlanSource::AtStart(&make), CompactOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the plan was not made again"
    );
    assert_eq!(report.executions_dropped, 0, "{report:?}");
    assert_eq!(log.read("quiet").unwrap().len(), 2);
    log.close().unwrap();
}
