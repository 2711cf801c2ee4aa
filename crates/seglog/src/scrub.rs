//! [`Log::scrub`]: reading every sealed record back to find bit rot before a reader does.
//!
//! Opening a log trusts a sealed segment that an index checkpoint covers without reading it,
//! so damage to it shows only when something reads the damaged record. A scrub reads every
//! record of every sealed segment and checks its checksum, segment by segment, while the log
//! stays open for appends and reads.

use crate::log::Log;
use crate::{Error, Result};
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::RecordPosition;

/// What [`Log::scrub`] found in one sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubbedSegment {
    /// Segment number.
    pub number: u64,
    /// LSN in its file name.
    pub first_lsn: u64,
    /// Records read and found whole.
    pub records: u64,
    /// Bytes of the segment, header included.
    pub bytes: u64,
    /// The first damage found: byte offset and what is wrong. `None`: the segment is intact.
    pub damage: Option<(u64, String)>,
}

/// What [`Log::scrub`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Every sealed segment, in log order.
    pub segments: Vec<ScrubbedSegment>,
}

impl ScrubReport {
    /// True when no sealed segment is damaged.
    pub fn is_clean(&self) -> bool {
        self.segments.iter().all(|s| s.damage.is_none())
    }
}

impl<F: FileSystem> Log<F> {
    /// Reads every record of every sealed segment and checks it, reporting per segment where
    /// the first damage is. The active segment is left out: its records were read when the
    /// log was opened or written by this process. Reads compete with appends for the disk but
    /// take no lock they wait on.
    ///
    /// # Errors
    /// [`Error::Closed`]; I/O errors other than damage (damage is reported, not raised).
    pub fn scrub(&self) -> Result<ScrubReport> {
        self.check_open()?;
        let mut report = ScrubReport::default();
        for info in self.segments().into_iter().filter(|s| s.sealed) {
            let mut scrubbed = ScrubbedSegment {
                number: info.number,
                first_lsn: info.first_lsn,
                records: 0,
                bytes: info.data_end,
                damage: None,
            };
            let records = match self.shared.segments.records_from(RecordPosition {
                segment: info.number,
                offset: SEGMENT_HEADER_LEN as u64,
            }) {
                Ok(records) => records,
                // Compaction replaced it since the listing: nothing left to check.
                Err(seglog_segment::Error::NoSuchRecord { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            for record in records {
                match record {
                    Ok(_) => scrubbed.records += 1,
                    Err(seglog_segment::Error::Corruption { offset, reason, .. }) => {
                        scrubbed.damage = Some((offset, reason));
                        break;
                    }
                    Err(seglog_segment::Error::ChecksumMismatch { offset, .. }) => {
                        scrubbed.damage = Some((offset, "record checksum mismatch".into()));
                        break;
                    }
                    Err(e) => return Err(Error::from(e)),
                }
            }
            if let Some((offset, reason)) = &scrubbed.damage {
                tracing::error!(segment = info.number, offset, reason = %reason, "scrub found damage");
            }
            report.segments.push(scrubbed);
        }
        Ok(report)
    }
}
