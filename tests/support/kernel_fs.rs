//! Real kernel file systems under the tests: loop-mounted ext4 and XFS images a test can pull
//! out from under the log (`FS_IOC_SHUTDOWN` without a journal flush: a power cut as the file
//! system sees it).
//!
//! Invariants: whatever is mounted here is unmounted when its value is dropped, also when a
//! test panics (lazily, if something still holds it); loop devices come from `mount -o loop`,
//! which detaches them on unmount. Setup needs root, loop devices and `mkfs.<kind>`; where
//! something is missing a constructor returns [`Unavailable`] and the test calls [`skip`].

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `FS_IOC_SHUTDOWN` = `_IOR('X', 125, __u32)`; XFS's `XFS_IOC_GOINGDOWN` is the same number.
const FS_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
/// `FS_GOING_DOWN_NOLOGFLUSH` (XFS: `XFS_FSOP_GOING_FLAGS_NOLOGFLUSH`): stop at once, neither
/// writing back dirty pages nor committing the journal.
const FS_GOING_DOWN_NOLOGFLUSH: u32 = 2;

/// Why a file system cannot be set up here: not root, no loop device, no mkfs, …
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

/// Says why `test` does not run here. The one place that decides what an unavailable setup
/// means for a test: today it skips (and passes).
pub fn skip(test: &str, why: &Unavailable) {
    eprintln!(
        "SKIPPED: {test} needs root, loop devices and mkfs.ext4/mkfs.xfs ({})",
        why.0
    );
}

/// The file systems the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext4 (mkfs defaults: 1 KiB blocks below 512 MiB), no lazy initialisation.
    Ext4,
    /// XFS (mkfs defaults).
    Xfs,
}

impl FsKind {
    /// `ext4` or `xfs`.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    /// The smallest image mkfs accepts, in MiB. xfsprogs refuses file systems under 300 MiB
    /// since 5.19 ("Filesystem must be larger than 300MB"; 6.1.0 checked on 2026-11-30).
    pub fn min_image_mib(self) -> u64 {
        match self {
            FsKind::Ext4 => 16,
            FsKind::Xfs => 300,
        }
    }

    fn mkfs(self, image: &Path) -> Result<(), Unavailable> {
        let image = path_str(image)?;
        match self {
            // No lazy initialisation: nothing writes in the background behind the test's back.
            FsKind::Ext4 => run(
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-E",
                    "lazy_itable_init=0,lazy_journal_init=0",
                    image,
                ],
            ),
            FsKind::Xfs => run("mkfs.xfs", &["-q", "-f", image]),
        }
        .map_err(Unavailable)
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn path_str(path: &Path) -> Result<&str, Unavailable> {
    path.to_str()
        .ok_or_else(|| Unavailable(format!("path is not UTF-8: {}", path.display())))
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

fn require_root() -> Result<(), Unavailable> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(Unavailable("not root".into()))
    }
}

/// Unmounts `mount_point`, lazily if it is busy (a process still holds a file there).
fn unmount(mount_point: &Path) {
    let p = mount_point.to_string_lossy();
    if let Err(e) = run("umount", &[&p]) {
        eprintln!("{e}: unmounting lazily");
        let _ = run("umount", &["-l", &p]);
    }
}

/// A loop-mounted image of an ext4 or XFS file system, unmounted when dropped.
#[derive(Debug)]
pub struct LoopMount {
    kind: FsKind,
    image: PathBuf,
    mount_point: PathBuf,
    mounted: bool,
    /// Holds the image and the mount point when [`LoopMount::new`] made them.
    _scratch: Option<tempfile::TempDir>,
}

impl LoopMount {
    /// Makes an image of `mib` MiB (at least [`FsKind::min_image_mib`]) in a temporary
    /// directory and mounts it.
    ///
    /// # Errors
    /// [`Unavailable`] when this machine cannot: not root, no mkfs, no loop device.
    pub fn new(kind: FsKind, mib: u64) -> Result<LoopMount, Unavailable> {
        require_root()?;
        let scratch = tempfile::tempdir().map_err(|e| Unavailable(e.to_string()))?;
        let image = scratch.path().join(format!("{kind}.img"));
        let mount_point = scratch.path().join("mnt");
        make_image(kind, mib, &image)?;
        let mut fs = LoopMount::unmounted(kind, image, mount_point, Some(scratch))?;
        fs.mount().map_err(Unavailable)?;
        Ok(fs)
    }

    fn unmounted(
        kind: FsKind,
        image: PathBuf,
        mount_point: PathBuf,
        scratch: Option<tempfile::TempDir>,
    ) -> Result<LoopMount, Unavailable> {
        std::fs::create_dir_all(&mount_point).map_err(|e| Unavailable(e.to_string()))?;
        Ok(LoopMount {
            kind,
            image,
            mount_point,
            mounted: false,
            _scratch: scratch,
        })
    }

    /// The file system's kind.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Mounts the image (after [`LoopMount::unmount`]); ext4 and XFS replay their journals.
    ///
    /// # Errors
    /// The output of a failed `mount`.
    pub fn mount(&mut self) -> Result<(), String> {
        if !self.mounted {
            let image = self.image.to_string_lossy();
            let mount_point = self.mount_point.to_string_lossy();
            run("mount", &["-o", "loop", &image, &mount_point])?;
            self.mounted = true;
        }
        Ok(())
    }

    /// Unmounts (lazily if busy); the page cache of its files goes with it.
    pub fn unmount(&mut self) {
        if self.mounted {
            unmount(&self.mount_point);
            self.mounted = false;
        }
    }

    /// Pulls the plug: `FS_IOC_SHUTDOWN` with `FS_GOING_DOWN_NOLOGFLUSH`. Dirty pages and the
    /// uncommitted journal are lost; every later operation on the file system fails until it
    /// is unmounted and mounted again.
    pub fn shut_down(&self) {
        let dir = match std::fs::File::open(&self.mount_point) {
            Ok(dir) => dir,
            Err(e) => panic!("{}: {e}", self.mount_point.display()),
        };
        let flags: u32 = FS_GOING_DOWN_NOLOGFLUSH;
        // SAFETY: FS_IOC_SHUTDOWN reads one u32 through the pointer, which points at a live
        // local; the descriptor is open for the duration of the call.
        #[allow(unsafe_code)]
        let rc =
            unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_SHUTDOWN as _, &flags as *const u32) };
        assert_eq!(
            rc,
            0,
            "FS_IOC_SHUTDOWN on {}: {}",
            self.kind,
            std::io::Error::last_os_error()
        );
    }

    /// `syncfs`: writes back every dirty page and metadata block of the file system.
    pub fn sync(&self) {
        if let Err(e) = run("sync", &["-f", &self.mount_point.to_string_lossy()]) {
            panic!("{e}");
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Makes an image file of `mib` MiB (at least [`FsKind::min_image_mib`]) with a file system.
fn make_image(kind: FsKind, mib: u64, image: &Path) -> Result<(), Unavailable> {
    assert!(
        mib >= kind.min_image_mib(),
        "{kind} needs an image of at least {} MiB",
        kind.min_image_mib()
    );
    std::fs::File::create(image)
        .and_then(|f| f.set_len(mib << 20))
        .map_err(|e| Unavailable(format!("{}: {e}", image.display())))?;
    kind.mkfs(image)
}
