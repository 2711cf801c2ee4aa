//! Findings of the `log_dir` fuzz target (tests/fuzz, docs/reliability.md "Fuzzing"), each
//! as a readable case: a log whose files were changed *with their checksums made to match*
//! (as a buggy writer or a deliberate edit would leave them). The engine must not hand out
//! wrong data: it reports corruption instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Error, Log, Options};
use std::path::{Path, PathBuf};

const DIR: &str = "/log";

fn options() -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(CheckpointMode::Inline)
}

/// A closed log of three segments or more (their paths), and its events.
fn closed_log() -> (SimFs, Vec<PathBuf>) {
    let (fs, segments, _) = closed_log_with_infos();
    (fs, segments)
}

fn closed_log_with_infos() -> (SimFs, Vec<PathBuf>, Vec<seglog::SegmentInfo>) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    for i in 0..120u64 {
        log.append_blocking(
            &format!("e{}", i % 3),
            "t",
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    let infos = log.segments();
    let segments: Vec<PathBuf> = infos.iter().map(|s| s.path.clone()).collect();
    assert!(segments.len() >= 3);
    log.close().unwrap();
    (fs, segments, infos)
}

/// An execution's events: sequence and payload.
type Events = Vec<(u64, Vec<u8>)>;

/// Every event of the log, by execution.
fn events(log: &Log<SimFs>) -> Vec<(String, Events)> {
    (0..3)
        .map(|e| {
            let execution = format!("e{e}");
            let events = log
                .read(&execution)
                .unwrap()
                .into_iter()
                .map(|ev| (ev.seq, ev.payload.to_vec()))
                .collect();
            (execution, events)
        })
        .collect()
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Which record of a segment to change.
#[derive(Clone, Copy)]
enum Which {
    First,
    Last,
}

/// Sets the LSN of the first or last record of `segment` and makes its checksum match again
/// (docs/format.md §3.1, §3.2).
fn forge_lsn(fs: &SimFs, segment: &Path, which: Which, lsn: u64) {
    forge_u64(fs, segment, which, 8, lsn);
}

/// Sets the u64 at `field` (a byte offset in the record, format.md §3.1) of the first or
/// last record of `segment` and makes the record's checksum match again.
fn forge_u64(fs: &SimFs, segment: &Path, which: Which, field: usize, value: u64) {
    forge_bytes(fs, segment, which, field, &value.to_le_bytes());
}

/// Writes `value` at `field` (a byte offset in the record) of the first or last record of
/// `segment` and makes the record's checksum match again.
fn forge_bytes(fs: &SimFs, segment: &Path, which: Which, field: usize, value: &[u8]) {
    let mut bytes = fs.read_file(segment).unwrap();
    let salt = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
    let mut at = 64;
    let mut last = at;
    while at + 4 <= bytes.len() && u32_at(&bytes, at) != 0 {
        last = at;
        at += u32_at(&bytes, at);
    }
    let at = match which {
        Which::First => 64,
        Which::Last => last,
    };
    let len = u32_at(&bytes, at);
    bytes[at + field..at + field + value.len()].copy_from_slice(value);
    let mut h = crc32fast::Hasher::new();
    h.update(&salt.to_le_bytes());
    h.update(&bytes[at..at + 4]);
    h.update(&bytes[at + 8..at + len]);
    bytes[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
    fs.replace_file(segment, bytes).unwrap();
}

fn first_lsn(segment: &Path) -> u64 {
    segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The global read must either fail with `Corruption` or return strictly increasing
/// LSNs; and paging through it must not skip a record the whole read returns.
fn assert_global_order_is_sound(log: &Log<SimFs>, what: &str) {
    match log.read_global(0, usize::MAX) {
        Err(Error::Corruption(_)) => {}
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok(records) => {
            let lsns: Vec<u64> = records.iter().map(|r| r.lsn).collect();
            assert!(
                lsns.windows(2).all(|w| w[0] < w[1]),
                "{what}: the global order goes back: {lsns:?}"
            );
        }
    }
}

/// Found by the fuzzer: a sealed segment's last record claims an LSN past the next
/// segment's first. The index (built from the segment's checkpoint) never looks at it, so
/// the log opens; the global read then returned it, and the next segment's records after it
/// with smaller LSNs, and a reader paging by position would have skipped everything between.
#[test]
fn a_record_whose_lsn_passes_the_next_segment_is_corruption_not_a_global_position() {
    let (fs, segments) = closed_log();
    let forged = first_lsn(&segments[2]) + 1000;
    forge_lsn(&fs, &segments[0], Which::Last, forged);

    let view = Log::open_read_only_with_fs(fs.clone(), DIR).unwrap();
    assert_global_order_is_sound(&view, "read-only");
    view.close().unwrap();

    if let Ok(log) = Log::open_with_fs(fs.clone(), DIR, options()) {
        assert_global_order_is_sound(&log, "writable");
        log.close().unwrap();
    }
}

/// Found by the fuzzer: a sealed segment's index checkpoint (its checksum matching) names a
/// record LSN at or past the next segment's first. The open trusted it, so the next segment
/// looked out of order and the log did not open at all ("first LSN … does not follow LSN …")
/// — in the fuzzer's case right after an open of the same files had acknowledged an append.
/// A checkpoint is a hint (format.md §5): one that cannot describe its segment is ignored
/// and the segment read.
#[test]
fn a_checkpoint_naming_an_lsn_past_the_next_segment_is_ignored_not_trusted() {
    use seglog_index::checkpoint;
    let (fs, _, infos) = closed_log_with_infos();
    let expected = {
        let log = Log::open_read_only_with_fs(fs.clone(), DIR).unwrap();
        let all = events(&log);
        log.close().unwrap();
        all
    };
    let first = &infos[0];
    let mut cp = checkpoint::load(&fs, Path::new(DIR), first).expect("segment 1 has a checkpoint");
    cp.records.last_mut().unwrap().lsn = infos[1].first_lsn + 5;
    fs.replace_file(
        &Path::new(DIR).join(checkpoint::checkpoint_file_name(first.first_lsn)),
        checkpoint::encode(first, &cp),
    )
    .unwrap();

    let view = Log::open_read_only_with_fs(fs.clone(), DIR).unwrap();
    assert_eq!(events(&view), expected, "read-only");
    view.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    assert_eq!(events(&log), expected, "writable");
    let seq = log.append_blocking("e0", "t", b"after").unwrap();
    log.close().unwrap();
    let log = Log::open_with_fs(fs, DIR, options()).unwrap();
    assert!(log.read("e0").unwrap().iter().any(|e| e.seq == seq));
    log.close().unwrap();
}

/// Found while reading the fuzzer's case above: the global read takes a clustered segment's
/// LSN order from its index checkpoint (a hint), and a read that fails from it was to build
/// the order from the records instead — but it loaded the same checkpoint again, failed
/// again, and every global read (and `latest_lsn`) of the log failed for good.
#[test]
fn a_clustered_segment_whose_checkpoint_misplaces_a_record_is_read_from_its_records() {
    use seglog::compaction::policy;
    use seglog::CompactOptions;
    use seglog_index::checkpoint;
    let (fs, _) = closed_log();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    let view = log.compaction_view(true).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let clustered = log
        .segments()
        .into_iter()
        .find(|s| s.clustered && s.sealed)
        .expect("a clustered sealed segment");
    let expected: Vec<u64> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    log.close().unwrap();

    let mut cp = checkpoint::load(&fs, Path::new(DIR), &clustered).expect("its checkpoint");
    cp.records.last_mut().unwrap().offset += 1;
    fs.replace_file(
        &Path::new(DIR).join(checkpoint::checkpoint_file_name(clustered.first_lsn)),
        checkpoint::encode(&clustered, &cp),
    )
    .unwrap();

    let view = Log::open_read_only_with_fs(fs.clone(), DIR).unwrap();
    let lsns: Vec<u64> = view
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    assert_eq!(lsns, expected);
    assert_eq!(view.latest_lsn().unwrap(), *expected.last().unwrap());
    view.close().unwrap();
}

/// Found by the fuzzer: the last segment's prefix checkpoint (a clean close's) spares the
/// open from reading the segment, so a record in it whose LSN was changed (its checksum made
/// to match) went unnoticed, and the global read returned it before the smaller LSNs that
/// follow it in the file.
#[test]
fn a_record_out_of_order_inside_a_segment_is_corruption_not_a_global_position() {
    let (fs, segments) = closed_log();
    let last = segments.last().unwrap();
    forge_lsn(&fs, last, Which::First, first_lsn(last) + 1_000_000);

    let view = Log::open_read_only_with_fs(fs.clone(), DIR).unwrap();
    assert_global_order_is_sound(&view, "read-only");
    view.close().unwrap();
    if let Ok(log) = Log::open_with_fs(fs.clone(), DIR, options()) {
        assert_global_order_is_sound(&log, "writable");
        log.close().unwrap();
    }
}

/// Found by review 52 (reading the fix above): a global read starts its walk at a sample
/// taken from the segment's checkpoint, the last sample at or below the position asked
/// for. A checkpoint (its checksums matching) that names smaller LSNs than its records
/// hold, where compaction left a gap to hide the shift in, made the walk start too late:
/// the records between were skipped, with no error. A walk now checks that the record at
/// a sample holds the sample's LSN, and scans the segment when it does not.
#[test]
fn a_checkpoint_with_shifted_lsns_does_not_make_a_global_read_skip_records() {
    use seglog::compaction::policy;
    use seglog::CompactOptions;
    use seglog_index::checkpoint;
    let fs = SimFs::new();
    let options = Options::default()
        .segment_size_bytes(1 << 20)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_with_fs(fs.clone(), DIR, options.clone()).unwrap();
    let payload = vec![7u8; 1000];
    for (execution, count) in [("a", 100), ("b", 100), ("a", 200)] {
        for _ in 0..count {
            log.append_blocking(execution, "t", &payload).unwrap();
        }
    }
    log.roll_blocking().unwrap();
    // LSNs 1..=100 and 201..=400 stay: a gap of 100.
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::drop_executions(&view, ["b"]),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let sealed = log.segments()[0].clone();
    assert!(sealed.sealed && sealed.first_lsn == 1);
    log.close().unwrap();

    let mut cp = checkpoint::load(&fs, Path::new(DIR), &sealed).expect("its checkpoint");
    for r in cp.records.iter_mut().filter(|r| r.lsn > 100) {
        r.lsn -= 90;
    }
    fs.replace_file(
        &Path::new(DIR).join(checkpoint::checkpoint_file_name(sealed.first_lsn)),
        checkpoint::encode(&sealed, &cp),
    )
    .unwrap();

    let view = Log::open_read_only_with_fs(fs, DIR).unwrap();
    let lsns: Vec<u64> = view
        .read_global(150, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    assert_eq!(lsns, (201..=400).collect::<Vec<u64>>());
    view.close().unwrap();
}

/// Found by the fuzzer once compactions ran in it: a sealed segment's record (its checksum
/// matching) claims another first sequence than the index, which took the segment from its
/// checkpoint, holds for it. Compaction copied the record as it is into its output, whose
/// next scan met a sequence out of line, so the log that had opened (and acknowledged an
/// append after the compaction) did not open again. A compaction now checks each record
/// it keeps against the index (execution, first sequence) and changes nothing when one
/// does not match.
#[test]
fn a_compaction_refuses_a_record_that_contradicts_the_index() {
    // The first record of the first segment (execution e0, tenant t, sequence 1): its
    // sequence; then, the fuzzer's next find, its tenant.
    compaction_refuses(|fs, segment| forge_u64(fs, segment, Which::First, 24, 1 << 40));
    compaction_refuses(|fs, segment| forge_bytes(fs, segment, Which::First, 48 + 2, b"u"));
}

fn compaction_refuses(forge: impl Fn(&SimFs, &Path)) {
    use seglog::compaction::policy;
    use seglog::CompactOptions;
    let (fs, segments) = closed_log();
    forge(&fs, &segments[0]);
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    let view = log.compaction_view(true).unwrap();
    let outcome = log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    );
    assert!(matches!(outcome, Err(Error::Corruption(_))), "{outcome:?}");
    log.append_blocking("e1", "t", b"after").unwrap();
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).expect("the log opens again");
    assert_eq!(
        log.read("e1").unwrap().last().unwrap().payload.as_ref(),
        b"after"
    );
    log.close().unwrap();
    let leftovers: Vec<String> = fs
        .file_names(Path::new(DIR))
        .into_iter()
        .filter(|n| n.contains("compacting") || n.starts_with("REPLACE"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
