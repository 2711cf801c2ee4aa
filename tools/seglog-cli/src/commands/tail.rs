//! `seglog tail`: follow an execution as another process appends to it, like `tail -f`.
//! Reads new bytes of the segment files as they appear; takes no lock.

use crate::output::event_line;
use anyhow::{Context, Result};
use seglog_segment::format::{decode_record, RecordScan, SegmentHeader, SEGMENT_HEADER_LEN};
use seglog_segment::inspect::list_segment_files;
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `seglog tail`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example (Ctrl-C to stop):\n  seglog tail ./log exec_2abc --from-seq 0")]
pub struct TailArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// The execution id.
    pub execution: String,
    /// Print events after this sequence (default: only new events)
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// How often to look for new bytes, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Stop after printing this many events.
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout_secs: Option<u64>,
    /// JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// How far each segment file has been read.
struct Cursor {
    salt: Option<u64>,
    offset: u64,
}

fn poll(
    args: &TailArgs,
    cursors: &mut BTreeMap<u64, (PathBuf, Cursor)>,
    last_seq: &mut u64,
    printing: bool,
) -> Result<u64> {
    for (lsn, path) in list_segment_files(&StdFs, &args.dir)? {
        cursors.entry(lsn).or_insert((
            path,
            Cursor {
                salt: None,
                offset: 0,
            },
        ));
    }
    let mut printed = 0;
    for (path, cursor) in cursors.values_mut() {
        let Ok(file) = StdFs.open_read_only(path) else {
            continue;
        };
        let end = file.written_data_end(cursor.offset)?;
        if end <= cursor.offset && cursor.salt.is_some() {
            continue;
        }
        let mut buf = vec![0u8; (end - cursor.offset) as usize];
        let n = file.read_at(&mut buf, cursor.offset)?;
        buf.truncate(n);
        let mut at = 0usize;
        if cursor.salt.is_none() {
            match SegmentHeader::decode(&buf) {
                Ok(h) => {
                    cursor.salt = Some(h.segment_number);
                    at = SEGMENT_HEADER_LEN;
                }
                Err(_) => continue, // being created: try again next poll
            }
        }
        let Some(salt) = cursor.salt else { continue };
        // Whole, checksummed records only; a partial one is an append in progress.
        while let RecordScan::Record(r) = decode_record(&buf[at..], salt, 0, buf.len() as u64) {
            if r.execution_id() == args.execution.as_bytes() {
                for (i, p) in r.events().enumerate() {
                    let seq = r.first_seq() + i as u64;
                    if seq <= *last_seq {
                        continue;
                    }
                    *last_seq = seq;
                    if printing {
                        println!(
                            "{}",
                            event_line(seq, r.timestamp_unix_nanos(), r.encoding(), p, args.json)
                        );
                        printed += 1;
                    }
                }
            }
            at += r.len();
        }
        cursor.offset += at as u64;
    }
    Ok(printed)
}

pub fn run(args: &TailArgs) -> Result<i32> {
    let mut cursors = BTreeMap::new();
    let mut last_seq = 0u64;
    match args.from_seq {
        Some(s) => last_seq = s,
        // Skip what is already there.
        None => {
            poll(args, &mut cursors, &mut last_seq, false).context("cannot read the log")?;
        }
    }
    let started = Instant::now();
    let mut printed = 0u64;
    loop {
        printed += poll(args, &mut cursors, &mut last_seq, true)?;
        use std::io::Write;
        std::io::stdout().flush()?;
        if args.max_events.is_some_and(|m| printed >= m)
            || args
                .timeout_secs
                .is_some_and(|t| started.elapsed() >= Duration::from_secs(t))
        {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(args.poll_ms));
    }
}
