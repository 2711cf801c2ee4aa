//! A log of many small segments and an in-memory segment source standing in for the
//! bucket: the set-up of the offloaded-segment tests (`offloaded.rs`, `review18.rs`).

use bytes::Bytes;
use seglog::io::sim::SimFs;
use seglog::{
    CheckpointMode, Log, OffloadTarget, OffloadedSegment, Options, SegmentSource, SourceError,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const TENANTS: [&str; 2] = ["t0", "t1"];

pub fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

/// A bucket in memory: location → bytes; counts the calls.
#[derive(Debug, Default)]
pub struct MapSource {
    pub objects: Mutex<HashMap<String, Bytes>>,
    pub calls: AtomicU64,
}

impl SegmentSource for MapSource {
    fn read_ranges(
        &self,
        segment: &OffloadedSegment,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, SourceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let objects = self.objects.lock().unwrap();
        let bytes = objects
            .get(&segment.location)
            .ok_or_else(|| format!("no object {}", segment.location))?;
        ranges
            .iter()
            .map(|r| {
                bytes
                    .get(r.start as usize..r.end as usize)
                    .map(|_| bytes.slice(r.start as usize..r.end as usize))
                    .ok_or_else(|| "range past the object".into())
            })
            .collect()
    }
}

pub fn append_some(log: &Log<SimFs>, from: u64, count: u64) {
    for i in from..from + count {
        let exec = format!("e{}", i % 5);
        let tenant = TENANTS[(i % 5 % 2) as usize];
        let payloads: Vec<Vec<u8>> = if i % 7 == 3 {
            (0..3)
                .map(|k| format!("{i}/{k}:{}", "b".repeat(30)).into_bytes())
                .collect()
        } else {
            vec![format!("{i}:{}", "a".repeat((i * 13 % 200) as usize)).into_bytes()]
        };
        log.append_batch_blocking(&exec, tenant, &payloads).unwrap();
    }
}

/// A log of many segments, closed; its sealed segments' bytes put in the source.
pub fn shipped_log() -> (SimFs, Arc<MapSource>, super::Dump) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    append_some(&log, 0, 120);
    let dump = super::dump(&log, &TENANTS);
    let source = Arc::new(MapSource::default());
    for s in log.segments().iter().filter(|s| s.sealed) {
        let bytes = fs.read_file(&s.path).unwrap();
        source
            .objects
            .lock()
            .unwrap()
            .insert(location(s.number), Bytes::from(bytes));
    }
    log.close().unwrap();
    (fs, source, dump)
}

pub fn location(number: u64) -> String {
    format!("bucket/segments/{number:020}.seg")
}

pub fn target(source: &MapSource, number: u64) -> OffloadTarget {
    let bytes = source.objects.lock().unwrap()[&location(number)].clone();
    OffloadTarget {
        location: location(number),
        len: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
    }
}

pub fn open(fs: &SimFs, source: &Arc<MapSource>) -> seglog::Result<Log<SimFs>> {
    let log = Log::open_with_fs(fs.clone(), "/log", opts())?;
    log.set_segment_source(source.clone());
    Ok(log)
}

/// Offloads every sealed segment before the active one that is still local; returns how
/// many.
pub fn offload_local(log: &Log<SimFs>, source: &MapSource) -> usize {
    let active = log.segments().last().unwrap().number;
    let sealed: Vec<_> = log
        .segments()
        .into_iter()
        .filter(|s| s.sealed && s.number < active)
        .collect();
    for s in &sealed {
        log.offload_segment(s.number, &target(source, s.number))
            .unwrap();
    }
    sealed.len()
}
