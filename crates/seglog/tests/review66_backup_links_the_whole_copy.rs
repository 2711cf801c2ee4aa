//! Review 66 (commit 3a28943): the salvage first renames a whole copy of the damaged sealed
//! segment over it, then removes the later segments, then cuts by copy. A read-only process's
//! backup taken between the first rename and the cut links the *whole copy* (it still has two
//! later segments, same header, same length). If the cut then fails (EIO here; a power cut
//! after the removals' dir fsync does the same), the copy is the log's last segment, and the
//! next default-mode open cuts its damaged tail in place: the backup's linked file changes.
//! Failed before the fix (the reviewer wrote it by reading; it was first run in main): a
//! last segment with other names is now cut by copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog::{Log, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// SimFs running `hook` once, at the salvage's first removal of a segment (after the whole
/// copy was renamed over the damaged one).
#[derive(Clone)]
struct AtFirstRemoval {
    inner: SimFs,
    hook: Hook,
}

impl seglog::io::FileSystem for AtFirstRemoval {
    type File = <SimFs as seglog::io::FileSystem>::File;
    type DirLock = <SimFs as seglog::io::FileSystem>::DirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.open_read_only(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename_no_replace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        if path.extension().is_some_and(|e| e == "seg") {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        self.inner.lock_dir(dir)
    }
    fn identity(&self, path: &Path) -> io::Result<seglog::io::FileIdentity> {
        self.inner.identity(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.absolute(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
}

#[test]
fn a_backup_linking_the_whole_copy_then_a_failed_cut_then_a_default_open_leaves_the_backup_whole() {
    let fs = SimFs::new();
    let (dir, dest) = (Path::new("/log"), Path::new("/backup"));
    let opts = common::small_inline_opts(RecoveryMode::TolerateTornTail);
    let log = Log::open_with_fs(fs.clone(), dir, opts.clone()).unwrap();
    for i in 0..120u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    let segs: Vec<PathBuf> = log.segments().into_iter().map(|s| s.path).collect();
    log.close().unwrap();
    // Damage in the last record of the second segment: a torn tail once it is last.
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    let a = analyze_segment(&bytes, 0);
    let last = *a.record_offsets.last().unwrap() as usize;
    bytes[last + (a.data_end as usize - last) / 2] ^= 0x04;
    fs.replace_file(&segs[1], bytes).unwrap();
    let linked = dest.join(segs[1].file_name().unwrap());

    let taken = Arc::new(Mutex::new(None));
    let hook = {
        let (fs, taken, linked) = (fs.clone(), taken.clone(), linked.clone());
        Box::new(move || {
            let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
            let report = reader.backup_blocking(dest).unwrap();
            *taken.lock().unwrap() = Some((report.segments_linked, fs.read_file(&linked)));
            drop(reader);
            // The salvage's cut fails: its create of SALVAGE.tmp.
            fs.inject(Fault {
                op: Some(Op::Create),
                nth: fs.op_count(Op::Create) + 1,
                kind: FaultKind::Eio,
                persistent: false,
            });
        }) as Box<dyn FnOnce() + Send>
    };
    let during = AtFirstRemoval {
        inner: fs.clone(),
        hook: Arc::new(Mutex::new(Some(hook))),
    };
    let salvage = Log::open_with_fs(
        during,
        dir,
        common::small_inline_opts(RecoveryMode::Salvage),
    );
    eprintln!(
        "salvage: {:?}",
        salvage.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    drop(salvage);
    fs.clear_faults();
    let (segments_linked, before) = taken.lock().unwrap().take().expect("the backup ran");
    let before = before.expect("the backup linked the damaged segment");
    eprintln!(
        "backup linked {segments_linked}; /log: {:?}",
        fs.file_names(dir)
    );

    let opened = Log::open_with_fs(fs.clone(), dir, opts.clone());
    eprintln!(
        "default open: {:?}",
        opened.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    if let Ok(log) = opened {
        log.close().unwrap();
    }
    let after = fs.read_file(&linked).unwrap();
    assert_eq!(
        (after.len(), after == before),
        (before.len(), true),
        "the backup's linked segment {} changed in place",
        linked.display()
    );
}
