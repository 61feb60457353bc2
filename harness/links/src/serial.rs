//! Serial links through tokio-serial: real ports and pseudo-terminal pairs.
//!
//! Received chunks are timestamped right after `read` returns. A read error or end of
//! file (USB unplugged, the other end of a pty closed) closes the link with its cause.

use crate::address::SerialSettings;
use crate::clock::now_ns;
use crate::{Link, LinkError, Packet, Received, TaskEnds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};

/// Opens a serial port as a link.
pub fn open(name: &str, path: &str, s: SerialSettings) -> Result<Link, LinkError> {
    Ok(from_stream(name, open_stream(name, path, s)?))
}

/// Opens a serial port as a raw stream (for protocols layered on it, such as SLCAN).
pub fn open_stream(name: &str, path: &str, s: SerialSettings) -> Result<SerialStream, LinkError> {
    let err = |cause: String, hint: Option<&str>| LinkError::Open {
        link: name.into(),
        address: format!("serial:{path}@{}", s.baud),
        cause,
        hint: hint.map(str::to_string),
    };
    let builder = tokio_serial::new(path, s.baud)
        .data_bits(match s.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            _ => DataBits::Eight,
        })
        .parity(match s.parity {
            'E' => Parity::Even,
            'O' => Parity::Odd,
            _ => Parity::None,
        })
        .stop_bits(if s.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        });
    builder.open_native_async().map_err(|e| {
        let hint = match e.kind() {
            tokio_serial::ErrorKind::NoDevice => {
                Some("is the device plugged in? `hil devices` lists the ports")
            }
            tokio_serial::ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => {
                Some("add yourself to the `dialout` group")
            }
            tokio_serial::ErrorKind::Io(std::io::ErrorKind::ResourceBusy) => {
                Some("serial port busy: is another run using it?")
            }
            _ => None,
        };
        err(e.to_string(), hint)
    })
}

/// Wraps an already open stream (e.g. one end of [`pty_pair`]).
pub fn from_stream(name: &str, stream: SerialStream) -> Link {
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(run(ends, stream, None));
    link
}

/// A pseudo-terminal pair: the link on the master side, and the slave's device path
/// for another process (or another link) to open.
pub fn pty_pair(name: &str) -> Result<(Link, String), LinkError> {
    let (master, slave) = SerialStream::pair().map_err(|e| LinkError::Open {
        link: name.into(),
        address: "pty".into(),
        cause: e.to_string(),
        hint: Some("pseudo-terminals need /dev/ptmx".into()),
    })?;
    let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
    // Hold the slave open until the peer has clearly attached (its first byte arrives):
    // closing it earlier would hang up the line before the peer opens it. After that,
    // the peer closing its end reads as an error here, which closes the link.
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(run(ends, master, Some(slave)));
    Ok((link, path))
}

/// A pseudo-terminal pair for protocol layers that need the raw stream (SLCAN): the
/// master stream, the slave's path, and a guard that keeps the slave open until the
/// peer attaches (drop it after the peer's first byte).
pub fn pty_raw() -> Result<(SerialStream, String, SerialStream), LinkError> {
    let (master, slave) = SerialStream::pair().map_err(|e| LinkError::Open {
        link: "pty".into(),
        address: "pty".into(),
        cause: e.to_string(),
        hint: Some("pseudo-terminals need /dev/ptmx".into()),
    })?;
    let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
    Ok((master, path, slave))
}

async fn run(mut ends: TaskEnds, stream: SerialStream, mut guard: Option<SerialStream>) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => { ends.close("end of file (peer closed)").await; return; }
                Ok(n) => {
                    let t = now_ns();
                    drop(guard.take());
                    ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: Packet::Bytes(buf[..n].to_vec()) });
                }
                Err(e) => { ends.close(format!("read error: {e}")).await; return; }
            },
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Bytes(b)) => {
                    if let Err(e) = wr.write_all(&b).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                    ends.sent(&Packet::Bytes(b));
                }
                Some(Packet::Frame(_) | Packet::ErrorFrame) => {
                    tracing::warn!(link = %ends.name, "CAN frame sent on a serial link: dropped");
                    crate::LinkStats::add(&ends.stats.drops, 1);
                }
            }
        }
    }
}
