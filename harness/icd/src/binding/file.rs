//! The binding file's TOML form, as written by people (`fixtures/icd/capsule.binding.toml`
//! is the shipped one). [`super::Binding::resolve`] checks it against a DBC.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A bound signal: its DBC name (`Signal`, or `Message.Signal` where the name is not
/// unique), optionally with the unit it carries when the DBC gives none or to state it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SigSpec {
    /// `"Baro_Pressure"`.
    Name(String),
    /// `{ signal = "Baro_Pressure", unit = "Pa" }`.
    Full(SigFull),
}

/// The table form of [`SigSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigFull {
    /// DBC signal name (`Signal` or `Message.Signal`).
    pub signal: String,
    /// Unit on the wire (must agree with the DBC's unit when it has one).
    #[serde(default)]
    pub unit: Option<String>,
}

impl SigSpec {
    /// The signal name as written.
    pub fn name(&self) -> &str {
        match self {
            SigSpec::Name(n) => n,
            SigSpec::Full(f) => &f.signal,
        }
    }
    /// The unit written in the binding, if any.
    pub fn unit(&self) -> Option<&str> {
        match self {
            SigSpec::Name(_) => None,
            SigSpec::Full(f) => f.unit.as_deref(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingFile {
    /// Format version of this file (1).
    pub format_version: u32,
    /// What this binding is for, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Barometric sensor node.
    pub baro: BaroFile,
    /// Thermocouple node.
    pub thermo: ThermoFile,
    /// Power node.
    pub power: PowerFile,
    /// Pyro controller.
    pub pyro: PyroFile,
    /// RCS valve driver.
    pub rcs: RcsFile,
    /// Deorbit motor controller.
    pub deorbit: DeorbitFile,
    /// Recovery beacon.
    pub beacon: BeaconFile,
    /// The flight computer's own messages.
    pub fc: FcFile,
    /// Host-vehicle state handover.
    pub handover: HandoverFile,
    /// Mission data.
    pub mission: MissionFile,
    /// Simulation-only lockstep messages.
    pub lockstep: LockstepFile,
    /// The serial lines (default: the shipped IMU datagram and NMEA line).
    #[serde(default)]
    pub serial: Option<SerialFile>,
}

/// A status signal whose values mean ok / out of range / fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    /// The signal.
    pub signal: String,
    /// Value meaning "ok".
    pub ok: u32,
    /// Value meaning "measured but out of range or saturated" (sensors only).
    #[serde(default)]
    pub out_of_range: Option<u32>,
    /// Value meaning "sensor fault, no output" (sensors only).
    #[serde(default)]
    pub fault: Option<u32>,
}

/// `[baro]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaroFile {
    /// Static pressure (pressure).
    pub pressure: SigSpec,
    /// Sensor temperature (temperature).
    pub temperature: SigSpec,
    /// Status with `ok`, `out_of_range` and `fault` values.
    pub status: StatusFile,
    /// Rolling counter.
    pub counter: SigSpec,
}

/// `[thermo]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermoFile {
    /// Heat-shield outer temperature.
    pub heat_shield: SigSpec,
    /// Bondline temperature.
    pub bondline: SigSpec,
    /// Backshell temperature.
    pub backshell: SigSpec,
    /// Status (`ok` value).
    pub status: StatusFile,
    /// Rolling counter.
    pub counter: SigSpec,
}

/// `[power]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerFile {
    /// Status period, ms (default: the DBC's GenMsgCycleTime of the message).
    #[serde(default)]
    pub period_ms: Option<f64>,
    /// Main bus voltage.
    pub bus_voltage: SigSpec,
    /// Battery current.
    pub current: SigSpec,
    /// State of charge.
    pub state_of_charge: SigSpec,
    /// Status (`ok` value).
    pub status: StatusFile,
    /// Rolling counter.
    pub counter: SigSpec,
}

/// `arm_key = { signal = "...", value = 165 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The signal.
    pub signal: String,
    /// The value that arms.
    pub value: u32,
}

/// `[pyro]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PyroFile {
    /// Arm flag of the command (the controller arms when it is 1 and the key matches;
    /// the arming latches until a command without it).
    pub arm: SigSpec,
    /// Arm key and its value.
    pub arm_key: KeyFile,
    /// Fire mask: one bit per channel, see `channels`.
    pub fire_mask: SigSpec,
    /// Command counter (a repeated counter is ignored).
    pub command_counter: SigSpec,
    /// Channel name -> bit number in the fire, continuity and fired masks.
    pub channels: BTreeMap<String, u32>,
    /// Status period, ms (default: the DBC's GenMsgCycleTime).
    #[serde(default)]
    pub status_period_ms: Option<f64>,
    /// Armed flag.
    pub armed: SigSpec,
    /// Continuity mask.
    pub continuity: SigSpec,
    /// Fired mask.
    pub fired: SigSpec,
    /// Bus voltage at the controller.
    pub bus_voltage: SigSpec,
    /// Status counter.
    pub status_counter: SigSpec,
    /// Separation switches (a set bit: mated).
    pub separation_switches: SigSpec,
}

/// `[rcs]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RcsFile {
    /// Valve command mask (bit k opens `thrusters[k]`).
    pub valves: SigSpec,
    /// Latch-valve (isolation) mask, same bit order.
    pub isolate: SigSpec,
    /// Command counter.
    pub command_counter: SigSpec,
    /// The valves close when no command came for this long, ms.
    pub command_timeout_ms: f64,
    /// The vehicle file's thruster names, in bit order.
    pub thrusters: Vec<String>,
    /// Status period, ms (default: the DBC's GenMsgCycleTime).
    #[serde(default)]
    pub status_period_ms: Option<f64>,
    /// Valve positions read back.
    pub valve_state: SigSpec,
    /// Tank pressure.
    pub tank_pressure: SigSpec,
    /// Read-back differs from command.
    pub fault_mask: SigSpec,
    /// Status counter.
    pub status_counter: SigSpec,
}

/// `state = { signal = "...", safe = 0, burning = 2, done = 3 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotorStateFile {
    /// The signal.
    pub signal: String,
    /// Not fired.
    pub safe: u32,
    /// Burning.
    pub burning: u32,
    /// Burn over.
    pub done: u32,
}

/// `[deorbit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeorbitFile {
    /// The vehicle file's thruster name of the motor.
    pub thruster: String,
    /// Ignite flag.
    pub ignite: SigSpec,
    /// Cut-off flag (wins over ignite).
    pub cutoff: SigSpec,
    /// Command counter.
    pub command_counter: SigSpec,
    /// Status period, ms (default: the DBC's GenMsgCycleTime).
    #[serde(default)]
    pub status_period_ms: Option<f64>,
    /// Motor state.
    pub state: MotorStateFile,
    /// Chamber pressure.
    pub chamber_pressure: SigSpec,
    /// Burn time so far.
    pub burn_time: SigSpec,
    /// Status counter.
    pub status_counter: SigSpec,
}

/// `[beacon]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeaconFile {
    /// Activate flag.
    pub activate: SigSpec,
    /// Command counter.
    pub command_counter: SigSpec,
    /// Status period, ms (default: the DBC's GenMsgCycleTime).
    #[serde(default)]
    pub status_period_ms: Option<f64>,
    /// Transmitting flag.
    pub active: SigSpec,
    /// Transmissions so far.
    pub tx_count: SigSpec,
    /// Beacon battery voltage.
    pub battery_voltage: SigSpec,
    /// Status counter.
    pub status_counter: SigSpec,
}

/// `[fc]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcFile {
    /// The flight computer's node name in the DBC (`BU_`).
    pub node: String,
    /// Status (heartbeat): the FC's mode.
    pub mode: SigSpec,
    /// Status: sequence counter.
    pub sequence: SigSpec,
    /// Status: fault flags.
    pub fault_flags: SigSpec,
    /// Status: navigated altitude.
    pub est_altitude: SigSpec,
    /// Status: navigated speed.
    pub est_speed: SigSpec,
    /// Status: navigation valid.
    pub nav_valid: SigSpec,
    /// Status: GNSS fix.
    pub gnss_fix: SigSpec,
    /// Status: barometer valid.
    pub baro_valid: SigSpec,
    /// Status: IMU valid.
    pub imu_valid: SigSpec,
    /// Event: code.
    pub event_code: SigSpec,
    /// Event: mode before.
    pub event_mode_from: SigSpec,
    /// Event: mode after.
    pub event_mode_to: SigSpec,
    /// Event: detail.
    pub event_detail: SigSpec,
    /// Event: time.
    pub event_time: SigSpec,
    /// Identification: software major version.
    pub sw_major: SigSpec,
    /// Identification: minor.
    pub sw_minor: SigSpec,
    /// Identification: patch.
    pub sw_patch: SigSpec,
    /// Identification: build hash.
    pub build_hash: SigSpec,
}

/// `[handover]`: the host vehicle's state, sent before separation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverFile {
    /// Position x, y, z in the capsule's inertial frame.
    pub position: [SigSpec; 3],
    /// Velocity x, y, z.
    pub velocity: [SigSpec; 3],
    /// Attitude quaternion body to inertial, w, x, y, z.
    pub attitude: [SigSpec; 4],
    /// Time the state is valid at (its message is sent last and completes the set).
    pub time: SigSpec,
    /// Mode the FC shall assume.
    pub mode: SigSpec,
    /// Sequence number of the set.
    pub sequence: SigSpec,
}

/// `[mission]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissionFile {
    /// Landing target latitude.
    pub target_lat: SigSpec,
    /// Landing target longitude.
    pub target_lon: SigSpec,
    /// Planned ignition time (handover time base).
    pub ignition_time: SigSpec,
    /// Planned delta-v.
    pub delta_v: SigSpec,
    /// Burn attitude (0 retrograde).
    pub burn_attitude: SigSpec,
}

/// `[lockstep]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockstepFile {
    /// Tick: simulation time.
    pub tick_time: SigSpec,
    /// Tick: step number.
    pub tick_step: SigSpec,
    /// Sync: IMU bytes written so far.
    pub sync_imu_bytes: SigSpec,
    /// Sync: GNSS bytes written so far.
    pub sync_gnss_bytes: SigSpec,
    /// Ack: the tick's time.
    pub ack_time: SigSpec,
    /// Ack: the tick's step.
    pub ack_step: SigSpec,
    /// Reset: boot duration.
    pub reset_duration: SigSpec,
}

/// `[serial]`: the IMU and GNSS lines (each defaults to the shipped line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialFile {
    /// The IMU datagram.
    #[serde(default)]
    pub imu: Option<ImuFile>,
    /// The GNSS receiver.
    #[serde(default)]
    pub gnss: Option<GnssFile>,
}

/// `[serial.imu]`: the datagram's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImuFile {
    /// Line speed, bit/s (8N1).
    pub baud: u32,
    /// Byte order of the fields that do not give their own (default little).
    #[serde(default)]
    pub byte_order: Option<crate::imu::ByteOrder>,
    /// Frame length, bytes.
    pub length: usize,
    /// Constant bytes the frame starts with (sync, message id, length).
    pub header: Vec<u8>,
    /// How many header bytes are the sync a decoder hunts for (default 2, or 1 for a
    /// one-byte header).
    #[serde(default)]
    pub sync_bytes: Option<usize>,
    /// Rolling counter (unsigned).
    pub counter: FieldFile,
    /// Status flags (unsigned) and their bits.
    pub status: StatusFieldFile,
    /// Sensor time tag (unit of time).
    pub time: FieldFile,
    /// Angular rate x, y, z (unit of angular rate).
    pub gyro: [FieldFile; 3],
    /// Specific force x, y, z (unit of acceleration).
    pub accel: [FieldFile; 3],
    /// Temperature (unit of temperature).
    pub temperature: FieldFile,
    /// Checksum (none if absent).
    #[serde(default)]
    pub checksum: Option<ChecksumFile>,
}

/// One field of the datagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// Byte offset from the frame start.
    pub offset: usize,
    /// `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `f32` or `f64`.
    #[serde(rename = "type")]
    pub ty: crate::imu::NumType,
    /// Byte order (default: the datagram's).
    #[serde(default)]
    pub byte_order: Option<crate::imu::ByteOrder>,
    /// Value of one LSB in `unit` (default 1).
    #[serde(default)]
    pub lsb: Option<f64>,
    /// Unit (physical fields only).
    #[serde(default)]
    pub unit: Option<String>,
}

/// The status field: where it is and the bit of each flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFieldFile {
    /// Byte offset.
    pub offset: usize,
    /// Unsigned type.
    #[serde(rename = "type")]
    pub ty: crate::imu::NumType,
    /// Byte order (default: the datagram's).
    #[serde(default)]
    pub byte_order: Option<crate::imu::ByteOrder>,
    /// No valid data (start-up, reset): required.
    pub data_invalid: u64,
    /// A gyro channel saturated.
    #[serde(default)]
    pub gyro_saturated: Option<u64>,
    /// An accelerometer channel saturated.
    #[serde(default)]
    pub accel_saturated: Option<u64>,
    /// Built-in test failed.
    #[serde(default)]
    pub self_test_fail: Option<u64>,
    /// Temperature out of its calibrated range.
    #[serde(default)]
    pub temperature_range: Option<u64>,
}

/// The datagram's checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksumFile {
    /// Algorithm by catalogue name (`crc16-ibm-3740`, `crc32-iso-hdlc`, ...).
    pub kind: crate::crc::ChecksumKind,
    /// First covered byte.
    pub from: usize,
    /// One past the last covered byte.
    pub to: usize,
    /// Offset of the checksum.
    pub at: usize,
    /// Byte order (default: the datagram's).
    #[serde(default)]
    pub byte_order: Option<crate::imu::ByteOrder>,
}

/// `[serial.gnss]`: the receiver's protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GnssFile {
    /// Line speed, bit/s (8N1).
    pub baud: u32,
    /// `nmea` or `ubx`.
    pub protocol: GnssProtocolName,
    /// NMEA talker id (default `GP`).
    #[serde(default)]
    pub talker: Option<String>,
    /// NMEA sentences per epoch, in order (default GGA, RMC, VTG, GSA).
    #[serde(default)]
    pub sentences: Option<Vec<crate::nmea::NmeaKind>>,
    /// UBX messages per epoch (`NAV-PVT`, the default and only one).
    #[serde(default)]
    pub messages: Option<Vec<String>>,
}

/// GNSS protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GnssProtocolName {
    /// NMEA 0183.
    Nmea,
    /// u-blox UBX.
    Ubx,
}
