//! Link benchmarks (a custom harness: latencies need per-message timing).
//!
//! Run: `cargo bench -p capsule-links --bench links`
//!
//! - decode cost per IMU datagram (stream decoder) and per CAN frame (DBC codec);
//! - IMU datagrams at 1 kHz through a pty pair: loss and write-to-decoded latency;
//! - CAN frames at 7400 frames/s (a fully loaded 1 Mbit/s bus with worst-case
//!   stuffing: 7407 frames/s) through the virtual bus and through SLCAN over a pty:
//!   loss and send-to-receive latency.

use capsule_icd::can::{CanDb, CanFrame};
use capsule_icd::imu::{ImuDatagram, ImuStreamDecoder};
use capsule_links::clock::now_ns;
use capsule_links::vbus::VirtualBus;
use capsule_links::{Link, Packet, serial, slcan, vbus};
use std::time::{Duration, Instant};

fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn decode_costs() {
    let d = ImuDatagram {
        counter: 1,
        status: 0,
        time_us: 5,
        rate_rad_s: [0.1, 0.2, 0.3],
        specific_force_m_s2: [1.0, 2.0, 3.0],
        temperature_c: 20.0,
    };
    let one = d.encode();
    let stream: Vec<u8> = (0..1000).flat_map(|_| one).collect();
    let mut dec = ImuStreamDecoder::default();
    let mut out = Vec::with_capacity(1000);
    let t = Instant::now();
    let reps = 1000;
    for _ in 0..reps {
        out.clear();
        dec.push(&stream, &mut out);
    }
    let ns = t.elapsed().as_nanos() as f64 / (reps * 1000) as f64;
    println!(
        "decode: IMU datagram (stream decoder, CRC) {ns:.1} ns/datagram ({} decoded)",
        out.len() * reps
    );

    let db = CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc");
    let f = db
        .encode(
            "FC_Status",
            &[
                ("FC_Mode", 3.0),
                ("FC_EstAltitude", 40_000.0),
                ("FC_EstVelocity", 3_000.0),
            ],
        )
        .expect("encode");
    let t = Instant::now();
    let n = 1_000_000;
    let mut acc = 0.0;
    for _ in 0..n {
        let (_, v) = db.decode(std::hint::black_box(&f)).expect("decode");
        acc += v[3].1;
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    println!(
        "decode: CAN frame FC_Status, 9 signals (DBC codec) {ns:.1} ns/frame (check {acc:.0})"
    );
}

async fn imu_over_pty() {
    let (mut rx, slave) = serial::pty_pair("imu").expect("pty");
    let tx = serial::open(
        "imu-dev",
        &slave,
        capsule_links::address::SerialSettings {
            baud: 921_600,
            data_bits: 8,
            parity: 'N',
            stop_bits: 1,
        },
    )
    .expect("open");
    let n = 5000u32;
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for k in 0..n {
            tick.tick().await;
            let t = now_ns();
            // The time tag carries the send time (us) so the receiver can measure latency.
            let d = ImuDatagram {
                counter: k as u16,
                status: 0,
                time_us: (t / 1000) as u32,
                rate_rad_s: [0.0; 3],
                specific_force_m_s2: [0.0; 3],
                temperature_c: 20.0,
            };
            tx.send(Packet::Bytes(d.encode().to_vec()))
                .await
                .expect("send");
        }
        tx
    });
    let mut dec = ImuStreamDecoder::default();
    let mut out = Vec::new();
    let mut lat = Vec::new();
    while lat.len() < n as usize {
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Ok(r)) => {
                if let Packet::Bytes(b) = r.packet {
                    out.clear();
                    dec.push(&b, &mut out);
                    let now_us = (now_ns() / 1000) as u32;
                    for d in &out {
                        lat.push(u64::from(now_us.wrapping_sub(d.time_us)) * 1000);
                    }
                }
            }
            _ => break,
        }
    }
    let _ = sender.await;
    let got = lat.len();
    println!(
        "imu over pty, 1 kHz x {n}: lost {}, CRC errors {}, latency write->decoded p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        n as usize - got,
        dec.stats.checksum_errors,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
}

async fn can_load(label: &str, tx: Link, mut rx: Link, rate_hz: f64, seconds: f64) {
    let n = (rate_hz * seconds) as u64;
    let sender = tokio::spawn(async move {
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            let due = (start.elapsed().as_secs_f64() * rate_hz) as u64;
            while sent < due.min(n) {
                let t = now_ns();
                tx.send(Packet::Frame(CanFrame::new(0x100, &t.to_le_bytes())))
                    .await
                    .expect("send");
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tx
    });
    let mut lat = Vec::with_capacity(n as usize);
    let mut in_order = true;
    let mut last = 0u64;
    while (lat.len() as u64) < n {
        match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
            Ok(Ok(r)) => {
                if let Packet::Frame(f) = r.packet {
                    let t = u64::from_le_bytes(f.data);
                    in_order &= t >= last;
                    last = t;
                    lat.push(r.t_ns.saturating_sub(t));
                }
            }
            _ => break,
        }
    }
    let _ = sender.await;
    println!(
        "{label}: {n} frames at {rate_hz:.0}/s: lost {}, in order {in_order}, latency p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        n - lat.len() as u64,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    decode_costs();
    imu_over_pty().await;
    let dir = std::env::temp_dir().join(format!("links-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind(&sock, 1_000_000).await.expect("bus");
    let a = vbus::connect("a", &sock).await.expect("a");
    let b = vbus::connect("b", &sock).await.expect("b");
    can_load("virtual bus 1 Mbit/s", a, b, 7_400.0, 3.0).await;
    let a = vbus::connect("a2", &sock).await.expect("a");
    let b = vbus::connect("b2", &sock).await.expect("b");
    can_load("virtual bus 1 Mbit/s at 50 % load", a, b, 3_700.0, 3.0).await;
    drop(bus);
    let (dev, path) = slcan::adapter_on_pty("adapter").expect("adapter");
    let stream =
        tokio_serial::SerialStream::open(&tokio_serial::new(&path, 1_000_000)).expect("open");
    let host = slcan::open_host("host", "slcan:pty", stream, 1_000_000)
        .await
        .expect("host");
    tokio::time::sleep(Duration::from_millis(100)).await;
    can_load("slcan over pty (host -> adapter)", host, dev, 7_400.0, 3.0).await;
    let _ = std::fs::remove_dir_all(&dir);
}
