//! What the real-time loop's thread asks of the operating system, and how it waits.
//!
//! The loop runs on a thread of its own (never a worker of the async runtime). Before
//! the first step it asks for, in order:
//! - **timer slack 1 ns** (`PR_SET_TIMERSLACK`; always granted: it is the thread's own
//!   setting). Linux's default slack of 50 us is the largest single source of wake-up
//!   lateness on an idle machine;
//! - **`SCHED_FIFO`** at [`RtOptions::fifo_priority`] when asked (needs `CAP_SYS_NICE`
//!   or an `RLIMIT_RTPRIO`; refused without, and the loop stays `SCHED_OTHER`);
//! - **`mlockall(MCL_CURRENT | MCL_FUTURE)`** (needs `CAP_IPC_LOCK` or a large
//!   enough `RLIMIT_MEMLOCK`): no page fault on the loop;
//! - **pinning to one CPU** when [`RtOptions::cpu`] names one (any process may pin
//!   itself; it helps when that CPU is isolated, e.g. `isolcpus=`).
//!
//! [`Grants`] says what was and was not granted, in one line for the run's output.
//!
//! Waiting for a step's deadline ([`Pacer::wait_until`]) sleeps on the absolute
//! deadline (`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`, so no drift from
//! computing a relative time) to [`Pacer::spin_ns`] before it, then spins (bounded by
//! that margin) to the deadline: the kernel's wake-up latency is absorbed by the spin.

use nix_rt::sys::time::TimeSpec;
use nix_rt::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};
use std::fmt;

/// What the real-time loop asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RtOptions {
    /// `SCHED_FIFO` priority (1 to 99), or `None` to stay `SCHED_OTHER`. Not asked by
    /// default: the loop's sends wake the links' tasks through the async runtime's
    /// scheduler, whose queue is behind a lock, so a FIFO loop can wait on a
    /// `SCHED_OTHER` thread that the flight computer has pushed off the CPU (measured
    /// worse than `SCHED_OTHER` on a 2-core machine; a lock-free hand-off is the cure).
    pub fifo_priority: Option<u8>,
    /// Lock the process's memory.
    pub lock_memory: bool,
    /// Pin the loop's thread to this CPU.
    pub cpu: Option<usize>,
    /// How long before each deadline the loop stops sleeping and spins, ns.
    pub spin_ns: u64,
}

impl Default for RtOptions {
    /// Locked memory when granted, no `SCHED_FIFO` (see [`RtOptions::fifo_priority`]),
    /// no pinning, 50 us spin.
    fn default() -> Self {
        Self {
            fifo_priority: None,
            lock_memory: true,
            cpu: None,
            spin_ns: 50_000,
        }
    }
}

/// What the operating system granted the loop's thread (`Err`: why not).
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    /// Timer slack set to 1 ns.
    pub timer_slack: Result<(), String>,
    /// `SCHED_FIFO` at this priority (`None`: not asked).
    pub fifo: Option<Result<u8, String>>,
    /// Memory locked (`None`: not asked).
    pub memory_locked: Option<Result<(), String>>,
    /// Pinned to this CPU (`None`: not asked).
    pub pinned: Option<Result<usize, String>>,
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |r: &Result<(), String>, yes: &str, no: &str| match r {
            Ok(()) => yes.to_string(),
            Err(e) => format!("{no} ({e})"),
        };
        let mut parts = vec![word(
            &self.timer_slack,
            "timer slack 1 ns",
            "default timer slack",
        )];
        parts.push(match &self.fifo {
            Some(Ok(p)) => format!("SCHED_FIFO {p}"),
            Some(Err(e)) => format!("SCHED_FIFO not granted ({e}), SCHED_OTHER"),
            None => "SCHED_OTHER (FIFO not asked)".into(),
        });
        parts.push(match &self.memory_locked {
            Some(r) => word(r, "memory locked", "memory not locked"),
            None => "memory not locked (not asked)".into(),
        });
        parts.push(match &self.pinned {
            Some(Ok(c)) => format!("pinned to CPU {c}"),
            Some(Err(e)) => format!("not pinned ({e})"),
            None => "not pinned".into(),
        });
        write!(f, "real-time loop: {}", parts.join(", "))
    }
}

/// Applies `opts` to the calling thread (and, for memory locking, the process) and
/// says what was granted. Nothing here needs privileges to succeed or fail cleanly.
pub fn prepare_current_thread(opts: &RtOptions) -> Grants {
    let timer_slack = nix_rt::sys::prctl::set_timerslack(1).map_err(|e| e.desc().to_string());
    let fifo = opts.fifo_priority.map(|p| {
        let p = p.clamp(1, 99);
        let prio = thread_priority::ThreadPriority::Crossplatform(
            thread_priority::ThreadPriorityValue::try_from(p.min(99)).map_err(|e| e.to_string())?,
        );
        thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            prio,
            thread_priority::ThreadSchedulePolicy::Realtime(
                thread_priority::RealtimeThreadSchedulePolicy::Fifo,
            ),
        )
        .map(|()| p)
        .map_err(|e| match e {
            thread_priority::Error::OS(code) => {
                nix_rt::errno::Errno::from_raw(code).desc().to_string()
            }
            e => format!("{e:?}"),
        })
    });
    let memory_locked = opts.lock_memory.then(|| {
        use nix_rt::sys::mman::{MlockAllFlags, mlockall};
        mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE)
            .map_err(|e| e.desc().to_string())
    });
    let pinned = opts.cpu.map(|c| {
        use nix_rt::sched::{CpuSet, sched_setaffinity};
        let mut set = CpuSet::new();
        set.set(c).map_err(|e| e.desc().to_string())?;
        sched_setaffinity(nix_rt::unistd::Pid::from_raw(0), &set)
            .map(|()| c)
            .map_err(|e| e.desc().to_string())
    });
    Grants {
        timer_slack,
        fifo,
        memory_locked,
        pinned,
    }
}

/// Waits for absolute deadlines on the links' clock ([`capsule_links::clock::now_ns`]).
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    /// CLOCK_MONOTONIC minus the links' clock, ns.
    offset_ns: i128,
    /// How long before a deadline sleeping stops and spinning starts, ns.
    pub spin_ns: u64,
}

impl Pacer {
    /// A pacer that spins the last `spin_ns` before each deadline.
    pub fn new(spin_ns: u64) -> Self {
        let links_ns = capsule_links::clock::now_ns();
        let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
            i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
        });
        let links_after = capsule_links::clock::now_ns();
        Self {
            offset_ns: mono - i128::from(links_ns / 2 + links_after / 2),
            spin_ns,
        }
    }

    /// Returns once the links' clock has reached `deadline_ns`: an absolute sleep to
    /// `spin_ns` before it, then a spin.
    pub fn wait_until(&self, deadline_ns: u64) {
        let wake_ns = deadline_ns.saturating_sub(self.spin_ns);
        let mono = i128::from(wake_ns) + self.offset_ns;
        let t = TimeSpec::new((mono / 1_000_000_000) as i64, (mono % 1_000_000_000) as i64);
        // A signal ends the sleep early: sleep again until the spin margin.
        while capsule_links::clock::now_ns() < wake_ns {
            let _ = clock_nanosleep(
                ClockId::CLOCK_MONOTONIC,
                ClockNanosleepFlags::TIMER_ABSTIME,
                &t,
            );
        }
        while capsule_links::clock::now_ns() < deadline_ns {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_never_returns_before_the_deadline() {
        let p = Pacer::new(20_000);
        let t0 = capsule_links::clock::now_ns();
        for k in 1..=50u64 {
            let d = t0 + k * 500_000;
            p.wait_until(d);
            assert!(
                capsule_links::clock::now_ns() >= d,
                "step {k} returned early"
            );
        }
    }

    #[test]
    fn grants_name_what_was_refused() {
        let g = Grants {
            timer_slack: Ok(()),
            fifo: Some(Err("Operation not permitted".into())),
            memory_locked: Some(Ok(())),
            pinned: None,
        };
        assert_eq!(
            g.to_string(),
            "real-time loop: timer slack 1 ns, SCHED_FIFO not granted (Operation not permitted), SCHED_OTHER, memory locked, not pinned"
        );
    }
}
