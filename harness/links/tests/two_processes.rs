//! Two separate processes exchange CAN frames over the virtual bus and IMU / NMEA
//! streams over pty pairs (the peer is the `link-peer` binary).

use capsule_icd::can::CanFrame;
use capsule_icd::imu::ImuDatagram;
use capsule_icd::nmea::GnssEpoch;
use capsule_links::vbus::{VirtualBus, frame_bits};
use capsule_links::{Link, Packet, serial, vbus};
use std::time::Duration;

async fn next_frame(l: &mut Link) -> (CanFrame, u64) {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), l.recv())
            .await
            .expect("frame within 10 s")
            .expect("bus up");
        if let Packet::Frame(f) = r.packet {
            return (f, r.bus_t_ns.expect("bus timestamp"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_over_virtual_bus_and_serial_over_ptys_between_two_processes() {
    let dir = std::env::temp_dir().join(format!("vbus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind(&sock, 500_000).await.expect("bus");
    let mut can = vbus::connect("can", &sock).await.expect("connect");
    let (imu, imu_slave) = serial::pty_pair("imu").expect("imu pty");
    let (gnss, gnss_slave) = serial::pty_pair("gnss").expect("gnss pty");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_link-peer"))
        .args([
            "--can",
            &format!("vbus:{sock}"),
            "--imu",
            &format!("serial:{imu_slave}@921600"),
            "--gnss",
            &format!("serial:{gnss_slave}@115200"),
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn peer");
    // The peer announces itself once all its links are open.
    let (hello, _) = next_frame(&mut can).await;
    assert_eq!(hello.id, 0x7F1);

    // Serial streams: 500 IMU datagrams and 50 NMEA epochs (4 sentences each).
    for k in 0..500u16 {
        let d = ImuDatagram {
            counter: k,
            status: 0,
            time_us: 0,
            rate_rad_s: [0.0; 3],
            specific_force_m_s2: [0.0, 0.0, 9.8],
            temperature_c: 20.0,
        };
        imu.send(Packet::Bytes(d.encode().to_vec()))
            .await
            .expect("imu send");
    }
    for k in 0..50 {
        let e = GnssEpoch {
            utc_time_s: f64::from(k),
            date: (21, 11, 2026),
            fix: k % 2 == 0,
            latitude_deg: 33.9,
            longitude_deg: -140.8,
            altitude_msl_m: 10.0,
            geoid_separation_m: 20.0,
            speed_m_s: 1.0,
            course_deg: 90.0,
            satellites: 8,
            dop: (1.2, 0.8, 1.0),
            prns: vec![1, 2, 3, 4],
            ..GnssEpoch::default()
        };
        gnss.send(Packet::Bytes(e.burst().into_bytes()))
            .await
            .expect("gnss send");
    }

    // CAN: 300 frames out; every echo comes back in order with increasing bus times
    // spaced at least one frame time apart.
    let n = 300u32;
    for k in 0..n {
        can.send(Packet::Frame(CanFrame::new(0x100, &k.to_le_bytes())))
            .await
            .expect("can send");
    }
    let min_gap_ns = (frame_bits(&CanFrame::new(0x101, &[0; 4])) as f64 * 1e9 / 500_000.0) as u64;
    let mut last_t = 0;
    for k in 0..n {
        let (f, t) = next_frame(&mut can).await;
        assert_eq!(f.id, 0x101, "echo id");
        assert_eq!(f.payload(), &k.to_le_bytes(), "echo {k} in order");
        if k > 0 {
            assert!(
                t >= last_t + min_gap_ns,
                "bus time gap {} ns < frame time {min_gap_ns} ns",
                t - last_t
            );
        }
        last_t = t;
    }

    // Ask for the serial counts until everything has arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        can.send(Packet::Frame(CanFrame::new(0x7F0, &[])))
            .await
            .expect("query");
        let (f, _) = next_frame(&mut can).await;
        assert_eq!(f.id, 0x7F1);
        let n_imu = u32::from_le_bytes([f.data[0], f.data[1], f.data[2], f.data[3]]);
        let n_nmea = u32::from_le_bytes([f.data[4], f.data[5], f.data[6], f.data[7]]);
        if n_imu == 500 && n_nmea == 200 {
            break;
        }
        assert!(n_imu <= 500 && n_nmea <= 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer saw {n_imu} IMU datagrams and {n_nmea} NMEA sentences"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bus.frames() >= u64::from(2 * n + 2));

    // On CAN a vanished node is simply silent (heartbeat timeouts detect it). Closing
    // the bus ends the peer's link, and the peer exits cleanly.
    drop(can);
    drop(bus);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("peer exits")
        .expect("status");
    assert!(status.success(), "peer exit {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bus_rate_limit_matches_the_bit_rate() {
    // 125 kbit/s: an 8-byte standard frame takes 135 bits = 1.08 ms, so 200 frames
    // need at least 216 ms of bus time.
    let dir = std::env::temp_dir().join(format!("vbus-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind(&sock, 125_000).await.expect("bus");
    let a = vbus::connect("a", &sock).await.expect("a");
    let mut b = vbus::connect("b", &sock).await.expect("b");
    assert_eq!(frame_bits(&CanFrame::new(1, &[0; 8])), 135);
    for k in 0..200u32 {
        a.send(Packet::Frame(CanFrame::new(0x200, &[k as u8; 8])))
            .await
            .expect("send");
    }
    let mut times = Vec::new();
    for _ in 0..200 {
        let (_, t) = next_frame(&mut b).await;
        times.push(t);
    }
    let span_ns = times[199] - times[0];
    assert!(
        span_ns >= 199 * 1_080_000,
        "200 frames in {span_ns} ns of bus time"
    );
    assert_eq!(
        bus.stats()
            .overload_drops
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    drop(bus);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn lowest_identifier_wins_arbitration() {
    let dir = std::env::temp_dir().join(format!("vbus-arb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let _bus = VirtualBus::bind(&sock, 125_000).await.expect("bus");
    let a = vbus::connect("a", &sock).await.expect("a");
    let b = vbus::connect("b", &sock).await.expect("b");
    let mut c = vbus::connect("c", &sock).await.expect("c");
    // 50 low-priority frames keep the bus busy for 54 ms ...
    for k in 0..50u8 {
        a.send(Packet::Frame(CanFrame::new(0x300, &[k; 8])))
            .await
            .expect("send");
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    // ... and a high-priority frame queued meanwhile goes out at the next idle bus.
    b.send(Packet::Frame(CanFrame::new(0x100, &[0xEE; 8])))
        .await
        .expect("send");
    let mut order = Vec::new();
    for _ in 0..51 {
        let (f, _) = next_frame(&mut c).await;
        order.push(f.id);
    }
    let pos = order.iter().position(|id| *id == 0x100).expect("delivered");
    assert!(
        pos < 20,
        "0x100 delivered at position {pos} of 51: arbitration ignored"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node record split across two socket writes (as a stream may deliver it) reaches
/// the other node whole, and a burst of frames from a node (written in one go) keeps
/// its order and loses nothing while the receiving node is also sending.
#[tokio::test]
async fn split_records_and_bursts_survive_the_socket() {
    use capsule_icd::vbus_wire::{self, BusItem};
    use tokio::io::AsyncWriteExt;
    let dir = std::env::temp_dir().join(format!("vbus-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind_with(&sock, 500_000, capsule_links::vbus::BusTiming::Lockstep)
        .await
        .expect("bus");
    let mut rx = vbus::connect("rx", &sock).await.expect("rx");
    let mut raw = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("raw node");
    assert!(bus.wait_for_nodes(2, Duration::from_secs(5)).await);
    let rec = vbus_wire::encode(&BusItem::Frame(CanFrame::new(
        0x123,
        &[1, 2, 3, 4, 5, 6, 7, 8],
    )));
    raw.write_all(&rec[..5]).await.expect("first part");
    raw.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.write_all(&rec[5..]).await.expect("second part");
    let (f, _) = next_frame(&mut rx).await;
    assert_eq!((f.id, f.data), (0x123, [1, 2, 3, 4, 5, 6, 7, 8]));
    // A burst of 500 frames in one write, while `rx` keeps sending its own.
    let mut burst = Vec::new();
    for k in 0..500u32 {
        burst.extend_from_slice(&vbus_wire::encode(&BusItem::Frame(CanFrame::new(
            0x200,
            &k.to_le_bytes(),
        ))));
    }
    raw.write_all(&burst).await.expect("burst");
    for k in 0..500u32 {
        rx.send(Packet::Frame(CanFrame::new(0x300, &[k as u8])))
            .await
            .expect("send");
        let (f, _) = next_frame(&mut rx).await;
        assert_eq!(f.id, 0x200);
        assert_eq!(f.data[..4], k.to_le_bytes(), "frame {k} in order");
    }
    assert_eq!(
        bus.stats()
            .overload_drops
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
