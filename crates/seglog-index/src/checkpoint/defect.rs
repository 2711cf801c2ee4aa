//! Why a checkpoint file cannot be used for its segment. Callers tell a *stale* checkpoint
//! (a valid file describing another version of the segment: harmless, the open ignores it)
//! from a *damaged* one (anything else under a final name) by variant, never by message.

/// Why [`super::decode`] refused a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointDefect {
    /// The file is shorter than its header.
    #[error("shorter than its header")]
    Truncated,
    /// The first 8 bytes are not [`super::MAGIC`].
    #[error("bad magic")]
    BadMagic,
    /// The header's checksum does not match.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// A version or header length this build does not read.
    #[error("unsupported version")]
    UnsupportedVersion,
    /// A valid header naming another segment (number, first LSN or length): a checkpoint of
    /// a version of the segment that compaction rewrote or recovery cut. Not damage.
    #[error("describes another segment (stale)")]
    Stale,
    /// The body's checksum (salted with the segment's record salt) does not match.
    #[error("body checksum mismatch")]
    BodyChecksum,
    /// The body does not hold what the header says, or an entry is out of place.
    #[error("{0}")]
    Malformed(String),
}

impl CheckpointDefect {
    /// True for [`CheckpointDefect::Stale`]: the file describes another version of the
    /// segment, which is expected after compaction or a cut and harms nothing.
    pub fn is_stale(&self) -> bool {
        matches!(self, CheckpointDefect::Stale)
    }

    /// True when the file is not damage, only unusable here: stale (see [`Self::is_stale`]),
    /// or of a version this build does not read (written by a newer build, which a
    /// downgrade leaves behind). The open ignores both and reads the segment instead.
    pub fn is_harmless(&self) -> bool {
        matches!(
            self,
            CheckpointDefect::Stale | CheckpointDefect::UnsupportedVersion
        )
    }
}

impl From<&str> for CheckpointDefect {
    fn from(reason: &str) -> Self {
        CheckpointDefect::Malformed(reason.to_owned())
    }
}
