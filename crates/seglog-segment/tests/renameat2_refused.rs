//! A sandbox that refuses `renameat2`: seccomp filters (older container runtimes' default
//! profiles, systemd's `SystemCallFilter=`) answer a system call they do not know with
//! EPERM, not ENOSYS. The roll that takes the prepared next segment renames it with
//! `RENAME_NOREPLACE`; refused, it must fall back to the check-then-rename it uses where the
//! file system lacks the flag, not fail the roll (which poisons the log).
//!
//! The filter is installed on the test's own thread (seccomp filters are per thread, and
//! threads started later inherit them: the log's zeroing thread too), so no other test sees
//! it.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Installing the filter takes two `prctl` calls.
#![allow(unsafe_code)]

mod common;

use common::prepared::{append, lost, opts};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::SegmentLog;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `renameat2` on x86_64.
const SYS_RENAMEAT2: u32 = 316;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

fn statement(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// From now on, `renameat2` on this thread (and threads it starts) fails with EPERM; an
/// error when this kernel or sandbox does not let a process install a seccomp filter.
fn refuse_renameat2_on_this_thread() -> std::io::Result<()> {
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let filter = [
        // seccomp_data.arch: another architecture's numbers mean other calls; allow them.
        statement(load, 4),
        jump_if_equal(AUDIT_ARCH_X86_64, 0, 3),
        // seccomp_data.nr
        statement(load, 0),
        jump_if_equal(SYS_RENAMEAT2, 0, 1),
        statement(ret, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        statement(ret, SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls; `program` and `filter` outlive them (the kernel copies the
    // filter).
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) == 0
    };
    if installed {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn a_sandbox_that_refuses_renameat2_does_not_cost_the_prepared_roll() {
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = refuse_renameat2_on_this_thread() {
        // Nothing to test where no process can install a filter (a kernel without
        // CONFIG_SECCOMP_FILTER): no sandbox there refuses the call either.
        eprintln!("SKIPPED: cannot install a seccomp filter here: {e}");
        return;
    }
    // The filter works: the flag's own call is refused with EPERM.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, b"a").unwrap();
    let refused = rustix::fs::renameat_with(
        rustix::fs::CWD,
        &a,
        rustix::fs::CWD,
        &b,
        rustix::fs::RenameFlags::NOREPLACE,
    );
    assert_eq!(refused, Err(rustix::io::Errno::PERM), "setup: the filter");
    // The file system's own call falls back.
    StdFs.rename_no_replace(&a, &b).unwrap();
    assert!(!a.exists() && b.exists());
    std::fs::write(&a, b"a").unwrap();
    let kept = StdFs.rename_no_replace(&a, &b);
    assert_eq!(
        kept.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::AlreadyExists)
    );

    // And a log rolls into its prepared segments.
    let path = dir.path().join("log");
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    let mut acked = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while log.stats().prepared_rolls < 2 {
        assert!(
            Instant::now() < deadline,
            "no prepared roll: {:?}",
            log.stats()
        );
        i += 1;
        let lsn = append(&log, i).unwrap_or_else(|e| panic!("append {i} failed: {e}"));
        acked.insert(lsn, i);
        if i % 8 == 0 {
            // Let the zeroing thread prepare the next segment.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(log.poisoned().is_none());
    assert!(lost(&log, &acked).is_empty());
    log.close().unwrap();
    drop(log);
    let (log, _) = SegmentLog::open(StdFs, &path, opts(), &mut ()).unwrap();
    assert!(lost(&log, &acked).is_empty());
}
