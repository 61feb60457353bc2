//! The lockstep clock: simulation time drives the flight computer.
//!
//! Per flight-computer cycle (default 10 physics steps = 10 ms): the device emulators
//! produce their wire output step by step; at the cycle end the runner writes the
//! serial bytes, the CAN frames, `SIM_Sync` (serial byte counts) and `SIM_Tick`, then
//! collects the flight computer's frames up to `SIM_Ack` and hands them to the devices,
//! which act on the twin. Everything is recorded with simulation time, so two runs with
//! the same inputs give the same record.
//!
//! Every wait is bounded and observes the stop flag:
//! - a write that a link does not take within the silence timeout (the flight computer
//!   stopped reading a serial line and its buffer is full) ends the run naming the link;
//! - the acknowledgement must arrive within the silence timeout of the tick, whatever
//!   else the flight computer sends meanwhile;
//! - more frames from the flight computer in one cycle than the bus could carry in the
//!   cycle's time is a flood, and ends the run naming it (so memory stays bounded);
//! - a frame lost in the harness's receive queue ends the run (lockstep must see
//!   everything to stay deterministic);
//! - an acknowledgement whose `SIM_AckTimeUs` / `SIM_AckStep` are not the tick's ends
//!   the run naming both;
//! - a serial line the flight computer closes ends the run naming the line;
//! - a stop request ends the run as interrupted, wherever it waits.

use crate::cycle::{LINK_CAN, LINK_GNSS, LINK_IMU, LoopCore};
use crate::devices::Outputs;
use crate::record::EndReason;
use crate::session::{BITRATE_BPS, RunConfig, RunError, Wiring};
use crate::tap::Dir;
use capsule_icd::binding::encode_one;
use capsule_icd::can::CanFrame;
use capsule_links::{Link, Packet};

/// What ended a bounded wait early.
pub(crate) enum Waited {
    /// The stop flag was raised.
    Stopped,
}

/// Queues `p` on `link`, waiting for room at most the silence timeout and no longer
/// than the stop flag allows. `Ok(Err(Waited::Stopped))` when stopped.
pub(crate) async fn send_within(
    link: &Link,
    p: Packet,
    cfg: &RunConfig,
    t_s: f64,
) -> Result<Result<(), Waited>, RunError> {
    // Fast path: room in the queue (no timer, no waiter registered).
    let Some(p) = link.send_now(p)? else {
        return Ok(Ok(()));
    };
    tokio::select! {
        r = tokio::time::timeout(cfg.ack_timeout, link.send(p)) => match r {
            Ok(r) => r.map(Ok).map_err(Into::into),
            Err(_) => Err(RunError::LinkStalled { link: link.name().to_string(), t_s, waited: cfg.ack_timeout }),
        },
        _ = cfg.stop.wait() => Ok(Err(Waited::Stopped)),
    }
}

/// The most classic frames (8 data bytes, worst-case stuffing) a bus carries in
/// `window_s` at `bitrate_bps`, and never fewer than 64 (start-up bursts of a short
/// cycle).
pub(crate) fn bus_capacity(window_s: f64, bitrate_bps: u32) -> u64 {
    let bits = capsule_links::vbus::frame_bits(&CanFrame::new(0, &[0; 8]));
    ((window_s * f64::from(bitrate_bps) / bits as f64).floor() as u64).max(64)
}

/// Runs lockstep cycles until the run ends.
pub(crate) async fn drive(core: &mut LoopCore, w: &mut Wiring) -> Result<EndReason, RunError> {
    let icd = core.icd().clone();
    let ls = &icd.lockstep;
    let step_modulo = ls.tick_step.modulo();
    let dt_s = core.twin.dt_s();
    let cycle_steps = core.cfg.cycle_steps;
    let cfg = core.cfg.clone();
    let cycle_s = dt_s * f64::from(cycle_steps);
    let flood_limit = bus_capacity(cycle_s, BITRATE_BPS);
    let mut cycle = 0u64;
    // Paced for a viewer: simulation time never runs ahead of `pace` x wall time.
    let paced_from = std::time::Instant::now();
    let t_paced_from = core.twin.time_s();
    // Every packet goes on the record stream once its link has taken it.
    macro_rules! send {
        ($n:expr, $link:expr, $p:expr, $t:expr) => {
            let copy = $p.clone();
            if let Err(Waited::Stopped) = send_within($link, $p, &cfg, $t).await? {
                return Ok(EndReason::Interrupted);
            }
            core.tap_wire($n, Dir::Tx, &copy, $t);
        };
    }
    loop {
        let mut out = Outputs::default();
        core.step(cycle_steps, &mut out)?;
        let t = core.twin.time_s();
        for (link, p) in core.route(out, cycle_s) {
            match link {
                LINK_IMU => {
                    send!(LINK_IMU, &w.imu, p, t);
                }
                LINK_GNSS => {
                    send!(LINK_GNSS, &w.gnss, p, t);
                }
                LINK_CAN => {
                    send!(LINK_CAN, &w.can, p, t);
                }
                _ => {}
            }
        }
        // A serial line that closed (the FC hung up, a stalled write) ends the run
        // naming it; what the FC sends on them is not part of the ICD and is dropped.
        for (n, l) in [(LINK_IMU, &mut w.imu), (LINK_GNSS, &mut w.gnss)] {
            while let Some(r) = l.try_recv() {
                core.tap_wire(n, Dir::Rx, &r?.packet, t);
            }
        }
        let (imu_total, gnss_total) = core.serial_totals();
        let sync_f = encode_one(&[
            (
                &ls.sync_imu_bytes,
                (imu_total % ls.sync_imu_bytes.modulo()) as f64,
            ),
            (
                &ls.sync_gnss_bytes,
                (gnss_total % ls.sync_gnss_bytes.modulo()) as f64,
            ),
        ])?;
        let t_tick_s = (t * 1e6).round() / 1e6;
        let step = cycle % step_modulo;
        let tick_f = encode_one(&[(&ls.tick_time, t_tick_s), (&ls.tick_step, step as f64)])?;
        // The acknowledgement must carry the tick's time and step as they went on the
        // wire (compared in wire units: no rounding on the way back).
        let t_wire = ls.tick_time.read_wire(&tick_f);
        send!(LINK_CAN, &w.can, Packet::Frame(sync_f), t);
        send!(LINK_CAN, &w.can, Packet::Frame(tick_f), t);
        // Collect the FC's outputs up to its acknowledgement, within one deadline.
        let deadline = tokio::time::Instant::now() + cfg.ack_timeout;
        let mut frames = 0u64;
        loop {
            // Fast path: a frame already queued needs no timer or waiter.
            let r = match w.can.try_recv() {
                Some(r) => Ok(r),
                None => match w.fc.as_mut() {
                    Some(p) => tokio::select! {
                        r = tokio::time::timeout_at(deadline, w.can.recv()) => r,
                        st = p.child.wait() => {
                            let status = st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                            return Err(RunError::FcExited { t_s: t, status, stderr_tail: String::new() });
                        }
                        _ = cfg.stop.wait() => return Ok(EndReason::Interrupted),
                    },
                    None => tokio::select! {
                        r = tokio::time::timeout_at(deadline, w.can.recv()) => r,
                        _ = cfg.stop.wait() => return Ok(EndReason::Interrupted),
                    },
                },
            };
            if cfg.stop.is_requested() {
                return Ok(EndReason::Interrupted);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RunError::FcTimeout {
                    t_s: t,
                    timeout: cfg.ack_timeout,
                    frames,
                });
            }
            let rx = match r {
                Ok(Ok(rx)) => rx,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(RunError::FcTimeout {
                        t_s: t,
                        timeout: cfg.ack_timeout,
                        frames,
                    });
                }
            };
            core.tap_wire(LINK_CAN, Dir::Rx, &rx.packet, t);
            let rx_dropped = w.can.stats().rx_dropped;
            frames += 1;
            if frames > flood_limit || rx_dropped > 0 {
                return Err(RunError::FcFlood {
                    link: w.can.name().to_string(),
                    t_s: t,
                    frames,
                    window_s: cycle_s,
                    limit: flood_limit,
                    bitrate_bps: BITRATE_BPS,
                    rx_dropped,
                });
            }
            let Packet::Frame(f) = rx.packet else {
                continue;
            };
            if core.on_fc_frame(f, t).0 {
                if f.dlc < ls.ack_time.message().dlc {
                    return Err(capsule_icd::can::CodecError::ShortFrame {
                        message: ls.ack_time.message().name.clone(),
                        expected: ls.ack_time.message().dlc,
                        got: f.dlc,
                    }
                    .into());
                }
                let got_wire = ls.ack_time.read_wire(&f);
                let got_step = ls.ack_step.read_wire(&f);
                if (got_wire - ls.ack_time.to_wire(ls.tick_time.from_wire(t_wire))).abs()
                    > 0.5 * ls.ack_time.def().factor.abs()
                    || got_step != step as f64
                {
                    return Err(RunError::FcAckMismatch {
                        t_s: t,
                        expected_us: (t_tick_s * 1e6).round() as u64,
                        expected_step: step,
                        got_us: (ls.ack_time.from_wire(got_wire) * 1e6).round().max(0.0) as u64,
                        got_step: got_step.max(0.0) as u64,
                    });
                }
                break;
            }
        }
        if cycle == 0 {
            // The FC is running its loop: it has opened the serial lines it will use,
            // so from now on its closing one is seen as a hang-up.
            w.imu.peer_attached();
            w.gnss.peer_attached();
        }
        cycle += 1;
        core.end_cycle();
        core.view_counters(|| w.counters());
        if let Some(end) = core.end_reason() {
            return Ok(end);
        }
        if let Some(pace) = cfg.pace {
            let due = std::time::Duration::from_secs_f64(
                ((core.twin.time_s() - t_paced_from) / pace).max(0.0),
            );
            if let Some(wait) = due.checked_sub(paced_from.elapsed()) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cfg.stop.wait() => return Ok(EndReason::Interrupted),
                }
            }
        }
    }
}
