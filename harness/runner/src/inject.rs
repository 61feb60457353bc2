//! Injections: faults switched on during a run, at a time, on an event, or when a truth
//! signal crosses a value, optionally for a duration.

use crate::devices::Devices;
use capsule_links::fault::{FaultClock, FaultInjector, FaultRule};
use serde::{Deserialize, Serialize};
use twin_core::parachute::ChuteFault;
use twin_core::sensors::fault::{FaultSpec, SensorFault};
use twin_core::twin::Twin;

/// When an injection starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    /// At this simulation time, s.
    At(f64),
    /// When the named event first happens (device, FC mode or splashdown event names as
    /// in scenario files), plus a delay, s.
    Event(String, f64),
    /// When the truth altitude first falls below this value, m.
    AltitudeBelow(f64),
}

/// What an injection does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// A pyro initiator loses continuity (channel, an index in
    /// [`capsule_icd::binding::PYRO_CHANNELS`]).
    PyroOpenCircuit(u8),
    /// A parachute failure.
    Parachute(String, ChuteFault),
    /// A sensor channel fault (channel pattern as in the fault layer).
    Sensor(String, SensorFault),
    /// Atmospheric density multiplier.
    DensityScale(f64),
    /// Heat-shield degradation: multiplier on the ablator conductance.
    HeatShield(f64),
    /// A power brown-out: the main bus pulled down to at most this voltage, V.
    BrownOut(f64),
    /// A wind profile (replaces the calm atmosphere while on).
    Wind(Vec<twin_core::atmosphere::WindPoint>),
    /// The IMU resets: it sends datagrams flagged invalid while it restarts, then
    /// resumes with its counter from zero.
    ImuReset,
    /// The GNSS receiver loses its fix.
    GnssLoss,
    /// A CAN node stops sending (`baro`, `thermo`, `power`, `pyro`, `beacon`).
    NodeSilent(String),
    /// A bus fault on a link (`can`, `imu`, `gnss`); its window is set by the trigger
    /// and the duration.
    Bus(String, FaultRule),
    /// The flight computer is reset (`SIM_Reset`) and boots for the injection's
    /// duration.
    FcReset,
    /// A thruster fault (vehicle thruster name): stuck open or closed, or degraded
    /// (the deorbit motor under-performing).
    Thruster(String, twin_core::twin::ThrusterFault),
}

/// The fault layers of the runner's links, applied synchronously (lockstep).
pub struct BusFaults {
    /// Simulation time the fault windows use.
    pub clock: FaultClock,
    /// CAN (both directions; simulation-only SIM_* frames are never faulted).
    pub can: FaultInjector,
    /// IMU serial line.
    pub imu: FaultInjector,
    /// GNSS serial line.
    pub gnss: FaultInjector,
}

impl BusFaults {
    /// Seeded fault layers.
    pub fn new(seed: u64) -> Self {
        let clock = FaultClock::new();
        Self {
            can: FaultInjector::new(seed ^ 0xCA11, clock.clone()),
            imu: FaultInjector::new(seed ^ 0x1AA1, clock.clone()),
            gnss: FaultInjector::new(seed ^ 0x6A55, clock.clone()),
            clock,
        }
    }
}

/// One injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    /// Id (from the scenario).
    pub id: String,
    /// Start.
    pub trigger: Trigger,
    /// Duration, s (for ever if absent).
    pub duration_s: Option<f64>,
    /// Effect.
    pub action: Action,
}

/// Runtime state of the injections of a run.
#[derive(Debug, Default)]
pub struct Injector {
    items: Vec<(Injection, Option<f64>, bool)>,
    /// (time, id, started?) log.
    pub log: Vec<(f64, String, bool)>,
}

impl Injector {
    /// Prepares injections.
    pub fn new(items: Vec<Injection>) -> Self {
        Self {
            items: items.into_iter().map(|i| (i, None, false)).collect(),
            log: Vec::new(),
        }
    }

    /// Called once per cycle with the events seen so far (name, time).
    pub fn update(
        &mut self,
        t: f64,
        events: &[(f64, String)],
        twin: &mut Twin,
        devices: &mut Devices,
        bus: &mut BusFaults,
    ) {
        for (inj, started, ended) in &mut self.items {
            if started.is_none() {
                let start = match &inj.trigger {
                    Trigger::At(ts) => (t + 1e-9 >= *ts).then_some(*ts),
                    Trigger::Event(name, delay) => events
                        .iter()
                        .find(|(_, n)| match name.strip_suffix('*') {
                            Some(p) => n.starts_with(p),
                            None => n == name,
                        })
                        .map(|(te, _)| te + delay)
                        .filter(|ts| t + 1e-9 >= *ts),
                    Trigger::AltitudeBelow(h) => (twin.environment().altitude_m < *h).then_some(t),
                };
                if let Some(ts) = start {
                    *started = Some(ts);
                    apply(inj, ts, twin, devices, bus, true);
                    self.log.push((t, inj.id.clone(), true));
                }
            } else if let (Some(ts), Some(d), false) = (*started, inj.duration_s, *ended)
                && t + 1e-9 >= ts + d
            {
                *ended = true;
                apply(inj, ts, twin, devices, bus, false);
                self.log.push((t, inj.id.clone(), false));
            }
        }
    }
}

fn apply(
    inj: &Injection,
    t_start: f64,
    twin: &mut Twin,
    devices: &mut Devices,
    bus: &mut BusFaults,
    on: bool,
) {
    match &inj.action {
        Action::PyroOpenCircuit(k) => {
            if let Some(c) = devices.pyro.get_mut(usize::from(*k)) {
                c.open_circuit = on;
            }
        }
        Action::Parachute(name, f) => {
            if let Some(i) = twin.parachute_index(name) {
                twin.set_parachute_fault(i, on.then_some(*f));
            }
        }
        Action::Sensor(channel, f) => {
            if on {
                devices.faults.add(FaultSpec {
                    channel: channel.clone(),
                    fault: *f,
                    start_s: t_start,
                    end_s: inj.duration_s.map(|d| t_start + d),
                });
            }
        }
        Action::DensityScale(s) => twin.set_density_scale(if on { *s } else { 1.0 }),
        Action::HeatShield(s) => twin.set_heat_shield_conductance_scale(if on { *s } else { 1.0 }),
        Action::Wind(points) => twin.set_wind(if on {
            twin_core::atmosphere::WindProfile::new(points.clone())
        } else {
            twin_core::atmosphere::WindProfile::default()
        }),
        Action::BrownOut(v) => devices.set_brown_out(on.then_some(*v)),
        Action::ImuReset => devices.set_imu_resetting(on),
        Action::FcReset => {
            if on {
                let _ = devices.request_fc_reset(inj.duration_s.unwrap_or(1.0));
            }
        }
        Action::Thruster(name, f) => {
            if let Some(i) = twin.thruster_index(name) {
                twin.set_thruster_fault(i, on.then_some(*f));
            }
        }
        Action::GnssLoss => devices.set_gnss_outage(on),
        Action::NodeSilent(node) => devices.set_node_silent(node, on),
        Action::Bus(link, rule) => {
            if on {
                let mut r = rule.clone();
                r.start_s = t_start;
                r.end_s = inj.duration_s.map(|d| t_start + d);
                match link.as_str() {
                    "can" => bus.can.control.add(r),
                    "imu" => bus.imu.control.add(r),
                    _ => bus.gnss.control.add(r),
                }
            }
        }
    }
}
