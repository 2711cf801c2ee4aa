//! The CPU floor of a blocking append: what one sleep and wake-up of a thread costs here.
//!
//! Every durable append from a blocking thread sleeps at least once (its thread waits for the
//! group's fsync) and is woken by another thread, so no blocking log can spend less CPU per
//! append than one sleep + wake-up. This measures that alone, with no I/O and no log: `N`
//! threads each check in and park; a coordinating thread, once all have checked in, unparks
//! every one, round after round, as a group commit's leader acknowledges its group. CPU
//! (`getrusage`, the whole process) over wake-ups is the floor the append runs' "CPU
//! µs/append" column compares with.

use crate::usage::Cpu;
use anyhow::Result;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Instant;

/// What [`measure`] found.
#[derive(Debug, Clone, Copy)]
pub struct WakeupFloor {
    pub threads: usize,
    /// Process CPU (user + sys) per sleep + wake-up, µs.
    pub cpu_us: f64,
    /// Voluntary context switches per wake-up (1 when every wake-up found its thread asleep).
    pub voluntary_switches: f64,
    pub wakeups_per_sec: f64,
}

/// `threads` threads parked and woken `rounds` times each.
pub fn measure(threads: usize, rounds: u64) -> Result<WakeupFloor> {
    let threads = threads.max(1);
    // Round each thread has been woken for; threads checked in for the current round.
    let woken_for: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let checked_in = AtomicUsize::new(0);
    let coordinator = std::thread::current();
    let cpu0 = Cpu::now()?;
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<Thread> = (0..threads)
            .map(|i| {
                let (woken_for, checked_in, coordinator) =
                    (&woken_for, &checked_in, coordinator.clone());
                s.spawn(move || {
                    for round in 1..=rounds {
                        if checked_in.fetch_add(1, Ordering::AcqRel) + 1 == threads {
                            coordinator.unpark();
                        }
                        while woken_for[i].load(Ordering::Acquire) < round {
                            std::thread::park();
                        }
                    }
                })
                .thread()
                .clone()
            })
            .collect();
        for round in 1..=rounds {
            while checked_in.load(Ordering::Acquire) < threads {
                std::thread::park();
            }
            checked_in.store(0, Ordering::Release);
            for (slot, thread) in woken_for.iter().zip(&handles) {
                slot.store(round, Ordering::Release);
                thread.unpark();
            }
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = Cpu::now()?.since(cpu0);
    let wakeups = (threads as u64 * rounds) as f64;
    Ok(WakeupFloor {
        threads,
        cpu_us: (cpu.user + cpu.sys).as_secs_f64() * 1e6 / wakeups,
        voluntary_switches: cpu.voluntary_switches as f64 / wakeups,
        wakeups_per_sec: wakeups / elapsed.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_wakes_every_thread() {
        let f = measure(4, 200).unwrap();
        assert_eq!(f.threads, 4);
        assert!(f.cpu_us > 0.0 && f.wakeups_per_sec > 0.0, "{f:?}");
        // 800 wake-ups of threads that parked long before: most found their thread asleep.
        assert!(f.voluntary_switches > 0.0, "{f:?}");
    }
}
