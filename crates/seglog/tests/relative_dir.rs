//! A log opened by a relative path stays where it was opened when the process changes its
//! working directory: segments created by later rolls, checkpoints and the tail bound all go
//! to the directory the path named at open (as an absolute path taken then), not to the same
//! relative path under the new working directory; a reader opened by a relative path keeps
//! reading the log it opened.
//!
//! One test in this binary: it changes the process's working directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};

#[test]
fn a_log_opened_by_a_relative_path_survives_a_change_of_working_directory() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    std::env::set_current_dir(first.path()).unwrap();
    let options = Options::default().segment_size_bytes(64 << 10);
    let log = Log::open_blocking("log", options.clone()).unwrap();
    assert!(log.dir().is_absolute(), "{}", log.dir().display());
    let payload = vec![7u8; 1000];
    for _ in 0..20 {
        log.append_blocking("e", "t", &payload).unwrap();
    }
    let reader = Log::open_read_only_blocking("log").unwrap();
    std::env::set_current_dir(second.path()).unwrap();
    // Enough to roll several times after the change.
    for _ in 0..300 {
        log.append_blocking("e", "t", &payload).unwrap();
    }
    assert!(log.segments().len() > 3);
    log.close().unwrap();
    reader.refresh().unwrap();
    assert_eq!(
        reader.read("e").unwrap().len(),
        320,
        "the reader follows the log it opened"
    );
    drop(log);
    assert!(
        !second.path().join("log").exists(),
        "files went to the new working directory"
    );
    let reopened = Log::open_blocking(first.path().join("log"), options).unwrap();
    assert_eq!(reopened.read("e").unwrap().len(), 320);
    reopened.close().unwrap();
    std::env::set_current_dir("/").unwrap();
}
