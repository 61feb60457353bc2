//! SLCAN: the codec against hand-written lines, our host against our adapter, and a
//! standard SLCAN host (python-can's `slcan` interface) against our adapter over a pty.

use capsule_icd::can::CanFrame;
use capsule_links::Packet;
use capsule_links::slcan::{self, Line, LineSplitter, encode_frame, parse_frame};
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn lines_match_the_lawicel_format() {
    let f = CanFrame::new(0x123, &[0x11, 0x22, 0x33]);
    assert_eq!(encode_frame(&f, None), b"t1233112233\r");
    let e = CanFrame {
        id: 0x1ABC_DEF0,
        extended: true,
        rtr: false,
        dlc: 0,
        data: [0; 8],
    };
    assert_eq!(encode_frame(&e, None), b"T1ABCDEF00\r");
    let r = CanFrame {
        id: 0x7FF,
        extended: false,
        rtr: true,
        dlc: 2,
        data: [0; 8],
    };
    assert_eq!(encode_frame(&r, Some(0x1234)), b"r7FF21234\r");
    assert_eq!(parse_frame(b"t1233112233"), Some((f, None)));
    assert_eq!(parse_frame(b"r7FF21234"), Some((r, Some(0x1234))));
    for bad in [
        &b"t8001"[..],
        b"t12391122",
        b"tXYZ0",
        b"t12",
        b"T1ABCDEF09",
        b"q1230",
    ] {
        assert_eq!(parse_frame(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

proptest! {
    #[test]
    fn frames_round_trip(id in 0u32..0x800, ext_id in 0u32..0x2000_0000, ext in any::<bool>(), rtr in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..=8), ts in proptest::option::of(0u16..60_000)) {
        let mut f = CanFrame::new(if ext { ext_id } else { id }, &data);
        f.extended = ext;
        f.rtr = rtr;
        if rtr { f.data = [0; 8]; }
        let line = encode_frame(&f, ts);
        prop_assert_eq!(parse_frame(&line[..line.len() - 1]), Some((f, ts)));
    }

    #[test]
    fn splitter_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(&bytes, &mut out);
        for l in out {
            if let Line::Cr(l) = l { prop_assert!(l.len() <= slcan::MAX_LINE + 2); }
        }
    }
}

#[tokio::test]
async fn our_host_talks_to_our_adapter_over_a_pty() {
    let (mut dev, path) = slcan::adapter_on_pty("bus-side").expect("adapter");
    let stream =
        tokio_serial::SerialStream::open(&tokio_serial::new(&path, 115_200)).expect("open slave");
    let mut host = slcan::open_host("bench", "slcan:pty", stream, 500_000)
        .await
        .expect("host");
    let f = CanFrame::new(0x321, &[1, 2, 3, 4, 5, 6, 7, 8]);
    host.send(Packet::Frame(f)).await.expect("send");
    let r = tokio::time::timeout(Duration::from_secs(5), dev.recv())
        .await
        .expect("arrives")
        .expect("up");
    assert_eq!(r.packet, Packet::Frame(f));
    let g = CanFrame {
        id: 0x18FF_0001,
        extended: true,
        rtr: false,
        dlc: 2,
        data: [9, 8, 0, 0, 0, 0, 0, 0],
    };
    dev.send(Packet::Frame(g)).await.expect("send back");
    let r = tokio::time::timeout(Duration::from_secs(5), host.recv())
        .await
        .expect("arrives")
        .expect("up");
    assert_eq!(r.packet, Packet::Frame(g));
}

const PY_HOST: &str = r#"
import json, sys, can
bus = can.Bus(interface="slcan", channel=sys.argv[1], bitrate=500000, tty_baudrate=115200, sleep_after_open=0.05)
bus.send(can.Message(arbitration_id=0x123, data=[0xDE, 0xAD, 0xBE, 0xEF], is_extended_id=False))
bus.send(can.Message(arbitration_id=0x1ABCDEF0, data=[1], is_extended_id=True))
bus.send(can.Message(arbitration_id=0x7FF, is_remote_frame=True, dlc=3, is_extended_id=False))
got = []
while len(got) < 2:
    m = bus.recv(timeout=10)
    if m is None:
        break
    got.append({"id": m.arbitration_id, "ext": m.is_extended_id, "data": list(m.data)})
print(json.dumps(got))
bus.shutdown()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_can_slcan_host_interoperates_with_our_adapter() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import can, serial"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install python-can (see .ci/run)"
        );
        eprintln!(
            "SKIPPED python_can_slcan_host_interoperates_with_our_adapter: python3 with python-can and pyserial not found (pip install python-can pyserial)"
        );
        return;
    }
    let (mut dev, path) = slcan::adapter_on_pty("bus-side").expect("adapter");
    let child = tokio::process::Command::new("python3")
        .args(["-c", PY_HOST, &path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut got = Vec::new();
    while got.len() < 3 {
        let r = tokio::time::timeout(Duration::from_secs(20), dev.recv())
            .await
            .expect("python frames arrive")
            .expect("up");
        if let Packet::Frame(f) = r.packet {
            got.push(f);
        }
    }
    assert_eq!(got[0], CanFrame::new(0x123, &[0xDE, 0xAD, 0xBE, 0xEF]));
    assert_eq!(
        (got[1].id, got[1].extended, got[1].payload()),
        (0x1ABC_DEF0, true, &[1u8][..])
    );
    assert!(got[2].rtr && got[2].id == 0x7FF && got[2].dlc == 3);
    dev.send(Packet::Frame(CanFrame::new(0x456, &[7, 7])))
        .await
        .expect("send");
    dev.send(Packet::Frame(CanFrame {
        id: 0x0000_0ABC,
        extended: true,
        rtr: false,
        dlc: 1,
        data: [5, 0, 0, 0, 0, 0, 0, 0],
    }))
    .await
    .expect("send");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("python ends")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        r#"[{"id": 1110, "ext": false, "data": [7, 7]}, {"id": 2748, "ext": true, "data": [5]}]"#
    );
}

/// A fake adapter on a pty: `reply` answers each CR-terminated command (without its
/// CR) with bytes to send back, or nothing; every command seen is reported.
fn fake_adapter_with(
    reply: impl Fn(&[u8]) -> Option<&'static [u8]> + Send + 'static,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (master, path, guard) = capsule_links::serial::pty_raw().expect("pty");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _guard = guard;
        let (mut rd, mut wr) = tokio::io::split(master);
        let mut line = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                return;
            }
            for &b in &buf[..n] {
                if b != b'\r' {
                    line.push(b);
                    continue;
                }
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                let answer = reply(&line);
                line.clear();
                if let Some(a) = answer
                    && wr.write_all(a).await.is_err()
                {
                    return;
                }
            }
        }
    });
    (path, rx)
}

/// A fake adapter that answers every command of `refuse` with BEL, stays silent on
/// those of `ignore`, and answers everything else with CR.
fn fake_adapter(
    refuse: &'static [u8],
    ignore: &'static [u8],
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    fake_adapter_with(move |cmd| {
        let first = cmd.first().copied().unwrap_or(b'\r');
        if ignore.contains(&first) {
            None
        } else if refuse.contains(&first) {
            Some(&b"\x07"[..])
        } else {
            Some(&b"\r"[..])
        }
    })
}

async fn open_fake(path: &str) -> Result<capsule_links::Link, capsule_links::LinkError> {
    let stream =
        tokio_serial::SerialStream::open(&tokio_serial::new(path, 115_200)).expect("open slave");
    slcan::open_host("can", "slcan:fake@115200", stream, 500_000).await
}

#[tokio::test]
async fn an_adapter_that_refuses_the_open_command_is_named() {
    let (path, mut seen) = fake_adapter(b"O", b"");
    let e = open_fake(&path).await.expect_err("must fail");
    let msg = e.to_string();
    assert!(msg.contains("link `can`"), "{msg}");
    assert!(msg.contains("slcan:fake@115200"), "{msg}");
    assert!(msg.contains("refused the open command O"), "{msg}");
    let mut cmds = Vec::new();
    while let Ok(c) = seen.try_recv() {
        cmds.push(c);
    }
    assert!(cmds.contains(&"S6".to_string()), "{cmds:?}");
}

#[tokio::test]
async fn an_adapter_that_refuses_the_bit_rate_is_named() {
    let (path, _seen) = fake_adapter(b"S", b"");
    let msg = open_fake(&path).await.expect_err("must fail").to_string();
    assert!(
        msg.contains("refused the bit-rate command S6 (500000 bit/s)"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_adapter_that_does_not_answer_is_named() {
    let (path, _seen) = fake_adapter(b"", b"O");
    let msg = open_fake(&path).await.expect_err("must fail").to_string();
    assert!(msg.contains("did not answer the open command O"), "{msg}");
}

#[tokio::test]
async fn adapter_status_flags_are_counted() {
    // An adapter that answers `F` with data overrun + bus error (0x88).
    let (path, _seen) = fake_adapter_with(|cmd| {
        Some(if cmd.first() == Some(&b'F') {
            &b"F88\r"[..]
        } else {
            &b"\r"[..]
        })
    });
    let link = open_fake(&path).await.expect("opens");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = link.stats();
        if s.rx_dropped >= 1 && s.framing_errors >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "flags never counted: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
