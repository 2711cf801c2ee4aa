//! Review 138: a read-only open racing a live writer's roll is refused as corruption.
//!
//! A roll that creates its segment file (no prepared file: `prepare_next_segment` off, a
//! sync mode other than `Always`, no preallocation, or a roll before the prepared file is
//! ready) does `create_new`, then writes the header, syncs, and only then appends records.
//! `snapshot::attempt_once` reads the last file's header through its handle, and only later
//! (review 137) reads the bytes after the header's place through the same handle to tell a
//! creation under way from a damaged header. A reader that reads the header while the file is
//! still empty (`HeaderDefect::Short`) and is then descheduled while the writer finishes the
//! roll and acknowledges an append in the new segment finds bytes after the header's place,
//! and fails the whole read-only open (or reload, or backup) with `Error::Corruption`
//! ("... short"), for a healthy log whose writer is simply rolling. Design.md promises that a
//! file being created by a roll "makes no segment sealed" and a reader never errs on an append
//! in flight; no retry is made, as the error is not `Ok(None)` ("the directory changed").
//!
//! The race is made deterministic with a file system wrapper: the writer's thread stops right
//! after its `create_new` of the new segment; the reader's header read sees the empty file;
//! the reader's `written_data_end` on that file (the start of `written_zeros_from`) lets the
//! writer finish the roll and acknowledge one append, then goes on. On e0af5f7^ (the last
//! header-less file ignored whatever it held) the test passes: a regression of review 137.
//!
//! Fixed: before refusing, the snapshot reads the header again; when it decodes now, the
//! directory changed under the attempt, which is taken again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{append_one, contents};
use seglog_segment::io::{FileIdentity, FileSystem, SegmentFile, StdFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Action = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Hooks {
    /// Armed: run once right after a `create_new` of a `.seg` file returned.
    after_create_seg: Mutex<Option<Action>>,
    /// The path that `create_new` made (where the reader's hook fires).
    created: Mutex<Option<PathBuf>>,
    /// Run once when a read-only handle of `created` is asked `written_data_end`.
    on_reader_data_end: Mutex<Option<Action>>,
    fired_reader: AtomicBool,
}

#[derive(Clone)]
struct HookFs {
    inner: StdFs,
    hooks: Arc<Hooks>,
}

struct HookFile {
    inner: <StdFs as FileSystem>::File,
    path: PathBuf,
    read_only: bool,
    hooks: Arc<Hooks>,
}

impl SegmentFile for HookFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn write_all_vectored_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        self.inner.write_all_vectored_at(parts, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn identity(&self) -> io::Result<FileIdentity> {
        self.inner.identity()
    }
    fn map(&self) -> io::Result<bytes::Bytes> {
        self.inner.map()
    }
    fn map_live(&self, len: u64) -> io::Result<Option<bytes::Bytes>> {
        self.inner.map_live(len)
    }
    fn written_data_end(&self, from: u64) -> io::Result<u64> {
        let ours = self.read_only
            && self.hooks.created.lock().unwrap().as_deref() == Some(self.path.as_path());
        if ours {
            let action = self.hooks.on_reader_data_end.lock().unwrap().take();
            if let Some(action) = action {
                action();
                self.hooks.fired_reader.store(true, Ordering::SeqCst);
            }
        }
        self.inner.written_data_end(from)
    }
    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.evict(offset, len)
    }
    fn will_need(&self, ranges: &[(u64, u64)]) -> io::Result<bool> {
        self.inner.will_need(ranges)
    }
    fn write_zeros(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.write_zeros(offset, len)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
}

impl HookFs {
    fn wrap(&self, inner: <StdFs as FileSystem>::File, path: &Path, read_only: bool) -> HookFile {
        HookFile {
            inner,
            path: path.to_path_buf(),
            read_only,
            hooks: self.hooks.clone(),
        }
    }
}

impl FileSystem for HookFs {
    type File = HookFile;
    type DirLock = <StdFs as FileSystem>::DirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        let f = self.inner.create_new(path)?;
        if path.extension().is_some_and(|e| e == "seg") {
            let action = self.hooks.after_create_seg.lock().unwrap().take();
            if let Some(action) = action {
                *self.hooks.created.lock().unwrap() = Some(path.to_path_buf());
                action();
            }
        }
        Ok(self.wrap(f, path, false))
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        let f = self.inner.open(path)?;
        Ok(self.wrap(f, path, false))
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        let f = self.inner.open_read_only(path)?;
        Ok(self.wrap(f, path, true))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename_no_replace(from, to)
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
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.absolute(path)
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

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 2048,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    }
}

#[test]
fn a_reader_racing_a_roll_is_refused_as_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let fs = HookFs {
        inner: StdFs,
        hooks: Arc::default(),
    };
    let (writer, _) = SegmentLog::open(fs.clone(), &dir, opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }

    // The writer's roll stops right after creating the new segment's file.
    let (created_tx, created_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go = Arc::new(Mutex::new(Some(go_tx)));
    let (acked_tx, acked_rx) = mpsc::channel::<()>();
    *fs.hooks.after_create_seg.lock().unwrap() = Some(Box::new(move || {
        created_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    }));
    // The reader, once it has read the (still empty) header, is descheduled while the roll
    // finishes and one append in the new segment is acknowledged.
    let go2 = go.clone();
    *fs.hooks.on_reader_data_end.lock().unwrap() = Some(Box::new(move || {
        go2.lock().unwrap().take().unwrap().send(()).unwrap();
        acked_rx.recv().unwrap();
    }));

    let writer = Arc::new(writer);
    let w = writer.clone();
    let rolling = std::thread::spawn(move || {
        w.roll().unwrap();
        let lsn = append_one(&w, 11).unwrap();
        acked_tx.send(()).unwrap();
        lsn
    });
    created_rx.recv().unwrap();

    let read = SegmentLog::open_read_only(fs.clone(), &dir, &mut ()).map(|(r, _)| contents(&r));
    // A reader that never looks past the new file's header (before review 137) lets the
    // roll go on here.
    let looked_past = fs.hooks.fired_reader.load(Ordering::SeqCst);
    if let Some(go) = go.lock().unwrap().take() {
        go.send(()).unwrap();
    }
    let lsn11 = rolling.join().unwrap();
    let acked = contents(&writer);
    assert_eq!(acked.last().unwrap().0, lsn11);

    // The log itself is fine: a fresh reader and the writer's next open both read it.
    let (again, _) = SegmentLog::open_read_only(StdFs, &dir, &mut ()).unwrap();
    assert!(acked.starts_with(&contents(&again)));
    drop(again);
    drop(writer);
    let (reopened, report) = SegmentLog::open(StdFs, &dir, opts(), &mut ()).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert_eq!(contents(&reopened), acked);

    match read {
        Ok(records) => assert!(acked.starts_with(&records)),
        Err(e) => panic!(
            "a read-only open racing the writer's roll refused a healthy log (the writer's \
             open and a fresh reader read all {} records; the reader read the new file's \
             header while it was empty, then its bytes after the roll: {looked_past}): {e}",
            acked.len()
        ),
    }
}
