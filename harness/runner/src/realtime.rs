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
//! configured timeout, and a link that closes, end the run with an error naming them.

use crate::cycle::{LINK_GNSS, LINK_IMU, LoopCore};
use crate::devices::Outputs;
use crate::record::{EndReason, Percentiles, TimingBudget, TimingReport};
use crate::session::{RunError, Wiring};
use capsule_links::clock::now_ns;
use capsule_links::{LinkError, Packet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long before a deadline the loop stops sleeping and starts yielding, ns.
const SPIN_NS: u64 = 150_000;

/// Waits until the monotonic clock reaches `deadline_ns`.
fn wait_until(deadline_ns: u64) {
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            return;
        }
        let left = deadline_ns - now;
        if left > SPIN_NS {
            std::thread::sleep(Duration::from_nanos(left - SPIN_NS));
        } else {
            std::thread::yield_now();
        }
    }
}

type Outcome = Result<(EndReason, TimingReport), RunError>;

/// Runs the real-time loop on a blocking thread and gives the state back.
pub(crate) async fn drive(
    core: LoopCore,
    mut w: Wiring,
    budget: TimingBudget,
) -> (LoopCore, Wiring, Outcome) {
    let exited: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    if let Some(mut child) = w.child.take() {
        let ex = exited.clone();
        w.watch = Some(tokio::spawn(async move {
            let st = child.wait().await;
            if let Ok(mut g) = ex.lock() {
                *g = Some(st.map_or_else(|e| e.to_string(), |s| s.to_string()));
            }
        }));
    }
    let h = tokio::task::spawn_blocking(move || {
        let (mut core, mut w) = (core, w);
        let r = run_loop(&mut core, &mut w, budget, &exited);
        (core, w, r)
    });
    match h.await {
        Ok(x) => x,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn run_loop(
    core: &mut LoopCore,
    w: &mut Wiring,
    budget: TimingBudget,
    exited: &Mutex<Option<String>>,
) -> Outcome {
    let dt_s = core.twin.dt_s();
    let dt_ns = (dt_s * 1e9).round().max(1.0) as u64;
    let silence_ns = core.cfg.ack_timeout.as_nanos() as u64;
    let t_sim0 = core.twin.time_s();
    let t0_ns = now_ns();
    let wire_time = |t_ns: u64| t_sim0 + (t_ns.saturating_sub(t0_ns)) as f64 * 1e-9;
    // Every step's lateness (ns, saturating at 4.29 s), in memory reserved up front
    // for the whole run so the loop never reallocates.
    let steps = ((core.cfg.max_time_s - t_sim0).max(0.0) / dt_s).ceil() as usize + 2;
    let mut lateness: Vec<u32> = Vec::with_capacity(steps);
    let mut command_latency: Vec<u64> = Vec::new();
    let mut pending: Vec<u64> = Vec::new();
    let mut overruns = 0u64;
    let mut last_fc_ns = t0_ns;
    let mut k = 0u64;
    let end = loop {
        k += 1;
        let deadline = t0_ns + k * dt_ns;
        wait_until(deadline);
        let late = now_ns().saturating_sub(deadline);
        lateness.push(u32::try_from(late).unwrap_or(u32::MAX));
        if late > dt_ns {
            overruns += 1;
        }
        if let Some(status) = exited.lock().ok().and_then(|g| g.clone()) {
            return Err(RunError::FcExited {
                t_s: core.twin.time_s(),
                status,
            });
        }
        while let Some(r) = w.can.try_recv() {
            let rx = r?;
            last_fc_ns = last_fc_ns.max(rx.t_ns);
            if let Packet::Frame(f) = rx.packet
                && core.on_fc_frame(f, wire_time(rx.t_ns)).1
            {
                pending.push(rx.t_ns);
            }
        }
        for l in [&mut w.imu, &mut w.gnss] {
            while let Some(r) = l.try_recv() {
                r?;
            }
        }
        let act_ns = now_ns();
        command_latency.extend(pending.drain(..).map(|t| act_ns.saturating_sub(t)));
        let mut out = Outputs::default();
        core.step(1, &mut out)?;
        for (link, p) in core.route(out, dt_s) {
            let l = match link {
                LINK_IMU => &w.imu,
                LINK_GNSS => &w.gnss,
                _ => &w.can,
            };
            match l.try_send(p) {
                // A full queue drops and counts (link statistics), as a real line would.
                Ok(()) | Err(LinkError::Full { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        core.end_cycle();
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
    let report = TimingReport::new(
        dt_s * 1e6,
        Percentiles::of_ns(&mut lateness),
        overruns,
        Percentiles::of_ns(&mut command_latency),
        budget,
    );
    Ok((end, report))
}
