//! The twin snapshot stream: what a viewer of a run draws, how it travels and how it is
//! kept.
//!
//! A stream is [JSON Lines](https://jsonlines.org): one [`Record`] per line, the first
//! a [`Record::Header`], then [`Record::Snapshot`]s (the twin's state at 60 Hz or
//! more), [`Record::Event`]s as they happen, and a [`Record::End`] with the verdicts
//! when the run has been judged. The same lines travel over a Unix socket to live
//! viewers ([`Publisher`], [`Subscriber`]) and are kept in a file for replay
//! ([`read_file`]): `socat - UNIX-CONNECT:PATH | jq` reads a live run, `jq` a file.
//!
//! The publisher never waits for a viewer: each viewer has a bounded queue of lines
//! that drops its oldest line when full (counted), a writer thread of its own, and a
//! write timeout after which a viewer that stopped reading is let go. A viewer that
//! attaches while a run goes gets the header, the history so far (a snapshot per
//! second of run time and every event) and then the live lines.
//!
//! Frames: positions and attitudes are Earth-fixed (`ecef`: x through the equator at
//! longitude 0, z through the north pole), metres; attitudes are `ecef_from_body`
//! quaternions `[x, y, z, w]`, body x along the capsule's axis of symmetry towards the
//! heat shield.

mod publish;
mod subscribe;

pub use publish::{Publisher, PublisherStats};
pub use subscribe::{Subscriber, read_file};

use serde::{Deserialize, Serialize};

/// The format's name and version, in every header.
pub const FORMAT: &str = "capsule-twin-stream/1";

/// The longest line a reader accepts, bytes; a longer one is skipped and counted.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Snapshot rate of a live stream, Hz.
pub const SNAPSHOT_RATE_HZ: f64 = 60.0;

/// One line of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// What the run is: first in every stream.
    Header(Header),
    /// The twin's state at one time.
    Snapshot(Box<Snapshot>),
    /// A named event (`fc_mode:ENTRY`, `inject:<id>`, `inject_end:<id>`,
    /// `drogue_deploy`, `splashdown`, ...).
    Event {
        /// Run time, s.
        t_s: f64,
        /// The event's name, as scenarios name it.
        name: String,
    },
    /// The run's end and final verdicts.
    End(End),
}

/// What a stream is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// Scenario id.
    pub scenario_id: String,
    /// Scenario title.
    pub title: String,
    /// `lockstep` or `realtime`.
    pub clock: String,
    /// `live` (a run going on) or `replay` (a recorded run).
    pub source: String,
    /// The planet's equatorial radius, m (the scene is drawn at true scale).
    pub planet_radius_m: f64,
    /// The landing target, if the scenario has one: (latitude, longitude), deg.
    pub target_deg: Option<(f64, f64)>,
    /// The capsule's outer diameter, m.
    pub capsule_diameter_m: f64,
    /// The expectations the run is judged by, in scenario order.
    pub expectations: Vec<ExpectationInfo>,
    /// Planned injections: (start time s, end time s if bounded, id).
    pub injections: Vec<(f64, Option<f64>, String)>,
    /// The run's end time, s, when known (replays).
    pub t_end_s: Option<f64>,
}

/// One expectation of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationInfo {
    /// Its id.
    pub id: String,
    /// The requirement it verifies.
    pub requirement: String,
}

/// The live state of an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectationState {
    /// Not met by what the run has shown so far (it may still be).
    Pending,
    /// Met by what the run has shown so far (the run may still break it).
    Holding,
    /// Judged at the end: passed.
    Passed,
    /// Judged at the end: failed.
    Failed,
}

/// An expectation's state with its measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationStatus {
    /// The expectation's id.
    pub id: String,
    /// Its state.
    pub state: ExpectationState,
    /// The measured value, as the verdict states it.
    pub measured: String,
}

/// A parachute's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chute {
    /// Its name in the vehicle file (`drogue`, `main`, ...).
    pub name: String,
    /// `stowed`, `reefed`, `full`, `cut`, ... as the twin names its phases.
    pub phase: String,
    /// Drag area, m^2 (0 when stowed or cut).
    pub drag_area_m2: f64,
}

/// A thruster's effective throttle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thruster {
    /// Its name in the vehicle file.
    pub name: String,
    /// Throttle, 0 to 1.
    pub throttle: f64,
    /// Its thrust direction in the body frame (unit vector; the plume points the
    /// other way).
    pub direction_body: [f64; 3],
    /// Its position in the body frame, m.
    pub position_body_m: [f64; 3],
}

/// What the avionics say about themselves and their navigation (decoded from their
/// telemetry; `None` until they have said it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Avionics {
    /// The reported mode's name.
    pub mode: Option<String>,
    /// The navigated altitude, m.
    pub est_altitude_m: Option<f64>,
    /// The navigated speed, m/s.
    pub est_speed_m_s: Option<f64>,
    /// Navigation valid.
    pub nav_valid: Option<bool>,
    /// GNSS fix in use.
    pub gnss_fix: Option<bool>,
    /// Fault flags as reported.
    pub fault_flags: Option<u32>,
    /// Run time of the last status, s.
    pub last_status_t_s: Option<f64>,
}

/// A link's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkHealth {
    /// `can`, `imu` or `gnss`.
    pub name: String,
    /// Frames (CAN) or chunks (serial) sent to the avionics.
    pub tx: u64,
    /// Frames or chunks received from the avionics.
    pub rx: u64,
    /// CRC, framing and decode errors.
    pub errors: u64,
    /// Drops (queue overflows, injected drops).
    pub drops: u64,
    /// Run time since the avionics last sent on it, s (`None`: never).
    pub silent_s: Option<f64>,
}

/// The twin's state at one time, as a viewer draws it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Run time, s.
    pub t_s: f64,
    /// The twin's phase (`mated`, `free`, `entry`, `descent`, `landed`, ...).
    pub phase: String,
    /// Position, Earth-fixed, m.
    pub position_ecef_m: [f64; 3],
    /// Velocity relative to the Earth, Earth-fixed axes, m/s.
    pub velocity_ecef_m_s: [f64; 3],
    /// Attitude, `ecef_from_body` quaternion `[x, y, z, w]`.
    pub ecef_from_body_xyzw: [f64; 4],
    /// Geodetic latitude, deg.
    pub latitude_deg: f64,
    /// Longitude, deg.
    pub longitude_deg: f64,
    /// Altitude, m.
    pub altitude_m: f64,
    /// Airspeed, m/s.
    pub airspeed_m_s: f64,
    /// Mach number.
    pub mach: f64,
    /// Dynamic pressure, Pa.
    pub dynamic_pressure_pa: f64,
    /// Sensed acceleration, g.
    pub load_factor_g: f64,
    /// Stagnation heat flux, W/m^2.
    pub heat_flux_w_m2: f64,
    /// Heat-shield surface temperature, K.
    pub heat_shield_surface_k: f64,
    /// Bank angle, deg.
    pub bank_deg: f64,
    /// Parachutes.
    pub parachutes: Vec<Chute>,
    /// Thrusters.
    pub thrusters: Vec<Thruster>,
    /// GNSS signal lost to the plasma sheath (blackout) or to an injection.
    pub gnss_blackout: bool,
    /// The avionics' view.
    pub avionics: Avionics,
    /// Link health.
    pub links: Vec<LinkHealth>,
    /// Injections active now, by id.
    pub active_injections: Vec<String>,
    /// Expectation states, when re-judged since the last snapshot (else empty: the
    /// last ones stand).
    pub expectations: Vec<ExpectationStatus>,
}

/// The run's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// Run time at the end, s.
    pub t_s: f64,
    /// `PASS`, `FAIL`, `ERROR` or `INCOMPLETE`.
    pub verdict: String,
    /// Every expectation's final state.
    pub expectations: Vec<ExpectationStatus>,
}

/// Errors of the stream. None is fatal for a run: a viewer that cannot be served is
/// let go.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A socket or file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The socket or file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("{path}:{line}: not a twin stream record: {message}")]
    BadLine {
        /// The socket or file.
        path: String,
        /// Line number, from 1.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The first line is not a header of this format.
    #[error("{path}: not a {FORMAT} stream (first line: {first})")]
    NotAStream {
        /// The socket or file.
        path: String,
        /// The start of the first line.
        first: String,
    },
}

impl Record {
    /// The record as one line, with its newline.
    pub fn to_line(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys, no
        // non-finite numbers reach here unclamped (serde_json writes them as null).
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"kind":"event","t_s":0,"name":"unserialisable:{e}"}}"#)
        });
        s.push('\n');
        s
    }

    /// Reads one line (without its newline).
    pub fn from_line(line: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The record's run time, s (headers: none).
    pub fn t_s(&self) -> Option<f64> {
        match self {
            Record::Header(_) => None,
            Record::Snapshot(s) => Some(s.t_s),
            Record::Event { t_s, .. } => Some(*t_s),
            Record::End(e) => Some(e.t_s),
        }
    }
}

impl Header {
    /// A header with the format set and nothing else known.
    pub fn new(scenario_id: &str, title: &str, clock: &str, source: &str) -> Self {
        Self {
            format: FORMAT.into(),
            scenario_id: scenario_id.into(),
            title: title.into(),
            clock: clock.into(),
            source: source.into(),
            planet_radius_m: 6_378_137.0,
            target_deg: None,
            capsule_diameter_m: 2.5,
            expectations: Vec::new(),
            injections: Vec::new(),
            t_end_s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_lines() {
        let recs = vec![
            Record::Header(Header::new("SCN-001", "Nominal", "lockstep", "live")),
            Record::Snapshot(Box::new(Snapshot {
                t_s: 1.5,
                altitude_m: 120_000.0,
                parachutes: vec![Chute {
                    name: "drogue".into(),
                    phase: "reefed".into(),
                    drag_area_m2: 3.0,
                }],
                ..Snapshot::default()
            })),
            Record::Event {
                t_s: 2.0,
                name: "inject:imu-dropout".into(),
            },
            Record::End(End {
                t_s: 3.0,
                verdict: "PASS".into(),
                expectations: vec![ExpectationStatus {
                    id: "beacon".into(),
                    state: ExpectationState::Passed,
                    measured: "at 1000 s".into(),
                }],
            }),
        ];
        for r in recs {
            let line = r.to_line();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(Record::from_line(line.trim_end()).expect("parses"), r);
        }
        // The kind tag is the documented one.
        let l = Record::Event {
            t_s: 0.0,
            name: "x".into(),
        }
        .to_line();
        assert!(l.starts_with(r#"{"kind":"event""#), "{l}");
    }
}
