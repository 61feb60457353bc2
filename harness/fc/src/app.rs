//! The FC process: command line, drivers, clock and the flight software loop.
//!
//! Usage: `capsule-fc --can vbus:PATH [--imu serial:PATH@921600] [--gnss serial:PATH@115200]
//!         [--clock lockstep|realtime] [--dbc FILE] [--binding FILE]`
//!
//! It speaks the ICD of the DBC and the binding it is given (the shipped ones when
//! not): every message and signal it uses is found through the binding. In lockstep it
//! runs one 10 ms cycle per lockstep tick and answers with the acknowledgement; in
//! real time it cycles on the wall clock. Exits 0 when the CAN bus closes, 2 on a
//! usage or start-up error.

use crate::drivers::{CanPort, open_serial};
use crate::fsw::Fsw;
use capsule_icd::Icd;
use capsule_icd::binding::{Sig, encode_one};
use capsule_icd::gnss::GnssStreamDecoder;
use capsule_icd::imu::ImuStreamDecoder;
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

struct Args {
    can: String,
    imu: Option<String>,
    gnss: Option<String>,
    lockstep: bool,
    dbc: Option<String>,
    binding: Option<String>,
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
        binding: None,
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
            "--binding" => a.binding = Some(val()?),
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
                "usage: capsule-fc --can vbus:PATH [--imu serial:PATH@BAUD] [--gnss serial:PATH@BAUD] [--clock lockstep|realtime] [--dbc FILE] [--binding FILE] [--defect NAME] | --list-defects"
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
    let read = |p: &Option<String>, what: &'static str, shipped: &str, built_in: &str| match p {
        Some(p) => capsule_files::read_text(std::path::Path::new(p), what)
            .map(|t| (p.clone(), t))
            .map_err(|e| e.to_string()),
        None => Ok((built_in.to_string(), shipped.to_string())),
    };
    let icd = read(
        &args.dbc,
        "DBC",
        capsule_icd::SHIPPED_DBC,
        "capsule.dbc (built in)",
    )
    .and_then(|(dn, dt)| {
        read(
            &args.binding,
            "binding",
            capsule_icd::SHIPPED_BINDING,
            "capsule.binding.toml (built in)",
        )
        .map(|(bn, bt)| (dn, dt, bn, bt))
    })
    .and_then(|(dn, dt, bn, bt)| Icd::load(&dn, &dt, &bn, &bt).map_err(|e| e.to_string()));
    let icd = match icd {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let b = icd.binding.clone();
    let ls = &b.lockstep;
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
    let mut fsw = Fsw::new(icd, 0x0C0F_FEE0).with_defect(args.defect);
    // The serial lines as the binding lays them out.
    let mut imu_dec = ImuStreamDecoder::with_layout(b.imu.clone(), 4096);
    let mut gnss_dec = GnssStreamDecoder::new(&b.gnss);
    let (mut ibuf, mut gbuf) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (mut dgs, mut sentences) = (Vec::new(), Vec::new());
    // Lockstep bookkeeping: serial bytes read so far, the counts SIM_Sync says were
    // written before the pending tick, and that tick.
    let (mut imu_bytes, mut gnss_bytes) = (0u64, 0u64);
    let (mut imu_target, mut gnss_target) = (0u64, 0u64);
    let mut pending_tick: Option<(f64, f64)> = None;
    // In lockstep, inputs wait for the tick and are applied in a fixed order (CAN, then
    // GNSS, then IMU), so the result never depends on which transport delivered first.
    let mut held_can: Vec<capsule_icd::can::CanFrame> = Vec::new();
    let mut start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tokio::select! {
            r = can.recv() => match r {
                Ok(f) if args.lockstep && is(&ls.tick_time, &f) => {
                    pending_tick = Some((ls.tick_time.read_wire(&f), ls.tick_step.read_wire(&f)));
                }
                Ok(f) if args.lockstep && is(&ls.sync_imu_bytes, &f) => {
                    imu_target = ls.sync_imu_bytes.read_wire(&f) as u64;
                    gnss_target = ls.sync_gnss_bytes.read_wire(&f) as u64;
                }
                Ok(f) if args.lockstep => held_can.push(f),
                Ok(f) => {
                    // In real time the state handover also sets the clock: the
                    // handover's time is "now" on the flight software's time base.
                    if is(&b.handover.time, &f) {
                        let since = std::time::Duration::try_from_secs_f64(b.handover.time.read(&f))
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
                    gnss_dec.push(&gbuf[..n], &mut sentences);
                    if !args.lockstep {
                        for s in sentences.drain(..) { fsw.on_gnss(&s); }
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
        if let (Some((t_wire, step)), true) = (pending_tick, serial_done) {
            pending_tick = None;
            for f in held_can.drain(..) {
                fsw.on_can(&f);
            }
            for s in sentences.drain(..) {
                fsw.on_gnss(&s);
            }
            for d in dgs.drain(..) {
                fsw.on_imu(&d);
            }
            let outs = match fsw.cycle(ls.tick_time.from_wire(t_wire)) {
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
            // The acknowledgement carries the tick's time and step as they came.
            let t_ack = ls.ack_time.to_wire(ls.tick_time.from_wire(t_wire));
            let Ok(ack) = encode_one(&[
                (&ls.ack_time, ls.ack_time.from_wire(t_ack)),
                (&ls.ack_step, step),
            ]) else {
                continue;
            };
            if can.send(&ack).await.is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// True when `f` is a frame of `s`'s message, long enough for it.
fn is(s: &Sig, f: &capsule_icd::can::CanFrame) -> bool {
    s.id() == f.id && f.dlc >= s.message().dlc
}
