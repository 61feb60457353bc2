//! Device emulators: every capsule device the flight computer talks to, at the wire
//! level of the ICD, with its failure behaviour.
//!
//! Each physics step, [`Devices::step`] samples the sensor models from the twin's truth
//! and produces what the devices put on the wire (IMU datagrams, NMEA sentences, CAN
//! frames at their ICD rates). [`Devices::on_fc_frame`] takes what the flight computer
//! commands and turns it into actuator actions on the twin, as the real devices would:
//! a pyro channel without continuity does not fire; commands with a repeated counter are
//! ignored; the pyro controller fires only when armed with the arm key.

use capsule_icd::can::{CanDb, CanFrame, CodecError};
use capsule_icd::imu::{ImuDatagram, status as imu_status};
use capsule_icd::nmea::GnssEpoch;
use serde::Serialize;
use twin_core::sensors::fault::FaultLayer;
use twin_core::sensors::{
    BaroModel, Battery, FixQuality, GnssModel, ImuModel, PyroChannel, SensorSuiteSpec,
    ThermocoupleModel,
};
use twin_core::twin::Twin;

/// Pyro channel bits (`Pyro_FireMask`, `Pyro_Continuity`, `Pyro_Fired`).
pub mod pyro_bits {
    /// Drogue mortar, primary initiator.
    pub const DROGUE_PRIMARY: u8 = 1 << 0;
    /// Drogue mortar, backup initiator.
    pub const DROGUE_BACKUP: u8 = 1 << 1;
    /// Main parachute, primary.
    pub const MAIN_PRIMARY: u8 = 1 << 2;
    /// Main parachute, backup.
    pub const MAIN_BACKUP: u8 = 1 << 3;
    /// Drogue riser cutter.
    pub const DROGUE_RELEASE: u8 = 1 << 4;
    /// Main riser cutter.
    pub const MAIN_RELEASE: u8 = 1 << 5;
}

/// The thrusters the devices drive, by vehicle-file name: the RCS jets behind the
/// `RCS_ValveCmd` bits, in bit order, then the deorbit motor.
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
/// RCS driver: valves close after this long without a command, s (ICD).
pub const RCS_COMMAND_TIMEOUT_S: f64 = 0.1;
/// The CAN nodes powered from the capsule's main bus, by DBC transmitter name (the
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
/// RCS tank pressure when full, MPa (cold-gas nitrogen).
const RCS_FULL_PRESSURE_MPA: f64 = 20.0;
/// Deorbit motor chamber pressure at full thrust, MPa.
const DEORBIT_CHAMBER_MPA: f64 = 1.5;

/// Deorbit motor states (`Deorbit_State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotorState {
    /// Not fired.
    Safe = 0,
    /// Burning.
    Burning = 2,
    /// Burn over (cut off or burnt out).
    Done = 3,
}

/// Scenario name of a pyro channel bit.
pub fn channel_name(bit: u8) -> &'static str {
    match bit {
        pyro_bits::DROGUE_PRIMARY => "drogue_primary",
        pyro_bits::DROGUE_BACKUP => "drogue_backup",
        pyro_bits::MAIN_PRIMARY => "main_primary",
        pyro_bits::MAIN_BACKUP => "main_backup",
        pyro_bits::DROGUE_RELEASE => "drogue_release",
        pyro_bits::MAIN_RELEASE => "main_release",
        _ => "spare",
    }
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
            DeviceEvent::ThrusterIsolated { thruster } => {
                format!(
                    "thruster_isolated:{}",
                    THRUSTERS[*thruster as usize % RCS_JETS]
                )
            }
            DeviceEvent::Safed => "safed".to_string(),
        }
    }
}

/// The arm key the pyro controller requires (`Pyro_ArmKey`).
pub const PYRO_ARM_KEY: u8 = 0xA5;

/// Something a device did, recorded with the simulation time.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub enum DeviceEvent {
    /// A pyro initiator fired.
    PyroFired {
        /// Channel bit.
        channel: u8,
    },
    /// A fire command reached a channel without continuity: nothing happened.
    PyroNoFire {
        /// Channel bit.
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
        /// Bit number in `RCS_ValveCmd`.
        thruster: u8,
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
    db: CanDb,
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
    /// Pyro channels, in `pyro_bits` order.
    pub pyro: [PyroChannel; 8],
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
    rcs_cmd: u8,
    rcs_isolated: u8,
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
    /// Simulation-only frames for the flight computer (`SIM_Reset`).
    to_fc: Vec<CanFrame>,
    /// Separation switches as the pyro controller reads them (`Pyro_SepSwitch`: bit
    /// set = mated to the host vehicle).
    sep_switches: u8,
    /// Separation springs still pushing: (steps left, velocity change per step, m/s).
    sep_push: Option<(u32, f64)>,
}

/// True when a CAN node sends and hears: not silenced by a fault, and powered.
fn speaks(silent: &std::collections::BTreeSet<String>, browned_out: bool, node: &str) -> bool {
    let unpowered = browned_out && BUS_POWERED_NODES.contains(&node);
    !silent.contains(node) && !unpowered
}

fn clampv(db: &CanDb, msg: &str, sig: &str, v: f64) -> f64 {
    db.by_name(msg)
        .and_then(|m| m.signal(sig))
        .map_or(v, |s| v.clamp(s.min, s.max))
}

impl Devices {
    /// Devices of a vehicle with its sensor specs, seeded.
    pub fn new(db: CanDb, sensors: &SensorSuiteSpec, seed: u64) -> Self {
        let names = [
            "drogue_primary",
            "drogue_backup",
            "main_primary",
            "main_backup",
            "drogue_release",
            "main_release",
            "spare6",
            "spare7",
        ];
        Self {
            db,
            imu: ImuModel::new(&sensors.imu, seed),
            imu_counter: 0,
            imu_resetting: false,
            gnss: GnssModel::new(&sensors.gnss, seed),
            baro: BaroModel::new(&sensors.baro, seed),
            baro_counter: 0,
            thermo: ThermocoupleModel::new(&sensors.thermocouples, seed),
            thermo_counter: 0,
            battery: Battery::new(&sensors.battery),
            power: Every::new(0.1),
            power_counter: 0,
            pyro: names.map(PyroChannel::new),
            pyro_armed: false,
            pyro_last_cmd: None,
            pyro_status: Every::new(0.1),
            pyro_counter: 0,
            beacon_on: false,
            beacon_tx: 0,
            beacon_last_cmd: None,
            beacon_status: Every::new(1.0),
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
            rcs_status: Every::new(0.02),
            rcs_counter: 0,
            motor: MotorState::Safe,
            motor_t0_s: 0.0,
            motor_burn_s: 0.0,
            motor_last_cmd: None,
            motor_status: Every::new(0.1),
            motor_counter: 0,
            to_fc: Vec::new(),
            sep_switches: 0,
            sep_push: None,
        }
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
        self.pyro[pyro_bits::DROGUE_PRIMARY.trailing_zeros() as usize].fired = true;
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

    /// Queues a `SIM_Reset` for the flight computer (a simulated one resets and boots
    /// for `boot_s`).
    pub fn request_fc_reset(&mut self, boot_s: f64) -> Result<(), CodecError> {
        let f = self.db.encode(
            "SIM_Reset",
            &[(
                "SIM_ResetDurationMs",
                (boot_s * 1000.0).round().clamp(0.0, 65_535.0),
            )],
        )?;
        self.to_fc.push(f);
        Ok(())
    }

    /// Actuator housekeeping before a physics step: the RCS driver closes its valves
    /// when commands stop ([`RCS_COMMAND_TIMEOUT_S`]); the deorbit motor burns out when
    /// its propellant is gone.
    pub fn actuate(&mut self, twin: &mut Twin) {
        if let Some((left, dv)) = self.sep_push {
            twin.apply_delta_v_body(twin_core::glam::DVec3::new(-dv, 0.0, 0.0));
            self.sep_push = (left > 1).then_some((left - 1, dv));
        }
        let t = twin.time_s();
        if self.rcs_cmd != 0 && t - self.rcs_cmd_t_s > RCS_COMMAND_TIMEOUT_S + 1e-9 {
            self.rcs_cmd = 0;
            for name in &THRUSTERS[..RCS_JETS] {
                if let Some(i) = twin.thruster_index(name) {
                    twin.set_throttle(i, 0.0);
                }
            }
        }
        // An unpowered motor controller's propellant valves close: the burn is over.
        if (self.safed || self.browned_out) && self.motor == MotorState::Burning {
            if let Some(i) = twin.thruster_index(DEORBIT_MOTOR) {
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
    fn rcs_fill(twin: &Twin) -> f64 {
        match twin
            .thruster_index(THRUSTERS[0])
            .and_then(|i| twin.thruster_tank_kg(i))
        {
            Some((left, full)) if full > 0.0 => (left / full).clamp(0.0, 1.0),
            _ => 0.0,
        }
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
                out.imu_bytes.extend_from_slice(&d.encode());
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
                out.imu_bytes.extend_from_slice(&d.encode());
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
            };
            out.gnss_bytes.extend_from_slice(e.burst().as_bytes());
        }
        // Barometer node.
        if let Some(b) = self.baro.poll(&truth) {
            let p = self.f("baro.pressure", t, b.pressure_pa);
            // ICD Baro_Status: 0 ok, 2 out of range (the sensor saturated, or a value
            // beyond what the frame can carry), 3 sensor fault (no output).
            let temp_c = b.temperature_k - 273.15;
            let fits = |sig: &str, v: f64| clampv(&self.db, "Baro_Data", sig, v) == v;
            let (pressure, status) = match p {
                Some(p)
                    if b.saturated
                        || !fits("Baro_Pressure", p)
                        || !fits("Baro_Temperature", temp_c) =>
                {
                    (p, 2.0)
                }
                Some(p) => (p, 0.0),
                None => (0.0, 3.0),
            };
            out.frames.push(self.db.encode(
                "Baro_Data",
                &[
                    (
                        "Baro_Pressure",
                        clampv(&self.db, "Baro_Data", "Baro_Pressure", pressure),
                    ),
                    (
                        "Baro_Temperature",
                        clampv(&self.db, "Baro_Data", "Baro_Temperature", temp_c),
                    ),
                    ("Baro_Status", status),
                    ("Baro_Counter", f64::from(self.baro_counter)),
                ],
            )?);
            self.baro_counter = (self.baro_counter + 1) % 16;
        }
        // Thermocouple node.
        if let Some(th) = self.thermo.poll(&truth) {
            let c = |v: f64| clampv(&self.db, "Thermo_Data", "Thermo_HeatShield", v);
            out.frames.push(self.db.encode(
                "Thermo_Data",
                &[
                    ("Thermo_HeatShield", c(th.heat_shield_k)),
                    ("Thermo_Bondline", c(th.bondline_k)),
                    ("Thermo_Backshell", c(th.backshell_k)),
                    ("Thermo_Status", 0.0),
                    ("Thermo_Counter", f64::from(self.thermo_counter)),
                ],
            )?);
            self.thermo_counter = (self.thermo_counter + 1) % 16;
        }
        // Power node.
        if self.power.due(t) {
            let s = self.battery.sample();
            out.frames.push(self.db.encode(
                "Power_Status",
                &[
                    (
                        "Power_BusVoltage",
                        clampv(&self.db, "Power_Status", "Power_BusVoltage", s.voltage_v),
                    ),
                    (
                        "Power_Current",
                        clampv(&self.db, "Power_Status", "Power_Current", s.current_a),
                    ),
                    ("Power_SOC", (s.soc * 200.0).round() / 2.0),
                    ("Power_Status", 0.0),
                    ("Power_Counter", f64::from(self.power_counter)),
                ],
            )?);
            self.power_counter = (self.power_counter + 1) % 16;
        }
        // Pyro controller status.
        if self.pyro_status.due(t) {
            let mut cont = 0u8;
            let mut fired = 0u8;
            for (k, c) in self.pyro.iter().enumerate() {
                if c.continuity() {
                    cont |= 1 << k;
                }
                if c.fired {
                    fired |= 1 << k;
                }
            }
            let v = self.battery.sample().voltage_v;
            out.frames.push(self.db.encode(
                "Pyro_Status",
                &[
                    ("Pyro_Armed", if self.pyro_armed { 1.0 } else { 0.0 }),
                    ("Pyro_Continuity", f64::from(cont)),
                    ("Pyro_Fired", f64::from(fired)),
                    (
                        "Pyro_BusVoltage",
                        clampv(&self.db, "Pyro_Status", "Pyro_BusVoltage", v),
                    ),
                    ("Pyro_Counter", f64::from(self.pyro_counter)),
                    ("Pyro_SepSwitch", f64::from(self.sep_switches)),
                ],
            )?);
            self.pyro_counter = self.pyro_counter.wrapping_add(1);
        }
        // RCS driver status: valve positions as read back.
        if self.rcs_status.due(t) {
            let mut state = 0u8;
            for (k, name) in THRUSTERS[..RCS_JETS].iter().enumerate() {
                if twin
                    .thruster_index(name)
                    .is_some_and(|i| twin.thruster_valve_open(i))
                {
                    state |= 1 << k;
                }
            }
            out.frames.push(self.db.encode(
                "RCS_Status",
                &[
                    ("RCS_ValveState", f64::from(state)),
                    (
                        "RCS_TankPressure",
                        (RCS_FULL_PRESSURE_MPA * Self::rcs_fill(twin) * 1000.0).round() / 1000.0,
                    ),
                    ("RCS_FaultMask", f64::from(state ^ self.rcs_cmd)),
                    ("RCS_Counter", f64::from(self.rcs_counter)),
                ],
            )?);
            self.rcs_counter = self.rcs_counter.wrapping_add(1);
        }
        // Deorbit motor status.
        if self.motor_status.due(t) {
            let burning = self.motor == MotorState::Burning;
            let thrust_fraction = twin
                .thruster_index(DEORBIT_MOTOR)
                .map_or(0.0, |i| twin.thruster_output(i));
            out.frames.push(self.db.encode(
                "Deorbit_Status",
                &[
                    ("Deorbit_State", f64::from(self.motor as u8)),
                    (
                        "Deorbit_ChamberPressure",
                        if burning {
                            (DEORBIT_CHAMBER_MPA * thrust_fraction * 1000.0).round() / 1000.0
                        } else {
                            0.0
                        },
                    ),
                    (
                        "Deorbit_BurnTime",
                        clampv(
                            &self.db,
                            "Deorbit_Status",
                            "Deorbit_BurnTime",
                            (self.motor_burn_s * 100.0).round() / 100.0,
                        ),
                    ),
                    ("Deorbit_Counter", f64::from(self.motor_counter)),
                ],
            )?);
            self.motor_counter = self.motor_counter.wrapping_add(1);
        }
        // Beacon status.
        if self.beacon_status.due(t) {
            if self.beacon_on {
                self.beacon_tx = self.beacon_tx.wrapping_add(1);
            }
            out.frames.push(self.db.encode(
                "Beacon_Status",
                &[
                    ("Beacon_Active", if self.beacon_on { 1.0 } else { 0.0 }),
                    ("Beacon_TxCount", f64::from(self.beacon_tx)),
                    ("Beacon_BatteryVoltage", 12.6),
                    ("Beacon_Counter", f64::from(self.beacon_counter)),
                ],
            )?);
            self.beacon_counter = self.beacon_counter.wrapping_add(1);
        }
        // Silent and unpowered nodes put nothing on the bus.
        if !self.silent.is_empty() || self.browned_out {
            let db = &self.db;
            let silent = &self.silent;
            let mut k = first_frame;
            while k < out.frames.len() {
                let node = db
                    .by_id(out.frames[k].id)
                    .map(|m| m.transmitter.to_lowercase())
                    .unwrap_or_default();
                if !speaks(silent, self.browned_out, &node) {
                    out.frames.remove(k);
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
    /// undecodable frames, messages of silenced devices).
    pub fn on_fc_frame(&mut self, f: &CanFrame, twin: &mut Twin, t_s: f64) -> bool {
        let Some(m) = self.db.by_id(f.id) else {
            return false;
        };
        let Ok(v) = m.decode(f) else {
            return false;
        };
        let get = |n: &str| {
            v.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, x)| *x)
                .unwrap_or(0.0)
        };
        match m.name.as_str() {
            _ if self.safed => return false,
            "Pyro_Command" if self.speaks("pyro") => {
                let counter = get("Pyro_CmdCounter") as u8;
                if self.pyro_last_cmd == Some(counter) {
                    return false;
                }
                self.pyro_last_cmd = Some(counter);
                self.pyro_armed =
                    get("Pyro_ArmKey") as u8 == PYRO_ARM_KEY && get("Pyro_Arm") >= 0.5;
                let mask = get("Pyro_FireMask") as u8;
                if mask == 0 {
                    return true;
                }
                if !self.pyro_armed {
                    self.events.push((t_s, DeviceEvent::PyroNotArmed));
                    return true;
                }
                for k in 0..8 {
                    let bit = 1u8 << k;
                    if mask & bit == 0 {
                        continue;
                    }
                    // Under the all-fire voltage the bridgewire is not heated enough:
                    // the initiator stays intact (its continuity still reads).
                    let energised = self.battery.sample().voltage_v >= PYRO_ALL_FIRE_V;
                    if energised && self.pyro[k].fire() {
                        self.events
                            .push((t_s, DeviceEvent::PyroFired { channel: bit }));
                        let chute = |name: &str, tw: &Twin| tw.parachute_index(name);
                        match bit {
                            pyro_bits::DROGUE_PRIMARY | pyro_bits::DROGUE_BACKUP => {
                                if let Some(i) = chute("drogue", twin) {
                                    twin.deploy_parachute(i);
                                }
                            }
                            pyro_bits::MAIN_PRIMARY | pyro_bits::MAIN_BACKUP => {
                                if let Some(i) = chute("main", twin) {
                                    twin.deploy_parachute(i);
                                }
                            }
                            pyro_bits::DROGUE_RELEASE => {
                                if let Some(i) = chute("drogue", twin) {
                                    twin.release_parachute(i);
                                }
                            }
                            pyro_bits::MAIN_RELEASE => {
                                if let Some(i) = chute("main", twin) {
                                    twin.release_parachute(i);
                                }
                            }
                            _ => {}
                        }
                    } else {
                        self.events
                            .push((t_s, DeviceEvent::PyroNoFire { channel: bit }));
                    }
                }
            }
            "RCS_Command" if self.speaks("rcs") => {
                let counter = get("RCS_CmdCounter") as u8;
                if self.rcs_last_cmd == Some(counter) {
                    return false;
                }
                self.rcs_last_cmd = Some(counter);
                self.rcs_cmd = get("RCS_ValveCmd") as u8;
                self.rcs_cmd_t_s = t_s;
                let isolate = get("RCS_IsolateMask") as u8;
                for (k, name) in THRUSTERS[..RCS_JETS].iter().enumerate() {
                    let bit = 1u8 << k;
                    let Some(i) = twin.thruster_index(name) else {
                        continue;
                    };
                    twin.set_throttle(i, if self.rcs_cmd & bit != 0 { 1.0 } else { 0.0 });
                    if isolate & bit != self.rcs_isolated & bit {
                        twin.set_thruster_isolated(i, isolate & bit != 0);
                        if isolate & bit != 0 {
                            self.events
                                .push((t_s, DeviceEvent::ThrusterIsolated { thruster: k as u8 }));
                        }
                    }
                }
                self.rcs_isolated = isolate;
            }
            "Deorbit_Command" if self.speaks("deorbit") => {
                let counter = get("Deorbit_CmdCounter") as u8;
                if self.motor_last_cmd == Some(counter) {
                    return false;
                }
                self.motor_last_cmd = Some(counter);
                let Some(i) = twin.thruster_index(DEORBIT_MOTOR) else {
                    return true;
                };
                if get("Deorbit_Cutoff") >= 0.5 {
                    if self.motor == MotorState::Burning {
                        twin.set_throttle(i, 0.0);
                        self.motor = MotorState::Done;
                        self.motor_burn_s = t_s - self.motor_t0_s;
                        self.events.push((t_s, DeviceEvent::BurnEnd));
                    }
                } else if get("Deorbit_Ignite") >= 0.5 && self.motor == MotorState::Safe {
                    // A solid-propellant-like single start: ignites once.
                    twin.set_throttle(i, 1.0);
                    self.motor = MotorState::Burning;
                    self.motor_t0_s = t_s;
                    self.events.push((t_s, DeviceEvent::BurnStart));
                }
            }
            "Beacon_Command" if self.speaks("beacon") => {
                let counter = get("Beacon_CmdCounter") as u8;
                if self.beacon_last_cmd == Some(counter) {
                    return false;
                }
                self.beacon_last_cmd = Some(counter);
                if get("Beacon_Activate") >= 0.5 && !self.beacon_on {
                    self.beacon_on = true;
                    self.events.push((t_s, DeviceEvent::BeaconOn));
                }
            }
            _ => return false,
        }
        true
    }
}
