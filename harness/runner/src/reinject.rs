//! Re-injection: the recorded avionics commands drive a fresh twin, with no flight
//! computer and no links.
//!
//! The flight computer's frames of a recording (with their recorded bus times) are
//! handed to the device emulators exactly where the loop handed them over: in lockstep
//! after the cycle's tick, in real time before the physics step that followed their
//! wire time. On a lockstep recording everything else (devices, faults, injections,
//! their seeds) is the same too, so the twin's trajectory comes out bit for bit the
//! recorded one: an anomaly seen on a bench can be studied at a desk.

use crate::cycle::LoopCore;
use crate::devices::{Devices, Outputs};
use crate::record::{FrameRecord, LinkCounters, RunRecord};
use crate::session::{Clock, RunConfig, RunError};
use capsule_icd::can::CanDb;
use twin_core::twin::Twin;

/// Runs `twin` and `devices` under `cfg` (its clock says how the recording was paced;
/// links, the flight computer command and the tap are not used) with the flight
/// computer's recorded frames `fc_frames` (in time order) as the avionics, until the
/// run ends as `cfg` says or at `until_s` (the recording's end, for a stopped run).
pub fn reinject(
    cfg: &RunConfig,
    db: CanDb,
    twin: Twin,
    devices: Devices,
    fc_frames: &[FrameRecord],
    until_s: Option<f64>,
) -> Result<RunRecord, RunError> {
    let mut cfg = cfg.clone();
    cfg.tap = None;
    cfg.fc_command = None;
    let clock = cfg.clock;
    let mut core = LoopCore::new(cfg, db, twin, devices);
    core.handover()?;
    let lockstep = clock == Clock::Lockstep;
    let steps = if lockstep { core.cfg.cycle_steps } else { 1 };
    let cycle_s = core.twin.dt_s() * f64::from(steps);
    let mut next = 0usize;
    let mut feed = |core: &mut LoopCore, t: f64| {
        while let Some(r) = fc_frames.get(next)
            && r.t_s <= t + 1e-9
        {
            core.on_fc_frame(r.frame, r.t_s);
            next += 1;
        }
    };
    let end = loop {
        if !lockstep {
            let t = core.twin.time_s();
            feed(&mut core, t);
        }
        let mut out = Outputs::default();
        core.step(steps, &mut out)?;
        let _ = core.route(out, cycle_s);
        if lockstep {
            let t = core.twin.time_s();
            feed(&mut core, t);
        }
        core.end_cycle();
        if let Some(end) = core.end_reason() {
            break end;
        }
        if let Some(u) = until_s
            && core.twin.time_s() + 1e-9 >= u
        {
            break crate::record::EndReason::Interrupted;
        }
    };
    Ok(core.finish(clock.name(), end, None, LinkCounters::default()))
}
