//! The monotonic clock that link timestamps use: nanoseconds since a process-wide
//! epoch taken at first use (std's monotonic `Instant`, CLOCK_MONOTONIC on Linux).

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// Monotonic time, ns since the process epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}
