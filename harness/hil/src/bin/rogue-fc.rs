//! A deliberately misbehaving flight computer, for the hardening tests
//! (`harness/hil/tests/fc_*.rs`). It speaks just enough of the ICD to look alive
//! (acknowledges lockstep ticks, sends a heartbeat in real time) and then misbehaves
//! in one way:
//!
//! | mode | what it does |
//! |---|---|
//! | `stops-reading` | opens the IMU and GNSS lines and never reads them |
//! | `closes-line` | closes the IMU line after 0.3 s of simulated time |
//! | `floods` | sends frames as fast as it can, acknowledging ticks |
//! | `floods-silent` | sends frames as fast as it can, never acknowledging |
//! | `garbage` | writes malformed records on the bus socket, then behaves |
//! | `forges` | sends `Baro_Data` frames (the barometer's identifier) |
//! | `wrong-ack` | acknowledges every tick with time 0 and step 0 |
//! | `exits` | prints a line on standard error and exits with status 3 at once |
//! | `children` | starts `sleep 600` (its pid to `--pidfile`), then behaves |
//! | `behaves` | acknowledges ticks and sends a heartbeat, nothing else |
//! | `never-joins` | opens its serial lines and sleeps, never joining the bus |
//! | `ignores-ticks` | joins the bus and never answers anything |
//!
//! Usage: `rogue-fc MODE --can vbus:PATH --imu serial:PATH@BAUD --gnss serial:PATH@BAUD
//! [--clock lockstep|realtime] [--pidfile FILE] [--tag TEXT]`.

use capsule_fc::drivers::{CanPort, open_serial};
use capsule_icd::can::{CanDb, CanFrame};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const DBC: &str = include_str!("../../../../fixtures/icd/capsule.dbc");

struct Args {
    mode: String,
    can: String,
    imu: String,
    gnss: String,
    lockstep: bool,
    pidfile: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: rogue-fc MODE --can ... --imu ... --gnss ...")?;
    let mut a = Args {
        mode,
        can: String::new(),
        imu: String::new(),
        gnss: String::new(),
        lockstep: true,
        pidfile: None,
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--can" => a.can = v,
            "--imu" => a.imu = v,
            "--gnss" => a.gnss = v,
            "--clock" => a.lockstep = v == "lockstep",
            "--pidfile" => a.pidfile = Some(v),
            // A marker in the command line, so tests can find the process.
            "--tag" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rogue-fc: {e}");
            return ExitCode::from(2);
        }
    };
    if a.mode == "exits" {
        eprintln!("rogue-fc: exiting at once, as asked");
        return ExitCode::from(3);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rogue-fc: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rogue-fc: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(a: Args) -> Result<(), String> {
    let db = CanDb::from_dbc("capsule.dbc", DBC).map_err(|e| e.to_string())?;
    let def = |n: &str| db.by_name(n).cloned().ok_or(format!("no {n}"));
    let (tick, ack, status, baro) = (
        def("SIM_Tick")?,
        def("SIM_Ack")?,
        def("FC_Status")?,
        def("Baro_Data")?,
    );
    if a.mode == "children" {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(p) = &a.pidfile {
            std::fs::write(p, child.id().to_string()).map_err(|e| e.to_string())?;
        }
        // The child is left running on purpose: the harness must end it.
        std::mem::forget(child);
    }
    let mut imu = Some(open_serial(&a.imu).map_err(|e| e.to_string())?);
    let mut gnss = Some(open_serial(&a.gnss).map_err(|e| e.to_string())?);
    if a.mode == "never-joins" {
        tokio::time::sleep(Duration::from_secs(600)).await;
        return Ok(());
    }
    let mut can = if a.mode == "garbage" {
        // On its own bus connection: a record with dlc = 12, then 20 records of 0xFF
        // bytes (their flags read as error frames); then it behaves on the same
        // connection, which must still be up.
        use tokio::io::AsyncWriteExt;
        let path = a.can.strip_prefix("vbus:").ok_or("vbus only")?;
        let mut s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| e.to_string())?;
        let mut bad = [0u8; 14];
        bad[0] = 0x21;
        bad[5] = 12;
        s.write_all(&bad).await.map_err(|e| e.to_string())?;
        s.write_all(&[0xFF; 14 * 20])
            .await
            .map_err(|e| e.to_string())?;
        CanPort::from_stream(s)
    } else {
        CanPort::open(&a.can).await.map_err(|e| e.to_string())?
    };
    let reads = a.mode != "stops-reading";
    let (mut ibuf, mut gbuf) = ([0u8; 4096], [0u8; 4096]);
    let mut heartbeat = tokio::time::interval(Duration::from_millis(100));
    let start = tokio::time::Instant::now();
    let flood = CanFrame::new(0x123, &[0xAA; 8]);
    let forged = baro
        .encode(&[
            ("Baro_Pressure", 1.0),
            ("Baro_Temperature", 0.0),
            ("Baro_Counter", 0.0),
            ("Baro_Status", 0.0),
        ])
        .map_err(|e| e.to_string())?;
    let hb = status
        .encode(
            &status
                .signals
                .iter()
                .map(|s| (s.name.as_str(), s.min.max(0.0).min(s.max)))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    loop {
        if a.mode.starts_with("floods") {
            for _ in 0..64 {
                can.send(&flood).await.map_err(|e| e.to_string())?;
            }
        }
        tokio::select! {
            r = can.recv() => {
                let Ok(f) = r else { return Ok(()) };
                if f.id != tick.id || !a.lockstep || a.mode == "floods-silent" || a.mode == "ignores-ticks" {
                    continue;
                }
                let v = tick.decode(&f).map_err(|e| e.to_string())?;
                let get = |n: &str| v.iter().find(|(k, _)| *k == n).map_or(0.0, |(_, x)| *x);
                let (t_us, step) = (get("SIM_TimeUs"), get("SIM_Step"));
                if a.mode == "closes-line" && t_us >= 300_000.0 {
                    imu = None;
                }
                if a.mode == "forges" {
                    can.send(&forged).await.map_err(|e| e.to_string())?;
                }
                let (t_us, step) = if a.mode == "wrong-ack" { (0.0, 0.0) } else { (t_us, step) };
                let k = ack.encode(&[("SIM_AckTimeUs", t_us), ("SIM_AckStep", step)]).map_err(|e| e.to_string())?;
                can.send(&k).await.map_err(|e| e.to_string())?;
            }
            _ = heartbeat.tick(), if !a.lockstep && a.mode != "ignores-ticks" => {
                if a.mode == "closes-line" && start.elapsed() > Duration::from_millis(300) {
                    imu = None;
                }
                if a.mode == "forges" {
                    can.send(&forged).await.map_err(|e| e.to_string())?;
                }
                can.send(&hb).await.map_err(|e| e.to_string())?;
            }
            r = read_opt(&mut imu, &mut ibuf, reads) => if matches!(r, Ok(0) | Err(_)) { imu = None },
            r = read_opt(&mut gnss, &mut gbuf, reads) => if matches!(r, Ok(0) | Err(_)) { gnss = None },
        }
    }
}

async fn read_opt(
    s: &mut Option<tokio_serial::SerialStream>,
    buf: &mut [u8],
    reads: bool,
) -> std::io::Result<usize> {
    match s {
        Some(s) if reads => s.read(buf).await,
        _ => std::future::pending().await,
    }
}
