//! A property test of the public API against a plain in-memory model: random appends,
//! batches, conditional appends, tenant mismatches, reopens and power cuts (between and
//! during operations) on the simulated file system. After every reopen or crash the log
//! must answer exactly as the model — every acknowledged event present, nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proptest::prelude::*;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, Error, Log, Options};
use std::collections::BTreeMap;

const TENANTS: [&str; 3] = ["t0", "t1", "t2"];

#[derive(Debug, Clone)]
enum Op {
    Append { exec: u8, tenant: u8, len: u16 },
    Batch { exec: u8, tenant: u8, n: u8 },
    Expecting { exec: u8, tenant: u8, delta: i8 },
    Reopen,
    Crash { keep_unsynced: bool, seed: u64 },
    CrashDuring { after_ops: u8, seed: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 0u8..3, 0u16..300).prop_map(|(exec, tenant, len)| Op::Append { exec, tenant, len }),
        3 => (0u8..6, 0u8..3, 1u8..5).prop_map(|(exec, tenant, n)| Op::Batch { exec, tenant, n }),
        2 => (0u8..6, 0u8..3, -1i8..=1).prop_map(|(exec, tenant, delta)| Op::Expecting { exec, tenant, delta }),
        1 => Just(Op::Reopen),
        1 => (any::<bool>(), any::<u64>()).prop_map(|(keep_unsynced, seed)| Op::Crash { keep_unsynced, seed }),
        1 => (1u8..12, any::<u64>()).prop_map(|(after_ops, seed)| Op::CrashDuring { after_ops, seed }),
    ]
}

#[derive(Default, Debug)]
struct Model {
    execs: BTreeMap<String, (String, Vec<Vec<u8>>)>,
    created: Vec<String>,
}

impl Model {
    fn expected_dump(&self) -> common::Dump {
        let mut out = common::Dump::new();
        for t in TENANTS {
            let rows = self
                .created
                .iter()
                .rev()
                .filter(|e| self.execs[*e].0 == t)
                .map(|e| {
                    let events = self.execs[e]
                        .1
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i as u64 + 1, 0, p.clone()))
                        .collect();
                    (e.clone(), Some(t.to_string()), events)
                })
                .collect();
            out.insert(t.to_string(), rows);
        }
        out
    }

    fn push(&mut self, exec: &str, tenant: &str, payloads: Vec<Vec<u8>>) {
        if !self.execs.contains_key(exec) {
            self.created.push(exec.to_string());
        }
        self.execs
            .entry(exec.to_string())
            .or_insert_with(|| (tenant.to_string(), Vec::new()))
            .1
            .extend(payloads);
    }
}

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

fn without_timestamps(mut d: common::Dump) -> common::Dump {
    for rows in d.values_mut() {
        for (_, _, events) in rows.iter_mut() {
            for e in events.iter_mut() {
                e.1 = 0;
            }
        }
    }
    d
}

fn check(log: &Log<SimFs>, model: &Model, when: &str) {
    let got = without_timestamps(common::dump(log, &TENANTS));
    assert_eq!(got, model.expected_dump(), "{when}");
}

fn payload(step: usize, k: usize, len: usize) -> Vec<u8> {
    let mut p = format!("{step}:{k}:").into_bytes();
    p.resize(len.max(p.len()), b'.');
    p
}

fn run(ops: Vec<Op>) {
    let mut fs = SimFs::new();
    let mut log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append { exec, tenant, len } => {
                let (e, t) = (format!("e{exec}"), TENANTS[tenant as usize]);
                let p = payload(step, 0, len as usize);
                let result = log.append_blocking(&e, t, &p);
                match model.execs.get(&e) {
                    Some((owner, _)) if owner != t => assert!(
                        matches!(result, Err(Error::TenantMismatch { .. })),
                        "{result:?}"
                    ),
                    _ => {
                        let seq = result.unwrap();
                        assert_eq!(seq, model.execs.get(&e).map_or(0, |x| x.1.len()) as u64 + 1);
                        model.push(&e, t, vec![p]);
                    }
                }
            }
            Op::Batch { exec, tenant, n } => {
                let (e, t) = (format!("e{exec}"), TENANTS[tenant as usize]);
                let ps: Vec<Vec<u8>> = (0..n as usize)
                    .map(|k| payload(step, k, 10 + 30 * k))
                    .collect();
                let result = log.append_batch_blocking(&e, t, &ps);
                match model.execs.get(&e) {
                    Some((owner, _)) if owner != t => {
                        assert!(matches!(result, Err(Error::TenantMismatch { .. })))
                    }
                    _ => {
                        result.unwrap();
                        model.push(&e, t, ps);
                    }
                }
            }
            Op::Expecting {
                exec,
                tenant,
                delta,
            } => {
                let (e, t) = (format!("e{exec}"), TENANTS[tenant as usize]);
                let last = model.execs.get(&e).map_or(0, |x| x.1.len()) as i64;
                let expected = (last + i64::from(delta)).max(0) as u64;
                let p = payload(step, 0, 20);
                let result = log.append_encoded_blocking(&e, t, Some(expected), 0, &[&p]);
                match model.execs.get(&e) {
                    Some((owner, _)) if owner != t => {
                        assert!(matches!(result, Err(Error::TenantMismatch { .. })))
                    }
                    _ if expected != last as u64 => {
                        assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}")
                    }
                    _ => {
                        result.unwrap();
                        model.push(&e, t, vec![p]);
                    }
                }
            }
            Op::Reopen => {
                log.close().unwrap();
                log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
                check(&log, &model, &format!("after reopen at step {step}"));
            }
            Op::Crash {
                keep_unsynced,
                seed,
            } => {
                let mode = if keep_unsynced {
                    CrashMode::KeepUnsynced
                } else {
                    CrashMode::Torn { seed }
                };
                fs = fs.crash(mode);
                drop(log);
                log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
                check(&log, &model, &format!("after crash at step {step}"));
            }
            Op::CrashDuring { after_ops, seed } => {
                fs.power_off_after(fs.mutating_ops() + u64::from(after_ops));
                let e = format!("e{}", step % 6);
                let t = model
                    .execs
                    .get(&e)
                    .map_or(TENANTS[0], |x| x.0.as_str())
                    .to_string();
                let ps: Vec<Vec<u8>> = (0..3).map(|k| payload(step, k, 200)).collect();
                let acked = log.append_batch_blocking(&e, &t, &ps).is_ok();
                fs = fs.crash(CrashMode::Torn { seed });
                drop(log);
                log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
                let have = log.count(&e).unwrap();
                let before = model.execs.get(&e).map_or(0, |x| x.1.len()) as u64;
                if acked || have > before {
                    assert_eq!(
                        have,
                        before + 3,
                        "batch neither whole nor absent at step {step}"
                    );
                    model.push(&e, &t, ps);
                }
                check(
                    &log,
                    &model,
                    &format!("after crash during an append at step {step}"),
                );
            }
        }
    }
    log.close().unwrap();
    let log = Log::open_with_fs(fs, "/log", opts()).unwrap();
    check(&log, &model, "at the end");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model_through_reopens_and_crashes(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
