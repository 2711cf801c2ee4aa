//! Backups of a log with offloaded segments (docs/scale-out.md, "Read-through"): with a
//! segment source set, the backup downloads the offloaded segments, checked against their
//! stubs, so the copy is a whole log that opens and reads without the bucket; without one,
//! the backup is refused; bytes that fail their checks fail the backup, never enter it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use bytes::Bytes;
use seglog::io::sim::SimFs;
use seglog::Log;
use std::path::Path;

/// The copy at `dest` opens on its own (no source), verifies clean, holds no stub, and
/// serves `expected`.
fn assert_whole_copy(fs: &SimFs, dest: &str, expected: &common::Dump) {
    let names = fs.file_names(Path::new(dest));
    assert!(
        names.iter().all(|n| !n.ends_with(".off")),
        "no stub in the copy: {names:?}"
    );
    let copy = Log::open_with_fs(fs.clone(), dest, opts()).unwrap();
    assert!(copy.offloaded_segments().is_empty());
    assert_eq!(&common::dump(&copy, &TENANTS), expected);
    assert!(copy.verify().unwrap().is_clean());
    copy.close().unwrap();
}

#[test]
fn a_backup_downloads_offloaded_segments_through_the_source() {
    let (fs, source, expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    let offloaded = offload_local(&writer, &source);
    assert!(offloaded >= 3, "{offloaded}");
    let report = writer.backup_blocking("/backup").unwrap();
    assert_eq!(report.segments_downloaded, offloaded, "{report:?}");
    assert_eq!(report.segments, offloaded + writer.segments().len());
    assert!(report.checkpoints >= offloaded, "{report:?}");
    writer.close().unwrap();
    assert_whole_copy(&fs, "/backup", &expected);

    // From a read-only log, given a source of its own, the same.
    let reader = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
    reader.set_segment_source(source.clone());
    let report = reader.backup_blocking("/backup2").unwrap();
    assert_eq!(report.segments_downloaded, offloaded);
    assert_whole_copy(&fs, "/backup2", &expected);
}

#[test]
fn without_a_source_or_with_bad_bytes_a_backup_fails() {
    let (fs, source, _) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    offload_local(&writer, &source);
    writer.close().unwrap();

    let writer = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    let err = writer.backup_blocking("/nosource").unwrap_err();
    assert!(matches!(err, seglog::Error::Offloaded { .. }), "{err}");
    writer.set_segment_source(source.clone());

    // Another segment's bytes, one flipped byte, a short object: the backup fails, and no
    // file of the copy holds the bad bytes under a segment's name.
    let victim = writer.offloaded_segments()[1].clone();
    let good = source.objects.lock().unwrap()[&victim.location].clone();
    let other = source.objects.lock().unwrap()[&writer.offloaded_segments()[2].location].clone();
    let mut flipped = good.to_vec();
    flipped[good.len() / 2] ^= 0x10;
    for (i, bad) in [other, Bytes::from(flipped), good.slice(..good.len() - 7)]
        .into_iter()
        .enumerate()
    {
        source
            .objects
            .lock()
            .unwrap()
            .insert(victim.location.clone(), bad);
        let dest = format!("/bad{i}");
        let err = writer.backup_blocking(&dest).unwrap_err();
        assert!(
            matches!(
                err,
                seglog::Error::Corruption(_) | seglog::Error::Offloaded { .. }
            ),
            "case {i}: {err}"
        );
        let name = seglog_segment::format::segment_file_name(victim.first_lsn);
        assert!(
            !fs.file_names(Path::new(&dest)).contains(&name),
            "case {i}: the bad segment was left in the copy"
        );
    }
    source
        .objects
        .lock()
        .unwrap()
        .insert(victim.location.clone(), good);
    writer.backup_blocking("/good").unwrap();
    writer.close().unwrap();
}
