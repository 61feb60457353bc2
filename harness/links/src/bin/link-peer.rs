//! `link-peer`: a small stand-alone node for link tests and bench bring-up.
//!
//! It opens a CAN link and optional IMU and GNSS serial links, decodes what arrives on
//! the serial links (IMU datagrams, NMEA sentences), and answers every CAN frame with
//! identifier 0x7F0 by a frame 0x7F1 whose data are the IMU datagram count and the NMEA
//! sentence count (u32 little-endian each). Every other CAN frame is echoed back with
//! its identifier + 1. Exits 0 when the CAN link closes.
//!
//! Usage: `link-peer --can vbus:/tmp/bus.sock [--imu serial:/dev/pts/3@921600] [--gnss serial:/dev/pts/4@115200]`

use capsule_icd::can::CanFrame;
use capsule_icd::imu::ImuStreamDecoder;
use capsule_icd::nmea::NmeaStreamDecoder;
use capsule_links::address::Address;
use capsule_links::{Link, Packet, serial, vbus};
use std::process::ExitCode;

async fn open(name: &str, addr: &str) -> Result<Link, String> {
    match Address::parse(addr).map_err(|e| e.to_string())? {
        Address::Serial { path, settings } => {
            serial::open(name, &path, settings).map_err(|e| e.to_string())
        }
        Address::VirtualBus { path } => vbus::connect(name, &path).await.map_err(|e| e.to_string()),
        other => Err(format!("link-peer does not support {other:?}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(can_addr) = get("--can") else {
        eprintln!("usage: link-peer --can ADDRESS [--imu ADDRESS] [--gnss ADDRESS]");
        return ExitCode::from(2);
    };
    let mut can = match open("can", &can_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut imu = match get("--imu") {
        Some(a) => match open("imu", &a).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut gnss = match get("--gnss") {
        Some(a) => match open("gnss", &a).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut imu_dec = ImuStreamDecoder::default();
    let mut nmea_dec = NmeaStreamDecoder::new();
    let (mut n_imu, mut n_nmea) = (0u32, 0u32);
    let mut scratch_i = Vec::new();
    let mut scratch_n = Vec::new();
    // Announce: the first frame tells the other side this node is up.
    let _ = can.send(Packet::Frame(CanFrame::new(0x7F1, &[0; 8]))).await;
    loop {
        tokio::select! {
            r = can.recv() => match r {
                Ok(rx) => if let Packet::Frame(f) = rx.packet {
                    let reply = if f.id == 0x7F0 {
                        let mut d = [0u8; 8];
                        d[..4].copy_from_slice(&n_imu.to_le_bytes());
                        d[4..].copy_from_slice(&n_nmea.to_le_bytes());
                        CanFrame::new(0x7F1, &d)
                    } else {
                        CanFrame::new((f.id + 1) & 0x7FF, f.payload())
                    };
                    if can.send(Packet::Frame(reply)).await.is_err() { return ExitCode::SUCCESS; }
                },
                Err(_) => return ExitCode::SUCCESS,
            },
            r = async { match imu.as_mut() { Some(l) => l.recv().await, None => std::future::pending().await } } => match r {
                Ok(rx) => if let Packet::Bytes(b) = rx.packet { imu_dec.push(&b, &mut scratch_i); n_imu += scratch_i.len() as u32; scratch_i.clear(); },
                Err(_) => imu = None,
            },
            r = async { match gnss.as_mut() { Some(l) => l.recv().await, None => std::future::pending().await } } => match r {
                Ok(rx) => if let Packet::Bytes(b) = rx.packet { nmea_dec.push(&b, &mut scratch_n); n_nmea += scratch_n.len() as u32; scratch_n.clear(); },
                Err(_) => gnss = None,
            },
        }
    }
}
