//! `socketcan-selftest IFACE`: exercises the SocketCAN backend on a real kernel CAN
//! interface (vcan0 in CI's virtual machine, or a bench's can0 with a loopback peer).
//!
//! Opens two links on the interface, sends standard, extended and remote frames each
//! way, and checks that every frame arrives intact and in order on the other socket.
//! Prints `SOCKETCAN SELFTEST PASS <n> frames` and exits 0, or prints the failure and
//! exits 1.

use capsule_icd::can::CanFrame;
use capsule_links::{Link, Packet, socketcan};
use std::process::ExitCode;
use std::time::Duration;

fn frames(tag: u8) -> Vec<CanFrame> {
    let mut v = Vec::new();
    for k in 0..100u32 {
        let data: Vec<u8> = (0..(k % 9) as u8).map(|b| b ^ tag).collect();
        let mut f = CanFrame::new(
            if k % 3 == 1 {
                0x1234_5600 | k
            } else {
                0x100 + k
            },
            &data,
        );
        f.extended = k % 3 == 1;
        if k % 10 == 9 {
            f.rtr = true;
            f.data = [0; 8];
        }
        v.push(f);
    }
    v
}

async fn transfer(from: &Link, to: &mut Link, tag: u8) -> Result<usize, String> {
    let sent = frames(tag);
    for f in &sent {
        from.send(Packet::Frame(*f))
            .await
            .map_err(|e| e.to_string())?;
    }
    for (k, want) in sent.iter().enumerate() {
        let r = tokio::time::timeout(Duration::from_secs(10), to.recv())
            .await
            .map_err(|_| format!("frame {k} did not arrive within 10 s"))?
            .map_err(|e| e.to_string())?;
        if r.packet != Packet::Frame(*want) {
            return Err(format!("frame {k}: got {:?}, want {want:?}", r.packet));
        }
    }
    Ok(sent.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let iface = std::env::args().nth(1).unwrap_or_else(|| "vcan0".into());
    let run = async {
        let mut a = socketcan::open("a", &iface).map_err(|e| e.to_string())?;
        let mut b = socketcan::open("b", &iface).map_err(|e| e.to_string())?;
        let n1 = transfer(&a, &mut b, 0x00).await?;
        let n2 = transfer(&b, &mut a, 0x5A).await?;
        let (sa, sb) = (a.stats(), b.stats());
        if sa.tx_packets != 100
            || sb.rx_packets != 100
            || sb.tx_packets != 100
            || sa.rx_packets != 100
        {
            return Err(format!("counters: a {sa:?}, b {sb:?}"));
        }
        Ok::<usize, String>(n1 + n2)
    };
    match run.await {
        Ok(n) => {
            println!("SOCKETCAN SELFTEST PASS {n} frames on {iface}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("SOCKETCAN SELFTEST FAIL on {iface}: {e}");
            ExitCode::from(1)
        }
    }
}
