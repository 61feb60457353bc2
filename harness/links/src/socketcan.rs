//! Linux kernel CAN (SocketCAN): hardware interfaces (`can0`) and `vcan`.
//!
//! Frames are timestamped right after the kernel hands them over. Where the kernel has
//! no CAN support (as on some CI machines and containers), opening fails with a clear
//! error that suggests the SLCAN and virtual-bus backends.

use crate::clock::now_ns;
use crate::{Link, LinkError, LinkStats, Packet, Received};
use capsule_icd::can::CanFrame;
use socketcan::{EmbeddedFrame, ExtendedId, Frame, Id, StandardId};

/// Hint shown when the kernel has no CAN.
pub const NO_KERNEL_CAN_HINT: &str = "no kernel CAN on this machine (modprobe can can-raw vcan, or use slcan: with a USB-CAN adapter, or vbus: for the simulated bench)";

fn to_kernel(f: &CanFrame) -> Option<socketcan::CanFrame> {
    let id: Id = if f.extended {
        ExtendedId::new(f.id)?.into()
    } else {
        StandardId::new(u16::try_from(f.id).ok()?)?.into()
    };
    if f.rtr {
        socketcan::CanFrame::new_remote(id, usize::from(f.dlc.min(8)))
    } else {
        socketcan::CanFrame::new(id, f.payload())
    }
}

fn from_kernel(f: &socketcan::CanFrame) -> Option<Packet> {
    match f {
        socketcan::CanFrame::Error(_) => Some(Packet::ErrorFrame),
        _ => {
            let mut c = CanFrame::new(f.raw_id(), f.data());
            c.extended = f.is_extended();
            c.rtr = f.is_remote_frame();
            c.dlc = f.dlc().min(8) as u8;
            Some(Packet::Frame(c))
        }
    }
}

/// Opens a kernel CAN interface as a link.
pub fn open(name: &str, interface: &str) -> Result<Link, LinkError> {
    let sock = socketcan::tokio::CanSocket::open(interface).map_err(|e| {
        let no_can = matches!(e.raw_os_error(), Some(97) | Some(93)) // EAFNOSUPPORT, EPROTONOSUPPORT
            || e.kind() == std::io::ErrorKind::NotFound
            || e.raw_os_error() == Some(19); // ENODEV
        LinkError::Open {
            link: name.into(),
            address: format!("socketcan:{interface}"),
            cause: e.to_string(),
            hint: Some(if no_can {
                NO_KERNEL_CAN_HINT.to_string()
            } else {
                "check `ip link show` and permissions".to_string()
            }),
        }
    })?;
    let (link, mut ends) = Link::new_pair(name);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = sock.read_frame() => match r {
                    Ok(f) => {
                        let t = now_ns();
                        match from_kernel(&f) {
                            Some(p) => ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: p }),
                            None => LinkStats::add(&ends.stats.framing_errors, 1),
                        }
                    }
                    Err(e) => { ends.close(format!("read error: {e}")).await; return; }
                },
                p = ends.to_task.recv() => match p {
                    None => return,
                    Some(Packet::Frame(f)) => match to_kernel(&f) {
                        Some(k) => {
                            if let Err(e) = sock.write_frame(k).await {
                                // A full kernel queue (ENOBUFS) is a drop, anything else ends the link.
                                if e.raw_os_error() == Some(105) {
                                    LinkStats::add(&ends.stats.drops, 1);
                                    continue;
                                }
                                ends.close(format!("write error: {e}")).await;
                                return;
                            }
                            ends.sent(&Packet::Frame(f));
                        }
                        None => LinkStats::add(&ends.stats.drops, 1),
                    },
                    Some(_) => LinkStats::add(&ends.stats.drops, 1),
                }
            }
        }
    });
    Ok(link)
}
