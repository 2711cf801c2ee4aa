//! Review 121: rounds that switch between large (vectored writes, zeros ahead paused) and
//! small (gathered writes, zeros ahead resumed), on the simulator with zeros ahead on and
//! the next segment prepared, with power cuts at many points. What must hold: every
//! acknowledged append is read back whole, at its position, with its own tenant; no hang in
//! close; recovery returns exactly what was written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::sync::Mutex;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4 << 20,
        max_record_size_bytes: 256 << 10,
        zero_ahead_bytes: 512 << 10,
        ..SegmentOptions::default()
    }
}

/// Thread `t`'s `k`th payload: phases of large records (vectored rounds, average over
/// 512 KiB with 8 threads) and of small ones; bytes unique to (t, k).
fn payload(t: u64, k: u64) -> Vec<u8> {
    let large = (k / 6).is_multiple_of(2);
    let len = if large {
        90_000 + ((t * 7 + k * 13) % 50_000) as usize
    } else {
        1 + ((t * 31 + k * 17) % 3000) as usize
    };
    (0..len)
        .map(|i| 1 + ((t as usize * 37 + k as usize * 11 + i) % 251) as u8)
        .collect()
}

fn tenant(t: u64) -> Vec<u8> {
    format!("tenant-{t}").into_bytes()
}

type Acked = BTreeMap<u64, (u64, u64)>;

fn run<F: FileSystem>(log: &SegmentLog<F>, threads: u64, per_thread: u64) -> Acked {
    let acked = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (log, acked) = (log.clone(), &acked);
            s.spawn(move || {
                let ten = tenant(t);
                for k in 0..per_thread {
                    let p = payload(t, k);
                    let batch = EventBatch {
                        encoding: 0,
                        execution_id: b"exec",
                        tenant_id: &ten,
                        first_seq: 1,
                        timestamp_unix_nanos: 0,
                        payloads: &[p.as_slice()],
                    };
                    let Ok(a) = log.append(&batch) else { return };
                    // Read back at once at its position: a live reader must see it whole.
                    if let Ok(r) = log.read(a.position) {
                        let v = r.view();
                        assert_eq!(v.lsn(), a.lsn, "live read at {:?}", a.position);
                        assert_eq!(v.tenant_id(), ten.as_slice(), "live read tenant");
                        assert_eq!(v.events().next().unwrap(), p.as_slice(), "live read bytes");
                    }
                    acked.lock().unwrap().insert(a.lsn, (t, k));
                }
            });
        }
    });
    acked.into_inner().unwrap()
}

fn verify<F: FileSystem>(log: &SegmentLog<F>, acked: &Acked, what: &str) {
    let mut stored = BTreeMap::new();
    for r in log.records().unwrap() {
        let r = r.unwrap();
        let v = r.view();
        stored.insert(
            v.lsn(),
            (v.tenant_id().to_vec(), v.events().next().unwrap().to_vec()),
        );
    }
    for (lsn, (t, k)) in acked {
        let got = stored.get(lsn);
        assert!(
            got == Some(&(tenant(*t), payload(*t, *k))),
            "{what}: acknowledged LSN {lsn} (thread {t}, #{k}) lost or wrong: {:?}",
            got.map(|(ten, p)| (String::from_utf8_lossy(ten).into_owned(), p.len()))
        );
    }
}

#[test]
fn mixed_large_and_small_rounds_keep_every_acknowledged_append_on_a_clean_close() {
    let fs = SimFs::new();
    fs.set_zeroes_ahead(true);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let acked = run(&log, 8, 36);
    let stats = log.stats();
    assert!(stats.zeroed_bytes > 0, "no zeros ahead ran: {stats:?}");
    assert!(log.segments().len() >= 3, "too few rolls: {stats:?}");
    log.close().unwrap();
    drop(log);
    let (log, report) = SegmentLog::open(fs, "/log", opts(), &mut ()).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    verify(&log, &acked, "clean close");
    assert_eq!(log.records().unwrap().count(), acked.len());
}

#[test]
fn mixed_large_and_small_rounds_keep_every_acknowledged_append_across_power_cuts() {
    for cut_after in [15u64, 40, 90, 160, 260, 420, 700] {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::Torn { seed: cut_after },
            CrashMode::Reordered { seed: cut_after },
        ] {
            let fs = SimFs::new();
            fs.set_zeroes_ahead(true);
            let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
            fs.power_off_after(cut_after);
            let acked = run(&log, 8, 24);
            drop(log);
            let survived = fs.crash(mode);
            let (log, _) = SegmentLog::open(survived, "/log", opts(), &mut ())
                .unwrap_or_else(|e| panic!("cut after {cut_after} ({mode:?}): {e}"));
            verify(&log, &acked, &format!("cut after {cut_after} ({mode:?})"));
        }
    }
}
