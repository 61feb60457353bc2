//! The flight software proper: deterministic, no I/O. Inputs are decoded ICD messages;
//! each call to [`Fsw::cycle`] runs one 10 ms frame and returns the CAN frames to send.
//!
//! This first increment carries the telemetry contract (identification at start-up,
//! status at 10 Hz with a sequence counter, events on mode changes) and input
//! bookkeeping; navigation, guidance, sequencing and FDIR build on it.

use crate::nav::{Nav, NavState};
use capsule_icd::can::{CanDb, CanFrame, CodecError};
use capsule_icd::imu::ImuDatagram;
use capsule_icd::nmea::Sentence;
use glam::{DQuat, DVec3};
use std::collections::BTreeMap;

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
    /// Fault detected.
    pub const FAULT_DETECTED: u8 = 2;
}

/// FC cycle period, s.
pub const CYCLE_S: f64 = 0.01;

/// The flight software state.
#[derive(Debug)]
pub struct Fsw {
    db: CanDb,
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
    handover: BTreeMap<String, f64>,
}

impl Fsw {
    /// A flight software instance using the ICD in `db`.
    pub fn new(db: CanDb, build_hash: u32) -> Self {
        Self {
            db,
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
            handover: BTreeMap::new(),
        }
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

    /// Takes an IMU datagram.
    pub fn on_imu(&mut self, d: &ImuDatagram) {
        self.imu_count += 1;
        self.last_imu = Some(*d);
        self.nav.on_imu(d);
    }

    /// Takes an NMEA sentence.
    pub fn on_nmea(&mut self, s: &Sentence) {
        if let Sentence::Gga { quality, .. } = s {
            self.gnss_fix = *quality > 0;
        }
    }

    /// Takes a CAN frame from another node (ignored if not in the ICD).
    pub fn on_can(&mut self, f: &CanFrame) {
        let Some(m) = self.db.by_id(f.id) else { return };
        if !m.name.starts_with("HV_") {
            return;
        }
        let Ok(values) = m.decode(f) else { return };
        for (k, v) in values {
            self.handover.insert(k.to_string(), v);
        }
        if m.name == "HV_StateTime" {
            self.take_handover();
        }
    }

    /// Completes a state handover: initialises navigation and assumes the given mode.
    fn take_handover(&mut self) {
        let g = |k: &str| self.handover.get(k).copied();
        let (Some(x), Some(y), Some(z), Some(vx), Some(vy), Some(vz)) = (
            g("HV_PosX"),
            g("HV_PosY"),
            g("HV_PosZ"),
            g("HV_VelX"),
            g("HV_VelY"),
            g("HV_VelZ"),
        ) else {
            return;
        };
        let (Some(qw), Some(qx), Some(qy), Some(qz), Some(t_us)) = (
            g("HV_QuatW"),
            g("HV_QuatX"),
            g("HV_QuatY"),
            g("HV_QuatZ"),
            g("HV_TimeUs"),
        ) else {
            return;
        };
        let q = DQuat::from_xyzw(qx, qy, qz, qw);
        if q.length() < 0.5 {
            return;
        }
        self.nav.init(NavState {
            t_s: t_us * 1e-6,
            position_m: DVec3::new(x, y, z),
            velocity_m_s: DVec3::new(vx, vy, vz),
            inertial_from_body: q.normalize(),
        });
        let mode = match g("HV_Mode").map(|m| m as u8) {
            Some(1) => Mode::Coast,
            Some(2) => Mode::DeorbitBurn,
            Some(3) => Mode::Entry,
            Some(4) => Mode::Drogue,
            Some(5) => Mode::Main,
            Some(6) => Mode::Splashdown,
            Some(7) => Mode::Recovery,
            Some(8) => Mode::Safe,
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
        }
    }

    /// Runs one cycle at time `t_s`; returns the frames to send, in order.
    pub fn cycle(&mut self, t_s: f64) -> Result<Vec<CanFrame>, CodecError> {
        let mut out = Vec::new();
        if self.ident_left > 0 && t_s + 1e-9 >= self.next_ident_s {
            let (ma, mi, pa) = crate::VERSION;
            out.push(self.db.encode(
                "FC_Ident",
                &[
                    ("FC_SwMajor", f64::from(ma)),
                    ("FC_SwMinor", f64::from(mi)),
                    ("FC_SwPatch", f64::from(pa)),
                    ("FC_BuildHash", f64::from(self.build_hash)),
                ],
            )?);
            self.ident_left -= 1;
            self.next_ident_s = t_s + 1.0;
        }
        for (code, from, to, detail) in std::mem::take(&mut self.pending_events) {
            out.push(self.db.encode(
                "FC_Event",
                &[
                    ("FC_EventCode", f64::from(code)),
                    ("FC_EventModeFrom", f64::from(from as u8)),
                    ("FC_EventModeTo", f64::from(to as u8)),
                    ("FC_EventDetail", f64::from(detail)),
                    ("FC_EventTime", (t_s * 1000.0).round() / 1000.0),
                ],
            )?);
        }
        if t_s + 1e-9 >= self.next_status_s {
            let alt = self
                .nav
                .altitude_m()
                .unwrap_or(0.0)
                .clamp(-1000.0, 261_143.75);
            let vel = self.nav.airspeed_m_s().unwrap_or(0.0).clamp(0.0, 16_383.0);
            let nav_valid = self.nav.state().is_some();
            out.push(self.db.encode(
                "FC_Status",
                &[
                    ("FC_EstAltitude", (alt * 4.0).round() / 4.0),
                    ("FC_EstVelocity", vel.round()),
                    ("FC_NavValid", if nav_valid { 1.0 } else { 0.0 }),
                    ("FC_Mode", f64::from(self.mode as u8)),
                    ("FC_SeqCounter", f64::from(self.seq)),
                    ("FC_FaultFlags", f64::from(self.fault_flags)),
                    (
                        "FC_ImuValid",
                        if self.last_imu.is_some() { 1.0 } else { 0.0 },
                    ),
                    ("FC_GnssFix", if self.gnss_fix { 1.0 } else { 0.0 }),
                ],
            )?);
            self.seq = (self.seq + 1) % 16;
            self.next_status_s += 0.1;
            if self.next_status_s <= t_s {
                self.next_status_s = t_s + 0.1;
            }
        }
        Ok(out)
    }
}
