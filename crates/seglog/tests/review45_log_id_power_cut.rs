//! Review 45: power cuts at every operation of the open that makes a log's identity (a new
//! log, and a log from before identities), in every crash mode: once an open has returned an
//! identity (a ship may have named it), every later open must return the same one; and an
//! open after any cut must succeed (no torn or empty `LOG_ID`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::{CrashMode, SimFs};
use seglog::io::FileSystem;
use seglog::{Log, Options};
use std::path::Path;

fn opts() -> Options {
    Options::default().segment_size_bytes(4096)
}

/// A log with events and, when `pre_identity`, no `LOG_ID` (as a build before identities
/// leaves it), everything durable.
fn setup(pre_identity: bool) -> SimFs {
    let fs = SimFs::new();
    if !pre_identity {
        return fs;
    }
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    for i in 0..20u32 {
        log.append_blocking("e", "t", format!("event {i}").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    drop(log);
    fs.remove(Path::new("/log/LOG_ID")).unwrap();
    fs.sync_dir(Path::new("/log")).unwrap();
    fs
}

fn run(pre_identity: bool) {
    let total = {
        let fs = setup(pre_identity);
        let base = fs.mutating_ops();
        let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
        log.append_blocking("e", "t", b"after").unwrap();
        log.close().unwrap();
        fs.mutating_ops() - base
    };
    for n in 1..=total {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n },
            CrashMode::Reordered { seed: n ^ 0x5A5A },
        ] {
            let fs = setup(pre_identity);
            fs.power_off_after(fs.mutating_ops() + n);
            let seen = Log::open_with_fs(fs.clone(), "/log", opts())
                .ok()
                .map(|log| {
                    let id = log.log_id();
                    let _ = log.append_blocking("e", "t", b"after");
                    let _ = log.close();
                    id
                });
            let crashed = fs.crash(mode);
            let what =
                format!("pre_identity={pre_identity}, cut after op {n} of {total}, {mode:?}");
            let log = Log::open_with_fs(crashed.clone(), "/log", opts())
                .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
            let now = log.log_id();
            assert!(now.is_some(), "{what}");
            if let Some(seen) = seen {
                assert_eq!(now, seen, "{what}: the log reopened under another identity");
            }
            if pre_identity {
                assert!(log.read("e").unwrap().len() >= 20, "{what}");
            }
            drop(log);
            let again = crashed.crash(CrashMode::Torn { seed: n + 7 });
            let log = Log::open_with_fs(again, "/log", opts())
                .unwrap_or_else(|e| panic!("{what}: second open failed: {e}"));
            assert_eq!(
                log.log_id(),
                now,
                "{what}: a second cut changed the identity"
            );
        }
    }
}

#[test]
fn a_new_logs_identity_survives_a_power_cut_after_every_operation() {
    run(false);
}

#[test]
fn an_old_logs_first_identity_survives_a_power_cut_after_every_operation() {
    run(true);
}
