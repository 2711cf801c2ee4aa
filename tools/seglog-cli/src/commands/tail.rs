//! `seglog tail`: follow an execution (or, with `--all`, the whole log in global order) as
//! another process appends to it, like `tail -f`. Reads new bytes of the segment files as
//! they appear; takes no lock and writes nothing.
//!
//! Invariant: a record is shown only once something proves it durable (docs/format.md §4),
//! since a writer writes a commit group before it fsyncs it, and a power cut can take back
//! what was written but not synced. The proofs:
//! - a later record's `durable_through_lsn` covers its LSN (the writer stamps each record
//!   with the highest LSN whose fsync had returned);
//! - a later segment with a header exists: the writer seals (truncates and fsyncs) a
//!   segment before it creates the next one. A later file without a header proves nothing:
//!   it may be another log's file of zeros named after this one (design.md, "The directory
//!   moved under an open log"; reviews 134 and 136 found readers serving a live writer's
//!   unsynced records on that proof);
//! - a commit marker follows it: `close` writes one after syncing everything. (A free `LOCK`
//!   proves nothing: a writer that crashed, or closed a poisoned log, leaves records that were
//!   never synced, and the next open may drop them.)
//!
//! So the newest records of a live log wait for the writer's next commit round. Records
//! still waiting are read again on the next poll; the cursor of a segment only moves past
//! records that have been shown (or skipped), never past a record that may still vanish.

use crate::output::{escape, escape_str, EventLine};
use anyhow::{Context, Result};
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::format::{
    decode_record, RecordRef, RecordScan, SegmentHeader, COMMIT_MARKER_LEN,
};
use seglog_segment::inspect::list_segment_files;
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `seglog tail`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Shows an event only once it is durable: once a later record says its \
    commit was synced,\nits segment is followed by another, or the writer has closed the log. \
    So the newest events\nof a live log appear when the writer commits again.\n\n\
    --from-seq and --from-lsn are inclusive, like every --from-* of seglog; durations are\n\
    humantime's (250ms, 2s, 1m 30s).\n\n\
    Examples (Ctrl-C to stop):\n  seglog tail ./log exec_2abc --from-seq 1     # from the first event\n  \
    seglog tail ./log --all --from-lsn 1 --timeout 30s   # every execution, in global order"
)]
pub struct TailArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// The execution id (not with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub execution: Option<String>,
    /// Follow every execution, in global order (LSN).
    #[arg(long)]
    pub all: bool,
    /// Events from this sequence on, inclusive [default: only new ones]
    #[arg(long, value_name = "SEQ", conflicts_with = "all")]
    pub from_seq: Option<u64>,
    /// With --all: from this LSN on, inclusive [default: only new ones]
    #[arg(long, value_name = "LSN", requires = "all")]
    pub from_lsn: Option<u64>,
    /// How often to look for new bytes (100ms, 2s)
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// Stop after printing this many events.
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Stop after this long (30s, 5m)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// JSON lines (with "schema" and "kind").
    #[arg(long)]
    pub json: bool,
}

/// How far a segment file has been shown.
struct Cursor {
    path: PathBuf,
    /// The segment number (the records' checksum salt), once the header could be read.
    salt: Option<u64>,
    /// Offset of the first record not yet shown.
    offset: u64,
}

/// The follower's state across polls.
struct Follower<'a> {
    args: &'a TailArgs,
    /// Segments by first LSN.
    cursors: BTreeMap<u64, Cursor>,
    /// The highest `durable_through_lsn` seen in any record: every LSN up to it is durable.
    vouched_through_lsn: u64,
    /// The last sequence shown (or skipped).
    last_seq: u64,
    /// With `--all`: the global position (LSN) of the last record shown (or skipped).
    last_lsn: u64,
    /// Events still to print before `--max-events` is reached (`None`: no limit).
    left: Option<u64>,
    /// A damaged record was found in a sealed segment (reported once; exit status 2).
    corrupt: bool,
}

impl Follower<'_> {
    /// Reads what is new; shows (or, unless `printing`, skips) the events of records proven
    /// durable. Returns how many it printed.
    fn poll(&mut self, printing: bool) -> Result<u64> {
        let dir = &self.args.dir;
        // Listed before any segment is read: a segment that is not the last one here was
        // sealed, and so durable, before the reads below.
        let listed = list_segment_files(&StdFs, dir)?;
        // Headers read before any segment's records: a segment before one with a header
        // was sealed before these reads.
        let mut sealed_below = 0;
        for (lsn, path) in &listed {
            let known = self.cursors.get(lsn).is_some_and(|c| c.salt.is_some());
            let probe = if known {
                HeaderProbe::Valid
            } else {
                probe_header(path, *lsn)?
            };
            match probe {
                HeaderProbe::Valid => sealed_below = *lsn,
                HeaderProbe::Damaged(defect) if !self.corrupt => {
                    self.corrupt = true;
                    eprintln!(
                        "seglog tail: {}: no valid segment header ({defect}), and data follows \
                         its place; the file's events are not shown (run seglog verify)",
                        path.display()
                    );
                }
                HeaderProbe::Damaged(_) | HeaderProbe::NotYet => {}
            }
        }
        for (lsn, path) in listed {
            self.cursors.entry(lsn).or_insert(Cursor {
                path,
                salt: None,
                offset: 0,
            });
        }
        let mut printed = 0;
        for (&first_lsn, cursor) in &mut self.cursors {
            let sealed = first_lsn < sealed_below;
            let Some(buf) = read_new_bytes(cursor, first_lsn)? else {
                continue;
            };
            let start = if cursor.offset == 0 {
                SEGMENT_HEADER_LEN
            } else {
                0
            };
            let Some(salt) = cursor.salt else { continue };
            // Whole, checksummed records (and commit markers, which vouch but hold no
            // events) only; a partial one is an append in progress. Each with its LSN and the
            // offset where it ends.
            let mut records: Vec<(Option<RecordRef<'_>>, u64, usize)> = Vec::new();
            let mut at = start;
            loop {
                match decode_record(buf.get(at..).unwrap_or(&[]), salt, 0, buf.len() as u64) {
                    RecordScan::Record(r) => {
                        at += r.len();
                        self.vouched_through_lsn =
                            self.vouched_through_lsn.max(r.durable_through_lsn());
                        records.push((Some(r), r.lsn(), at));
                    }
                    RecordScan::Commit(m) => {
                        at += COMMIT_MARKER_LEN;
                        self.vouched_through_lsn =
                            self.vouched_through_lsn.max(m.durable_through_lsn);
                        records.push((None, m.lsn, at));
                    }
                    RecordScan::EndOfData => break,
                    // In the active segment, a partial record is an append in progress; in a
                    // sealed one, nothing more will come: it is damage.
                    RecordScan::Defect(defect) => {
                        if sealed && !self.corrupt {
                            self.corrupt = true;
                            eprintln!(
                                "seglog tail: {}: damaged record at offset {} ({defect}); \
                                 the events after it in that segment are not shown (run seglog verify)",
                                cursor.path.display(),
                                cursor.offset + at as u64
                            );
                        }
                        break;
                    }
                }
            }
            let proven = if sealed {
                records.len()
            } else {
                records
                    .iter()
                    .take_while(|(_, lsn, _)| *lsn <= self.vouched_through_lsn)
                    .count()
            };
            let shown = records[..proven].last().map_or(start, |(_, _, end)| *end);
            let mut proven_records: Vec<&(Option<RecordRef<'_>>, u64, usize)> =
                records[..proven].iter().collect();
            if self.args.all {
                // Global order is LSN order: in a clustered segment (a compaction output,
                // grouped by execution; format.md §3.5) it is not the order in the file.
                proven_records.sort_by_key(|(_, lsn, _)| *lsn);
            }
            for (r, _, _) in proven_records {
                if self.args.all {
                    if let Some(r) = r.filter(|r| r.lsn() > self.last_lsn) {
                        self.last_lsn = r.lsn();
                        if printing {
                            let n = print_record(&r, self.args.json, self.left)?;
                            printed += n;
                            self.left = self.left.map(|l| l - n);
                        }
                    }
                    continue;
                }
                let execution = self.args.execution.as_deref().unwrap_or_default();
                let Some(r) = r.filter(|r| r.execution_id() == execution.as_bytes()) else {
                    continue;
                };
                for (i, payload) in r.events().enumerate() {
                    // A sequence past u64::MAX is not a real event (a crafted record).
                    let Some(seq) = r.first_seq().checked_add(i as u64) else {
                        break;
                    };
                    if seq <= self.last_seq {
                        continue;
                    }
                    self.last_seq = seq;
                    if self.left == Some(0) {
                        return Ok(printed); // --max-events reached: the command ends
                    }
                    if printing {
                        let line = EventLine::new(&r, seq, payload).render(self.args.json)?;
                        crate::outln!("{line}")?;
                        printed += 1;
                        self.left = self.left.map(|l| l - 1);
                    }
                }
            }
            cursor.offset += shown as u64;
        }
        Ok(printed)
    }
}

/// Prints the events of `r` (at most `limit`) with its global position, execution and
/// tenant (`--all`); returns how many it printed.
fn print_record(r: &RecordRef<'_>, json: bool, limit: Option<u64>) -> Result<u64> {
    let mut printed = 0;
    for (i, payload) in r.events().enumerate() {
        if limit.is_some_and(|l| printed >= l) {
            break;
        }
        let Some(seq) = r.first_seq().checked_add(i as u64) else {
            break;
        };
        let line = EventLine {
            lsn: Some(r.lsn()),
            tenant: Some(escape(r.tenant_id())),
            ..EventLine::new(r, seq, payload)
        }
        .render(json)?;
        crate::outln!("{line}")?;
        printed += 1;
    }
    Ok(printed)
}

/// What the start of a file under a segment name holds.
enum HeaderProbe {
    /// A header naming the file's first LSN.
    Valid,
    /// No header and nothing written after its place: a roll creating the file, a creation
    /// a crash cut, another log's file of zeros, or a file gone. Looked at again next poll.
    NotYet,
    /// No valid header, with data after its place (read twice: a roll may write the header
    /// and append between two reads): a damaged segment, which the writer's open refuses.
    Damaged(String),
}

/// Reads the header of the file at `path`, named for first LSN `first_lsn`.
fn probe_header(path: &std::path::Path, first_lsn: u64) -> Result<HeaderProbe> {
    let Ok(file) = StdFs.open_read_only(path) else {
        return Ok(HeaderProbe::NotYet); // removed (by compaction, or a writer's open)
    };
    let decode = |file: &<StdFs as FileSystem>::File| -> Result<Result<(), String>> {
        let mut header = vec![0u8; SEGMENT_HEADER_LEN];
        let n = file.read_at(&mut header, 0)?;
        Ok(match SegmentHeader::decode(&header[..n]) {
            Ok(h) if h.first_lsn == first_lsn => Ok(()),
            Ok(h) => Err(format!("it names first LSN {}", h.first_lsn)),
            Err(defect) => Err(defect.to_string()),
        })
    };
    let Err(defect) = decode(&file)? else {
        return Ok(HeaderProbe::Valid);
    };
    let from = SEGMENT_HEADER_LEN as u64;
    let end = file.written_data_end(from)?;
    let mut after = vec![0u8; end.saturating_sub(from) as usize];
    let n = file.read_at(&mut after, from)?;
    if after[..n].iter().all(|&b| b == 0) {
        return Ok(HeaderProbe::NotYet);
    }
    Ok(match decode(&file)? {
        Ok(()) => HeaderProbe::Valid,
        Err(_) => HeaderProbe::Damaged(defect),
    })
}

/// The bytes of `cursor`'s segment from its offset to the end of written data, reading the
/// header first if it has not been read; `None` when the file is gone or has no header yet.
fn read_new_bytes(cursor: &mut Cursor, first_lsn: u64) -> Result<Option<Vec<u8>>> {
    let Ok(file) = StdFs.open_read_only(&cursor.path) else {
        return Ok(None); // removed (by compaction): nothing more to show from it
    };
    if let (Some(salt), true) = (cursor.salt, cursor.offset > 0) {
        // Compaction may have replaced the file under the same name (its first output takes
        // the first input's first LSN) with other offsets and a new salt: start it again
        // from its first record; what was shown already is skipped by LSN and sequence.
        let mut header = vec![0u8; SEGMENT_HEADER_LEN];
        let n = file.read_at(&mut header, 0)?;
        if SegmentHeader::decode(&header[..n]).map_or(true, |h| h.record_salt() != salt) {
            cursor.offset = 0;
            cursor.salt = None;
        }
    }
    let end = file.written_data_end(cursor.offset)?;
    let mut buf = vec![0u8; end.saturating_sub(cursor.offset) as usize];
    let n = file.read_at(&mut buf, cursor.offset)?;
    buf.truncate(n);
    if cursor.salt.is_none() {
        match SegmentHeader::decode(&buf) {
            // A header naming another first LSN is no segment of this log (review 142).
            Ok(h) if h.first_lsn == first_lsn => cursor.salt = Some(h.record_salt()),
            _ => return Ok(None), // being created (or not this log's): try again next poll
        }
    }
    Ok(Some(buf))
}

pub fn run(args: &TailArgs) -> Result<i32> {
    let mut follower = Follower {
        args,
        cursors: BTreeMap::new(),
        vouched_through_lsn: 0,
        // --from-* are inclusive: the cursor starts just before them.
        last_seq: args.from_seq.unwrap_or(0).saturating_sub(1),
        last_lsn: args.from_lsn.unwrap_or(0).saturating_sub(1),
        left: args.max_events,
        corrupt: false,
    };
    let from_given = if args.all {
        args.from_lsn.is_some()
    } else {
        args.from_seq.is_some()
    };
    if !from_given {
        // Skip what is already there (and durable).
        follower.poll(false).context("cannot read the log")?;
    }
    if args.all {
        eprintln!(
            "seglog tail: following every execution from global position {}; events appear once durable",
            follower.last_lsn.saturating_add(1)
        );
    } else {
        eprintln!(
            "seglog tail: following execution \"{}\" from seq {}; events appear once durable",
            escape_str(args.execution.as_deref().unwrap_or_default()),
            follower.last_seq.saturating_add(1)
        );
    }
    let started = Instant::now();
    let mut printed = 0u64;
    loop {
        printed += follower.poll(true)?;
        use std::io::Write;
        std::io::stdout().flush()?;
        if args.max_events.is_some_and(|m| printed >= m)
            || args.timeout.is_some_and(|t| started.elapsed() >= t)
        {
            return Ok(if follower.corrupt {
                crate::exit::CORRUPT
            } else {
                crate::exit::OK
            });
        }
        std::thread::sleep(args.poll);
    }
}
