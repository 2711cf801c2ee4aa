//! Logs written by earlier format versions still open and read back exactly.
//!
//! The fixtures in `tests/fixtures/v<N>/` were written by the build of format version N and
//! are never rewritten by a later one. A missing fixture is written (by the build of its
//! version only) with `SEGLOG_WRITE_FIXTURES=1 cargo test -p seglog --test format_fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn fixture_options() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .checkpoints(CheckpointMode::Inline)
}

/// The fixture's contents: three executions over two tenants, single events and batches,
/// enough to roll over several 4 KiB segments.
fn expected() -> Vec<(String, String, Vec<Vec<u8>>)> {
    (0..3)
        .map(|e| {
            let events = (1..=40)
                .map(|s| format!("exec-{e} event {s} {}", "x".repeat(s % 7)).into_bytes())
                .collect();
            (format!("exec-{e}"), format!("tenant-{}", e % 2), events)
        })
        .collect()
}

fn write_fixture(dir: &Path) -> seglog::Result<()> {
    let log = Log::open_blocking(dir, fixture_options())?;
    let executions = expected();
    for s in 0..40 {
        for (id, tenant, events) in &executions {
            // Every fifth step appends a batch of the next events, the rest one at a time.
            if s % 5 == 0 && s + 1 < 40 {
                log.append_batch_blocking(id, tenant, &[&events[s], &events[s + 1]])?;
            } else if s % 5 != 1 {
                log.append_blocking(id, tenant, &events[s])?;
            }
        }
    }
    log.close()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn version_1_log_opens_and_reads_back_exactly() {
    let fixture = fixtures_dir().join("v1");
    if std::env::var_os("SEGLOG_WRITE_FIXTURES").is_some() && !fixture.exists() {
        std::fs::create_dir_all(&fixture).unwrap();
        write_fixture(&fixture).unwrap();
        std::fs::remove_file(fixture.join("LOCK")).ok();
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), fixture_options()).unwrap();
    assert!(
        log.segments().len() >= 3,
        "the fixture spans several segments"
    );
    for (id, tenant, events) in expected() {
        let read = log.read(&id).unwrap();
        let payloads: Vec<Vec<u8>> = read.iter().map(|e| e.payload.to_vec()).collect();
        assert_eq!(payloads, events, "{id}");
        assert_eq!(
            log.tenant_of(&id).unwrap().as_deref(),
            Some(tenant.as_str())
        );
    }
    // The old log stays appendable.
    assert_eq!(
        log.append_blocking("exec-0", "tenant-0", b"new").unwrap(),
        41
    );
    log.close().unwrap();
}

// ---- Format version 2 ----------------------------------------------------------------
//
// Two fixtures, both written by the format-version-2 build (commit b7763e4's code):
// - `v2/compacted/`: a log that was compacted (a tenant and one execution erased, small
//   segments merged) and appended to afterwards, then closed cleanly. It holds what only
//   version 2 writes: segments whose numbers do not follow LSN order, LSN gaps inside a
//   segment, a segment whose first record comes after the LSN in its name (that record was
//   dropped), outputs named after a record that was first in no input, and index checkpoints
//   of the new segments.
// - `v2/replace_pending/`: the same workload up to the compaction (on the simulated disk),
//   cut by a power loss right after the compaction's commit point: a committed `REPLACE`
//   manifest, the `*.compacting` outputs, and every input still in place. Opening it must
//   finish the replacement (docs/format.md §6).

const V2_TENANTS: [&str; 3] = ["tenant-a", "tenant-b", "tenant-gone"];
/// Erased besides the whole of `tenant-gone` (`exec-0`, the log's first record, and `exec-3`).
const V2_DROPPED_EXECUTION: &str = "exec-4";

fn v2_options() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .checkpoints(CheckpointMode::Inline)
}

/// One append of the version-2 workload.
struct V2Append {
    execution: String,
    tenant: &'static str,
    encoding: u8,
    payloads: Vec<Vec<u8>>,
}

/// The appends before the compaction: six executions over three tenants, 36 events each,
/// every fifth step a batch of two, `tenant-b`'s with encoding 1.
fn v2_appends_before() -> Vec<V2Append> {
    let mut out = Vec::new();
    for s in 0..36usize {
        if s % 5 == 1 {
            continue; // taken by the previous step's batch
        }
        for e in 0..6usize {
            let execution = format!("exec-{e}");
            let event = |s: usize| {
                format!(
                    "{execution} event {} {}",
                    s + 1,
                    "y".repeat((s * 3 + e) % 13)
                )
                .into_bytes()
            };
            let payloads = if s % 5 == 0 && s + 1 < 36 {
                vec![event(s), event(s + 1)]
            } else {
                vec![event(s)]
            };
            out.push(V2Append {
                tenant: V2_TENANTS[(e + 2) % 3],
                encoding: u8::from(e % 3 == 2),
                execution,
                payloads,
            });
        }
    }
    out
}

/// The appends after the compaction (`compacted` only): more events for two survivors and
/// a new execution, enough to fill and seal one more segment.
fn v2_appends_after() -> Vec<V2Append> {
    (0..60usize)
        .map(|i| {
            let (execution, tenant) = match i % 3 {
                0 => ("exec-1", "tenant-a"),
                1 => ("exec-2", "tenant-b"),
                _ => ("exec-6", "tenant-a"),
            };
            V2Append {
                execution: execution.to_owned(),
                tenant,
                encoding: 0,
                payloads: vec![format!("{execution} after compaction {i}").into_bytes()],
            }
        })
        .collect()
}

fn v2_append<F: seglog::io::FileSystem + Clone>(log: &Log<F>, appends: &[V2Append]) {
    for a in appends {
        log.append_encoded_blocking(&a.execution, a.tenant, None, a.encoding, &a.payloads)
            .unwrap();
    }
}

fn v2_plan<F: seglog::io::FileSystem + Clone>(log: &Log<F>) -> seglog::compaction::Plan {
    use seglog::compaction::policy;
    let view = log.compaction_view(false).unwrap();
    policy::drop_tenant(&view, "tenant-gone")
        .and(policy::drop_executions(&view, [V2_DROPPED_EXECUTION]))
        .and(policy::merge_small_segments(&view, 4096, 8192))
}

/// What a reader must see: per execution (in creation order) its tenant and its events
/// (encoding, payload), seq = position + 1; erased executions are absent.
type V2Expected = Vec<(String, &'static str, Vec<(u8, Vec<u8>)>)>;

fn v2_expected(appends: &[&[V2Append]]) -> V2Expected {
    let mut out: V2Expected = Vec::new();
    for a in appends.iter().flat_map(|a| a.iter()) {
        if a.tenant == "tenant-gone" || a.execution == V2_DROPPED_EXECUTION {
            continue;
        }
        let i = match out.iter().position(|(e, _, _)| *e == a.execution) {
            Some(i) => i,
            None => {
                out.push((a.execution.clone(), a.tenant, Vec::new()));
                out.len() - 1
            }
        };
        out[i]
            .2
            .extend(a.payloads.iter().map(|p| (a.encoding, p.clone())));
    }
    out
}

fn write_v2_compacted(dir: &Path) {
    let log = Log::open_blocking(dir, v2_options()).unwrap();
    v2_append(&log, &v2_appends_before());
    let report = log
        .compact_blocking(&v2_plan(&log), CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.executions_dropped, 3, "{report:?}");
    v2_append(&log, &v2_appends_after());
    log.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

/// Runs the workload and the compaction on a simulated disk, cutting the power after
/// mutating operation `cut_after` (if any). Returns the disk and whether `compact` was Ok.
fn v2_on_sim(cut_after: Option<u64>) -> (SimFs, bool) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", v2_options()).unwrap();
    v2_append(&log, &v2_appends_before());
    if let Some(n) = cut_after {
        fs.power_off_after(n);
    }
    let ok = log
        .compact_blocking(&v2_plan(&log), CompactOptions::default(), &mut |_, _| {})
        .is_ok();
    (fs, ok)
}

fn write_v2_replace_pending(dir: &Path) {
    let setup = {
        let fs = SimFs::new();
        let log = Log::open_with_fs(fs.clone(), "/log", v2_options()).unwrap();
        v2_append(&log, &v2_appends_before());
        fs.mutating_ops()
    };
    let (full, ok) = v2_on_sim(None);
    assert!(ok);
    // The first cut after which the committed manifest survives: the commit point.
    let crashed = (setup + 1..=full.mutating_ops())
        .map(|n| v2_on_sim(Some(n)).0.crash(CrashMode::LoseUnsynced))
        .find(|fs| {
            fs.file_names(Path::new("/log"))
                .contains(&"REPLACE".to_owned())
        })
        .unwrap();
    for name in crashed.file_names(Path::new("/log")) {
        if name != "LOCK" {
            let bytes = crashed.read_file(&Path::new("/log").join(&name)).unwrap();
            std::fs::write(dir.join(&name), bytes).unwrap();
        }
    }
}

/// A version-2 segment file as docs/format.md (version 2) describes it, parsed here without
/// the engine.
#[derive(Debug)]
struct V2Segment {
    name: String,
    format_version: u16,
    number: u64,
    first_lsn: u64,
    record_lsns: Vec<u64>,
}

fn parse_v2_segment(name: String, bytes: &[u8]) -> V2Segment {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    assert_eq!(&bytes[..8], b"SEGLOGSG");
    let mut lsns = Vec::new();
    let mut at = usize::from(u16_at(10));
    while at + 4 <= bytes.len() && u32_at(at) != 0 {
        lsns.push(u64_at(at + 8));
        at += u32_at(at) as usize;
    }
    assert!(
        bytes[at.min(bytes.len())..].iter().all(|b| *b == 0),
        "only zeros (preallocated space) follow the last record"
    );
    V2Segment {
        name,
        format_version: u16_at(8),
        number: u64_at(16),
        first_lsn: u64_at(24),
        record_lsns: lsns,
    }
}

/// The fixture's segments and pending outputs, parsed, in LSN order of their names.
fn v2_segments(dir: &Path) -> Vec<V2Segment> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg") || n.ends_with(".seg.compacting"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            parse_v2_segment(n, &bytes)
        })
        .collect()
}

fn fixture_v2(name: &str, write: fn(&Path)) -> PathBuf {
    fixture_of("v2", name, write)
}

fn fixture_of(version: &str, name: &str, write: fn(&Path)) -> PathBuf {
    let fixture = fixtures_dir().join(version).join(name);
    if std::env::var_os("SEGLOG_WRITE_FIXTURES").is_some() && !fixture.exists() {
        std::fs::create_dir_all(&fixture).unwrap();
        write(&fixture);
    }
    assert!(fixture.is_dir(), "missing fixture {}", fixture.display());
    fixture
}

fn assert_reads_back<F: seglog::io::FileSystem + Clone>(log: &Log<F>, expected: &V2Expected) {
    for (id, tenant, events) in expected {
        let read: Vec<(u64, u8, Vec<u8>)> = log
            .read(id)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.encoding, e.payload.to_vec()))
            .collect();
        let want: Vec<(u64, u8, Vec<u8>)> = (1..)
            .zip(events)
            .map(|(seq, (enc, p))| (seq, *enc, p.clone()))
            .collect();
        assert_eq!(read, want, "{id}");
        assert_eq!(log.tenant_of(id).unwrap().as_deref(), Some(*tenant), "{id}");
    }
    for tenant in V2_TENANTS {
        // Newest first by creation.
        let want: Vec<String> = expected
            .iter()
            .rev()
            .filter(|(_, t, _)| *t == tenant)
            .map(|(e, _, _)| e.clone())
            .collect();
        assert_eq!(
            log.list_executions(tenant, 100, 0).unwrap(),
            want,
            "{tenant}"
        );
    }
    for gone in ["exec-0", "exec-3", V2_DROPPED_EXECUTION] {
        assert!(log.read(gone).unwrap().is_empty(), "{gone} was erased");
        assert_eq!(log.tenant_of(gone).unwrap(), None, "{gone} was erased");
    }
}

#[test]
fn version_2_compacted_log_opens_and_reads_back_exactly() {
    let fixture = fixture_v2("compacted", write_v2_compacted);
    // The fixture holds what only version 2 writes (checked on its bytes, without the
    // engine, so that a later build cannot silently change what this test covers).
    let segments = v2_segments(&fixture);
    assert!(segments.len() >= 3, "{segments:?}");
    for s in &segments {
        assert_eq!(s.format_version, 2, "{s:?}");
        assert_eq!(s.name, format!("{:020}.seg", s.first_lsn));
        assert!(s.record_lsns.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    }
    let numbers: Vec<u64> = segments.iter().map(|s| s.number).collect();
    assert!(
        numbers.windows(2).any(|w| w[0] > w[1]),
        "segment numbers follow LSN order: {numbers:?}"
    );
    assert!(
        segments
            .iter()
            .any(|s| s.record_lsns.windows(2).any(|w| w[1] > w[0] + 1)),
        "no LSN gap inside a segment"
    );
    assert!(
        segments
            .iter()
            .any(|s| s.record_lsns.first().is_some_and(|f| *f > s.first_lsn)),
        "no segment whose first record's LSN is above its name's (a dropped first record)"
    );
    let checkpoints = std::fs::read_dir(&fixture)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("idx".as_ref()))
        .count();
    assert!(checkpoints >= 2, "{checkpoints} index checkpoints");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), v2_options()).unwrap();
    let recovery = log.stats().recovery;
    // A checkpoint is an optimisation: if a later build stops reading version-1 checkpoints
    // on purpose, this is the line to change, not the reads below.
    assert!(recovery.checkpoints_loaded >= 2, "{recovery:?}");
    assert_eq!(recovery.torn_tail_bytes, 0, "{recovery:?}");
    let expected = v2_expected(&[&v2_appends_before(), &v2_appends_after()]);
    assert_reads_back(&log, &expected);
    // The old log stays appendable, and compactable.
    let exec1_events = expected[0].2.len() as u64;
    assert_eq!(expected[0].0, "exec-1");
    assert_eq!(
        log.append_blocking("exec-1", "tenant-a", b"new").unwrap(),
        exec1_events + 1
    );
    let plan = seglog::compaction::policy::drop_executions(
        &log.compaction_view(false).unwrap(),
        ["exec-2"],
    );
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(log.read("exec-2").unwrap().is_empty());
    assert_eq!(log.read("exec-1").unwrap().len() as u64, exec1_events + 1);
    log.close().unwrap();
}

#[test]
fn version_2_log_cut_after_a_compaction_commit_finishes_it_on_open() {
    let fixture = fixture_v2("replace_pending", write_v2_replace_pending);
    let names: Vec<String> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let manifest = std::fs::read(fixture.join("REPLACE")).unwrap();
    assert_eq!(&manifest[..8], b"SEGLOGRM");
    assert_eq!(u16::from_le_bytes([manifest[8], manifest[9]]), 2);
    let pending = names.iter().filter(|n| n.ends_with(".compacting")).count();
    assert!(pending >= 1, "{names:?}");
    for s in v2_segments(&fixture) {
        assert_eq!(s.format_version, 2, "{s:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), v2_options()).unwrap();
    assert_reads_back(&log, &v2_expected(&[&v2_appends_before()]));
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".compacting") || n.starts_with("REPLACE"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "the replacement was finished");
    // No byte of an erased execution survives the finished replacement.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(7)
                .any(|w| w == b"exec-0 " || w == b"exec-3 " || w == b"exec-4 "),
            "{} still holds an erased execution's event",
            path.display()
        );
    }
    log.close().unwrap();
}

// Version 3 (random record salts, the `COMPACTED` flag, commit markers): `v3/compacted/` is
// the version-2 workload above (appends, a compaction that erases, more appends, a clean
// close) written by the version-3 build. Version 4 added clustered segments; a version-3
// log must open and read back exactly, and stay appendable and compactable.
#[test]
fn version_3_compacted_log_opens_and_reads_back_exactly() {
    let fixture = fixture_of("v3", "compacted", write_v2_compacted);
    let segments = v2_segments(&fixture);
    assert!(segments.len() >= 3, "{segments:?}");
    for s in &segments {
        assert_eq!(s.format_version, 3, "{s:?}");
        assert!(s.record_lsns.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    }
    let flags: Vec<u32> = segments
        .iter()
        .map(|s| {
            let bytes = std::fs::read(fixture.join(&s.name)).unwrap();
            u32::from_le_bytes(bytes[12..16].try_into().unwrap())
        })
        .collect();
    assert!(flags.contains(&1), "a COMPACTED segment: {flags:?}");
    assert!(
        flags.iter().all(|f| *f <= 1),
        "only version-3 flags: {flags:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), v2_options()).unwrap();
    let recovery = log.stats().recovery;
    assert!(recovery.checkpoints_loaded >= 2, "{recovery:?}");
    assert_eq!(recovery.torn_tail_bytes, 0, "{recovery:?}");
    let expected = v2_expected(&[&v2_appends_before(), &v2_appends_after()]);
    assert_reads_back(&log, &expected);
    assert!(log.verify().unwrap().is_clean());
    let plan = seglog::compaction::policy::drop_executions(
        &log.compaction_view(false).unwrap(),
        ["exec-2"],
    );
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(log.read("exec-2").unwrap().is_empty());
    log.close().unwrap();
}

// ---- Index checkpoints of version 2 (format.md §5, §5.1) -----------------------------
//
// `v4/checkpoints2/`: the fixture log of `write_fixture` as this build writes it, closed
// cleanly: every sealed segment has a version-2 checkpoint (varint entries) and the last
// one a prefix checkpoint. The opens of later builds must take them (or, if a later build
// stops reading them on purpose, the line to change is the checkpoint assertion, not the
// reads).

fn write_checkpoints2(dir: &Path) {
    write_fixture(dir).unwrap();
    std::fs::remove_file(dir.join("LOCK")).ok();
}

#[test]
fn checkpoint_version_2_log_opens_from_its_checkpoints_and_reads_back_exactly() {
    let fixture = fixture_of("v4", "checkpoints2", write_checkpoints2);
    let versions: Vec<u16> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some("idx".as_ref()))
        .map(|p| {
            let b = std::fs::read(p).unwrap();
            u16::from_le_bytes([b[8], b[9]])
        })
        .collect();
    assert!(versions.len() >= 3, "{versions:?}");
    assert!(versions.iter().all(|&v| v == 2), "{versions:?}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), fixture_options()).unwrap();
    let recovery = log.stats().recovery;
    assert_eq!(recovery.checkpoints_loaded + 1, log.segments().len());
    assert!(recovery.last_segment_prefix_bytes > 0, "{recovery:?}");
    assert_eq!(recovery.records_scanned, 0, "{recovery:?}");
    for (id, tenant, events) in expected() {
        let read = log.read(&id).unwrap();
        let payloads: Vec<Vec<u8>> = read.iter().map(|e| e.payload.to_vec()).collect();
        assert_eq!(payloads, events, "{id}");
        assert_eq!(
            log.tenant_of(&id).unwrap().as_deref(),
            Some(tenant.as_str())
        );
    }
    assert_eq!(
        log.append_blocking("exec-0", "tenant-0", b"new").unwrap(),
        41
    );
    log.close().unwrap();
    // The same answers without checkpoints.
    let log = Log::open_blocking(
        dir.path(),
        fixture_options().checkpoints(CheckpointMode::Off),
    )
    .unwrap();
    assert_eq!(log.read("exec-0").unwrap().len(), 41);
    log.close().unwrap();
}
