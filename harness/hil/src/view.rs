//! The twin view's feed: turns a run's view stream (twin snapshots at 60 Hz, events,
//! CAN frames, link counters) into the twin snapshot stream (`twin-stream`) that
//! viewers read, live over a Unix socket, and judges the expectations on what the run
//! has shown so far.
//!
//! Everything here runs on the feed's own thread: the loop only puts records on a
//! queue that never waits ([`capsule_runner::tap::Tap`]), and the publisher never
//! waits for a viewer. A viewer that is slow, stuck, killed or never there changes
//! nothing in the run.

use crate::assemble::Loaded;
use anyhow::{Context, Result};
use capsule_icd::Icd;
use capsule_links::Packet;
use capsule_runner::record::{EndReason, FrameRecord, LinkCounters, MODE_NAMES, RunRecord};
use capsule_runner::tap::{Dir, Tap, TapRecord};
use capsule_scenario::eval::{ScenarioResult, evaluate};
use glam::{DQuat, DVec3};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use twin_core::planet::Planet;
use twin_stream::{
    Avionics, Chute, End, ExpectationInfo, ExpectationState, ExpectationStatus, Header, LinkHealth,
    Publisher, PublisherStats, Record, Snapshot, Thruster,
};

/// Lines queued per viewer: 10 s of snapshots.
pub const VIEWER_QUEUE_LINES: usize = 600;

/// How often the expectations are judged on the run so far (wall time).
const JUDGE_EVERY: Duration = Duration::from_secs(1);

/// The header of scenario `l`'s stream.
pub fn header(l: &Loaded, clock: &str, source: &str) -> Header {
    let s = &l.scenario;
    let mut h = Header::new(&s.scenario.id, &s.scenario.title, clock, source);
    h.planet_radius_m = Planet::wgs84().equatorial_radius_m;
    h.target_deg = s.initial.target.map(|t| (t.latitude_deg, t.longitude_deg));
    h.capsule_diameter_m = l.vehicle.geometry.reference_diameter_m;
    h.expectations = s
        .expect
        .iter()
        .map(|x| ExpectationInfo {
            id: x.id.clone(),
            requirement: x.requirement.clone(),
        })
        .collect();
    h.injections = s
        .injections()
        .iter()
        .filter_map(|i| match i.trigger {
            capsule_runner::inject::Trigger::At(t) => {
                Some((t, i.duration_s.map(|d| t + d), i.id.clone()))
            }
            _ => None,
        })
        .collect();
    h
}

/// What the view knows of the run so far, built from its records.
pub struct ViewState {
    planet: Planet,
    thrusters: Vec<(String, [f64; 3], [f64; 3])>,
    avionics: Avionics,
    links: Vec<LinkHealth>,
    last_rx_s: Option<f64>,
    active: BTreeSet<String>,
    /// The ICD binding (the avionics' status signals).
    binding: std::sync::Arc<capsule_icd::binding::Binding>,
    /// The run so far, for judging (frames, events, a snapshot per 0.1 s).
    partial: RunRecord,
    last_partial_s: f64,
    /// Expectation states to send with the next snapshot.
    pending_states: Vec<ExpectationStatus>,
}

impl ViewState {
    /// A view of a run of `l`.
    pub fn new(l: &Loaded, db: &Icd) -> Self {
        Self {
            planet: Planet::wgs84(),
            thrusters: l
                .vehicle
                .thrusters
                .iter()
                .map(|t| (t.name.clone(), t.direction, t.position_m))
                .collect(),
            avionics: Avionics::default(),
            links: Vec::new(),
            last_rx_s: None,
            active: BTreeSet::new(),
            binding: db.binding.clone(),
            partial: RunRecord {
                clock: String::new(),
                frames: Vec::new(),
                events: Vec::new(),
                contact: None,
                snapshots: Vec::new(),
                end: EndReason::MaxTime,
                t_end_s: 0.0,
                serial_bytes: (0, 0),
                peaks: Default::default(),
                named_events: Vec::new(),
                injections: Vec::new(),
                faults_injected: Default::default(),
                timing: None,
                links: LinkCounters::default(),
            },
            last_partial_s: f64::NEG_INFINITY,
            pending_states: Vec::new(),
        }
    }

    /// The avionics' status message, decoded: `get` gives a value by the binding's
    /// role (`fc.mode`, `fc.est_altitude`...), in the twin's units.
    pub fn on_fc_status(&mut self, t_s: f64, get: impl Fn(&str) -> Option<f64>) {
        let a = &mut self.avionics;
        if let Some(m) = get("fc.mode") {
            a.mode = Some(
                MODE_NAMES
                    .get(m as usize)
                    .map_or_else(|| format!("mode {m}"), |n| (*n).to_string()),
            );
        }
        a.est_altitude_m = get("fc.est_altitude").or(a.est_altitude_m);
        a.est_speed_m_s = get("fc.est_speed").or(a.est_speed_m_s);
        a.nav_valid = get("fc.nav_valid").map(|v| v != 0.0).or(a.nav_valid);
        a.gnss_fix = get("fc.gnss_fix").map(|v| v != 0.0).or(a.gnss_fix);
        a.fault_flags = get("fc.fault_flags").map(|v| v as u32).or(a.fault_flags);
        a.last_status_t_s = Some(t_s);
    }

    /// A named event.
    pub fn on_event(&mut self, t_s: f64, name: &str) {
        if let Some(id) = name.strip_prefix("inject:") {
            self.active.insert(id.to_string());
        } else if let Some(id) = name.strip_prefix("inject_end:") {
            self.active.remove(id);
        }
        if !name.starts_with("inject_end:") {
            self.partial.named_events.push((t_s, name.to_string()));
        }
    }

    /// A CAN frame on the wire (`Rx`: from the avionics).
    fn on_can(&mut self, t_s: f64, dir: Dir, packet: &Packet) {
        let Packet::Frame(f) = packet else {
            return;
        };
        let from_fc = dir == Dir::Rx;
        if from_fc {
            self.last_rx_s = Some(t_s);
            let fc = &self.binding.fc;
            if f.id == fc.status_id() && f.dlc >= fc.mode.message().dlc {
                let b = self.binding.clone();
                let frame = *f;
                self.on_fc_status(t_s, |role| b.role(role).map(|s| s.read(&frame)));
            }
        }
        self.partial.frames.push(FrameRecord {
            t_s,
            from_fc,
            frame: *f,
        });
    }

    fn on_counters(&mut self, t_s: f64, c: &LinkCounters) {
        self.links = c
            .links
            .iter()
            .map(|(name, s)| LinkHealth {
                name: name.clone(),
                tx: s.tx_packets,
                rx: s.rx_packets,
                errors: s.crc_errors + s.framing_errors,
                drops: s.drops + s.rx_dropped,
                silent_s: if name == "can" {
                    self.last_rx_s.map(|r| (t_s - r).max(0.0))
                } else {
                    None
                },
            })
            .collect();
    }

    /// The twin's state as a viewer draws it (and kept for judging).
    pub fn snapshot(&mut self, s: &twin_core::twin::Snapshot) -> Snapshot {
        if s.t_s >= self.last_partial_s + 0.1 {
            self.last_partial_s = s.t_s;
            self.partial.snapshots.push(s.clone());
            self.partial.t_end_s = s.t_s;
        }
        let ecef_from_eci = self.planet.ecef_from_eci(s.t_s);
        let r_eci = DVec3::from_array(s.position_eci_m);
        let v_eci = DVec3::from_array(s.velocity_eci_m_s);
        let r = ecef_from_eci * r_eci;
        let v = ecef_from_eci * (v_eci - self.planet.omega_eci().cross(r_eci));
        let q_eci = DQuat::from_array(s.eci_from_body_xyzw).normalize();
        let q = (DQuat::from_mat3(&ecef_from_eci) * q_eci).normalize();
        let a = &self.avionics;
        Snapshot {
            t_s: s.t_s,
            phase: format!("{:?}", s.phase).to_lowercase(),
            position_ecef_m: r.to_array(),
            velocity_ecef_m_s: v.to_array(),
            ecef_from_body_xyzw: q.to_array(),
            latitude_deg: s.latitude_deg,
            longitude_deg: s.longitude_deg,
            altitude_m: s.altitude_m,
            airspeed_m_s: s.airspeed_m_s,
            mach: s.mach,
            dynamic_pressure_pa: s.dynamic_pressure_pa,
            load_factor_g: s.load_factor_g,
            heat_flux_w_m2: s.heat_flux_w_m2,
            heat_shield_surface_k: s.heat_shield_surface_k,
            bank_deg: s.bank_deg,
            parachutes: s
                .parachutes
                .iter()
                .map(|(name, phase, area)| Chute {
                    name: name.clone(),
                    phase: format!("{phase:?}").to_lowercase(),
                    drag_area_m2: *area,
                })
                .collect(),
            thrusters: s
                .thrusters
                .iter()
                .enumerate()
                .map(|(k, th)| {
                    let (name, d, p) =
                        self.thrusters.get(k).cloned().unwrap_or_else(|| {
                            (format!("thruster {k}"), [1.0, 0.0, 0.0], [0.0; 3])
                        });
                    Thruster {
                        name,
                        throttle: *th,
                        direction_body: d,
                        position_body_m: p,
                    }
                })
                .collect(),
            gnss_blackout: a.gnss_fix == Some(false)
                || self.active.iter().any(|i| i.contains("gnss")),
            avionics: a.clone(),
            links: self.links.clone(),
            active_injections: self.active.iter().cloned().collect(),
            expectations: std::mem::take(&mut self.pending_states),
        }
    }

    /// Judges the expectations on the run so far; the states go with the next
    /// snapshot.
    pub fn judge(&mut self, l: &Loaded, db: &Icd) {
        let r = evaluate(&l.scenario, &self.partial, db);
        self.pending_states = r
            .expectations
            .iter()
            .filter(|e| l.scenario.expect.iter().any(|x| x.id == e.id))
            .map(|e| ExpectationStatus {
                id: e.id.clone(),
                state: if e.passed {
                    ExpectationState::Holding
                } else {
                    ExpectationState::Pending
                },
                measured: e.measured.clone(),
            })
            .collect();
    }
}

/// The final record of a judged run (or of one that ended in error).
pub fn end_record(t_s: f64, result: Option<&ScenarioResult>, verdict: &str) -> Record {
    Record::End(End {
        t_s,
        verdict: result.map_or_else(|| verdict.to_string(), |r| r.verdict.to_string()),
        expectations: result
            .map(|r| {
                r.expectations
                    .iter()
                    .map(|e| ExpectationStatus {
                        id: e.id.clone(),
                        state: if e.passed {
                            ExpectationState::Passed
                        } else {
                            ExpectationState::Failed
                        },
                        measured: e.measured.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A live feed: the view stream's receiving end on a thread of its own, publishing to
/// viewers on a Unix socket.
pub struct ViewFeed {
    tap: Option<Tap>,
    thread: Option<JoinHandle<(Publisher, f64)>>,
    /// The socket viewers connect to.
    pub socket: PathBuf,
}

impl ViewFeed {
    /// Starts a feed of a run of `l` on `socket`.
    pub fn start(l: &Loaded, db: &Icd, socket: &Path, clock: &str) -> Result<Self> {
        let publisher = Publisher::bind(socket, VIEWER_QUEUE_LINES)
            .with_context(|| "cannot open the twin view's socket".to_string())?;
        publisher.publish(&Record::Header(header(l, clock, "live")));
        let (tap, rx) = Tap::bounded(8192);
        let tap = tap.with_sample_every(1.0 / twin_stream::SNAPSHOT_RATE_HZ);
        let (l, db) = (l.clone(), db.clone());
        let thread = std::thread::Builder::new()
            .name("hil-view-feed".into())
            .spawn(move || feed(&l, &db, &rx, publisher))
            .context("cannot start the twin view's feed")?;
        Ok(Self {
            tap: Some(tap),
            thread: Some(thread),
            socket: socket.to_path_buf(),
        })
    }

    /// The view stream's sending end, for the run's configuration.
    pub fn tap(&self) -> Option<Tap> {
        self.tap.clone()
    }

    /// Records the loop could not queue (the feed fell behind).
    pub fn dropped(&self) -> u64 {
        self.tap.as_ref().map_or(0, Tap::dropped)
    }

    /// Ends the feed once the run is over: publishes the verdicts and closes the
    /// socket.
    pub fn finish(mut self, result: Option<&ScenarioResult>, verdict: &str) -> PublisherStats {
        self.tap = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok((p, t_s))) => {
                p.publish(&end_record(t_s, result, verdict));
                p.close()
            }
            _ => PublisherStats::default(),
        }
    }
}

fn feed(
    l: &Loaded,
    db: &Icd,
    rx: &Receiver<Vec<TapRecord>>,
    publisher: Publisher,
) -> (Publisher, f64) {
    let mut st = ViewState::new(l, db);
    let mut last_judged = Instant::now();
    let mut t_last = 0.0;
    // The channel closes when the run's configuration and the feed's own handle are
    // gone: after the run.
    loop {
        let batch = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for r in &batch {
            match r {
                TapRecord::Sample(s) => {
                    if last_judged.elapsed() >= JUDGE_EVERY {
                        last_judged = Instant::now();
                        st.judge(l, db);
                    }
                    t_last = s.t_s;
                    publisher.publish(&Record::Snapshot(Box::new(st.snapshot(s))));
                }
                TapRecord::Event { t_s, name } => {
                    st.on_event(*t_s, name);
                    publisher.publish(&Record::Event {
                        t_s: *t_s,
                        name: name.clone(),
                    });
                }
                TapRecord::Wire {
                    t_s, dir, packet, ..
                } => st.on_can(*t_s, *dir, packet),
                TapRecord::Counters { t_s, links } => st.on_counters(*t_s, links),
            }
        }
    }
    (publisher, t_last)
}

impl std::fmt::Debug for ViewFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewFeed")
            .field("socket", &self.socket)
            .finish()
    }
}

/// `/truth/state` of a bundle's telemetry, as written (`f32` where single precision
/// is plenty).
#[derive(serde::Deserialize)]
struct TruthMsg {
    t_s: f64,
    #[serde(default)]
    step: u64,
    phase: twin_core::twin::TruthPhase,
    altitude_m: f64,
    latitude_deg: f64,
    longitude_deg: f64,
    airspeed_m_s: f64,
    mach: f64,
    dynamic_pressure_pa: f64,
    load_factor_g: f64,
    heat_flux_w_m2: f64,
    heat_load_j_m2: f64,
    heat_shield_surface_k: f64,
    bondline_k: f64,
    backshell_k: f64,
    bank_deg: f64,
    alpha_deg: f64,
    mass_kg: f64,
    position_eci_m: [f64; 3],
    velocity_eci_m_s: [f64; 3],
    eci_from_body_xyzw: [f64; 4],
    rate_body_rad_s: [f64; 3],
    thrusters: Vec<f64>,
    parachutes: std::collections::BTreeMap<String, ChuteMsg>,
}

#[derive(serde::Deserialize)]
struct ChuteMsg {
    phase: twin_core::parachute::ChutePhase,
    drag_area_m2: f64,
}

impl TruthMsg {
    fn snapshot(self, chute_order: &[String]) -> twin_core::twin::Snapshot {
        let mut parachutes: Vec<(String, twin_core::parachute::ChutePhase, f64)> = self
            .parachutes
            .into_iter()
            .map(|(n, c)| (n, c.phase, c.drag_area_m2))
            .collect();
        parachutes.sort_by_key(|(n, _, _)| chute_order.iter().position(|o| o == n));
        twin_core::twin::Snapshot {
            t_s: self.t_s,
            step: self.step,
            phase: self.phase,
            position_eci_m: self.position_eci_m,
            velocity_eci_m_s: self.velocity_eci_m_s,
            eci_from_body_xyzw: self.eci_from_body_xyzw,
            rate_body_rad_s: self.rate_body_rad_s,
            mass_kg: self.mass_kg,
            latitude_deg: self.latitude_deg,
            longitude_deg: self.longitude_deg,
            altitude_m: self.altitude_m,
            airspeed_m_s: self.airspeed_m_s,
            mach: self.mach,
            dynamic_pressure_pa: self.dynamic_pressure_pa,
            alpha_deg: self.alpha_deg,
            bank_deg: self.bank_deg,
            load_factor_g: self.load_factor_g,
            heat_flux_w_m2: self.heat_flux_w_m2,
            heat_load_j_m2: self.heat_load_j_m2,
            heat_shield_surface_k: self.heat_shield_surface_k,
            bondline_k: self.bondline_k,
            backshell_k: self.backshell_k,
            parachutes,
            thrusters: self.thrusters,
            tanks_kg: Vec::new(),
        }
    }
}

/// The twin stream of a recorded run, from its bundle alone: the scenario and vehicle
/// copies (header), the telemetry (`telemetry.mcap`: truth at 50 Hz, the avionics'
/// status message of the ICD binding, the events) and the verdicts (`result.json`). Link counters are the
/// manifest's final ones (the telemetry does not keep them over time).
pub fn replay_records(dir: &Path, db: &Icd) -> Result<Vec<Record>> {
    let input =
        |role: &str| dir.join(capsule_evidence::bundle::input_name(role).unwrap_or("missing"));
    let l = crate::assemble::load_with(&input("scenario"), Some(&input("vehicle")), db)
        .with_context(|| format!("{}: not a run bundle with its inputs", dir.display()))?;
    let tel = dir.join(capsule_evidence::stream::TELEMETRY);
    let buf = std::fs::read(&tel).with_context(|| format!("cannot read {}", tel.display()))?;
    let clock = std::fs::read_to_string(dir.join("result.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let clock_name = clock
        .as_ref()
        .and_then(|v| v.pointer("/result/clock").or(v.pointer("/clock")))
        .and_then(|v| v.as_str())
        .unwrap_or("lockstep")
        .to_string();
    let mut head = header(&l, &clock_name, "replay");
    let mut st = ViewState::new(&l, db);
    let status_topic = format!("/can/{}", db.binding.fc.mode.message().name);
    let order: Vec<String> = l
        .vehicle
        .parachutes
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut out: Vec<Record> = Vec::new();
    let opts = enumset::EnumSet::only(mcap::read::Options::IgnoreEndMagic);
    let stream = mcap::MessageStream::new_with_options(&buf, opts)
        .with_context(|| format!("{}: not an MCAP file", tel.display()))?;
    for m in stream {
        let m = match m {
            Ok(m) => m,
            // A run cut short (kill -9) leaves the last chunk unfinished: keep what
            // was read.
            Err(e) => {
                tracing::warn!("{}: read up to an error: {e}", tel.display());
                break;
            }
        };
        match m.channel.topic.as_str() {
            "/truth/state" => {
                let t: TruthMsg = serde_json::from_slice(&m.data)
                    .with_context(|| format!("{}: a /truth/state message", tel.display()))?;
                let s = t.snapshot(&order);
                out.push(Record::Snapshot(Box::new(st.snapshot(&s))));
            }
            "/events" => {
                let v: serde_json::Value = serde_json::from_slice(&m.data)
                    .with_context(|| format!("{}: an /events message", tel.display()))?;
                let name = v["message"].as_str().unwrap_or("").to_string();
                let t_s = m.log_time as f64 * 1e-9;
                st.on_event(t_s, &name);
                out.push(Record::Event { t_s, name });
            }
            topic if topic == status_topic => {
                let v: serde_json::Value = serde_json::from_slice(&m.data)
                    .with_context(|| format!("{}: a {topic} message", tel.display()))?;
                if v["from_fc"].as_bool() == Some(true) {
                    let t_s = v["t_s"].as_f64().unwrap_or(m.log_time as f64 * 1e-9);
                    // The telemetry has the DBC's signal names and units.
                    let b = db.binding.clone();
                    st.on_fc_status(t_s, |role| {
                        let s = b.role(role)?;
                        v[s.def().name.as_str()].as_f64().map(|w| s.from_wire(w))
                    });
                }
            }
            _ => {}
        }
    }
    // Final counters from the manifest, on the last snapshot.
    let links: Vec<LinkHealth> = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.pointer("/links").cloned())
        .and_then(|v| serde_json::from_value::<LinkCounters>(v).ok())
        .map(|c| {
            c.links
                .iter()
                .map(|(name, s)| LinkHealth {
                    name: name.clone(),
                    tx: s.tx_packets,
                    rx: s.rx_packets,
                    errors: s.crc_errors + s.framing_errors,
                    drops: s.drops + s.rx_dropped,
                    silent_s: None,
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(Record::Snapshot(s)) = out
        .iter_mut()
        .rev()
        .find(|r| matches!(r, Record::Snapshot(_)))
    {
        s.links = links;
    }
    let t_end = out.iter().filter_map(Record::t_s).fold(0.0, f64::max);
    head.t_end_s = Some(t_end);
    // The verdicts as `result.json` has them.
    let result = clock.as_ref().and_then(|v| v.get("result"));
    let verdict = match (result, &clock) {
        (Some(r), _) => r["verdict"].as_str().unwrap_or("unknown").to_uppercase(),
        (None, Some(v)) if v["incomplete"].as_bool() == Some(true) => "INCOMPLETE".into(),
        (None, Some(_)) => "ERROR".into(),
        (None, None) => "unknown (no result.json)".into(),
    };
    let expectations = result
        .and_then(|r| r["expectations"].as_array())
        .map(|xs| {
            xs.iter()
                .map(|e| ExpectationStatus {
                    id: e["id"].as_str().unwrap_or("?").to_string(),
                    state: if e["passed"].as_bool() == Some(true) {
                        ExpectationState::Passed
                    } else {
                        ExpectationState::Failed
                    },
                    measured: e["measured"].as_str().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(Record::End(End {
        t_s: t_end,
        verdict,
        expectations,
    }));
    out.insert(0, Record::Header(head));
    Ok(out)
}
