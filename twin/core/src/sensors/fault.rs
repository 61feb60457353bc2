//! The sensor fault layer: sits between a sensor model's output and its consumer and
//! can make any channel stuck, biased, drifting, noisy, scaled, late or absent.
//!
//! Channels are named `sensor.channel` (e.g. `imu.gyro_x`, `baro.pressure`); a fault's
//! `channel` may end in `*` to match every channel with that prefix (`imu.*`).

use crate::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a fault does to a channel's value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SensorFault {
    /// Holds the first value seen after the fault starts.
    Stuck,
    /// Outputs a fixed value.
    StuckAt {
        /// The value, in the channel's unit.
        value: f64,
    },
    /// Adds a constant.
    Bias {
        /// Offset, channel unit.
        value: f64,
    },
    /// Adds rate x (t - start).
    Drift {
        /// Drift rate, channel unit per second.
        rate_per_s: f64,
    },
    /// Adds white Gaussian noise.
    Noise {
        /// Standard deviation, channel unit.
        sigma: f64,
    },
    /// Multiplies by a factor.
    Scale {
        /// Factor (1 = no change).
        factor: f64,
    },
    /// No output at all (the sample is invalid / absent).
    Dropout,
    /// Outputs the value the channel had `delay_s` earlier.
    Latency {
        /// Delay, s.
        delay_s: f64,
    },
}

/// A fault on a channel pattern over a time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Channel name or prefix pattern ending in `*`.
    pub channel: String,
    /// The fault.
    pub fault: SensorFault,
    /// Start time, s.
    pub start_s: f64,
    /// End time, s (open-ended if absent).
    #[serde(default)]
    pub end_s: Option<f64>,
}

/// Bound on the latency history per fault (samples).
const LATENCY_HISTORY_MAX: usize = 16_384;

#[derive(Debug, Clone)]
struct Active {
    spec: FaultSpec,
    held: Vec<(String, f64)>,
    history: VecDeque<(String, f64, f64)>,
}

/// Applies faults to channel values; deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct FaultLayer {
    faults: Vec<Active>,
    rng: SimRng,
}

impl FaultLayer {
    /// An empty layer with its own random stream.
    pub fn new(rng: SimRng) -> Self {
        Self {
            faults: Vec::new(),
            rng,
        }
    }

    /// Adds a fault.
    pub fn add(&mut self, spec: FaultSpec) {
        self.faults.push(Active {
            spec,
            held: Vec::new(),
            history: VecDeque::new(),
        });
    }

    /// Removes every fault whose channel pattern equals `channel`.
    pub fn clear(&mut self, channel: &str) {
        self.faults.retain(|f| f.spec.channel != channel);
    }

    /// Number of configured faults.
    pub fn len(&self) -> usize {
        self.faults.len()
    }

    /// True when no fault is configured.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Passes `value` of `channel` at time `t_s` through every matching active fault,
    /// in the order they were added. `None` means the sample is absent.
    pub fn apply(&mut self, channel: &str, t_s: f64, value: f64) -> Option<f64> {
        let mut v = value;
        for f in &mut self.faults {
            if !matches(&f.spec.channel, channel) {
                continue;
            }
            // Latency needs history even before the fault starts.
            if let SensorFault::Latency { delay_s } = f.spec.fault {
                f.history.push_back((channel.to_string(), t_s, v));
                while f.history.len() > LATENCY_HISTORY_MAX {
                    f.history.pop_front();
                }
                let active = t_s >= f.spec.start_s && f.spec.end_s.is_none_or(|e| t_s < e);
                if active {
                    let target = t_s - delay_s;
                    let old = f
                        .history
                        .iter()
                        .rev()
                        .filter(|(c, _, _)| c == channel)
                        .find(|(_, t, _)| *t <= target)
                        .map(|(_, _, x)| *x);
                    match old {
                        Some(x) => v = x,
                        None => return None,
                    }
                }
                continue;
            }
            let active = t_s >= f.spec.start_s && f.spec.end_s.is_none_or(|e| t_s < e);
            if !active {
                f.held.retain(|(c, _)| c != channel);
                continue;
            }
            v = match f.spec.fault {
                SensorFault::Stuck => match f.held.iter().find(|(c, _)| c == channel) {
                    Some((_, x)) => *x,
                    None => {
                        f.held.push((channel.to_string(), v));
                        v
                    }
                },
                SensorFault::StuckAt { value } => value,
                SensorFault::Bias { value } => v + value,
                SensorFault::Drift { rate_per_s } => v + rate_per_s * (t_s - f.spec.start_s),
                SensorFault::Noise { sigma } => v + sigma * self.rng.normal(),
                SensorFault::Scale { factor } => v * factor,
                SensorFault::Dropout => return None,
                SensorFault::Latency { .. } => v,
            };
        }
        Some(v)
    }
}

fn matches(pattern: &str, channel: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => channel.starts_with(prefix),
        None => pattern == channel,
    }
}
