//! The FC process: command line, drivers, clock and the flight software loop.
//!
//! Usage: `capsule-fc --can vbus:PATH [--imu serial:PATH@921600] [--gnss serial:PATH@115200]
//!         [--clock lockstep|realtime] [--dbc FILE]`
//!
//! In lockstep it runs one 10 ms cycle per `SIM_Tick` and answers `SIM_Ack`; in
//! real time it cycles on the wall clock. Exits 0 when the CAN bus closes, 2 on a
//! usage or start-up error.

use crate::drivers::{CanPort, open_serial};
use crate::fsw::Fsw;
use capsule_icd::can::CanDb;
use capsule_icd::imu::ImuStreamDecoder;
use capsule_icd::nmea::NmeaStreamDecoder;
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

const DEFAULT_DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");

struct Args {
    can: String,
    imu: Option<String>,
    gnss: Option<String>,
    lockstep: bool,
    dbc: Option<String>,
    defect: Option<crate::defects::Defect>,
    list_defects: bool,
}

fn parse_args(argv: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        can: String::new(),
        imu: None,
        gnss: None,
        lockstep: true,
        dbc: None,
        defect: None,
        list_defects: false,
    };
    let mut it = argv.into_iter();
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--can" => a.can = val()?,
            "--imu" => a.imu = Some(val()?),
            "--gnss" => a.gnss = Some(val()?),
            "--dbc" => a.dbc = Some(val()?),
            "--defect" => {
                let name = val()?;
                a.defect = Some(
                    crate::defects::Defect::parse(&name)
                        .ok_or_else(|| format!("unknown defect `{name}` (see --list-defects)"))?,
                );
            }
            "--list-defects" => a.list_defects = true,
            "--clock" => {
                a.lockstep = match val()?.as_str() {
                    "lockstep" => true,
                    "realtime" => false,
                    other => return Err(format!("--clock {other}: expected lockstep or realtime")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.can.is_empty() && !a.list_defects {
        return Err("--can is required".into());
    }
    Ok(a)
}

async fn read_opt(
    s: &mut Option<tokio_serial::SerialStream>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match s {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Runs the FC with these arguments (without the program name) until its CAN bus
/// closes. Blocks the calling thread (it has its own single-threaded runtime).
pub fn main_with_args(argv: Vec<String>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(argv)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(argv: Vec<String>) -> ExitCode {
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: capsule-fc --can vbus:PATH [--imu serial:PATH@BAUD] [--gnss serial:PATH@BAUD] [--clock lockstep|realtime] [--dbc FILE] [--defect NAME] | --list-defects"
            );
            return ExitCode::from(2);
        }
    };
    if args.list_defects {
        for d in crate::defects::Defect::ALL {
            println!("{}", d.name());
        }
        return ExitCode::SUCCESS;
    }
    let (dbc_name, dbc_text) = match &args.dbc {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.clone(), t),
            Err(e) => {
                eprintln!("error: cannot read {p}: {e}");
                return ExitCode::from(2);
            }
        },
        None => (
            "capsule.dbc (built in)".to_string(),
            DEFAULT_DBC.to_string(),
        ),
    };
    let db = match CanDb::from_dbc(&dbc_name, &dbc_text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (Some(tick_def), Some(ack_def)) = (
        db.by_name("SIM_Tick").cloned(),
        db.by_name("SIM_Ack").cloned(),
    ) else {
        eprintln!("error: the DBC lacks SIM_Tick / SIM_Ack (needed for lockstep)");
        return ExitCode::from(2);
    };
    let mut can = match CanPort::open(&args.can).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let open = |a: &Option<String>| a.as_ref().map(|x| open_serial(x)).transpose();
    let (mut imu, mut gnss) = match (open(&args.imu), open(&args.gnss)) {
        (Ok(i), Ok(g)) => (i, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let sync_def = db.by_name("SIM_Sync").cloned();
    let db_handover = db.by_name("HV_StateTime").cloned();
    let mut fsw = Fsw::new(db, 0x0C0F_FEE0).with_defect(args.defect);
    let mut imu_dec = ImuStreamDecoder::default();
    let mut nmea_dec = NmeaStreamDecoder::new();
    let (mut ibuf, mut gbuf) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (mut dgs, mut sentences) = (Vec::new(), Vec::new());
    // Lockstep bookkeeping: serial bytes read so far, the counts SIM_Sync says were
    // written before the pending tick, and that tick.
    let (mut imu_bytes, mut gnss_bytes) = (0u64, 0u64);
    let (mut imu_target, mut gnss_target) = (0u64, 0u64);
    let mut pending_tick: Option<(f64, f64)> = None;
    // In lockstep, inputs wait for the tick and are applied in a fixed order (CAN, then
    // NMEA, then IMU), so the result never depends on which transport delivered first.
    let mut held_can: Vec<capsule_icd::can::CanFrame> = Vec::new();
    let handover_def = db_handover;
    let mut start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tokio::select! {
            r = can.recv() => match r {
                Ok(f) if args.lockstep && f.id == tick_def.id => {
                    if let Ok(v) = tick_def.decode(&f) {
                        pending_tick = Some((value(&v, "SIM_TimeUs"), value(&v, "SIM_Step")));
                    }
                }
                Ok(f) if args.lockstep && sync_def.as_ref().is_some_and(|s| s.id == f.id) => {
                    if let Some(Ok(v)) = sync_def.as_ref().map(|s| s.decode(&f)) {
                        imu_target = value(&v, "SIM_ImuBytes") as u64;
                        gnss_target = value(&v, "SIM_GnssBytes") as u64;
                    }
                }
                Ok(f) if args.lockstep => held_can.push(f),
                Ok(f) => {
                    // In real time the state handover also sets the clock: the
                    // handover's time is "now" on the flight software's time base.
                    if handover_def.as_ref().is_some_and(|h| h.id == f.id)
                        && let Some(Ok(v)) = handover_def.as_ref().map(|h| h.decode(&f))
                        && let Some(&(_, t_us)) = v.iter().find(|(n, _)| *n == "HV_TimeUs")
                    {
                        let since = std::time::Duration::try_from_secs_f64(t_us * 1e-6)
                            .unwrap_or_default();
                        start = tokio::time::Instant::now()
                            .checked_sub(since)
                            .unwrap_or(start);
                    }
                    fsw.on_can(&f)
                }
                Err(_) => return ExitCode::SUCCESS,
            },
            r = read_opt(&mut imu, &mut ibuf) => match r {
                Ok(n) if n > 0 => {
                    imu_bytes += n as u64;
                    imu_dec.push(&ibuf[..n], &mut dgs);
                    if !args.lockstep {
                        for d in dgs.drain(..) { fsw.on_imu(&d); }
                    }
                }
                _ => imu = None,
            },
            r = read_opt(&mut gnss, &mut gbuf) => match r {
                Ok(n) if n > 0 => {
                    gnss_bytes += n as u64;
                    nmea_dec.push(&gbuf[..n], &mut sentences);
                    if !args.lockstep {
                        for s in sentences.drain(..) { fsw.on_nmea(&s); }
                    }
                }
                _ => gnss = None,
            },
            _ = tick.tick(), if !args.lockstep => {
                let t = start.elapsed().as_secs_f64();
                match fsw.cycle(t) {
                    Ok(outs) => for o in outs {
                        if can.send(&o).await.is_err() { return ExitCode::SUCCESS; }
                    },
                    Err(e) => { eprintln!("error: {e}"); return ExitCode::from(1); }
                }
            }
        }
        // A tick runs once every serial byte written before it has been read (a closed
        // line counts as complete).
        let serial_done = (imu.is_none() || imu_bytes >= imu_target)
            && (gnss.is_none() || gnss_bytes >= gnss_target);
        if let (Some((t_us, step)), true) = (pending_tick, serial_done) {
            pending_tick = None;
            for f in held_can.drain(..) {
                fsw.on_can(&f);
            }
            for s in sentences.drain(..) {
                fsw.on_nmea(&s);
            }
            for d in dgs.drain(..) {
                fsw.on_imu(&d);
            }
            let outs = match fsw.cycle(t_us * 1e-6) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            for o in outs {
                if can.send(&o).await.is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            let Ok(ack) = ack_def.encode(&[("SIM_AckTimeUs", t_us), ("SIM_AckStep", step)]) else {
                continue;
            };
            if can.send(&ack).await.is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// A decoded signal's value by name (0 when the message lacks it): never by position,
/// since another DBC may order a message's signals differently.
fn value(decoded: &[(&str, f64)], name: &str) -> f64 {
    decoded
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0.0, |(_, v)| *v)
}
