//! The functions the fuzz targets in `tests/fuzz` drive, shared with the corpus replay that
//! runs in the normal test suite. Each takes arbitrary bytes and must neither panic nor
//! allocate more than the input's size.

use seglog_index::checkpoint;
use seglog_segment::format::{decode_record, RecordScan};
use seglog_segment::inspect::analyze_segment;
use seglog_segment::SegmentInfo;

/// The record decoder, as recovery and readers use it.
pub fn record_decoder(data: &[u8]) {
    let salt = data.first().map_or(1, |&b| u64::from(b));
    if let RecordScan::Record(r) = decode_record(data, salt, 0, data.len() as u64) {
        // A record that decodes must be self-consistent.
        let total: usize = r.events().map(<[u8]>::len).sum();
        assert_eq!(total, r.payload_len());
        assert!(r.len() <= data.len());
    }
}

/// The checkpoint decoder, against a segment whose identity comes from the input's tail.
pub fn checkpoint_decoder(data: &[u8]) {
    let info = SegmentInfo {
        number: 1,
        first_lsn: 1,
        last_lsn: 0,
        path: Default::default(),
        data_end: data.len() as u64 * 4,
        sealed: true,
        created_unix_nanos: 0,
        // The salt of a version-1 or -2 segment: its number, as the corpus was made with.
        record_salt: 1,
        clustered: false,
    };
    if let Ok(cp) = checkpoint::decode(data, &info) {
        for r in &cp.records {
            assert!((r.execution as usize) < cp.strings.len());
            assert!(u64::from(r.offset) < info.data_end);
        }
    }
}

/// A whole segment file, as the CLI reads one.
pub fn segment_file(data: &[u8]) {
    let a = analyze_segment(data, 0);
    for &off in &a.record_offsets {
        assert!(
            a.record(data, off).is_some(),
            "listed record does not decode"
        );
    }
    assert!(a.data_end as usize <= data.len());
}

/// A whole log directory, as the engine opens it: the input is a small archive of files
/// ([`dir_archive`]) laid out in an in-memory file system, then verified, opened read-only
/// and read, opened for writing, read, appended to and reopened.
///
/// Besides "no panic": whatever an open vouches for must hold. Every event a per-execution
/// read returns is the one the log holds at its position (the index agrees with the
/// segments), and an append acknowledged on a log that opened is there after a reopen.
pub fn log_dir(data: &[u8]) {
    let mut files = dir_archive::parse(data);
    open_dir(&files);
    // Random damage rarely gets past a checksum: once more with every checksum made to
    // match, so that the checks behind them (what a checkpoint or a record claims) are
    // reached too.
    if checksums::fix(&mut files) {
        open_dir(&files);
    }
}

/// [`log_dir`]'s run over one set of files.
fn open_dir(files: &[(String, Vec<u8>)]) {
    use seglog::io::sim::SimFs;
    use seglog::io::{FileSystem, SegmentFile};
    let fs = SimFs::new();
    let dir = std::path::Path::new("/fuzz/log");
    if fs.create_dir_all(dir).is_err() {
        return;
    }
    for (name, bytes) in files {
        let Ok(file) = fs.create_new(&dir.join(name)) else {
            continue;
        };
        if file.write_all_at(bytes, 0).is_err() || file.sync_data().is_err() {
            return;
        }
    }
    let _ = fs.sync_dir(dir);

    let _ = seglog::verify_dir_with_fs(&fs, dir);
    if let Ok(view) = seglog::Log::open_read_only_with_fs(fs.clone(), dir) {
        check_reads(&view);
        let _ = view.close();
    }
    let options = seglog::Options::default()
        .segment_size_bytes(4096)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(seglog::CheckpointMode::Inline);
    check_repair(&fs.fork(), dir, &options);
    let Ok(log) = seglog::Log::open_with_fs(fs.clone(), dir, options.clone()) else {
        return;
    };
    check_reads(&log);
    check_compaction(&log);
    let appended = log.append_blocking(ORACLE_EXECUTION, ORACLE_TENANT, ORACLE_PAYLOAD);
    let closed = log.close();
    let Ok(seq) = appended else {
        return;
    };
    assert!(
        closed.is_ok(),
        "a log that acknowledged an append did not close: {closed:?}"
    );
    let reopened = seglog::Log::open_with_fs(fs.clone(), dir, options);
    let log = match reopened {
        Ok(log) => log,
        Err(e) => {
            panic!("a log that acknowledged an append and closed cleanly does not reopen: {e}")
        }
    };
    check_reads(&log);
    let events = log.read(ORACLE_EXECUTION);
    assert!(
        events.as_ref().is_ok_and(|ev| ev
            .iter()
            .any(|e| e.seq == seq && e.payload == ORACLE_PAYLOAD)),
        "the acknowledged append (seq {seq}) is not there after a reopen: {events:?}"
    );
    let _ = log.close();
}

/// A compaction that rewrites every sealed segment (clustered by execution, as locality
/// compaction does) changes no event a read returned before it: after it, each execution
/// reads the same events or fails with an error, whether the compaction succeeded or not.
fn check_compaction(log: &seglog::Log<seglog::io::sim::SimFs>) {
    use seglog::compaction::policy;
    let Ok(records) = log.read_global(0, usize::MAX) else {
        return;
    };
    let executions: std::collections::BTreeSet<String> =
        records.into_iter().map(|r| r.execution).collect();
    let before: Vec<(String, Vec<seglog::Event>)> = executions
        .into_iter()
        .filter_map(|e| log.read(&e).ok().map(|events| (e, events)))
        .collect();
    let Ok(view) = log.compaction_view(true) else {
        return;
    };
    let plan = policy::cluster_sealed_segments(&view);
    let _ = log.compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {});
    for (execution, events) in before {
        let Ok(after) = log.read(&execution) else {
            continue;
        };
        let key = |e: &seglog::Event| (e.seq, e.payload.clone(), e.lsn, e.encoding);
        assert_eq!(
            after.iter().map(key).collect::<Vec<_>>(),
            events.iter().map(key).collect::<Vec<_>>(),
            "{execution}: a compaction changed its events"
        );
    }
    check_reads(log);
}

/// A repair that says it repaired leaves files as it planned them, and a log that opens.
fn check_repair(fs: &seglog::io::sim::SimFs, dir: &std::path::Path, options: &seglog::Options) {
    let Ok(report) = seglog::repair_dir_with_fs(fs.clone(), dir, |_| true) else {
        return;
    };
    if !report.repaired {
        return;
    }
    assert!(
        report.differences.is_empty(),
        "the repair did not do what it planned: {:?}",
        report.differences
    );
    match seglog::Log::open_with_fs(fs.clone(), dir, options.clone()) {
        Ok(log) => {
            check_reads(&log);
            let _ = log.close();
        }
        Err(e) => panic!("the log does not open after a repair that succeeded: {e}"),
    }
}

/// A bucket, as a restore reads it: the input is an archive of objects ([`dir_archive::
/// parse_keys`]: key and bytes) put under the prefix `log/` of an in-memory object store.
/// A whole and a lazy restore into a fresh directory each succeed or fail with an error;
/// a restored log reads consistently (`check_reads`) and opens again after a close.
pub fn bucket(data: &[u8]) {
    use seglog_tier::object_store::memory::InMemory;
    use seglog_tier::object_store::path::Path as Key;
    use seglog_tier::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use std::sync::{Arc, OnceLock};
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no tokio runtime: {e}"))
    });
    let objects = dir_archive::parse_keys(data);
    runtime.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for (key, bytes) in objects {
            let key = Key::from(format!("log/{key}"));
            if store.put(&key, PutPayload::from(bytes)).await.is_err() {
                return;
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix("seglog-fuzz-bucket")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            });
        let Ok(scratch) = scratch else {
            return;
        };
        for (i, fetch) in [
            seglog_tier::FetchSegments::Whole,
            seglog_tier::FetchSegments::Lazily,
        ]
        .into_iter()
        .enumerate()
        {
            let dir = scratch.path().join(format!("restore-{i}"));
            let restore_options = seglog_tier::RestoreOptions::default().fetch_segments(fetch);
            let restored = seglog_tier::restore_with(
                store.clone(),
                Key::from("log"),
                &dir,
                bucket_log_options(),
                restore_options,
            )
            .await;
            let Ok(restored) = restored else {
                continue;
            };
            check_reads(&restored.log);
            let closed = restored.log.close();
            assert!(closed.is_ok(), "a restored log did not close: {closed:?}");
            drop(restored);
        }
    });
}

fn bucket_log_options() -> seglog::Options {
    seglog::Options::default()
        .segment_size_bytes(8192)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
}

const ORACLE_EXECUTION: &str = "fuzz-oracle-execution";
const ORACLE_TENANT: &str = "fuzz-oracle-tenant";
const ORACLE_PAYLOAD: &[u8] = b"acknowledged by the fuzzer's log";

/// Reads everything an open log offers; whatever it returns must be consistent: LSNs
/// strictly increase in the global order, and each event a per-execution read returns is
/// in the record of its LSN, with its payload.
fn check_reads<F: seglog::io::FileSystem>(log: &seglog::Log<F>) {
    let Ok(records) = log.read_global(0, usize::MAX) else {
        return;
    };
    let mut by_lsn = std::collections::HashMap::new();
    let mut last = 0;
    for r in &records {
        assert!(
            r.lsn > last,
            "global order goes back: {} after {last}",
            r.lsn
        );
        last = r.lsn;
        by_lsn.insert(r.lsn, r);
    }
    let _ = log.latest_lsn();
    let executions: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.execution.as_str()).collect();
    for execution in executions {
        let _ = log.tenant_of(execution);
        let _ = log.latest_seq(execution);
        let Ok(events) = log.read(execution) else {
            continue;
        };
        let mut previous = 0;
        for e in &events {
            assert!(
                e.seq > previous,
                "{execution}: seq {} after {previous}",
                e.seq
            );
            previous = e.seq;
            let Some(record) = by_lsn.get(&e.lsn) else {
                // Read after the scan (a reader may publish more), or not in this log.
                assert!(
                    e.lsn > last,
                    "{execution}: event {} at LSN {} is in no record",
                    e.seq,
                    e.lsn
                );
                continue;
            };
            assert_eq!(
                record.execution, execution,
                "event {} at LSN {}",
                e.seq, e.lsn
            );
            let k = e.seq.checked_sub(record.first_seq);
            let payload = k.and_then(|k| record.payloads.get(k as usize));
            assert_eq!(
                payload.map(|p| p.as_ref()),
                Some(e.payload.as_ref()),
                "{execution}: event {} at LSN {} is not what its record holds",
                e.seq,
                e.lsn
            );
        }
    }
}

/// The archive format of [`log_dir`]'s inputs: a sequence of files, each
/// `name_len: u8, name, len: u32 LE, bytes`. Names other than `[A-Za-z0-9._-]{1,64}`, `.`
/// and `..` are skipped, as are repeats; a length past the input's end takes what is left.
pub mod dir_archive {
    /// At most this many files.
    pub const MAX_FILES: usize = 32;

    /// The files of an archive.
    pub fn parse(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        parse_names(data, false)
    }

    /// The objects of an archive whose names are object keys: as [`parse`], and `/` may
    /// separate parts (none empty, `.` or `..`, at most 200 bytes in all).
    pub fn parse_keys(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        parse_names(data, true)
    }

    fn parse_names(mut data: &[u8], keys: bool) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        while files.len() < MAX_FILES {
            let Some((&name_len, rest)) = data.split_first() else {
                break;
            };
            let Some(name) = rest.get(..usize::from(name_len)) else {
                break;
            };
            let rest = &rest[usize::from(name_len)..];
            let Some(len) = rest.get(..4) else {
                break;
            };
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let rest = &rest[4..];
            let body = &rest[..len.min(rest.len())];
            data = &rest[body.len()..];
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let part_ok = |part: &str| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            let valid = if keys {
                name.len() <= 200 && name.split('/').all(part_ok)
            } else {
                name.len() <= 64 && part_ok(name)
            };
            if valid && !files.iter().any(|(n, _)| n == name) {
                files.push((name.to_owned(), body.to_vec()));
            }
        }
        files
    }

    /// The archive of `files` (for seeds).
    pub fn write(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, bytes) in files {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }
}

/// Makes the checksums of segment files (header, records) and checkpoints (header, body)
/// match their bytes, as docs/format.md §2, §3.2 and §5 define them.
pub mod checksums {
    const SEGMENT_MAGIC: &[u8] = b"SEGLOGSG";
    const CHECKPOINT_MAGIC: &[u8] = b"SEGLOGIX";
    const HEADER: usize = 64;
    const RECORD_HEADER: usize = 48;

    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(v)
    }

    fn set_crc(b: &mut [u8], at: usize, crc: u32) -> bool {
        let new = crc.to_le_bytes();
        let changed = b[at..at + 4] != new;
        b[at..at + 4].copy_from_slice(&new);
        changed
    }

    fn header_crc(b: &[u8]) -> u32 {
        crc32fast::hash(&b[..60])
    }

    /// A segment's record salt: its random salt from version 3 on, its number before.
    fn salt(header: &[u8]) -> u64 {
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version >= 3 {
            u64_at(header, 40)
        } else {
            u64_at(header, 16)
        }
    }

    /// Fixes the checksums of `files`; true when any changed.
    pub fn fix(files: &mut [(String, Vec<u8>)]) -> bool {
        let mut changed = false;
        let mut salts = Vec::new();
        for (name, bytes) in files.iter_mut() {
            let Some(stem) = name.strip_suffix(".seg") else {
                continue;
            };
            if bytes.len() < HEADER || &bytes[..8] != SEGMENT_MAGIC {
                continue;
            }
            let crc = header_crc(bytes);
            changed |= set_crc(bytes, 60, crc);
            let salt = salt(bytes);
            salts.push((stem.to_owned(), salt));
            let mut at = HEADER;
            while at + RECORD_HEADER <= bytes.len() {
                let len =
                    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                        as usize;
                if len < RECORD_HEADER || len > bytes.len() - at {
                    break;
                }
                let record = &bytes[at..at + len];
                let mut h = crc32fast::Hasher::new();
                h.update(&salt.to_le_bytes());
                h.update(&record[..4]);
                h.update(&record[8..]);
                let crc = h.finalize();
                changed |= set_crc(bytes, at + 4, crc);
                at += len;
            }
        }
        for (name, bytes) in files.iter_mut() {
            let Some(stem) = name.strip_suffix(".idx") else {
                continue;
            };
            if bytes.len() < HEADER + 4 || &bytes[..8] != CHECKPOINT_MAGIC {
                continue;
            }
            let crc = header_crc(bytes);
            changed |= set_crc(bytes, 60, crc);
            let Some(&(_, salt)) = salts.iter().find(|(s, _)| s == stem) else {
                continue;
            };
            let end = bytes.len() - 4;
            let mut h = crc32fast::Hasher::new();
            h.update(&salt.to_le_bytes());
            h.update(&bytes[HEADER..end]);
            let crc = h.finalize();
            changed |= set_crc(bytes, end, crc);
        }
        changed
    }
}
