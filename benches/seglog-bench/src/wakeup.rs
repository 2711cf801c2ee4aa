//! The CPU floor of a blocking append: what one sleep and wake-up of a thread costs here.
//!
//! Every durable append from a blocking thread sleeps at least once (its thread waits for the
//! group's fsync) and is woken by another thread, so no blocking log can spend less CPU per
//! append than one sleep + wake-up. This measures that alone, with no I/O and no log: `N`
//! threads each check in and sleep; a coordinating thread, once all have checked in, wakes
//! every one, round after round, as a group commit's leader acknowledges its group. CPU
//! (`getrusage`, the whole process) over wake-ups is the floor the append runs' "CPU
//! µs/append" column compares with.
//!
//! Two ways to wake, two floors: one `unpark` per thread ([`WakeBy::EachThread`], one
//! `futex` call each, as a heap of relays or a loop of unparks does), and one call for the
//! whole group ([`WakeBy::OneCall`]: every thread sleeps on one shared word, as seglog's
//! blocked appenders do since 2026-12-05).

use crate::usage::Cpu;
use anyhow::Result;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Instant;

/// How the coordinator wakes the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeBy {
    /// `Thread::unpark`, thread by thread.
    EachThread,
    /// One `futex` wake-up of every thread asleep on a shared word.
    OneCall,
}

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

/// `threads` threads put to sleep and woken `rounds` times each.
pub fn measure(threads: usize, rounds: u64, by: WakeBy) -> Result<WakeupFloor> {
    let threads = threads.max(1);
    let cpu0 = Cpu::now()?;
    let started = Instant::now();
    match by {
        WakeBy::EachThread => unpark_each(threads, rounds),
        WakeBy::OneCall => one_call(threads, rounds),
    }
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

fn unpark_each(threads: usize, rounds: u64) {
    // Round each thread has been woken for; threads checked in for the current round.
    let woken_for: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let checked_in = AtomicUsize::new(0);
    let coordinator = std::thread::current();
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
}

/// Every thread sleeps on one word holding the round; the coordinator stores the next round
/// and wakes them all with one call.
fn one_call(threads: usize, rounds: u64) {
    use rustix::thread::futex;
    use std::sync::atomic::AtomicU32;
    let round_word = AtomicU32::new(0);
    let checked_in = AtomicUsize::new(0);
    let coordinator = std::thread::current();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (round_word, checked_in, coordinator) =
                (&round_word, &checked_in, coordinator.clone());
            s.spawn(move || {
                for round in 1..=rounds as u32 {
                    if checked_in.fetch_add(1, Ordering::AcqRel) + 1 == threads {
                        coordinator.unpark();
                    }
                    loop {
                        let seen = round_word.load(Ordering::Acquire);
                        if seen >= round {
                            break;
                        }
                        // Returns at once if the word moved; spurious returns look again.
                        let _ = futex::wait(round_word, futex::Flags::PRIVATE, seen, None);
                    }
                }
            });
        }
        for round in 1..=rounds as u32 {
            while checked_in.load(Ordering::Acquire) < threads {
                std::thread::park();
            }
            checked_in.store(0, Ordering::Release);
            round_word.store(round, Ordering::Release);
            let _ = futex::wake(&round_word, futex::Flags::PRIVATE, u32::MAX >> 1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_wakes_every_thread() {
        for by in [WakeBy::EachThread, WakeBy::OneCall] {
            let f = measure(4, 200, by).unwrap();
            assert_eq!(f.threads, 4);
            assert!(f.cpu_us > 0.0 && f.wakeups_per_sec > 0.0, "{f:?}");
            // 800 wake-ups of threads that slept long before: most found their thread asleep.
            assert!(f.voluntary_switches > 0.0, "{f:?}");
        }
    }
}
