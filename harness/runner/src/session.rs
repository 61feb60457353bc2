//! A run: its configuration, the wiring of links and the flight computer, and the
//! choice of clock.
//!
//! Links are either simulated (the runner starts a virtual CAN bus and pseudo-terminal
//! pairs and hands their far ends to the flight computer it starts) or real addresses
//! from a bench file (`serial:`, `socketcan:`, `slcan:`, `vbus:`), where the avionics
//! are already connected. A flight computer that stops answering or exits, a link that
//! closes and a Ctrl-C all end the run with a named cause, never a hang.

use crate::cycle::LoopCore;
use crate::devices::Devices;
use crate::record::{RunRecord, TimingBudget};
use capsule_icd::can::{CanDb, CodecError};
use capsule_links::address::Address;
use capsule_links::vbus::{BusTiming, VirtualBus};
use capsule_links::{Link, LinkError, serial, vbus};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use twin_core::twin::Twin;

/// How the loop keeps time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// Simulation time drives the flight computer through `SIM_Tick` / `SIM_Ack`:
    /// deterministic, as fast as the machine allows.
    Lockstep,
    /// The wall clock paces every physics step; the loop measures its own timing and
    /// judges it against the budget.
    Realtime(TimingBudget),
}

impl Clock {
    /// `lockstep` or `realtime`.
    pub fn name(&self) -> &'static str {
        match self {
            Clock::Lockstep => "lockstep",
            Clock::Realtime(_) => "realtime",
        }
    }
}

/// Where each logical link is: `None` for a simulated one (the runner makes it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchLinks {
    /// The CAN bus.
    pub can: Option<Address>,
    /// The IMU serial line.
    pub imu: Option<Address>,
    /// The GNSS serial line.
    pub gnss: Option<Address>,
}

/// Run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The flight computer's command line, if the runner starts it; `{can}`, `{imu}`
    /// and `{gnss}` are replaced by the addresses of the links' far ends. `None`: the
    /// avionics are already on the links (hardware).
    pub fc_command: Option<Vec<String>>,
    /// Where the links are.
    pub links: BenchLinks,
    /// The clock.
    pub clock: Clock,
    /// Physics steps per flight-computer cycle (lockstep).
    pub cycle_steps: u32,
    /// Stop after this simulated time, s.
    pub max_time_s: f64,
    /// Keep running this long after splashdown, s.
    pub after_landing_s: f64,
    /// How long the flight computer may stay silent (no acknowledgement in lockstep,
    /// no frame at all in real time) before it is declared dead.
    pub ack_timeout: Duration,
    /// Directory for the bus socket.
    pub workdir: PathBuf,
    /// FC mode sent with the state handover (`FC_Mode` values).
    pub handover_mode: u8,
    /// Mission data sent with the handover (`MSN_*`).
    pub mission: Mission,
    /// Separation from the host vehicle during the run (the run starts mated: FC
    /// handed over in PRE_SEPARATION, separation switches closed).
    pub separation: Option<Separation>,
    /// Snapshot interval for the record, s.
    pub snapshot_every_s: f64,
    /// Faults to inject.
    pub injections: Vec<crate::inject::Injection>,
    /// Seed of the bus fault layers.
    pub fault_seed: u64,
    /// Set (by a Ctrl-C handler) to stop the run: actuators are commanded safe and the
    /// record ends as [`crate::record::EndReason::Interrupted`].
    pub stop: Arc<AtomicBool>,
    /// Simulation time reached, ms, published every cycle (for progress displays).
    pub progress_ms: Option<Arc<std::sync::atomic::AtomicU64>>,
}

/// Separation from the host vehicle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    /// When the host vehicle releases the capsule, s (simulation time).
    pub at_s: f64,
    /// Velocity the separation springs give the capsule, along its body -x axis, m/s.
    pub delta_v_m_s: f64,
}

/// Mission data the host vehicle uploads with the handover.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mission {
    /// Landing target: geodetic latitude, longitude, deg (`MSN_Target`).
    pub target_deg: Option<(f64, f64)>,
    /// Deorbit burn: ignition time (simulation time, s) and delta-v, m/s
    /// (`MSN_Deorbit`, retrograde).
    pub deorbit: Option<(f64, f64)>,
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
    /// The flight computer did not acknowledge a tick in time (lockstep).
    #[error("flight computer did not acknowledge the tick at t = {t_s:.3} s within {timeout:?}")]
    FcTimeout {
        /// Simulation time of the tick.
        t_s: f64,
        /// Wall timeout.
        timeout: Duration,
    },
    /// The flight computer sent nothing on a link for too long (real time).
    #[error("flight computer silent on link `{link}` for {timeout:?} at t = {t_s:.3} s")]
    FcSilent {
        /// The link.
        link: String,
        /// Simulation time.
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

/// The links and the flight computer of a run.
pub(crate) struct Wiring {
    /// The virtual bus, when the runner made it.
    pub bus: Option<VirtualBus>,
    pub can: Link,
    pub imu: Link,
    pub gnss: Link,
    pub child: Option<tokio::process::Child>,
    /// A task that owns the flight computer process and waits for it to exit (real
    /// time); aborting it kills the process.
    pub watch: Option<tokio::task::JoinHandle<()>>,
}

impl Wiring {
    /// Opens or makes the links and starts the flight computer.
    pub async fn new(cfg: &RunConfig) -> Result<Self, RunError> {
        std::fs::create_dir_all(&cfg.workdir)
            .map_err(|e| RunError::Setup(format!("{}: {e}", cfg.workdir.display())))?;
        let (bus, can, can_far) = match &cfg.links.can {
            Some(a) => (None, capsule_links::open("can", a).await?, None),
            None => {
                let sock = cfg.workdir.join("can.sock").display().to_string();
                let timing = match cfg.clock {
                    Clock::Lockstep => BusTiming::Lockstep,
                    Clock::Realtime(_) => BusTiming::Paced,
                };
                let bus = VirtualBus::bind_with(&sock, 500_000, timing).await?;
                let can = vbus::connect("can", &sock).await?;
                (Some(bus), can, Some(format!("vbus:{sock}")))
            }
        };
        let (imu, imu_far) = serial_link("imu", &cfg.links.imu, 921_600).await?;
        let (gnss, gnss_far) = serial_link("gnss", &cfg.links.gnss, 115_200).await?;
        let mut child = None;
        if let Some(cmd) = &cfg.fc_command {
            let far = |x: &Option<String>, a: &Option<Address>| {
                x.clone()
                    .or_else(|| a.as_ref().map(ToString::to_string))
                    .unwrap_or_default()
            };
            let (c, i, g) = (
                far(&can_far, &cfg.links.can),
                far(&imu_far, &cfg.links.imu),
                far(&gnss_far, &cfg.links.gnss),
            );
            let args: Vec<String> = cmd
                .iter()
                .map(|a| {
                    a.replace("{can}", &c)
                        .replace("{imu}", &i)
                        .replace("{gnss}", &g)
                })
                .collect();
            let (prog, rest) = args
                .split_first()
                .ok_or_else(|| RunError::Setup("empty flight computer command".into()))?;
            let mut ch = tokio::process::Command::new(prog)
                .args(rest)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    RunError::Setup(format!("cannot start flight computer `{prog}`: {e}"))
                })?;
            if let Some(b) = &bus
                && !b.wait_for_nodes(2, Duration::from_secs(20)).await
            {
                let status = ch
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "still running".into());
                return Err(RunError::Setup(format!(
                    "flight computer never joined the CAN bus ({status})"
                )));
            }
            child = Some(ch);
        }
        Ok(Self {
            bus,
            can,
            imu,
            gnss,
            child,
            watch: None,
        })
    }

    /// Closes the links and lets the flight computer exit (it stops when its bus
    /// closes), killing it if it does not within 5 s.
    pub async fn close(self) {
        let Self {
            bus,
            can,
            imu,
            gnss,
            child,
            watch,
        } = self;
        drop((can, imu, gnss, bus));
        if let Some(mut c) = child {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
            let _ = c.start_kill();
        }
        if let Some(mut w) = watch
            && tokio::time::timeout(Duration::from_secs(5), &mut w)
                .await
                .is_err()
        {
            w.abort();
        }
    }
}

/// Opens a serial link at its address, or makes a pseudo-terminal pair and returns the
/// far end's address for the flight computer.
async fn serial_link(
    name: &str,
    address: &Option<Address>,
    baud: u32,
) -> Result<(Link, Option<String>), LinkError> {
    match address {
        Some(a) => Ok((capsule_links::open(name, a).await?, None)),
        None => {
            let (l, path) = serial::pty_pair(name)?;
            Ok((l, Some(format!("serial:{path}@{baud}"))))
        }
    }
}

/// Runs the closed loop until splashdown (plus the after-landing time), the time
/// limit, or a stop request.
pub async fn run(
    cfg: &RunConfig,
    db: CanDb,
    twin: Twin,
    devices: Devices,
) -> Result<RunRecord, RunError> {
    let mut wiring = Wiring::new(cfg).await?;
    let mut core = LoopCore::new(cfg.clone(), db, twin, devices);
    for f in core.handover()? {
        wiring.can.send(capsule_links::Packet::Frame(f)).await?;
    }
    let result = match cfg.clock {
        Clock::Lockstep => crate::lockstep::drive(&mut core, &mut wiring)
            .await
            .map(|end| (end, None)),
        Clock::Realtime(budget) => {
            let (c, w, r) = crate::realtime::drive(core, wiring, budget).await;
            core = c;
            wiring = w;
            r.map(|(end, timing)| (end, Some(timing)))
        }
    };
    wiring.close().await;
    let (end, timing) = result?;
    Ok(core.finish(cfg.clock.name(), end, timing))
}
