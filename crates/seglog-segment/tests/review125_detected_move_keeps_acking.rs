//! Review 125: `open_overlap_file` now *detects* a directory move in a roll (the second
//! handle, opened by path, is another log's file) but only logs a warning and goes on: the
//! roll then makes the new segment's name durable with `sync_dir(&self.dir)` — by path, so it
//! syncs the other log's directory, never the one that holds the new segment — and the log
//! keeps acknowledging records in a segment whose directory entry is not durable.
//! `overlap_handle_identity.rs` enshrines exactly this ("A still works, from the moved
//! directory, without a second handle"). After a power cut the whole segment, with every
//! record acknowledged into it, is gone.
//!
//! SimFs never renames a directory, so the move is simulated by a wrapper that maps the
//! log's path onto simulated directories (`/d1`, then `/d2`) and remaps it at the trap: the
//! directory identity the log checks (`SimFs::identity` of a directory hashes its path)
//! changes exactly as `stat` would after a real `rename(2)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tenant_batch;

use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileIdentity, FileSystem};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Action = Box<dyn FnOnce() + Send>;
/// (LSN, payload) of each acknowledged record.
type Acked = Vec<(u64, Vec<u8>)>;

/// SimFs with directory "moves": virtual path prefixes mapped onto simulated directories.
#[derive(Clone)]
struct MoveFs {
    sim: SimFs,
    map: Arc<Mutex<Vec<(PathBuf, PathBuf)>>>,
    trap_open: PathBuf,
    action: Arc<Mutex<Option<Action>>>,
    fired: Arc<AtomicBool>,
}

impl MoveFs {
    fn real(&self, p: &Path) -> PathBuf {
        let map = self.map.lock().unwrap();
        let best = map
            .iter()
            .filter(|(v, _)| p.starts_with(v))
            .max_by_key(|(v, _)| v.as_os_str().len());
        match best {
            Some((v, r)) => r.join(p.strip_prefix(v).unwrap()),
            None => p.to_path_buf(),
        }
    }
    fn map_to(&self, virt: &str, real: &str) {
        let mut map = self.map.lock().unwrap();
        map.retain(|(v, _)| v != Path::new(virt));
        map.push((virt.into(), real.into()));
    }
}

impl FileSystem for MoveFs {
    type File = <SimFs as FileSystem>::File;
    type DirLock = <SimFs as FileSystem>::DirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(&self.real(dir))
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.sim.create_new(&self.real(path))
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        if path == self.trap_open {
            let action = self.action.lock().unwrap().take();
            if let Some(action) = action {
                action();
                self.fired.store(true, Ordering::SeqCst);
            }
        }
        self.sim.open(&self.real(path))
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        self.sim.open_read_only(&self.real(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(&self.real(from), &self.real(to))
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename_no_replace(&self.real(from), &self.real(to))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.sim.remove(&self.real(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sim.sync_dir(&self.real(dir))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list(&self.real(dir))
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        self.sim.lock_dir(&self.real(dir))
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.hard_link(&self.real(from), &self.real(to))
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.sim.link_count(&self.real(path))
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }
    fn zeroes_ahead(&self) -> bool {
        self.sim.zeroes_ahead()
    }
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        self.sim.identity(&self.real(path))
    }
}

fn record(i: u8) -> Vec<Vec<u8>> {
    vec![vec![i.max(1); 64 << 10]]
}

/// As `overlap_handle_identity.rs`: rounds may overlap (the default `overlap_min_records`,
/// `SyncMode::Always`), so a roll opens the new segment's second handle by path.
fn options() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 256 << 10,
        zero_ahead_bytes: 0,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    }
}

/// The name of the second segment of a log of these records.
fn first_roll_name() -> String {
    let sim = SimFs::new();
    let dir = Path::new("/probe");
    let (log, _) = SegmentLog::open(sim.clone(), dir, options(), &mut ()).unwrap();
    for i in 0..1000u32 {
        let segs: Vec<String> = sim
            .file_names(dir)
            .into_iter()
            .filter(|n| n.ends_with(seglog_segment::format::SEGMENT_SUFFIX))
            .collect();
        if segs.len() > 1 {
            return segs[1].clone();
        }
        log.append(&tenant_batch(b"probe", &record(i as u8)))
            .unwrap();
    }
    panic!("the probe never rolled");
}

#[test]
fn a_roll_that_sees_its_second_handle_is_another_logs_file_keeps_acknowledging_records_a_power_cut_takes(
) {
    let name = first_roll_name();
    let sim = SimFs::new();
    let fs = MoveFs {
        sim: sim.clone(),
        map: Arc::default(),
        trap_open: PathBuf::from("/log").join(&name),
        action: Arc::default(),
        fired: Arc::default(),
    };
    fs.map_to("/log", "/d1");
    let b_acked: Arc<Mutex<Acked>> = Arc::default();
    let action: Action = {
        let (fs, name, b_acked) = (fs.clone(), name.clone(), b_acked.clone());
        Box::new(move || {
            // `mv /log /moved`; tenant B's log is opened at `/log` (a new directory) and
            // written until it has a segment of the name A's roll just created.
            fs.map_to("/moved", "/d1");
            fs.map_to("/log", "/d2");
            let (b, _) = SegmentLog::open(fs.clone(), "/log", options(), &mut ()).unwrap();
            for i in 0..1000u32 {
                if fs.sim.read_file(&Path::new("/d2").join(&name)).is_some() {
                    break;
                }
                let p = record(200u8.wrapping_add(i as u8));
                let lsn = b.append(&tenant_batch(b"tenant-b", &p)).unwrap().lsn;
                b_acked.lock().unwrap().push((lsn, p[0].clone()));
            }
            b.close().unwrap();
        })
    };
    *fs.action.lock().unwrap() = Some(action);

    let (a, _) = SegmentLog::open(fs.clone(), "/log", options(), &mut ()).unwrap();
    let mut a_acked = Vec::new();
    let mut after = 0;
    for i in 0..1000u32 {
        if fs.fired.load(Ordering::SeqCst) {
            after += 1;
            if after > 4 {
                break;
            }
        }
        let p = record(i as u8);
        match a.append(&tenant_batch(b"tenant-a", &p)) {
            Ok(r) => a_acked.push((r.lsn, p[0].clone())),
            Err(e) => {
                eprintln!("A's append failed after the move (as it should): {e}");
                break;
            }
        }
    }
    assert!(fs.fired.load(Ordering::SeqCst), "A never rolled");
    let first_of_new_segment: u64 = name
        .trim_end_matches(seglog_segment::format::SEGMENT_SUFFIX)
        .parse()
        .unwrap_or(0);
    let acked_in_new_segment = a_acked
        .iter()
        .filter(|(lsn, _)| *lsn >= first_of_new_segment)
        .count();

    // The power goes out while A runs (no close: nothing more may be needed for what was
    // acknowledged to survive).
    let after_cut = sim.crash(CrashMode::LoseUnsynced);
    let (a, _) = SegmentLog::open(after_cut.clone(), "/d1", options(), &mut ())
        .expect("A's log no longer opens");
    let got = common::contents(&a);
    assert!(
        got == a_acked,
        "A acknowledged {} records ({} of them in segment {name}, created just before the \
         move and kept after its second handle turned out to be tenant B's file), but only \
         {} read back after a power cut: the roll's directory fsync went by path to B's \
         directory, so {name}'s own entry was never durable. Files in A's directory now: {:?}",
        a_acked.len(),
        acked_in_new_segment,
        got.len(),
        after_cut.file_names(Path::new("/d1")),
    );
    let (b, _) = SegmentLog::open(after_cut, "/d2", options(), &mut ()).unwrap();
    assert_eq!(common::contents(&b), *b_acked.lock().unwrap());
}
