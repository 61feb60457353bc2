//! A run: its configuration, the wiring of links and the flight computer, and the
//! choice of clock.
//!
//! Links are either simulated (the runner starts a virtual CAN bus and pseudo-terminal
//! pairs and hands their far ends to the flight computer it starts) or real addresses
//! from a bench file (`serial:`, `socketcan:`, `slcan:`, `vbus:`), where the avionics
//! are already connected. A flight computer that stops answering or exits, a link that
//! closes and a Ctrl-C all end the run with a named cause, never a hang.

use crate::cycle::{LINK_CAN, LoopCore};
use crate::devices::Devices;
use crate::process::FcProcess;
use crate::record::{LinkCounters, RunRecord, TimingBudget};
use crate::stop::Stop;
use crate::tap::Dir;
use capsule_icd::can::{CanDb, CodecError};
use capsule_links::address::Address;
use capsule_links::vbus::{BusTiming, VirtualBus};
use capsule_links::{Link, LinkError, serial, vbus};
use std::path::PathBuf;
use std::sync::Arc;
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

/// How a flight computer that the runner starts reaches the simulated CAN bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FcCanTransport {
    /// The harness's virtual bus (`vbus:PATH`, a Unix socket; internal protocol).
    #[default]
    VirtualBus,
    /// An emulated SLCAN (Lawicel) USB-CAN adapter on a pseudo-terminal
    /// (`slcan:/dev/pts/N@115200,500000`): python-can's `slcan`, `slcand` or any
    /// serial library reaches it. The flight computer has joined when it opens the
    /// channel (`O` or `L`).
    Slcan,
}

/// Run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The flight computer's command line, if the runner starts it; `{can}`, `{imu}`
    /// and `{gnss}` are replaced by the addresses of the links' far ends. `None`: the
    /// avionics are already on the links (hardware).
    pub fc_command: Option<Vec<String>>,
    /// How the started flight computer reaches a simulated CAN bus.
    pub fc_can: FcCanTransport,
    /// Real time: the scenario starts once the flight computer has sent one of these
    /// messages (its readiness signal, e.g. `FC_Ident`), and the state handover is
    /// sent again every [`HANDOVER_RESEND_S`] until it reports the handed-over mode.
    /// Empty: start as soon as it has joined the bus.
    pub ready_messages: Vec<String>,
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
    /// How long the flight computer may stay silent (no acknowledgement of a tick in
    /// lockstep, counted from the tick whatever else it sends; no frame at all in real
    /// time), and how long a link may refuse data, before the run ends with an error
    /// naming it.
    pub ack_timeout: Duration,
    /// How long a started flight computer may take to join the CAN bus.
    pub join_timeout: Duration,
    /// Where the started flight computer's standard output and error go
    /// (`fc.stdout.log`, `fc.stderr.log`); `None`: the run's temporary directory
    /// (removed after the run; the end of standard error still reaches error messages).
    pub fc_output_dir: Option<PathBuf>,
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
    /// Raised (by a signal handler) to stop the run: every wait ends, actuators are
    /// commanded safe and the record ends as [`crate::record::EndReason::Interrupted`].
    pub stop: Stop,
    /// Simulation time reached, ms, published every cycle (for progress displays).
    pub progress_ms: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The record stream (wire packets, telemetry, events) for a consumer such as the
    /// evidence bundle writer.
    pub tap: Option<crate::tap::Tap>,
    /// What the real-time loop asks of the operating system (real time only).
    pub rt: crate::rt::RtOptions,
    /// Where the real-time budget came from, for the timing report.
    pub budget_source: String,
    /// The twin view's stream (snapshots at the view rate, events, CAN frames, link
    /// counters), for a viewer feeder. Never waits, in either clock: a full queue drops
    /// and counts.
    pub view: Option<crate::tap::Tap>,
    /// Lockstep only: run at most this many times faster than real time (a viewer is
    /// watching); `None` as fast as the flight computer goes.
    pub pace: Option<f64>,
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

/// Run errors: each names what failed. All are fatal for the run (its verdict is
/// ERROR, with this cause).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Setting up links or the FC process failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A link closed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The flight computer did not acknowledge a tick in time (lockstep).
    #[error("flight computer did not acknowledge the tick at t = {t_s:.3} s within {timeout:?}{}", if *frames > 0 { format!(" (it sent {frames} other frames meanwhile)") } else { String::new() })]
    FcTimeout {
        /// Simulation time of the tick.
        t_s: f64,
        /// Wall timeout.
        timeout: Duration,
        /// Frames the FC sent while the harness waited.
        frames: u64,
    },
    /// The flight computer acknowledged another tick than the one sent (lockstep).
    #[error(
        "flight computer acknowledged the wrong tick at t = {t_s:.3} s: SIM_AckTimeUs {got_us} and SIM_AckStep {got_step}, expected {expected_us} and {expected_step}"
    )]
    FcAckMismatch {
        /// Simulation time of the tick.
        t_s: f64,
        /// The tick's time, us.
        expected_us: u64,
        /// The tick's step counter.
        expected_step: u64,
        /// What the acknowledgement said, us.
        got_us: u64,
        /// What the acknowledgement said.
        got_step: u64,
    },
    /// Real time: the flight computer did not give its readiness signal (the first
    /// frame of one of the bench's `ready` messages) within the join time.
    #[error("flight computer not ready: no {} on link `{link}` within {timeout:?} (its readiness signal; flight_computer.ready)", messages.join(" or "))]
    NotReady {
        /// The link.
        link: String,
        /// The readiness messages.
        messages: Vec<String>,
        /// The join time.
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
    /// The flight computer sent more frames than the bus can carry.
    #[error("flight computer floods link `{link}` at t = {t_s:.3} s: {frames} frames in {window_s} s, more than the {limit} a {bitrate_bps} bit/s bus carries{}", if *rx_dropped > 0 { format!(" ({rx_dropped} frames lost in the harness's receive queue)") } else { String::new() })]
    FcFlood {
        /// The link.
        link: String,
        /// Simulation time.
        t_s: f64,
        /// Frames counted in the window.
        frames: u64,
        /// The window, s (simulation time in lockstep, wall time in real time).
        window_s: f64,
        /// The most the bus carries in the window.
        limit: u64,
        /// The bus bit rate the limit is computed for.
        bitrate_bps: u32,
        /// Frames the harness's receive queue could not hold.
        rx_dropped: u64,
    },
    /// A link refused data for too long (the peer stopped reading).
    #[error(
        "link `{link}` took no data for {waited:?} at t = {t_s:.3} s: the flight computer stopped reading it"
    )]
    LinkStalled {
        /// The link.
        link: String,
        /// Simulation time.
        t_s: f64,
        /// How long the harness waited.
        waited: Duration,
    },
    /// The flight computer process exited.
    #[error(
        "flight computer exited at t = {t_s:.3} s: {status}{}",
        tail_note(stderr_tail)
    )]
    FcExited {
        /// Simulation time.
        t_s: f64,
        /// Exit status.
        status: String,
        /// The end of its standard error.
        stderr_tail: String,
    },
    /// An ICD encoding failed (a bug or a DBC that lacks a message).
    #[error("ICD: {0}")]
    Codec(#[from] CodecError),
}

fn tail_note(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!("; its standard error ends: {}", t.replace('\n', " | "))
    }
}

/// A run that ended in error: the cause, and the link counters up to then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    /// What ended the run.
    pub error: RunError,
    /// The links' counters when it ended.
    pub links: LinkCounters,
}

/// The links and the flight computer of a run.
pub(crate) struct Wiring {
    /// The virtual bus, when the runner made it.
    pub bus: Option<VirtualBus>,
    pub can: Link,
    pub imu: Link,
    pub gnss: Link,
    pub fc: Option<FcProcess>,
    /// The emulated SLCAN adapter's channel state, when the FC reaches the bus so.
    slcan: Option<tokio::sync::watch::Receiver<capsule_links::slcan::ChannelState>>,
    /// The run's own temporary directory (bus socket, FC output by default); removed
    /// when the wiring is dropped.
    _dir: tempfile::TempDir,
}

/// A temporary directory whose `can.sock` fits in a Unix socket address (108 bytes):
/// in `TMPDIR` when that is short enough, else in `/tmp`.
fn run_dir() -> Result<tempfile::TempDir, RunError> {
    let make = |base: Option<&std::path::Path>| {
        let mut b = tempfile::Builder::new();
        b.prefix("hil-");
        match base {
            Some(d) => b.tempdir_in(d),
            None => b.tempdir(),
        }
    };
    let fits = |d: &tempfile::TempDir| d.path().join("can.sock").as_os_str().len() < 100;
    let d = make(None)
        .map_err(|e| RunError::Setup(format!("cannot make a temporary directory: {e}")))?;
    if fits(&d) {
        return Ok(d);
    }
    let d = make(Some(std::path::Path::new("/tmp")))
        .map_err(|e| RunError::Setup(format!("cannot make a temporary directory in /tmp: {e}")))?;
    if fits(&d) {
        Ok(d)
    } else {
        Err(RunError::Setup(format!(
            "no temporary directory short enough for a Unix socket (tried TMPDIR and /tmp: {})",
            d.path().display()
        )))
    }
}

impl Wiring {
    /// Opens or makes the links and starts the flight computer, waiting (up to the
    /// join timeout, and no longer than the flight computer lives or the stop flag
    /// allows) for it to join the bus.
    /// `serial_bauds`: the IMU and GNSS lines' speeds for simulated ports (the
    /// binding's).
    pub async fn new(cfg: &RunConfig, serial_bauds: (u32, u32)) -> Result<Self, RunFailure> {
        let fail = |error: RunError| RunFailure {
            error,
            links: LinkCounters::default(),
        };
        let dir = run_dir().map_err(fail)?;
        let mut slcan = None;
        let (bus, can, can_far) = match &cfg.links.can {
            Some(a) => (
                None,
                capsule_links::open("can", a)
                    .await
                    .map_err(|e| fail(e.into()))?,
                None,
            ),
            None if cfg.fc_can == FcCanTransport::Slcan => {
                let a = capsule_links::slcan::adapter_on_pty_for_bus("can", BITRATE_BPS)
                    .map_err(|e| fail(e.into()))?;
                slcan = Some(a.state);
                (
                    None,
                    a.link,
                    Some(format!("slcan:{}@{SLCAN_TTY_BAUD},{BITRATE_BPS}", a.path)),
                )
            }
            None => {
                let sock = dir.path().join("can.sock").display().to_string();
                let timing = match cfg.clock {
                    Clock::Lockstep => BusTiming::Lockstep,
                    Clock::Realtime(_) => BusTiming::Paced,
                };
                let bus = VirtualBus::bind_with(&sock, BITRATE_BPS, timing)
                    .await
                    .map_err(|e| fail(e.into()))?;
                let can = vbus::connect("can", &sock)
                    .await
                    .map_err(|e| fail(e.into()))?;
                (Some(bus), can, Some(format!("vbus:{sock}")))
            }
        };
        let (imu, imu_far) = serial_link("imu", &cfg.links.imu, serial_bauds.0)
            .await
            .map_err(|e| fail(e.into()))?;
        let (gnss, gnss_far) = serial_link("gnss", &cfg.links.gnss, serial_bauds.1)
            .await
            .map_err(|e| fail(e.into()))?;
        let mut w = Self {
            bus,
            can,
            imu,
            gnss,
            fc: None,
            slcan,
            _dir: dir,
        };
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
            let args = substitute(cmd, &c, &i, &g);
            if let Err(error) = w.start_fc(cfg, &args).await {
                let links = w.counters();
                w.close(&cfg.stop).await;
                return Err(RunFailure { error, links });
            }
        }
        Ok(w)
    }

    /// Starts the flight computer and waits (up to the join timeout, and no longer
    /// than it lives or the stop flag allows) for it to join the bus.
    async fn start_fc(&mut self, cfg: &RunConfig, args: &[String]) -> Result<(), RunError> {
        let out_dir = cfg
            .fc_output_dir
            .clone()
            .unwrap_or_else(|| self._dir.path().to_path_buf());
        let mut p = FcProcess::spawn(args, &out_dir).map_err(RunError::Setup)?;
        // What joining means on this transport, and what to say when it does not come.
        let (joined, what): (std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>>, _) =
            match (&self.slcan, &self.bus) {
                (Some(st), _) => {
                    let mut st = st.clone();
                    (
                        Box::pin(async move {
                            tokio::time::timeout(cfg.join_timeout, st.wait_for(|s| s.open))
                                .await
                                .is_ok_and(|r| r.is_ok())
                        }),
                        "opened its SLCAN channel (`O` or `L`)",
                    )
                }
                (None, Some(b)) => (
                    Box::pin(b.wait_for_nodes(2, cfg.join_timeout)),
                    "joined the CAN bus",
                ),
                (None, None) => {
                    self.fc = Some(p);
                    return Ok(());
                }
            };
        let joined = tokio::select! {
            j = joined => Some(j),
            st = p.child.wait() => {
                let status = st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let tail = p.stderr_tail(600);
                p.end(&cfg.stop, true).await;
                return Err(RunError::FcExited { t_s: 0.0, status: format!("{status}, before it {what}"), stderr_tail: tail });
            }
            _ = cfg.stop.wait() => None,
        };
        if joined == Some(false) {
            let note = match self.bus.as_ref().map(|b| b.counters().bad_records) {
                Some(bad) if bad > 0 => {
                    format!("; {bad} malformed records arrived on the virtual bus")
                }
                _ => String::new(),
            };
            let tail = p.stderr_tail(600);
            p.end(&cfg.stop, false).await;
            return Err(RunError::Setup(format!(
                "flight computer never {what} within {:?} (still running){note}{}",
                cfg.join_timeout,
                tail_note(&tail)
            )));
        }
        self.fc = Some(p);
        Ok(())
    }

    /// The counters of every link (and of the virtual bus).
    pub fn counters(&self) -> LinkCounters {
        LinkCounters {
            links: [&self.can, &self.imu, &self.gnss]
                .iter()
                .map(|l| (l.name().to_string(), l.stats()))
                .collect(),
            bus: self.bus.as_ref().map(VirtualBus::counters),
        }
    }

    /// Closes the links and ends the flight computer's process group (see
    /// [`crate::process`]): gently unless the stop is forced.
    pub async fn close(self, stop: &Stop) {
        let Self {
            bus,
            can,
            imu,
            gnss,
            fc,
            slcan: _,
            _dir,
        } = self;
        drop((can, imu, gnss, bus));
        if let Some(p) = fc {
            p.end(stop, false).await;
        }
    }
}

/// The virtual bus's bit rate, bit/s (the ICD's nominal rate).
pub const BITRATE_BPS: u32 = 500_000;

/// The serial speed given in the emulated SLCAN adapter's address (a pseudo-terminal
/// carries any speed; USB-CAN adapters are usually addressed at 115200).
pub const SLCAN_TTY_BAUD: u32 = 115_200;

/// Real time: how often the state handover is sent again until the flight computer
/// reports the handed-over mode, s.
pub const HANDOVER_RESEND_S: f64 = 0.5;

/// The flight computer's command line with the links' far ends put in: `{can}`,
/// `{imu}`, `{gnss}` (addresses such as `slcan:/dev/pts/3@115200,500000` or
/// `serial:/dev/pts/4@921600`) and `{can_device}`, `{imu_device}`, `{gnss_device}` (the
/// bare device or socket path, for programs that take a path).
pub fn substitute(cmd: &[String], can: &str, imu: &str, gnss: &str) -> Vec<String> {
    let device = |a: &str| {
        let rest = a.split_once(':').map_or(a, |(_, r)| r);
        rest.split('@').next().unwrap_or(rest).to_string()
    };
    let (cd, id, gd) = (device(can), device(imu), device(gnss));
    cmd.iter()
        .map(|a| {
            a.replace("{can_device}", &cd)
                .replace("{imu_device}", &id)
                .replace("{gnss_device}", &gd)
                .replace("{can}", can)
                .replace("{imu}", imu)
                .replace("{gnss}", gnss)
        })
        .collect()
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

/// Real time: waits (up to the join timeout, no longer than the flight computer lives
/// or the stop flag allows) for the flight computer's readiness signal, the first frame
/// of one of [`RunConfig::ready_messages`]. What it sends meanwhile is recorded at the
/// run's start time.
async fn wait_ready(core: &mut LoopCore, w: &mut Wiring, cfg: &RunConfig) -> Result<(), RunError> {
    let ids: Vec<u32> = cfg
        .ready_messages
        .iter()
        .filter_map(|n| core.db().by_name(n).map(|m| m.id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let t0 = core.twin.time_s();
    let deadline = tokio::time::Instant::now() + cfg.join_timeout;
    let Wiring { can, fc, .. } = w;
    loop {
        let exited = async {
            match fc.as_mut() {
                Some(p) => p
                    .child
                    .wait()
                    .await
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = can.recv() => {
                let rx = r?;
                core.tap_wire(LINK_CAN, Dir::Rx, &rx.packet, t0);
                if let capsule_links::Packet::Frame(f) = rx.packet {
                    core.on_fc_frame(f, t0);
                    if ids.contains(&f.id) {
                        return Ok(());
                    }
                }
            }
            status = exited => {
                return Err(RunError::FcExited { t_s: t0, status: format!("{status}, before its readiness signal ({})", cfg.ready_messages.join(" or ")), stderr_tail: String::new() });
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(RunError::NotReady {
                    link: can.name().to_string(),
                    messages: cfg.ready_messages.clone(),
                    timeout: cfg.join_timeout,
                });
            }
            _ = cfg.stop.wait() => return Ok(()),
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
) -> Result<RunRecord, RunFailure> {
    let mut wiring = Wiring::new(cfg, devices.serial_bauds()).await?;
    let mut core = LoopCore::new(cfg.clone(), db, twin, devices);
    let ready = match cfg.clock {
        Clock::Realtime(_) => wait_ready(&mut core, &mut wiring, cfg).await,
        Clock::Lockstep => Ok(()),
    };
    // Real time: the loop sends the handover itself at its first step, so that what the
    // flight computer answers is timed after the scenario's start, never tied with it.
    let handover = match cfg.clock {
        Clock::Lockstep => ready.and_then(|()| core.handover()),
        Clock::Realtime(_) => ready.map(|()| Vec::new()),
    };
    let result = match handover {
        Err(e) => Err(e),
        Ok(frames) => {
            let mut r = Ok(());
            let t0 = core.twin.time_s();
            for f in frames {
                let p = capsule_links::Packet::Frame(f);
                match crate::lockstep::send_within(&wiring.can, p.clone(), cfg, t0).await {
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                    Ok(Ok(())) => core.tap_wire(LINK_CAN, Dir::Tx, &p, t0),
                    Ok(Err(_)) => break,
                }
            }
            match r {
                Err(e) => Err(e),
                Ok(()) => match cfg.clock {
                    Clock::Lockstep => crate::lockstep::drive(&mut core, &mut wiring)
                        .await
                        .map(|end| (end, None)),
                    Clock::Realtime(budget) => {
                        let (c, w, r) = crate::realtime::drive(core, wiring, budget).await;
                        core = c;
                        wiring = w;
                        r.map(|(end, timing)| (end, Some(timing)))
                    }
                },
            }
        }
    };
    // What the flight computer sent after the loop's last look is on the wire too.
    let t_end = core.twin.time_s();
    while let Some(Ok(rx)) = wiring.can.try_recv() {
        core.tap_wire(LINK_CAN, Dir::Rx, &rx.packet, t_end);
    }
    let links = wiring.counters();
    // The FC's exit status is part of the cause when it died.
    let result = match result {
        Err(RunError::FcExited { t_s, status, .. }) => Err(RunError::FcExited {
            t_s,
            status,
            stderr_tail: wiring
                .fc
                .as_ref()
                .map(|p| p.stderr_tail(600))
                .unwrap_or_default(),
        }),
        r => r,
    };
    wiring.close(&cfg.stop).await;
    match result {
        Ok((end, timing)) => Ok(core.finish(cfg.clock.name(), end, timing, links)),
        Err(error) => Err(RunFailure { error, links }),
    }
}
