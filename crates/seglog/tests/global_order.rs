//! Reads in global order (`Log::read_global`, `latest_lsn`, `subscribe_global`): every
//! execution's records in log order from any position, with any limit, the same after a
//! reopen, after a crash, and after a compaction (survivors keep their positions); a
//! subscription catches up, then follows, with no gap and no duplicate.
//! Each scenario runs on real files and on the simulated file system.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::compaction::policy;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::io::{FileSystem, StdFs};
use seglog::{CheckpointMode, CompactOptions, Log, LogRecord, Options};
use std::path::{Path, PathBuf};

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

/// What a reader can tell of a record but its position: execution, tenant, first
/// sequence, payloads.
type Key = (String, String, u64, Vec<Vec<u8>>);
/// A record's position and key.
type Positioned = (u64, Key);

/// What a reader can tell of a record (positions compared separately).
fn key(r: &LogRecord) -> Key {
    (
        r.execution.clone(),
        r.tenant.clone(),
        r.first_seq,
        r.payloads.iter().map(|p| p.to_vec()).collect(),
    )
}

/// Appends 300 records over 5 executions of 2 tenants (some batches, payloads of varied
/// length, so records cross many 4 KiB segments); returns each record's position and key,
/// as the appends reported them.
async fn fill<F: FileSystem + Clone>(log: &Log<F>, from: u32) -> Vec<Positioned> {
    let mut out = Vec::new();
    for i in from..from + 300 {
        let exec = format!("exec-{}", i % 5);
        let tenant = if i % 5 < 3 { "acme" } else { "bolt" };
        let payloads: Vec<Vec<u8>> = (0..1 + i % 3)
            .map(|k| format!("{exec} #{i}.{k} {}", "x".repeat((i * 7 % 90) as usize)).into_bytes())
            .collect();
        let receipt = log
            .append_encoded_at(&exec, tenant, None, 0, &payloads)
            .await
            .unwrap();
        out.push((
            receipt.lsn,
            (exec, tenant.to_string(), receipt.first_seq, payloads),
        ));
    }
    out
}

/// Every `read_global(after, limit)` agrees with `expected` (the log in order): at every
/// position stored, between and around them, and with limits at every boundary.
fn check_reads<F: FileSystem>(log: &Log<F>, expected: &[Positioned]) {
    let all = log.read_global(0, usize::MAX).unwrap();
    let got: Vec<_> = all.iter().map(|r| (r.lsn, key(r))).collect();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "the log in global order differs from the appends"
    );
    assert!(all.windows(2).all(|w| w[0].lsn < w[1].lsn));
    assert_eq!(
        log.latest_lsn().unwrap(),
        expected.last().map_or(0, |e| e.0)
    );
    let mut afters: Vec<u64> = vec![0, u64::MAX - 1, u64::MAX];
    // Every position stored; the gaps around them at every 4th (a debug build's read
    // costs a snapshot of the segment table).
    for (i, (lsn, _)) in expected.iter().enumerate() {
        afters.push(*lsn);
        if i % 4 == 0 {
            afters.extend([lsn - 1, lsn + 1]);
        }
    }
    for after in afters {
        let from = expected.partition_point(|(lsn, _)| *lsn <= after);
        let rest = expected.len() - from;
        for limit in [
            0,
            1,
            2,
            7,
            rest.saturating_sub(1),
            rest,
            rest + 1,
            usize::MAX,
        ] {
            let got: Vec<_> = log
                .read_global(after, limit)
                .unwrap()
                .iter()
                .map(|r| (r.lsn, key(r)))
                .collect();
            let want = &expected[from..from + limit.min(rest)];
            assert!(got == want, "read_global({after}, {limit}) differs");
        }
    }
}

async fn reads_in_global_order_survive_reopen<F: FileSystem + Clone>(fs: F, dir: PathBuf) {
    let log = Log::open_with_fs(fs.clone(), dir.clone(), opts(CheckpointMode::Inline)).unwrap();
    assert_eq!(log.latest_lsn().unwrap(), 0);
    assert!(log.read_global(0, 10).unwrap().is_empty());
    let mut expected = fill(&log, 0).await;
    assert!(log.segments().len() > 10, "the test needs many segments");
    check_reads(&log, &expected);
    // The index's reads carry the same positions.
    for (lsn, (exec, _, first_seq, _)) in &expected {
        let ev = log.read_range(exec, *first_seq, 1).unwrap();
        assert_eq!(ev[0].lsn, *lsn);
    }
    log.close().unwrap();
    // Reopened: sealed segments come from checkpoints (samples from them), same answers.
    let log = Log::open_with_fs(fs.clone(), dir.clone(), opts(CheckpointMode::Inline)).unwrap();
    assert!(log.stats().recovery.checkpoints_loaded > 0);
    check_reads(&log, &expected);
    // New appends go after every position seen before.
    let more = fill(&log, 300).await;
    assert!(more[0].0 > expected.last().unwrap().0);
    expected.extend(more);
    check_reads(&log, &expected);
    log.close().unwrap();
    // Without checkpoints: samples by scanning.
    let log = Log::open_with_fs(fs, dir, opts(CheckpointMode::Off)).unwrap();
    check_reads(&log, &expected);
    log.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_global_order_survive_reopen_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    reads_in_global_order_survive_reopen(StdFs, dir.path().join("log")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_global_order_survive_reopen_on_simulated_files() {
    reads_in_global_order_survive_reopen(SimFs::new(), PathBuf::from("/log")).await;
}

async fn compaction_keeps_the_positions_of_survivors<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let log = Log::open_with_fs(fs.clone(), dir, opts(CheckpointMode::Inline)).unwrap();
    let expected = fill(&log, 0).await;
    let view = log.compaction_view(false).unwrap();
    log.compact(
        policy::drop_tenant(&view, "bolt"),
        CompactOptions::default(),
    )
    .await
    .unwrap();
    let survivors: Vec<_> = expected
        .iter()
        .filter(|(_, k)| k.1 != "bolt")
        .cloned()
        .collect();
    assert!(survivors.len() < expected.len());
    check_reads(&log, &survivors);
    log.close().unwrap();
    let log = Log::open_with_fs(fs, dir, opts(CheckpointMode::Inline)).unwrap();
    check_reads(&log, &survivors);
    // Dropped positions are never handed out again.
    let next = fill(&log, 300).await;
    assert!(next[0].0 > expected.last().unwrap().0);
    log.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_positions_of_survivors_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    compaction_keeps_the_positions_of_survivors(StdFs, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_positions_of_survivors_on_simulated_files() {
    compaction_keeps_the_positions_of_survivors(SimFs::new(), Path::new("/log")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_keep_their_order_after_a_power_cut() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts(CheckpointMode::Background)).unwrap();
    let expected = fill(&log, 0).await;
    let seen = log.read_global(0, usize::MAX).unwrap();
    let crashed = fs.crash(CrashMode::Torn { seed: 7 });
    drop(log);
    let log = Log::open_with_fs(crashed, "/log", opts(CheckpointMode::Background)).unwrap();
    check_reads(&log, &expected);
    assert_eq!(log.read_global(0, usize::MAX).unwrap(), seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_subscription_catches_up_then_follows_without_gap_or_duplicate() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs, "/log", opts(CheckpointMode::Inline)).unwrap();
    let before = fill(&log, 0).await;
    let after = before[100].0;
    let mut stream = Box::pin(log.subscribe_global(after));
    // Appends from several tasks while the subscriber reads.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..50u32 {
                    log.append(&format!("live-{w}"), "acme", format!("{w}/{i}").as_bytes())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    while got.len() < 199 + 200 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .expect("the subscription stalled")
            .unwrap()
            .unwrap();
        got.push(r);
    }
    for w in writers {
        w.await.unwrap();
    }
    let stored = log.read_global(after, usize::MAX).unwrap();
    assert_eq!(
        got, stored,
        "the stream is the log after the position, in order"
    );
    // Per writer, its appends in the order it made them.
    for w in 0..4 {
        let mine: Vec<Vec<u8>> = got
            .iter()
            .filter(|r| r.execution == format!("live-{w}"))
            .map(|r| r.payloads[0].to_vec())
            .collect();
        let want: Vec<Vec<u8>> = (0..50).map(|i| format!("{w}/{i}").into_bytes()).collect();
        assert_eq!(mine, want);
    }
    log.close().unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends when the log closes");
    assert!(end.is_none());
}
