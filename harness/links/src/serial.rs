//! Serial links through tokio-serial: real ports and pseudo-terminal pairs.
//!
//! Received chunks are timestamped right after `read` returns. A read error or end of
//! file (USB unplugged, the other end of a pty closed) closes the link with its cause;
//! on a pseudo-terminal, the peer closing its end reads as a hang-up (`EIO`) and is
//! named as one. A write that cannot complete within [`WRITE_STALL`] (the peer stopped
//! reading and the line's buffer is full) closes the link too: a stuck reader is an
//! event, never a hang.
//!
//! Pseudo-terminal file descriptors are close-on-exec, so a flight computer started by
//! the runner inherits none of the harness's ends (only the slave path it opens
//! itself): when it closes a line, the line really closes. Hold [`fd_lock`] while
//! making descriptors and spawning processes so that no spawn in another thread sees a
//! descriptor before it is marked.

use crate::address::SerialSettings;
use crate::clock::now_ns;
use crate::{Link, LinkError, Packet, Received, TaskEnds};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};

/// How long a write may wait for the peer to take bytes before the link is closed as
/// stalled ("peer stopped reading").
pub const WRITE_STALL: Duration = Duration::from_secs(2);

static FD_LOCK: Mutex<()> = Mutex::new(());

/// A lock held while descriptors that must not leak into children are made and marked
/// close-on-exec, and while child processes are spawned.
pub fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Marks a descriptor close-on-exec.
fn cloexec(fd: &impl AsRawFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// A pty pair with both ends close-on-exec.
fn pair_cloexec() -> Result<(SerialStream, SerialStream), LinkError> {
    let err = |cause: String| LinkError::Open {
        link: "pty".into(),
        address: "pty".into(),
        cause,
        hint: Some("pseudo-terminals need /dev/ptmx".into()),
    };
    let _g = fd_lock();
    let (master, slave) = SerialStream::pair().map_err(|e| err(e.to_string()))?;
    cloexec(&master).map_err(|e| err(format!("close-on-exec: {e}")))?;
    cloexec(&slave).map_err(|e| err(format!("close-on-exec: {e}")))?;
    Ok((master, slave))
}

/// Keeps the slave end of a pty open until the peer has attached (see [`pty_pair`]).
pub type SlaveGuard = Arc<Mutex<Option<SerialStream>>>;

/// Opens a serial port as a link.
pub fn open(name: &str, path: &str, s: SerialSettings) -> Result<Link, LinkError> {
    let stream = open_stream(name, path, s)?;
    cloexec(&stream).map_err(|e| LinkError::Open {
        link: name.into(),
        address: format!("serial:{path}@{}", s.baud),
        cause: format!("close-on-exec: {e}"),
        hint: None,
    })?;
    Ok(from_stream(name, stream))
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
    tokio::spawn(run(ends, stream, Arc::new(Mutex::new(None))));
    link
}

/// A pseudo-terminal pair: the link on the master side, and the slave's device path
/// for another process (or another link) to open.
///
/// The harness holds the slave open until the peer has clearly attached (its first
/// byte arrives, or the caller says so with [`Link::peer_attached`], e.g. once the
/// flight computer answers on another link): closing it earlier would hang up the
/// line before the peer opens it. After that, the peer closing its end reads as a
/// hang-up here, which closes the link.
pub fn pty_pair(name: &str) -> Result<(Link, String), LinkError> {
    let (master, slave) = pair_cloexec()?;
    let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
    let (mut link, ends) = Link::new_pair(name);
    let guard: SlaveGuard = Arc::new(Mutex::new(Some(slave)));
    link.guard = Some(guard.clone());
    tokio::spawn(run(ends, master, guard));
    Ok((link, path))
}

/// A pseudo-terminal pair for protocol layers that need the raw stream (SLCAN): the
/// master stream, the slave's path, and a guard that keeps the slave open until the
/// peer attaches (drop it after the peer's first byte).
pub fn pty_raw() -> Result<(SerialStream, String, SerialStream), LinkError> {
    let (master, slave) = pair_cloexec()?;
    let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
    Ok((master, path, slave))
}

/// Drops the slave guard (the peer has attached).
pub(crate) fn release(guard: &SlaveGuard) {
    if let Ok(mut g) = guard.lock() {
        g.take();
    }
}

/// The cause of a failed read, named for people: on a pty master, `EIO` means every
/// slave descriptor was closed (the peer hung up).
fn read_cause(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(5) {
        "the peer closed the line (hang-up)".into()
    } else {
        format!("read error: {e}")
    }
}

async fn run(mut ends: TaskEnds, stream: SerialStream, guard: SlaveGuard) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => { ends.close("end of file (peer closed)").await; return; }
                Ok(n) => {
                    let t = now_ns();
                    release(&guard);
                    ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: Packet::Bytes(buf[..n].to_vec()) });
                }
                Err(e) => { ends.close(read_cause(&e)).await; return; }
            },
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Bytes(b)) => {
                    match tokio::time::timeout(WRITE_STALL, wr.write_all(&b)).await {
                        Ok(Ok(())) => ends.sent(&Packet::Bytes(b)),
                        Ok(Err(e)) => {
                            ends.close(format!("write error: {e}")).await;
                            return;
                        }
                        Err(_) => {
                            ends.close(format!(
                                "the peer stopped reading: a {}-byte write waited {:?} for the line's buffer",
                                b.len(), WRITE_STALL
                            )).await;
                            return;
                        }
                    }
                }
                Some(Packet::Frame(_) | Packet::ErrorFrame) => {
                    tracing::warn!(link = %ends.name, "CAN frame sent on a serial link: dropped");
                    crate::LinkStats::add(&ends.stats.drops, 1);
                }
            }
        }
    }
}
