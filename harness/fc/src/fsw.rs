//! The flight software proper: deterministic, no I/O. Inputs are decoded ICD messages;
//! each call to [`Fsw::cycle`] runs one 10 ms frame and returns the CAN frames to send.
//!
//! This first increment carries the telemetry contract (identification at start-up,
//! status at 10 Hz with a sequence counter, events on mode changes) and input
//! bookkeeping; navigation, guidance, sequencing and FDIR build on it.

use crate::defects::Defect;
use crate::gnc::{self, EntryGuidance};
use crate::nav::{Nav, NavState};
use capsule_icd::Icd;
use capsule_icd::binding::{Binding, PYRO_CHANNELS, Sig, encode_into};
use capsule_icd::can::{CanFrame, CodecError};
use capsule_icd::gnss::GnssItem;
use capsule_icd::imu::ImuDatagram;
use glam::{DQuat, DVec3};

/// Flight modes, as coded in `FC_Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Mode {
    /// Attached to the host vehicle.
    PreSeparation = 0,
    /// Free flight in orbit.
    Coast = 1,
    /// Deorbit motor burning.
    DeorbitBurn = 2,
    /// Atmospheric entry.
    Entry = 3,
    /// Under the drogue.
    Drogue = 4,
    /// Under the main parachute.
    Main = 5,
    /// On the water.
    Splashdown = 6,
    /// Beacon on, waiting for recovery.
    Recovery = 7,
    /// Safe mode.
    Safe = 8,
}

/// Event codes (`FC_EventCode`).
pub mod event {
    /// Mode transition.
    pub const MODE_CHANGE: u8 = 1;
    /// Fault detected (detail: what, e.g. the pyro channel bit).
    pub const FAULT_DETECTED: u8 = 2;
    /// A fault reported earlier has gone (detail as for the detection).
    pub const FAULT_CLEARED: u8 = 3;
    /// Backup pyro channel used (detail: the channel bit).
    pub const BACKUP_PYRO: u8 = 5;
    /// Deorbit motor ignited (detail: delta-v so far, 0.01 m/s).
    pub const BURN_START: u8 = 7;
    /// Deorbit burn over (detail: delta-v delivered by the IMU, 0.01 m/s).
    pub const BURN_END: u8 = 8;
    /// Mode resumed after a reset (detail: the mode, `FC_Mode` values).
    pub const RESET_RECOVERY: u8 = 6;
}

/// `FC_FaultFlags` bit: the deorbit motor failed (under-burn).
const FLAG_MOTOR: u16 = 1 << 12;
/// `FC_EventDetail` of a deorbit motor failure.
pub const FAULT_MOTOR: u16 = 0x010C;
/// `RCS_Command` period, s (50 Hz, ICD).
pub const RCS_PERIOD_S: f64 = 0.02;
/// How early a cycle may be and still send the RCS command due at a deadline: half a
/// 10 ms cycle, s.
pub const RCS_EARLY_S: f64 = 0.005;
/// Below this acceleration along the motor axis (averaged over
/// [`MOTOR_CHECK_WINDOW_S`], from [`MOTOR_CHECK_AFTER_S`] after ignition) the motor has
/// failed, m/s^2 (rated: about 2.3 m/s^2).
pub const MOTOR_MIN_ACCEL_M_S2: f64 = 0.5;
/// Motor check window, s.
pub const MOTOR_CHECK_WINDOW_S: f64 = 1.0;
/// The motor check starts this long after ignition (thrust build-up), s.
pub const MOTOR_CHECK_AFTER_S: f64 = 2.0;

/// `FC_FaultFlags` bit: the software recovered from a reset.
const FLAG_RESET_RECOVERED: u16 = 1 << 11;
/// After a reset, inputs are gathered this long before the mode is decided, s.
pub const RESET_SETTLE_S: f64 = 0.5;
/// Consecutive `Pyro_Status` frames (10 Hz) with both separation switches open that
/// confirm a separation.
pub const SEP_CONFIRM_FRAMES: u32 = 2;

/// `FC_FaultFlags` bit of the GNSS receiver.
const FLAG_GNSS: u16 = 1 << 1;
/// `FC_EventDetail` of GNSS fixes rejected by the navigation gate (a position jump).
pub const FAULT_GNSS: u16 = 0x0101;
/// GNSS fixes rejected for this long running are reported, s.
pub const GNSS_REJECT_PERSIST_S: f64 = 0.5;
/// `FC_FaultFlags` bit of the RCS driver node.
const FLAG_RCS_NODE: u16 = 1 << 4;
/// `FC_FaultFlags` bit of a thruster stuck open.
const FLAG_THRUSTER: u16 = 1 << 10;
/// `FC_EventDetail` of a lost RCS driver node.
pub const FAULT_RCS_NODE: u16 = 0x0104;
/// `FC_EventDetail` of a thruster stuck open (isolated: see `RCS_IsolateMask`).
pub const FAULT_THRUSTER: u16 = 0x010A;
/// A valve that reads open while commanded closed for this many consecutive driver
/// status frames (50 Hz) is stuck open and isolated.
pub const THRUSTER_STUCK_FRAMES: u32 = 3;
/// The RCS driver is lost after this long without its status, s.
pub const RCS_NODE_TIMEOUT_S: f64 = 0.5;
/// The burn attitude is acquired this long before ignition, s.
pub const BURN_ATTITUDE_LEAD_S: f64 = 120.0;
/// Ignition waits for the attitude error to fall below this, rad (or for
/// [`IGNITION_WAIT_MAX_S`]).
const IGNITION_ATTITUDE_RAD: f64 = 0.05;
const IGNITION_WAIT_MAX_S: f64 = 30.0;
/// Delta-v cut-off anticipation for the motor's tail-off and the command latency, m/s.
const CUTOFF_ANTICIPATION_M_S: f64 = 0.05;
/// Below this altitude the entry attitude is acquired and held (above it, after the
/// deorbit burn, only rates are damped), m.
const ENTRY_ATTITUDE_ALTITUDE_M: f64 = 160_000.0;
/// Sensed drag above which entry control switches from three-axis hold to bank
/// control, m/s².
const AERO_CONTROL_DRAG_M_S2: f64 = 0.5;

/// FC cycle period, s.
pub const CYCLE_S: f64 = 0.01;

const G0: f64 = crate::G0_M_S2;
/// Time allowed for the pyro controller to report a primary initiator fired, s.
pub const PYRO_CONFIRM_S: f64 = 0.5;
/// Interval between retries of an unconfirmed pyro function, s.
pub const PYRO_RETRY_S: f64 = 1.0;
/// Fire attempts of one pyro function before giving up.
const PYRO_MAX_ATTEMPTS: u8 = 12;
/// The pyro controller is lost after this long without its status, s.
pub const PYRO_NODE_TIMEOUT_S: f64 = 0.5;
/// `FC_FaultFlags` bit of the pyro controller.
const FLAG_PYRO_NODE: u16 = 1 << 3;
/// `FC_FaultFlags` bit of the power node.
const FLAG_POWER_NODE: u16 = 1 << 6;
/// `FC_EventDetail` of a lost power node (0x100 + its flag bit).
pub const FAULT_POWER_NODE: u16 = 0x0106;
/// The power node is lost after this long without its status, s.
pub const POWER_NODE_TIMEOUT_S: f64 = 0.5;
/// `FC_FaultFlags` bit of a bus under-voltage.
const FLAG_BUS_LOW: u16 = 1 << 13;
/// `FC_EventDetail` of a bus under-voltage (0x100 + its flag bit).
pub const FAULT_BUS_LOW: u16 = 0x010D;
/// The bus is under-voltage below this `Power_BusVoltage`, V: the battery's empty
/// voltage, under which the pyro controller cannot be relied on to deliver the
/// initiators' all-fire current (and firing into a sagging bus risks dudding them).
pub const BUS_LOW_V: f64 = 24.0;
/// ...for this many consecutive `Power_Status` frames (10 Hz).
pub const BUS_LOW_FRAMES: u32 = 2;
/// The under-voltage clears above this voltage...
pub const BUS_OK_V: f64 = 26.0;
/// ...for this many consecutive frames.
pub const BUS_OK_FRAMES: u32 = 5;
/// Pyro functions due while the bus is under-voltage are held, at most this long after
/// the under-voltage was declared, s; then they are fired regardless.
pub const PYRO_HOLD_MAX_S: f64 = 3.0;
/// `FC_FaultFlags` bit of the IMU.
const FLAG_IMU: u16 = 1 << 0;
/// `FC_EventDetail` of a failed IMU: a channel stuck, or datagrams missing (0x100 + its
/// flag bit).
pub const FAULT_IMU: u16 = 0x0100;
/// An IMU channel that repeats the same value this many datagrams running is stuck.
pub const IMU_STUCK_DATAGRAMS: u32 = 100;
/// The IMU has failed when fewer than half of its datagrams (1 kHz) arrived over this
/// window, s.
pub const IMU_RATE_WINDOW_S: f64 = 0.5;
/// `FC_FaultFlags` bit of the barometer.
const FLAG_BARO: u16 = 1 << 2;
/// `FC_EventDetail` of a failed barometer: silent, or frozen (0x100 + its flag bit).
pub const FAULT_BARO: u16 = 0x0102;
/// Window over which a barometer reading that does not move is judged frozen, s.
pub const BARO_FROZEN_WINDOW_S: f64 = 2.0;
/// Lowest pressure at which the frozen check judges (the sensor saturates at 100 Pa).
const BARO_MIN_JUDGED_PA: f64 = 200.0;
/// `FC_FaultFlags` bit of the drogue.
const FLAG_DROGUE: u16 = 1 << 8;
/// `FC_EventDetail` of a lost pyro controller (0x100 + its fault flag bit).
pub const FAULT_PYRO_NODE: u16 = 0x0103;
/// `FC_EventDetail` of a drogue that does not slow the capsule (0x100 + its flag bit).
pub const FAULT_DROGUE: u16 = 0x0108;
/// The FC's own model of the capsule under the drogue (mass, kg; drag area of the
/// drogue plus the capsule body, m²), for the drogue's descent-rate check.
const DROGUE_MASS_KG: f64 = 172.0;
const DROGUE_CDS_M2: f64 = 1.6;
/// The drogue check starts this long after the drogue is fired, s (line stretch,
/// inflation and the deceleration from Mach 0.8 to the terminal rate).
pub const DROGUE_CHECK_AFTER_S: f64 = 8.0;
/// The drogue has failed when the sink rate stays above this multiple of the expected
/// terminal rate for [`DROGUE_FAIL_PERSIST_S`].
const DROGUE_FAIL_RATIO: f64 = 1.4;
/// Persistence of the drogue failure condition, s.
pub const DROGUE_FAIL_PERSIST_S: f64 = 2.0;
/// Highest dynamic pressure at which the (reefed) main may be deployed, Pa.
pub const MAIN_MAX_Q_PA: f64 = 6_000.0;
const PYRO_DROGUE_PRIMARY: u8 = 1 << 0;
const PYRO_DROGUE_BACKUP: u8 = 1 << 1;
const PYRO_MAIN_BACKUP: u8 = 1 << 3;
const PYRO_MAIN_PRIMARY: u8 = 1 << 2;
const PYRO_DROGUE_RELEASE: u8 = 1 << 4;
const PYRO_MAIN_RELEASE: u8 = 1 << 5;

/// A decoded signal's value by name.
/// This flight software's RCS jets, in its own (logical) bit order: the thruster names
/// the binding maps to valve bits. Its attitude control knows each jet's torque by this
/// order.
pub const JETS: [&str; 8] = [
    "roll_pos_a",
    "roll_pos_b",
    "roll_neg_a",
    "roll_neg_b",
    "pitch_pos",
    "pitch_neg",
    "yaw_pos",
    "yaw_neg",
];

/// Commands queued for the next cycle's output.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// Pyro command with a logical fire mask.
    Pyro { mask: u8, counter: u8 },
    /// Deorbit motor command.
    Deorbit { ignite: bool, counter: u8 },
    /// Beacon activation.
    Beacon { counter: u8 },
}

/// Translation between this software's logical bit orders (pyro channels in
/// [`PYRO_CHANNELS`] order, RCS jets in [`JETS`] order) and the ICD's wire bits.
#[derive(Debug, Clone)]
struct Bits {
    pyro: [u32; 6],
    /// Wire bit of each logical jet (`None`: the ICD has no valve for it).
    rcs: [Option<u32>; 8],
}

impl Bits {
    fn new(b: &Binding) -> Self {
        Self {
            pyro: PYRO_CHANNELS.map(|c| b.pyro.bit(c)),
            rcs: JETS.map(|j| {
                b.rcs
                    .thrusters
                    .iter()
                    .position(|t| t == j)
                    .map(|k| k as u32)
            }),
        }
    }
    fn pyro_to_wire(&self, logical: u8) -> u64 {
        (0..6)
            .filter(|k| logical & (1 << k) != 0)
            .fold(0, |m, k| m | 1 << self.pyro[k])
    }
    fn pyro_from_wire(&self, wire: u64) -> u8 {
        (0..6)
            .filter(|&k| wire & (1 << self.pyro[k]) != 0)
            .fold(0, |m, k| m | 1 << k)
    }
    fn rcs_to_wire(&self, logical: u8) -> u64 {
        (0..8)
            .filter(|k| logical & (1 << k) != 0)
            .filter_map(|k| self.rcs[k])
            .fold(0, |m, b| m | 1 << b)
    }
    fn rcs_from_wire(&self, wire: u64) -> u8 {
        (0..8)
            .filter(|&k| self.rcs[k].is_some_and(|b| wire & (1 << b) != 0))
            .fold(0, |m, k| m | 1 << k)
    }
}

/// A pyro function: its primary and backup initiators (`Pyro_FireMask` bits) and what
/// fires with it (e.g. the drogue riser cutter with the main).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PyroFunction {
    primary: u8,
    backup: u8,
    extra: u8,
}

impl PyroFunction {
    /// Done once either initiator reports fired.
    fn done(&self, fired_mask: u8) -> bool {
        fired_mask & (self.primary | self.backup) != 0
    }
}

/// The flight software state.
#[derive(Debug)]
pub struct Fsw {
    icd: Icd,
    bits: Bits,
    mode: Mode,
    seq: u8,
    next_status_s: f64,
    ident_left: u8,
    next_ident_s: f64,
    fault_flags: u16,
    imu_count: u64,
    last_imu: Option<ImuDatagram>,
    gnss_fix: bool,
    pending_events: Vec<(u8, Mode, Mode, u16)>,
    build_hash: u32,
    nav: Nav,
    /// Handover values received, by role (position xyz, velocity xyz, attitude wxyz).
    handover: [Option<f64>; 10],
    baro: Option<(f64, f64)>,
    baro_t_s: f64,
    /// Last Baro_Data with a usable value or an out-of-range status (the node is
    /// alive), s.
    baro_seen_t_s: f64,
    peak_load_g: f64,
    load_g: f64,
    pyro_counter: u8,
    beacon_counter: u8,
    outbox: Vec<Out>,
    mode_entered_s: f64,
    t_s: f64,
    defect: Option<Defect>,
    mode_changes: u32,
    pyro_continuity: Option<u8>,
    pyro_fired: u8,
    /// Fired primaries awaiting confirmation: the function, when last fired, attempts.
    pyro_pending: Vec<(PyroFunction, f64, u8)>,
    pyro_status_t_s: f64,
    /// Consecutive `Pyro_Status` frames with both separation switches open.
    sep_open_frames: u32,
    pyro_node_lost: bool,
    /// Power: bus voltage and the consecutive low/good frames, the under-voltage
    /// verdict and since when, the last `Power_Status` time, the node lost.
    bus_low_frames: u32,
    bus_ok_frames: u32,
    bus_low_since_s: Option<f64>,
    power_status_t_s: f64,
    power_node_lost: bool,
    /// Pyro functions held during a bus under-voltage.
    pyro_held: Vec<PyroFunction>,
    /// Barometric altitude history for the sink rate: (time, altitude), last 1.5 s.
    baro_alt_hist: std::collections::VecDeque<(f64, f64)>,
    drogue_slow_since_s: Option<f64>,
    drogue_failed: bool,
    /// Raw barometric pressure readings (time, Pa), last [`BARO_FROZEN_WINDOW_S`].
    baro_p_hist: std::collections::VecDeque<(f64, f64)>,
    baro_frozen: bool,
    baro_fault_reported: bool,
    /// IMU FDIR: the last datagram's six channels, how many datagrams each has
    /// repeated, datagram counts per cycle over [`IMU_RATE_WINDOW_S`], and the verdict.
    imu_last_channels: [f64; 6],
    imu_repeats: [u32; 6],
    imu_count_hist: std::collections::VecDeque<(f64, u64)>,
    imu_failed: bool,
    /// Splashdown by the barometer (without an IMU): since when it has been still near
    /// the surface, s.
    baro_still_since_s: Option<f64>,
    /// Time of the first cycle, s (a node never heard from is lost after its timeout).
    start_s: Option<f64>,
    /// Mission data: the deorbit plan (ignition time, s; delta-v, m/s); the landing
    /// target lives in the guidance.
    deorbit_plan: Option<(f64, f64)>,
    guidance: Option<EntryGuidance>,
    /// Bank command without guidance (held from the handover), rad.
    hold_bank_rad: Option<f64>,
    /// RCS: valves commanded, thrusters isolated, command counter, next command time,
    /// the driver's last status, per-valve stuck counts.
    rcs_cmd: u8,
    rcs_isolated: u8,
    rcs_counter: u8,
    rcs_schedule: crate::schedule::Deadlines,
    rcs_active: bool,
    rcs_status_t_s: f64,
    rcs_node_lost: bool,
    rcs_stuck_frames: [u32; 8],
    /// Deorbit: command counter, delta-v integrated from the IMU along +x (m/s), motor
    /// state from its status, ignition time.
    deorbit_counter: u8,
    burn_dv_m_s: f64,
    motor_state: Option<u8>,
    burn_started_s: Option<f64>,
    burn_cut: bool,
    /// Motor check: (time, burn delta-v) at the start of the current window.
    burn_check: Option<(f64, f64)>,
    gnss_rejected_since_s: Option<f64>,
    gnss_fault: bool,
    /// Reset handling: a reset requested (`SIM_Reset`, boot time, s); booting until;
    /// recovering (the first cycle after boot, until the mode is decided).
    reset_request_s: Option<f64>,
    booting_until_s: Option<f64>,
    recovering_since_s: Option<f64>,
}

impl Fsw {
    /// A flight software instance on the ICD `icd` (its DBC and binding).
    pub fn new(icd: Icd, build_hash: u32) -> Self {
        Self {
            bits: Bits::new(&icd.binding),
            icd,
            mode: Mode::PreSeparation,
            seq: 0,
            next_status_s: 0.0,
            ident_left: 6,
            next_ident_s: 0.0,
            fault_flags: 0,
            imu_count: 0,
            last_imu: None,
            gnss_fix: false,
            pending_events: Vec::new(),
            build_hash,
            nav: Nav::new(),
            handover: [None; 10],
            baro: None,
            baro_t_s: f64::NEG_INFINITY,
            baro_seen_t_s: f64::NEG_INFINITY,
            peak_load_g: 0.0,
            load_g: 0.0,
            pyro_counter: 0,
            beacon_counter: 0,
            outbox: Vec::new(),
            mode_entered_s: 0.0,
            t_s: 0.0,
            defect: None,
            mode_changes: 0,
            pyro_continuity: None,
            pyro_fired: 0,
            pyro_pending: Vec::new(),
            pyro_status_t_s: f64::NEG_INFINITY,
            sep_open_frames: 0,
            pyro_node_lost: false,
            bus_low_frames: 0,
            bus_ok_frames: 0,
            bus_low_since_s: None,
            power_status_t_s: f64::NEG_INFINITY,
            power_node_lost: false,
            pyro_held: Vec::new(),
            baro_alt_hist: std::collections::VecDeque::new(),
            drogue_slow_since_s: None,
            drogue_failed: false,
            baro_p_hist: std::collections::VecDeque::new(),
            baro_frozen: false,
            baro_fault_reported: false,
            start_s: None,
            imu_last_channels: [f64::NAN; 6],
            imu_repeats: [0; 6],
            imu_count_hist: std::collections::VecDeque::new(),
            imu_failed: false,
            baro_still_since_s: None,
            deorbit_plan: None,
            guidance: None,
            hold_bank_rad: None,
            rcs_cmd: 0,
            rcs_isolated: 0,
            rcs_counter: 0,
            rcs_schedule: crate::schedule::Deadlines::new(RCS_PERIOD_S, RCS_EARLY_S, 0.0),
            rcs_active: false,
            rcs_status_t_s: f64::NEG_INFINITY,
            rcs_node_lost: false,
            rcs_stuck_frames: [0; 8],
            deorbit_counter: 0,
            burn_dv_m_s: 0.0,
            motor_state: None,
            burn_started_s: None,
            burn_cut: false,
            burn_check: None,
            gnss_rejected_since_s: None,
            gnss_fault: false,
            reset_request_s: None,
            booting_until_s: None,
            recovering_since_s: None,
        }
    }

    /// The entry guidance (once a landing target is known).
    pub fn guidance(&self) -> Option<&EntryGuidance> {
        self.guidance.as_ref()
    }

    /// Switches on a seeded defect.
    pub fn with_defect(mut self, d: Option<Defect>) -> Self {
        self.defect = d;
        self
    }

    /// The navigator.
    pub fn nav(&self) -> &Nav {
        &self.nav
    }

    /// Current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// IMU datagrams received.
    pub fn imu_count(&self) -> u64 {
        self.imu_count
    }

    fn booting(&self) -> bool {
        self.booting_until_s.is_some()
    }

    /// Takes an IMU datagram.
    pub fn on_imu(&mut self, d: &ImuDatagram) {
        if self.booting() {
            return;
        }
        if d.status & capsule_icd::imu::status::DATA_INVALID != 0 {
            return;
        }
        self.imu_count += 1;
        self.last_imu = Some(*d);
        let ch = [
            d.rate_rad_s[0],
            d.rate_rad_s[1],
            d.rate_rad_s[2],
            d.specific_force_m_s2[0],
            d.specific_force_m_s2[1],
            d.specific_force_m_s2[2],
        ];
        for ((v, last), n) in ch
            .iter()
            .zip(&self.imu_last_channels)
            .zip(&mut self.imu_repeats)
        {
            *n = if v == last { *n + 1 } else { 0 };
        }
        self.imu_last_channels = ch;
        if self.imu_failed {
            // Isolated: nothing from a failed IMU is used.
            return;
        }
        self.nav.on_imu(d);
        if self.mode == Mode::DeorbitBurn {
            // Delta-v along the motor axis (+x), at the IMU's 1 kHz.
            self.burn_dv_m_s += d.specific_force_m_s2[0] * 1e-3;
        }
        let f = d.specific_force_m_s2;
        self.load_g = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt() / G0;
        self.peak_load_g = self.peak_load_g.max(self.load_g);
    }

    /// Takes an item of the GNSS line (an NMEA GGA or a UBX NAV-PVT carries a fix;
    /// the rest is ignored).
    pub fn on_gnss(&mut self, s: &GnssItem) {
        if self.booting() {
            return;
        }
        if let Some(fx) = s.fix() {
            self.gnss_fix = fx.fix;
            if let (true, Some(lat), Some(lon), Some(h)) = (
                self.gnss_fix,
                fx.latitude_deg,
                fx.longitude_deg,
                fx.altitude_m,
            ) && self.nav.state().is_some()
            {
                let gate = self.defect != Some(Defect::GnssJumpAccepted);
                let used = self.nav.gnss_update(lat, lon, h, gate);
                // GNSS FDIR: fixes rejected by the gate for GNSS_REJECT_PERSIST_S running are a fault
                // (position jump); the first fix accepted again clears it.
                if used {
                    self.gnss_rejected_since_s = None;
                    if self.gnss_fault {
                        self.gnss_fault = false;
                        self.fault_flags &= !FLAG_GNSS;
                        self.event(event::FAULT_CLEARED, FAULT_GNSS);
                    }
                } else {
                    let since = *self.gnss_rejected_since_s.get_or_insert(self.t_s);
                    if !self.gnss_fault && self.t_s - since >= GNSS_REJECT_PERSIST_S - 1e-9 {
                        self.gnss_fault = true;
                        self.fault_flags |= FLAG_GNSS;
                        self.event(event::FAULT_DETECTED, FAULT_GNSS);
                    }
                }
            }
        }
    }

    /// Takes a CAN frame from another node (ignored if not in the ICD).
    pub fn on_can(&mut self, f: &CanFrame) {
        let b = self.icd.binding.clone();
        // A frame of a bound message, long enough for it.
        let is = |s: &Sig| s.id() == f.id && f.dlc >= s.message().dlc;
        if is(&b.lockstep.reset_duration) {
            self.reset_request_s = Some(b.lockstep.reset_duration.read(f));
            return;
        }
        if self.booting() {
            return;
        }
        if is(&b.baro.pressure) {
            let bd = &b.baro;
            let status = bd.status.sig.read_wire(f);
            // Out of range: the node is alive, its value is not usable.
            if status == bd.status.out_of_range {
                self.baro_seen_t_s = self.t_s;
            }
            if status == bd.status.ok {
                let p = bd.pressure.read(f);
                // The navigation's barometric model takes degC.
                let t = bd.temperature.read(f) - 273.15;
                self.baro_seen_t_s = self.t_s;
                self.baro = Some((p, t));
                self.baro_t_s = self.t_s;
                self.baro_p_hist.push_back((self.t_s, p));
                while self
                    .baro_p_hist
                    .front()
                    .is_some_and(|(t0, _)| self.t_s - t0 > BARO_FROZEN_WINDOW_S + 1e-9)
                {
                    self.baro_p_hist.pop_front();
                }
                if let Some(h) = self.baro_altitude_m() {
                    self.baro_alt_hist.push_back((self.t_s, h));
                    while self
                        .baro_alt_hist
                        .front()
                        .is_some_and(|(t0, _)| self.t_s - t0 > 1.5)
                    {
                        self.baro_alt_hist.pop_front();
                    }
                }
            }
            return;
        }
        if is(&b.pyro.continuity) {
            let py = &b.pyro;
            self.pyro_continuity =
                Some(self.bits.pyro_from_wire(py.continuity.read_wire(f) as u64));
            self.pyro_fired = self.bits.pyro_from_wire(py.fired.read_wire(f) as u64);
            self.pyro_status_t_s = self.t_s;
            // Separation: both switches open (2 of 2), in consecutive frames.
            self.sep_open_frames = if py.separation_switches.read_wire(f) == 0.0 {
                self.sep_open_frames.saturating_add(1)
            } else {
                0
            };
            return;
        }
        if is(&b.power.bus_voltage) {
            let bus_v = b.power.bus_voltage.read(f);
            self.power_status_t_s = self.t_s;
            if bus_v < BUS_LOW_V {
                self.bus_low_frames = self.bus_low_frames.saturating_add(1);
            } else {
                self.bus_low_frames = 0;
            }
            if bus_v > BUS_OK_V {
                self.bus_ok_frames = self.bus_ok_frames.saturating_add(1);
            } else {
                self.bus_ok_frames = 0;
            }
            return;
        }
        if is(&b.rcs.valve_state) {
            self.rcs_status_t_s = self.t_s;
            let state = self
                .bits
                .rcs_from_wire(b.rcs.valve_state.read_wire(f) as u64);
            let fault = self
                .bits
                .rcs_from_wire(b.rcs.fault_mask.read_wire(f) as u64);
            for (k, n) in self.rcs_stuck_frames.iter_mut().enumerate() {
                let bit = 1u8 << k;
                // Stuck open: reads open while the driver was commanded closed.
                *n = if fault & bit != 0 && state & bit != 0 {
                    *n + 1
                } else {
                    0
                };
            }
            return;
        }
        if is(&b.deorbit.state) {
            let d = &b.deorbit;
            let v = d.state.read_wire(f);
            // This software's motor states: 0 safe, 2 burning, 3 done, 1 other.
            self.motor_state = Some(if v == d.state_safe {
                0
            } else if v == d.state_burning {
                2
            } else if v == d.state_done {
                3
            } else {
                1
            });
            return;
        }
        let m = &b.mission;
        if is(&m.target_lat) {
            self.guidance = Some(EntryGuidance::new(
                m.target_lat.read(f),
                m.target_lon.read(f),
            ));
            return;
        }
        if is(&m.ignition_time) {
            self.deorbit_plan = Some((m.ignition_time.read(f), m.delta_v.read(f)));
            return;
        }
        let h = &b.handover;
        let parts = h.position.iter().chain(&h.velocity).chain(&h.attitude);
        for (k, s) in parts.enumerate() {
            if is(s) {
                self.handover[k] = Some(s.read(f));
            }
        }
        // The time's message completes the set.
        if is(&h.time) {
            let t_s = h.time.read(f);
            let mode = h.mode.read_wire(f);
            self.take_handover(t_s, mode);
        }
    }

    /// Completes a state handover (time `t_s` on the handover's time base, mode value
    /// `mode`): initialises navigation and assumes the given mode.
    fn take_handover(&mut self, t_s: f64, mode: f64) {
        let hv = self.handover;
        let [
            Some(x),
            Some(y),
            Some(z),
            Some(vx),
            Some(vy),
            Some(vz),
            Some(qw),
            Some(qx),
            Some(qy),
            Some(qz),
        ] = hv
        else {
            return;
        };
        let q = DQuat::from_xyzw(qx, qy, qz, qw);
        if q.length() < 0.5 {
            return;
        }
        let state = NavState {
            t_s,
            position_m: DVec3::new(x, y, z),
            velocity_m_s: DVec3::new(vx, vy, vz),
            inertial_from_body: q.normalize(),
        };
        self.hold_bank_rad = Some(gnc::bank_rad(&state));
        self.nav.init(state);
        let mode = match mode as u8 {
            1 => Mode::Coast,
            2 => Mode::DeorbitBurn,
            3 => Mode::Entry,
            4 => Mode::Drogue,
            5 => Mode::Main,
            6 => Mode::Splashdown,
            7 => Mode::Recovery,
            8 => Mode::Safe,
            _ => Mode::PreSeparation,
        };
        self.set_mode(mode);
    }

    /// Changes mode and queues the event.
    pub fn set_mode(&mut self, m: Mode) {
        if m != self.mode {
            self.pending_events
                .push((event::MODE_CHANGE, self.mode, m, 0));
            self.mode = m;
            self.mode_entered_s = self.t_s;
            self.mode_changes += 1;
        }
    }

    /// True while the barometer delivers valid data (within the last second) and has
    /// not been found frozen.
    pub fn baro_valid(&self) -> bool {
        self.baro.is_some() && self.t_s - self.baro_t_s <= 1.0 && !self.baro_frozen
    }

    /// IMU FDIR: a channel stuck at one value for [`IMU_STUCK_DATAGRAMS`] datagrams, or
    /// fewer than half the datagrams over [`IMU_RATE_WINDOW_S`] (silent line, CRC
    /// storm), fails the IMU for the rest of the flight: navigation is no longer used
    /// and the sequence runs on the barometer (fault [`FAULT_IMU`]).
    fn imu_check(&mut self) {
        self.imu_count_hist.push_back((self.t_s, self.imu_count));
        while self
            .imu_count_hist
            .front()
            .is_some_and(|(t0, _)| self.t_s - t0 > IMU_RATE_WINDOW_S + 1e-9)
        {
            self.imu_count_hist.pop_front();
        }
        if self.imu_failed || self.defect == Some(Defect::IgnoresImuFault) {
            return;
        }
        let stuck = self.imu_repeats.iter().any(|&n| n >= IMU_STUCK_DATAGRAMS);
        let starved = match (self.imu_count_hist.front(), self.imu_count_hist.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 - t0 >= IMU_RATE_WINDOW_S - 0.015 => {
                ((n1 - n0) as f64) < 0.5 * 1_000.0 * (t1 - t0)
            }
            _ => false,
        };
        let started = self.start_s.is_some_and(|t0| self.t_s - t0 > 1.0);
        if started && (stuck || starved) {
            self.imu_failed = true;
            self.fault_flags |= FLAG_IMU;
            self.event(event::FAULT_DETECTED, FAULT_IMU);
        }
    }

    /// Navigated altitude, m (none once the IMU has failed).
    fn nav_altitude_m(&self) -> Option<f64> {
        if self.imu_failed {
            return None;
        }
        self.nav.altitude_m()
    }

    /// Sink rate from navigation alone (positive down), m/s.
    fn nav_sink_rate_m_s(&self) -> Option<f64> {
        if self.imu_failed {
            return None;
        }
        let s = self.nav.state()?;
        Some(-s.velocity_m_s.dot(s.position_m.normalize()))
    }

    /// Baro FDIR. A reading that has not moved by more than one count (0.1 Pa) over
    /// [`BARO_FROZEN_WINDOW_S`] while navigation says the pressure should have changed by
    /// 5 Pa or more is frozen (latched); a barometer silent for 1 s is lost (until it
    /// comes back). Either is reported once as [`FAULT_BARO`].
    fn baro_check(&mut self) {
        if !self.baro_frozen
            && let (Some(&(t0, _)), Some(&(t1, p1))) =
                (self.baro_p_hist.front(), self.baro_p_hist.back())
            && t1 - t0 >= BARO_FROZEN_WINDOW_S - 0.15
            && let Some(sink) = self.nav_sink_rate_m_s()
        {
            let (lo, hi) = self
                .baro_p_hist
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, p)| {
                    (lo.min(p), hi.max(p))
                });
            // Scale height 7 km: dp = p dh / H.
            let expected_change_pa = p1 * sink.abs() * (t1 - t0) / 7_000.0;
            // Readings near the bottom of the sensor's range (100 Pa) are saturated.
            if hi - lo <= 0.15 && expected_change_pa >= 5.0 && lo >= BARO_MIN_JUDGED_PA {
                self.baro_frozen = true;
            }
        }
        let started = self.start_s.is_some_and(|t0| self.t_s - t0 > 2.0);
        let silent = started && self.t_s - self.baro_seen_t_s > 1.0;
        if self.baro_frozen || silent {
            self.fault_flags |= FLAG_BARO;
            if !self.baro_fault_reported {
                self.baro_fault_reported = true;
                self.event(event::FAULT_DETECTED, FAULT_BARO);
            }
        } else if self.baro_fault_reported {
            self.fault_flags &= !FLAG_BARO;
            self.baro_fault_reported = false;
            self.event(event::FAULT_CLEARED, FAULT_BARO);
        }
    }

    /// Pressure altitude from the barometer (ISA troposphere and lower stratosphere), m.
    pub fn baro_altitude_m(&self) -> Option<f64> {
        if !self.baro_valid() {
            return None;
        }
        let (p, _) = self.baro?;
        if p <= 0.0 {
            return None;
        }
        if p >= 22_632.1 {
            Some(44_330.77 * (1.0 - (p / 101_325.0).powf(0.190_263)))
        } else {
            Some(11_000.0 + 6_341.62 * (22_632.1 / p).ln())
        }
    }

    /// Sink rate (positive down), m/s: from the barometer over the last second, else
    /// from navigation.
    pub fn sink_rate_m_s(&self) -> Option<f64> {
        if self.baro_valid()
            && let (Some(&(t0, h0)), Some(&(t1, h1))) =
                (self.baro_alt_hist.front(), self.baro_alt_hist.back())
            && t1 - t0 >= 0.9
            && self.t_s - t1 <= 0.5
        {
            return Some((h0 - h1) / (t1 - t0));
        }
        self.nav_sink_rate_m_s()
    }

    /// Air density, kg/m³: from the barometer, else an exponential model on the
    /// navigated altitude.
    fn air_density_kg_m3(&self) -> Option<f64> {
        if self.baro_valid()
            && let Some((p, t_c)) = self.baro
        {
            return Some(p / (287.05 * (t_c + 273.15).max(150.0)));
        }
        let h = self.nav_altitude_m()?;
        Some(1.225 * (-h.max(0.0) / 7_200.0).exp())
    }

    /// Drogue FDIR: a drogue that leaves the capsule sinking well above its expected
    /// terminal rate has failed (detail [`FAULT_DROGUE`]).
    fn drogue_check(&mut self) {
        if self.drogue_failed || self.t_s - self.mode_entered_s < DROGUE_CHECK_AFTER_S {
            return;
        }
        let (Some(sink), Some(rho)) = (self.sink_rate_m_s(), self.air_density_kg_m3()) else {
            return;
        };
        let expected = (2.0 * DROGUE_MASS_KG * G0 / (rho * DROGUE_CDS_M2)).sqrt();
        if sink > DROGUE_FAIL_RATIO * expected {
            let since = *self.drogue_slow_since_s.get_or_insert(self.t_s);
            if self.t_s - since >= DROGUE_FAIL_PERSIST_S - 1e-9 {
                self.drogue_failed = true;
                self.fault_flags |= FLAG_DROGUE;
                self.event(event::FAULT_DETECTED, FAULT_DROGUE);
            }
        } else {
            self.drogue_slow_since_s = None;
        }
    }

    fn fire(&mut self, mut mask: u8) {
        if self.defect == Some(Defect::MainBeforeDrogue) {
            // Defect: drogue and main channel bits swapped.
            let d = mask & (PYRO_DROGUE_PRIMARY | PYRO_MAIN_PRIMARY);
            mask &= !(PYRO_DROGUE_PRIMARY | PYRO_MAIN_PRIMARY);
            if d & PYRO_DROGUE_PRIMARY != 0 {
                mask |= PYRO_MAIN_PRIMARY;
            }
            if d & PYRO_MAIN_PRIMARY != 0 {
                mask |= PYRO_DROGUE_PRIMARY;
            }
        }
        self.pyro_counter = self.pyro_counter.wrapping_add(1);
        self.outbox.push(Out::Pyro {
            mask,
            counter: self.pyro_counter,
        });
    }

    /// Fires a pyro function through its primary initiator, or straight through the
    /// backup when the primary shows no continuity; a primary that is not confirmed fired
    /// within [`PYRO_CONFIRM_S`] is backed up by [`Self::pyro_fdir`].
    fn fire_function(&mut self, primary: u8, backup: u8, extra: u8) {
        let function = PyroFunction {
            primary,
            backup,
            extra,
        };
        if self.pyro_holding() && self.defect != Some(Defect::NoBackupPyro) {
            self.pyro_held.push(function);
            return;
        }
        let primary_ok = self.pyro_continuity.is_none_or(|c| c & primary != 0);
        if primary_ok || self.defect == Some(Defect::NoBackupPyro) {
            self.fire(primary | extra);
            self.pyro_pending.push((function, self.t_s, 0));
        } else {
            self.event(event::FAULT_DETECTED, u16::from(primary));
            self.event(event::BACKUP_PYRO, u16::from(backup));
            self.fire(backup | extra);
        }
    }

    /// Backs up primaries that were not confirmed fired in time.
    /// Power FDIR: the power node's heartbeat ([`FAULT_POWER_NODE`]) and the bus
    /// voltage it reports: under [`BUS_LOW_V`] for [`BUS_LOW_FRAMES`] frames is an
    /// under-voltage ([`FAULT_BUS_LOW`]), cleared above [`BUS_OK_V`] for
    /// [`BUS_OK_FRAMES`]; meanwhile pyro functions are held (see [`Self::pyro_fdir`]).
    fn power_fdir(&mut self) {
        let started = self.start_s.is_some_and(|t0| self.t_s - t0 > 2.0);
        let lost = started && self.t_s - self.power_status_t_s > POWER_NODE_TIMEOUT_S;
        self.report_node(
            lost,
            self.power_node_lost,
            FLAG_POWER_NODE,
            FAULT_POWER_NODE,
        );
        self.power_node_lost = lost;
        if self.bus_low_since_s.is_none() && self.bus_low_frames >= BUS_LOW_FRAMES && !lost {
            self.bus_low_since_s = Some(self.t_s);
            self.fault_flags |= FLAG_BUS_LOW;
            self.event(event::FAULT_DETECTED, FAULT_BUS_LOW);
            // Functions fired but not yet confirmed: their commands may have met a
            // dead or sagging controller; hold them, to be fired afresh.
            for (f, _, _) in std::mem::take(&mut self.pyro_pending) {
                if !f.done(self.pyro_fired) {
                    self.pyro_held.push(f);
                }
            }
        } else if self.bus_low_since_s.is_some() && (self.bus_ok_frames >= BUS_OK_FRAMES || lost) {
            // Recovered (or no longer known: the power node is lost, so the pyro
            // functions go ahead).
            self.bus_low_since_s = None;
            self.fault_flags &= !FLAG_BUS_LOW;
            self.event(event::FAULT_CLEARED, FAULT_BUS_LOW);
        }
    }

    /// True while pyro functions are held for a bus under-voltage.
    fn pyro_holding(&self) -> bool {
        self.bus_low_since_s
            .is_some_and(|t0| self.t_s - t0 < PYRO_HOLD_MAX_S)
    }

    fn pyro_fdir(&mut self) {
        let now = self.t_s;
        // Pyro controller heartbeat: its status is due every 100 ms.
        let lost =
            now - self.pyro_status_t_s > PYRO_NODE_TIMEOUT_S && self.pyro_status_t_s.is_finite();
        self.report_node(lost, self.pyro_node_lost, FLAG_PYRO_NODE, FAULT_PYRO_NODE);
        self.pyro_node_lost = lost;
        if self.defect == Some(Defect::NoBackupPyro) {
            self.pyro_pending.clear();
            return;
        }
        // Functions held through a bus under-voltage go once it is over (or the hold
        // has lasted its limit).
        if self.pyro_holding() {
            return;
        }
        for f in std::mem::take(&mut self.pyro_held) {
            if !f.done(self.pyro_fired) {
                self.fire_function(f.primary, f.backup, f.extra);
            }
        }
        // A function is done once either initiator reports fired. Unconfirmed: the
        // backup after PYRO_CONFIRM_S, then both again every PYRO_RETRY_S (the command
        // may have been lost on the bus or the node may have been off it).
        let fired = self.pyro_fired;
        let mut actions = Vec::new();
        for (f, t, attempts) in &mut self.pyro_pending {
            if f.done(fired) {
                *attempts = u8::MAX;
                continue;
            }
            let wait = if *attempts == 0 {
                PYRO_CONFIRM_S
            } else {
                PYRO_RETRY_S
            };
            if now - *t > wait && *attempts < PYRO_MAX_ATTEMPTS {
                actions.push((f.primary, f.backup, *attempts));
                *attempts += 1;
                *t = now;
            }
        }
        self.pyro_pending.retain(|e| e.2 < PYRO_MAX_ATTEMPTS);
        for (p, b, attempts) in actions {
            if attempts == 0 {
                self.event(event::FAULT_DETECTED, u16::from(p));
                self.event(event::BACKUP_PYRO, u16::from(b));
                self.fire(b);
            } else {
                self.fire(p | b);
            }
        }
    }

    fn event(&mut self, code: u8, detail: u16) {
        self.pending_events
            .push((code, self.mode, self.mode, detail));
    }

    /// Sends a deorbit motor command (a fresh counter, except with the seeded defect's
    /// cut-off).
    fn motor_command(&mut self, ignite: bool) {
        if ignite || self.defect != Some(Defect::DeorbitBurnTooLong) {
            self.deorbit_counter = self.deorbit_counter.wrapping_add(1);
        }
        self.outbox.push(Out::Deorbit {
            ignite,
            counter: self.deorbit_counter,
        });
    }

    /// RCS FDIR: a valve stuck open is isolated by its latch valve (fault
    /// [`FAULT_THRUSTER`]); a silent driver is reported once ([`FAULT_RCS_NODE`]).
    fn rcs_fdir(&mut self) {
        for k in 0..8 {
            let bit = 1u8 << k;
            if self.rcs_stuck_frames[k] >= THRUSTER_STUCK_FRAMES && self.rcs_isolated & bit == 0 {
                self.rcs_isolated |= bit;
                self.fault_flags |= FLAG_THRUSTER;
                self.event(event::FAULT_DETECTED, FAULT_THRUSTER);
            }
        }
        let lost = self.rcs_active
            && self.rcs_status_t_s.is_finite()
            && self.t_s - self.rcs_status_t_s > RCS_NODE_TIMEOUT_S;
        self.report_node(lost, self.rcs_node_lost, FLAG_RCS_NODE, FAULT_RCS_NODE);
        self.rcs_node_lost = lost;
    }

    /// A CAN node's heartbeat verdict: `FC_FaultFlags` bit `flag` while it is lost,
    /// FAULT_DETECTED / FAULT_CLEARED with `fault` when that changes.
    fn report_node(&mut self, lost: bool, was_lost: bool, flag: u16, fault: u16) {
        if lost {
            self.fault_flags |= flag;
        } else {
            self.fault_flags &= !flag;
        }
        if lost && !was_lost {
            self.event(event::FAULT_DETECTED, fault);
        } else if !lost && was_lost {
            self.event(event::FAULT_CLEARED, fault);
        }
    }

    /// Guidance and control for the free-flight and entry modes: sets the RCS valves.
    fn gnc_cycle(&mut self) {
        self.rcs_fdir();
        let controlled = matches!(self.mode, Mode::Coast | Mode::DeorbitBurn | Mode::Entry);
        let (Some(s), Some(imu)) = (self.nav.state().copied(), self.last_imu) else {
            self.rcs_cmd = 0;
            self.rcs_active = controlled && self.rcs_active;
            return;
        };
        if !controlled || self.imu_failed {
            // Under parachutes (or without navigation) the RCS is off.
            self.rcs_cmd = 0;
            return;
        }
        let rate = DVec3::from_array(imu.rate_rad_s);
        let f_body = DVec3::from_array(imu.specific_force_m_s2);
        match self.mode {
            Mode::Coast => {
                let Some((t_ig, _)) = self.deorbit_plan else {
                    self.rcs_cmd = 0;
                    return;
                };
                if self.t_s < t_ig - BURN_ATTITUDE_LEAD_S {
                    self.rcs_cmd = 0;
                    return;
                }
                self.rcs_active = true;
                let (mask, err) = gnc::attitude_control(
                    &s,
                    gnc::retrograde_attitude(&s),
                    rate,
                    self.rcs_isolated,
                );
                self.rcs_cmd = mask;
                let aligned = err < IGNITION_ATTITUDE_RAD;
                if self.t_s >= t_ig && (aligned || self.t_s >= t_ig + IGNITION_WAIT_MAX_S) {
                    self.motor_command(true);
                    self.burn_dv_m_s = 0.0;
                    self.burn_started_s = Some(self.t_s);
                    self.event(event::BURN_START, 0);
                    self.set_mode(Mode::DeorbitBurn);
                }
            }
            Mode::DeorbitBurn => {
                let (mask, _) = gnc::attitude_control(
                    &s,
                    gnc::retrograde_attitude(&s),
                    rate,
                    self.rcs_isolated,
                );
                self.rcs_cmd = mask;
                let target_dv = self.deorbit_plan.map_or(0.0, |p| p.1);
                let burnt_out = self.motor_state == Some(3)
                    && self.burn_started_s.is_some_and(|t0| self.t_s - t0 > 1.0);
                if !self.burn_cut && self.burn_dv_m_s >= target_dv - CUTOFF_ANTICIPATION_M_S {
                    self.motor_command(false);
                    self.burn_cut = true;
                }
                // Under-burn: the motor stopped pushing before the plan was delivered
                // (failed, or out of propellant): cut it off (safe), report, and go on
                // to entry with the delta-v it gave.
                let motor_failed = self.motor_check();
                if motor_failed && !self.burn_cut {
                    self.motor_command(false);
                    self.burn_cut = true;
                    self.fault_flags |= FLAG_MOTOR;
                    self.event(event::FAULT_DETECTED, FAULT_MOTOR);
                }
                if burnt_out
                    || motor_failed
                    || (self.burn_cut && self.defect != Some(Defect::DeorbitBurnTooLong))
                {
                    let dv = (self.burn_dv_m_s * 100.0).round().clamp(0.0, 65_535.0) as u16;
                    self.event(event::BURN_END, dv);
                    self.set_mode(Mode::Entry);
                }
            }
            _ => {
                // Entry: the guidance's bank (or the handover's, without a target).
                self.rcs_active = true;
                let v_air = gnc::air_velocity(&s);
                let drag = -(s.inertial_from_body * f_body).dot(v_air.normalize_or(DVec3::X));
                let bank_cmd = match self.guidance.as_mut() {
                    Some(g) => {
                        g.measure_drag(&s, drag);
                        g.update(&s, self.defect == Some(Defect::WrongBankSign))
                    }
                    None => self.hold_bank_rad.unwrap_or(0.0),
                };
                let altitude_m = self.nav.altitude_m().unwrap_or(0.0);
                self.rcs_cmd = if altitude_m > ENTRY_ATTITUDE_ALTITUDE_M {
                    // Coasting to the atmosphere: only rates above 0.5 deg/s are damped
                    // (propellant), until the entry attitude is acquired.
                    gnc::rate_control(DVec3::ZERO, rate, 0.5_f64.to_radians(), self.rcs_isolated)
                } else if drag < AERO_CONTROL_DRAG_M_S2 {
                    gnc::attitude_control(
                        &s,
                        gnc::trim_attitude(&s, bank_cmd),
                        rate,
                        self.rcs_isolated,
                    )
                    .0
                } else {
                    gnc::bank_control(&s, bank_cmd, rate, self.rcs_isolated)
                };
            }
        }
    }

    /// The mode sequence (entry onwards).
    fn sequence(&mut self) {
        self.power_fdir();
        self.pyro_fdir();
        self.gnc_cycle();
        if matches!(self.mode, Mode::Entry | Mode::Drogue | Mode::Main) {
            self.imu_check();
            self.baro_check();
        }
        let baro_alt = self.baro_altitude_m();
        let nav_alt = self.nav_altitude_m();
        let speed = if self.imu_failed {
            f64::INFINITY
        } else {
            self.nav.airspeed_m_s().unwrap_or(f64::INFINITY)
        };
        let in_mode_s = self.t_s - self.mode_entered_s;
        match self.mode {
            Mode::Entry => {
                // Drogue: subsonic below 15 km by the baro, once the deceleration pulse
                // is over; backup on the navigated altitude.
                let a = self.baro.map_or(295.0, |(_, t_c)| {
                    (1.4 * 287.05 * (t_c + 273.15).max(150.0)).sqrt()
                });
                let pulse_over = self.peak_load_g > 2.0 && self.load_g < 1.5;
                // Defect: the threshold in feet read as metres (15000 ft = 4572 m).
                let drogue_alt = if self.defect == Some(Defect::LateDrogue) {
                    4_572.0
                } else {
                    15_000.0
                };
                let primary =
                    pulse_over && baro_alt.is_some_and(|h| h < drogue_alt) && speed / a < 0.8;
                // Without a barometer, fall back to the navigated altitude.
                let backup = !self.baro_valid() && nav_alt.is_some_and(|h| h < 9_000.0);
                // Without an IMU (no Mach, no deceleration pulse): the baro alone, low
                // enough to be subsonic on any entry.
                // Without navigation (IMU failed, or lost in a reset): the same.
                let no_imu = (self.imu_failed || self.nav.state().is_none())
                    && baro_alt.is_some_and(|h| h < 10_000.0);
                if primary || backup || no_imu {
                    self.fire_function(PYRO_DROGUE_PRIMARY, PYRO_DROGUE_BACKUP, 0);
                    self.set_mode(Mode::Drogue);
                }
            }
            Mode::Drogue => {
                self.drogue_check();
                let primary = baro_alt.is_some_and(|h| h < 3_000.0);
                let backup =
                    !self.baro_valid() && nav_alt.is_some_and(|h| h < 2_500.0) && in_mode_s > 5.0;
                // A failed drogue: the main at once, if the dynamic pressure allows.
                let reserve = self.drogue_failed
                    && self.air_density_kg_m3().is_some_and(|rho| {
                        let v = self
                            .sink_rate_m_s()
                            .unwrap_or(0.0)
                            .max(if speed.is_finite() { speed } else { 0.0 });
                        0.5 * rho * v * v < MAIN_MAX_Q_PA
                    });
                if primary || backup || reserve {
                    self.fire_function(PYRO_MAIN_PRIMARY, PYRO_MAIN_BACKUP, PYRO_DROGUE_RELEASE);
                    self.set_mode(Mode::Main);
                }
            }
            Mode::Main => {
                // Splashdown: the impact shock near the surface.
                let low = baro_alt.is_some_and(|h| h < 300.0) || nav_alt.is_some_and(|h| h < 300.0);
                // Without an IMU: the baro still (sinking under 1 m/s) for 3 s, near
                // the surface.
                let still = self.imu_failed
                    && baro_alt.is_some_and(|h| h < 150.0)
                    && self.sink_rate_m_s().is_some_and(|v| v.abs() < 1.0);
                let baro_landed = if still {
                    let since = *self.baro_still_since_s.get_or_insert(self.t_s);
                    self.t_s - since >= 3.0
                } else {
                    self.baro_still_since_s = None;
                    false
                };
                if (low && self.load_g > 2.5 && !self.imu_failed) || baro_landed {
                    self.set_mode(Mode::Splashdown);
                }
            }
            // Mated to the host vehicle, handed over: coast once both separation switches
            // have read open in two consecutive controller frames.
            Mode::PreSeparation
                if self.nav.state().is_some()
                    && self.recovering_since_s.is_none()
                    && self.sep_open_frames >= SEP_CONFIRM_FRAMES =>
            {
                self.set_mode(Mode::Coast);
            }
            Mode::Splashdown => {
                self.fire(PYRO_MAIN_RELEASE);
                if self.defect != Some(Defect::BeaconNeverActivated) {
                    self.beacon_counter = self.beacon_counter.wrapping_add(1);
                    self.outbox.push(Out::Beacon {
                        counter: self.beacon_counter,
                    });
                }
                self.set_mode(Mode::Recovery);
            }
            _ => {}
        }
    }

    /// Deorbit motor check, once per window after the thrust build-up: true when the
    /// acceleration measured along the motor axis fell below [`MOTOR_MIN_ACCEL_M_S2`].
    fn motor_check(&mut self) -> bool {
        let Some(t0) = self.burn_started_s else {
            return false;
        };
        if self.burn_cut || self.t_s - t0 < MOTOR_CHECK_AFTER_S {
            return false;
        }
        let (tw, dv0) = *self.burn_check.get_or_insert((self.t_s, self.burn_dv_m_s));
        if self.t_s - tw < MOTOR_CHECK_WINDOW_S - 1e-9 {
            return false;
        }
        let accel = (self.burn_dv_m_s - dv0) / (self.t_s - tw);
        self.burn_check = Some((self.t_s, self.burn_dv_m_s));
        accel < MOTOR_MIN_ACCEL_M_S2
    }

    /// Reset recovery: after a reset, once inputs have been gathered for
    /// [`RESET_SETTLE_S`], the mode is the one the sensors imply (the pyro controller's
    /// fired initiators, then the barometer, then the sensed drag), not a fresh start.
    fn reset_recovery(&mut self) {
        let Some(since) = self.recovering_since_s else {
            return;
        };
        if self.mode != Mode::PreSeparation {
            // A handover arrived meanwhile: it decides.
            self.recovering_since_s = None;
            return;
        }
        if self.t_s - since < RESET_SETTLE_S - 1e-9 {
            return;
        }
        self.recovering_since_s = None;
        let fired = self.pyro_fired;
        let mode = if fired & (PYRO_MAIN_PRIMARY | PYRO_MAIN_BACKUP) != 0 {
            Mode::Main
        } else if fired & (PYRO_DROGUE_PRIMARY | PYRO_DROGUE_BACKUP) != 0 {
            Mode::Drogue
        } else if self.baro_valid() || self.load_g > 0.05 {
            Mode::Entry
        } else {
            Mode::Coast
        };
        self.fault_flags |= FLAG_RESET_RECOVERED;
        // The nodes ignore a command whose counter equals the last one they took, and the
        // counters restarted with the software: two empty pyro commands (arm only) put
        // the controller's last counter behind the next real command's.
        self.fire(0);
        self.fire(0);
        self.set_mode(mode);
        self.event(event::RESET_RECOVERY, mode as u16);
    }

    /// Runs one cycle at time `t_s`; returns the frames to send, in order.
    pub fn cycle(&mut self, t_s: f64) -> Result<Vec<CanFrame>, CodecError> {
        if let Some(boot_s) = self.reset_request_s.take() {
            // Reset: the software state is lost; the processor boots.
            let fresh = Fsw::new(self.icd.clone(), self.build_hash).with_defect(self.defect);
            *self = fresh;
            self.booting_until_s = Some(t_s + boot_s);
        }
        if let Some(until) = self.booting_until_s {
            if t_s + 1e-9 < until {
                return Ok(Vec::new());
            }
            self.booting_until_s = None;
            self.recovering_since_s = Some(t_s);
            self.next_status_s = t_s;
            self.next_ident_s = t_s;
        }
        self.t_s = t_s;
        self.start_s.get_or_insert(t_s);
        self.reset_recovery();
        self.sequence();
        let mut out = Vec::new();
        let b = self.icd.binding.clone();
        for o in std::mem::take(&mut self.outbox) {
            match o {
                Out::Pyro { mask, counter } => {
                    let py = &b.pyro;
                    encode_into(
                        &[
                            (&py.arm_key, py.arm_key_value),
                            (&py.arm, 1.0),
                            (&py.fire_mask, self.bits.pyro_to_wire(mask) as f64),
                            (&py.command_counter, f64::from(counter)),
                        ],
                        &mut out,
                    )?;
                }
                Out::Deorbit { ignite, counter } => {
                    let d = &b.deorbit;
                    encode_into(
                        &[
                            (&d.ignite, if ignite { 1.0 } else { 0.0 }),
                            (&d.cutoff, if ignite { 0.0 } else { 1.0 }),
                            (&d.command_counter, f64::from(counter)),
                        ],
                        &mut out,
                    )?;
                }
                Out::Beacon { counter } => {
                    let be = &b.beacon;
                    encode_into(
                        &[
                            (&be.activate, 1.0),
                            (&be.command_counter, f64::from(counter)),
                        ],
                        &mut out,
                    )?;
                }
            }
        }
        let fc = &b.fc;
        if self.ident_left > 0 && t_s + 1e-9 >= self.next_ident_s {
            let (ma, mi, pa) = crate::VERSION;
            encode_into(
                &[
                    (&fc.sw_major, f64::from(ma)),
                    (&fc.sw_minor, f64::from(mi)),
                    (&fc.sw_patch, f64::from(pa)),
                    (&fc.build_hash, f64::from(self.build_hash)),
                ],
                &mut out,
            )?;
            self.ident_left -= 1;
            self.next_ident_s = t_s + 1.0;
        }
        // RCS valves at 50 Hz while attitude control is active; one all-closed command
        // when it ends.
        // On absolute deadlines every 20 ms: the cycle nearest each deadline (within half
        // a 10 ms cycle, so a cycle that comes a little early in real time does not
        // skip it) sends; only a command more than half a cycle late restarts the
        // schedule from now (activation, or a stalled processor).
        if self.rcs_active && self.rcs_schedule.due(t_s) {
            self.rcs_counter = self.rcs_counter.wrapping_add(1);
            let r = &b.rcs;
            encode_into(
                &[
                    (
                        &r.valves,
                        self.bits.rcs_to_wire(self.rcs_cmd & !self.rcs_isolated) as f64,
                    ),
                    (&r.command_counter, f64::from(self.rcs_counter)),
                    (&r.isolate, self.bits.rcs_to_wire(self.rcs_isolated) as f64),
                ],
                &mut out,
            )?;
            if !matches!(self.mode, Mode::Coast | Mode::DeorbitBurn | Mode::Entry) {
                self.rcs_active = false;
            }
        }
        for (code, from, to, detail) in std::mem::take(&mut self.pending_events) {
            encode_into(
                &[
                    (&fc.event_code, f64::from(code)),
                    (&fc.event_mode_from, f64::from(from as u8)),
                    (&fc.event_mode_to, f64::from(to as u8)),
                    (&fc.event_detail, f64::from(detail)),
                    (
                        &fc.event_time,
                        fc.event_time.clamp((t_s * 1000.0).round() / 1000.0),
                    ),
                ],
                &mut out,
            )?;
        }
        let heartbeat_dead =
            self.defect == Some(Defect::HeartbeatStopsAfterModeChange) && self.mode_changes > 1;
        if t_s + 1e-9 >= self.next_status_s && !heartbeat_dead {
            let nav_valid = self.nav.state().is_some() && !self.imu_failed;
            // ICD: the navigated altitude while navigation is valid, else the baro's.
            let alt = if nav_valid {
                self.nav.altitude_m()
            } else {
                self.baro_altitude_m()
            }
            .unwrap_or(0.0);
            let alt = fc.est_altitude.clamp((alt * 4.0).round() / 4.0);
            let vel = fc
                .est_speed
                .clamp(self.nav.airspeed_m_s().unwrap_or(0.0).round());
            encode_into(
                &[
                    (&fc.est_altitude, alt),
                    (&fc.est_speed, vel),
                    (&fc.nav_valid, if nav_valid { 1.0 } else { 0.0 }),
                    (&fc.mode, f64::from(self.mode as u8)),
                    (&fc.sequence, f64::from(self.seq)),
                    (&fc.fault_flags, f64::from(self.fault_flags)),
                    (
                        &fc.imu_valid,
                        if self.last_imu.is_some() && !self.imu_failed {
                            1.0
                        } else {
                            0.0
                        },
                    ),
                    (&fc.gnss_fix, if self.gnss_fix { 1.0 } else { 0.0 }),
                    (&fc.baro_valid, if self.baro_valid() { 1.0 } else { 0.0 }),
                ],
                &mut out,
            )?;
            self.seq = ((u64::from(self.seq) + 1) % fc.sequence.modulo()) as u8;
            self.next_status_s += 0.1;
            if self.next_status_s <= t_s {
                self.next_status_s = t_s + 0.1;
            }
        }
        Ok(out)
    }
}
