//! Review of 7a9be22: the new `later_durable_record` (skipping to the next non-zero kind
//! byte) against the old byte-by-byte loop, copied here as an oracle, on random inputs with
//! real records, commit markers, fake headers and noise; answers and the budget warning's
//! offset must agree exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use seglog_segment::format::{
    decode_record, encode_commit_marker, EncodedRecord, EventBatch, RecordScan, COMMIT_MARKER_LEN,
    KIND_COMMIT, KIND_EVENTS, RECORD_HEADER_LEN, REC_DURABLE_THROUGH_OFFSET, REC_KIND_OFFSET,
    REC_LEN_OFFSET, REC_LSN_OFFSET,
};
use seglog_segment::inspect::{later_durable_record, LOOK_AHEAD_BUDGET_FACTOR};
use std::sync::{Arc, Mutex};

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn claims_proof(rec: &[u8], last_good_lsn: u64, lsn_limit: u64) -> Option<u64> {
    let header = rec.get(..RECORD_HEADER_LEN)?;
    let len = u64::from(le_u32(header, REC_LEN_OFFSET));
    let kind = header[REC_KIND_OFFSET];
    let plausible_len = match kind {
        KIND_EVENTS => len > RECORD_HEADER_LEN as u64,
        KIND_COMMIT => len == COMMIT_MARKER_LEN as u64,
        _ => false,
    };
    let lsn = le_u64(header, REC_LSN_OFFSET);
    let durable_through = le_u64(header, REC_DURABLE_THROUGH_OFFSET);
    (plausible_len
        && len <= rec.len() as u64
        && durable_through > last_good_lsn
        && durable_through < lsn
        && lsn <= lsn_limit)
        .then_some(len)
}

/// The old loop (7a9be22^), verbatim but for returning the warning's offset.
fn old_later_durable_record(
    bytes: &[u8],
    from: usize,
    salt: u64,
    last_good_lsn: u64,
) -> (Option<(usize, u64)>, Option<usize>) {
    let max_len = bytes.len() as u64;
    let Some(end) = bytes.len().checked_sub(RECORD_HEADER_LEN) else {
        return (None, None);
    };
    let searched = (end + 1).saturating_sub(from) as u64;
    let mut budget = searched
        .saturating_mul(LOOK_AHEAD_BUDGET_FACTOR)
        .saturating_add(1 << 20);
    let lsn_limit = last_good_lsn
        .saturating_add(searched / RECORD_HEADER_LEN as u64)
        .saturating_add(2);
    for at in from..=end {
        let Some(claimed_len) = claims_proof(&bytes[at..], last_good_lsn, lsn_limit) else {
            continue;
        };
        let Some(left) = budget.checked_sub(claimed_len) else {
            return (None, Some(at));
        };
        budget = left;
        let proof = match decode_record(&bytes[at..], salt, last_good_lsn + 1, max_len) {
            RecordScan::Record(r) if r.durable_through_lsn() > last_good_lsn => r.lsn(),
            RecordScan::Commit(m) if m.durable_through_lsn > last_good_lsn => m.lsn,
            _ => continue,
        };
        return (Some((at, proof)), None);
    }
    (None, None)
}

/// A subscriber that keeps the `offset` field of every event.
#[derive(Clone, Default)]
struct Offsets(Arc<Mutex<Vec<u64>>>);

struct V<'a>(&'a mut Option<u64>);
impl tracing::field::Visit for V<'_> {
    fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
        if f.name() == "offset" {
            *self.0 = Some(v);
        }
    }
    fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
        if f.name() == "offset" {
            *self.0 = Some(v as u64);
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for Offsets {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut o = None;
        e.record(&mut V(&mut o));
        if let Some(o) = o {
            self.0.lock().unwrap().push(o);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn new_with_warning(
    bytes: &[u8],
    from: usize,
    salt: u64,
    last_good: u64,
) -> (Option<(usize, u64)>, Option<usize>) {
    let sub = Offsets::default();
    let got = tracing::subscriber::with_default(sub.clone(), || {
        later_durable_record(bytes, from, salt, last_good)
    });
    let offs = sub.0.lock().unwrap().clone();
    {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        static FOUND: AtomicUsize = AtomicUsize::new(0);
        static WARNED: AtomicUsize = AtomicUsize::new(0);
        static LAST: AtomicUsize = AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, Relaxed) + 1;
        if got.is_some() {
            FOUND.fetch_add(1, Relaxed);
        }
        if let Some((at, _)) = got {
            if at + RECORD_HEADER_LEN == bytes.len() {
                LAST.fetch_add(1, Relaxed);
            }
        }
        if !offs.is_empty() {
            WARNED.fetch_add(1, Relaxed);
        }
        if std::env::var_os("REVIEW_STATS").is_some() && n.is_multiple_of(10000) {
            eprintln!(
                "calls {n} found {} at-last-position {} warned {}",
                FOUND.load(Relaxed),
                LAST.load(Relaxed),
                WARNED.load(Relaxed)
            );
        }
    }
    assert!(offs.len() <= 1, "{offs:?}");
    (got, offs.first().map(|&o| o as usize))
}

const SALT: u64 = 7;

fn record(salt: u64, lsn: u64, durable_through: u64, payload_len: usize) -> Vec<u8> {
    let p = vec![0x5a; payload_len];
    let batch = EventBatch {
        encoding: 0,
        execution_id: b"e",
        tenant_id: b"t",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[&p[..]],
    };
    EncodedRecord::new(&batch, u32::MAX)
        .unwrap()
        .seal(salt, lsn, durable_through)
}

fn fake_header(kind: u8, len: u32, lsn: u64, dt: u64) -> Vec<u8> {
    let mut h = vec![0u8; RECORD_HEADER_LEN];
    h[REC_LEN_OFFSET..REC_LEN_OFFSET + 4].copy_from_slice(&len.to_le_bytes());
    h[REC_LSN_OFFSET..REC_LSN_OFFSET + 8].copy_from_slice(&lsn.to_le_bytes());
    h[REC_DURABLE_THROUGH_OFFSET..REC_DURABLE_THROUGH_OFFSET + 8]
        .copy_from_slice(&dt.to_le_bytes());
    h[REC_KIND_OFFSET] = kind;
    h
}

#[derive(Debug, Clone)]
enum Piece {
    Noise(u8),
    Record {
        salt_ok: bool,
        dlsn: u64,
        ddt: i64,
        payload: usize,
    },
    Marker {
        salt_ok: bool,
        dlsn: u64,
        ddt: i64,
    },
    Fake {
        kind: u8,
        len: u32,
        dlsn: u64,
        ddt: i64,
    },
    /// A real record cut short.
    Truncated {
        keep: usize,
    },
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => any::<u8>().prop_map(Piece::Noise),
        2 => (any::<bool>(), 0u64..6, -2i64..3, 0usize..200)
            .prop_map(|(salt_ok, dlsn, ddt, payload)| Piece::Record { salt_ok, dlsn, ddt, payload }),
        2 => (any::<bool>(), 0u64..6, -2i64..3)
            .prop_map(|(salt_ok, dlsn, ddt)| Piece::Marker { salt_ok, dlsn, ddt }),
        3 => (prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(3u8)],
              prop_oneof![0u32..4000, Just(48u32), Just(49u32)], 0u64..40, -2i64..3)
            .prop_map(|(kind, len, dlsn, ddt)| Piece::Fake { kind, len, dlsn, ddt }),
        1 => (1usize..120).prop_map(|keep| Piece::Truncated { keep }),
    ]
}

fn render(p: &Piece, last_good: u64) -> Vec<u8> {
    let lsn = |d: u64| last_good.saturating_add(d);
    let dt = |l: u64, d: i64| {
        if d >= 0 {
            last_good.saturating_add(d as u64)
        } else {
            l.saturating_sub((-d) as u64)
        }
    };
    match *p {
        Piece::Noise(b) => vec![b],
        Piece::Record {
            salt_ok,
            dlsn,
            ddt,
            payload,
        } => {
            let l = lsn(dlsn);
            record(
                if salt_ok { SALT } else { SALT + 1 },
                l,
                dt(l, ddt),
                payload,
            )
        }
        Piece::Marker { salt_ok, dlsn, ddt } => {
            let l = lsn(dlsn);
            encode_commit_marker(if salt_ok { SALT } else { SALT + 1 }, l, dt(l, ddt)).to_vec()
        }
        Piece::Fake {
            kind,
            len,
            dlsn,
            ddt,
        } => {
            let l = lsn(dlsn);
            fake_header(kind, len, l, dt(l, ddt))
        }
        Piece::Truncated { keep } => {
            let mut r = record(SALT, lsn(2), lsn(1), 30);
            r.truncate(keep);
            r
        }
    }
}

fn build(len: usize, pieces: &[(usize, Piece)], last_good: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    for (at, p) in pieces {
        let r = render(p, last_good);
        // Placed by fraction of len, possibly at the very end (clipped) or exactly at the
        // last offset a header fits.
        let at = match at % 4 {
            0 if len >= r.len() => len - r.len(),
            1 if len >= RECORD_HEADER_LEN => len - RECORD_HEADER_LEN,
            _ => at % len.max(1),
        };
        for (i, b) in r.iter().enumerate() {
            if at + i < len {
                bytes[at + i] = *b;
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("REVIEW_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000), ..ProptestConfig::default() })]

    #[test]
    fn new_agrees_with_old(
        len in prop_oneof![0usize..100, 0usize..3000],
        from in prop_oneof![0usize..3100, Just(usize::MAX), Just(usize::MAX - 1)],
        last_good in prop_oneof![Just(1000u64), 0u64..3, Just(u64::MAX), Just(u64::MAX - 1), Just(u64::MAX - 5)],
        pieces in proptest::collection::vec((any::<usize>(), piece()), 0..30),
    ) {
        let bytes = build(len, &pieces, last_good);
        let old = old_later_durable_record(&bytes, from, SALT, last_good);
        let new = new_with_warning(&bytes, from, SALT, last_good);
        prop_assert_eq!(old, new);
        // Every from near a found proof, too.
        if let (Some((at, _)), _) = old {
            for f in at.saturating_sub(3)..=at + 3 {
                prop_assert_eq!(
                    old_later_durable_record(&bytes, f, SALT, last_good),
                    new_with_warning(&bytes, f, SALT, last_good)
                );
            }
        }
    }

    /// Headers claiming long records exhaust the budget: the answer (None) and the
    /// warning's offset must match, and so must a proof found just before the budget ends.
    #[test]
    fn budget_exhaustion_agrees(
        kib in 64usize..200,
        heads in proptest::collection::vec((any::<usize>(), 0u64..30), 1..40),
        proof_at in proptest::option::of(any::<usize>()),
        from in 0usize..4096,
    ) {
        let len = kib << 10;
        let last_good = 1000;
        let mut bytes = vec![0u8; len];
        for (at, dlsn) in heads {
            let at = at % (len - RECORD_HEADER_LEN);
            let claim = (len - at) as u32;
            let h = fake_header(KIND_EVENTS, claim, last_good + 2 + dlsn, last_good + 1);
            bytes[at..at + RECORD_HEADER_LEN].copy_from_slice(&h);
        }
        if let Some(p) = proof_at {
            let m = encode_commit_marker(SALT, last_good + 2, last_good + 1);
            let at = p % (len - COMMIT_MARKER_LEN + 1);
            bytes[at..at + COMMIT_MARKER_LEN].copy_from_slice(&m);
        }
        let old = old_later_durable_record(&bytes, from, SALT, last_good);
        let new = new_with_warning(&bytes, from, SALT, last_good);
        prop_assert_eq!(old, new);
    }
}

/// Deterministic edges: every length up to a few blocks, every from, a marker whose kind byte
/// is at the very last position, alone and behind zeros/noise.
#[test]
fn exhaustive_small_edges() {
    let marker = encode_commit_marker(SALT, 12, 11);
    for len in 0..=300usize {
        for variant in 0..4 {
            let mut bytes = vec![0u8; len];
            if variant & 1 == 1 {
                for (i, b) in bytes.iter_mut().enumerate() {
                    if i % 37 == 5 {
                        *b = 0xab;
                    }
                }
            }
            if variant & 2 == 2 && len >= COMMIT_MARKER_LEN {
                bytes[len - COMMIT_MARKER_LEN..].copy_from_slice(&marker);
            }
            for from in 0..=len + 2 {
                assert_eq!(
                    old_later_durable_record(&bytes, from, SALT, 10),
                    new_with_warning(&bytes, from, SALT, 10),
                    "len {len} variant {variant} from {from}"
                );
            }
        }
    }
}

/// The warning subscriber works (a sanity check of the harness): budget exhausted by
/// headers each claiming the rest of a 1 MiB buffer.
#[test]
fn warning_offset_is_captured() {
    let len = 1 << 20;
    let mut bytes = vec![0u8; len];
    for k in 0..10 {
        let at = 1000 + k * 4096;
        let h = fake_header(KIND_EVENTS, (len - at) as u32, 1002, 1001);
        bytes[at..at + RECORD_HEADER_LEN].copy_from_slice(&h);
    }
    let old = old_later_durable_record(&bytes, 0, SALT, 1000);
    assert!(old.1.is_some(), "{old:?}");
    assert_eq!(old, new_with_warning(&bytes, 0, SALT, 1000));
}
