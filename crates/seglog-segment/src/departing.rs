//! Logs of this process that are letting go of their directory: the last handle is gone
//! while a commit round a cancelled async append left behind still writes (on the log's
//! round runner), so the directory lock goes only when that round ends, a write and an
//! fdatasync later.
//!
//! The drop of the last handle does not wait for that round: the round may be waiting for
//! the dropping thread (a seal listener that takes a lock the dropper holds, or that waits
//! for a task of a current-thread runtime whose only thread is dropping; reviews 162–164),
//! and a drop that blocks on it stalls a program. Instead the log is registered here as
//! departing from its directory, until the lock is gone; an open of the same directory in
//! this process that finds it locked waits for the departure to end (at most
//! [`DEPARTURE_WAIT`]) and tries again. So a program that drops its log (and its runtime)
//! and reopens the directory finds it unlocked (reviews 153, 156–158), and nothing writes
//! into the directory for the new owner while the old round still does.
//!
//! Directories are told apart by their identity (device and inode, as `crate::DirGuard`
//! records it at open), so another spelling of the same directory (a symbolic link, `..`)
//! waits too.

use crate::io::{FileIdentity, FileSystem};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long an open waits for a departing log of this process to let go of its directory:
/// a round is one write and one fdatasync, far shorter, unless the disk stalls; then the
/// open reports the directory locked, as it is.
pub(crate) const DEPARTURE_WAIT: Duration = Duration::from_secs(10);

/// Directories that departing logs of this process still lock (one entry per log).
static DEPARTING: Mutex<Vec<FileIdentity>> = Mutex::new(Vec::new());
/// Rung whenever a departure ends.
static DEPARTED: Condvar = Condvar::new();

/// Marks a log as departing from its directory until dropped: drop it only once the log's
/// directory lock is gone.
pub(crate) struct Departure {
    dir: FileIdentity,
}

impl Departure {
    pub(crate) fn new(dir: FileIdentity) -> Departure {
        DEPARTING.lock().push(dir);
        Departure { dir }
    }
}

impl Drop for Departure {
    fn drop(&mut self) {
        let mut departing = DEPARTING.lock();
        if let Some(at) = departing.iter().position(|d| *d == self.dir) {
            departing.swap_remove(at);
        }
        drop(departing);
        DEPARTED.notify_all();
    }
}

/// Waits, at most `within`, for the logs of this process departing from `dir` to let go of
/// it. True when some were departing and none is any more (the lock may be free now); false
/// when none was, or one still is when the time is up.
pub(crate) fn wait_for(dir: FileIdentity, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut departing = DEPARTING.lock();
    if !departing.contains(&dir) {
        return false;
    }
    while departing.contains(&dir) {
        if DEPARTED.wait_until(&mut departing, deadline).timed_out() {
            return !departing.contains(&dir);
        }
    }
    true
}

/// Takes the writer's lock on the log directory `dir` ([`FileSystem::lock_dir`]). When a
/// log of this process that is letting go of the directory holds it (its last handle gone
/// while a commit round still writes), waits for that first, at most 10 s. Fails with
/// [`io::ErrorKind::WouldBlock`] while another writer holds it.
///
/// # Errors
/// As [`FileSystem::lock_dir`].
pub fn lock_log_dir<F: FileSystem + ?Sized>(fs: &F, dir: &Path) -> io::Result<F::DirLock> {
    loop {
        let refused = match fs.lock_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => e,
            locked => return locked,
        };
        let Ok(identity) = fs.identity(dir) else {
            return Err(refused);
        };
        if !wait_for(identity, DEPARTURE_WAIT) {
            // No departure (any more): one that ended after the refusal and before this
            // look let go of the lock first, so one more try tells.
            return fs.lock_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_waits_only_for_departures_from_its_own_directory() {
        let here = FileIdentity {
            device: u64::MAX,
            inode: 1,
        };
        let there = FileIdentity {
            device: u64::MAX,
            inode: 2,
        };
        assert!(
            !wait_for(here, Duration::from_secs(5)),
            "nothing departs yet"
        );
        let departure = Departure::new(here);
        let started = Instant::now();
        assert!(!wait_for(there, Duration::from_secs(5)));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited for another directory"
        );
        assert!(
            !wait_for(here, Duration::from_millis(50)),
            "still departing"
        );
        let ended = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(departure);
        });
        assert!(wait_for(here, Duration::from_secs(5)));
        ended.join().ok();
        assert!(!wait_for(here, Duration::from_secs(5)), "departed");
    }
}
