//! The real-time clock: the wall clock paces every physics step.
//!
//! The loop runs on its own thread (the links' tasks keep running on the async
//! runtime, timestamping what they receive) and only does non-blocking queue operations
//! on the links. Step `k` has the deadline `t0 + k dt`; the loop sleeps to just before
//! it, then yields until it, and measures:
//! - **lateness**: wake-up time minus the deadline, every step;
//! - **overruns**: steps that start more than one period late (the loop then runs
//!   the missed steps back to back, so simulation time keeps up with the wall clock);
//! - **command latency**: from the link's receive timestamp of an avionics command to
//!   the start of the physics step that acts on it.
//!
//! The flight computer's frames are recorded at their wire time (receive timestamp on
//! the run's time base), so the checks judge when the avionics acted, not when the
//! loop got round to it. A flight computer that exits or stays silent longer than the
//! configured timeout, one that floods the bus (more than 3/4 of the bus's capacity over
//! one second, or more than the harness's receive queue holds), a serial line it closes
//! or stops reading, and a link that closes, end the run with an error naming them.
//! Timing goes into fixed-size histograms, so memory does not grow with the run.

use crate::cycle::{LINK_CAN, LINK_GNSS, LINK_IMU, LoopCore};
use crate::devices::Outputs;
use crate::lockstep::bus_capacity;
use crate::record::{DurationHistogram, EndReason, MAX_OVERRUN_TIMES, TimingBudget, TimingReport};
use crate::rt::{Grants, Pacer, prepare_current_thread};
use crate::session::{BITRATE_BPS, HANDOVER_RESEND_S, RunError, Wiring};
use crate::tap::Dir;
use capsule_links::clock::now_ns;
use capsule_links::{LinkError, Packet};

type Outcome = Result<(EndReason, TimingReport), RunError>;

/// Runs the real-time loop on a thread of its own (never a worker of the async
/// runtime, which keeps running the links' tasks) and gives the state back.
pub(crate) async fn drive(
    core: LoopCore,
    w: Wiring,
    budget: TimingBudget,
) -> (LoopCore, Wiring, Outcome) {
    // The state goes to the thread once it exists, so that a thread that cannot be
    // started leaves it here and the run ends with an error, not a panic.
    let (give, take) = std::sync::mpsc::sync_channel::<(LoopCore, Wiring)>(1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("hil-rt-loop".into())
        .spawn(move || {
            let Ok((mut core, mut w)) = take.recv() else {
                return;
            };
            let grants = prepare_current_thread(&core.cfg.rt);
            let r = run_loop(&mut core, &mut w, budget, &grants);
            let _ = tx.send((core, w, r));
        });
    let not_started = |e: String| {
        Err(RunError::Setup(format!(
            "cannot start the real-time loop's thread: {e}"
        )))
    };
    let h = match spawned {
        Ok(h) => h,
        Err(e) => return (core, w, not_started(e.to_string())),
    };
    if let Err(std::sync::mpsc::SendError((core, w))) = give.send((core, w)) {
        return (core, w, not_started("it ended at once".into()));
    }
    match rx.await {
        Ok(x) => {
            let _ = h.join();
            x
        }
        // The thread had the state and dropped its sender without sending: it
        // panicked; carry the panic on.
        Err(_) => match h.join() {
            Err(e) => std::panic::resume_unwind(e),
            Ok(()) => unreachable!("the loop thread sends its state unless it panics"),
        },
    }
}

/// The flood window, s, and the share of the bus's capacity the flight computer may
/// use over it.
const FLOOD_WINDOW_S: f64 = 1.0;
const FLOOD_SHARE: f64 = 0.75;

fn run_loop(core: &mut LoopCore, w: &mut Wiring, budget: TimingBudget, grants: &Grants) -> Outcome {
    let dt_s = core.twin.dt_s();
    let dt_ns = (dt_s * 1e9).round().max(1.0) as u64;
    let silence_ns = core.cfg.ack_timeout.as_nanos().min(u128::from(u64::MAX)) as u64;
    let t_sim0 = core.twin.time_s();
    let pacer = Pacer::new(core.cfg.rt.spin_ns.min(dt_ns / 2));
    let late_limit_ns = dt_ns / 10;
    let mut late_steps = 0u64;
    // The worst lateness of every 100 ms of the run, us (room made before the loop).
    let trace_slots = (core.cfg.max_time_s.clamp(0.0, 86_400.0) * 10.0).ceil() as usize + 2;
    let mut lateness_trace_us: Vec<u32> = vec![0; trace_slots.min(1 << 24)];
    let t0_ns = now_ns();
    let wire_time = |t_ns: u64| t_sim0 + (t_ns.saturating_sub(t0_ns)) as f64 * 1e-9;
    // Timing in fixed-size histograms: memory does not depend on the run's length.
    let mut lateness = DurationHistogram::new();
    let mut command_latency = DurationHistogram::new();
    let mut pending: Vec<(u64, usize)> = Vec::with_capacity(256);
    // Latency per command message, histograms made before the loop starts.
    let icd = core.icd().clone();
    let mut commands: Vec<(u32, String)> = [
        &icd.pyro.fire_mask,
        &icd.deorbit.ignite,
        &icd.rcs.valves,
        &icd.beacon.activate,
    ]
    .iter()
    .map(|s| (s.id(), s.message().name.clone()))
    .collect();
    commands.sort();
    commands.dedup();
    let mut by_command: Vec<DurationHistogram> =
        commands.iter().map(|_| DurationHistogram::new()).collect();
    let mut overrun_times_s: Vec<f64> = Vec::with_capacity(MAX_OVERRUN_TIMES);
    let flood_limit = (bus_capacity(FLOOD_WINDOW_S, BITRATE_BPS) as f64 * FLOOD_SHARE) as u64;
    let flood_window_ns = (FLOOD_WINDOW_S * 1e9) as u64;
    let (mut window_start_ns, mut window_frames) = (t0_ns, 0u64);
    let mut overruns = 0u64;
    let mut last_fc_ns = t0_ns;
    let mut attached = false;
    // The state handover goes at the first step, and again every HANDOVER_RESEND_S
    // until the flight computer reports the handed-over mode (when it gave a readiness
    // signal to wait for; without one it goes once).
    let mut handover_taken = false;
    let resend_ns = (HANDOVER_RESEND_S * 1e9) as u64;
    let mut last_handover_ns: Option<u64> = None;
    let mut k = 0u64;
    let end = loop {
        k += 1;
        let deadline = t0_ns + k * dt_ns;
        pacer.wait_until(deadline);
        let late = now_ns().saturating_sub(deadline);
        lateness.record(late);
        if late > late_limit_ns {
            late_steps += 1;
        }
        let slot = ((k * dt_ns) / 100_000_000) as usize;
        if let Some(m) = lateness_trace_us.get_mut(slot) {
            *m = (*m).max((late / 1000).min(u64::from(u32::MAX)) as u32);
        }
        if late > dt_ns {
            overruns += 1;
            if overrun_times_s.len() < MAX_OVERRUN_TIMES {
                overrun_times_s.push(core.twin.time_s());
            }
        }
        if k.is_multiple_of(10)
            && let Some(p) = w.fc.as_mut()
            && let Ok(Some(status)) = p.child.try_wait()
        {
            return Err(RunError::FcExited {
                t_s: core.twin.time_s(),
                status: status.to_string(),
                stderr_tail: String::new(),
            });
        }
        while let Some(r) = w.can.try_recv() {
            let rx = r?;
            core.tap_wire(LINK_CAN, Dir::Rx, &rx.packet, wire_time(rx.t_ns));
            last_fc_ns = last_fc_ns.max(rx.t_ns);
            window_frames += 1;
            if let Packet::Frame(f) = rx.packet
                && core.on_fc_frame(f, wire_time(rx.t_ns)).1
                && pending.len() < pending.capacity()
            {
                let k = commands
                    .iter()
                    .position(|(id, _)| *id == f.id)
                    .unwrap_or(usize::MAX);
                pending.push((rx.t_ns, k));
            }
        }
        if !handover_taken {
            let sent = last_handover_ns.is_some();
            if sent
                && (core.fc_mode_reported == Some(core.cfg.handover_mode)
                    || core.cfg.ready_messages.is_empty())
            {
                handover_taken = true;
            } else if last_handover_ns.is_none_or(|l| now_ns().saturating_sub(l) >= resend_ns) {
                last_handover_ns = Some(now_ns());
                let t = core.twin.time_s();
                if sent {
                    tracing::info!(
                        t_s = t,
                        "state handover sent again: the flight computer has not reported the handed-over mode"
                    );
                }
                for f in core.handover()? {
                    let p = Packet::Frame(f);
                    match w.can.try_send(p.clone()) {
                        Ok(()) => core.tap_wire(LINK_CAN, Dir::Tx, &p, t),
                        Err(LinkError::Full { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        if !attached && last_fc_ns > t0_ns {
            // The FC is on the bus and running: it has opened its serial lines.
            w.imu.peer_attached();
            w.gnss.peer_attached();
            attached = true;
        }
        let rx_dropped = w.can.stats().rx_dropped;
        if window_frames > flood_limit || rx_dropped > 0 {
            return Err(RunError::FcFlood {
                link: w.can.name().to_string(),
                t_s: core.twin.time_s(),
                frames: window_frames,
                window_s: FLOOD_WINDOW_S,
                limit: flood_limit,
                bitrate_bps: BITRATE_BPS,
                rx_dropped,
            });
        }
        let now = now_ns();
        if now.saturating_sub(window_start_ns) >= flood_window_ns {
            window_start_ns = now;
            window_frames = 0;
        }
        for (n, l) in [(LINK_IMU, &mut w.imu), (LINK_GNSS, &mut w.gnss)] {
            while let Some(r) = l.try_recv() {
                let rx = r?;
                core.tap_wire(n, Dir::Rx, &rx.packet, wire_time(rx.t_ns));
            }
        }
        let act_ns = now_ns();
        for (t, k) in pending.drain(..) {
            let d = act_ns.saturating_sub(t);
            command_latency.record(d);
            if let Some(h) = by_command.get_mut(k) {
                h.record(d);
            }
        }
        let mut out = Outputs::default();
        core.step(1, &mut out)?;
        let t_tx = core.twin.time_s();
        for (link, p) in core.route(out, dt_s) {
            let l = match link {
                LINK_IMU => &w.imu,
                LINK_GNSS => &w.gnss,
                _ => &w.can,
            };
            let copy = p.clone();
            match l.try_send(p) {
                Ok(()) => core.tap_wire(link, Dir::Tx, &copy, t_tx),
                // A full queue drops and counts (link statistics), as a real line would.
                Err(LinkError::Full { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        core.end_cycle();
        core.view_counters(|| w.counters());
        if let Some(end) = core.end_reason() {
            break end;
        }
        if now_ns().saturating_sub(last_fc_ns) > silence_ns {
            return Err(RunError::FcSilent {
                link: w.can.name().to_string(),
                t_s: core.twin.time_s(),
                timeout: core.cfg.ack_timeout,
            });
        }
    };
    let mut report = TimingReport::new(
        dt_s * 1e6,
        lateness.percentiles(),
        overruns,
        command_latency.percentiles(),
        budget,
    );
    report.lateness_bins = lateness.log_bins();
    report.late_steps = late_steps;
    report.grants = grants.to_string();
    report.budget_source = core.cfg.budget_source.clone();
    let used = ((k * dt_ns) / 100_000_000) as usize + 1;
    lateness_trace_us.truncate(used);
    report.lateness_trace_us = lateness_trace_us;
    report.lateness_trace_t0_s = t_sim0;
    report.overrun_times_s = overrun_times_s;
    report.command_latency_by_message = commands
        .into_iter()
        .zip(&by_command)
        .filter(|(_, h)| !h.is_empty())
        .map(|((_, n), h)| (n, h.percentiles()))
        .collect();
    Ok((end, report))
}
