//! The manifest: what a log's bucket prefix holds, written once per id and never changed.
//!
//! Mirrors `docs/scale-out.md`, "Manifest format". A manifest is a JSON object (UTF-8,
//! `serde_json`) stored at `<prefix>/manifest/<id as 20 zero-padded digits>`. Invariants
//! checked on every decode, so that restore never trusts a manifest that breaks them:
//! - `format_version` is 1 or 2 ([`FORMAT_VERSION`]); `manifest_id` equals the id in the key;
//! - `writer_epoch` ≥ 1;
//! - segments are in log order: first LSNs strictly increase, and each segment's LSNs end
//!   before the next one's begin; every LSN named is below `LSN_LIMIT` (2^62, the engine's);
//! - every object key lies under the log's prefix, every length is at most
//!   [`MAX_OBJECT_BYTES`];
//! - an active segment (version 2 only) starts after the last sealed segment's LSNs, and its
//!   chunks' epoch is between 1 and the writer's.

use crate::error::{Error, Result};
use object_store::path::Path;
use seglog_segment::format::LSN_LIMIT;
use serde::{Deserialize, Serialize};

/// The newest manifest format this build writes and reads: version 2 adds `active` (the
/// active segment whose chunks a restore rebuilds, docs/scale-out.md "Chunk shipping").
/// A manifest that names no active segment is written as version 1, so that builds which
/// read only version 1 still read it; one that does is version 2, which they refuse rather
/// than restore without its chunks.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest manifest format this build reads (no `active`).
pub const FORMAT_VERSION_SEALED_ONLY: u32 = 1;

/// Largest manifest this build reads, in bytes: a manifest names one entry (~400 bytes)
/// per shipped segment, so 64 MiB is ~150 000 segments. A larger object is refused before
/// it is read.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Largest segment or checkpoint object this build accepts, in bytes (a segment's offsets
/// are u32, so no segment reaches 4 GiB).
pub const MAX_OBJECT_BYTES: u64 = u32::MAX as u64;

/// One object the manifest names: where it is, how long it is, its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's key, from the bucket's root (the log's prefix included).
    pub key: String,
    /// Its length in bytes.
    pub len: u64,
    /// CRC-32 (IEEE, `crc32fast`) of its bytes.
    pub crc32: u32,
}

/// A sealed segment shipped to the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Its segment number (from its header).
    pub number: u64,
    /// The LSN of its first record (its file name).
    pub first_lsn: u64,
    /// The LSN of its last record (`first_lsn - 1` when it holds none).
    pub last_lsn: u64,
    /// Its header's `record_salt`: with the number and first LSN, what tells this segment
    /// from a compaction output that took its name.
    pub record_salt: u64,
    /// The segment file's bytes, header included.
    pub segment: ObjectRef,
    /// Its index checkpoint (`<first_lsn>.idx`), when one had been written when it shipped.
    #[serde(default)]
    pub checkpoint: Option<ObjectRef>,
}

/// The active segment a manifest names (version 2): its chunks, under
/// `chunks/<first_lsn>-<number>-<salt>-e<chunks_epoch>/`, hold its durable prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSegment {
    /// Its segment number.
    pub number: u64,
    /// The LSN its first record has (its file name).
    pub first_lsn: u64,
    /// Its header's `record_salt`.
    pub record_salt: u64,
    /// The epoch of the writer that first named it active: part of its chunk folder's name,
    /// so that orphan collection never touches a newer owner's chunks.
    pub chunks_epoch: u64,
}

impl ActiveSegment {
    /// True when `self` and `other` are the same segment (whoever named it).
    pub fn same_segment(&self, number: u64, first_lsn: u64, record_salt: u64) -> bool {
        self.number == number && self.first_lsn == first_lsn && self.record_salt == record_salt
    }
}

/// One manifest: the writer that owns the log and the segments it has shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// This manifest's id (also its key's last part); ids start at 1 and each manifest is
    /// written at the id after the newest one its writer read.
    pub manifest_id: u64,
    /// The epoch of the writer that wrote it: one higher than the previous owner's for a
    /// claim, the writer's own for a ship.
    pub writer_epoch: u64,
    /// Random, drawn by the writer when it claimed (32 hex digits): tells the writer's own
    /// manifests from another's at the same epoch, and settles an ambiguous PUT.
    pub writer_nonce: String,
    /// When it was written, milliseconds since the Unix epoch (informational).
    pub created_unix_millis: u64,
    /// The shipped sealed segments, in log order (ascending first LSN).
    pub segments: Vec<SegmentEntry>,
    /// The active segment whose chunks are shipped (version 2; `None`: no chunk shipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveSegment>,
    /// The identity of the log it describes (32 hex digits, docs/format.md §9): a ship, a
    /// continue and a claim for a directory refuse a local log of another identity. Absent
    /// from manifests written before identities (the next ship names it); builds before it
    /// ignore it, so it needs no new format version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
}

impl Manifest {
    /// The format version a manifest naming `active` is written with.
    pub fn version_for(active: &Option<ActiveSegment>) -> u32 {
        if active.is_some() {
            FORMAT_VERSION
        } else {
            FORMAT_VERSION_SEALED_ONLY
        }
    }

    /// The highest LSN the manifest's segments hold (0 when it names none).
    pub fn last_lsn(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.last_lsn)
    }

    /// Every object key the manifest names (segments and checkpoints).
    pub fn named_keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().flat_map(|s| {
            std::iter::once(s.segment.key.as_str())
                .chain(s.checkpoint.as_ref().map(|c| c.key.as_str()))
        })
    }

    /// Encodes the manifest (JSON).
    ///
    /// # Errors
    /// [`Error::Corruption`] if it cannot be encoded (it always can: only strings and
    /// integers).
    pub fn encode(&self, key: &Path) -> Result<bytes::Bytes> {
        serde_json::to_vec_pretty(self)
            .map(bytes::Bytes::from)
            .map_err(|e| Error::corruption(key, format!("cannot encode manifest: {e}")))
    }

    /// Decodes and checks the manifest stored at `key` under `prefix`, whose id is `id`.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`], [`Error::Corruption`] for anything that breaks the
    /// invariants in this module's header.
    pub fn decode(bytes: &[u8], key: &Path, prefix: &Path, id: u64) -> Result<Self> {
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(bytes)
            .map_err(|e| Error::corruption(key, format!("not a manifest: {e}")))?;
        if !(FORMAT_VERSION_SEALED_ONLY..=FORMAT_VERSION).contains(&version.format_version) {
            return Err(Error::UnsupportedVersion {
                key: key.to_string(),
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::corruption(key, format!("not a manifest: {e}")))?;
        m.check(key, prefix, id)?;
        Ok(m)
    }

    /// The identity of the log it describes, parsed; `None` when it names none.
    pub fn log_identity(&self) -> Option<seglog_segment::format::LogId> {
        self.log_id.as_deref().and_then(|s| s.parse().ok())
    }

    fn check(&self, key: &Path, prefix: &Path, id: u64) -> Result<()> {
        let bad = |reason: String| Err(Error::corruption(key, reason));
        if let Some(log_id) = &self.log_id {
            if log_id.parse::<seglog_segment::format::LogId>().is_err() {
                return bad(format!("log_id {log_id:?} is not 32 hex digits"));
            }
        }
        if self.manifest_id != id {
            return bad(format!("manifest_id {} under id {id}", self.manifest_id));
        }
        if self.writer_epoch == 0 {
            return bad("writer_epoch 0".into());
        }
        // Keys are `<prefix>/...`, or bare under the empty prefix (`s3://bucket`): review 12.
        let own = if prefix.as_ref().is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let mut next_free_lsn = 1u64;
        for s in &self.segments {
            if s.first_lsn < next_free_lsn
                || s.last_lsn.saturating_add(1) < s.first_lsn
                || s.last_lsn.max(s.first_lsn) >= LSN_LIMIT
            {
                return bad(format!(
                    "segment {} (LSNs {}..={}) out of log order",
                    s.number, s.first_lsn, s.last_lsn
                ));
            }
            next_free_lsn = s.last_lsn.max(s.first_lsn).saturating_add(1);
            for o in std::iter::once(&s.segment).chain(s.checkpoint.as_ref()) {
                if !o.key.starts_with(&own) || o.len > MAX_OBJECT_BYTES {
                    return bad(format!("object {} outside the prefix or too long", o.key));
                }
            }
        }
        if let Some(a) = &self.active {
            if self.format_version < FORMAT_VERSION {
                return bad("an active segment in a version 1 manifest".into());
            }
            if a.first_lsn < next_free_lsn
                || a.first_lsn >= LSN_LIMIT
                || a.chunks_epoch == 0
                || a.chunks_epoch > self.writer_epoch
            {
                return bad(format!(
                    "active segment {} (first LSN {}, chunks of epoch {}) out of log order",
                    a.number, a.first_lsn, a.chunks_epoch
                ));
            }
        }
        Ok(())
    }
}
