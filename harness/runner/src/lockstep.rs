//! The lockstep closed loop with a flight computer in its own process.
//!
//! Per flight-computer cycle (default 10 physics steps = 10 ms): the device emulators
//! produce their wire output step by step; at the cycle end the runner writes the
//! serial bytes, the CAN frames, `SIM_Sync` (serial byte counts) and `SIM_Tick`, then
//! collects the flight computer's frames up to `SIM_Ack` and hands them to the devices,
//! which act on the twin. Everything is recorded with simulation time, so two runs with
//! the same inputs give the same record. A flight computer that stops answering or
//! exits, and a link that closes, end the run with an error naming them.

use crate::devices::{DeviceEvent, Devices, Outputs};
use capsule_icd::can::{CanDb, CanFrame, CodecError};
use capsule_links::fault::Direction;
use capsule_links::vbus::{BusTiming, VirtualBus};
use capsule_links::{LinkError, Packet, serial, vbus};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use twin_core::twin::{Contact, Snapshot, Twin};

/// Run configuration.
#[derive(Debug, Clone)]
pub struct LockstepConfig {
    /// The flight computer's command line; `{can}`, `{imu}` and `{gnss}` are replaced by
    /// the link addresses.
    pub fc_command: Vec<String>,
    /// Physics steps per flight-computer cycle.
    pub cycle_steps: u32,
    /// Stop after this simulated time, s.
    pub max_time_s: f64,
    /// Keep running this long after splashdown, s.
    pub after_landing_s: f64,
    /// How long to wait for an acknowledgement before declaring the FC dead.
    pub ack_timeout: Duration,
    /// Directory for the bus socket.
    pub workdir: PathBuf,
    /// FC mode sent with the state handover (`FC_Mode` values).
    pub handover_mode: u8,
    /// Snapshot interval for the record, s.
    pub snapshot_every_s: f64,
    /// Faults to inject.
    pub injections: Vec<crate::inject::Injection>,
    /// Seed of the bus fault layers.
    pub fault_seed: u64,
}

const LINK_CAN: u8 = 0;
const LINK_IMU: u8 = 1;
const LINK_GNSS: u8 = 2;

/// One frame on the bus, with the simulation time of the cycle it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameRecord {
    /// Simulation time, s.
    pub t_s: f64,
    /// Sent by the flight computer (else by the harness's devices).
    pub from_fc: bool,
    /// The frame.
    pub frame: CanFrame,
}

/// Why a run ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EndReason {
    /// Splashdown plus the after-landing time.
    Landed,
    /// The time limit.
    MaxTime,
}

/// Everything a run saw.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Bus traffic.
    pub frames: Vec<FrameRecord>,
    /// Device events.
    pub events: Vec<(f64, DeviceEvent)>,
    /// Splashdown, if it happened.
    pub contact: Option<Contact>,
    /// Twin snapshots at the snapshot interval and at every cycle with an event, in
    /// time order.
    pub snapshots: Vec<Snapshot>,
    /// Why the run ended.
    pub end: EndReason,
    /// Final simulation time, s.
    pub t_end_s: f64,
    /// Serial bytes sent (IMU, GNSS).
    pub serial_bytes: (u64, u64),
    /// In-flight peaks (before splashdown), tracked every physics step.
    pub peaks: Peaks,
    /// Every event by its scenario name, with its time, in time order: device events,
    /// `splashdown`, `fc_mode:<MODE>`, `fc_fault` and
    /// `fc_fault:<detail>` (the FC reported a fault; detail as `0x0108`),
    /// `inject:<id>`.
    pub named_events: Vec<(f64, String)>,
    /// Injections started and ended: (time, id, started).
    pub injections: Vec<(f64, String, bool)>,
    /// Bus faults injected, by `link.kind` (e.g. `imu.noise_burst`).
    pub faults_injected: std::collections::BTreeMap<String, u64>,
}

/// FC mode names by `FC_Mode` value.
pub const MODE_NAMES: [&str; 9] = [
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

/// In-flight peaks, tracked every physics step until splashdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Peaks {
    /// Peak non-gravitational acceleration / g0.
    pub load_factor_g: f64,
    /// Peak stagnation heat flux, W/m^2.
    pub heat_flux_w_m2: f64,
    /// Peak dynamic pressure, Pa.
    pub dynamic_pressure_pa: f64,
    /// Peak bondline temperature, K.
    pub bondline_k: f64,
}

/// Run errors: each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Setting up links or the FC process failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A link closed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The flight computer did not acknowledge a tick in time.
    #[error("flight computer did not acknowledge the tick at t = {t_s:.3} s within {timeout:?}")]
    FcTimeout {
        /// Simulation time of the tick.
        t_s: f64,
        /// Wall timeout.
        timeout: Duration,
    },
    /// The flight computer process exited.
    #[error("flight computer exited at t = {t_s:.3} s: {status}")]
    FcExited {
        /// Simulation time.
        t_s: f64,
        /// Exit status.
        status: String,
    },
    /// An ICD encoding failed (a bug or a DBC that lacks a message).
    #[error("ICD: {0}")]
    Codec(#[from] CodecError),
}

fn encode(db: &CanDb, name: &str, vals: &[(&str, f64)]) -> Result<CanFrame, RunError> {
    Ok(db.encode(name, vals)?)
}

/// Runs the closed loop until splashdown (plus the after-landing time) or the limit.
pub async fn run(
    cfg: &LockstepConfig,
    db: CanDb,
    mut twin: Twin,
    mut devices: Devices,
) -> Result<RunRecord, RunError> {
    std::fs::create_dir_all(&cfg.workdir)
        .map_err(|e| RunError::Setup(format!("{}: {e}", cfg.workdir.display())))?;
    let sock = cfg.workdir.join("can.sock").display().to_string();
    let bus = VirtualBus::bind_with(&sock, 500_000, BusTiming::Lockstep).await?;
    let mut can = vbus::connect("can", &sock).await?;
    let (imu, imu_path) = serial::pty_pair("imu")?;
    let (gnss, gnss_path) = serial::pty_pair("gnss")?;
    let subst = |a: &String| {
        a.replace("{can}", &format!("vbus:{sock}"))
            .replace("{imu}", &format!("serial:{imu_path}@921600"))
            .replace("{gnss}", &format!("serial:{gnss_path}@115200"))
    };
    let args: Vec<String> = cfg.fc_command.iter().map(subst).collect();
    let (prog, rest) = args
        .split_first()
        .ok_or_else(|| RunError::Setup("empty FC command".into()))?;
    let mut child = tokio::process::Command::new(prog)
        .args(rest)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RunError::Setup(format!("cannot start flight computer `{prog}`: {e}")))?;
    if !bus.wait_for_nodes(2, Duration::from_secs(20)).await {
        let status = child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "still running".into());
        return Err(RunError::Setup(format!(
            "flight computer never joined the CAN bus ({status})"
        )));
    }

    let (tick, sync, ack) = (
        db.by_name("SIM_Tick")
            .cloned()
            .ok_or_else(|| RunError::Setup("DBC lacks SIM_Tick".into()))?,
        db.by_name("SIM_Sync")
            .cloned()
            .ok_or_else(|| RunError::Setup("DBC lacks SIM_Sync".into()))?,
        db.by_name("SIM_Ack")
            .cloned()
            .ok_or_else(|| RunError::Setup("DBC lacks SIM_Ack".into()))?,
    );
    let mut frames = Vec::new();
    // State handover at t = 0.
    let s = *twin.state();
    let (p, v, q) = (s.position_eci_m, s.velocity_eci_m_s, s.eci_from_body);
    for f in [
        encode(&db, "HV_PosXY", &[("HV_PosX", p.x), ("HV_PosY", p.y)])?,
        encode(&db, "HV_PosZVelX", &[("HV_PosZ", p.z), ("HV_VelX", v.x)])?,
        encode(&db, "HV_VelYZ", &[("HV_VelY", v.y), ("HV_VelZ", v.z)])?,
        encode(
            &db,
            "HV_Attitude",
            &[
                ("HV_QuatW", q.w),
                ("HV_QuatX", q.x),
                ("HV_QuatY", q.y),
                ("HV_QuatZ", q.z),
            ],
        )?,
        encode(
            &db,
            "HV_StateTime",
            &[
                ("HV_TimeUs", (twin.time_s() * 1e6).round()),
                ("HV_Mode", f64::from(cfg.handover_mode)),
                ("HV_Seq", 1.0),
            ],
        )?,
    ] {
        can.send(Packet::Frame(f)).await?;
        frames.push(FrameRecord {
            t_s: twin.time_s(),
            from_fc: false,
            frame: f,
        });
    }

    let dt = twin.dt_s();
    let (mut imu_total, mut gnss_total) = (0u64, 0u64);
    let mut snapshots = vec![twin.snapshot()];
    let mut next_snapshot = cfg.snapshot_every_s;
    let mut cycle = 0u64;
    let fc_event_id = db.by_name("FC_Event").map(|m| m.id);
    let mut events_seen = 0usize;
    let mut peaks = Peaks::default();
    let mut named: Vec<(f64, String)> = Vec::new();
    let mut named_seen = 0usize;
    let mut injector = crate::inject::Injector::new(cfg.injections.clone());
    let mut bus = crate::inject::BusFaults::new(cfg.fault_seed);
    let mut delayed: Vec<(f64, u8, Packet)> = Vec::new();
    let (mut babble_acc, mut babble_count) = (0.0f64, 0u64);
    let fc_event_def = db.by_name("FC_Event").cloned();
    let mut contact_seen = false;
    let end = loop {
        let mut out = Outputs::default();
        for _ in 0..cfg.cycle_steps {
            devices.step(&twin, dt, &mut out)?;
            twin.step();
            if twin.contact().is_none() {
                peaks.load_factor_g = peaks.load_factor_g.max(twin.load_factor_g());
                peaks.heat_flux_w_m2 = peaks.heat_flux_w_m2.max(twin.heat_flux_w_m2());
                peaks.dynamic_pressure_pa = peaks
                    .dynamic_pressure_pa
                    .max(twin.environment().dynamic_pressure_pa);
                peaks.bondline_k = peaks.bondline_k.max(twin.thermal().bondline_k);
            }
            if twin.time_s() + 1e-9 >= next_snapshot {
                snapshots.push(twin.snapshot());
                next_snapshot += cfg.snapshot_every_s;
            }
        }
        let t = twin.time_s();
        bus.clock.set_s(t);
        // Device output through the bus fault layers; delayed packets go out in the
        // first cycle at or after their time. Serial byte counts are taken after the
        // faults (what really went down the line).
        let mut ready: Vec<(u8, Packet)> = Vec::new();
        delayed.retain(|(due, link, p)| {
            if *due <= t + 1e-9 {
                ready.push((*link, p.clone()));
                false
            } else {
                true
            }
        });
        let mut push = |link: u8, list: Vec<(u64, Packet)>, ready: &mut Vec<(u8, Packet)>| {
            for (d, p) in list {
                if d == 0 {
                    ready.push((link, p));
                } else {
                    delayed.push((t + d as f64 * 1e-9, link, p));
                }
            }
        };
        if !out.imu_bytes.is_empty() {
            let l = bus.imu.apply(Direction::Tx, Packet::Bytes(out.imu_bytes));
            push(LINK_IMU, l, &mut ready);
        }
        if !out.gnss_bytes.is_empty() {
            let l = bus.gnss.apply(Direction::Tx, Packet::Bytes(out.gnss_bytes));
            push(LINK_GNSS, l, &mut ready);
        }
        for f in out.frames {
            let l = bus.can.apply(Direction::Tx, Packet::Frame(f));
            push(LINK_CAN, l, &mut ready);
        }
        if let Some((id, rate)) = bus.can.babble() {
            babble_acc += rate * dt * f64::from(cfg.cycle_steps);
            while babble_acc >= 1.0 {
                babble_acc -= 1.0;
                babble_count += 1;
                bus.can.control.stats.record("babble");
                ready.push((
                    LINK_CAN,
                    Packet::Frame(CanFrame::new(id, &babble_count.to_le_bytes())),
                ));
            }
        } else {
            babble_acc = 0.0;
        }
        for (link, p) in ready {
            match (link, p) {
                (LINK_IMU, Packet::Bytes(b)) => {
                    imu_total += b.len() as u64;
                    imu.send(Packet::Bytes(b)).await?;
                }
                (LINK_GNSS, Packet::Bytes(b)) => {
                    gnss_total += b.len() as u64;
                    gnss.send(Packet::Bytes(b)).await?;
                }
                (_, Packet::Frame(f)) => {
                    can.send(Packet::Frame(f)).await?;
                    frames.push(FrameRecord {
                        t_s: t,
                        from_fc: false,
                        frame: f,
                    });
                }
                (_, p) => can.send(p).await?,
            }
        }
        let sync_f = sync.encode(&[
            ("SIM_ImuBytes", (imu_total % (1u64 << 32)) as f64),
            ("SIM_GnssBytes", (gnss_total % (1u64 << 32)) as f64),
        ])?;
        let tick_f = tick.encode(&[
            ("SIM_TimeUs", (t * 1e6).round()),
            ("SIM_Step", (cycle % 65_536) as f64),
        ])?;
        can.send(Packet::Frame(sync_f)).await?;
        can.send(Packet::Frame(tick_f)).await?;
        // Collect the FC's outputs up to its acknowledgement.
        loop {
            let r = tokio::select! {
                r = tokio::time::timeout(cfg.ack_timeout, can.recv()) => r,
                st = child.wait() => {
                    let status = st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    return Err(RunError::FcExited { t_s: t, status });
                }
            };
            let rx = match r {
                Ok(Ok(rx)) => rx,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(RunError::FcTimeout {
                        t_s: t,
                        timeout: cfg.ack_timeout,
                    });
                }
            };
            let Packet::Frame(f) = rx.packet else {
                continue;
            };
            frames.push(FrameRecord {
                t_s: t,
                from_fc: true,
                frame: f,
            });
            if f.id == ack.id {
                break;
            }
            // The FC's commands cross the faulted bus too.
            for (_, p) in bus.can.apply(Direction::Rx, Packet::Frame(f)) {
                if let Packet::Frame(g) = p {
                    devices.on_fc_frame(&g, &mut twin, t);
                }
            }
        }
        cycle += 1;
        // Name this cycle's events, then let the injections react to them.
        for (te, e) in &devices.events[named_seen..] {
            named.push((*te, e.name()));
        }
        named_seen = devices.events.len();
        if let Some(ev) = &fc_event_def {
            let mut this_cycle: Vec<&FrameRecord> = frames
                .iter()
                .rev()
                .take_while(|r| r.t_s == t)
                .filter(|r| r.from_fc && r.frame.id == ev.id)
                .collect();
            this_cycle.reverse();
            for r in this_cycle {
                if let Ok(vals) = ev.decode(&r.frame) {
                    let code = vals
                        .iter()
                        .find(|(n, _)| *n == "FC_EventCode")
                        .map_or(0.0, |(_, x)| *x);
                    let to = vals
                        .iter()
                        .find(|(n, _)| *n == "FC_EventModeTo")
                        .map_or(99.0, |(_, x)| *x) as usize;
                    if code == 1.0 && to < MODE_NAMES.len() {
                        named.push((t, format!("fc_mode:{}", MODE_NAMES[to])));
                    }
                    if code == 2.0 {
                        let detail = vals
                            .iter()
                            .find(|(n, _)| *n == "FC_EventDetail")
                            .map_or(0, |(_, x)| *x as u16);
                        named.push((t, "fc_fault".into()));
                        named.push((t, format!("fc_fault:{detail:#06x}")));
                    }
                }
            }
        }
        if let Some(c) = twin.contact()
            && !named.iter().any(|(_, n)| n == "splashdown")
        {
            named.push((c.t_s, "splashdown".into()));
        }
        let before = injector.log.len();
        injector.update(t, &named, &mut twin, &mut devices, &mut bus);
        for (ti, id, started) in &injector.log[before..] {
            if *started {
                named.push((*ti, format!("inject:{id}")));
            }
        }
        // A snapshot at every cycle where something happened, so checks can read the
        // truth at the moment of each event.
        let fc_event = frames.last().is_some_and(|_| {
            frames
                .iter()
                .rev()
                .take_while(|r| r.t_s == t)
                .any(|r| r.from_fc && Some(r.frame.id) == fc_event_id)
        });
        if devices.events.len() != events_seen
            || fc_event
            || (twin.contact().is_some() && !contact_seen)
        {
            events_seen = devices.events.len();
            contact_seen = twin.contact().is_some();
            if snapshots.last().is_none_or(|s| s.t_s < t) {
                snapshots.push(twin.snapshot());
            }
        }
        if let Some(c) = twin.contact()
            && t >= c.t_s + cfg.after_landing_s
        {
            break EndReason::Landed;
        }
        if t >= cfg.max_time_s {
            break EndReason::MaxTime;
        }
    };
    let record = RunRecord {
        frames,
        events: std::mem::take(&mut devices.events),
        contact: twin.contact().copied(),
        snapshots,
        end,
        t_end_s: twin.time_s(),
        serial_bytes: (imu_total, gnss_total),
        peaks,
        named_events: {
            let mut v = named;
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v
        },
        injections: injector.log,
        faults_injected: [("can", &bus.can), ("imu", &bus.imu), ("gnss", &bus.gnss)]
            .iter()
            .flat_map(|(l, f)| {
                f.control
                    .stats
                    .all()
                    .into_iter()
                    .map(move |(k, n)| (format!("{l}.{k}"), n))
            })
            .collect(),
    };
    drop(can);
    drop(imu);
    drop(gnss);
    drop(bus);
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = child.start_kill();
    Ok(record)
}
