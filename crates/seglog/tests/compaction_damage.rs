//! Compaction over damaged input: a sealed segment that an index checkpoint covers is never
//! read at open, so damage in it first shows when compaction reads it. Compaction must then
//! refuse before its commit point, naming segment and offset, and leave every byte of the
//! log as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use seglog_segment::inspect::analyze_segment;
use std::collections::BTreeMap;
use std::path::Path;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

/// Every file of the directory: name → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Writes two tenants' events over several sealed segments; returns the sealed segments.
fn fill(dir: &Path) -> Vec<seglog_segment::SegmentInfo> {
    let log = Log::open_blocking(dir, opts()).unwrap();
    for i in 0..120u64 {
        let tenant = if i % 3 == 0 { "gone" } else { "keep" };
        let body = format!("{tenant}-{i}-{}", "x".repeat((i * 13 % 100) as usize));
        log.append_blocking(&format!("{tenant}-{}", i % 5), tenant, body.as_bytes())
            .unwrap();
    }
    // The active segment holds only the kept tenant, so compaction has no reason to roll.
    let segments = log.segments().len();
    let mut i = 0;
    while log.segments().len() == segments || i < 200 {
        log.append_blocking("keep-tail", "keep", format!("tail-{i}").as_bytes())
            .unwrap();
        i += 1;
        if log.segments().len() > segments && i >= 3 {
            break;
        }
    }
    let sealed = log.segments().into_iter().filter(|s| s.sealed).collect();
    log.close().unwrap();
    sealed
}

/// Damages one record of `segment` that is not its first: `how` edits the file's bytes at
/// the record's offset. Returns that offset.
fn damage(segment: &Path, how: impl Fn(&mut [u8])) -> u64 {
    let mut bytes = std::fs::read(segment).unwrap();
    let analysis = analyze_segment(&bytes, 0);
    assert!(analysis.damage.is_none());
    let offset = analysis.record_offsets[analysis.record_offsets.len() / 2];
    how(&mut bytes[offset as usize..]);
    std::fs::write(segment, &bytes).unwrap();
    offset
}

fn refuses_and_changes_nothing(how: impl Fn(&mut [u8]), what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sealed = fill(dir.path());
    assert!(sealed.len() >= 3, "the workload must seal several segments");
    let victim = &sealed[1];
    let offset = damage(&victim.path, how);
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    assert_eq!(
        log.stats().recovery.segments_scanned,
        1,
        "{what}: the checkpoints must cover the sealed segments"
    );
    let before = snapshot(dir.path());
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "gone");
    let err = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .expect_err("compaction over a damaged record must fail");
    let message = err.to_string();
    assert!(
        message.contains(&format!("segment {}", victim.number))
            && message.contains(&offset.to_string()),
        "{what}: the error must name segment {} and offset {offset}: {message}",
        victim.number
    );
    assert!(!log.is_poisoned(), "{what}: nothing was committed");
    // Appends go on, and the other tenant is still readable where it is not damaged.
    log.append_blocking("keep-0", "keep", b"after").unwrap();
    log.close().unwrap();
    let mut after = snapshot(dir.path());
    // The append above changed the active segment only (and its checkpoint, written by the
    // close, format.md §5.1, and its tail bound, §3.6).
    let active = log.segments().last().unwrap().path.clone();
    let active_name = active.file_name().unwrap().to_str().unwrap().to_string();
    let active_checkpoint = active_name.replace(".seg", ".idx");
    let tail_bound = seglog_segment::format::TAIL_BOUND_FILE_NAME.to_string();
    let mut before = before;
    for name in [&active_name, &active_checkpoint, &tail_bound] {
        after.remove(name);
        before.remove(name);
    }
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{what}: files came or went"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{what}: {name} changed");
    }
    // The log still opens.
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    assert!(log.exists("gone-0").unwrap(), "{what}: nothing was erased");
    log.close().unwrap();
}

#[test]
fn compaction_refuses_a_zeroed_length_field_and_changes_nothing() {
    refuses_and_changes_nothing(|rec| rec[..4].fill(0), "zeroed record_len");
}

#[test]
fn compaction_refuses_a_bit_flip_and_changes_nothing() {
    refuses_and_changes_nothing(|rec| rec[60] ^= 0x10, "flipped bit");
}

#[test]
fn scrub_finds_damage_that_a_checkpoint_hid_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = fill(dir.path());
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let clean = log.scrub().unwrap();
    assert!(clean.is_clean());
    assert_eq!(clean.segments.len(), sealed.len());
    assert!(clean.segments.iter().all(|s| s.records > 0));
    log.close().unwrap();
    let offset = damage(&sealed[1].path, |rec| rec[60] ^= 0x01);
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let report = log.scrub().unwrap();
    assert!(!report.is_clean());
    let damaged: Vec<(u64, u64)> = report
        .segments
        .iter()
        .filter_map(|s| s.damage.as_ref().map(|(at, _)| (s.number, *at)))
        .collect();
    assert_eq!(damaged, vec![(sealed[1].number, offset)]);
    log.close().unwrap();
}
