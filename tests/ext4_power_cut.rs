//! Power cuts and a full disk on a real kernel file system.
//!
//! A small ext4 image is loop-mounted; a child process appends from 8 threads and reports each
//! acknowledgement; at a random moment the test calls the `FS_IOC_SHUTDOWN` ioctl with
//! `FS_GOING_DOWN_NOLOGFLUSH` — ext4 stops at once, neither writing back dirty pages nor
//! committing its journal, as if the power went — then unmounts, remounts (the journal
//! replays what was committed) and checks every acknowledged event. And: a log on an image too
//! small for it must fail appends with a typed error, keep every acknowledged event, and
//! still open.
//!
//! Needs root and loop devices; elsewhere each test says why it skips and passes. CI runs as
//! root. `SEGLOG_EXT4_CYCLES=100` runs a longer power-cut series.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use seglog::{Log, Options};
use seglog_tests::{check_acks, check_erased, crash_options, missing, run_child_until};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `FS_IOC_SHUTDOWN` = `_IOR('X', 125, __u32)`.
const FS_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
/// Shut down without flushing the journal: the closest thing to pulling the plug.
const FS_GOING_DOWN_NOLOGFLUSH: u32 = 2;

/// A loop-mounted ext4 image, unmounted (lazily, if need be) when dropped.
struct Ext4 {
    image: PathBuf,
    mount: PathBuf,
    mounted: bool,
    _dir: tempfile::TempDir,
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Ext4 {
    /// Makes and mounts an image of `mib` MiB, or says why it cannot.
    fn new(mib: u64) -> Result<Ext4, String> {
        if unsafe_free_geteuid() != 0 {
            return Err("not root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| e.to_string())?;
        // No lazy initialisation: nothing writes in the background behind the test's back.
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                image.to_str().unwrap(),
            ],
        )?;
        let mut fs = Ext4 {
            image,
            mount,
            mounted: false,
            _dir: dir,
        };
        fs.mount()?;
        Ok(fs)
    }

    fn mount(&mut self) -> Result<(), String> {
        run(
            "mount",
            &[
                "-o",
                "loop",
                self.image.to_str().unwrap(),
                self.mount.to_str().unwrap(),
            ],
        )?;
        self.mounted = true;
        Ok(())
    }

    fn unmount(&mut self) {
        if self.mounted {
            let _ = run("umount", &[self.mount.to_str().unwrap()])
                .or_else(|_| run("umount", &["-l", self.mount.to_str().unwrap()]));
            self.mounted = false;
        }
    }

    /// Pulls the plug on the file system.
    fn shut_down(&self) {
        let dir = std::fs::File::open(&self.mount).unwrap();
        let flags: u32 = FS_GOING_DOWN_NOLOGFLUSH;
        use std::os::fd::AsRawFd;
        // SAFETY: FS_IOC_SHUTDOWN reads one u32 through the pointer, which points at a live
        // local; the descriptor is open for the duration of the call.
        #[allow(unsafe_code)]
        let rc =
            unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_SHUTDOWN as _, &flags as *const u32) };
        assert_eq!(
            rc,
            0,
            "FS_IOC_SHUTDOWN failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn unsafe_free_geteuid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(u32::MAX)
}

/// Power cuts per test: 6, or `SEGLOG_EXT4_CYCLES`.
fn cycles() -> usize {
    std::env::var("SEGLOG_EXT4_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// A test that cannot set up its file system passes, saying why on stderr; unless
/// `SEGLOG_REQUIRE_LOOP=1` (set by `.ci/run` where it runs as root with
/// `/dev/loop-control`), which makes the skip a failure, so that a broken setup cannot look
/// green where these tests are meant to run.
fn skip(why: &str) {
    let required = std::env::var_os("SEGLOG_REQUIRE_LOOP").is_some_and(|v| v == "1");
    assert!(
        !required,
        "SEGLOG_REQUIRE_LOOP=1, but this test cannot set up its file system: {why}"
    );
    eprintln!("SKIPPED: this test needs root, loop devices and mkfs.ext4 ({why})");
}

#[test]
fn acknowledged_appends_survive_an_ext4_shutdown() {
    let mut fs = match Ext4::new(256) {
        Ok(fs) => fs,
        Err(why) => return skip(&why),
    };
    let cycles = cycles();
    let dir = fs.mount.join("log");
    let mut rng = rand::rng();
    let mut all_acks = Vec::new();
    let mut racing_acks = Vec::new();
    let mut racing_lost = 0;
    for cycle in 0..cycles {
        let run_for = Duration::from_millis(rng.random_range(50..500));
        let acks = run_child_until(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &[],
            run_for,
            || fs.shut_down(),
        );
        // Only acks seen before the shutdown are evidence (see `Acks::after_cut`).
        all_acks.extend(acks.before_cut);
        racing_acks.extend(acks.after_cut);
        fs.unmount();
        fs.mount().unwrap();
        // What recovery is about to see, kept for the diagnosis if a check fails.
        let before = last_segment_snapshot(&dir);
        let log = Log::open_blocking(&dir, crash_options()).unwrap_or_else(|e| {
            panic!("cycle {cycle}: the log does not open after the power cut: {e}")
        });
        let what = format!("cycle {cycle}");
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_acks(&log, &all_acks, &what)
        }));
        if let Err(e) = checked {
            eprintln!(
                "{what}: recovery {:?}\n{}",
                log.stats().recovery,
                describe(&before)
            );
            std::panic::resume_unwind(e);
        }
        racing_lost += missing(&log, &racing_acks);
        racing_acks.clear();
        log.close().unwrap();
    }
    assert!(
        all_acks.len() > 50,
        "only {} appends were acknowledged",
        all_acks.len()
    );
    eprintln!(
        "{cycles} ext4 power cuts, {} acknowledged appends checked; of the acks printed while \
         the shutdown raced them, {racing_lost} were not on disk",
        all_acks.len()
    );
}

#[test]
fn compaction_survives_an_ext4_shutdown_and_erased_data_stays_gone() {
    let mut fs = match Ext4::new(256) {
        Ok(fs) => fs,
        Err(why) => return skip(&why),
    };
    let cycles = cycles();
    let dir = fs.mount.join("log");
    let mut rng = rand::rng();
    let (mut all_acks, mut erased) = (Vec::new(), Vec::new());
    for cycle in 0..cycles {
        let run_for = Duration::from_millis(rng.random_range(100..600));
        let acks = run_child_until(
            env!("CARGO_BIN_EXE_seglog-crash-child"),
            &dir,
            &["--compact"],
            run_for,
            || fs.shut_down(),
        );
        // Only what was printed before the shutdown is evidence (see `Acks::after_cut`).
        all_acks.extend(acks.before_cut);
        erased.extend(acks.erased_before_cut);
        fs.unmount();
        fs.mount().unwrap();
        let log = Log::open_blocking(&dir, crash_options()).unwrap_or_else(|e| {
            panic!("cycle {cycle}: the log does not open after the power cut: {e}")
        });
        let what = format!("cycle {cycle}");
        check_acks(&log, &all_acks, &what);
        check_erased(&log, &dir, &erased, &what);
        log.close().unwrap();
    }
    assert!(!erased.is_empty(), "no compaction finished before a cut");
    eprintln!(
        "{cycles} ext4 power cuts during compactions: {} acknowledged appends and {} erasures checked",
        all_acks.len(),
        erased.len()
    );
}

#[test]
fn a_full_disk_fails_appends_cleanly_and_keeps_what_was_acknowledged() {
    let mut fs = match Ext4::new(24) {
        Ok(fs) => fs,
        Err(why) => return skip(&why),
    };
    let dir = fs.mount.join("log");
    let opts = Options {
        segment_size_bytes: 1 << 20,
        ..Options::default()
    };
    let log = Log::open_blocking(&dir, opts.clone()).unwrap();
    let payload = vec![b'z'; 2000];
    let mut acked = 0u64;
    let err = loop {
        match log.append_blocking("e", "t", &payload) {
            Ok(seq) => acked = seq,
            Err(e) => break e,
        }
        assert!(acked < 1_000_000, "the disk never filled");
    };
    assert!(acked > 1000, "the disk filled after only {acked} appends");
    // Typed: poisoned by the failed write, fsync or segment creation, or an I/O error.
    assert!(
        err.is_poisoned()
            || matches!(
                err,
                seglog::Error::Segment(seglog_segment::Error::Io { .. })
            ),
        "{err}"
    );
    assert!(
        log.append_blocking("e", "t", b"more").is_err(),
        "appends after the failure must fail"
    );
    drop(log);
    // The disk is still full: the log opens anyway, with everything acknowledged.
    fs.unmount();
    fs.mount().unwrap();
    let log = Log::open_blocking(&dir, opts).unwrap();
    assert_eq!(log.latest_seq("e").unwrap(), Some(acked));
    let events = log.read("e").unwrap();
    assert!(events.iter().all(|e| e.payload.len() == 2000));
    eprintln!("full disk after {acked} acknowledged appends: {err}");
}

/// The last segment file's name and bytes.
fn last_segment_snapshot(dir: &std::path::Path) -> (String, Vec<u8>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".seg"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let name = names.pop().unwrap_or_default();
    let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
    (name, bytes)
}

/// The end of a segment as recovery saw it: the last records, the damage, and every valid
/// record after the damage with its durability hint.
fn describe((name, bytes): &(String, Vec<u8>)) -> String {
    use seglog_segment::format::{decode_record, RecordScan};
    let a = seglog_segment::inspect::analyze_segment(bytes, 0);
    let mut out = format!(
        "{name}: {} bytes, {} valid records, last LSN {}, data end {}, damage {:?}\n",
        bytes.len(),
        a.record_offsets.len(),
        a.last_lsn,
        a.data_end,
        a.damage
    );
    for &off in a.record_offsets.iter().rev().take(4).rev() {
        if let Some(r) = a.record(bytes, off) {
            out += &format!(
                "  @{off} lsn {} durable_through {} {} seq {}..{}\n",
                r.lsn(),
                r.durable_through_lsn(),
                String::from_utf8_lossy(r.execution_id()),
                r.first_seq(),
                r.last_seq()
            );
        }
    }
    let salt = a.header.as_ref().map_or(0, |h| h.segment_number);
    let nonzero = bytes[a.data_end as usize..]
        .iter()
        .filter(|&&b| b != 0)
        .count();
    out += &format!("  non-zero bytes after the data end: {nonzero}\n");
    for at in a.data_end as usize + 1..bytes.len().saturating_sub(48) {
        if let RecordScan::Record(r) =
            decode_record(&bytes[at..], salt, a.last_lsn + 1, bytes.len() as u64)
        {
            out += &format!(
                "  after the damage @{at}: lsn {} durable_through {} {} seq {}..{}\n",
                r.lsn(),
                r.durable_through_lsn(),
                String::from_utf8_lossy(r.execution_id()),
                r.first_seq(),
                r.last_seq()
            );
        }
    }
    out
}
