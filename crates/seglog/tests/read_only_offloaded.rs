//! Read-only opens and refreshes of a log with offloaded segments (docs/scale-out.md,
//! "Read-through"): the reader indexes the offloaded segments from their checkpoints as the
//! writer's open does, reads their records through a source it is given (or fails with
//! `Error::Offloaded`, never with fewer events), and a view is never taken across a
//! concurrent offload or rehydration so that a segment is in neither its files nor its
//! stubs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use seglog::io::sim::SimFs;
use seglog::Log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn read_only(fs: &SimFs, source: Option<&Arc<MapSource>>) -> seglog::Result<Log<SimFs>> {
    let log = Log::open_read_only_with_fs(fs.clone(), "/log")?;
    if let Some(source) = source {
        log.set_segment_source(source.clone());
    }
    Ok(log)
}

#[test]
fn a_read_only_open_indexes_offloaded_segments_and_reads_them_through_its_source() {
    let (fs, source, expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    let offloaded = offload_local(&writer, &source);
    assert!(offloaded >= 3, "the data spans many segments: {offloaded}");
    writer.close().unwrap();

    // Without a source: the log opens, knows every event, and a read that needs an
    // offloaded segment is a clear error, never a shorter answer.
    let reader = read_only(&fs, None).unwrap();
    assert_eq!(reader.offloaded_segments().len(), offloaded);
    assert_eq!(
        reader.latest_seq("e0").unwrap(),
        expected_latest(&expected, "e0")
    );
    let err = reader.read("e0").unwrap_err();
    assert!(matches!(err, seglog::Error::Offloaded { .. }), "{err}");
    // With one: every event, as the writer had them.
    reader.set_segment_source(source.clone());
    assert_eq!(common::dump(&reader, &TENANTS), expected);
    let files = fs.file_names(std::path::Path::new("/log"));
    reader.close().unwrap();
    assert_eq!(
        fs.file_names(std::path::Path::new("/log")),
        files,
        "a read-only log writes nothing"
    );
}

fn expected_latest(expected: &common::Dump, execution: &str) -> Option<u64> {
    expected
        .values()
        .flatten()
        .find(|(e, _, _)| e == execution)
        .and_then(|(_, _, events)| events.last().map(|(seq, _, _)| *seq))
}

#[test]
fn a_refresh_follows_the_writers_offloads_and_rehydrations() {
    let (fs, source, expected) = shipped_log();
    let writer = open(&fs, &source).unwrap();
    let reader = read_only(&fs, None).unwrap();
    assert!(reader.offloaded_segments().is_empty());
    assert_eq!(common::dump(&reader, &TENANTS), expected);

    let offloaded = offload_local(&writer, &source);
    // The old view keeps its files open: it still reads everything without a source.
    assert_eq!(common::dump(&reader, &TENANTS), expected);
    reader.refresh().unwrap();
    assert_eq!(reader.offloaded_segments().len(), offloaded);
    assert!(matches!(
        reader.read("e0").unwrap_err(),
        seglog::Error::Offloaded { .. }
    ));
    reader.set_segment_source(source.clone());
    assert_eq!(common::dump(&reader, &TENANTS), expected);

    // A segment brought back is local again for the reader after its refresh.
    let back = writer.offloaded_segments()[1].number;
    writer.rehydrate_segment(back).unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.offloaded_segments().len(), offloaded - 1);
    assert!(reader.segments().iter().any(|s| s.number == back));
    assert_eq!(common::dump(&reader, &TENANTS), expected);
    writer.close().unwrap();
}

/// A writer offloads and brings back segments, one every millisecond or so, while readers
/// open and refresh: every view holds every event (each segment is in the view's files or
/// its stubs), or the open or refresh reports the directory changing; it never serves
/// fewer events.
#[test]
fn views_taken_during_offloads_and_rehydrations_never_lose_a_segment() {
    let (fs, source, expected) = shipped_log();
    let writer = Arc::new(open(&fs, &source).unwrap());
    let active = writer.segments().last().unwrap().number;
    let sealed: Vec<u64> = writer
        .segments()
        .iter()
        .filter(|s| s.sealed && s.number < active)
        .map(|s| s.number)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (writer, source, stop) = (writer.clone(), source.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut moves = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for &n in &sealed {
                    writer.offload_segment(n, &target(&source, n)).unwrap();
                    moves += 1;
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
                for &n in &sealed {
                    writer.rehydrate_segment(n).unwrap();
                    moves += 1;
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
            }
            moves
        })
    };
    let reader = (0..100)
        .find_map(|_| read_only(&fs, Some(&source)).ok())
        .expect("a read-only open succeeds while segments move");
    let mut views = 0;
    for round in 0..150 {
        let served = if round % 2 == 0 {
            reader.refresh().map(|()| common::dump(&reader, &TENANTS))
        } else {
            read_only(&fs, Some(&source)).map(|r| common::dump(&r, &TENANTS))
        };
        match served {
            Ok(dump) => {
                assert_eq!(dump, expected, "view {round} lost or changed events");
                views += 1;
            }
            Err(e) => assert!(
                matches!(
                    e,
                    seglog::Error::Segment(seglog_segment::Error::DirectoryChanging { .. })
                ),
                "view {round}: {e}"
            ),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let moves = churn.join().unwrap();
    assert!(moves > 20, "the writer kept moving segments: {moves}");
    assert!(views > 100, "most views were taken: {views}");
}
