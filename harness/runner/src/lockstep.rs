//! The lockstep clock: simulation time drives the flight computer.
//!
//! Per flight-computer cycle (default 10 physics steps = 10 ms): the device emulators
//! produce their wire output step by step; at the cycle end the runner writes the
//! serial bytes, the CAN frames, `SIM_Sync` (serial byte counts) and `SIM_Tick`, then
//! collects the flight computer's frames up to `SIM_Ack` and hands them to the devices,
//! which act on the twin. Everything is recorded with simulation time, so two runs with
//! the same inputs give the same record. A flight computer that stops answering or
//! exits, and a link that closes, end the run with an error naming them.

use crate::cycle::{LINK_CAN, LINK_GNSS, LINK_IMU, LoopCore};
use crate::devices::Outputs;
use crate::record::EndReason;
use crate::session::{RunError, Wiring};
use capsule_links::Packet;

/// Runs lockstep cycles until the run ends.
pub(crate) async fn drive(core: &mut LoopCore, w: &mut Wiring) -> Result<EndReason, RunError> {
    let db = core.db().clone();
    let get = |n: &str| {
        db.by_name(n)
            .cloned()
            .ok_or_else(|| RunError::Setup(format!("the DBC lacks {n} (needed for lockstep)")))
    };
    let (tick, sync) = (get("SIM_Tick")?, get("SIM_Sync")?);
    get("SIM_Ack")?;
    let dt_s = core.twin.dt_s();
    let cycle_steps = core.cfg.cycle_steps;
    let ack_timeout = core.cfg.ack_timeout;
    let mut cycle = 0u64;
    loop {
        let mut out = Outputs::default();
        core.step(cycle_steps, &mut out)?;
        let t = core.twin.time_s();
        for (link, p) in core.route(out, dt_s * f64::from(cycle_steps)) {
            match link {
                LINK_IMU => w.imu.send(p).await?,
                LINK_GNSS => w.gnss.send(p).await?,
                LINK_CAN => w.can.send(p).await?,
                _ => {}
            }
        }
        let (imu_total, gnss_total) = core.serial_totals();
        let sync_f = sync.encode(&[
            ("SIM_ImuBytes", (imu_total % (1u64 << 32)) as f64),
            ("SIM_GnssBytes", (gnss_total % (1u64 << 32)) as f64),
        ])?;
        let tick_f = tick.encode(&[
            ("SIM_TimeUs", (t * 1e6).round()),
            ("SIM_Step", (cycle % 65_536) as f64),
        ])?;
        w.can.send(Packet::Frame(sync_f)).await?;
        w.can.send(Packet::Frame(tick_f)).await?;
        // Collect the FC's outputs up to its acknowledgement.
        loop {
            let r = match &mut w.child {
                Some(child) => tokio::select! {
                    r = tokio::time::timeout(ack_timeout, w.can.recv()) => r,
                    st = child.wait() => {
                        let status = st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        return Err(RunError::FcExited { t_s: t, status });
                    }
                },
                None => tokio::time::timeout(ack_timeout, w.can.recv()).await,
            };
            let rx = match r {
                Ok(Ok(rx)) => rx,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(RunError::FcTimeout {
                        t_s: t,
                        timeout: ack_timeout,
                    });
                }
            };
            let Packet::Frame(f) = rx.packet else {
                continue;
            };
            if core.on_fc_frame(f, t).0 {
                break;
            }
        }
        cycle += 1;
        core.end_cycle();
        if let Some(end) = core.end_reason() {
            return Ok(end);
        }
    }
}
