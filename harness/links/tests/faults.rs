//! Every fault kind, shown on the wire and counted.

use capsule_icd::can::CanFrame;
use capsule_links::fault::{Direction, FaultClock, FaultControl, FaultKind, FaultRule, wrap};
use capsule_links::vbus::VirtualBus;
use capsule_links::{Link, Packet, serial, vbus};
use std::time::Duration;

struct CanRig {
    _bus: VirtualBus,
    a: Link,
    ctl: FaultControl,
    b: Link,
    _dir: std::path::PathBuf,
}

async fn can_rig(tag: &str, seed: u64) -> CanRig {
    let dir = std::env::temp_dir().join(format!("faults-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind(&sock, 500_000).await.expect("bus");
    let a_raw = vbus::connect("a", &sock).await.expect("a");
    let b = vbus::connect("b", &sock).await.expect("b");
    let (a, ctl) = wrap(a_raw, seed, FaultClock::new());
    CanRig {
        _bus: bus,
        a,
        ctl,
        b,
        _dir: dir,
    }
}

async fn serial_rig(seed: u64) -> (Link, FaultControl, Link) {
    let (master, slave) = serial::pty_pair("imu").expect("pty");
    let b = serial::open(
        "imu-dev",
        &slave,
        capsule_links::address::SerialSettings {
            baud: 921_600,
            data_bits: 8,
            parity: 'N',
            stop_bits: 1,
        },
    )
    .expect("slave");
    let (a, ctl) = wrap(master, seed, FaultClock::new());
    (a, ctl, b)
}

async fn collect(l: &mut Link, quiet: Duration) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Ok(Ok(r)) = tokio::time::timeout(quiet, l.recv()).await {
        out.push(r.packet);
    }
    out
}

/// Waits (up to 20 s) for exactly `n` packets, then checks that no extra one follows.
async fn collect_n(l: &mut Link, n: usize) -> Vec<Packet> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), l.recv()).await {
            Ok(Ok(r)) => out.push(r.packet),
            other => panic!("after {} of {n} packets: {other:?}", out.len()),
        }
    }
    out.extend(collect(l, Duration::from_millis(100)).await);
    out
}

/// Waits for `n` bytes in total (up to 20 s), then for stragglers.
async fn collect_bytes_n(l: &mut Link, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), l.recv()).await {
            Ok(Ok(r)) => {
                if let Packet::Bytes(b) = r.packet {
                    out.extend(b);
                }
            }
            other => panic!("after {} of {n} bytes: {other:?}", out.len()),
        }
    }
    out.extend(collect_bytes(l, Duration::from_millis(100)).await);
    out
}

async fn collect_bytes(l: &mut Link, quiet: Duration) -> Vec<u8> {
    collect(l, quiet)
        .await
        .into_iter()
        .flat_map(|p| match p {
            Packet::Bytes(b) => b,
            _ => vec![],
        })
        .collect()
}

fn frames(n: u8) -> Vec<CanFrame> {
    (0..n)
        .map(|k| CanFrame::new(0x200, &[k, 0xAA, 0x55, k]))
        .collect()
}

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn drop_loses_frames_and_counts_them() {
    let mut r = can_rig("drop", 1).await;
    r.ctl.add(FaultRule {
        probability: 0.5,
        ..FaultRule::always(FaultKind::Drop)
    });
    for f in frames(100) {
        r.a.send(Packet::Frame(f)).await.expect("send");
    }
    let got = collect(&mut r.b, QUIET).await;
    let dropped = r.ctl.stats.get("drop");
    assert!(
        dropped > 20 && dropped < 80,
        "p = 0.5 over 100 frames dropped {dropped}"
    );
    assert_eq!(
        got.len() as u64,
        100 - dropped,
        "every frame is either delivered or counted"
    );
}

#[tokio::test]
async fn same_seed_drops_the_same_frames() {
    let mut seen = Vec::new();
    for tag in ["seed-a", "seed-b"] {
        let mut r = can_rig(tag, 42).await;
        r.ctl.add(FaultRule {
            probability: 0.3,
            ..FaultRule::always(FaultKind::Drop)
        });
        for f in frames(60) {
            r.a.send(Packet::Frame(f)).await.expect("send");
        }
        let mut got = Vec::new();
        while got.len() as u64 + r.ctl.stats.get("drop") < 60 {
            match tokio::time::timeout(Duration::from_secs(20), r.b.recv()).await {
                Ok(Ok(rx)) => got.push(rx.packet),
                other => panic!("stalled: {other:?}"),
            }
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn duplicate_sends_twice() {
    let mut r = can_rig("dup", 2).await;
    r.ctl.add(FaultRule::always(FaultKind::Duplicate));
    for f in frames(5) {
        r.a.send(Packet::Frame(f)).await.expect("send");
    }
    let got = collect_n(&mut r.b, 10).await;
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], got[1]);
    assert_eq!(r.ctl.stats.get("duplicate"), 5);
}

#[tokio::test]
async fn delay_holds_frames() {
    let mut r = can_rig("delay", 3).await;
    r.ctl.add(FaultRule::always(FaultKind::Delay {
        delay_s: 0.2,
        jitter_s: 0.01,
    }));
    let t0 = tokio::time::Instant::now();
    r.a.send(Packet::Frame(CanFrame::new(0x10, &[1])))
        .await
        .expect("send");
    let rx = tokio::time::timeout(Duration::from_secs(5), r.b.recv())
        .await
        .expect("arrives")
        .expect("up");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(185),
        "arrived after {waited:?}"
    );
    assert_eq!(rx.packet, Packet::Frame(CanFrame::new(0x10, &[1])));
    assert_eq!(r.ctl.stats.get("delay"), 1);
}

#[tokio::test]
async fn corrupt_flips_one_bit() {
    let mut r = can_rig("corrupt", 4).await;
    r.ctl.add(FaultRule {
        can_id: Some(0x200),
        ..FaultRule::always(FaultKind::Corrupt { bits: 1 })
    });
    let sent = CanFrame::new(0x200, &[0; 8]);
    r.a.send(Packet::Frame(sent)).await.expect("send");
    r.a.send(Packet::Frame(CanFrame::new(0x201, &[0; 8])))
        .await
        .expect("send untouched");
    let got = collect(&mut r.b, QUIET).await;
    let Packet::Frame(f) = &got[0] else {
        panic!("frame")
    };
    let flipped: u32 = f.data.iter().map(|b| b.count_ones()).sum();
    assert_eq!(flipped, 1);
    assert_eq!(
        got[1],
        Packet::Frame(CanFrame::new(0x201, &[0; 8])),
        "other identifiers untouched"
    );
    assert_eq!(r.ctl.stats.get("corrupt"), 1);
}

#[tokio::test]
async fn reorder_swaps_neighbours() {
    let mut r = can_rig("reorder", 5).await;
    r.ctl.add(FaultRule::always(FaultKind::Reorder));
    for f in frames(4) {
        r.a.send(Packet::Frame(f)).await.expect("send");
    }
    let got = collect_n(&mut r.b, 4).await;
    let order: Vec<u8> = got
        .iter()
        .map(|p| match p {
            Packet::Frame(f) => f.data[0],
            _ => 99,
        })
        .collect();
    assert_eq!(order, vec![1, 0, 3, 2]);
    assert_eq!(r.ctl.stats.get("reorder"), 4);
}

#[tokio::test]
async fn error_frame_reaches_the_other_node_and_is_counted_there() {
    let mut r = can_rig("errframe", 6).await;
    r.ctl.add(FaultRule::always(FaultKind::ErrorFrame));
    r.a.send(Packet::Frame(CanFrame::new(0x300, &[1])))
        .await
        .expect("send");
    let got = collect(&mut r.b, QUIET).await;
    assert_eq!(
        got,
        vec![
            Packet::ErrorFrame,
            Packet::Frame(CanFrame::new(0x300, &[1]))
        ]
    );
    assert_eq!(r.b.stats().framing_errors, 1);
    assert_eq!(r.ctl.stats.get("error_frame"), 1);
}

#[tokio::test]
async fn babbling_node_floods_an_identifier_up_to_the_bus_rate() {
    let mut r = can_rig("babble", 7).await;
    r.ctl.add(FaultRule {
        end_s: Some(1.0),
        ..FaultRule::always(FaultKind::Babble {
            id: 0x001,
            rate_hz: 20_000.0,
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.ctl.clock.set_s(2.0);
    let mut times = Vec::new();
    while let Ok(Ok(rx)) = tokio::time::timeout(QUIET, r.b.recv()).await {
        if matches!(rx.packet, Packet::Frame(f) if f.id == 0x001) {
            times.push(rx.bus_t_ns.expect("bus time"));
        }
    }
    assert!(times.len() > 1000, "only {} babble frames", times.len());
    // The flood is limited by the bus, not by the babbler: at 500 kbit/s an 8-byte frame
    // takes 135 bits = 270 us, so consecutive bus times are at least that far apart.
    let min_gap = times.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    assert!(min_gap >= 270_000, "frames {min_gap} ns apart on the bus");
    let rate = (times.len() - 1) as f64 / ((times[times.len() - 1] - times[0]) as f64 * 1e-9);
    assert!(
        rate > 3_000.0 && rate <= 3_704.0,
        "bus carried {rate:.0} frames/s"
    );
    assert!(r.ctl.stats.get("babble") as usize >= times.len());
}

#[tokio::test]
async fn bus_off_silences_the_node_both_ways_for_its_window() {
    let mut r = can_rig("busoff", 8).await;
    r.ctl.add(FaultRule {
        start_s: 1.0,
        end_s: Some(3.0),
        ..FaultRule::always(FaultKind::BusOff)
    });
    r.ctl.clock.set_s(2.0);
    r.a.send(Packet::Frame(CanFrame::new(0x400, &[1])))
        .await
        .expect("send");
    r.b.send(Packet::Frame(CanFrame::new(0x401, &[2])))
        .await
        .expect("send");
    assert!(
        collect(&mut r.b, QUIET).await.is_empty(),
        "bus-off node sent"
    );
    assert!(
        collect(&mut r.a, QUIET).await.is_empty(),
        "bus-off node received"
    );
    assert_eq!(r.ctl.stats.get("bus_off"), 2);
    r.ctl.clock.set_s(3.5);
    r.a.send(Packet::Frame(CanFrame::new(0x400, &[3])))
        .await
        .expect("send");
    assert_eq!(
        collect(&mut r.b, QUIET).await,
        vec![Packet::Frame(CanFrame::new(0x400, &[3]))],
        "back on the bus"
    );
}

#[tokio::test]
async fn serial_insert_delete_and_noise_change_the_byte_stream() {
    let data: Vec<u8> = (0..200u8).collect();
    for (fault, name) in [
        (FaultKind::InsertBytes { count: 3 }, "insert_bytes"),
        (FaultKind::DeleteBytes { count: 5 }, "delete_bytes"),
        (FaultKind::NoiseBurst { length: 16 }, "noise_burst"),
    ] {
        let (a, ctl, mut b) = serial_rig(9).await;
        ctl.add(FaultRule {
            direction: Direction::Tx,
            ..FaultRule::always(fault)
        });
        a.send(Packet::Bytes(data.clone())).await.expect("send");
        let expect = match fault {
            FaultKind::InsertBytes { count } => data.len() + count,
            FaultKind::DeleteBytes { count } => data.len() - count,
            _ => data.len(),
        };
        let got = collect_bytes_n(&mut b, expect).await;
        match fault {
            FaultKind::InsertBytes { count } => assert_eq!(got.len(), data.len() + count),
            FaultKind::DeleteBytes { count } => assert_eq!(got.len(), data.len() - count),
            _ => {
                assert_eq!(got.len(), data.len());
                let diff = got.iter().zip(&data).filter(|(x, y)| x != y).count();
                assert!(diff > 0 && diff <= 16, "{diff} bytes differ");
            }
        }
        assert_eq!(ctl.stats.get(name), 1, "{name} counted");
    }
}

#[tokio::test]
async fn serial_stall_passes_nothing_while_active() {
    let (a, ctl, mut b) = serial_rig(10).await;
    ctl.add(FaultRule {
        start_s: 0.0,
        end_s: Some(1.0),
        direction: Direction::Tx,
        ..FaultRule::always(FaultKind::Stall)
    });
    a.send(Packet::Bytes(vec![1, 2, 3])).await.expect("send");
    assert!(collect_bytes(&mut b, QUIET).await.is_empty());
    ctl.clock.set_s(1.5);
    a.send(Packet::Bytes(vec![4, 5])).await.expect("send");
    assert_eq!(collect_bytes_n(&mut b, 2).await, vec![4, 5]);
    assert_eq!(ctl.stats.get("stall"), 1);
}

#[tokio::test]
async fn serial_drop_and_corrupt_on_receive() {
    let (mut a, ctl, b) = serial_rig(11).await;
    ctl.add(FaultRule {
        direction: Direction::Rx,
        ..FaultRule::always(FaultKind::Corrupt { bits: 3 })
    });
    b.send(Packet::Bytes(vec![0u8; 32])).await.expect("send");
    let got = collect_bytes_n(&mut a, 32).await;
    let ones: u32 = got.iter().map(|x| x.count_ones()).sum();
    assert!((1..=3).contains(&ones), "{ones} bits set");
    assert!(ctl.stats.get("corrupt") >= 1);
}

#[test]
fn rules_read_from_toml() {
    let r: FaultRule = toml::from_str("fault = { kind = \"delay\", delay_s = 0.05, jitter_s = 0.01 }\ndirection = \"tx\"\ncan_id = 0x50\nstart_s = 100.0\nend_s = 102.0\nprobability = 0.2\n").expect("parses");
    assert_eq!(
        r.fault,
        FaultKind::Delay {
            delay_s: 0.05,
            jitter_s: 0.01
        }
    );
    assert_eq!(r.can_id, Some(0x50));
    assert!(toml::from_str::<FaultRule>("fault = { kind = \"explode\" }").is_err());
}
