//! Review 134: a log whose active segment has a torn tail, and whose directory holds a file
//! of zeros named far after the log (another log's prepared file: design.md, "The directory
//! moved under an open log"; review 132's state, on real files). The open removes the file
//! as a cut creation and, as its name is nowhere near where the active segment's records
//! could end (`successor_fits`), cuts the torn tail as a torn tail.
//!
//! The tools read the segment before the file as sealed: `seglog compact --dry-run` refused
//! the log as corrupt (exit status 2), `seglog verify` called it corruption, and `seglog
//! repair` called the torn record acknowledged data. Fixed: they ask the open's rule
//! (`seglog::tail_may_be_torn`).

use super::*;
use seglog::compaction::policy;
use seglog::{Log, Options};
use seglog_segment::format::{parse_segment_file_name, segment_file_name};

fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let lsn = parse_segment_file_name(p.file_name()?.to_str()?)?.ok()?;
            Some((lsn, p))
        })
        .collect();
    v.sort();
    v
}

/// Cuts the last record of the last segment short (and the commit marker after it).
fn tear_tail(last_segment: &Path) {
    let bytes = std::fs::read(last_segment).unwrap();
    let analysis = seglog_segment::inspect::analyze_segment(&bytes, 0);
    let last = *analysis.record_offsets.last().unwrap();
    let end = last as usize + analysis.record(&bytes, last).unwrap().len();
    std::fs::write(last_segment, &bytes[..end - 7]).unwrap();
}

/// A closed log of 120 events in 4 KiB segments, its last record torn.
fn torn_log(dir: &Path) {
    let log = Log::open_blocking(dir, Options::default().segment_size_bytes(4096)).unwrap();
    for i in 0..120u64 {
        log.append_blocking(
            &format!("exec-{}", i % 3),
            &format!("tenant-{}", i % 3 % 2),
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    log.close().unwrap();
    let segs = segment_files(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    tear_tail(&segs.last().unwrap().1);
}

/// The library's dry run of dropping tenant-1, on a copy (opening writes to the log).
fn library_dry_run(dir: &Path, copy: &Path) -> String {
    let _ = std::fs::remove_dir_all(copy);
    std::fs::create_dir(copy).unwrap();
    for (name, bytes) in snapshot(dir) {
        std::fs::write(copy.join(name), bytes).unwrap();
    }
    let log = Log::open_blocking(copy, Options::default().segment_size_bytes(4096))
        .unwrap_or_else(|e| panic!("the open refuses: {e}"));
    let view = log.compaction_view(true).unwrap();
    let plan = policy::drop_tenant(&view, "tenant-1");
    let r = log
        .compact_blocking(
            &plan,
            seglog::CompactOptions::default()
                .dry_run(true)
                .target_segment_bytes(16384),
            &mut |_, _| {},
        )
        .unwrap();
    log.close().unwrap();
    format!(
        "would reclaim: {} executions, {} events",
        r.executions_dropped, r.events_dropped
    )
}

#[test]
fn the_tools_cut_a_torn_tail_before_a_far_stray_file_as_the_open_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    torn_log(&dir);
    std::fs::write(dir.join(segment_file_name(1 << 40)), vec![0u8; 8192]).unwrap();
    let d = dir.to_str().unwrap();

    let verify = seglog(&["verify", d]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "a torn tail and a leftover, as the open finds them: {}",
        text(&verify)
    );

    let expected = library_dry_run(&dir, &tmp.path().join("copy"));
    let dry = seglog(&[
        "compact",
        d,
        "--segment-size",
        "16384",
        "--drop-tenant",
        "tenant-1",
        "--dry-run",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", err(&dry));
    assert!(
        text(&dry).contains(&expected),
        "{} / the library: {expected}",
        text(&dry)
    );

    let plan = seglog(&["repair", d, "--dry-run"]);
    let out = text(&plan);
    assert!(
        out.contains("a torn tail: never acknowledged") && !out.contains("acknowledged data"),
        "{out}"
    );
}
