//! What a run costs besides time: the process's CPU and context switches
//! (`getrusage(RUSAGE_SELF)`: every thread, the peer's background threads and the harness's
//! writers alike), and the block device's request counters (`/sys/dev/block/MAJ:MIN/stat`)
//! and ext4 journal commits (`/proc/fs/jbd2/<dev>-8/info`), read before and after each run
//! as evidence of mechanism: how many writes and flushes the disk saw for the appends
//! acknowledged.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Process CPU time and context switches so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
    /// A thread gave up its CPU to wait (a futex sleep, an fsync): `ru_nvcsw`.
    pub voluntary_switches: u64,
    /// A thread was preempted while it could still run: `ru_nivcsw`.
    pub involuntary_switches: u64,
}

impl Cpu {
    /// The process's user and system CPU time and context switches so far, every thread
    /// included (Linux sums every thread's counts for `RUSAGE_SELF`).
    pub fn now() -> std::io::Result<Cpu> {
        let u = rusage_self()?;
        let count = |n: libc::c_long| u64::try_from(n).unwrap_or(0);
        Ok(Cpu {
            user: timeval(u.ru_utime),
            sys: timeval(u.ru_stime),
            voluntary_switches: count(u.ru_nvcsw),
            involuntary_switches: count(u.ru_nivcsw),
        })
    }

    /// CPU spent since `earlier`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }

    /// Sum of two spans.
    pub fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            user: self.user + other.user,
            sys: self.sys + other.sys,
            voluntary_switches: self.voluntary_switches + other.voluntary_switches,
            involuntary_switches: self.involuntary_switches + other.involuntary_switches,
        }
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

// rustix has no getrusage, so this one call goes through libc.
#[allow(unsafe_code)]
fn rusage_self() -> std::io::Result<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes at most one there.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: all-integer struct, zero-initialised and then filled in by a successful call.
    Ok(unsafe { usage.assume_init() })
}

/// The block device under a directory, and where its counters are (when they are).
#[derive(Debug, Clone, Default)]
pub struct Device {
    /// `MAJ:MIN` of the file system's device.
    pub id: String,
    /// Kernel name (`vda`, `nvme0n1p2`), when sysfs tells.
    pub name: Option<String>,
    /// `/sys/dev/block/MAJ:MIN/stat`, if it exists.
    pub stat: Option<PathBuf>,
    /// `/proc/fs/jbd2/<name>-8/info`, if it exists (ext4 with its journal inside).
    pub jbd2: Option<PathBuf>,
}

impl Device {
    /// The device of the file system holding `dir`. Counters it cannot find stay `None`
    /// (a file system on no block device, such as tmpfs or overlayfs, has none).
    pub fn of(dir: &Path) -> Device {
        let Ok(st) = rustix::fs::stat(dir) else {
            return Device::default();
        };
        let dev = st.st_dev;
        let id = format!("{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev));
        let sys = PathBuf::from("/sys/dev/block").join(&id);
        let stat = Some(sys.join("stat")).filter(|p| p.exists());
        let name = std::fs::read_to_string(sys.join("uevent"))
            .ok()
            .and_then(|u| {
                u.lines()
                    .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_owned))
            });
        let jbd2 = name
            .as_ref()
            .map(|n| PathBuf::from(format!("/proc/fs/jbd2/{n}-8/info")))
            .filter(|p| p.exists());
        Device {
            id,
            name,
            stat,
            jbd2,
        }
    }

    /// One line for the report's preamble.
    pub fn describe(&self) -> String {
        let dash = || "– (not found)".to_owned();
        format!(
            "block device {} ({}): counters {}; jbd2 {}",
            self.name.as_deref().unwrap_or("?"),
            if self.id.is_empty() { "?" } else { &self.id },
            self.stat
                .as_ref()
                .map_or_else(dash, |p| p.display().to_string()),
            self.jbd2
                .as_ref()
                .map_or_else(dash, |p| p.display().to_string()),
        )
    }

    /// The counters now; each is `None` where the kernel does not tell.
    pub fn sample(&self) -> DevCounters {
        let fields: Vec<u64> = self
            .stat
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.split_whitespace().map_while(|f| f.parse().ok()).collect())
            .unwrap_or_default();
        // Documentation/block/stat.rst: field 1 read I/Os, 3 read sectors (512 bytes),
        // 5 write I/Os, 7 write sectors, 16 flush I/Os (Linux 5.5 and later).
        let field = |n: usize| fields.get(n - 1).copied();
        DevCounters {
            read_ios: field(1),
            read_sectors: field(3),
            write_ios: field(5),
            write_sectors: field(7),
            flush_ios: field(16),
            jbd2_transactions: self
                .jbd2
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|s| jbd2_transactions(&s)),
        }
    }
}

/// "N transactions (M requested), each up to …" → N.
fn jbd2_transactions(info: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        let (n, rest) = l.trim().split_once(' ')?;
        rest.starts_with("transactions").then(|| n.parse().ok())?
    })
}

/// Block-device counters at one moment (or their change over a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevCounters {
    pub read_ios: Option<u64>,
    pub read_sectors: Option<u64>,
    pub write_ios: Option<u64>,
    pub write_sectors: Option<u64>,
    pub flush_ios: Option<u64>,
    pub jbd2_transactions: Option<u64>,
}

impl DevCounters {
    /// The change from `earlier` to `self`.
    pub fn since(self, earlier: DevCounters) -> DevCounters {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        DevCounters {
            read_ios: d(self.read_ios, earlier.read_ios),
            read_sectors: d(self.read_sectors, earlier.read_sectors),
            write_ios: d(self.write_ios, earlier.write_ios),
            write_sectors: d(self.write_sectors, earlier.write_sectors),
            flush_ios: d(self.flush_ios, earlier.flush_ios),
            jbd2_transactions: d(self.jbd2_transactions, earlier.jbd2_transactions),
        }
    }

    /// Sum of two changes (`None` if either lacks the counter).
    pub fn plus(self, other: DevCounters) -> DevCounters {
        let s = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        DevCounters {
            read_ios: s(self.read_ios, other.read_ios),
            read_sectors: s(self.read_sectors, other.read_sectors),
            write_ios: s(self.write_ios, other.write_ios),
            write_sectors: s(self.write_sectors, other.write_sectors),
            flush_ios: s(self.flush_ios, other.flush_ios),
            jbd2_transactions: s(self.jbd2_transactions, other.jbd2_transactions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jbd2_info() {
        let info = "1234 transactions (1200 requested), each up to 8192 blocks\naverage: \n";
        assert_eq!(jbd2_transactions(info), Some(1234));
        assert_eq!(jbd2_transactions("nothing here"), None);
    }

    #[test]
    fn cpu_time_moves_forward() {
        let a = Cpu::now().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = Cpu::now().unwrap();
        assert!(b.since(a).user + b.since(a).sys > Duration::ZERO);
    }

    #[test]
    fn sleeping_counts_voluntary_switches() {
        let a = Cpu::now().unwrap();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let d = Cpu::now().unwrap().since(a);
        assert!(d.voluntary_switches >= 5, "{d:?}");
    }

    #[test]
    fn counter_deltas_need_both_ends() {
        let a = DevCounters {
            read_ios: Some(1),
            read_sectors: None,
            write_ios: Some(10),
            write_sectors: Some(100),
            flush_ios: None,
            jbd2_transactions: Some(3),
        };
        let b = DevCounters {
            read_ios: Some(4),
            read_sectors: Some(8),
            write_ios: Some(15),
            write_sectors: Some(180),
            flush_ios: Some(4),
            jbd2_transactions: Some(5),
        };
        let d = b.since(a);
        assert_eq!(d.read_ios, Some(3));
        assert_eq!(d.read_sectors, None);
        assert_eq!(d.write_ios, Some(5));
        assert_eq!(d.write_sectors, Some(80));
        assert_eq!(d.flush_ios, None);
        assert_eq!(d.jbd2_transactions, Some(2));
    }
}
