//! Real kernel file systems under the tests: loop-mounted ext4 and XFS images a test can pull
//! out from under the log (`FS_IOC_SHUTDOWN` without a journal flush: a power cut as the file
//! system sees it), and thin-provisioned images whose backing store runs out of space, so
//! that the kernel's writeback of data fails for real.
//!
//! Invariants: whatever is mounted here is unmounted when its value is dropped, also when a
//! test panics (lazily, if something still holds it); loop devices come from `mount -o loop`,
//! which detaches them on unmount, or, for a thin disk, are attached here and detached on
//! drop after the unmount. Setup needs root, loop devices, `mkfs.<kind>` (and, for a
//! thin disk, tmpfs, `fallocate` and `fstrim`); where something is missing a constructor
//! returns [`Unavailable`] and the test calls [`skip`].

use std::io::Write;
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
///
/// With `SEGLOG_REQUIRE_LOOP=1` (set by `.ci/run` where it runs as root with
/// `/dev/loop-control`) the skip is a failure instead, so that a broken setup cannot look
/// green where these tests are meant to run.
pub fn skip(test: &str, why: &Unavailable) {
    let required = std::env::var_os("SEGLOG_REQUIRE_LOOP").is_some_and(|v| v == "1");
    assert!(
        !required,
        "SEGLOG_REQUIRE_LOOP=1, but {test} cannot set up its file system: {}",
        why.0
    );
    eprintln!(
        "SKIPPED: {test} needs root, loop devices, tmpfs and mkfs.ext4/mkfs.xfs ({})",
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

    /// Makes the file system on `image`, with mkfs's default block size or, with
    /// `page_blocks`, 4 KiB blocks (one block per page, and per page of a tmpfs under it).
    fn mkfs(self, image: &Path, page_blocks: bool) -> Result<(), Unavailable> {
        let image = path_str(image)?;
        match self {
            // No lazy initialisation: nothing writes in the background behind the test's back.
            FsKind::Ext4 => {
                let mut args = vec!["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"];
                if page_blocks {
                    args.extend(["-b", "4096"]);
                }
                args.push(image);
                run("mkfs.ext4", &args)
            }
            FsKind::Xfs => {
                let mut args = vec!["-q", "-f"];
                if page_blocks {
                    args.extend(["-b", "size=4096"]);
                }
                args.push(image);
                run("mkfs.xfs", &args)
            }
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

/// A loop-mounted image of an ext4 or XFS file system, unmounted (and its loop device
/// detached) when dropped.
#[derive(Debug)]
pub struct LoopMount {
    kind: FsKind,
    image: PathBuf,
    mount_point: PathBuf,
    mounted: bool,
    /// A loop device attached by [`LoopMount::attach`]; otherwise `mount -o loop` attaches
    /// one at each mount and detaches it at unmount.
    device: Option<String>,
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
        make_image(kind, mib, &image, false)?;
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
            device: None,
            _scratch: scratch,
        })
    }

    /// Attaches a loop device of its own to the image (detached on drop) and limits its
    /// requests to one page (`max_sectors_kb` = 4).
    ///
    /// Why: the loop driver reports a short write to its backing file as a full success
    /// (Linux 6.18: `lo_complete_rq` ends a WRITE whose `ret` is short but not negative with
    /// `BLK_STS_OK`). Over a backing store that runs out of space, a multi-page request whose
    /// first page fits and whose next does not is "written" with its tail lost: an fsync
    /// returns 0 for data that is not on the disk, which no disk does. With one-page requests
    /// (and one block per page) every write lands whole or fails.
    fn attach(&mut self) -> Result<(), Unavailable> {
        let out = Command::new("losetup")
            .args(["-f", "--show", path_str(&self.image)?])
            .output()
            .map_err(|e| Unavailable(format!("losetup: {e}")))?;
        if !out.status.success() {
            return Err(Unavailable(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let name = device.trim_start_matches("/dev/").to_owned();
        self.device = Some(device);
        let knob = format!("/sys/block/{name}/queue/max_sectors_kb");
        std::fs::write(&knob, "4").map_err(|e| Unavailable(format!("{knob}: {e}")))
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
            match &self.device {
                Some(device) => run("mount", &[device, &mount_point])?,
                None => run("mount", &["-o", "loop", &image, &mount_point])?,
            }
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

    fn image_mib(&self) -> u64 {
        std::fs::metadata(&self.image).map_or(0, |m| m.len() >> 20)
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
        if let Some(device) = self.device.take() {
            if let Err(e) = run("losetup", &["-d", &device]) {
                eprintln!("{e}");
            }
        }
    }
}

/// Makes an image file of `mib` MiB (at least [`FsKind::min_image_mib`]) with a file system.
fn make_image(kind: FsKind, mib: u64, image: &Path, page_blocks: bool) -> Result<(), Unavailable> {
    assert!(
        mib >= kind.min_image_mib(),
        "{kind} needs an image of at least {} MiB",
        kind.min_image_mib()
    );
    std::fs::File::create(image)
        .and_then(|f| f.set_len(mib << 20))
        .map_err(|e| Unavailable(format!("{}: {e}", image.display())))?;
    kind.mkfs(image, page_blocks)
}

/// A tmpfs of a fixed size, unmounted when dropped.
#[derive(Debug)]
struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    fn new(mib: u64) -> Result<Tmpfs, Unavailable> {
        let dir = tempfile::tempdir().map_err(|e| Unavailable(e.to_string()))?;
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m"),
                "seglog-pool",
                &dir.path().to_string_lossy(),
            ],
        )
        .map_err(Unavailable)?;
        Ok(Tmpfs { dir, mounted: true })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            unmount(self.dir.path());
        }
    }
}

/// An image on a tmpfs just larger than it: a thin-provisioned disk. The file system has
/// 4 KiB blocks and its loop device one-page requests (see `LoopMount::attach`). The
/// blocks it uses when it is made are backed (allocated in the tmpfs); its free blocks are
/// holes (`fstrim` punches them out through the loop device). So new data needs room in the tmpfs,
/// and after [`ThinDisk::exhaust`] the kernel's writeback of new data fails — the loop
/// device's write to the tmpfs returns ENOSPC, it fails the request (`BLK_STS_NOSPC`), and
/// `fdatasync` returns ENOSPC — while
/// overwrites of backed blocks (journal, inode tables, bitmaps, data written earlier) still
/// succeed: the file system itself stays healthy.
#[derive(Debug)]
pub struct ThinDisk {
    // Field order is drop order: the image is unmounted before its tmpfs.
    fs: LoopMount,
    pool: Tmpfs,
}

/// Room in the tmpfs beyond the image, in MiB.
const POOL_MARGIN_MIB: u64 = 16;

impl ThinDisk {
    /// Makes and mounts a thin `mib` MiB image of `kind`.
    ///
    /// # Errors
    /// [`Unavailable`] when this machine cannot (as [`LoopMount::new`], or no tmpfs,
    /// `fallocate` or `fstrim`).
    pub fn new(kind: FsKind, mib: u64) -> Result<ThinDisk, Unavailable> {
        require_root()?;
        let pool = Tmpfs::new(mib + POOL_MARGIN_MIB)?;
        let image = pool.path().join(format!("{kind}.img"));
        make_image(kind, mib, &image, true)?;
        // Back every block mkfs left as a hole: metadata must never be short of space.
        run(
            "fallocate",
            &["-l", &(mib << 20).to_string(), path_str(&image)?],
        )
        .map_err(Unavailable)?;
        let mut fs = LoopMount::unmounted(kind, image, pool.path().join("mnt"), None)?;
        fs.attach()?;
        fs.mount().map_err(Unavailable)?;
        // Then un-back the free blocks: new data is what needs room.
        run("fstrim", &[path_str(fs.path())?]).map_err(Unavailable)?;
        Ok(ThinDisk { fs, pool })
    }

    /// The file system on the image.
    pub fn fs(&self) -> &LoopMount {
        &self.fs
    }

    /// The same, to unmount and mount it.
    pub fn fs_mut(&mut self) -> &mut LoopMount {
        &mut self.fs
    }

    fn filler(&self) -> PathBuf {
        self.pool.path().join("filler")
    }

    /// Fills the tmpfs under the image until not one more page fits; returns the bytes it
    /// took. From now on writing a block of the image that is not backed fails.
    pub fn exhaust(&self) -> u64 {
        let mut file = match std::fs::File::create(self.filler()) {
            Ok(f) => f,
            Err(e) => panic!("{}: {e}", self.filler().display()),
        };
        let limit = (self.fs.image_mib() + POOL_MARGIN_MIB) << 20;
        let mut total = 0u64;
        // Big chunks first, then single pages: ENOSPC on a page-sized write means no page is
        // left (tmpfs allocates whole pages).
        for chunk in [1usize << 20, 4096] {
            let buf = vec![0xa5u8; chunk];
            loop {
                match file.write(&buf) {
                    Ok(n) => total += n as u64,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling the tmpfs: {e}"),
                }
                assert!(total <= limit, "the tmpfs took more than its size");
            }
        }
        total
    }

    /// Removes what [`ThinDisk::exhaust`] wrote: the image's writes succeed again.
    pub fn replenish(&self) {
        if let Err(e) = std::fs::remove_file(self.filler()) {
            panic!("{}: {e}", self.filler().display());
        }
    }
}

/// Drops the clean page-cache pages of every file in `dir` (`POSIX_FADV_DONTNEED`), so the
/// next read of them comes from the disk. Pages that are dirty or mapped by a live process
/// stay.
pub fn evict_page_cache(dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let advised = std::fs::File::open(&path).and_then(|f| {
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).map_err(Into::into)
        });
        if let Err(e) = advised {
            panic!("fadvise DONTNEED {}: {e}", path.display());
        }
    }
}
