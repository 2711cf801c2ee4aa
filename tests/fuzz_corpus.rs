//! Replays the fuzz corpora (`tests/fuzz/corpus/<target>/*`) through the same entry points
//! the cargo-fuzz targets use, so every input a fuzzer found interesting — and every
//! crash it found, once minimised and added — is checked on stable in every test run.
//!
//! `SEGLOG_WRITE_SEEDS=1` (re)writes the seed inputs made from real logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_tests::fuzz_entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The files of `dir` in `fs`, as a `log_dir` input.
fn archive_of(fs: &seglog::io::sim::SimFs, dir: &Path) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = fs
        .file_names(dir)
        .into_iter()
        .filter(|name| name != "LOCK")
        .map(|name| {
            let bytes = fs.read_file(&dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    fuzz_entry::dir_archive::write(&files)
}

/// Seeds of `log_dir`: small logs made on the in-memory file system (several segments,
/// checkpoints, batches, two tenants): closed cleanly, cut by a crash while open, compacted
/// into clustered segments, and with a tenant erased.
fn write_log_dir_seeds(base: &Path) {
    use seglog::compaction::policy;
    use seglog::io::sim::{CrashMode, SimFs};
    use seglog::{CheckpointMode, CompactOptions, Log, Options};
    let out = base.join("log_dir");
    std::fs::create_dir_all(&out).unwrap();
    let dir = Path::new("/seed/log");
    let opts = Options::default()
        .segment_size_bytes(2048)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(CheckpointMode::Inline);
    let fill = |log: &Log<SimFs>| {
        for i in 0..60u64 {
            let tenant = if i % 5 == 0 { "t2" } else { "t1" };
            let execution = format!("e{}-{tenant}", i % 3);
            let p = format!("payload {i}");
            if i % 4 == 0 {
                log.append_batch_blocking(&execution, tenant, &[p.as_bytes(), b"second"])
                    .unwrap();
            } else {
                log.append_blocking(&execution, tenant, p.as_bytes())
                    .unwrap();
            }
        }
    };

    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), dir, opts.clone()).unwrap();
    fill(&log);
    let crashed = fs.fork().crash(CrashMode::LoseUnsynced);
    std::fs::write(out.join("crashed_while_open"), archive_of(&crashed, dir)).unwrap();
    log.close().unwrap();
    std::fs::write(out.join("closed"), archive_of(&fs, dir)).unwrap();

    let log = Log::open_with_fs(fs.clone(), dir, opts.clone()).unwrap();
    let view = log.compaction_view(true).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    log.close().unwrap();
    std::fs::write(out.join("clustered"), archive_of(&fs, dir)).unwrap();

    let log = Log::open_with_fs(fs.clone(), dir, opts.clone()).unwrap();
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::drop_tenant(&view, "t2"),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    log.close().unwrap();
    std::fs::write(out.join("tenant_erased"), archive_of(&fs, dir)).unwrap();

    // A fresh log's sealed segments offloaded: stubs (`.off`) and their checkpoints in
    // place of them.
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), dir, opts).unwrap();
    fill(&log);
    let source = Arc::new(SealedCopies::default());
    log.set_segment_source(source.clone());
    let active = log.segments().last().unwrap().number;
    // Only segments numbered below the active one may leave (compaction renumbered some).
    for s in log
        .segments()
        .iter()
        .filter(|s| s.sealed && s.number < active)
    {
        let bytes = fs.read_file(&s.path).unwrap();
        let target = seglog::OffloadTarget {
            location: format!("segments/{}", s.number),
            len: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        source
            .0
            .lock()
            .unwrap()
            .insert(target.location.clone(), bytes);
        log.offload_segment(s.number, &target).unwrap();
    }
    log.close().unwrap();
    std::fs::write(out.join("offloaded"), archive_of(&fs, dir)).unwrap();
}

/// Seeds of `bucket`: buckets shipped by `seglog-tier` (sealed segments with checkpoints
/// and manifests; then the active segment's chunks too), as archives of key → bytes under
/// the prefix.
fn write_bucket_seeds(base: &Path) {
    use seglog_tier::object_store::memory::InMemory;
    use seglog_tier::object_store::path::Path as Key;
    use seglog_tier::object_store::{ObjectStore, ObjectStoreExt};
    use seglog_tier::Tier;
    let out = base.join("bucket");
    std::fs::create_dir_all(&out).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dump = |store: Arc<dyn ObjectStore>| async move {
            use futures_util::TryStreamExt;
            let prefix = Key::from("log");
            let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
            let mut files = Vec::new();
            for meta in metas {
                let bytes = store
                    .get(&meta.location)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let key = meta
                    .location
                    .as_ref()
                    .strip_prefix("log/")
                    .unwrap()
                    .to_owned();
                files.push((key, bytes.to_vec()));
            }
            files.sort();
            fuzz_entry::dir_archive::write(&files)
        };
        let tmp = tempfile::tempdir().unwrap();
        let options = seglog::Options::default().segment_size_bytes(4096);
        let write = |log: seglog::Log, from: u64, to: u64| async move {
            for i in from..to {
                log.append(
                    &format!("e{}", i % 3),
                    "t",
                    format!("payload {i}").as_bytes(),
                )
                .await
                .unwrap();
            }
            log
        };
        for (name, chunks) in [("sealed", false), ("with_chunks", true)] {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let mut tier = Tier::claim(store.clone(), Key::from("log")).await.unwrap();
            if chunks {
                tier = tier.with_active_chunks();
            }
            let log = seglog::Log::open(tmp.path().join(name), options.clone())
                .await
                .unwrap();
            let log = write(log, 0, 80).await;
            tier.ship(&log).await.unwrap();
            let log = write(log, 80, 100).await;
            tier.ship(&log).await.unwrap();
            log.close().unwrap();
            std::fs::write(out.join(name), dump(store).await).unwrap();
        }
    });
}

/// A bucket of segment copies, by location, for the `offloaded` seed.
#[derive(Debug, Default)]
struct SealedCopies(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl seglog::SegmentSource for SealedCopies {
    fn read_ranges(
        &self,
        segment: &seglog::OffloadedSegment,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>, seglog::SourceError> {
        let copies = self.0.lock().unwrap();
        let bytes = copies.get(&segment.location).ok_or("no such copy")?;
        ranges
            .iter()
            .map(|r| {
                bytes
                    .get(r.start as usize..r.end as usize)
                    .map(bytes::Bytes::copy_from_slice)
                    .ok_or_else(|| "range past the copy".into())
            })
            .collect()
    }
}

fn write_seeds() {
    use seglog::{CheckpointMode, Log, Options};
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    write_log_dir_seeds(&base);
    write_bucket_seeds(&base);
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size_bytes(2048)
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_blocking(tmp.path(), opts).unwrap();
    for i in 0..30u64 {
        let p = format!("payload {i}");
        if i % 4 == 0 {
            log.append_batch_blocking(&format!("e{}", i % 3), "t", &[p.as_bytes(), b"second"])
                .unwrap();
        } else {
            log.append_blocking(&format!("e{}", i % 3), "t", p.as_bytes())
                .unwrap();
        }
    }
    let segs = log.segments();
    log.close().unwrap();
    let seg0 = std::fs::read(&segs[0].path).unwrap();
    std::fs::write(base.join("segment_file/sealed_segment"), &seg0).unwrap();
    std::fs::write(
        base.join("segment_file/torn_segment"),
        &seg0[..seg0.len() - 9],
    )
    .unwrap();
    std::fs::write(
        base.join("record_decoder/single_record"),
        &seg0[64..64 + 70],
    )
    .unwrap();
    let a = seglog_segment::inspect::analyze_segment(&seg0, 0);
    let second = a.record_offsets[1] as usize;
    std::fs::write(base.join("record_decoder/batch_record"), &seg0[64..second]).unwrap();
    let idx = tmp
        .path()
        .join(seglog_index::checkpoint::checkpoint_file_name(
            segs[0].first_lsn,
        ));
    std::fs::write(
        base.join("checkpoint_decoder/checkpoint"),
        std::fs::read(idx).unwrap(),
    )
    .unwrap();
}

/// The checksum fixer of `log_dir` computes the checksums the engine writes: it changes
/// nothing in the seeds (real logs), and it makes a damaged record's checksum match again.
#[test]
fn the_checksum_fixer_agrees_with_the_engine() {
    use fuzz_entry::{checksums, dir_archive};
    for (path, bytes) in corpus("log_dir").into_iter().filter(|(p, _)| {
        [
            "closed",
            "clustered",
            "crashed_while_open",
            "tenant_erased",
            "offloaded",
        ]
        .iter()
        .any(|seed| p.ends_with(seed))
    }) {
        let mut files = dir_archive::parse(&bytes);
        assert!(files.len() >= 3, "{}", path.display());
        assert!(
            !checksums::fix(&mut files),
            "{}: a seed's checksums changed",
            path.display()
        );
        let (_, segment) = files
            .iter_mut()
            .find(|(name, _)| name.ends_with(".seg"))
            .unwrap();
        // The last byte of the first record (its payload), changed.
        let len = u32::from_le_bytes(segment[64..68].try_into().unwrap()) as usize;
        segment[64 + len - 1] ^= 0x55;
        assert!(checksums::fix(&mut files), "{}", path.display());
        assert!(!checksums::fix(&mut files), "{}", path.display());
    }
}

#[test]
fn fuzz_corpora_replay_without_panics() {
    if std::env::var_os("SEGLOG_WRITE_SEEDS").is_some() {
        write_seeds();
    }
    let mut total = 0;
    for (target, entry) in [
        ("record_decoder", fuzz_entry::record_decoder as fn(&[u8])),
        ("checkpoint_decoder", fuzz_entry::checkpoint_decoder),
        ("segment_file", fuzz_entry::segment_file),
        ("log_dir", fuzz_entry::log_dir),
        ("bucket", fuzz_entry::bucket),
    ] {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "corpus of {target} is empty");
        for (path, bytes) in inputs {
            // Every prefix too: truncation is the commonest damage.
            let cuts = (0..bytes.len()).step_by(bytes.len() / 64 + 1);
            for cut in std::iter::once(bytes.len()).chain(cuts) {
                if std::panic::catch_unwind(|| entry(&bytes[..cut])).is_err() {
                    panic!(
                        "{target}: {} cut at {cut} of {} bytes failed (above)",
                        path.display(),
                        bytes.len()
                    );
                }
            }
            total += 1;
        }
    }
    assert!(total >= 5);
}
