//! `TrapFs`: a file system (real files, `StdFs`, unless told otherwise) with a one-shot
//! action sprung just before a chosen call on a chosen path (or just after its answer, only
//! on a chosen thread, or only at the call's nth time), for making a race (a directory moved
//! between two system calls of the log, a writer's open while a reader loads) happen at one
//! exact point.

use seglog_segment::io::{FileIdentity, FileSystem, StdFs};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The calls a trap can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    CreateNew,
    Open,
    OpenReadOnly,
    RenameNoReplace,
    Identity,
    /// After `identity` has answered (the check it serves has passed).
    AfterIdentity,
}

pub type Action = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct TrapFs<F = StdFs> {
    inner: F,
    call: Call,
    path: PathBuf,
    /// Only on the thread of this name, where set.
    thread: Option<&'static str>,
    /// Only at this matching call (1 for the first).
    nth: u32,
    seen: Arc<AtomicU32>,
    action: Arc<Mutex<Option<Action>>>,
    fired: Arc<AtomicBool>,
}

impl TrapFs {
    /// Springs `action` once, just before the first `call` on `path` (for a rename: to it).
    pub fn new(call: Call, path: PathBuf, action: Action) -> Self {
        TrapFs::over(StdFs, call, path, action)
    }
}

impl<F: FileSystem> TrapFs<F> {
    /// The same trap over another file system (the simulated one).
    pub fn over(inner: F, call: Call, path: PathBuf, action: Action) -> Self {
        TrapFs {
            inner,
            call,
            path,
            thread: None,
            nth: 1,
            seen: Arc::default(),
            action: Arc::new(Mutex::new(Some(action))),
            fired: Arc::default(),
        }
    }

    /// The same trap, sprung at the `nth` matching call instead of the first.
    pub fn at_nth(mut self, nth: u32) -> Self {
        self.nth = nth;
        self
    }

    /// The same trap, sprung only on the thread named `name`.
    pub fn on_thread(mut self, name: &'static str) -> Self {
        self.thread = Some(name);
        self
    }

    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn spring(&self, call: Call, path: &Path) {
        let on_thread = self
            .thread
            .is_none_or(|name| std::thread::current().name() == Some(name));
        if call == self.call
            && path == self.path
            && on_thread
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth
        {
            if let Some(action) = self.action.lock().unwrap().take() {
                action();
                self.fired.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl<F: FileSystem> FileSystem for TrapFs<F> {
    type File = F::File;
    type DirLock = F::DirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.spring(Call::CreateNew, path);
        self.inner.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        self.spring(Call::Open, path);
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        self.spring(Call::OpenReadOnly, path);
        self.inner.open_read_only(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.spring(Call::RenameNoReplace, to);
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
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.absolute(path)
    }
    fn zeroes_ahead(&self) -> bool {
        self.inner.zeroes_ahead()
    }
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        self.spring(Call::Identity, path);
        let answer = self.inner.identity(path);
        self.spring(Call::AfterIdentity, path);
        answer
    }
}
