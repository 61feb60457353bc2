//! Device emulators: every capsule device the flight computer talks to, at the wire
//! level of the ICD, with its failure behaviour.
//!
//! Each physics step, [`Devices::step`] samples the sensor models from the twin's truth
//! and produces what the devices put on the wire (IMU datagrams, NMEA sentences, CAN
//! frames at their ICD rates). [`Devices::on_fc_frame`] takes what the flight computer
//! commands and turns it into actuator actions on the twin, as the real devices would:
//! a pyro channel without continuity does not fire; commands with a repeated counter are
//! ignored; the pyro controller fires only when armed with the arm key.
//!
//! Which DBC signal carries what, in which unit, at which period, with which status
//! values and bits, comes from the ICD binding ([`Binding`]): no message or signal name
//! of an ICD is in this code.

use capsule_icd::binding::{Binding, PYRO_CHANNELS, Sig, encode_into};
use capsule_icd::can::{CanFrame, CodecError};
use capsule_icd::imu::{ImuDatagram, status as imu_status};
use capsule_icd::nmea::GnssEpoch;
use serde::Serialize;
use std::sync::Arc;
use twin_core::sensors::fault::FaultLayer;
use twin_core::sensors::{
    BaroModel, Battery, FixQuality, GnssModel, ImuModel, PyroChannel, SensorSuiteSpec,
    ThermocoupleModel,
};
use twin_core::twin::Twin;

/// The shipped vehicle's thrusters, by vehicle-file name: its RCS jets (in the shipped
/// binding's valve bit order), then the deorbit motor. Scenarios name thrusters from
/// this list; which valve bit drives which thruster is the binding's.
pub const THRUSTERS: [&str; 9] = [
    "roll_pos_a",
    "roll_pos_b",
    "roll_neg_a",
    "roll_neg_b",
    "pitch_pos",
    "pitch_neg",
    "yaw_pos",
    "yaw_neg",
    "deorbit_motor",
];
/// The RCS jets: the first entries of [`THRUSTERS`].
pub const RCS_JETS: usize = 8;
/// The deorbit motor's thruster name in the vehicle file.
pub const DEORBIT_MOTOR: &str = THRUSTERS[RCS_JETS];
/// Stroke time of the separation springs, s.
pub const SEPARATION_PUSH_S: f64 = 0.1;
/// The CAN nodes powered from the capsule's main bus, by device name (the
/// power node measures the bus from its own hold-up supply and the beacon has its own
/// battery, so both stay up through a brown-out).
pub const BUS_POWERED_NODES: [&str; 5] = ["baro", "thermo", "pyro", "rcs", "deorbit"];
/// Under-voltage lockout of the bus-powered nodes' converters: they stop below this
/// bus voltage, V (assumption: the usual 18 V minimum input of 28 V-class converters).
pub const NODE_UVLO_OFF_V: f64 = 18.0;
/// The nodes restart when the bus is back above this voltage, V (1 V of hysteresis).
pub const NODE_UVLO_ON_V: f64 = 19.0;
/// The pyro controller's firing circuit delivers the initiators' all-fire current only
/// from this bus voltage up, V (assumption); below it, a powered controller's fire
/// command leaves the initiator intact (`pyro_no_fire`).
pub const PYRO_ALL_FIRE_V: f64 = 22.0;
/// RCS tank pressure when full, Pa (cold-gas nitrogen).
const RCS_FULL_PRESSURE_PA: f64 = 20e6;
/// Deorbit motor chamber pressure at full thrust, Pa.
const DEORBIT_CHAMBER_PA: f64 = 1.5e6;
/// The beacon's own battery, V.
const BEACON_BATTERY_V: f64 = 12.6;

/// Deorbit motor states (their wire values are the binding's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotorState {
    /// Not fired.
    Safe,
    /// Burning.
    Burning,
    /// Burn over (cut off or burnt out).
    Done,
}

/// Scenario name of a pyro channel (an index in [`PYRO_CHANNELS`]).
pub fn channel_name(channel: u8) -> &'static str {
    PYRO_CHANNELS
        .get(usize::from(channel))
        .copied()
        .unwrap_or("spare")
}

impl DeviceEvent {
    /// The event's name in scenario files (`pyro_fired:drogue_primary`, `beacon_on`...).
    pub fn name(&self) -> String {
        match self {
            DeviceEvent::PyroFired { channel } => format!("pyro_fired:{}", channel_name(*channel)),
            DeviceEvent::PyroNoFire { channel } => {
                format!("pyro_no_fire:{}", channel_name(*channel))
            }
            DeviceEvent::PyroNotArmed => "pyro_not_armed".to_string(),
            DeviceEvent::BeaconOn => "beacon_on".to_string(),
            DeviceEvent::BurnStart => "burn_start".to_string(),
            DeviceEvent::BurnEnd => "burn_end".to_string(),
            DeviceEvent::Separation => "separation".to_string(),
            DeviceEvent::BrownOut => "brown_out".to_string(),
            DeviceEvent::BusRestored => "bus_restored".to_string(),
            DeviceEvent::ThrusterIsolated { thruster } => format!("thruster_isolated:{thruster}"),
            DeviceEvent::Safed => "safed".to_string(),
        }
    }
}

/// Something a device did, recorded with the simulation time.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub enum DeviceEvent {
    /// A pyro initiator fired.
    PyroFired {
        /// Channel, an index in [`PYRO_CHANNELS`].
        channel: u8,
    },
    /// A fire command reached a channel without continuity: nothing happened.
    PyroNoFire {
        /// Channel, an index in [`PYRO_CHANNELS`].
        channel: u8,
    },
    /// A fire command arrived while the controller was not armed.
    PyroNotArmed,
    /// The run was stopped: the emulated actuators were commanded safe (pyro
    /// controller disarmed, beacon left as it was).
    Safed,
    /// The beacon started transmitting.
    BeaconOn,
    /// The deorbit motor ignited.
    BurnStart,
    /// The deorbit motor stopped (cut off, or out of propellant).
    BurnEnd,
    /// The capsule separated from its host vehicle (separation switches opened).
    Separation,
    /// The bus fell below the nodes' under-voltage lockout ([`NODE_UVLO_OFF_V`]): the
    /// bus-powered nodes ([`BUS_POWERED_NODES`]) stopped.
    BrownOut,
    /// The bus is back above [`NODE_UVLO_ON_V`]: the nodes restarted (pyro controller
    /// disarmed, counters from zero).
    BusRestored,
    /// The RCS driver closed a thruster's latch valve.
    ThrusterIsolated {
        /// Vehicle-file thruster name.
        thruster: String,
    },
}

/// What the devices put on the wire in one step.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Bytes for the IMU serial line.
    pub imu_bytes: Vec<u8>,
    /// Bytes for the GNSS serial line.
    pub gnss_bytes: Vec<u8>,
    /// CAN frames from the sensor and actuator nodes.
    pub frames: Vec<CanFrame>,
}

/// A periodic transmitter.
#[derive(Debug, Clone, Copy)]
struct Every {
    period_s: f64,
    next_s: f64,
}

impl Every {
    fn new(period_s: f64) -> Self {
        Self {
            period_s,
            next_s: 0.0,
        }
    }
    fn due(&mut self, t: f64) -> bool {
        if t + 1e-9 < self.next_s {
            return false;
        }
        self.next_s += self.period_s;
        if self.next_s <= t {
            self.next_s = t + self.period_s;
        }
        true
    }
}

/// All device emulators of the capsule.
pub struct Devices {
    icd: Arc<Binding>,
    /// Message identifier -> device node, for silencing nodes.
    node_of: Vec<(u32, &'static str)>,
    /// Wire bit of each pyro channel ([`PYRO_CHANNELS`] order).
    pyro_bit: [u32; 6],
    imu: ImuModel,
    imu_counter: u16,
    imu_resetting: bool,
    gnss: GnssModel,
    baro: BaroModel,
    baro_counter: u8,
    thermo: ThermocoupleModel,
    thermo_counter: u8,
    battery: Battery,
    power: Every,
    power_counter: u8,
    /// Pyro channels, in [`PYRO_CHANNELS`] order.
    pub pyro: [PyroChannel; 6],
    pyro_armed: bool,
    pyro_last_cmd: Option<u8>,
    pyro_status: Every,
    pyro_counter: u8,
    beacon_on: bool,
    beacon_tx: u16,
    beacon_last_cmd: Option<u8>,
    beacon_status: Every,
    beacon_counter: u8,
    /// Sensor faults between the models and the wire.
    pub faults: FaultLayer,
    /// Device events so far, with their times.
    pub events: Vec<(f64, DeviceEvent)>,
    epoch_utc_s: f64,
    silent: std::collections::BTreeSet<String>,
    /// The bus-powered nodes are off (bus under their lockout).
    browned_out: bool,
    safed: bool,
    /// RCS driver: commanded valves, latch (isolation) valves, time of the last command.
    rcs_cmd: u64,
    rcs_isolated: u64,
    rcs_cmd_t_s: f64,
    rcs_last_cmd: Option<u8>,
    rcs_status: Every,
    rcs_counter: u8,
    /// Deorbit motor controller.
    motor: MotorState,
    motor_t0_s: f64,
    motor_burn_s: f64,
    motor_last_cmd: Option<u8>,
    motor_status: Every,
    motor_counter: u8,
    /// Simulation-only frames for the flight computer (the lockstep reset).
    to_fc: Vec<CanFrame>,
    /// Separation switches as the pyro controller reads them (bit set = mated to the
    /// host vehicle).
    sep_switches: u8,
    /// Separation springs still pushing: (steps left, velocity change per step, m/s).
    sep_push: Option<(u32, f64)>,
    /// Output rates of the IMU and GNSS models, Hz (for the line-capacity check).
    serial_rates_hz: (f64, f64),
    /// GNSS accuracy estimates the receiver reports (UBX): horizontal and vertical
    /// 1-sigma, m; speed, m/s.
    gnss_accuracy: (f64, f64, f64),
}

/// True when a CAN node sends and hears: not silenced by a fault, and powered.
fn speaks(silent: &std::collections::BTreeSet<String>, browned_out: bool, node: &str) -> bool {
    let unpowered = browned_out && BUS_POWERED_NODES.contains(&node);
    !silent.contains(node) && !unpowered
}

impl Devices {
    /// Devices of a vehicle with its sensor specs, seeded, on the ICD of `icd`.
    pub fn new(icd: Arc<Binding>, sensors: &SensorSuiteSpec, seed: u64) -> Self {
        Self {
            node_of: icd.device_messages(),
            pyro_bit: PYRO_CHANNELS.map(|c| icd.pyro.bit(c)),
            power: Every::new(icd.power.period_s),
            pyro_status: Every::new(icd.pyro.status_period_s),
            beacon_status: Every::new(icd.beacon.status_period_s),
            rcs_status: Every::new(icd.rcs.status_period_s),
            motor_status: Every::new(icd.deorbit.status_period_s),
            icd,
            imu: ImuModel::new(&sensors.imu, seed),
            imu_counter: 0,
            imu_resetting: false,
            gnss: GnssModel::new(&sensors.gnss, seed),
            baro: BaroModel::new(&sensors.baro, seed),
            baro_counter: 0,
            thermo: ThermocoupleModel::new(&sensors.thermocouples, seed),
            thermo_counter: 0,
            battery: Battery::new(&sensors.battery),
            power_counter: 0,
            pyro: PYRO_CHANNELS.map(PyroChannel::new),
            pyro_armed: false,
            pyro_last_cmd: None,
            pyro_counter: 0,
            beacon_on: false,
            beacon_tx: 0,
            beacon_last_cmd: None,
            beacon_counter: 0,
            faults: FaultLayer::new(twin_core::rng::SimRng::new(seed, "sensor-faults")),
            events: Vec::new(),
            epoch_utc_s: 12.0 * 3600.0,
            silent: std::collections::BTreeSet::new(),
            browned_out: false,
            safed: false,
            rcs_cmd: 0,
            rcs_isolated: 0,
            rcs_cmd_t_s: f64::NEG_INFINITY,
            rcs_last_cmd: None,
            rcs_counter: 0,
            motor: MotorState::Safe,
            motor_t0_s: 0.0,
            motor_burn_s: 0.0,
            motor_last_cmd: None,
            motor_counter: 0,
            to_fc: Vec::new(),
            sep_switches: 0,
            sep_push: None,
            serial_rates_hz: (sensors.imu.rate_hz, sensors.gnss.rate_hz),
            gnss_accuracy: (
                sensors.gnss.horizontal_sigma_m,
                sensors.gnss.vertical_sigma_m,
                sensors.gnss.velocity_sigma_m_s,
            ),
        }
    }

    /// The ICD binding the devices run on.
    pub fn icd(&self) -> &Arc<Binding> {
        &self.icd
    }

    /// Initial conditions mated to the host vehicle: both separation switches closed
    /// until [`Devices::separate`].
    pub fn start_mated(&mut self) {
        self.sep_switches = 0b11;
    }

    /// Separation from the host vehicle at `t_s`: both separation switches open and
    /// the springs push the capsule along its body -x axis (away from the host,
    /// retrograde at the orbit attitude) for [`SEPARATION_PUSH_S`], giving it
    /// `delta_v_m_s` (a constant force over the spring stroke, well inside the IMU's
    /// range).
    pub fn separate(&mut self, twin: &Twin, t_s: f64, delta_v_m_s: f64) {
        if self.sep_switches == 0 {
            return;
        }
        let steps = (SEPARATION_PUSH_S / twin.dt_s()).round().max(1.0);
        self.sep_push = Some((steps as u32, delta_v_m_s / steps));
        self.sep_switches = 0;
        self.events.push((t_s, DeviceEvent::Separation));
    }

    /// True while mated to the host vehicle.
    pub fn mated(&self) -> bool {
        self.sep_switches != 0
    }

    /// Initial conditions under the drogue: its primary initiator fired
    /// `fired_s_before` seconds before now (the pyro controller reports it fired, its
    /// continuity gone) and the twin's drogue is where its deployment sequence is that
    /// long after. False if the vehicle has no parachute named `drogue`.
    pub fn start_under_drogue(&mut self, twin: &mut Twin, fired_s_before: f64) -> bool {
        let Some(i) = twin.parachute_index("drogue") else {
            return false;
        };
        twin.set_parachute_deployed_ago(i, fired_s_before);
        self.pyro[0].fired = true;
        true
    }

    /// Forces the GNSS receiver to lose (or regain) its fix.
    pub fn set_gnss_outage(&mut self, on: bool) {
        self.gnss.forced_outage_until_s = if on { f64::INFINITY } else { f64::NEG_INFINITY };
    }

    /// Starts (or ends) an IMU reset: while it lasts the IMU sends datagrams flagged
    /// `DATA_INVALID` with zero fields; its counter restarts from zero.
    pub fn set_imu_resetting(&mut self, on: bool) {
        if on && !self.imu_resetting {
            self.imu_counter = 0;
        }
        self.imu_resetting = on;
    }

    /// Makes a CAN node (`baro`, `thermo`, `power`, `pyro`, `beacon`) stop (or resume)
    /// sending.
    pub fn set_node_silent(&mut self, node: &str, on: bool) {
        if on {
            self.silent.insert(node.to_string());
        } else {
            self.silent.remove(node);
        }
    }

    /// Brown-out: the bus is pulled down to at most `bus_voltage_v` (None: released).
    /// Below [`NODE_UVLO_OFF_V`] the bus-powered nodes stop; they restart, disarmed and
    /// with their counters from zero, when it recovers.
    pub fn set_brown_out(&mut self, bus_voltage_v: Option<f64>) {
        self.battery.fault_bus_limit_v = bus_voltage_v;
    }

    /// Bus voltage now, V.
    pub fn bus_voltage_v(&self) -> f64 {
        self.battery.sample().voltage_v
    }

    fn speaks(&self, node: &str) -> bool {
        speaks(&self.silent, self.browned_out, node)
    }

    /// Follows the bus voltage: the bus-powered nodes stop under their lockout and
    /// restart (from their power-on state) when it recovers.
    fn follow_bus(&mut self, t_s: f64) {
        let v = self.bus_voltage_v();
        if !self.browned_out && v < NODE_UVLO_OFF_V {
            self.browned_out = true;
            self.events.push((t_s, DeviceEvent::BrownOut));
            // Power lost: the pyro controller's arming goes; the valve drivers close
            // their valves as on a command timeout, and the motor controller's valves
            // close (both in `actuate`).
            self.pyro_armed = false;
            self.rcs_cmd_t_s = f64::NEG_INFINITY;
        } else if self.browned_out && v > NODE_UVLO_ON_V {
            self.browned_out = false;
            self.events.push((t_s, DeviceEvent::BusRestored));
            self.pyro_last_cmd = None;
            self.rcs_last_cmd = None;
            self.motor_last_cmd = None;
            self.baro_counter = 0;
            self.thermo_counter = 0;
            self.pyro_counter = 0;
            self.rcs_counter = 0;
            self.motor_counter = 0;
        }
    }

    /// True once the beacon transmits.
    pub fn beacon_on(&self) -> bool {
        self.beacon_on
    }

    fn f(&mut self, ch: &str, t: f64, v: f64) -> Option<f64> {
        self.faults.apply(ch, t, v)
    }

    /// Queues the lockstep reset for the flight computer (a simulated one resets and
    /// boots for `boot_s`).
    pub fn request_fc_reset(&mut self, boot_s: f64) -> Result<(), CodecError> {
        let icd = self.icd.clone();
        let d = &icd.lockstep.reset_duration;
        encode_into(
            &[(d, d.clamp((boot_s * 1000.0).round() / 1000.0))],
            &mut self.to_fc,
        )
    }

    /// The RCS jets: (valve bit, thruster index in the twin) for each bound thruster
    /// the vehicle has.
    fn jets<'a>(&'a self, twin: &'a Twin) -> impl Iterator<Item = (u32, usize)> + 'a {
        self.icd
            .rcs
            .thrusters
            .iter()
            .enumerate()
            .filter_map(|(k, name)| twin.thruster_index(name).map(|i| (k as u32, i)))
    }

    /// Actuator housekeeping before a physics step: the RCS driver closes its valves
    /// when commands stop (the binding's `rcs.command_timeout_ms`); the deorbit motor
    /// burns out when its propellant is gone.
    pub fn actuate(&mut self, twin: &mut Twin) {
        if let Some((left, dv)) = self.sep_push {
            twin.apply_delta_v_body(twin_core::glam::DVec3::new(-dv, 0.0, 0.0));
            self.sep_push = (left > 1).then_some((left - 1, dv));
        }
        let t = twin.time_s();
        if self.rcs_cmd != 0 && t - self.rcs_cmd_t_s > self.icd.rcs.command_timeout_s + 1e-9 {
            self.rcs_cmd = 0;
            let icd = self.icd.clone();
            for name in &icd.rcs.thrusters {
                if let Some(i) = twin.thruster_index(name) {
                    twin.set_throttle(i, 0.0);
                }
            }
        }
        // An unpowered motor controller's propellant valves close: the burn is over.
        if (self.safed || self.browned_out) && self.motor == MotorState::Burning {
            if let Some(i) = twin.thruster_index(&self.icd.deorbit.thruster) {
                twin.set_throttle(i, 0.0);
            }
            self.motor = MotorState::Done;
            self.events.push((t, DeviceEvent::BurnEnd));
        }
        if self.motor == MotorState::Burning {
            let empty = twin
                .thruster_index(DEORBIT_MOTOR)
                .and_then(|i| twin.thruster_tank_kg(i))
                .is_none_or(|(left, _)| left <= 0.0);
            self.motor_burn_s = t - self.motor_t0_s;
            if empty {
                self.motor = MotorState::Done;
                self.events.push((t, DeviceEvent::BurnEnd));
            }
        }
    }

    /// Thruster propellant fraction left in the RCS tank (0..1).
    fn rcs_fill(&self, twin: &Twin) -> f64 {
        match self
            .jets(twin)
            .next()
            .and_then(|(_, i)| twin.thruster_tank_kg(i))
        {
            Some((left, full)) if full > 0.0 => (left / full).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// The serial lines' speeds the binding gives (IMU, GNSS), bit/s.
    pub fn serial_bauds(&self) -> (u32, u32) {
        (self.icd.imu.baud, self.icd.gnss.baud)
    }

    /// Refuses a binding whose serial lines cannot carry the vehicle's sensor output
    /// rates (8N1: ten bits a byte), naming the line, the need and the speed.
    pub fn check_serial_capacity(&self) -> Result<(), String> {
        let (imu_hz, gnss_hz) = self.serial_rates_hz;
        let imu = &self.icd.imu;
        let need = imu.bits_per_s(imu_hz);
        if need > f64::from(imu.baud) {
            return Err(format!(
                "serial.imu: {}-byte datagrams at {imu_hz} Hz need {need:.0} bit/s; the line runs at {} bit/s",
                imu.len, imu.baud
            ));
        }
        let gnss = &self.icd.gnss;
        let need = gnss.max_epoch_bytes() as f64 * 10.0 * gnss_hz;
        if need > f64::from(gnss.baud) {
            return Err(format!(
                "serial.gnss: {} at {gnss_hz} Hz needs up to {need:.0} bit/s; the line runs at {} bit/s",
                gnss.describe(),
                gnss.baud
            ));
        }
        Ok(())
    }

    /// Produces this step's wire output from the twin's current truth.
    pub fn step(&mut self, twin: &Twin, dt_s: f64, out: &mut Outputs) -> Result<(), CodecError> {
        let truth = twin.sensor_truth();
        let t = truth.t_s;
        out.frames.append(&mut self.to_fc);
        let first_frame = out.frames.len();
        self.battery
            .step(dt_s, if self.beacon_on { 0.5 } else { 0.0 });
        self.follow_bus(t);
        // IMU.
        if let Some(s) = self.imu.poll(&truth) {
            let mut valid = true;
            let mut rate = [0.0; 3];
            let mut acc = [0.0; 3];
            for k in 0..3 {
                let axis = ["x", "y", "z"][k];
                match (
                    self.f(&format!("imu.gyro_{axis}"), t, s.rate_rad_s[k]),
                    self.f(&format!("imu.accel_{axis}"), t, s.specific_force_m_s2[k]),
                ) {
                    (Some(r), Some(a)) => {
                        rate[k] = r;
                        acc[k] = a;
                    }
                    _ => valid = false,
                }
            }
            if self.imu_resetting {
                // Restarting: the IMU announces it has no data (ICD: fields zero).
                let d = ImuDatagram {
                    counter: self.imu_counter,
                    status: imu_status::DATA_INVALID,
                    time_us: (t * 1e6).round() as u32,
                    rate_rad_s: [0.0; 3],
                    specific_force_m_s2: [0.0; 3],
                    temperature_c: s.temperature_k - 273.15,
                };
                self.imu_counter = self.imu_counter.wrapping_add(1);
                self.icd.imu.encode_to(&d, &mut out.imu_bytes);
            } else if valid {
                let status = if s.saturated {
                    imu_status::GYRO_SATURATED | imu_status::ACCEL_SATURATED
                } else {
                    0
                };
                let d = ImuDatagram {
                    counter: self.imu_counter,
                    status,
                    time_us: (t * 1e6).round() as u32,
                    rate_rad_s: rate,
                    specific_force_m_s2: acc,
                    temperature_c: s.temperature_k - 273.15,
                };
                self.imu_counter = self.imu_counter.wrapping_add(1);
                self.icd.imu.encode_to(&d, &mut out.imu_bytes);
            }
        }
        // GNSS.
        if let Some(fx) = self.gnss.poll(&truth) {
            let v = fx.velocity_ned_m_s;
            let alt = self.f("gnss.altitude", t, fx.altitude_m);
            // Latitude and longitude faults are in degrees (a bias of 0.05 deg is a
            // 5.6 km north-south jump).
            let lat = self.f("gnss.latitude", t, fx.latitude_rad.to_degrees());
            let lon = self.f("gnss.longitude", t, fx.longitude_rad.to_degrees());
            let e = GnssEpoch {
                utc_time_s: self.epoch_utc_s + fx.t_valid_s,
                date: (21, 11, 2026),
                fix: fx.quality == FixQuality::Fix3d
                    && alt.is_some()
                    && lat.is_some()
                    && lon.is_some(),
                latitude_deg: lat.unwrap_or(0.0),
                longitude_deg: lon.unwrap_or(0.0),
                altitude_msl_m: alt.unwrap_or(0.0),
                geoid_separation_m: 0.0,
                speed_m_s: (v[0] * v[0] + v[1] * v[1]).sqrt(),
                course_deg: v[1].atan2(v[0]).to_degrees().rem_euclid(360.0),
                satellites: fx.satellites,
                dop: (1.6, fx.hdop, 1.3),
                prns: vec![2, 5, 7, 9, 13, 15, 20, 24, 30],
                velocity_down_m_s: v[2],
                horizontal_accuracy_m: self.gnss_accuracy.0,
                vertical_accuracy_m: self.gnss_accuracy.1,
                speed_accuracy_m_s: self.gnss_accuracy.2,
            };
            self.icd.gnss.encode_to(&e, &mut out.gnss_bytes);
        }
        let icd = self.icd.clone();
        let frames = &mut out.frames;
        // Barometer node.
        if let Some(b) = self.baro.poll(&truth) {
            let bd = &icd.baro;
            let p = self.f("baro.pressure", t, b.pressure_pa);
            // Status: ok; out of range (the sensor saturated, or a value beyond what
            // the frame can carry); sensor fault (no output).
            let temp_k = b.temperature_k;
            let (pressure, status) = match p {
                Some(p) if b.saturated || !bd.pressure.fits(p) || !bd.temperature.fits(temp_k) => {
                    (p, bd.status.out_of_range)
                }
                Some(p) => (p, bd.status.ok),
                None => (bd.pressure.clamp(0.0), bd.status.fault),
            };
            encode_into(
                &[
                    (&bd.pressure, bd.pressure.clamp(pressure)),
                    (&bd.temperature, bd.temperature.clamp(temp_k)),
                    (&bd.status.sig, status),
                    (&bd.counter, f64::from(self.baro_counter)),
                ],
                frames,
            )?;
            self.baro_counter = ((u64::from(self.baro_counter) + 1) % bd.counter.modulo()) as u8;
        }
        // Thermocouple node.
        if let Some(th) = self.thermo.poll(&truth) {
            let td = &icd.thermo;
            encode_into(
                &[
                    (&td.heat_shield, td.heat_shield.clamp(th.heat_shield_k)),
                    (&td.bondline, td.bondline.clamp(th.bondline_k)),
                    (&td.backshell, td.backshell.clamp(th.backshell_k)),
                    (&td.status.sig, td.status.ok),
                    (&td.counter, f64::from(self.thermo_counter)),
                ],
                frames,
            )?;
            self.thermo_counter =
                ((u64::from(self.thermo_counter) + 1) % td.counter.modulo()) as u8;
        }
        // Power node.
        if self.power.due(t) {
            let pd = &icd.power;
            let s = self.battery.sample();
            encode_into(
                &[
                    (&pd.bus_voltage, pd.bus_voltage.clamp(s.voltage_v)),
                    (&pd.current, pd.current.clamp(s.current_a)),
                    (&pd.state_of_charge, (s.soc * 200.0).round() / 200.0),
                    (&pd.status.sig, pd.status.ok),
                    (&pd.counter, f64::from(self.power_counter)),
                ],
                frames,
            )?;
            self.power_counter = ((u64::from(self.power_counter) + 1) % pd.counter.modulo()) as u8;
        }
        // Pyro controller status.
        if self.pyro_status.due(t) {
            let py = &icd.pyro;
            let mut cont = 0u64;
            let mut fired = 0u64;
            for (c, bit) in self.pyro.iter().zip(self.pyro_bit) {
                if c.continuity() {
                    cont |= 1 << bit;
                }
                if c.fired {
                    fired |= 1 << bit;
                }
            }
            let v = self.battery.sample().voltage_v;
            encode_into(
                &[
                    (&py.armed, if self.pyro_armed { 1.0 } else { 0.0 }),
                    (&py.continuity, cont as f64),
                    (&py.fired, fired as f64),
                    (&py.bus_voltage, py.bus_voltage.clamp(v)),
                    (&py.status_counter, f64::from(self.pyro_counter)),
                    (&py.separation_switches, f64::from(self.sep_switches)),
                ],
                frames,
            )?;
            self.pyro_counter =
                ((u64::from(self.pyro_counter) + 1) % py.status_counter.modulo()) as u8;
        }
        // RCS driver status: valve positions as read back.
        if self.rcs_status.due(t) {
            let rd = &icd.rcs;
            let mut state = 0u64;
            for (bit, i) in self.jets(twin) {
                if twin.thruster_valve_open(i) {
                    state |= 1 << bit;
                }
            }
            encode_into(
                &[
                    (&rd.valve_state, state as f64),
                    (
                        &rd.tank_pressure,
                        (RCS_FULL_PRESSURE_PA * self.rcs_fill(twin)).round(),
                    ),
                    (&rd.fault_mask, (state ^ self.rcs_cmd) as f64),
                    (&rd.status_counter, f64::from(self.rcs_counter)),
                ],
                frames,
            )?;
            self.rcs_counter =
                ((u64::from(self.rcs_counter) + 1) % rd.status_counter.modulo()) as u8;
        }
        // Deorbit motor status.
        if self.motor_status.due(t) {
            let dd = &icd.deorbit;
            let burning = self.motor == MotorState::Burning;
            let thrust_fraction = twin
                .thruster_index(&dd.thruster)
                .map_or(0.0, |i| twin.thruster_output(i));
            let state = match self.motor {
                MotorState::Safe => dd.state_safe,
                MotorState::Burning => dd.state_burning,
                MotorState::Done => dd.state_done,
            };
            encode_into(
                &[
                    (&dd.state, state),
                    (
                        &dd.chamber_pressure,
                        if burning {
                            (DEORBIT_CHAMBER_PA * thrust_fraction).round()
                        } else {
                            0.0
                        },
                    ),
                    (
                        &dd.burn_time,
                        dd.burn_time
                            .clamp((self.motor_burn_s * 100.0).round() / 100.0),
                    ),
                    (&dd.status_counter, f64::from(self.motor_counter)),
                ],
                frames,
            )?;
            self.motor_counter =
                ((u64::from(self.motor_counter) + 1) % dd.status_counter.modulo()) as u8;
        }
        // Beacon status.
        if self.beacon_status.due(t) {
            let bd = &icd.beacon;
            if self.beacon_on {
                self.beacon_tx = ((u64::from(self.beacon_tx) + 1) % bd.tx_count.modulo()) as u16;
            }
            encode_into(
                &[
                    (&bd.active, if self.beacon_on { 1.0 } else { 0.0 }),
                    (&bd.tx_count, f64::from(self.beacon_tx)),
                    (
                        &bd.battery_voltage,
                        bd.battery_voltage.clamp(BEACON_BATTERY_V),
                    ),
                    (&bd.status_counter, f64::from(self.beacon_counter)),
                ],
                frames,
            )?;
            self.beacon_counter =
                ((u64::from(self.beacon_counter) + 1) % bd.status_counter.modulo()) as u8;
        }
        // Silent and unpowered nodes put nothing on the bus.
        if !self.silent.is_empty() || self.browned_out {
            let silent = &self.silent;
            let node_of = &self.node_of;
            let browned_out = self.browned_out;
            let mut k = first_frame;
            while k < frames.len() {
                let node = node_of
                    .iter()
                    .find(|(id, _)| *id == frames[k].id)
                    .map_or("", |(_, n)| n);
                if !speaks(silent, browned_out, node) {
                    frames.remove(k);
                } else {
                    k += 1;
                }
            }
        }
        Ok(())
    }

    /// Commands the emulated actuators safe when a run is stopped: the pyro controller
    /// disarms (no further fire command acts), the RCS valves close and a burning
    /// deorbit motor is cut off, and the event `safed` is recorded.
    pub fn make_safe(&mut self, t_s: f64) {
        // The next `actuate` closes the RCS valves (as on a command timeout) and cuts
        // the deorbit motor off.
        self.rcs_cmd_t_s = f64::NEG_INFINITY;
        self.pyro_armed = false;
        self.pyro_last_cmd = None;
        self.safed = true;
        self.events.push((t_s, DeviceEvent::Safed));
    }

    /// Takes a frame from the flight computer at time `t_s`, acting on the twin.
    /// Returns true when the frame was a new actuator command (a fresh command counter)
    /// that a device acted on, false for anything else (status traffic, repeats,
    /// frames too short for their message, messages of silenced devices).
    pub fn on_fc_frame(&mut self, f: &CanFrame, twin: &mut Twin, t_s: f64) -> bool {
        if self.safed {
            return false;
        }
        let icd = self.icd.clone();
        let is = |s: &Sig| s.id() == f.id && f.dlc >= s.message().dlc;
        let flag = |s: &Sig| s.read(f) >= 0.5;
        let int = |s: &Sig| s.read(f).max(0.0) as u64;
        if is(&icd.pyro.fire_mask) && self.speaks("pyro") {
            let py = &icd.pyro;
            let counter = int(&py.command_counter) as u8;
            if self.pyro_last_cmd == Some(counter) {
                return false;
            }
            self.pyro_last_cmd = Some(counter);
            self.pyro_armed = int(&py.arm_key) as f64 == py.arm_key_value && flag(&py.arm);
            let mask = int(&py.fire_mask);
            if mask == 0 {
                return true;
            }
            if !self.pyro_armed {
                self.events.push((t_s, DeviceEvent::PyroNotArmed));
                return true;
            }
            // Channels in wire-bit order (the order the controller's scan fires them).
            for bit in 0..64u32 {
                if mask & (1 << bit) == 0 {
                    continue;
                }
                let Some(k) = self.pyro_bit.iter().position(|b| *b == bit) else {
                    continue;
                };
                // Under the all-fire voltage the bridgewire is not heated enough: the
                // initiator stays intact (its continuity still reads).
                let energised = self.battery.sample().voltage_v >= PYRO_ALL_FIRE_V;
                let channel = k as u8;
                if energised && self.pyro[k].fire() {
                    self.events.push((t_s, DeviceEvent::PyroFired { channel }));
                    let chute = |name: &str, tw: &Twin| tw.parachute_index(name);
                    match PYRO_CHANNELS[k] {
                        "drogue_primary" | "drogue_backup" => {
                            if let Some(i) = chute("drogue", twin) {
                                twin.deploy_parachute(i);
                            }
                        }
                        "main_primary" | "main_backup" => {
                            if let Some(i) = chute("main", twin) {
                                twin.deploy_parachute(i);
                            }
                        }
                        "drogue_release" => {
                            if let Some(i) = chute("drogue", twin) {
                                twin.release_parachute(i);
                            }
                        }
                        "main_release" => {
                            if let Some(i) = chute("main", twin) {
                                twin.release_parachute(i);
                            }
                        }
                        _ => {}
                    }
                } else {
                    self.events.push((t_s, DeviceEvent::PyroNoFire { channel }));
                }
            }
            return true;
        }
        if is(&icd.rcs.valves) && self.speaks("rcs") {
            let rd = &icd.rcs;
            let counter = int(&rd.command_counter) as u8;
            if self.rcs_last_cmd == Some(counter) {
                return false;
            }
            self.rcs_last_cmd = Some(counter);
            self.rcs_cmd = int(&rd.valves);
            self.rcs_cmd_t_s = t_s;
            let isolate = int(&rd.isolate);
            for (k, name) in rd.thrusters.iter().enumerate() {
                let Some(i) = twin.thruster_index(name) else {
                    continue;
                };
                let bit = 1u64 << k;
                twin.set_throttle(i, if self.rcs_cmd & bit != 0 { 1.0 } else { 0.0 });
                if isolate & bit != self.rcs_isolated & bit {
                    twin.set_thruster_isolated(i, isolate & bit != 0);
                    if isolate & bit != 0 {
                        self.events.push((
                            t_s,
                            DeviceEvent::ThrusterIsolated {
                                thruster: name.clone(),
                            },
                        ));
                    }
                }
            }
            self.rcs_isolated = isolate;
            return true;
        }
        if is(&icd.deorbit.ignite) && self.speaks("deorbit") {
            let dd = &icd.deorbit;
            let counter = int(&dd.command_counter) as u8;
            if self.motor_last_cmd == Some(counter) {
                return false;
            }
            self.motor_last_cmd = Some(counter);
            let Some(i) = twin.thruster_index(&dd.thruster) else {
                return true;
            };
            if flag(&dd.cutoff) {
                if self.motor == MotorState::Burning {
                    twin.set_throttle(i, 0.0);
                    self.motor = MotorState::Done;
                    self.motor_burn_s = t_s - self.motor_t0_s;
                    self.events.push((t_s, DeviceEvent::BurnEnd));
                }
            } else if flag(&dd.ignite) && self.motor == MotorState::Safe {
                // A solid-propellant-like single start: ignites once.
                twin.set_throttle(i, 1.0);
                self.motor = MotorState::Burning;
                self.motor_t0_s = t_s;
                self.events.push((t_s, DeviceEvent::BurnStart));
            }
            return true;
        }
        if is(&icd.beacon.activate) && self.speaks("beacon") {
            let bd = &icd.beacon;
            let counter = int(&bd.command_counter) as u8;
            if self.beacon_last_cmd == Some(counter) {
                return false;
            }
            self.beacon_last_cmd = Some(counter);
            if flag(&bd.activate) && !self.beacon_on {
                self.beacon_on = true;
                self.events.push((t_s, DeviceEvent::BeaconOn));
            }
            return true;
        }
        false
    }
}
