//! Review 46: the directory check of `replace_segments` runs once, before the outputs are
//! mapped and the replacement manifest is written (create, write, fdatasync, directory
//! fsync, rename, directory fsync), all by path. A move of the log's directory in that span
//! (several system calls, two fsyncs: not "one system call" as `DirGuard` documents) commits
//! the first log's `REPLACE` manifest into the directory of the log opened at the old path.
//! That other log, which never compacted anything, then refuses to open: its recovery
//! carries out the first log's manifest and finds its outputs missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use parking_lot::Mutex;
use seglog::{Log, Options};
use seglog_segment::format::MANIFEST_TEMP_FILE_NAME;
use seglog_segment::io::{FileIdentity, FileSystem, StdFs};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Hook = Box<dyn FnOnce() + Send>;

/// `StdFs`, running `hook` once, just before the first replacement manifest is created.
#[derive(Clone)]
struct MoveOnManifest {
    inner: StdFs,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl FileSystem for MoveOnManifest {
    type File = <StdFs as FileSystem>::File;
    type DirLock = <StdFs as FileSystem>::DirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        if path.file_name().and_then(|n| n.to_str()) == Some(MANIFEST_TEMP_FILE_NAME) {
            if let Some(hook) = self.hook.lock().take() {
                hook();
            }
        }
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
    fn remove(&self, path: &Path) -> io::Result<()> {
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
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        self.inner.identity(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
    fn zeroes_ahead(&self) -> bool {
        self.inner.zeroes_ahead()
    }
}

fn options() -> Options {
    Options::default().segment_size_bytes(64 << 10)
}

#[test]
fn a_move_during_the_replacement_commit_leaves_the_other_log_openable() {
    let root = tempfile::tempdir().unwrap();
    let old: PathBuf = root.path().join("log");
    let moved: PathBuf = root.path().join("moved");
    let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
    let fs = MoveOnManifest {
        inner: StdFs,
        hook: hook.clone(),
    };
    let first = Log::open_with_fs(fs, &old, options()).unwrap();
    let payload = vec![5u8; 1000];
    for i in 0..200 {
        let (exec, tenant) = if i % 2 == 0 { ("a", "x") } else { ("b", "y") };
        first.append_blocking(exec, tenant, &payload).unwrap();
    }
    assert!(first.segments().len() > 2);

    // The move, and another log opened at the old path, while the compaction commits.
    {
        let (old, moved) = (old.clone(), moved.clone());
        *hook.lock() = Some(Box::new(move || {
            std::fs::rename(&old, &moved).unwrap();
            let second = Log::open_blocking(&old, options()).unwrap();
            for _ in 0..10 {
                second.append_blocking("c", "t", b"other log").unwrap();
            }
            second.close().unwrap();
        }));
    }
    let view = first.compaction_view(false).unwrap();
    let plan = seglog_compact::policy::drop_tenant(&view, "y");
    let outcome = first.compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {});
    assert!(hook.lock().is_none(), "the hook ran");
    drop(first);

    let leftovers: Vec<String> = std::fs::read_dir(&old)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // A committed manifest (`REPLACE`) would be carried out by the other log's open. A
        // temp manifest created in the window between the check and its creation is
        // discarded by that open, as a crashed compaction's is (it holds nothing committed).
        .filter(|n| n == "REPLACE")
        .collect();
    let second = Log::open_blocking(&old, options()).map_err(|e| e.to_string());
    assert!(
        leftovers.is_empty() && second.is_ok(),
        "the first log's compaction (outcome: {:?}) left {leftovers:?} in the other log's \
         directory; the other log's open: {:?}",
        outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        second.as_ref().map(|_| ())
    );
    let second = second.unwrap();
    assert_eq!(second.read("c").unwrap().len(), 10);
    second.close().unwrap();
}
