//! Index checkpoints: used when valid, ignored when missing, stale or damaged — and the
//! answers are the same either way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{dump, Dump};
use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, Log, Options};
use std::path::PathBuf;

const TENANTS: [&str; 3] = ["ta", "tb", "tc"];

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

fn build() -> (SimFs, Dump, usize) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts(CheckpointMode::Inline)).unwrap();
    for i in 0..400u64 {
        let exec = format!("exec-{}", i % 23);
        let tenant = TENANTS[(i % 23 % 3) as usize];
        let p = format!("payload {i} {}", "x".repeat((i % 50) as usize));
        if i % 7 == 0 {
            log.append_batch_blocking(
                &exec,
                tenant,
                &[p.clone(), format!("{p}+1"), format!("{p}+2")],
            )
            .unwrap();
        } else {
            log.append_blocking(&exec, tenant, p.as_bytes()).unwrap();
        }
    }
    let sealed = log.segments().iter().filter(|s| s.sealed).count();
    assert!(sealed >= 10, "only {sealed} sealed segments");
    assert_eq!(log.stats().checkpoints_written, sealed as u64);
    let d = dump(&log, &TENANTS);
    log.close().unwrap();
    (fs, d, sealed)
}

fn checkpoint_paths(fs: &SimFs) -> Vec<PathBuf> {
    fs.file_names(std::path::Path::new("/log"))
        .into_iter()
        .filter(|n| n.ends_with(".idx"))
        .map(|n| PathBuf::from("/log").join(n))
        .collect()
}

fn reopen(fs: &SimFs, mode: CheckpointMode) -> (Dump, seglog::RecoveryStats) {
    let log = Log::open_with_fs(fs.clone(), "/log", opts(mode)).unwrap();
    let d = dump(&log, &TENANTS);
    let r = log.stats().recovery;
    log.close().unwrap();
    (d, r)
}

#[test]
fn open_uses_checkpoints_and_scans_only_the_last_segment() {
    let (fs, expected, sealed) = build();
    // One per sealed segment, and the last segment's prefix checkpoint of the clean close.
    assert_eq!(checkpoint_paths(&fs).len(), sealed + 1);
    let (d, r) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    assert_eq!(r.checkpoints_loaded, sealed);
    assert_eq!(r.segments_scanned, 1);
    assert!(r.last_segment_prefix_bytes > 0);
    assert_eq!(
        r.records_scanned, 0,
        "only the commit marker's tail is left to read"
    );
    let (d, r) = reopen(&fs, CheckpointMode::Off);
    assert_eq!(d, expected, "the full-scan path answers the same");
    assert_eq!(r.checkpoints_loaded, 0);
    assert_eq!(r.segments_scanned, sealed + 1);
}

/// Writes `bytes` as the file at `path`, creating it again if an open removed it (an open
/// removes checkpoints that do not describe their segment).
fn put(fs: &SimFs, path: &std::path::Path, bytes: Vec<u8>) -> std::io::Result<()> {
    use seglog::io::{FileSystem, SegmentFile};
    if fs.replace_file(path, bytes.clone()).is_ok() {
        return Ok(());
    }
    let file = fs.create_new(path)?;
    file.write_all_at(&bytes, 0)?;
    file.sync_data()?;
    fs.sync_dir(path.parent().unwrap_or(std::path::Path::new("/")))?;
    Ok(())
}

#[test]
fn deleted_truncated_or_flipped_checkpoints_give_identical_answers() {
    let (fs, expected, sealed) = build();
    let paths = checkpoint_paths(&fs);
    let victim = &paths[paths.len() / 2];
    let original = fs.read_file(victim).unwrap();
    // Truncated at many lengths.
    for cut in (0..original.len()).step_by(7) {
        put(&fs, victim, original[..cut].to_vec()).unwrap();
        let (d, r) = reopen(&fs, CheckpointMode::Inline);
        assert_eq!(d, expected, "cut at {cut}");
        assert_eq!(r.checkpoints_loaded, sealed - 1, "cut at {cut}");
    }
    // A bit flipped in every byte.
    for byte in 0..original.len() {
        let mut b = original.clone();
        b[byte] ^= 0x04;
        put(&fs, victim, b).unwrap();
        let (d, r) = reopen(&fs, CheckpointMode::Inline);
        assert_eq!(d, expected, "flip in byte {byte}");
        assert_eq!(r.checkpoints_loaded, sealed - 1, "flip in byte {byte}");
    }
    eprintln!(
        "damaged-checkpoint reopens: {}",
        original.len().div_ceil(7) + original.len()
    );
    // Another segment's (valid) checkpoint under this name: stale, ignored, and removed.
    let other = fs.read_file(&paths[0]).unwrap();
    put(&fs, victim, other).unwrap();
    let (d, r) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    assert_eq!(r.checkpoints_loaded, sealed - 1);
    assert!(
        fs.read_file(victim).is_none(),
        "a checkpoint naming another segment stays behind"
    );
    // Deleted: the open rewrites it in the background, so a later open uses it again.
    let log = Log::open_with_fs(fs.clone(), "/log", opts(CheckpointMode::Background)).unwrap();
    assert_eq!(dump(&log, &TENANTS), expected);
    assert_eq!(log.stats().recovery.checkpoints_loaded, sealed - 1);
    log.close().unwrap();
    let (d, r) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    assert_eq!(
        r.checkpoints_loaded, sealed,
        "the missing checkpoint was rewritten"
    );
}

#[test]
fn orphan_checkpoints_and_temp_files_are_removed() {
    let (fs, expected, _) = build();
    use seglog::io::{FileSystem, SegmentFile};
    let f = fs
        .create_new(std::path::Path::new("/log/00000000000099999999.idx"))
        .unwrap();
    f.write_all_at(b"junk", 0).unwrap();
    let t = fs
        .create_new(std::path::Path::new("/log/00000000000000000001.idx.tmp"))
        .unwrap();
    t.write_all_at(b"junk", 0).unwrap();
    let (d, _) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    let names = fs.file_names(std::path::Path::new("/log"));
    assert!(
        !names
            .iter()
            .any(|n| n.contains("99999999") || n.ends_with(".tmp")),
        "{names:?}"
    );
}

/// A file of zeros under a segment name between two sealed segments (another log's prepared
/// file that a roll racing a move of its directory renamed here: design.md) holds no record.
/// The open removes it, and the index answers as before: the segment before the file is
/// read instead of taken from its checkpoint (the checkpoint cannot vouch for where the next
/// segment starts), the others still come from theirs.
#[test]
fn a_zeroed_file_between_sealed_segments_is_removed_and_the_answers_stay() {
    use seglog::io::{FileSystem, SegmentFile};
    let (fs, expected, sealed) = build();
    let mut segments: Vec<u64> = fs
        .file_names(std::path::Path::new("/log"))
        .iter()
        .filter_map(|n| seglog_segment::format::parse_segment_file_name(n)?.ok())
        .collect();
    segments.sort();
    let stray =
        PathBuf::from("/log").join(seglog_segment::format::segment_file_name(segments[4] - 1));
    let file = fs.create_new(&stray).unwrap();
    file.write_all_at(&vec![0u8; 64 << 10], 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(std::path::Path::new("/log")).unwrap();

    let (d, r) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    assert_eq!(r.removed_empty_files, vec![stray.clone()]);
    assert!(!fs
        .file_names(std::path::Path::new("/log"))
        .iter()
        .any(|n| stray.ends_with(n)));
    assert_eq!(r.checkpoints_loaded, sealed - 1);
    let (d, r) = reopen(&fs, CheckpointMode::Inline);
    assert_eq!(d, expected);
    assert!(r.removed_empty_files.is_empty());
}
