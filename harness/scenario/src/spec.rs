//! The scenario file format.
//!
//! ```toml
//! [scenario]
//! id = "SCN-001"
//! title = "Nominal entry, descent and recovery"
//! requirements = ["REQ-SEQ-010", "REQ-REC-001"]
//!
//! [initial]
//! vehicle = "../fixtures/vehicles/capsule-srcv.toml"   # relative to this file
//! phase = "entry"      # where it starts: "entry", "orbit" (with `orbit` and `deorbit`)
//!                      # or "descent" (with `descent`, under the drogue)
//! seed = 1
//! bank_deg = 60.0                                      # initial attitude's lift vector
//! entry = { altitude_m = 120000.0, speed_m_s = 7400.0, flight_path_angle_deg = -1.6,
//!           heading_deg = 45.0, latitude_deg = 20.0, longitude_deg = -160.0 }
//!
//! [run]
//! max_time_s = 2000.0
//! after_landing_s = 30.0
//!
//! [[expect]]
//! id = "drogue-subsonic"
//! requirement = "REQ-SEQ-010"
//! at = "pyro_fired:drogue_primary"          # the first time this event happens...
//! check = [{ signal = "truth.mach", max = 0.9 }, { signal = "truth.altitude_m", min = 13000.0, max = 16000.0 }]
//!
//! [[expect]]
//! id = "beacon-after-splashdown"
//! requirement = "REQ-REC-001"
//! after = "splashdown"                       # ...or `event` within `window_s` after `after`
//! event = "beacon_on"
//! window_s = [0.0, 10.0]
//!
//! [[expect]]
//! id = "landing-speed"
//! requirement = "REQ-LND-001"
//! outcome = "landing_speed_m_s"               # ...or a run outcome within bounds
//! max = 9.0
//!
//! [[expect]]
//! id = "heartbeat"
//! requirement = "REQ-TLM-001"
//! message = "FC_Status"                       # ...or an FC message rate
//! min_rate_hz = 9.0
//!
//! [[expect]]
//! id = "modes"
//! requirement = "REQ-SEQ-001"
//! modes = ["ENTRY", "DROGUE", "MAIN", "SPLASHDOWN", "RECOVERY"]   # ...or the FC's mode sequence
//!
//! [[expect]]
//! id = "no-misfire"
//! requirement = "REQ-PYR-002"
//! never = "pyro_no_fire:*"                    # ...or an event that must never happen
//!
//! [[expect]]
//! id = "one-drogue-shot"
//! requirement = "REQ-PYR-002"
//! count = "pyro_fired:drogue_*"               # ...or how often an event happens
//! max = 1                                      #    (`min`/`max`, scoped like `never`)
//!
//! [[expect]]
//! id = "main-after-drogue"
//! requirement = "REQ-SEQ-020"
//! event = "pyro_fired:main_*"                 # ...or an order: `event` after `after`
//! after = "pyro_fired:drogue_*"               #    and/or before `before` (no window)
//! before = "splashdown"
//!
//! [[expect]]
//! id = "nav-under-drogue"
//! requirement = "REQ-NAV-010"
//! during = "DROGUE"                           # scope of `never`/`always`: a mode, or
//!                                             # `from`/`until` events
//! always = [{ signal = "can.FC_Status.FC_EstAltitude", near = "truth.altitude_m", tolerance = 300.0 },
//!           { signal = "truth.mach", max = 0.9 }]   # ...or bounds at every sample
//! ```
//!
//! Signals: the truth signals below (at the recorded snapshots: every second and at
//! every event, linearly interpolated between them) and `can.<Message>.<Signal>`, a
//! CAN signal as it went over the wire (the flight computer's messages and the
//! devices'), sampled at each frame and held until the next; checked against the DBC
//! before anything runs. A check bounds the value (`min`, `max`) and/or keeps it within
//! `tolerance` of another signal (`near`).
//!
//! Events: `splashdown`, `beacon_on`, `pyro_fired:<channel>`, `pyro_no_fire:<channel>`,
//! `inject:<id>` (an injection started), `fc_fault` (the FC reported a fault) or
//! `fc_fault:0xHHHH` (with that `FC_EventDetail`, see the ICD), `fc_fault_cleared` and
//! `fc_fault_cleared:0xHHHH` (the FC reported the fault gone),
//! `pyro_not_armed`, `fc_mode:<MODE>`, `separation`, `brown_out` and `bus_restored`
//! (the bus-powered CAN nodes stop and restart); channels `drogue_primary`, `drogue_backup`,
//! `main_primary`, `main_backup`, `drogue_release`, `main_release`; a `*` matches any.
//! Outcome `landing_vertical_speed_m_s` is the downward part of the impact speed.
//! Truth signals: `truth.altitude_m`, `truth.mach`, `truth.airspeed_m_s`,
//! `truth.dynamic_pressure_pa`, `truth.load_factor_g`, `truth.heat_flux_w_m2`,
//! `truth.heat_shield_surface_k`, `truth.bondline_k`. Outcomes: `landing_speed_m_s`,
//! `peak_load_factor_g`, `peak_heat_flux_w_m2`, `peak_bondline_k`, `landing_time_s`,
//! `injected:<link>.<kind>` (bus faults injected, e.g. `injected:imu.noise_burst`).

use serde::{Deserialize, Serialize};
use twin_core::config::{Checks, ConfigError, Source};

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Identity and traceability.
    pub scenario: Identity,
    /// Initial conditions.
    pub initial: Initial,
    /// Run limits.
    #[serde(default)]
    pub run: RunLimits,
    /// Expectations.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// The injection timeline.
    #[serde(default)]
    pub inject: Vec<InjectSpec>,
}

/// One injection of the timeline: a fault, when it starts, how long it lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectSpec {
    /// Id, unique in the file.
    pub id: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Start at this simulation time, s...
    #[serde(default)]
    pub at_s: Option<f64>,
    /// ...or when this event first happens...
    #[serde(default)]
    pub when: Option<String>,
    /// ...(plus this delay, s)...
    #[serde(default)]
    pub delay_s: f64,
    /// ...or when the truth altitude falls below this, m.
    #[serde(default)]
    pub altitude_below_m: Option<f64>,
    /// Duration, s (for the rest of the run if absent).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// The fault.
    pub fault: FaultSpecToml,
}

/// Fault kinds of the injection timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpecToml {
    /// A pyro initiator loses continuity.
    PyroOpenCircuit {
        /// Channel name.
        channel: String,
    },
    /// A parachute fails.
    Parachute {
        /// `drogue` or `main`.
        name: String,
        /// `fails_to_deploy`, `partial_inflation` (with `fraction`) or `line_cut` (with `after_s`).
        failure: String,
        /// Fraction of the drag area reached (partial inflation).
        #[serde(default)]
        fraction: Option<f64>,
        /// Seconds after line stretch (line cut).
        #[serde(default)]
        after_s: Option<f64>,
    },
    /// A sensor channel fault (see `twin_core::sensors::fault`).
    Sensor {
        /// Channel, e.g. `imu.gyro_x`, `imu.*`, `baro.pressure`, `gnss.altitude`.
        channel: String,
        /// The fault.
        fault: twin_core::sensors::fault::SensorFault,
    },
    /// Atmospheric density multiplier.
    DensityScale {
        /// Multiplier.
        scale: f64,
    },
    /// Heat-shield degradation: the ablator conducts `conductance_scale` times its
    /// rated conductance (thinner or cracked shield), so more heat reaches the bondline.
    HeatShield {
        /// Multiplier on the ablator conductance (> 1 degrades).
        conductance_scale: f64,
    },
    /// A power brown-out: the main bus is pulled down to at most `bus_voltage_v`
    /// (the bus-powered CAN nodes stop below 18 V and restart, disarmed, when it
    /// recovers; pyro initiators need 22 V to fire).
    BrownOut {
        /// Bus voltage during the brown-out, V.
        bus_voltage_v: f64,
    },
    /// The GNSS receiver loses its fix.
    GnssLoss,
    /// A wind profile (north/east by altitude, linear between points).
    Wind {
        /// The points.
        profile: Vec<twin_core::atmosphere::WindPoint>,
    },
    /// The IMU resets: datagrams flagged invalid for the duration, then its counter
    /// restarts from zero.
    ImuReset,
    /// The flight computer resets (simulated flight computers: `SIM_Reset`); it boots
    /// for the injection's `duration_s` (1 s if absent).
    FcReset,
    /// A thruster fails: `stuck_open`, `stuck_closed`, or `degraded` (thrust scaled by
    /// `scale`, e.g. a deorbit motor under-performing).
    Thruster {
        /// Thruster name (vehicle file).
        thruster: String,
        /// `stuck_open`, `stuck_closed` or `degraded`.
        failure: String,
        /// Thrust multiplier (`degraded`).
        #[serde(default)]
        scale: Option<f64>,
    },
    /// A CAN node stops sending.
    NodeSilent {
        /// `baro`, `thermo`, `power`, `pyro` or `beacon`.
        node: String,
    },
    /// A bus fault from the link fault layer.
    Bus {
        /// `can`, `imu` or `gnss`.
        link: String,
        /// The fault (`capsule_links::fault::FaultKind`: drop, duplicate, delay,
        /// corrupt, reorder, insert_bytes, delete_bytes, noise_burst, stall,
        /// error_frame, babble).
        fault: capsule_links::fault::FaultKind,
        /// `tx` (harness to avionics), `rx` or `both`.
        #[serde(default)]
        direction: capsule_links::fault::Direction,
        /// Only CAN frames with this identifier.
        #[serde(default)]
        can_id: Option<u32>,
        /// Probability per packet.
        #[serde(default = "one")]
        probability: f64,
    },
}

fn one() -> f64 {
    1.0
}

/// Sensor channels the devices pass through the fault layer.
pub const SENSOR_CHANNELS: &[&str] = &[
    "imu.gyro_x",
    "imu.gyro_y",
    "imu.gyro_z",
    "imu.accel_x",
    "imu.accel_y",
    "imu.accel_z",
    "baro.pressure",
    "gnss.altitude",
    "gnss.latitude",
    "gnss.longitude",
];
/// CAN sensor and actuator nodes.
pub const NODES: &[&str] = &[
    "baro", "thermo", "power", "pyro", "beacon", "rcs", "deorbit",
];
use capsule_runner::devices::RCS_JETS;
/// Thrusters a `thruster` injection may name (the RCS jets, then the deorbit motor).
pub use capsule_runner::devices::THRUSTERS;

/// Identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Unique id.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// What it exercises and what the avionics must do.
    #[serde(default)]
    pub description: String,
    /// Requirement ids verified.
    pub requirements: Vec<String>,
}

/// Initial conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initial {
    /// Vehicle file, relative to the scenario file.
    pub vehicle: String,
    /// Where the scenario starts: `entry` (at the entry interface, `entry` given),
    /// `orbit` (free flight before the deorbit burn, `orbit` and `deorbit` given) or
    /// `descent` (under the drogue, `descent` given).
    pub phase: Phase,
    /// Seed of every random stream.
    #[serde(default)]
    pub seed: u64,
    /// Entry-interface state (as in the check cases, `twin_core::case::EntrySpec`).
    #[serde(default)]
    pub entry: Option<twin_core::case::EntrySpec>,
    /// Circular orbit (phase `orbit`).
    #[serde(default)]
    pub orbit: Option<OrbitSpec>,
    /// State under the drogue (phase `descent`): the same fields as `entry`, for a
    /// point in the drogue descent (below 20 km, subsonic).
    #[serde(default)]
    pub descent: Option<twin_core::case::EntrySpec>,
    /// Phase `descent`: how long before the start the drogue's primary initiator
    /// fired, s (the parachute's deployment sequence and the pyro controller's fired
    /// status are as they would be that long after). Default 30 s.
    #[serde(default)]
    pub drogue_fired_s_before: Option<f64>,
    /// Bank angle of the initial (trimmed) attitude, deg.
    #[serde(default)]
    pub bank_deg: f64,
    /// Landing target uploaded to the avionics (`MSN_Target`); without it the avionics
    /// hold the bank they were handed.
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// Deorbit burn plan uploaded to the avionics (`MSN_Deorbit`), phase `orbit`.
    #[serde(default)]
    pub deorbit: Option<DeorbitSpec>,
    /// Phase `orbit`: start mated to the host vehicle (FC in PRE_SEPARATION,
    /// separation switches closed) and separate during the run.
    #[serde(default)]
    pub separation: Option<SeparationSpec>,
}

impl Initial {
    /// The `FC_Mode` handed over with the state: PRE_SEPARATION (0) when the run starts
    /// mated to the host vehicle, else the phase's mode.
    pub fn handover_mode(&self) -> u8 {
        if self.separation.is_some() {
            0
        } else {
            self.phase.fc_mode()
        }
    }
}

/// Separation from the host vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationSpec {
    /// Release time, s (simulation time).
    pub at_s: f64,
    /// Velocity given by the separation springs, along the capsule's body -x axis
    /// (retrograde at the orbit attitude), m/s.
    pub delta_v_m_s: f64,
}

/// A circular orbit (attitude: nose along the velocity).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrbitSpec {
    /// Altitude above the equatorial radius, m.
    pub altitude_m: f64,
    /// Inclination, deg.
    pub inclination_deg: f64,
    /// Right ascension of the ascending node (from the prime meridian at t = 0), deg.
    #[serde(default)]
    pub raan_deg: f64,
    /// Argument of latitude at t = 0, deg.
    #[serde(default)]
    pub arg_latitude_deg: f64,
}

/// Landing target, WGS-84 geodetic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Latitude, deg.
    pub latitude_deg: f64,
    /// Longitude, deg.
    pub longitude_deg: f64,
}

/// The planned deorbit burn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeorbitSpec {
    /// Ignition time, s (simulation time).
    pub ignition_s: f64,
    /// Velocity change, m/s (retrograde).
    pub delta_v_m_s: f64,
}

/// Phases a scenario can start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// At the entry interface.
    Entry,
    /// In orbit, separated from the host vehicle, before the deorbit burn (FC mode
    /// COAST).
    Orbit,
    /// Under the drogue (FC mode DROGUE; the drogue primary initiator has fired).
    Descent,
}

impl Phase {
    /// Default time between the drogue's firing and the start of a `descent`
    /// scenario, s.
    pub const DROGUE_FIRED_S_BEFORE: f64 = 30.0;

    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Entry => "entry",
            Phase::Orbit => "orbit",
            Phase::Descent => "descent",
        }
    }

    /// The `FC_Mode` value handed over.
    pub fn fc_mode(self) -> u8 {
        match self {
            Phase::Entry => 3,
            Phase::Orbit => 1,
            Phase::Descent => 4,
        }
    }
}

/// Run limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunLimits {
    /// Stop after this simulated time, s.
    #[serde(default = "default_max")]
    pub max_time_s: f64,
    /// Keep running after splashdown, s.
    #[serde(default = "default_after")]
    pub after_landing_s: f64,
    /// Let the flight computer send frames with other nodes' identifiers (events
    /// `can_id_conflict:<Message>`) without failing the run (default: such a frame
    /// fails it, requirement `ICD-IDS`).
    #[serde(default)]
    pub allow_can_id_conflicts: bool,
}

fn default_max() -> f64 {
    2_000.0
}
fn default_after() -> f64 {
    30.0
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_time_s: default_max(),
            allow_can_id_conflicts: false,
            after_landing_s: default_after(),
        }
    }
}

/// One bound on a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalCheck {
    /// Signal name: a truth signal ([`SIGNALS`]) or a CAN signal as it went over the
    /// wire, `can.<Message>.<Signal>` (from the DBC; the flight computer's messages
    /// and the devices' alike), e.g. `can.FC_Status.FC_EstAltitude`.
    pub signal: String,
    /// Lower bound.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound.
    #[serde(default)]
    pub max: Option<f64>,
    /// Tolerance form: the signal must stay within `tolerance` of this other signal
    /// (e.g. the FC's estimated altitude near `truth.altitude_m`).
    #[serde(default)]
    pub near: Option<String>,
    /// Tolerance form: the largest allowed difference, in the signal's unit.
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// An expectation: exactly one of the forms in the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Id, unique in the file.
    pub id: String,
    /// Requirement verified.
    pub requirement: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Form `at`: the event.
    #[serde(default)]
    pub at: Option<String>,
    /// Form `at`: checks on the truth at that moment.
    #[serde(default)]
    pub check: Vec<SignalCheck>,
    /// Forms `within` and `order`: trigger event (`event` happens after it).
    #[serde(default)]
    pub after: Option<String>,
    /// Form `order`: `event` happens before this one (which may not happen at all).
    #[serde(default)]
    pub before: Option<String>,
    /// Forms `within` and `order`: the response event.
    #[serde(default)]
    pub event: Option<String>,
    /// Form `within`: [earliest, latest] seconds after the trigger.
    #[serde(default)]
    pub window_s: Option<[f64; 2]>,
    /// Form `outcome`: the outcome.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Form `outcome`: lower bound.
    #[serde(default)]
    pub min: Option<f64>,
    /// Form `outcome`: upper bound.
    #[serde(default)]
    pub max: Option<f64>,
    /// Form `rate`: the flight computer's message, by DBC name or by role (`icd.fc.status`
    /// the heartbeat, `icd.fc.event`, `icd.fc.ident`).
    #[serde(default)]
    pub message: Option<String>,
    /// Form `rate`: minimum rate over the run, Hz.
    #[serde(default)]
    pub min_rate_hz: Option<f64>,
    /// Form `modes`: the FC's mode sequence.
    #[serde(default)]
    pub modes: Option<Vec<String>>,
    /// Form `never`: an event that must not happen (in the scope).
    #[serde(default)]
    pub never: Option<String>,
    /// Form `count`: how many times an event happens (in the scope), bounded by `min`
    /// and/or `max`.
    #[serde(default)]
    pub count: Option<String>,
    /// Form `always`: bounds that every sample in the scope meets (truth signals at
    /// each recorded snapshot, CAN signals at each frame).
    #[serde(default)]
    pub always: Option<Vec<SignalCheck>>,
    /// Scope of `never` and `always`: from the first occurrence of this event (default:
    /// the start of the run).
    #[serde(default)]
    pub from: Option<String>,
    /// Scope of `never` and `always`: until the first occurrence of this event after
    /// the scope's start (default: the end of the run).
    #[serde(default)]
    pub until: Option<String>,
    /// Scope of `never` and `always`: while the flight computer is in this mode (from
    /// its first entry into it to its next mode change).
    #[serde(default)]
    pub during: Option<String>,
}

/// Event names (a channel or mode follows after `:`).
pub const EVENTS: &[&str] = &[
    "splashdown",
    "beacon_on",
    "pyro_fired",
    "pyro_no_fire",
    "pyro_not_armed",
    "fc_mode",
    "inject",
    "fc_fault",
    "fc_fault_cleared",
    "burn_start",
    "burn_end",
    "fc_reset_recovery",
    "thruster_isolated",
    "separation",
    "brown_out",
    "bus_restored",
    "can_id_conflict",
];
/// Pyro channels (their wire bits are the ICD binding's).
pub const CHANNELS: &[&str] = &capsule_icd::binding::PYRO_CHANNELS;
/// FC modes (`FC_Mode` names).
pub const MODES: &[&str] = &capsule_runner::record::MODE_NAMES;
/// Truth signals.
pub const SIGNALS: &[&str] = &[
    "truth.time_s",
    "truth.altitude_m",
    "truth.mach",
    "truth.airspeed_m_s",
    "truth.dynamic_pressure_pa",
    "truth.load_factor_g",
    "truth.heat_flux_w_m2",
    "truth.heat_shield_surface_k",
    "truth.bondline_k",
];
/// Outcomes.
pub const OUTCOMES: &[&str] = &[
    "landing_speed_m_s",
    "landing_vertical_speed_m_s",
    "peak_load_factor_g",
    "peak_heat_flux_w_m2",
    "peak_bondline_k",
    "landing_time_s",
    "landing_distance_to_target_km",
    "peak_entry_load_factor_g",
    "landing_latitude_deg",
    "landing_longitude_deg",
    "deorbit_delta_v_m_s",
];

/// What an id may be made of (scenario, expectation, injection and requirement ids:
/// they name directories, JUnit cases and console lines).
pub const SAFE_ID: &str =
    "expected 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`";

/// True for an id made as [`SAFE_ID`] says.
pub fn safe_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.starts_with(['.', '-'])
}

fn inject_ids(s: &Scenario) -> String {
    if s.inject.is_empty() {
        "(none)".into()
    } else {
        s.inject
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// FC_EventDetail values the ICD defines for faults: a pyro channel mask below 0x100,
/// and 0x100 + n for `FC_FaultFlags` bit n (0 to 13).
pub fn known_fault_detail(d: u16) -> bool {
    d < 0x100 || (0x100..=0x10D).contains(&d)
}

/// Checks an event name; `Err` says what is expected.
pub fn check_event(e: &str) -> Result<(), String> {
    let (kind, arg) = match e.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (e, None),
    };
    if !EVENTS.contains(&kind) {
        return Err(format!(
            "unknown event `{e}`; events: {}",
            EVENTS.join(", ")
        ));
    }
    match (kind, arg) {
        ("pyro_fired" | "pyro_no_fire", Some(a))
            if CHANNELS.contains(&a)
                || a.strip_suffix('*')
                    .is_some_and(|p| CHANNELS.iter().any(|c| c.starts_with(p))) =>
        {
            Ok(())
        }
        ("pyro_fired" | "pyro_no_fire", _) => Err(format!(
            "`{kind}` needs a channel (`{kind}:CHANNEL`, or `*`): {}",
            CHANNELS.join(", ")
        )),
        ("fc_mode", Some(a)) if MODES.contains(&a) => Ok(()),
        ("fc_mode", _) => Err(format!(
            "`fc_mode` needs a mode (`fc_mode:MODE`): {}",
            MODES.join(", ")
        )),
        ("fc_fault" | "fc_fault_cleared", Some(a))
            if a.len() == 6
                && a.starts_with("0x")
                && a[2..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            match u16::from_str_radix(&a[2..], 16) {
                Ok(d) if known_fault_detail(d) => Ok(()),
                _ => Err(format!(
                    "`{kind}:{a}`: the ICD defines no such FC_EventDetail (a pyro channel mask 0x0000-0x00ff, or 0x0100 + an FC_FaultFlags bit: 0x0100-0x010d)"
                )),
            }
        }
        ("fc_fault" | "fc_fault_cleared", Some(_)) => Err(format!(
            "`{kind}:DETAIL` takes the FC_EventDetail as 0x and four lower-case hex digits (e.g. `{kind}:0x0108`)"
        )),
        ("thruster_isolated", Some(a)) if a == "*" || THRUSTERS[..RCS_JETS].contains(&a) => Ok(()),
        ("thruster_isolated", _) => Err(format!(
            "`thruster_isolated` needs an RCS thruster (`thruster_isolated:NAME`, or `*`): {}",
            THRUSTERS[..RCS_JETS].join(", ")
        )),
        ("can_id_conflict", _) => Ok(()),
        ("inject", Some(a)) if !a.is_empty() => Ok(()),
        ("inject", _) => Err("`inject` needs an injection id (`inject:ID`)".to_string()),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(format!("`{kind}` takes no argument")),
    }
}

impl Scenario {
    /// The runner's injections for this scenario (call after validation).
    pub fn injections(&self) -> Vec<capsule_runner::inject::Injection> {
        use capsule_runner::inject::{Action, Injection, Trigger};
        use twin_core::parachute::ChuteFault;
        self.inject
            .iter()
            .map(|i| {
                let trigger = match (i.at_s, &i.when, i.altitude_below_m) {
                    (Some(t), _, _) => Trigger::At(t),
                    (None, Some(e), _) => Trigger::Event(e.clone(), i.delay_s),
                    (None, None, Some(h)) => Trigger::AltitudeBelow(h),
                    _ => Trigger::At(f64::INFINITY),
                };
                let action = match &i.fault {
                    FaultSpecToml::PyroOpenCircuit { channel } => {
                        let k = CHANNELS.iter().position(|c| c == channel).unwrap_or(255);
                        Action::PyroOpenCircuit(k as u8)
                    }
                    FaultSpecToml::Parachute {
                        name,
                        failure,
                        fraction,
                        after_s,
                    } => Action::Parachute(
                        name.clone(),
                        match failure.as_str() {
                            "partial_inflation" => ChuteFault::PartialInflation {
                                fraction: fraction.unwrap_or(1.0),
                            },
                            "line_cut" => ChuteFault::LineCut {
                                after_s: after_s.unwrap_or(0.0),
                            },
                            _ => ChuteFault::FailsToDeploy,
                        },
                    ),
                    FaultSpecToml::Sensor { channel, fault } => {
                        Action::Sensor(channel.clone(), *fault)
                    }
                    FaultSpecToml::DensityScale { scale } => Action::DensityScale(*scale),
                    FaultSpecToml::HeatShield { conductance_scale } => {
                        Action::HeatShield(*conductance_scale)
                    }
                    FaultSpecToml::BrownOut { bus_voltage_v } => Action::BrownOut(*bus_voltage_v),
                    FaultSpecToml::GnssLoss => Action::GnssLoss,
                    FaultSpecToml::Wind { profile } => Action::Wind(profile.clone()),
                    FaultSpecToml::ImuReset => Action::ImuReset,
                    FaultSpecToml::NodeSilent { node } => Action::NodeSilent(node.clone()),
                    FaultSpecToml::FcReset => Action::FcReset,
                    FaultSpecToml::Thruster {
                        thruster,
                        failure,
                        scale,
                    } => {
                        use twin_core::twin::ThrusterFault;
                        Action::Thruster(
                            thruster.clone(),
                            match failure.as_str() {
                                "stuck_open" => ThrusterFault::StuckOpen,
                                "stuck_closed" => ThrusterFault::StuckClosed,
                                _ => ThrusterFault::Degraded {
                                    scale: scale.unwrap_or(1.0),
                                },
                            },
                        )
                    }
                    FaultSpecToml::Bus {
                        link,
                        fault,
                        direction,
                        can_id,
                        probability,
                    } => Action::Bus(
                        link.clone(),
                        capsule_links::fault::FaultRule {
                            fault: *fault,
                            direction: *direction,
                            can_id: *can_id,
                            start_s: 0.0,
                            end_s: None,
                            probability: *probability,
                        },
                    ),
                };
                Injection {
                    id: i.id.clone(),
                    trigger,
                    duration_s: i.duration_s,
                    action,
                }
            })
            .collect()
    }

    /// Parses and validates a scenario file.
    pub fn from_toml(src: &Source<'_>) -> Result<Self, ConfigError> {
        let s: Scenario = src.parse()?;
        let mut c = Checks::default();
        s.validate(&mut c);
        c.finish(src)?;
        Ok(s)
    }

    /// Checks what a scenario takes from its vehicle before anything runs: thruster
    /// injections name thrusters the vehicle has, and a `descent` start needs a
    /// parachute named `drogue`.
    pub fn check_vehicle(
        &self,
        v: &twin_core::vehicle::VehicleSpec,
        src: &Source<'_>,
    ) -> Result<(), ConfigError> {
        let mut c = Checks::default();
        let vname = &self.initial.vehicle;
        for (k, inj) in self.inject.iter().enumerate() {
            if let FaultSpecToml::Thruster { thruster, .. } = &inj.fault {
                c.require(
                    v.thrusters.iter().any(|t| &t.name == thruster),
                    format!("inject[{k}].fault.thruster"),
                    format!(
                        "vehicle {vname} has no thruster `{thruster}`; its thrusters: {}",
                        v.thrusters
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if self.initial.phase == Phase::Descent {
            c.require(
                v.parachutes.iter().any(|p| p.name == "drogue"),
                "initial.phase",
                format!("phase `descent` needs a parachute named `drogue` in vehicle {vname}"),
            );
        }
        c.finish(src)
    }

    /// Checks the names a scenario takes from the ICD (the `message` of a rate check,
    /// `can.<Message>.<Signal>` and `icd.<role>` in checks) against the ICD in use (its
    /// DBC and binding), before anything runs.
    pub fn check_icd(&self, icd: &capsule_icd::Icd, src: &Source<'_>) -> Result<(), ConfigError> {
        let db = &icd.db;
        let fc_node = icd.binding.fc.node.as_str();
        let mut c = Checks::default();
        let can = |c: &mut Checks, field: String, name: &str| {
            if let Some(role) = name.strip_prefix("icd.") {
                if icd.binding.role(role).is_none() {
                    c.fail(
                        field,
                        format!(
                            "`{name}`: the binding has no role `{role}`; roles: {}",
                            icd.binding
                                .roles()
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                return;
            }
            let Some((m, sig)) = name.strip_prefix("can.").and_then(|r| r.split_once('.')) else {
                return;
            };
            match db.by_name(m) {
                None => c.fail(field, format!("`{name}`: no message `{m}` in the DBC")),
                Some(def) if def.signal(sig).is_none() => c.fail(
                    field,
                    format!(
                        "`{name}`: message `{m}` has no signal `{sig}`; its signals: {}",
                        def.signals
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Some(_) => {}
            }
        };
        for (k, x) in self.expect.iter().enumerate() {
            let f = format!("expect[{k}]");
            if let Some(m) = &x.message {
                let def = match m.strip_prefix("icd.") {
                    Some(role) => icd.binding.message_role(role),
                    None => db.by_name(m),
                };
                match def {
                    None if m.starts_with("icd.") => c.fail(
                        format!("{f}.message"),
                        format!("no message role `{m}` (roles: icd.fc.status, icd.fc.event, icd.fc.ident)"),
                    ),
                    None => c.fail(
                        format!("{f}.message"),
                        format!("no message `{m}` in the DBC"),
                    ),
                    // A rate check judges the flight computer's frames only.
                    Some(def) => c.require(
                        def.transmitter == fc_node,
                        format!("{f}.message"),
                        format!(
                            "`{m}` is sent by {}, not by the flight computer ({fc_node}) in the DBC",
                            def.transmitter
                        ),
                    ),
                }
            }
            let lists = [
                ("check", x.check.as_slice()),
                ("always", x.always.as_deref().unwrap_or(&[])),
            ];
            for (list, checks) in lists {
                for (j, sc) in checks.iter().enumerate() {
                    can(&mut c, format!("{f}.{list}[{j}].signal"), &sc.signal);
                    if let Some(n) = &sc.near {
                        can(&mut c, format!("{f}.{list}[{j}].near"), n);
                    }
                }
            }
        }
        c.finish(src)
    }

    fn validate(&self, c: &mut Checks) {
        let mut inj_ids = std::collections::BTreeSet::new();
        for (k, i) in self.inject.iter().enumerate() {
            let f = format!("inject[{k}]");
            c.require(
                inj_ids.insert(i.id.clone()),
                format!("{f}.id"),
                format!("duplicate injection id `{}`", i.id),
            );
            let n = [
                i.at_s.is_some(),
                i.when.is_some(),
                i.altitude_below_m.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            c.require(
                n == 1,
                f.clone(),
                format!(
                    "expected exactly one start: `at_s`, `when` or `altitude_below_m` (found {n})"
                ),
            );
            if let Some(t) = i.at_s {
                c.in_range(&format!("{f}.at_s"), t, 0.0, 86_400.0, "s");
            }
            if let Some(e) = &i.when
                && let Err(m) = check_event(e)
            {
                c.fail(format!("{f}.when"), m);
            }
            c.in_range(&format!("{f}.delay_s"), i.delay_s, 0.0, 3_600.0, "s");
            if let Some(h) = i.altitude_below_m {
                c.in_range(&format!("{f}.altitude_below_m"), h, 1e-3, 1e6, "m");
            }
            if let Some(d) = i.duration_s {
                c.in_range(&format!("{f}.duration_s"), d, 1e-3, 86_400.0, "s");
            }
            match &i.fault {
                FaultSpecToml::PyroOpenCircuit { channel } => c.require(
                    CHANNELS.contains(&channel.as_str()),
                    format!("{f}.fault.channel"),
                    format!(
                        "unknown pyro channel `{channel}`; channels: {}",
                        CHANNELS.join(", ")
                    ),
                ),
                FaultSpecToml::Parachute {
                    name,
                    failure,
                    fraction,
                    after_s,
                } => {
                    c.require(
                        name == "drogue" || name == "main",
                        format!("{f}.fault.name"),
                        format!("unknown parachute `{name}` (drogue, main)"),
                    );
                    match failure.as_str() {
                        "fails_to_deploy" => {}
                        "partial_inflation" => match fraction {
                            Some(x) => c.in_range(&format!("{f}.fault.fraction"), *x, 0.0, 1.0, "fraction of the drag area"),
                            None => c.fail(format!("{f}.fault"), "`partial_inflation` needs `fraction`"),
                        },
                        "line_cut" => match after_s {
                            Some(x) => c.in_range(&format!("{f}.fault.after_s"), *x, 0.0, 3_600.0, "s"),
                            None => c.fail(format!("{f}.fault"), "`line_cut` needs `after_s`"),
                        },
                        other => c.fail(format!("{f}.fault.failure"), format!("unknown failure `{other}` (fails_to_deploy, partial_inflation, line_cut)")),
                    }
                }
                FaultSpecToml::Sensor { channel, fault } => {
                    use twin_core::sensors::fault::SensorFault as S;
                    let g = format!("{f}.fault.fault");
                    match *fault {
                        S::StuckAt { value } | S::Bias { value } => {
                            c.in_range(&format!("{g}.value"), value, -1e9, 1e9, "channel unit")
                        }
                        S::Drift { rate_per_s } => c.in_range(
                            &format!("{g}.rate_per_s"),
                            rate_per_s,
                            -1e9,
                            1e9,
                            "channel unit/s",
                        ),
                        S::Noise { sigma } => {
                            c.in_range(&format!("{g}.sigma"), sigma, 0.0, 1e9, "channel unit")
                        }
                        S::Scale { factor } => {
                            c.in_range(&format!("{g}.factor"), factor, -1e3, 1e3, "multiplier")
                        }
                        S::Latency { delay_s } => {
                            c.in_range(&format!("{g}.delay_s"), delay_s, 0.0, 60.0, "s")
                        }
                        S::Stuck | S::Dropout => {}
                    }
                    let ok = match channel.strip_suffix('*') {
                        Some(p) => SENSOR_CHANNELS.iter().any(|s| s.starts_with(p)),
                        None => SENSOR_CHANNELS.contains(&channel.as_str()),
                    };
                    c.require(
                        ok,
                        format!("{f}.fault.channel"),
                        format!(
                            "unknown sensor channel `{channel}`; channels: {}",
                            SENSOR_CHANNELS.join(", ")
                        ),
                    );
                }
                FaultSpecToml::DensityScale { scale } => {
                    c.in_range(&format!("{f}.fault.scale"), *scale, 0.1, 10.0, "multiplier")
                }
                FaultSpecToml::HeatShield { conductance_scale } => c.in_range(
                    &format!("{f}.fault.conductance_scale"),
                    *conductance_scale,
                    0.1,
                    20.0,
                    "multiplier",
                ),
                FaultSpecToml::BrownOut { bus_voltage_v } => c.in_range(
                    &format!("{f}.fault.bus_voltage_v"),
                    *bus_voltage_v,
                    0.0,
                    40.0,
                    "V",
                ),
                FaultSpecToml::GnssLoss => {}
                FaultSpecToml::FcReset => match i.duration_s {
                    Some(d) => c.in_range(&format!("{f}.duration_s"), d, 0.0, 65.0, "s"),
                    None => c.fail(
                        format!("{f}.duration_s"),
                        "a flight-computer reset needs a duration (the boot time)",
                    ),
                },
                FaultSpecToml::ImuReset => c.require(
                    i.duration_s.is_some(),
                    format!("{f}.duration_s"),
                    "an IMU reset needs a duration (the restart time)",
                ),
                FaultSpecToml::Wind { profile } => {
                    c.require(
                        !profile.is_empty(),
                        format!("{f}.fault.profile"),
                        "a wind profile needs at least one point",
                    );
                    for (k, w) in profile.iter().enumerate() {
                        let g = format!("{f}.fault.profile[{k}]");
                        c.in_range(
                            &format!("{g}.altitude_m"),
                            w.altitude_m,
                            -500.0,
                            100_000.0,
                            "m",
                        );
                        c.in_range(&format!("{g}.north_m_s"), w.north_m_s, -150.0, 150.0, "m/s");
                        c.in_range(&format!("{g}.east_m_s"), w.east_m_s, -150.0, 150.0, "m/s");
                    }
                }
                FaultSpecToml::Bus {
                    link,
                    fault,
                    can_id,
                    probability,
                    ..
                } => {
                    use capsule_links::fault::FaultKind as K;
                    c.require(
                        ["can", "imu", "gnss"].contains(&link.as_str()),
                        format!("{f}.fault.link"),
                        format!("unknown link `{link}` (can, imu, gnss)"),
                    );
                    c.in_range(
                        &format!("{f}.fault.probability"),
                        *probability,
                        0.0,
                        1.0,
                        "probability",
                    );
                    let serial_only = matches!(
                        fault,
                        K::InsertBytes { .. }
                            | K::DeleteBytes { .. }
                            | K::NoiseBurst { .. }
                            | K::Stall
                    );
                    let can_only = matches!(fault, K::ErrorFrame | K::Babble { .. } | K::BusOff);
                    c.require(
                        !(serial_only && link == "can"),
                        format!("{f}.fault.fault"),
                        "a serial-line fault on the CAN link",
                    );
                    c.require(
                        !(can_only && link != "can"),
                        format!("{f}.fault.fault"),
                        "a CAN fault on a serial link",
                    );
                    c.require(
                        can_id.is_none() || link == "can",
                        format!("{f}.fault.can_id"),
                        "`can_id` only applies to the CAN link",
                    );
                    if let Some(id) = can_id {
                        c.require(
                            *id <= 0x7FF,
                            format!("{f}.fault.can_id"),
                            format!("0x{id:X} is not an 11-bit identifier"),
                        );
                    }
                    let g = format!("{f}.fault.fault");
                    match fault {
                        K::Delay { delay_s, jitter_s } => {
                            c.in_range(&format!("{g}.delay_s"), *delay_s, 0.0, 10.0, "s");
                            c.in_range(&format!("{g}.jitter_s"), *jitter_s, 0.0, 10.0, "s");
                            c.require(
                                jitter_s <= delay_s,
                                format!("{g}.jitter_s"),
                                format!("jitter {jitter_s} s larger than the delay {delay_s} s (a packet cannot arrive before it is sent)"),
                            );
                        }
                        // A classic frame has 64 data bits; a serial chunk is a few kB.
                        K::Corrupt { bits } => {
                            c.in_range(&format!("{g}.bits"), f64::from(*bits), 1.0, 64.0, "bits")
                        }
                        K::InsertBytes { count } | K::DeleteBytes { count } => {
                            c.in_range(&format!("{g}.count"), *count as f64, 1.0, 4096.0, "bytes")
                        }
                        K::NoiseBurst { length } => {
                            c.in_range(&format!("{g}.length"), *length as f64, 1.0, 4096.0, "bytes")
                        }
                        _ => {}
                    }
                    if let K::Babble { id, rate_hz } = fault {
                        c.require(
                            *id <= 0x7FF,
                            format!("{f}.fault.fault.id"),
                            format!("0x{id:X} is not an 11-bit identifier"),
                        );
                        c.in_range(
                            &format!("{f}.fault.fault.rate_hz"),
                            *rate_hz,
                            1.0,
                            20_000.0,
                            "frames/s",
                        );
                    }
                }
                FaultSpecToml::NodeSilent { node } => c.require(
                    NODES.contains(&node.as_str()),
                    format!("{f}.fault.node"),
                    format!("unknown node `{node}`; nodes: {}", NODES.join(", ")),
                ),
                FaultSpecToml::Thruster {
                    thruster,
                    failure,
                    scale,
                } => {
                    c.require(
                        THRUSTERS.contains(&thruster.as_str()),
                        format!("{f}.fault.thruster"),
                        format!(
                            "unknown thruster `{thruster}`; thrusters: {}",
                            THRUSTERS.join(", ")
                        ),
                    );
                    c.require(
                        ["stuck_open", "stuck_closed", "degraded"].contains(&failure.as_str()),
                        format!("{f}.fault.failure"),
                        format!(
                            "unknown failure `{failure}`; expected stuck_open, stuck_closed or degraded"
                        ),
                    );
                    match (failure.as_str(), scale) {
                        ("degraded", Some(x)) => {
                            c.in_range(&format!("{f}.fault.scale"), *x, 0.0, 1.0, "")
                        }
                        ("degraded", None) => c.fail(
                            format!("{f}.fault.scale"),
                            "`degraded` needs `scale` (thrust multiplier, 0 to 1)",
                        ),
                        (_, Some(_)) => c.fail(
                            format!("{f}.fault.scale"),
                            "`scale` applies to `degraded` only",
                        ),
                        _ => {}
                    }
                }
            }
        }
        c.require(
            safe_id(&self.scenario.id),
            "scenario.id",
            format!("`{}`: {SAFE_ID}", self.scenario.id.escape_debug()),
        );
        for (k, r) in self.scenario.requirements.iter().enumerate() {
            c.require(
                safe_id(r),
                format!("scenario.requirements[{k}]"),
                format!("`{}`: {SAFE_ID}", r.escape_debug()),
            );
        }
        for (k, i) in self.inject.iter().enumerate() {
            c.require(
                safe_id(&i.id),
                format!("inject[{k}].id"),
                format!("`{}`: {SAFE_ID}", i.id.escape_debug()),
            );
        }
        for (k, x) in self.expect.iter().enumerate() {
            c.require(
                safe_id(&x.id),
                format!("expect[{k}].id"),
                format!("`{}`: {SAFE_ID}", x.id.escape_debug()),
            );
            for (name, v) in [
                ("at", &x.at),
                ("after", &x.after),
                ("before", &x.before),
                ("event", &x.event),
                ("never", &x.never),
                ("count", &x.count),
                ("from", &x.from),
                ("until", &x.until),
            ] {
                if let Some(e) = v
                    && let Some(id) = e.strip_prefix("inject:")
                {
                    c.require(
                        self.inject.iter().any(|i| i.id == id),
                        format!("expect[{k}].{name}"),
                        format!(
                            "`{e}` names no injection of this scenario; injections: {}",
                            inject_ids(self)
                        ),
                    );
                }
            }
        }
        for (k, i) in self.inject.iter().enumerate() {
            if let Some(e) = &i.when
                && let Some(id) = e.strip_prefix("inject:")
            {
                c.require(
                    self.inject.iter().any(|j| j.id == id),
                    format!("inject[{k}].when"),
                    format!(
                        "`{e}` names no injection of this scenario; injections: {}",
                        inject_ids(self)
                    ),
                );
            }
        }
        c.require(
            !self.scenario.requirements.is_empty(),
            "scenario.requirements",
            "expected at least one requirement id",
        );
        let i = &self.initial;
        let given = |name: &str, present: bool, phase: &str, c: &mut Checks| {
            if present {
                c.fail(
                    format!("initial.{name}"),
                    format!("phase `{phase}` does not take `{name}`"),
                );
            }
        };
        if i.phase != Phase::Descent {
            given("descent", i.descent.is_some(), i.phase.name(), c);
            given(
                "drogue_fired_s_before",
                i.drogue_fired_s_before.is_some(),
                i.phase.name(),
                c,
            );
        }
        if i.phase != Phase::Orbit {
            given("deorbit", i.deorbit.is_some(), i.phase.name(), c);
            given("separation", i.separation.is_some(), i.phase.name(), c);
        }
        if let Some(sep) = &i.separation {
            c.in_range("initial.separation.at_s", sep.at_s, 0.0, 86_400.0, "s");
            c.in_range(
                "initial.separation.delta_v_m_s",
                sep.delta_v_m_s,
                0.0,
                5.0,
                "m/s",
            );
            if let Some(d) = &i.deorbit {
                c.require(
                    sep.at_s < d.ignition_s,
                    "initial.separation.at_s",
                    format!(
                        "separation at {} s must come before the deorbit ignition at {} s",
                        sep.at_s, d.ignition_s
                    ),
                );
            }
        }
        match (self.initial.phase, &self.initial.entry, &self.initial.orbit) {
            (Phase::Descent, entry, orbit) => {
                given("entry", entry.is_some(), "descent", c);
                given("orbit", orbit.is_some(), "descent", c);
                match &i.descent {
                    None => c.fail("initial.descent", "phase `descent` needs `descent`"),
                    Some(d) => {
                        d.validate("initial.descent", c);
                        c.in_range(
                            "initial.descent.altitude_m",
                            d.altitude_m,
                            1.0,
                            20_000.0,
                            "m",
                        );
                        c.in_range("initial.descent.speed_m_s", d.speed_m_s, 1e-3, 300.0, "m/s");
                    }
                }
                if let Some(t) = i.drogue_fired_s_before {
                    c.in_range("initial.drogue_fired_s_before", t, 0.0, 3600.0, "s");
                }
            }
            (Phase::Entry, Some(e), None) => e.validate("initial.entry", c),
            (Phase::Entry, None, _) => c.fail("initial.entry", "phase `entry` needs `entry`"),
            (Phase::Entry, Some(_), Some(_)) => {
                c.fail("initial.orbit", "phase `entry` takes `entry`, not `orbit`")
            }
            (Phase::Orbit, None, Some(o)) => {
                c.in_range(
                    "initial.orbit.altitude_m",
                    o.altitude_m,
                    150_000.0,
                    2_000_000.0,
                    "m",
                );
                c.in_range("initial.orbit.raan_deg", o.raan_deg, -360.0, 360.0, "deg");
                c.in_range(
                    "initial.orbit.arg_latitude_deg",
                    o.arg_latitude_deg,
                    -360.0,
                    360.0,
                    "deg",
                );
                c.in_range(
                    "initial.orbit.inclination_deg",
                    o.inclination_deg,
                    0.0,
                    180.0,
                    "deg",
                );
                c.require(
                    self.initial.deorbit.is_some(),
                    "initial.deorbit",
                    "phase `orbit` needs a deorbit plan (`deorbit = { ignition_s, delta_v_m_s }`)",
                );
            }
            (Phase::Orbit, None, None) => c.fail("initial.orbit", "phase `orbit` needs `orbit`"),
            (Phase::Orbit, Some(_), _) => {
                c.fail("initial.entry", "phase `orbit` takes `orbit`, not `entry`")
            }
        }
        if let Some(d) = &self.initial.deorbit {
            c.in_range(
                "initial.deorbit.ignition_s",
                d.ignition_s,
                0.0,
                86_400.0,
                "s",
            );
            c.in_range(
                "initial.deorbit.delta_v_m_s",
                d.delta_v_m_s,
                0.0,
                655.0,
                "m/s",
            );
        }
        if let Some(t) = &self.initial.target {
            c.in_range(
                "initial.target.latitude_deg",
                t.latitude_deg,
                -90.0,
                90.0,
                "deg",
            );
            c.in_range(
                "initial.target.longitude_deg",
                t.longitude_deg,
                -180.0,
                180.0,
                "deg",
            );
        }
        c.in_range(
            "initial.bank_deg",
            self.initial.bank_deg,
            -180.0,
            180.0,
            "deg",
        );
        twin_core::case::check_run_limits(c, self.run.max_time_s, self.run.after_landing_s);
        let mut ids = std::collections::BTreeSet::new();
        for (k, x) in self.expect.iter().enumerate() {
            let f = format!("expect[{k}]");
            c.require(
                ids.insert(x.id.clone()),
                format!("{f}.id"),
                format!("duplicate expectation id `{}`", x.id),
            );
            c.require(
                self.scenario.requirements.contains(&x.requirement),
                format!("{f}.requirement"),
                format!(
                    "`{}` is not among scenario.requirements ({})",
                    x.requirement,
                    self.scenario.requirements.join(", ")
                ),
            );
            let forms = [
                x.at.is_some(),
                x.event.is_some() || x.after.is_some() || x.before.is_some(),
                x.outcome.is_some(),
                x.message.is_some(),
                x.modes.is_some(),
                x.never.is_some(),
                x.always.is_some(),
                x.count.is_some(),
            ];
            let n = forms.iter().filter(|b| **b).count();
            if n != 1 {
                c.fail(f.clone(), format!("expected exactly one form (`at`, `after`/`before`+`event`, `outcome`, `message`, `modes`, `never`, `always` or `count`), found {n}"));
                continue;
            }
            let scoped = x.from.is_some() || x.until.is_some() || x.during.is_some();
            if scoped {
                c.require(
                    x.never.is_some() || x.always.is_some() || x.count.is_some(),
                    f.clone(),
                    "`from`, `until` and `during` scope the `never`, `always` and `count` forms only",
                );
                c.require(
                    x.during.is_none() || (x.from.is_none() && x.until.is_none()),
                    format!("{f}.during"),
                    "`during` replaces `from` and `until`: give one or the other",
                );
                for (name, ev) in [("from", &x.from), ("until", &x.until)] {
                    if let Some(e) = ev
                        && let Err(m) = check_event(e)
                    {
                        c.fail(format!("{f}.{name}"), m);
                    }
                }
                if let Some(m) = &x.during {
                    c.require(
                        MODES.contains(&m.as_str()),
                        format!("{f}.during"),
                        format!("unknown mode `{m}`; modes: {}", MODES.join(", ")),
                    );
                }
            }
            if let Some(checks) = &x.always {
                c.require(
                    !checks.is_empty(),
                    format!("{f}.always"),
                    "expected at least one signal check",
                );
                for (j, s) in checks.iter().enumerate() {
                    signal_check(c, &format!("{f}.always[{j}]"), s);
                }
            }
            if let Some(ev) = &x.at {
                if let Err(m) = check_event(ev) {
                    c.fail(format!("{f}.at"), m);
                }
                c.require(
                    !x.check.is_empty(),
                    format!("{f}.check"),
                    "expected at least one signal check",
                );
                for (j, s) in x.check.iter().enumerate() {
                    signal_check(c, &format!("{f}.check[{j}]"), s);
                }
            }
            if x.after.is_some() || x.event.is_some() || x.before.is_some() {
                for (name, ev) in [
                    ("after", &x.after),
                    ("before", &x.before),
                    ("event", &x.event),
                ] {
                    if let Some(e) = ev
                        && let Err(m) = check_event(e)
                    {
                        c.fail(format!("{f}.{name}"), m);
                    }
                }
                match (&x.after, &x.before, &x.event, x.window_s) {
                    (Some(_), None, Some(_), Some([lo, hi])) => {
                        c.require(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi && hi <= 86_400.0, format!("{f}.window_s"), format!("impossible window [{lo}, {hi}] s: expected 0 <= earliest <= latest <= 86400"));
                    }
                    (_, _, Some(_), Some(_)) => c.fail(format!("{f}.window_s"), "`window_s` goes with `after` alone (the `within` form), not with `before`"),
                    (Some(a), Some(b), Some(_), None) if a == b => c.fail(format!("{f}.before"), format!("`{a}` cannot come both before and after the event")),
                    (Some(_), _, Some(_), None) | (None, Some(_), Some(_), None) => {}
                    _ => c.fail(f.clone(), "the `within` form needs `after`, `event` and `window_s = [earliest, latest]`; the `order` form needs `event` and `after` and/or `before`"),
                }
            }
            if let Some(e) = &x.count {
                if let Err(m) = check_event(e) {
                    c.fail(format!("{f}.count"), m);
                }
                bounds(c, &f, x.min, x.max);
                for (name, v) in [("min", x.min), ("max", x.max)] {
                    if let Some(v) = v {
                        c.require(
                            v >= 0.0 && v.fract() == 0.0,
                            format!("{f}.{name}"),
                            format!("a count bound is a whole number >= 0, got {v}"),
                        );
                    }
                }
            }
            if let Some(o) = &x.outcome {
                let injected = o.strip_prefix("injected:").is_some_and(|x| {
                    x.split_once('.').is_some_and(|(l, k)| {
                        ["can", "imu", "gnss"].contains(&l)
                            && capsule_links::fault::KIND_NAMES.contains(&k)
                    })
                });
                c.require(
                    OUTCOMES.contains(&o.as_str()) || injected,
                    format!("{f}.outcome"),
                    format!(
                        "unknown outcome `{o}`; outcomes: {}, injected:LINK.KIND (LINK can, imu or gnss; KIND {})",
                        OUTCOMES.join(", "),
                        capsule_links::fault::KIND_NAMES.join(", ")
                    ),
                );
                bounds(c, &f, x.min, x.max);
            }
            if x.message.is_some() {
                c.require(
                    x.min_rate_hz
                        .is_some_and(|r| r.is_finite() && r > 0.0 && r <= 1_000.0),
                    format!("{f}.min_rate_hz"),
                    "expected a rate in (0, 1000] Hz with `message`",
                );
            }
            if let Some(ms) = &x.modes {
                for (j, m) in ms.iter().enumerate() {
                    c.require(
                        MODES.contains(&m.as_str()),
                        format!("{f}.modes[{j}]"),
                        format!("unknown mode `{m}`; modes: {}", MODES.join(", ")),
                    );
                }
            }
            if let Some(ev) = &x.never
                && let Err(m) = check_event(ev)
            {
                c.fail(format!("{f}.never"), m);
            }
        }
    }
}

/// Is `name` a signal a check can read: a truth signal, `can.<Message>.<Signal>` (a
/// DBC signal as on the wire, in the DBC's unit) or `icd.<role>` (a signal by its role
/// in the ICD binding, e.g. `icd.fc.est_altitude`, in the twin's unit: such a check
/// runs unchanged on any bound ICD). Whether the ICD has it is checked against the ICD
/// in use, [`Scenario::check_icd`].
pub fn check_signal(name: &str) -> Result<(), String> {
    if SIGNALS.contains(&name) {
        return Ok(());
    }
    if let Some(role) = name.strip_prefix("icd.") {
        return if !role.is_empty() && role.split('.').count() == 2 {
            Ok(())
        } else {
            Err(format!(
                "a bound signal is named `icd.<node>.<role>` (e.g. icd.fc.est_altitude), found `{name}`"
            ))
        };
    }
    match name.strip_prefix("can.").map(|r| r.split_once('.')) {
        Some(Some((m, s))) if !m.is_empty() && !s.is_empty() && !s.contains('.') => Ok(()),
        Some(_) => Err(format!(
            "a CAN signal is named `can.<Message>.<Signal>`, found `{name}`"
        )),
        None => Err(format!(
            "unknown signal `{name}`; signals: {}, can.<Message>.<Signal> or icd.<node>.<role>",
            SIGNALS.join(", ")
        )),
    }
}

fn signal_check(c: &mut Checks, f: &str, s: &SignalCheck) {
    if let Err(m) = check_signal(&s.signal) {
        c.fail(format!("{f}.signal"), m);
    }
    match (&s.near, s.tolerance) {
        (Some(n), Some(t)) => {
            if let Err(m) = check_signal(n) {
                c.fail(format!("{f}.near"), m);
            }
            c.require(
                t.is_finite() && t > 0.0 && t <= 1e9,
                format!("{f}.tolerance"),
                format!("expected a tolerance in (0, 1e9], found {t}"),
            );
            if s.min.is_some() || s.max.is_some() {
                bounds(c, f, s.min, s.max);
            }
        }
        (Some(_), None) => c.fail(format!("{f}.near"), "`near` needs a `tolerance`"),
        (None, Some(_)) => c.fail(
            format!("{f}.tolerance"),
            "`tolerance` needs `near` (the reference signal)",
        ),
        (None, None) => bounds(c, f, s.min, s.max),
    }
}

fn bounds(c: &mut Checks, f: &str, min: Option<f64>, max: Option<f64>) {
    c.require(
        min.is_some() || max.is_some(),
        f.to_string(),
        "expected `min` and/or `max`",
    );
    for (name, v) in [("min", min), ("max", max)] {
        if let Some(v) = v {
            c.require(
                v.is_finite() && v.abs() <= 1e9,
                format!("{f}.{name}"),
                format!("expected a number in [-1e9, 1e9], found {v}"),
            );
        }
    }
    if let (Some(a), Some(b)) = (min, max) {
        c.require(
            a <= b,
            format!("{f}.min"),
            format!("impossible bounds: min {a} > max {b}"),
        );
    }
}
