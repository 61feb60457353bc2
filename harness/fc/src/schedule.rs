//! Periodic messages on absolute deadlines.
//!
//! A message due every `period_s` goes out in the cycle nearest each deadline: a cycle
//! up to `early_s` before the deadline counts (in real time a 10 ms cycle that comes a
//! little early must not push the message to the next cycle, which turned a 50 Hz
//! `RCS_Command` into 39 Hz when the schedule restarted from the actual send time).
//! The next deadline is the previous one plus the period; only a send more than
//! `early_s` late (activation after a pause, a stalled processor) restarts the schedule
//! from now. In lockstep, where cycles fall exactly on 10 ms, the sends are those of a
//! plain "every other cycle" schedule.

/// A periodic schedule on absolute deadlines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    period_s: f64,
    early_s: f64,
    next_s: f64,
}

impl Deadlines {
    /// A schedule with its first deadline at `first_s`.
    pub fn new(period_s: f64, early_s: f64, first_s: f64) -> Self {
        Self {
            period_s,
            early_s,
            next_s: first_s,
        }
    }

    /// True when a message is due in the cycle at `t_s`; advances the schedule.
    pub fn due(&mut self, t_s: f64) -> bool {
        if t_s + self.early_s < self.next_s {
            return false;
        }
        self.next_s = if t_s - self.next_s > self.early_s {
            t_s + self.period_s
        } else {
            self.next_s + self.period_s
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(times: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut d = Deadlines::new(0.02, 0.005, 0.0);
        times.filter(|t| d.due(*t)).collect()
    }

    #[test]
    fn exact_cycles_send_every_other_cycle() {
        let s = sends((0..1000).map(|k| f64::from(k) * 0.01));
        assert_eq!(s.len(), 500);
        for w in s.windows(2) {
            assert!((w[1] - w[0] - 0.02).abs() < 1e-9, "{w:?}");
        }
    }

    #[test]
    fn jittered_cycles_keep_50_hz() {
        // Cycles every 10 ms with up to +-3 ms of jitter (deterministic spread).
        let mut x = 7u64;
        let times = (0..1000).map(|k| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = ((x >> 33) as f64 / f64::from(1u32 << 31) - 0.5) * 0.006;
            f64::from(k) * 0.01 + 0.0049 + jitter
        });
        let s = sends(times);
        assert!((499..=501).contains(&s.len()), "{} sends in 10 s", s.len());
    }

    #[test]
    fn a_long_pause_restarts_the_schedule() {
        let mut d = Deadlines::new(0.02, 0.005, 0.0);
        assert!(d.due(0.0));
        assert!(d.due(0.02));
        // Nothing for a second, then cycles resume: one send, then every 20 ms.
        assert!(d.due(1.03));
        assert!(!d.due(1.04));
        assert!(d.due(1.05));
    }
}
