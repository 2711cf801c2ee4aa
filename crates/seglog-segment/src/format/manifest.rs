//! The replacement manifest (docs/format.md §6): the commit record of a compaction. Once it
//! is durable under its final name, the listed outputs replace the listed inputs, whatever
//! happens next; recovery finishes the switch.

use super::*;

/// A segment the replacement removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestInput {
    /// Its segment number (tells it apart from an output that took its file name).
    pub segment_number: u64,
    /// Its first LSN, which names its file.
    pub first_lsn: u64,
}

/// A segment the replacement adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestOutput {
    /// Its segment number.
    pub segment_number: u64,
    /// Its first LSN, which names its file (and, with the temporary suffix, its temp file).
    pub first_lsn: u64,
    /// Its length in bytes, header included.
    pub len: u64,
}

/// Which segments a compaction replaces, and by which.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplacementManifest {
    /// Segments removed.
    pub inputs: Vec<ManifestInput>,
    /// Segments added (may be empty: everything in the inputs was dropped).
    pub outputs: Vec<ManifestOutput>,
}

impl ReplacementManifest {
    /// Encodes the manifest, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            MANIFEST_HEADER_LEN
                + self.inputs.len() * MANIFEST_INPUT_LEN
                + self.outputs.len() * MANIFEST_OUTPUT_LEN
                + 4,
        );
        b.extend_from_slice(&MANIFEST_MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&[0u8; 6]);
        b.extend_from_slice(&(self.inputs.len() as u32).to_le_bytes());
        b.extend_from_slice(&(self.outputs.len() as u32).to_le_bytes());
        for i in &self.inputs {
            b.extend_from_slice(&i.segment_number.to_le_bytes());
            b.extend_from_slice(&i.first_lsn.to_le_bytes());
        }
        for o in &self.outputs {
            b.extend_from_slice(&o.segment_number.to_le_bytes());
            b.extend_from_slice(&o.first_lsn.to_le_bytes());
            b.extend_from_slice(&o.len.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a manifest file's bytes. Never panics; allocates at most in
    /// proportion to `buf`.
    ///
    /// # Errors
    /// A description of what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Self, String> {
        if buf.len() < MANIFEST_HEADER_LEN + 4 {
            return Err(format!("manifest of {} bytes is too short", buf.len()));
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if body[..8] != MANIFEST_MAGIC {
            return Err("not a replacement manifest (bad magic)".into());
        }
        if crc32fast::hash(body) != le_u32(crc, 0) {
            return Err("manifest checksum mismatch".into());
        }
        let version = le_u16(body, 8);
        if !(2..=FORMAT_VERSION).contains(&version) {
            return Err(format!("unsupported manifest version {version}"));
        }
        let inputs = le_u32(body, 16) as usize;
        let outputs = le_u32(body, 20) as usize;
        let expected = (inputs as u64) * MANIFEST_INPUT_LEN as u64
            + (outputs as u64) * MANIFEST_OUTPUT_LEN as u64
            + MANIFEST_HEADER_LEN as u64;
        if expected != body.len() as u64 {
            return Err(format!(
                "manifest lists {inputs} inputs and {outputs} outputs but holds {} bytes",
                buf.len()
            ));
        }
        let mut m = ReplacementManifest {
            inputs: Vec::with_capacity(inputs),
            outputs: Vec::with_capacity(outputs),
        };
        let mut at = MANIFEST_HEADER_LEN;
        for _ in 0..inputs {
            m.inputs.push(ManifestInput {
                segment_number: le_u64(body, at),
                first_lsn: le_u64(body, at + 8),
            });
            at += MANIFEST_INPUT_LEN;
        }
        for _ in 0..outputs {
            m.outputs.push(ManifestOutput {
                segment_number: le_u64(body, at),
                first_lsn: le_u64(body, at + 8),
                len: le_u64(body, at + 16),
            });
            at += MANIFEST_OUTPUT_LEN;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReplacementManifest {
        ReplacementManifest {
            inputs: vec![
                ManifestInput {
                    segment_number: 3,
                    first_lsn: 100,
                },
                ManifestInput {
                    segment_number: 4,
                    first_lsn: 250,
                },
            ],
            outputs: vec![ManifestOutput {
                segment_number: 9,
                first_lsn: 100,
                len: 4096,
            }],
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        assert_eq!(ReplacementManifest::decode(&m.encode()), Ok(m));
        let empty = ReplacementManifest::default();
        assert_eq!(ReplacementManifest::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn any_damaged_or_cut_manifest_is_rejected() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(
                ReplacementManifest::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            assert!(ReplacementManifest::decode(&b).is_err(), "flip at {at}");
        }
    }
}
