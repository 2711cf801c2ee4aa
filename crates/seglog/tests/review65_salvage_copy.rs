//! Review 65 (commit 9c6dadc): a salvage cuts by copy and rename, so a backup's hard link
//! "keeps every byte whenever it was made". But the salvage removes the later segments
//! (durably) *before* the copy, and the copy needs free space a truncate never needed: a
//! full disk (ENOSPC) or a power cut during the copy leaves the damaged, backup-linked,
//! sealed segment as the log's *last* segment. The next default-mode open treats its damage
//! as a torn tail and cuts it in place (`remove_torn_tail`: `set_len` or `write_zeros`), and
//! so cuts the backup's name too. Fixed: before it removes anything, the salvage gives the
//! damaged sealed segment a file of its own (a whole copy renamed over it), and a writer's
//! open removes a `SALVAGE.tmp` a salvage cut short left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog::{Log, Options, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    common::small_inline_opts(RecoveryMode::TolerateTornTail)
}

/// A log on SimFs, backed up (sealed segments linked) into /backup, then the last record of
/// the second segment damaged in place (the inode both names share). Returns the segments.
fn linked_log_damaged_at_the_end_of_a_sealed_segment(fs: &SimFs) -> Vec<PathBuf> {
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    for i in 0..120u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    let segs: Vec<PathBuf> = log.segments().into_iter().map(|s| s.path).collect();
    let report = log.backup_blocking(Path::new("/backup")).unwrap();
    assert!(report.segments_linked >= 2, "{report:?}");
    log.close().unwrap();
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    let a = analyze_segment(&bytes, 0);
    let last = *a.record_offsets.last().unwrap() as usize;
    let at = last + (a.data_end as usize - last) / 2;
    bytes[at] ^= 0x04;
    fs.replace_file(&segs[1], bytes).unwrap();
    segs
}

fn backup_name(seg: &Path) -> PathBuf {
    Path::new("/backup").join(seg.file_name().unwrap())
}

/// ENOSPC during the salvage's copy (a full disk: the later segments it removed free
/// nothing, the backup's links keep them), then the log's usual open.
#[test]
fn a_full_disk_during_the_salvage_copy_then_a_default_open_leaves_the_backups_segment_whole() {
    let fs = SimFs::new();
    let segs = linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
    let linked = backup_name(&segs[1]);
    let before = fs.read_file(&linked).unwrap();
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: fs.op_count(Op::Write) + 1,
        kind: FaultKind::Enospc,
        persistent: true,
    });
    let err = Log::open_with_fs(
        fs.clone(),
        "/log",
        common::small_inline_opts(RecoveryMode::Salvage),
    )
    .map(|_| ())
    .expect_err("the copy had no space");
    eprintln!("salvage failed as expected: {err}");
    eprintln!(
        "log dir after the failed salvage: {:?}",
        fs.file_names(Path::new("/log"))
    );
    fs.clear_faults();
    // The default mode: whatever it says, it must not change the backup's bytes.
    let opened = Log::open_with_fs(fs.clone(), "/log", opts());
    eprintln!(
        "default open: {:?}",
        opened.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    if let Ok(log) = opened {
        log.close().unwrap();
    }
    let leftover = Path::new("/log").join(seglog_segment::format::SALVAGE_TEMP_FILE_NAME);
    assert_eq!(
        fs.read_file(&leftover),
        None,
        "the writer's open left SALVAGE.tmp"
    );
    let after = fs.read_file(&linked).unwrap();
    assert_eq!(
        after.len(),
        before.len(),
        "the backup's linked segment was cut in place"
    );
    assert!(
        after == before,
        "the backup's linked segment changed in place"
    );
}

/// A power cut at every step of the salvage, then a default-mode open (no second salvage):
/// the backup's linked segment must keep every byte.
#[test]
fn a_power_cut_during_the_salvage_then_a_default_open_leaves_the_backup_whole() {
    let ops = {
        let fs = SimFs::new();
        linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
        let before = fs.mutating_ops();
        drop(
            Log::open_with_fs(
                fs.clone(),
                "/log",
                common::small_inline_opts(RecoveryMode::Salvage),
            )
            .unwrap(),
        );
        fs.mutating_ops() - before
    };
    let mut failures = Vec::new();
    for n in 1..=ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Reordered { seed: n },
        ] {
            let fs = SimFs::new();
            let segs = linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
            let linked = backup_name(&segs[1]);
            let before = fs.read_file(&linked).unwrap();
            fs.power_off_after(fs.mutating_ops() + n);
            let _ = Log::open_with_fs(
                fs.clone(),
                "/log",
                common::small_inline_opts(RecoveryMode::Salvage),
            );
            let after = fs.crash(mode);
            if let Ok(log) = Log::open_with_fs(after.clone(), "/log", opts()) {
                log.close().unwrap();
            }
            if after.read_file(&linked).unwrap() != before {
                failures.push(format!("cut after salvage op {n}, {mode:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the backup's segment changed: {failures:#?}"
    );
}

/// Faults (EIO, ENOSPC) at each step of the new cut, then a salvage again and a default open:
/// the log opens, keeps what a clean salvage keeps, and the backup keeps every byte; torn
/// power cuts too.
#[test]
fn faults_and_torn_cuts_at_each_step_of_the_copy_are_healed_by_the_next_salvage() {
    let reference = {
        let fs = SimFs::new();
        linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
        let log = Log::open_with_fs(
            fs.clone(),
            "/log",
            common::small_inline_opts(RecoveryMode::Salvage),
        )
        .unwrap();
        let n: u64 = (0..4)
            .map(|e| log.count(&format!("exec-{e}")).unwrap())
            .sum();
        log.close().unwrap();
        n
    };
    let mut failures = Vec::new();
    let check =
        |fs: SimFs, linked: &Path, before: &[u8], what: String, failures: &mut Vec<String>| {
            match Log::open_with_fs(
                fs.clone(),
                "/log",
                common::small_inline_opts(RecoveryMode::Salvage),
            ) {
                Ok(log) => log.close().unwrap(),
                Err(e) => return failures.push(format!("{what}: salvage again: {e}")),
            }
            match Log::open_with_fs(fs.clone(), "/log", opts()) {
                Ok(log) => {
                    let n: u64 = (0..4)
                        .map(|e| log.count(&format!("exec-{e}")).unwrap())
                        .sum();
                    if n != reference {
                        failures.push(format!(
                            "{what}: {n} events, a clean salvage keeps {reference}"
                        ));
                    }
                    log.close().unwrap();
                }
                Err(e) => failures.push(format!("{what}: default open: {e}")),
            }
            if fs.read_file(linked).as_deref() != Some(before) {
                failures.push(format!("{what}: backup changed"));
            }
        };
    for op in [
        Op::Remove,
        Op::Create,
        Op::Write,
        Op::SyncData,
        Op::Rename,
        Op::SyncDir,
    ] {
        for kind in [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite] {
            for k in 1..=3u64 {
                let fs = SimFs::new();
                let segs = linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
                let linked = backup_name(&segs[1]);
                let before = fs.read_file(&linked).unwrap();
                fs.inject(Fault {
                    op: Some(op),
                    nth: fs.op_count(op) + k,
                    kind,
                    persistent: false,
                });
                let _ = Log::open_with_fs(
                    fs.clone(),
                    "/log",
                    common::small_inline_opts(RecoveryMode::Salvage),
                );
                fs.clear_faults();
                check(
                    fs,
                    &linked,
                    &before,
                    format!("{op:?} #{k} {kind:?}"),
                    &mut failures,
                );
            }
        }
    }
    for n in 1..=14u64 {
        for seed in 0..4u64 {
            let fs = SimFs::new();
            let segs = linked_log_damaged_at_the_end_of_a_sealed_segment(&fs);
            let linked = backup_name(&segs[1]);
            let before = fs.read_file(&linked).unwrap();
            fs.power_off_after(fs.mutating_ops() + n);
            let _ = Log::open_with_fs(
                fs.clone(),
                "/log",
                common::small_inline_opts(RecoveryMode::Salvage),
            );
            let after = fs.crash(CrashMode::Torn { seed });
            check(
                after,
                &linked,
                &before,
                format!("torn after op {n} seed {seed}"),
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A read-only process opened before the damage keeps reading the old file during and after
/// the salvage, and after a refresh sees the salvaged log and the writer's new events.
#[test]
fn a_read_only_reader_holding_the_old_segment_across_a_salvage() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    for i in 0..120u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    let segs: Vec<PathBuf> = log.segments().into_iter().map(|s| s.path).collect();
    log.close().unwrap();
    let reader = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
    let count =
        |l: &Log<SimFs>| -> u64 { (0..4).map(|e| l.count(&format!("exec-{e}")).unwrap()).sum() };
    assert_eq!(count(&reader), 120);
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    let a = analyze_segment(&bytes, 0);
    bytes[a.record_offsets[2] as usize + 50] ^= 0x04;
    fs.replace_file(&segs[1], bytes).unwrap();
    let w = Log::open_with_fs(
        fs.clone(),
        "/log",
        common::small_inline_opts(RecoveryMode::Salvage),
    )
    .unwrap();
    let kept = count(&w);
    assert!(kept < 120);
    // The old view reads the damaged inode (the damage is in place): a checksum error, not
    // a SIGBUS; records before the damage still read.
    let _ = reader.read("exec-0");
    w.append_blocking("exec-9", "tenant", b"after").unwrap();
    w.append_blocking("exec-9", "tenant", b"after2").unwrap();
    reader.refresh().unwrap();
    let seen = count(&reader) + reader.count("exec-9").unwrap();
    assert!(
        seen > kept,
        "reader sees {seen}, writer kept {kept} and appended 2"
    );
    w.close().unwrap();
    reader.refresh().unwrap();
    assert_eq!(count(&reader) + reader.count("exec-9").unwrap(), kept + 2);
}
