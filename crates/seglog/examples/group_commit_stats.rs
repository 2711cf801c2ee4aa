//! Runs N closed-loop writers against a log for a few seconds and prints the commit figures
//! (`Log::stats`): how big the groups are, how long fsyncs take, how many rounds ran.
//! `cargo run --release -p seglog --example group_commit_stats -- [WRITERS] [SECONDS] [no-prealloc]`

use std::time::{Duration, Instant};

fn main() -> seglog::Result<()> {
    let mut args = std::env::args().skip(1);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("seglog-group-stats-{}", std::process::id()));
    let preallocate = args.next().as_deref() != Some("no-prealloc");
    let log =
        seglog::Log::open_blocking(&dir, seglog::Options::default().preallocate(preallocate))?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let payload = [b'x'; 256];
    std::thread::scope(|s| {
        for t in 0..writers {
            let log = log.clone();
            s.spawn(move || {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let exec = format!("exec-{:04}", (t as u64 * 7919 + i) % 1000);
                    if log.append_blocking(&exec, "t", &payload).is_err() {
                        return;
                    }
                    i += 1;
                }
            });
        }
    });
    let st = log.stats();
    println!(
        "{writers} writers (preallocate {preallocate}): {:.0} appends/s, {} rounds ({:.0}/s), group mean {:.1} p50 {} p99 {} max {}, fsync p50 {} µs p99 {} µs, append p50 {} µs p99 {} µs",
        st.appends as f64 / seconds,
        st.commits,
        st.commits as f64 / seconds,
        st.mean_group_size,
        st.group_size.p50,
        st.group_size.p99,
        st.group_size.max,
        st.fsync_us.p50,
        st.fsync_us.p99,
        st.append_latency.p50_us,
        st.append_latency.p99_us
    );
    log.close()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
