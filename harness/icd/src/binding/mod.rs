//! The ICD binding: how the twin meets a DBC, as data.
//!
//! A binding file (TOML; the shipped one is `fixtures/icd/capsule.binding.toml`, its
//! JSON Schema `fixtures/icd/binding.schema.json`) names, for every quantity the
//! device emulators put on the bus and every command they act on, the DBC signal that
//! carries it and the unit it is carried in; the status periods; the counter, status
//! and state values; the pyro channels' bits and the RCS valves' thrusters; the flight
//! computer's heartbeat, event and identification signals; the handover, mission and
//! lockstep signals. [`Binding::resolve`] checks it against a [`CanDb`]: every bound
//! signal exists (once), is sent by the right side (the flight computer's node or
//! not), carries a unit of the right dimension, has the bits and range its role needs,
//! and every other signal of a message the twin or the reference flight computer sends
//! has a start value. Errors name file, line, column and field.
//!
//! The device emulators, the runner and the reference flight computer use only the
//! resolved [`Binding`]: no message or signal name of an ICD is in their code.

mod file;
mod serial;
pub mod units;

pub use file::BindingFile;
use file::{SigSpec, StatusFile};

use crate::can::{CanDb, CanFrame, CodecError, MessageDef, SignalDef};
use capsule_files::config::{Checks, ConfigError, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use units::Dimension;

/// The binding file format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// The pyro channels the twin acts on, by binding name: fire one of the first four and
/// a parachute deploys, one of the last two and its riser is cut.
pub const PYRO_CHANNELS: [&str; 6] = [
    "drogue_primary",
    "drogue_backup",
    "main_primary",
    "main_backup",
    "drogue_release",
    "main_release",
];

/// A DBC signal bound to a twin quantity, with its message and unit conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Sig {
    message: Arc<MessageDef>,
    index: usize,
    /// `wire = twin * factor + offset`.
    factor: f64,
    offset: f64,
    /// Dimension of the twin quantity.
    pub dimension: Dimension,
    /// Unit on the wire.
    pub unit: String,
}

impl Sig {
    /// The message carrying it.
    pub fn message(&self) -> &MessageDef {
        &self.message
    }
    /// The DBC signal.
    pub fn def(&self) -> &SignalDef {
        &self.message.signals[self.index]
    }
    /// The carrying message's identifier.
    pub fn id(&self) -> u32 {
        self.message.id
    }
    /// `Message.Signal`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.message.name, self.def().name)
    }
    /// Twin value -> physical value on the wire.
    pub fn to_wire(&self, twin: f64) -> f64 {
        twin * self.factor + self.offset
    }
    /// Physical value on the wire -> twin value.
    pub fn from_wire(&self, wire: f64) -> f64 {
        (wire - self.offset) / self.factor
    }
    /// The physical value on the wire in `frame` (which must be of this message).
    pub fn read_wire(&self, frame: &CanFrame) -> f64 {
        let d = self.def();
        d.physical(d.extract(&frame.data))
    }
    /// The twin value in `frame` (which must be of this message).
    pub fn read(&self, frame: &CanFrame) -> f64 {
        self.from_wire(self.read_wire(frame))
    }
    /// The signal's range in twin units, (low, high).
    pub fn range(&self) -> (f64, f64) {
        let (a, b) = (
            self.from_wire(self.def().min),
            self.from_wire(self.def().max),
        );
        (a.min(b), a.max(b))
    }
    /// `twin` clamped into the signal's range.
    pub fn clamp(&self, twin: f64) -> f64 {
        let (lo, hi) = self.range();
        twin.clamp(lo, hi)
    }
    /// True when `twin` is inside the signal's range.
    pub fn fits(&self, twin: f64) -> bool {
        let (lo, hi) = self.range();
        twin >= lo && twin <= hi
    }
    /// The counter modulus of an integer signal (2^bits).
    pub fn modulo(&self) -> u64 {
        1u64 << self.def().size.min(63)
    }
}

/// Encodes twin values into the frames of their messages, appended to `out` in the
/// order the messages are first named. Signals of those messages not given take their
/// DBC start value (the binding's check makes sure there is one).
pub fn encode_into(values: &[(&Sig, f64)], out: &mut Vec<CanFrame>) -> Result<(), CodecError> {
    for (k, (s, _)) in values.iter().enumerate() {
        if values[..k].iter().any(|(p, _)| p.id() == s.id()) {
            continue;
        }
        let m = &s.message;
        let mut data = [0u8; 8];
        for (i, d) in m.signals.iter().enumerate() {
            let given = values
                .iter()
                .find(|(x, _)| x.id() == m.id && x.index == i)
                .map(|(x, v)| x.to_wire(*v));
            let raw = match given {
                Some(w) => d.raw(w)?,
                None => d.start_raw.ok_or_else(|| CodecError::MissingSignal {
                    message: m.name.clone(),
                    signal: d.name.clone(),
                })?,
            };
            d.insert(&mut data, raw);
        }
        out.push(CanFrame {
            id: m.id,
            extended: m.id > 0x7FF,
            rtr: false,
            dlc: m.dlc,
            data,
        });
    }
    Ok(())
}

/// [`encode_into`] for values that all belong to one message.
pub fn encode_one(values: &[(&Sig, f64)]) -> Result<CanFrame, CodecError> {
    let mut out = Vec::with_capacity(1);
    encode_into(values, &mut out)?;
    out.into_iter()
        .next()
        .ok_or_else(|| CodecError::UnknownMessage("(no values)".into()))
}

/// A status signal with its meanings.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The signal.
    pub sig: Sig,
    /// "ok".
    pub ok: f64,
    /// "out of range" (sensors).
    pub out_of_range: f64,
    /// "fault" (sensors).
    pub fault: f64,
}

/// Barometric node.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Baro {
    pub pressure: Sig,
    pub temperature: Sig,
    pub status: Status,
    pub counter: Sig,
}

/// Thermocouple node.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Thermo {
    pub heat_shield: Sig,
    pub bondline: Sig,
    pub backshell: Sig,
    pub status: Status,
    pub counter: Sig,
}

/// Power node.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Power {
    pub period_s: f64,
    pub bus_voltage: Sig,
    pub current: Sig,
    pub state_of_charge: Sig,
    pub status: Status,
    pub counter: Sig,
}

/// Pyro controller.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Pyro {
    pub arm: Sig,
    pub arm_key: Sig,
    pub arm_key_value: f64,
    pub fire_mask: Sig,
    pub command_counter: Sig,
    /// Channel name -> bit number (the names of [`PYRO_CHANNELS`]).
    pub channels: BTreeMap<String, u32>,
    pub status_period_s: f64,
    pub armed: Sig,
    pub continuity: Sig,
    pub fired: Sig,
    pub bus_voltage: Sig,
    pub status_counter: Sig,
    pub separation_switches: Sig,
}

impl Pyro {
    /// The bit of a channel by name (0 when the binding has none: never happens after
    /// [`Binding::resolve`] for the names of [`PYRO_CHANNELS`]).
    pub fn bit(&self, channel: &str) -> u32 {
        self.channels.get(channel).copied().unwrap_or(0)
    }
    /// The channel name of a bit (`spare<k>` for unbound bits).
    pub fn channel_name(&self, bit: u32) -> String {
        self.channels
            .iter()
            .find(|(_, b)| **b == bit)
            .map_or_else(|| format!("spare{bit}"), |(n, _)| n.clone())
    }
}

/// RCS valve driver.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Rcs {
    pub valves: Sig,
    pub isolate: Sig,
    pub command_counter: Sig,
    pub command_timeout_s: f64,
    pub thrusters: Vec<String>,
    pub status_period_s: f64,
    pub valve_state: Sig,
    pub tank_pressure: Sig,
    pub fault_mask: Sig,
    pub status_counter: Sig,
}

/// Deorbit motor controller.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Deorbit {
    pub thruster: String,
    pub ignite: Sig,
    pub cutoff: Sig,
    pub command_counter: Sig,
    pub status_period_s: f64,
    pub state: Sig,
    pub state_safe: f64,
    pub state_burning: f64,
    pub state_done: f64,
    pub chamber_pressure: Sig,
    pub burn_time: Sig,
    pub status_counter: Sig,
}

/// Recovery beacon.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Beacon {
    pub activate: Sig,
    pub command_counter: Sig,
    pub status_period_s: f64,
    pub active: Sig,
    pub tx_count: Sig,
    pub battery_voltage: Sig,
    pub status_counter: Sig,
}

/// The flight computer's messages.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Fc {
    pub node: String,
    pub mode: Sig,
    pub sequence: Sig,
    pub fault_flags: Sig,
    pub est_altitude: Sig,
    pub est_speed: Sig,
    pub nav_valid: Sig,
    pub gnss_fix: Sig,
    pub baro_valid: Sig,
    pub imu_valid: Sig,
    pub event_code: Sig,
    pub event_mode_from: Sig,
    pub event_mode_to: Sig,
    pub event_detail: Sig,
    pub event_time: Sig,
    pub sw_major: Sig,
    pub sw_minor: Sig,
    pub sw_patch: Sig,
    pub build_hash: Sig,
}

impl Fc {
    /// The heartbeat (status) message's identifier.
    pub fn status_id(&self) -> u32 {
        self.mode.id()
    }
    /// The event message's identifier.
    pub fn event_id(&self) -> u32 {
        self.event_code.id()
    }
    /// The identification message's identifier.
    pub fn ident_id(&self) -> u32 {
        self.sw_major.id()
    }
}

/// Host-vehicle state handover.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Handover {
    pub position: [Sig; 3],
    pub velocity: [Sig; 3],
    pub attitude: [Sig; 4],
    pub time: Sig,
    pub mode: Sig,
    pub sequence: Sig,
}

/// Mission data.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Mission {
    pub target_lat: Sig,
    pub target_lon: Sig,
    pub ignition_time: Sig,
    pub delta_v: Sig,
    pub burn_attitude: Sig,
}

/// Lockstep (simulation-only) messages.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Lockstep {
    pub tick_time: Sig,
    pub tick_step: Sig,
    pub sync_imu_bytes: Sig,
    pub sync_gnss_bytes: Sig,
    pub ack_time: Sig,
    pub ack_step: Sig,
    pub reset_duration: Sig,
}

/// A binding resolved against a DBC.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Binding {
    /// The binding file's name as given.
    pub source: String,
    pub baro: Baro,
    pub thermo: Thermo,
    pub power: Power,
    pub pyro: Pyro,
    pub rcs: Rcs,
    pub deorbit: Deorbit,
    pub beacon: Beacon,
    pub fc: Fc,
    pub handover: Handover,
    pub mission: Mission,
    pub lockstep: Lockstep,
    /// The IMU line and its datagram's layout (`[serial.imu]`).
    pub imu: Arc<crate::imu::ImuLayout>,
    /// The GNSS line (`[serial.gnss]`).
    pub gnss: crate::gnss::GnssLine,
}

/// What a bound signal must be.
#[derive(Clone, Copy)]
enum Need {
    /// A physical quantity, with the span of twin values its range must cover.
    Quantity(Dimension, Option<(f64, f64)>),
    /// An unsigned integer of at least this many bits (factor 1, offset 0).
    Integer(u32),
    /// A pure number (a quaternion component), any scaling.
    Scaled,
}

/// Which side sends a message.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// The twin (device emulators, host vehicle, lockstep source): not the FC node.
    Twin,
    /// The flight computer.
    Fc,
}

struct Resolver<'a> {
    db: &'a CanDb,
    fc_node: String,
    c: Checks,
    defs: BTreeMap<u32, Arc<MessageDef>>,
    /// Bound signals per message, and which field bound them.
    bound: BTreeMap<(u32, usize), String>,
    placeholder: Arc<MessageDef>,
}

impl<'a> Resolver<'a> {
    fn placeholder_sig(&self) -> Sig {
        Sig {
            message: self.placeholder.clone(),
            index: 0,
            factor: 1.0,
            offset: 0.0,
            dimension: Dimension::Number,
            unit: String::new(),
        }
    }

    fn find(&mut self, field: &str, name: &str) -> Option<(&'a MessageDef, usize)> {
        let db = self.db;
        if let Some((m, s)) = name.split_once('.') {
            let Some(def) = db.by_name(m) else {
                self.c
                    .fail(field, format!("no message `{m}` in the DBC {}", db.source));
                return None;
            };
            let Some(i) = def.signals.iter().position(|x| x.name == s) else {
                self.c.fail(
                    field,
                    format!(
                        "message `{m}` has no signal `{s}`; its signals: {}",
                        def.signals
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return None;
            };
            return Some((def, i));
        }
        let hits: Vec<_> = db
            .messages()
            .filter_map(|m| {
                m.signals
                    .iter()
                    .position(|x| x.name == name)
                    .map(|i| (m, i))
            })
            .collect();
        match hits.as_slice() {
            [one] => Some(*one),
            [] => {
                self.c.fail(
                    field,
                    format!("no signal `{name}` in the DBC {}", db.source),
                );
                None
            }
            many => {
                self.c.fail(
                    field,
                    format!(
                        "signal `{name}` is in {} messages ({}): write `Message.{name}`",
                        many.len(),
                        many.iter()
                            .map(|(m, _)| m.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                None
            }
        }
    }

    fn sig(&mut self, field: &str, spec: &SigSpec, need: Need, side: Side) -> Sig {
        self.sig_named(field, spec.name(), spec.unit(), need, side)
    }

    fn sig_named(
        &mut self,
        field: &str,
        name: &str,
        unit: Option<&str>,
        need: Need,
        side: Side,
    ) -> Sig {
        let Some((m, i)) = self.find(field, name) else {
            return self.placeholder_sig();
        };
        let d = &m.signals[i];
        let fc_sends = m.transmitter == self.fc_node;
        match side {
            Side::Fc if !fc_sends => self.c.fail(
                field,
                format!(
                    "`{}` is sent by {} in the DBC; this role is the flight computer's ({})",
                    m.name, m.transmitter, self.fc_node
                ),
            ),
            Side::Twin if fc_sends => self.c.fail(
                field,
                format!(
                    "`{}` is sent by the flight computer ({}) in the DBC; this role is the twin's",
                    m.name, self.fc_node
                ),
            ),
            _ => {}
        }
        if let Some(prev) = self.bound.insert((m.id, i), field.to_string()) {
            self.c.fail(
                field,
                format!("`{}.{}` is already bound by `{prev}`", m.name, d.name),
            );
        }
        let def = self
            .defs
            .entry(m.id)
            .or_insert_with(|| Arc::new(m.clone()))
            .clone();
        let (dimension, factor, offset, unit) = match need {
            Need::Quantity(dim, span) => {
                let unit = match (unit, d.unit.as_str()) {
                    (Some(b), w) if !w.is_empty() && b != w => {
                        self.c.fail(
                            field,
                            format!(
                                "the binding says `{b}` but the DBC gives `{}.{}` the unit `{w}`",
                                m.name, d.name
                            ),
                        );
                        b
                    }
                    (Some(b), _) => b,
                    (None, w) => w,
                };
                let Some((f, o)) = dim.conversion(unit) else {
                    self.c.fail(
                        field,
                        format!(
                            "`{}.{}` carries `{unit}`, not a unit the twin converts for this quantity (twin unit `{}`): one of {}{}",
                            m.name,
                            d.name,
                            dim.twin_unit(),
                            dim.unit_list(),
                            if unit.is_empty() { " (the DBC gives it no unit: add `unit = \"...\"`)" } else { "" }
                        ),
                    );
                    return self.placeholder_sig();
                };
                if let Some((lo, hi)) = span {
                    let (a, b) = ((d.min - o) / f, (d.max - o) / f);
                    let (rlo, rhi) = (a.min(b), a.max(b));
                    if rlo > lo || rhi < hi {
                        self.c.fail(
                            field,
                            format!(
                                "`{}.{}` spans [{rlo}, {rhi}] {}; the twin needs at least [{lo}, {hi}] {}",
                                m.name, d.name, dim.twin_unit(), dim.twin_unit()
                            ),
                        );
                    }
                }
                (dim, f, o, unit.to_string())
            }
            Need::Integer(bits) => {
                if d.factor != 1.0 || d.offset != 0.0 || d.signed {
                    self.c.fail(
                        field,
                        format!(
                            "`{}.{}` must be an unsigned integer (factor 1, offset 0); it has factor {}, offset {}{}",
                            m.name,
                            d.name,
                            d.factor,
                            d.offset,
                            if d.signed { ", signed" } else { "" }
                        ),
                    );
                }
                if d.size < bits {
                    self.c.fail(
                        field,
                        format!(
                            "`{}.{}` has {} bits; this role needs at least {bits}",
                            m.name, d.name, d.size
                        ),
                    );
                }
                (Dimension::Number, 1.0, 0.0, String::new())
            }
            Need::Scaled => (Dimension::Number, 1.0, 0.0, String::new()),
        };
        Sig {
            message: def,
            index: i,
            factor,
            offset,
            dimension,
            unit,
        }
    }

    fn status(&mut self, field: &str, s: &StatusFile, sensor: bool) -> Status {
        let sig = self.sig_named(
            &format!("{field}.signal"),
            &s.signal,
            None,
            Need::Integer(1),
            Side::Twin,
        );
        let top = sig.modulo() as f64;
        let mut val = |name: &str, v: Option<u32>| -> f64 {
            match v {
                Some(v) if f64::from(v) < top => f64::from(v),
                Some(v) => {
                    self.c.fail(
                        format!("{field}.{name}"),
                        format!("{v} does not fit the signal's {} values", top as u64),
                    );
                    0.0
                }
                None if sensor => {
                    self.c.fail(
                        format!("{field}.{name}"),
                        "a sensor's status needs `ok`, `out_of_range` and `fault` values",
                    );
                    0.0
                }
                None => f64::NAN,
            }
        };
        let ok = val("ok", Some(s.ok));
        let out_of_range = val("out_of_range", s.out_of_range);
        let fault = val("fault", s.fault);
        Status {
            sig,
            ok,
            out_of_range,
            fault,
        }
    }

    fn period(&mut self, field: &str, given: Option<f64>, of: &Sig) -> f64 {
        let ms = given.or_else(|| of.message().cycle_time_ms.filter(|&c| c > 0).map(f64::from));
        match ms {
            Some(ms) if ms.is_finite() && (1.0..=10_000.0).contains(&ms) => ms / 1000.0,
            Some(ms) => {
                self.c.fail(
                    field,
                    format!("expected a period in [1, 10000] ms, found {ms}"),
                );
                1.0
            }
            None => {
                self.c.fail(
                    field,
                    format!(
                        "no period: give `{}` or a GenMsgCycleTime for `{}` in the DBC",
                        field.rsplit('.').next().unwrap_or(field),
                        of.message().name
                    ),
                );
                1.0
            }
        }
    }

    /// Every message with a bound signal that the twin or the FC encodes: its other
    /// signals need a start value.
    fn check_unbound(&mut self) {
        let mut seen = BTreeSet::new();
        for &(id, _) in self.bound.keys() {
            if !seen.insert(id) {
                continue;
            }
            let Some(m) = self.defs.get(&id).cloned() else {
                continue;
            };
            for (i, d) in m.signals.iter().enumerate() {
                if !self.bound.contains_key(&(id, i)) && d.start_raw.is_none() {
                    let field = self
                        .bound
                        .range((id, 0)..(id, usize::MAX))
                        .next()
                        .map(|(_, f)| f.clone())
                        .unwrap_or_default();
                    self.c.fail(
                        field,
                        format!(
                            "message `{}` has signal `{}`, which the binding does not bind and the DBC gives no GenSigStartValue: the encoder would not know what to send",
                            m.name, d.name
                        ),
                    );
                }
            }
        }
    }
}

/// FC mode names by value (`FC_Mode`, `HV_Mode`, `FC_EventModeTo` in the shipped ICD):
/// the twin's vocabulary. A DBC value table on a bound mode signal must agree.
pub const FC_MODES: [&str; 9] = [
    "PRE_SEPARATION",
    "COAST",
    "DEORBIT_BURN",
    "ENTRY",
    "DROGUE",
    "MAIN",
    "SPLASHDOWN",
    "RECOVERY",
    "SAFE",
];

impl Binding {
    /// Parses a binding file and resolves it against `db`. Errors name the binding
    /// file, line, column and field.
    pub fn from_toml(src: &Source<'_>, db: &CanDb) -> Result<Self, ConfigError> {
        let f: BindingFile = src.parse()?;
        Self::resolve(&f, src, db)
    }

    /// Resolves a parsed binding against `db` (see the module documentation).
    pub fn resolve(f: &BindingFile, src: &Source<'_>, db: &CanDb) -> Result<Self, ConfigError> {
        use Need::{Integer as Int, Quantity as Q};
        use Side::{Fc as F, Twin as T};
        let mut r = Resolver {
            db,
            fc_node: f.fc.node.clone(),
            c: Checks::default(),
            defs: BTreeMap::new(),
            bound: BTreeMap::new(),
            placeholder: Arc::new(MessageDef {
                id: u32::MAX,
                name: String::new(),
                dlc: 8,
                transmitter: String::new(),
                cycle_time_ms: None,
                simulation_only: false,
                comment: None,
                signals: vec![SignalDef::placeholder()],
            }),
        };
        r.c.require(
            f.format_version == FORMAT_VERSION,
            "format_version",
            format!("this build reads format_version {FORMAT_VERSION}"),
        );
        r.c.require(
            db.messages().any(|m| m.transmitter == f.fc.node),
            "fc.node",
            format!("no message of the DBC is sent by `{}`", f.fc.node),
        );
        let p = Dimension::Pressure;
        let k = Dimension::Temperature;
        let v = Dimension::Voltage;
        let s = Dimension::Time;
        let m = Dimension::Length;
        let sp = Dimension::Speed;
        let deg = Dimension::Angle;
        let b = &f.baro;
        let baro = Baro {
            pressure: r.sig("baro.pressure", &b.pressure, Q(p, None), T),
            temperature: r.sig("baro.temperature", &b.temperature, Q(k, None), T),
            status: r.status("baro.status", &b.status, true),
            counter: r.sig("baro.counter", &b.counter, Int(1), T),
        };
        let t = &f.thermo;
        let span_k = Some((250.0, 2500.0));
        let thermo = Thermo {
            heat_shield: r.sig("thermo.heat_shield", &t.heat_shield, Q(k, span_k), T),
            bondline: r.sig("thermo.bondline", &t.bondline, Q(k, None), T),
            backshell: r.sig("thermo.backshell", &t.backshell, Q(k, None), T),
            status: r.status("thermo.status", &t.status, false),
            counter: r.sig("thermo.counter", &t.counter, Int(1), T),
        };
        let pw = &f.power;
        let bus_voltage = r.sig(
            "power.bus_voltage",
            &pw.bus_voltage,
            Q(v, Some((0.0, 34.0))),
            T,
        );
        let power = Power {
            period_s: r.period("power.period_ms", pw.period_ms, &bus_voltage),
            bus_voltage,
            current: r.sig("power.current", &pw.current, Q(Dimension::Current, None), T),
            state_of_charge: r.sig(
                "power.state_of_charge",
                &pw.state_of_charge,
                Q(Dimension::Fraction, Some((0.0, 1.0))),
                T,
            ),
            status: r.status("power.status", &pw.status, false),
            counter: r.sig("power.counter", &pw.counter, Int(1), T),
        };
        let py = &f.pyro;
        let max_bit = py.channels.values().copied().max().unwrap_or(0);
        for name in PYRO_CHANNELS {
            r.c.require(
                py.channels.contains_key(name),
                "pyro.channels",
                format!(
                    "channel `{name}` has no bit (channels: {})",
                    PYRO_CHANNELS.join(", ")
                ),
            );
        }
        let mut bits_seen = BTreeSet::new();
        for (name, bit) in &py.channels {
            r.c.require(
                PYRO_CHANNELS.contains(&name.as_str()),
                format!("pyro.channels.{name}"),
                format!("unknown channel (channels: {})", PYRO_CHANNELS.join(", ")),
            );
            r.c.require(
                *bit < 32 && bits_seen.insert(*bit),
                format!("pyro.channels.{name}"),
                format!("bit {bit} is taken or beyond 31"),
            );
        }
        let arm_key = r.sig_named("pyro.arm_key.signal", &py.arm_key.signal, None, Int(1), F);
        r.c.require(
            (f64::from(py.arm_key.value)) < arm_key.modulo() as f64,
            "pyro.arm_key.value",
            format!("{} does not fit the key signal", py.arm_key.value),
        );
        let mask = Int(max_bit + 1);
        let armed = r.sig("pyro.armed", &py.armed, Int(1), T);
        let pyro = Pyro {
            arm: r.sig("pyro.arm", &py.arm, Int(1), F),
            arm_key,
            arm_key_value: f64::from(py.arm_key.value),
            fire_mask: r.sig("pyro.fire_mask", &py.fire_mask, mask, F),
            command_counter: r.sig("pyro.command_counter", &py.command_counter, Int(1), F),
            channels: py.channels.clone(),
            status_period_s: r.period("pyro.status_period_ms", py.status_period_ms, &armed),
            armed,
            continuity: r.sig("pyro.continuity", &py.continuity, mask, T),
            fired: r.sig("pyro.fired", &py.fired, mask, T),
            bus_voltage: r.sig(
                "pyro.bus_voltage",
                &py.bus_voltage,
                Q(v, Some((0.0, 34.0))),
                T,
            ),
            status_counter: r.sig("pyro.status_counter", &py.status_counter, Int(1), T),
            separation_switches: r.sig(
                "pyro.separation_switches",
                &py.separation_switches,
                Int(2),
                T,
            ),
        };
        let rc = &f.rcs;
        let jets = Int(rc.thrusters.len().max(1) as u32);
        r.c.require(
            !rc.thrusters.is_empty() && rc.thrusters.len() <= 32,
            "rcs.thrusters",
            "expected 1 to 32 thruster names",
        );
        r.c.in_range(
            "rcs.command_timeout_ms",
            rc.command_timeout_ms,
            1.0,
            10_000.0,
            "ms",
        );
        let valve_state = r.sig("rcs.valve_state", &rc.valve_state, jets, T);
        let rcs = Rcs {
            valves: r.sig("rcs.valves", &rc.valves, jets, F),
            isolate: r.sig("rcs.isolate", &rc.isolate, jets, F),
            command_counter: r.sig("rcs.command_counter", &rc.command_counter, Int(1), F),
            command_timeout_s: rc.command_timeout_ms / 1000.0,
            thrusters: rc.thrusters.clone(),
            status_period_s: r.period("rcs.status_period_ms", rc.status_period_ms, &valve_state),
            valve_state,
            tank_pressure: r.sig(
                "rcs.tank_pressure",
                &rc.tank_pressure,
                Q(p, Some((0.0, 20e6))),
                T,
            ),
            fault_mask: r.sig("rcs.fault_mask", &rc.fault_mask, jets, T),
            status_counter: r.sig("rcs.status_counter", &rc.status_counter, Int(1), T),
        };
        let d = &f.deorbit;
        let state = r.sig_named("deorbit.state.signal", &d.state.signal, None, Int(2), T);
        for (name, val) in [
            ("safe", d.state.safe),
            ("burning", d.state.burning),
            ("done", d.state.done),
        ] {
            r.c.require(
                f64::from(val) < state.modulo() as f64,
                format!("deorbit.state.{name}"),
                format!("{val} does not fit the state signal"),
            );
        }
        let deorbit = Deorbit {
            thruster: d.thruster.clone(),
            ignite: r.sig("deorbit.ignite", &d.ignite, Int(1), F),
            cutoff: r.sig("deorbit.cutoff", &d.cutoff, Int(1), F),
            command_counter: r.sig("deorbit.command_counter", &d.command_counter, Int(1), F),
            status_period_s: r.period("deorbit.status_period_ms", d.status_period_ms, &state),
            state,
            state_safe: f64::from(d.state.safe),
            state_burning: f64::from(d.state.burning),
            state_done: f64::from(d.state.done),
            chamber_pressure: r.sig(
                "deorbit.chamber_pressure",
                &d.chamber_pressure,
                Q(p, Some((0.0, 1.5e6))),
                T,
            ),
            burn_time: r.sig(
                "deorbit.burn_time",
                &d.burn_time,
                Q(s, Some((0.0, 300.0))),
                T,
            ),
            status_counter: r.sig("deorbit.status_counter", &d.status_counter, Int(1), T),
        };
        let be = &f.beacon;
        let active = r.sig("beacon.active", &be.active, Int(1), T);
        let beacon = Beacon {
            activate: r.sig("beacon.activate", &be.activate, Int(1), F),
            command_counter: r.sig("beacon.command_counter", &be.command_counter, Int(1), F),
            status_period_s: r.period("beacon.status_period_ms", be.status_period_ms, &active),
            active,
            tx_count: r.sig("beacon.tx_count", &be.tx_count, Int(1), T),
            battery_voltage: r.sig(
                "beacon.battery_voltage",
                &be.battery_voltage,
                Q(v, Some((0.0, 12.6))),
                T,
            ),
            status_counter: r.sig("beacon.status_counter", &be.status_counter, Int(1), T),
        };
        let fc = &f.fc;
        let modes = Int(4);
        let fcb = Fc {
            node: fc.node.clone(),
            mode: r.sig("fc.mode", &fc.mode, modes, F),
            sequence: r.sig("fc.sequence", &fc.sequence, Int(1), F),
            fault_flags: r.sig("fc.fault_flags", &fc.fault_flags, Int(14), F),
            est_altitude: r.sig(
                "fc.est_altitude",
                &fc.est_altitude,
                Q(m, Some((0.0, 150_000.0))),
                F,
            ),
            est_speed: r.sig(
                "fc.est_speed",
                &fc.est_speed,
                Q(sp, Some((0.0, 8_000.0))),
                F,
            ),
            nav_valid: r.sig("fc.nav_valid", &fc.nav_valid, Int(1), F),
            gnss_fix: r.sig("fc.gnss_fix", &fc.gnss_fix, Int(1), F),
            baro_valid: r.sig("fc.baro_valid", &fc.baro_valid, Int(1), F),
            imu_valid: r.sig("fc.imu_valid", &fc.imu_valid, Int(1), F),
            event_code: r.sig("fc.event_code", &fc.event_code, Int(8), F),
            event_mode_from: r.sig("fc.event_mode_from", &fc.event_mode_from, modes, F),
            event_mode_to: r.sig("fc.event_mode_to", &fc.event_mode_to, modes, F),
            event_detail: r.sig("fc.event_detail", &fc.event_detail, Int(16), F),
            event_time: r.sig(
                "fc.event_time",
                &fc.event_time,
                Q(s, Some((0.0, 100_000.0))),
                F,
            ),
            sw_major: r.sig("fc.sw_major", &fc.sw_major, Int(8), F),
            sw_minor: r.sig("fc.sw_minor", &fc.sw_minor, Int(8), F),
            sw_patch: r.sig("fc.sw_patch", &fc.sw_patch, Int(8), F),
            build_hash: r.sig("fc.build_hash", &fc.build_hash, Int(32), F),
        };
        for (field, sig) in [
            ("fc.mode", &fcb.mode),
            ("fc.event_mode_to", &fcb.event_mode_to),
        ] {
            check_modes(&mut r.c, field, sig);
        }
        let fc = fcb;
        let h = &f.handover;
        let pos = Q(m, Some((-8.0e6, 8.0e6)));
        let vel = Q(sp, Some((-8.5e3, 8.5e3)));
        let handover = Handover {
            position: std::array::from_fn(|i| {
                r.sig(&format!("handover.position[{i}]"), &h.position[i], pos, T)
            }),
            velocity: std::array::from_fn(|i| {
                r.sig(&format!("handover.velocity[{i}]"), &h.velocity[i], vel, T)
            }),
            attitude: std::array::from_fn(|i| {
                r.sig(
                    &format!("handover.attitude[{i}]"),
                    &h.attitude[i],
                    Need::Scaled,
                    T,
                )
            }),
            time: r.sig("handover.time", &h.time, Q(s, Some((0.0, 100_000.0))), T),
            mode: r.sig("handover.mode", &h.mode, modes, T),
            sequence: r.sig("handover.sequence", &h.sequence, Int(4), T),
        };
        check_modes(&mut r.c, "handover.mode", &handover.mode);
        // The message holding the time completes the set: it must carry nothing of the
        // position, velocity or attitude (those are sent first).
        let time_id = handover.time.id();
        r.c.require(
            handover
                .position
                .iter()
                .chain(&handover.velocity)
                .chain(&handover.attitude)
                .all(|s| s.id() != time_id),
            "handover.time",
            "the time's message completes the set: it must not carry position, velocity or attitude",
        );
        let mi = &f.mission;
        let mission = Mission {
            target_lat: r.sig(
                "mission.target_lat",
                &mi.target_lat,
                Q(deg, Some((-90.0, 90.0))),
                T,
            ),
            target_lon: r.sig(
                "mission.target_lon",
                &mi.target_lon,
                Q(deg, Some((-180.0, 180.0))),
                T,
            ),
            ignition_time: r.sig(
                "mission.ignition_time",
                &mi.ignition_time,
                Q(s, Some((0.0, 100_000.0))),
                T,
            ),
            delta_v: r.sig("mission.delta_v", &mi.delta_v, Q(sp, Some((0.0, 300.0))), T),
            burn_attitude: r.sig("mission.burn_attitude", &mi.burn_attitude, Int(1), T),
        };
        let l = &f.lockstep;
        let lockstep = Lockstep {
            tick_time: r.sig(
                "lockstep.tick_time",
                &l.tick_time,
                Q(s, Some((0.0, 100_000.0))),
                T,
            ),
            tick_step: r.sig("lockstep.tick_step", &l.tick_step, Int(8), T),
            sync_imu_bytes: r.sig("lockstep.sync_imu_bytes", &l.sync_imu_bytes, Int(32), T),
            sync_gnss_bytes: r.sig("lockstep.sync_gnss_bytes", &l.sync_gnss_bytes, Int(32), T),
            ack_time: r.sig(
                "lockstep.ack_time",
                &l.ack_time,
                Q(s, Some((0.0, 100_000.0))),
                F,
            ),
            ack_step: r.sig("lockstep.ack_step", &l.ack_step, Int(8), F),
            reset_duration: r.sig(
                "lockstep.reset_duration",
                &l.reset_duration,
                Q(s, Some((0.0, 60.0))),
                T,
            ),
        };
        for (field, a, b) in [
            (
                "lockstep.tick_step",
                &lockstep.tick_time,
                &lockstep.tick_step,
            ),
            ("lockstep.ack_step", &lockstep.ack_time, &lockstep.ack_step),
            (
                "lockstep.sync_gnss_bytes",
                &lockstep.sync_imu_bytes,
                &lockstep.sync_gnss_bytes,
            ),
        ] {
            r.c.require(
                a.id() == b.id(),
                field,
                format!("must be in the same message as `{}`", a.path()),
            );
        }
        r.c.require(
            lockstep.tick_step.def().size == lockstep.ack_step.def().size,
            "lockstep.ack_step",
            "must have as many bits as the tick's step",
        );
        r.check_unbound();
        let (imu, gnss) = serial::resolve(f.serial.as_ref(), &mut r.c);
        r.c.finish(src)?;
        Ok(Binding {
            source: src.name.to_string(),
            baro,
            thermo,
            power,
            pyro,
            rcs,
            deorbit,
            beacon,
            fc,
            handover,
            mission,
            lockstep,
            imu,
            gnss,
        })
    }

    /// Every message the twin sends as a device node, with the node's name (`baro`,
    /// `thermo`, `power`, `pyro`, `rcs`, `deorbit`, `beacon`), for silencing nodes.
    pub fn device_messages(&self) -> Vec<(u32, &'static str)> {
        let mut v = vec![
            (self.baro.pressure.id(), "baro"),
            (self.baro.temperature.id(), "baro"),
            (self.baro.status.sig.id(), "baro"),
            (self.baro.counter.id(), "baro"),
            (self.thermo.heat_shield.id(), "thermo"),
            (self.thermo.bondline.id(), "thermo"),
            (self.thermo.backshell.id(), "thermo"),
            (self.power.bus_voltage.id(), "power"),
            (self.pyro.armed.id(), "pyro"),
            (self.pyro.continuity.id(), "pyro"),
            (self.pyro.fired.id(), "pyro"),
            (self.rcs.valve_state.id(), "rcs"),
            (self.rcs.tank_pressure.id(), "rcs"),
            (self.deorbit.state.id(), "deorbit"),
            (self.deorbit.burn_time.id(), "deorbit"),
            (self.beacon.active.id(), "beacon"),
            (self.beacon.tx_count.id(), "beacon"),
        ];
        v.sort();
        v.dedup();
        v
    }

    /// Every bound signal by role name (`baro.pressure`, `fc.est_altitude`,
    /// `handover.position[0]`...), in the binding file's order.
    pub fn roles(&self) -> Vec<(String, &Sig)> {
        let mut v: Vec<(String, &Sig)> = Vec::new();
        let (b, t, p, py, r, d, be, fc, h, m, l) = (
            &self.baro,
            &self.thermo,
            &self.power,
            &self.pyro,
            &self.rcs,
            &self.deorbit,
            &self.beacon,
            &self.fc,
            &self.handover,
            &self.mission,
            &self.lockstep,
        );
        let named: [(&str, &Sig); 73] = [
            ("baro.pressure", &b.pressure),
            ("baro.temperature", &b.temperature),
            ("baro.status", &b.status.sig),
            ("baro.counter", &b.counter),
            ("thermo.heat_shield", &t.heat_shield),
            ("thermo.bondline", &t.bondline),
            ("thermo.backshell", &t.backshell),
            ("thermo.status", &t.status.sig),
            ("thermo.counter", &t.counter),
            ("power.bus_voltage", &p.bus_voltage),
            ("power.current", &p.current),
            ("power.state_of_charge", &p.state_of_charge),
            ("power.status", &p.status.sig),
            ("power.counter", &p.counter),
            ("pyro.arm", &py.arm),
            ("pyro.arm_key", &py.arm_key),
            ("pyro.fire_mask", &py.fire_mask),
            ("pyro.command_counter", &py.command_counter),
            ("pyro.armed", &py.armed),
            ("pyro.continuity", &py.continuity),
            ("pyro.fired", &py.fired),
            ("pyro.bus_voltage", &py.bus_voltage),
            ("pyro.status_counter", &py.status_counter),
            ("pyro.separation_switches", &py.separation_switches),
            ("rcs.valves", &r.valves),
            ("rcs.isolate", &r.isolate),
            ("rcs.command_counter", &r.command_counter),
            ("rcs.valve_state", &r.valve_state),
            ("rcs.tank_pressure", &r.tank_pressure),
            ("rcs.fault_mask", &r.fault_mask),
            ("rcs.status_counter", &r.status_counter),
            ("deorbit.ignite", &d.ignite),
            ("deorbit.cutoff", &d.cutoff),
            ("deorbit.command_counter", &d.command_counter),
            ("deorbit.state", &d.state),
            ("deorbit.chamber_pressure", &d.chamber_pressure),
            ("deorbit.burn_time", &d.burn_time),
            ("deorbit.status_counter", &d.status_counter),
            ("beacon.activate", &be.activate),
            ("beacon.command_counter", &be.command_counter),
            ("beacon.active", &be.active),
            ("beacon.tx_count", &be.tx_count),
            ("beacon.battery_voltage", &be.battery_voltage),
            ("beacon.status_counter", &be.status_counter),
            ("fc.mode", &fc.mode),
            ("fc.sequence", &fc.sequence),
            ("fc.fault_flags", &fc.fault_flags),
            ("fc.est_altitude", &fc.est_altitude),
            ("fc.est_speed", &fc.est_speed),
            ("fc.nav_valid", &fc.nav_valid),
            ("fc.gnss_fix", &fc.gnss_fix),
            ("fc.baro_valid", &fc.baro_valid),
            ("fc.imu_valid", &fc.imu_valid),
            ("fc.event_code", &fc.event_code),
            ("fc.event_mode_from", &fc.event_mode_from),
            ("fc.event_mode_to", &fc.event_mode_to),
            ("fc.event_detail", &fc.event_detail),
            ("fc.event_time", &fc.event_time),
            ("fc.sw_major", &fc.sw_major),
            ("fc.sw_minor", &fc.sw_minor),
            ("fc.sw_patch", &fc.sw_patch),
            ("fc.build_hash", &fc.build_hash),
            ("handover.time", &h.time),
            ("handover.mode", &h.mode),
            ("handover.sequence", &h.sequence),
            ("mission.target_lat", &m.target_lat),
            ("mission.target_lon", &m.target_lon),
            ("mission.ignition_time", &m.ignition_time),
            ("mission.delta_v", &m.delta_v),
            ("mission.burn_attitude", &m.burn_attitude),
            ("lockstep.tick_time", &l.tick_time),
            ("lockstep.ack_time", &l.ack_time),
            ("lockstep.reset_duration", &l.reset_duration),
        ];
        v.extend(named.iter().map(|(n, s)| (n.to_string(), *s)));
        for (k, s) in h.position.iter().enumerate() {
            v.push((format!("handover.position[{k}]"), s));
        }
        for (k, s) in h.velocity.iter().enumerate() {
            v.push((format!("handover.velocity[{k}]"), s));
        }
        for (k, s) in h.attitude.iter().enumerate() {
            v.push((format!("handover.attitude[{k}]"), s));
        }
        for (n, s) in [
            ("lockstep.tick_step", &l.tick_step),
            ("lockstep.sync_imu_bytes", &l.sync_imu_bytes),
            ("lockstep.sync_gnss_bytes", &l.sync_gnss_bytes),
            ("lockstep.ack_step", &l.ack_step),
        ] {
            v.push((n.to_string(), s));
        }
        v
    }

    /// A bound signal by role name (see [`Binding::roles`]).
    pub fn role(&self, name: &str) -> Option<&Sig> {
        self.roles()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// The flight computer's messages by role: `fc.status` (the heartbeat),
    /// `fc.event`, `fc.ident`.
    pub fn message_role(&self, name: &str) -> Option<&MessageDef> {
        match name {
            "fc.status" => Some(self.fc.mode.message()),
            "fc.event" => Some(self.fc.event_code.message()),
            "fc.ident" => Some(self.fc.sw_major.message()),
            _ => None,
        }
    }

    /// The lockstep acknowledgement's identifier.
    pub fn ack_id(&self) -> u32 {
        self.lockstep.ack_time.id()
    }
}

/// A mode signal's value table (if the DBC has one) must name the twin's modes.
fn check_modes(c: &mut Checks, field: &str, sig: &Sig) {
    for (v, name) in &sig.def().values {
        let expected = usize::try_from(*v).ok().and_then(|i| FC_MODES.get(i));
        c.require(
            expected == Some(&name.as_str()),
            field,
            format!(
                "`{}` value {v} is `{name}` in the DBC; the twin's modes are {}",
                sig.path(),
                FC_MODES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}
