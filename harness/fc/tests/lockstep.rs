//! The FC as a separate process on the virtual bus: lockstep ticks are acknowledged one
//! for one, telemetry follows the ICD rates, and two runs produce identical traffic.

use capsule_icd::can::{CanDb, CanFrame};
use capsule_links::vbus::{BusTiming, VirtualBus};
use capsule_links::{Link, Packet, vbus};
use std::time::Duration;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc")
}

async fn next_frame(l: &mut Link) -> CanFrame {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), l.recv())
            .await
            .expect("FC answers within 10 s")
            .expect("bus up");
        if let Packet::Frame(f) = r.packet {
            return f;
        }
    }
}

/// Runs `ticks` lockstep cycles of 10 ms and returns every frame the FC sent.
async fn run(tag: &str, ticks: u64) -> Vec<CanFrame> {
    let db = db();
    let dir = std::env::temp_dir().join(format!("fc-lockstep-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind_with(&sock, 500_000, BusTiming::Lockstep)
        .await
        .expect("bus");
    let mut h = vbus::connect("harness", &sock).await.expect("connect");
    let mut fc = tokio::process::Command::new(env!("CARGO_BIN_EXE_capsule-fc"))
        .args(["--can", &format!("vbus:{sock}"), "--clock", "lockstep"])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn FC");
    // Readiness: the FC is on the bus when the bus has two nodes.
    assert!(
        bus.wait_for_nodes(2, Duration::from_secs(20)).await,
        "FC did not connect to the bus"
    );
    let tick = db.by_name("SIM_Tick").expect("SIM_Tick").clone();
    let ack = db.by_name("SIM_Ack").expect("SIM_Ack").clone();
    let mut all = Vec::new();
    for step in 0..ticks {
        let t_us = (step * 10_000) as f64;
        let f = tick
            .encode(&[("SIM_TimeUs", t_us), ("SIM_Step", step as f64)])
            .expect("tick");
        h.send(Packet::Frame(f)).await.expect("send tick");
        loop {
            let f = next_frame(&mut h).await;
            all.push(f);
            if f.id == ack.id {
                let v = ack.decode(&f).expect("ack decodes");
                assert_eq!(v[0].1, t_us, "ack time");
                assert_eq!(v[1].1, step as f64, "ack step");
                break;
            }
        }
    }
    // Closing the bus ends the FC's CAN link; it must then exit cleanly.
    drop(h);
    drop(bus);
    let status = tokio::time::timeout(Duration::from_secs(10), fc.wait())
        .await
        .expect("FC exits when the bus closes")
        .expect("status");
    assert!(status.success(), "FC exit status {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc_acknowledges_every_tick_and_sends_telemetry_at_icd_rates() {
    let db = db();
    let frames = run("rates", 101).await;
    let id = |n: &str| db.by_name(n).expect("message").id;
    // Identification in the first cycle.
    let first_ack = frames
        .iter()
        .position(|f| f.id == id("SIM_Ack"))
        .expect("an ack");
    assert!(
        frames[..first_ack].iter().any(|f| f.id == id("FC_Ident")),
        "identification in the first cycle"
    );
    let acks = frames.iter().filter(|f| f.id == id("SIM_Ack")).count();
    assert_eq!(acks, 101);
    let status: Vec<_> = frames.iter().filter(|f| f.id == id("FC_Status")).collect();
    assert_eq!(status.len(), 11, "10 Hz over 1.0 s inclusive");
    let st = db.by_name("FC_Status").expect("FC_Status");
    for (k, f) in status.iter().enumerate() {
        let v = st.decode(f).expect("decodes");
        let seq = v
            .iter()
            .find(|(n, _)| *n == "FC_SeqCounter")
            .expect("seq")
            .1;
        assert_eq!(seq as usize, k % 16, "sequence counter");
        let mode = v.iter().find(|(n, _)| *n == "FC_Mode").expect("mode").1;
        assert_eq!(mode, 0.0, "pre-separation");
    }
    assert_eq!(
        frames.iter().filter(|f| f.id == id("FC_Ident")).count(),
        2,
        "ident at 0 s and 1 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lockstep_runs_give_identical_traffic() {
    let a = run("det-a", 60).await;
    let b = run("det-b", 60).await;
    assert_eq!(a, b);
}
