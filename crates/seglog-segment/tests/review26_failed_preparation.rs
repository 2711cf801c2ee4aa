//! Review 26 (of the prepared next segment, c85e38c): a roll could install the prepared file
//! right after a step of preparing it FAILED (its fdatasync returned EIO): the step returned
//! the error with the file still in the slot and released the slot lock, and took it out
//! only later. A roll landing in that window renamed the failed file into place. Its failed
//! pages are "clean" (fsyncgate; SimFs models the ext4 behaviour documented in io/sim), later
//! syncs through the same handle return Ok, and every record written into those pages was
//! acknowledged but never reached the disk: a power cut lost them. Fixed: a failed step takes
//! the file out of the slot, and removes it, before it unlocks the slot.
//!
//! The window is opened deterministically with a tracing subscriber: the roller is held at
//! its "sealed segment" event (before create_segment's try_lock) until the preparing thread
//! is inside its "cannot prepare" warn (after prepare_towards released the slot), and the
//! warn is held until the roller has renamed the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost, opts, stored};

use seglog_segment::format::PREPARED_SEGMENT_FILE_NAME;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentLog;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ARMED: AtomicBool = AtomicBool::new(false);
static ROLLER_SEALED: AtomicBool = AtomicBool::new(false);
static IN_WARN: AtomicBool = AtomicBool::new(false);
static FS: OnceLock<SimFs> = OnceLock::new();

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        if Instant::now() > deadline {
            eprintln!("hook: timed out waiting for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

struct Msg(String);
impl tracing::field::Visit for Msg {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

struct Hook;
impl tracing::Subscriber for Hook {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if !ARMED.load(Ordering::SeqCst) {
            return;
        }
        let mut m = Msg(String::new());
        event.record(&mut m);
        let on_roller = std::thread::current().name() == Some("roller");
        if on_roller && m.0.contains("sealed segment") {
            ROLLER_SEALED.store(true, Ordering::SeqCst);
            // Hold the roll before create_segment until the failed step released the slot.
            wait_for("the failed preparation", || IN_WARN.load(Ordering::SeqCst));
        } else if m.0.contains("cannot prepare the next segment") {
            IN_WARN.store(true, Ordering::SeqCst);
            // Hold the failed step (before discard_failed_prepared) until the roll renamed
            // the failed file into place.
            let fs = FS.get().unwrap();
            wait_for("the roll to take the failed file", || {
                !fs.list(Path::new("/log"))
                    .unwrap()
                    .iter()
                    .any(|n| n == PREPARED_SEGMENT_FILE_NAME)
            });
        }
    }
}

/// Opens a log on `fs`, appends three records, then runs the race: a roll held after its
/// seal while a preparation step's fdatasync fails (EIO). Returns the log, what it
/// acknowledged, and whether the preparation reported success.
fn race_a_roll_with_a_failed_preparation(
    fs: &SimFs,
) -> (SegmentLog<SimFs>, BTreeMap<u64, u64>, bool) {
    let _ = tracing::subscriber::set_global_default(Hook);
    let _ = FS.set(fs.clone());
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    for i in 1..=3 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    ARMED.store(true, Ordering::SeqCst);
    let roller = {
        let log = log.clone();
        std::thread::Builder::new()
            .name("roller".into())
            .spawn(move || log.roll())
            .unwrap()
    };
    assert!(wait_for("the roller to seal", || ROLLER_SEALED
        .load(Ordering::SeqCst)));
    // The next fdatasync is the one of the prepared file's zeros: it fails (EIO).
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    let prepared = log.prepare_next_segment_now();
    roller.join().unwrap().expect("the roll failed");
    ARMED.store(false, Ordering::SeqCst);
    (log, acked, prepared)
}

#[test]
fn a_roll_racing_a_failed_preparation_never_installs_the_failed_file() {
    let fs = SimFs::new();
    let (log, mut acked, prepared) = race_a_roll_with_a_failed_preparation(&fs);
    assert!(!prepared, "the failed preparation reported success");

    let stats = log.stats();
    eprintln!("after the roll: {stats:?}");
    assert_eq!(log.poisoned(), None);
    // Appends after the roll: every one returns Ok (acknowledged).
    for i in 4..=10 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert_eq!(log.poisoned(), None);
    assert_eq!(
        stats.prepared_rolls, 0,
        "the roll installed the prepared file whose fdatasync had just failed"
    );
    drop(log);
}

/// The same race, but checking the consequence: a power cut after the acknowledged appends.
#[test]
fn appends_after_a_roll_racing_a_failed_preparation_survive_a_power_cut() {
    // Nextest runs each test in its own process: the global hook is this test's.
    let fs = SimFs::new();
    let (log, mut acked, _) = race_a_roll_with_a_failed_preparation(&fs);
    for i in 4..=10 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert_eq!(log.poisoned(), None, "an append was not acknowledged");
    drop(log);

    let crashed = fs.crash(CrashMode::LoseUnsynced);
    let (log, report) = SegmentLog::open(crashed, "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("reopen after the power cut failed: {e}"));
    eprintln!("recovery: {report:?}");
    let lost = lost(&log, &acked);
    assert!(
        lost.is_empty(),
        "acknowledged LSNs lost after a power cut: {lost:?} (stored: {:?})",
        stored(&log).keys().collect::<Vec<_>>()
    );
}
