//! Review 21 (hostile) of the staged restore (`staging.rs`, `restore.rs`; fixed by
//! restoring in place under a `RESTORE_IN_PROGRESS` marker every open refuses): the staging
//! directory beside the destination, its marker, the rename onto the destination, and what
//! is durable when.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::Tier;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use support::fault::FaultStore;
use support::restore_dirs::{count, data_names as listing, ship_log};

/// Two restores into one destination (a controller that retries a failover whose first
/// attempt it gave up waiting for, but did not stop): the second removes the first's staging
/// directory *while the first is still writing into it* (it holds the marker, so it looks
/// like a crashed restore's) and creates its own at the same path. The first then writes
/// the rest of its segments into the second's directory and renames it onto the
/// destination: a part of a log is published. The first restore fails after that
/// (`Corruption`: its opened log differs from its manifest), the second fails too (its
/// staging directory is gone), and the destination is left holding a log that opens with
/// only the last segments' events; every later `open_from_bucket` of it takes the
/// "continue" path instead of restoring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restores_into_one_destination_never_publish_part_of_a_log() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let shipped = ship_log(store.clone(), "p", &root.path().join("a")).await;
    let m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    let first_key = m.segments.first().unwrap().segment.key.clone();
    let last_key = m.segments.last().unwrap().segment.key.clone();
    let dest = root.path().join("dest");

    // Restore A stops at the GET of the last segment: every other segment is staged.
    let gate_a = fault.pause_next_get(&last_key);
    let a = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        support::options(),
    ));
    gate_a.reached.notified().await;
    // Restore B (same destination) replaces A's staging directory and stops at its first
    // segment's GET.
    let gate_b = fault.pause_next_get(&first_key);
    let mut b = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        support::options(),
    ));
    // (A restore that refuses at once, as one that found A's staging in use should, ends
    // without reaching the gate.)
    let b_ended = tokio::select! {
        () = gate_b.reached.notified() => None,
        ended = &mut b => Some(ended.unwrap()),
    };
    gate_a.resume.notify_one();
    let a = a.await.unwrap();
    let a_outcome = a.as_ref().map(|_| ()).map_err(ToString::to_string);
    drop(a);
    let left = listing(&dest);
    let opened = if left.is_empty() {
        String::new()
    } else {
        match seglog::Log::open(&dest, support::options()).await {
            Ok(log) => {
                let events = support::events_of(&log, u64::MAX);
                log.close().unwrap();
                format!("opens with {} events", count(&events))
            }
            Err(e) => format!("does not open ({e})"),
        }
    };
    gate_b.resume.notify_one();
    let b = match b_ended {
        Some(ended) => ended,
        None => b.await.unwrap(),
    };
    let b_outcome = b.as_ref().map(|_| ()).map_err(ToString::to_string);
    drop(b);
    // The second restore is refused at once (the first holds the marker); the first ends.
    assert!(
        matches!(b_outcome.as_ref().map_err(String::as_str), Err(e) if e.contains("another restore")),
        "{b_outcome:?}"
    );
    assert!(a_outcome.is_ok(), "{a_outcome:?}");
    match &a_outcome {
        Ok(()) => {}
        Err(_) => assert!(
            left.is_empty(),
            "restore A failed ({a_outcome:?}; restore B: {b_outcome:?}) but published part of \
             a log at its destination: {left:?}, which {opened} (the bucket holds {} events)",
            count(&shipped)
        ),
    }
}

/// A destination that exists (empty) before the restore, as an operator creates it with
/// the permissions the log must have (here 0710: no access for other users), keeps them:
/// before the staging directory, the restore wrote into it. Now the staging directory,
/// created with the process's umask, is renamed over it: the restored log's directory has
/// the mode (and owner, ACLs, labels) of the staging directory, not the operator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_an_existing_directory_keeps_its_permissions() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let dest = root.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o710)).unwrap();
    let r = support::restore_in_order(store, Path::from("p"), &dest, support::options())
        .await
        .unwrap();
    r.log.close().unwrap();
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o710,
        "the destination's mode changed from 0710 to {mode:o}: the restore replaced the \
         operator's directory with its staging directory"
    );
}

/// A destination whose name is 241..=255 bytes long is a valid directory name, and was
/// restored into before; its staging name (`.` + name + `.seglog-restore`, 16 bytes more)
/// is not: the restore now fails (ENAMETOOLONG) after claiming the log, fencing its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_a_long_valid_name_is_restored_into() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let shipped = ship_log(store.clone(), "p", &root.path().join("a")).await;
    let dest = root.path().join("d".repeat(250));
    std::fs::create_dir(&dest).unwrap(); // a valid name
    std::fs::remove_dir(&dest).unwrap();
    let r = support::restore_in_order(store, Path::from("p"), &dest, support::options())
        .await
        .unwrap_or_else(|e| panic!("restore into a 250-byte name: {e}"));
    assert_eq!(support::events_of(&r.log, u64::MAX), shipped);
    r.log.close().unwrap();
}

/// The staging name is built with `to_string_lossy`: two destinations whose names differ
/// only in bytes that are not UTF-8 (`\xffdata`, `\xfedata`) share one staging directory
/// (`.\u{fffd}data.seglog-restore`). Restoring two different logs into them at once, the
/// second removes the first's staging directory (marker and all) while the first writes into
/// it, and the first fails after claiming (its old owner is fenced; no one serves the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_into_different_destinations_do_not_share_a_staging_directory() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let shipped_1 = ship_log(store.clone(), "p1", &root.path().join("a1")).await;
    let shipped_2 = ship_log(store.clone(), "p2", &root.path().join("a2")).await;
    let m1 = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p1"))
        .await
        .unwrap()
        .unwrap();
    let dest_1 = root.path().join(std::ffi::OsStr::from_bytes(b"\xffdata"));
    let dest_2 = root.path().join(std::ffi::OsStr::from_bytes(b"\xfedata"));

    let gate = fault.pause_next_get(&m1.segments.last().unwrap().segment.key);
    let first = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p1"),
        dest_1.clone(),
        support::options(),
    ));
    gate.reached.notified().await;
    let second =
        support::restore_in_order(store.clone(), Path::from("p2"), &dest_2, support::options())
            .await
            .unwrap();
    assert_eq!(support::events_of(&second.log, u64::MAX), shipped_2);
    second.log.close().unwrap();
    gate.resume.notify_one();
    let first = first
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the restore of p1 into {dest_1:?} failed: {e}"));
    assert_eq!(support::events_of(&first.log, u64::MAX), shipped_1);
    first.log.close().unwrap();
}

/// A restore whose staging directory lost its marker but not its other files (a crash in
/// the middle of `remove_dir_all`, which removes entries in directory order, the marker
/// possibly first; or a power cut on a file system that made a segment's entry durable and
/// not the marker's: the staging directory is not fsynced between the marker and the
/// segments) is refused forever after with `DestinationNotEmpty` naming the staging path;
/// nothing but an operator removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_directory_left_without_its_marker_does_not_block_every_later_restore() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let shipped = ship_log(store.clone(), "p", &root.path().join("a")).await;
    // What an interrupted removal of a crashed restore's staging directory leaves: the
    // marker is gone, one restored segment is not.
    let staging = root.path().join(".dest.seglog-restore");
    std::fs::create_dir(&staging).unwrap();
    let segment = std::fs::read_dir(root.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    std::fs::copy(&segment, staging.join(segment.file_name().unwrap())).unwrap();
    let r = support::restore_in_order(
        store,
        Path::from("p"),
        root.path().join("dest"),
        support::options(),
    )
    .await
    .unwrap_or_else(|e| panic!("restore after an interrupted staging cleanup: {e}"));
    assert_eq!(support::events_of(&r.log, u64::MAX), shipped);
    r.log.close().unwrap();
}

/// `restore(".")` from an empty working directory (the CLI: `cd /var/lib/app/p7 && seglog
/// restore URL .`): before the staging directory the log was written into it. Now the staging
/// directory is renamed over it, so the caller's working directory is an unlinked, empty
/// directory, and "." (the path the caller gave) no longer holds the restored log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_the_working_directory_is_found_there() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let cwd = root.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(&cwd).unwrap();
    let r = support::restore_in_order(store, Path::from("p"), ".", support::options()).await;
    let here = listing(std::path::Path::new("."));
    std::env::set_current_dir(previous).unwrap();
    r.unwrap().log.close().unwrap();
    assert!(
        !here.is_empty(),
        "restore(\".\") returned, but \".\" is empty (the log is at {}: {:?})",
        cwd.display(),
        listing(&cwd)
    );
}

// ---- Durability, by the system calls a restore makes (strace) ----

const TRACE_CHILD: &str = "SEGLOG_REVIEW21_TRACE_CHILD";

/// One traced call: its name and the paths it names (fd paths from `-y`, then strings).
#[derive(Debug)]
struct Call {
    name: String,
    paths: Vec<String>,
}

fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for line in text.lines() {
        // "<pid> name(args) = ret"
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
        let Some(open) = line.find('(') else { continue };
        let name = line[..open].to_string();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let args = &line[open + 1..];
        let mut paths = Vec::new();
        if let (Some(a), Some(b)) = (args.find('<'), args.find('>')) {
            if a < b && matches!(name.as_str(), "fsync" | "fdatasync") {
                paths.push(args[a + 1..b].to_string());
            }
        }
        let mut rest = args;
        while let Some(a) = rest.find('"') {
            let after = &rest[a + 1..];
            let Some(b) = after.find('"') else { break };
            paths.push(after[..b].to_string());
            rest = &after[b + 1..];
        }
        calls.push(Call { name, paths });
    }
    calls
}

/// The restore a traced child runs: into `<root>/new1/new2/dest` (no part of it exists),
/// from the file:// bucket at `<root>/bucket`; then `mkdir <root>/RESTORE-RETURNED`.
fn trace_child(root: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let prefix = Path::from_absolute_path(root.join("bucket")).unwrap();
        let r = support::restore_in_order(
            store,
            prefix,
            root.join("new1/new2/dest"),
            support::options(),
        )
        .await
        .unwrap();
        std::fs::create_dir(root.join("RESTORE-RETURNED")).unwrap();
        r.log.close().unwrap();
    });
}

/// When `restore` returns, the restored log's directory entry is durable, and so is every
/// directory the restore created on the way to it: otherwise a power cut after the restore
/// returned — and after the new owner acknowledged appends under `Durability::Local` — can
/// drop a created directory's entry, and the whole log with it. (The staged restore used a
/// plain `create_dir_all`.) Checked on the system calls (strace -f -y -z; `.ci/run` installs
/// strace) of a child process restoring into `new1/new2/dest`: each `mkdir` must be followed
/// by an fsync of the new directory's parent before the restore returns.
#[test]
fn every_directory_a_restore_creates_is_durable_when_it_returns() {
    if let Ok(root) = std::env::var(TRACE_CHILD) {
        trace_child(std::path::Path::new(&root));
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            std::fs::create_dir(root.join("bucket")).unwrap();
            let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
            let prefix = Path::from_absolute_path(root.join("bucket")).unwrap();
            let options = support::options().checkpoints(seglog::CheckpointMode::Inline);
            let log = seglog::Log::open(root.join("a"), options).await.unwrap();
            let tier = Tier::claim(store, prefix).await.unwrap();
            support::write_events(&log, 0, 120).await;
            log.roll().await.unwrap();
            tier.ship(&log).await.unwrap();
            log.close().unwrap();
        });
    }
    let trace = root.join("trace.txt");
    let status = std::process::Command::new("strace")
        .args(["-f", "-y", "-z", "-qq", "-e", "signal=none", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=mkdir,mkdirat,rename,renameat,renameat2,fsync,fdatasync",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "every_directory_a_restore_creates_is_durable_when_it_returns",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TRACE_CHILD, &root)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("this test needs strace (apt-get install strace)");
    assert!(status.success(), "the traced restore failed: {status}");
    let calls = parse_trace(&std::fs::read_to_string(&trace).unwrap());
    let returned = root.join("RESTORE-RETURNED").display().to_string();
    let end = calls
        .iter()
        .position(|c| c.name.starts_with("mkdir") && c.paths.contains(&returned))
        .expect("the child's sentinel mkdir is in the trace");
    let calls = &calls[..end];
    let synced_after = |dir: &std::path::Path, from: usize| {
        let dir = dir.display().to_string();
        calls[from..]
            .iter()
            .any(|c| c.name == "fsync" && c.paths.first() == Some(&dir))
    };
    let mut missing = Vec::new();
    for ancestor in [
        root.join("new1"),
        root.join("new1/new2"),
        root.join("new1/new2/dest"),
    ] {
        let name = ancestor.display().to_string();
        let Some(at) = calls
            .iter()
            .position(|c| c.name.starts_with("mkdir") && c.paths.contains(&name))
        else {
            panic!("no mkdir of {name} traced: {calls:?}");
        };
        if !synced_after(ancestor.parent().unwrap(), at) {
            missing.push(format!(
                "{name} was created, and its parent {} never fsynced after",
                ancestor.parent().unwrap().display()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "when restore returned, these directory entries were not durable: {missing:#?}"
    );
}

/// Unmounts a bind mount when dropped (the test panics with it mounted).
struct BindMount(std::path::PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A bind mount of a directory of the same file system (systemd `BindPaths=`, a container's
/// hostPath volume) as the destination: the staged restore claimed the log (fencing its
/// owner), downloaded it whole, and only then failed to rename onto it (EBUSY), every retry
/// the same. Restored in place, it works. Needs `mount --bind` (root); skipped where it is
/// not permitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_mounted_destination_is_restored_into() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let source = root.path().join("volume");
    let dest = root.path().join("dest");
    std::fs::create_dir(&source).unwrap();
    std::fs::create_dir(&dest).unwrap();
    let mounted = std::process::Command::new("mount")
        .arg("--bind")
        .arg(&source)
        .arg(&dest)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mount --bind is not permitted here");
        return;
    }
    let _mount = BindMount(dest.clone());
    let epoch = |m: Option<seglog_tier::Manifest>| m.unwrap().writer_epoch;
    let before = epoch(
        seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
            .await
            .unwrap(),
    );
    let outcome =
        support::restore_in_order(store.clone(), Path::from("p"), &dest, support::options())
            .await
            .map(|r| r.log.close().unwrap());
    let after = epoch(
        seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
            .await
            .unwrap(),
    );
    // Written in place (no rename onto it), a bind-mounted destination is restored into.
    if let Err(e) = &outcome {
        panic!(
            "the restore into a bind mount failed ({e}) (writer epoch {before} -> {after}): \
             if it claimed the log, its owner is fenced and no node serves it"
        );
    }
    assert!(after > before);
}

/// Global positions (LSNs) are "never reused … across restarts" (seglog `global`): a
/// reader that has read through position P resumes with `read_global(P, …)`. Erase every
/// sealed event (a tenant's erasure: compaction drops every record of the sealed segments,
/// whose outputs are empty) and ship with chunk shipping: the manifest names no segment,
/// and an active segment with no record whose first LSN (152) says LSNs up to 151 were
/// given out. The restore forgets that active segment and starts its fresh segment after
/// the manifest's segments only — at LSN 1: the new owner's appends take positions 1, 2, …
/// that readers already saw, and a reader resuming after 150 skips them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_never_gives_out_an_lsn_the_bucket_shows_was_used() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let options = || support::options().checkpoints(seglog::CheckpointMode::Inline);
    let log = seglog::Log::open(root.path().join("a"), options())
        .await
        .unwrap();
    let tier = Tier::claim(store.clone(), Path::from("p"))
        .await
        .unwrap()
        .with_active_chunks();
    support::write_events(&log, 0, 150).await;
    log.roll().await.unwrap();
    tier.ship(&log).await.unwrap();
    let seen = log.latest_lsn().unwrap();
    let executions: Vec<String> = (0..support::EXECUTIONS)
        .map(|e| format!("exec-{e}"))
        .collect();
    let plan = seglog::compaction::policy::drop_executions(
        &log.compaction_view(false).unwrap(),
        executions.iter().map(String::as_str),
    );
    log.compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    tier.ship(&log).await.unwrap();
    let m = tier.manifest().await;
    let active = m.active.expect("chunk shipping names the active segment");
    assert!(m.segments.is_empty() && active.first_lsn > seen, "{m:?}");
    log.close().unwrap();

    let r = support::restore_in_order(
        store,
        Path::from("p"),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    let appended = r
        .log
        .append_encoded_at("exec-9", "tenant-a", None, 0, &[b"after the failover"])
        .await
        .unwrap();
    r.log.close().unwrap();
    assert!(
        appended.lsn > seen,
        "the restored log gave out LSN {} again (the old owner's readers saw positions up to \
         {seen}; the manifest's active segment started at LSN {})",
        appended.lsn,
        active.first_lsn
    );
}
