//! Locality by compaction (issue 14): clustering sealed segments puts each execution's
//! records together (docs/format.md §3.5) and changes nothing a reader can see: events,
//! sequences, bytes, tenants, `list_executions` order, global order and positions, latest
//! LSN; before and after a reopen (from checkpoints and from the segments), on real files
//! and on the simulated ones; and the log stays appendable and compactable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::io::{FileSystem, StdFs};
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::collections::BTreeMap;
use std::path::Path;

const TENANTS: [&str; 3] = ["acme", "bolt", "crux"];

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(8192)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

/// Interleaved appends of 12 executions over 3 tenants (single events and batches), with
/// new executions starting throughout the log, so that segments hold several executions each
/// and some executions are created inside segments that others began.
fn fill<F: FileSystem + Clone>(log: &Log<F>, rounds: u64, salt: &str) {
    for round in 0..rounds {
        for e in 0..12u64 {
            if e > round + 3 {
                continue; // execution e starts in round e - 3
            }
            let tenant = TENANTS[(e % 3) as usize];
            let id = format!("{salt}exec-{e:02}");
            let body = format!(
                "{id} r{round} {}",
                "p".repeat(((round * 7 + e * 13) % 200) as usize)
            );
            if (round + e) % 4 == 0 {
                log.append_batch_blocking(&id, tenant, &[body.as_bytes(), b"second"])
                    .unwrap();
            } else {
                log.append_blocking(&id, tenant, body.as_bytes()).unwrap();
            }
        }
    }
}

/// One record in global order: LSN, execution, tenant, first sequence, payloads.
type GlobalRow = (u64, String, String, u64, Vec<Vec<u8>>);

/// Everything a reader sees (timestamps included: clustering must not change a byte).
#[derive(Debug, PartialEq)]
struct Seen {
    by_tenant: common::Dump,
    global: Vec<GlobalRow>,
    global_paged: Vec<u64>,
    latest_lsn: u64,
}

fn seen<F: FileSystem + Clone>(log: &Log<F>) -> Seen {
    let global: Vec<_> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| {
            let payloads = r.payloads.iter().map(|p| p.to_vec()).collect();
            (r.lsn, r.execution, r.tenant, r.first_seq, payloads)
        })
        .collect();
    // Pages of 7 after each position: the walk must resume inside clustered segments.
    let mut global_paged = Vec::new();
    let mut after = 0;
    loop {
        let page = log.read_global(after, 7).unwrap();
        let Some(last) = page.last() else { break };
        assert!(
            last.lsn > after,
            "a page went back to {} after {after}",
            last.lsn
        );
        after = last.lsn;
        global_paged.extend(page.iter().map(|r| r.lsn));
    }
    Seen {
        by_tenant: common::dump(log, &TENANTS),
        global,
        global_paged,
        latest_lsn: log.latest_lsn().unwrap(),
    }
}

/// Per clustered segment file: the executions in file order, one entry per run of records
/// of one execution (parsed from the bytes, format.md §3.1). In a clustered segment each
/// execution appears once: its records are contiguous, one sequential read.
fn groups_in_files<F: FileSystem + Clone>(
    log: &Log<F>,
    read_file: &dyn Fn(&Path) -> Vec<u8>,
) -> Vec<Vec<Vec<u8>>> {
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    log.segments()
        .iter()
        .filter(|s| s.clustered)
        .map(|s| {
            let bytes = read_file(&s.path);
            assert_eq!(u32_at(&bytes, 12), 3, "flags COMPACTED | CLUSTERED");
            let mut groups: Vec<Vec<u8>> = Vec::new();
            let mut lsns: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            let mut at = 64;
            while at + 48 <= bytes.len() && u32_at(&bytes, at) != 0 {
                let len = u32_at(&bytes, at) as usize;
                let lsn = u64_at(&bytes, at + 8);
                let id = bytes[at + 48..at + 48 + usize::from(bytes[at + 42])].to_vec();
                let prev = lsns.insert(id.clone(), lsn);
                assert!(
                    prev.is_none_or(|p| p < lsn),
                    "LSNs of an execution go back in segment {}",
                    s.number
                );
                if groups.last() != Some(&id) {
                    groups.push(id);
                }
                at += len;
            }
            assert_eq!(at as u64, s.data_end);
            groups
        })
        .collect()
}

fn scenario<F: FileSystem + Clone>(fs: F, dir: &Path, read_file: &dyn Fn(&Path) -> Vec<u8>) {
    let log = Log::open_with_fs(fs.clone(), dir, opts(CheckpointMode::Inline)).unwrap();
    fill(&log, 40, "");
    let before = seen(&log);
    let sealed = log.segments().iter().filter(|s| s.sealed).count();
    assert!(sealed >= 4, "{:?}", log.segments());

    let plan = policy::cluster_sealed_segments(&log.compaction_view(false).unwrap());
    assert!(plan.cluster_by_execution);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.rewrite.records_dropped, 0);
    assert_eq!(report.rewrite.input_segments as usize, sealed);
    assert_eq!(report.rewrite.output_segments as usize, sealed);
    assert_eq!(
        report.rewrite.input_bytes, report.rewrite.output_bytes,
        "same records, same bytes (sealed inputs hold no commit marker)"
    );
    let clustered: Vec<_> = log.segments().into_iter().filter(|s| s.clustered).collect();
    assert_eq!(clustered.len(), sealed);
    // Each execution's records sit together in every clustered segment, and the files were
    // really reordered (the log was interleaved).
    let groups = groups_in_files(&log, read_file);
    for g in &groups {
        let mut ids = g.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            g.len(),
            "an execution split in two groups: {g:?}"
        );
    }
    assert!(groups.iter().any(|g| g.len() >= 3), "{groups:?}");
    assert_eq!(seen(&log), before, "reads changed live");
    assert!(log.verify().unwrap().is_clean(), "{:?}", log.verify());
    // Clustering again finds nothing left to do.
    assert!(
        policy::cluster_sealed_segments(&log.compaction_view(false).unwrap())
            .rewrite_segments
            .is_empty()
    );
    log.close().unwrap();

    // A read-only open sees the same (it reads through handles and its own scan rules).
    let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
    assert_eq!(seen(&reader), before, "read-only open");
    drop(reader);

    // Reopen from the checkpoints, then from the segments alone.
    for mode in [CheckpointMode::Inline, CheckpointMode::Off] {
        let log = Log::open_with_fs(fs.clone(), dir, opts(mode)).unwrap();
        if mode == CheckpointMode::Inline {
            assert!(log.stats().recovery.checkpoints_loaded >= sealed);
        }
        assert_eq!(seen(&log), before, "after a reopen with {mode:?}");
        assert!(log.verify().unwrap().is_clean(), "{mode:?}");
        log.close().unwrap();
    }

    // Appends continue every execution; an erasure of a clustered segment keeps it clustered.
    let log = Log::open_with_fs(fs.clone(), dir, opts(CheckpointMode::Inline)).unwrap();
    let next = before.by_tenant["acme"][0].2.len() as u64 + 1;
    let newest = before.by_tenant["acme"][0].0.clone();
    assert_eq!(log.append_blocking(&newest, "acme", b"more").unwrap(), next);
    fill(&log, 6, "late-");
    let view = log.compaction_view(false).unwrap();
    let plan = policy::drop_executions(&view, ["exec-01"]).and(policy::merge_small_segments(
        &view,
        1 << 20,
        1 << 20,
    ));
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(log.read("exec-01").unwrap().is_empty());
    assert!(log.segments().iter().filter(|s| s.clustered).count() >= sealed);
    let expected_order: Vec<String> = before.by_tenant["bolt"]
        .iter()
        .map(|r| r.0.clone())
        .filter(|e| e != "exec-01")
        .collect();
    let listed: Vec<String> = log
        .list_executions("bolt", usize::MAX, 0)
        .unwrap()
        .into_iter()
        .filter(|e| !e.starts_with("late-"))
        .collect();
    assert_eq!(listed, expected_order);
    let after_erase = seen(&log);
    assert!(log.verify().unwrap().is_clean());
    log.close().unwrap();
    let log = Log::open_with_fs(fs, dir, opts(CheckpointMode::Off)).unwrap();
    assert_eq!(seen(&log), after_erase, "after the erasure and a reopen");
    log.close().unwrap();
}

#[test]
fn clustering_changes_nothing_readers_see_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    scenario(StdFs, dir.path(), &|p| std::fs::read(p).unwrap());
}

#[test]
fn clustering_changes_nothing_readers_see_on_the_simulated_disk() {
    let fs = SimFs::new();
    let files = fs.clone();
    scenario(fs, Path::new("/log"), &move |p| files.read_file(p).unwrap());
}

/// Swaps two records of one execution inside a clustered segment: both keep valid checksums
/// (the salt is the segment's, not the offset's), so only the clustered order rule can tell.
#[test]
fn an_execution_going_back_in_a_clustered_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Off)).unwrap();
    fill(&log, 40, "");
    let plan = policy::cluster_sealed_segments(&log.compaction_view(false).unwrap());
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let target = log.segments().into_iter().find(|s| s.clustered).unwrap();
    log.close().unwrap();
    let mut bytes = std::fs::read(&target.path).unwrap();
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    // The first two records (the first group's): same execution, LSNs in order.
    let a = 64;
    let b = a + u32_at(&bytes, a);
    let end = b + u32_at(&bytes, b);
    assert_eq!(
        bytes[a + 48..a + 56],
        bytes[b + 48..b + 56],
        "one execution"
    );
    let swapped: Vec<u8> = [&bytes[b..end], &bytes[a..b]].concat();
    bytes[a..end].copy_from_slice(&swapped);
    std::fs::write(&target.path, &bytes).unwrap();
    let report = seglog::verify_dir(dir.path()).unwrap();
    assert!(!report.is_clean(), "{report:?}");
    let refused = Log::open_blocking(dir.path(), opts(CheckpointMode::Off));
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("LSN")),
        "{:?}",
        refused.map(|_| ())
    );
}

/// Global-order reads, paged, run on another thread while a compaction erases one execution
/// and clusters every sealed segment (the active one rolls first): every pass sees each
/// surviving record once, in LSN order, and nothing else, and `latest_lsn` is the greatest
/// position once the newest records live in a clustered segment. A subscription from 0 then
/// replays the log after, in order.
#[test]
fn global_reads_during_a_clustering_compaction_see_the_log_before_or_after() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs, "/log", opts(CheckpointMode::Inline)).unwrap();
    fill(&log, 40, "");
    let lsns = |log: &Log<SimFs>| -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = log.read_global(after, 5).unwrap();
            let Some(last) = page.last() else { break };
            assert!(
                last.lsn > after,
                "a page went back to {} after {after}",
                last.lsn
            );
            after = last.lsn;
            out.extend(page.into_iter().map(|r| (r.lsn, r.execution)));
        }
        out
    };
    let before = lsns(&log);
    let expected_after: Vec<(u64, String)> = before
        .iter()
        .filter(|(_, e)| e != "exec-11")
        .cloned()
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut passes = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) || passes == 0 {
                // Pages may straddle the switch, so a pass may see the erased execution's
                // early records and not its later ones; but never a record twice, out of
                // order, or a surviving record missing.
                let seen = lsns(&log);
                assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "out of order");
                let all: std::collections::BTreeSet<_> = before.iter().collect();
                assert!(
                    seen.iter().all(|r| all.contains(r)),
                    "a record never written"
                );
                let got: std::collections::BTreeSet<_> = seen.iter().collect();
                assert!(
                    expected_after.iter().all(|r| got.contains(r)),
                    "a surviving record missing from a pass of {}",
                    seen.len()
                );
                passes += 1;
            }
            passes
        });
        let view = log.compaction_view(false).unwrap();
        let plan =
            policy::drop_executions(&view, ["exec-11"]).and(policy::cluster_sealed_segments(&view));
        let report = log
            .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(report.rolled_active_segment);
        stop.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().unwrap() > 0);
    });
    assert_eq!(lsns(&log), expected_after);
    let segments = log.segments();
    let last = segments.last().unwrap();
    assert_eq!(
        last.data_end, 64,
        "the active segment is empty after the roll"
    );
    assert!(segments[segments.len() - 2].clustered);
    assert_eq!(log.latest_lsn().unwrap(), expected_after.last().unwrap().0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let replay: Vec<(u64, String)> = runtime.block_on(async {
        use futures_util::StreamExt;
        log.subscribe_global(0)
            .take(expected_after.len())
            .map(|r| {
                let r = r.unwrap();
                (r.lsn, r.execution)
            })
            .collect()
            .await
    });
    assert_eq!(replay, expected_after);
}
