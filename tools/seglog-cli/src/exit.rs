//! Exit statuses, the same for every command, and their table as `--help` prints it (the
//! README repeats it; tests/cli/exit_codes.rs checks every row).

/// Done; the log (or the part read) is clean.
pub const OK: i32 = 0;
/// Only a torn tail: bytes of appends that were never acknowledged, at the end of the last
/// segment, or a file with no record under a segment name that the next open removes
/// (dump, verify, stats, events; the next open cuts or removes them). What was shown is
/// whole.
pub const TORN_TAIL: i32 = 1;
/// Corruption: acknowledged data damaged, a file that is not a readable segment, a damaged
/// checkpoint, records that contradict each other; or a repair that did not end clean.
pub const CORRUPT: i32 = 2;
/// Any other error: I/O, a missing path, a log another process holds (compact, repair).
pub const ERROR: i32 = 3;
/// Nothing found: `events` of an execution the log does not hold.
pub const NOT_FOUND: i32 = 4;
/// Not confirmed: the question was answered no; nothing changed (compact, repair).
pub const DECLINED: i32 = 5;
/// Bad usage: bad arguments, or an erasure or repair without `--yes` and no terminal to ask.
pub const USAGE: i32 = 64;

/// The table, for `--help`.
pub const TABLE: &str = "\
Exit status (the same for every command):
  0   done; the log is clean
  1   torn tail only: unacknowledged bytes at the end of the last segment, or a file with
      no record under a segment name (dump, verify, stats, events); everything shown is
      whole, and the next open cuts or removes them
  2   corruption: acknowledged data damaged, an unreadable segment or checkpoint, records
      that contradict each other; repair: damage it cannot cut, or not clean afterwards
  3   other errors: I/O, a missing path, a log another process has open (compact, repair)
  4   not found: events of an execution the log does not hold
  5   declined: a confirmation was answered no; nothing changed (compact, repair)
  64  usage: bad arguments; compact or repair without --yes and no terminal to ask
When several apply, 2 wins over 4, and 4 over 1.";

/// The status for a scan that found `health` damage and, when `found` is false, not what
/// was asked for: corruption wins over not found, not found over a torn tail.
pub fn combine(health: crate::logdir::Health, found: bool) -> i32 {
    use crate::logdir::Health;
    match (health, found) {
        (Health::Corrupt, _) => CORRUPT,
        (_, false) => NOT_FOUND,
        (Health::TornTail, true) => TORN_TAIL,
        (Health::Clean, true) => OK,
    }
}
