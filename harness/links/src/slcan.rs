//! SLCAN (Lawicel ASCII protocol) over a serial line, both sides:
//! - [`open_host`]: the harness drives a USB-CAN adapter (CANable, USBtin, CANUSB...)
//!   as a CAN link, for benches without kernel CAN;
//! - [`adapter`]: the harness *is* an SLCAN adapter on a serial line (a pty), so that
//!   standard SLCAN hosts such as python-can's `slcan` interface can join the bus.
//!
//! Commands end with CR (0x0D). The adapter answers CR for success and BEL (0x07) for
//! an error; a transmit command is acknowledged with `z` CR (standard) or `Z` CR
//! (extended). Frames: `tiiildd..` (11-bit), `Tiiiiiiiildd..` (29-bit), `riiil` and
//! `Riiiiiiiil` (remote), optionally followed by a 4-hex-digit millisecond time stamp
//! (`Z1`). Bit rates `S0`..`S8` = 10k, 20k, 50k, 100k, 125k, 250k, 500k, 800k, 1M.
//! The adapter tolerates empty commands and a repeated open (python-can sends both).

use crate::clock::now_ns;
use crate::{Link, LinkError, LinkStats, Packet, Received, TaskEnds};
use capsule_icd::can::CanFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;

/// SLCAN bit-rate codes `S0`..`S8`.
pub const BITRATES: [u32; 9] = [
    10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000,
];

/// Longest valid line: `T` + 8 id + 1 dlc + 16 data + 4 timestamp.
pub const MAX_LINE: usize = 30;

/// Encodes a frame as an SLCAN line (with CR), with an optional timestamp.
pub fn encode_frame(f: &CanFrame, timestamp_ms: Option<u16>) -> Vec<u8> {
    let mut s = String::with_capacity(MAX_LINE + 1);
    let dlc = f.dlc.min(8);
    match (f.extended, f.rtr) {
        (false, false) => s.push_str(&format!("t{:03X}{}", f.id & 0x7FF, dlc)),
        (true, false) => s.push_str(&format!("T{:08X}{}", f.id & 0x1FFF_FFFF, dlc)),
        (false, true) => s.push_str(&format!("r{:03X}{}", f.id & 0x7FF, dlc)),
        (true, true) => s.push_str(&format!("R{:08X}{}", f.id & 0x1FFF_FFFF, dlc)),
    }
    if !f.rtr {
        for b in &f.data[..usize::from(dlc)] {
            s.push_str(&format!("{b:02X}"));
        }
    }
    if let Some(t) = timestamp_ms {
        s.push_str(&format!("{:04X}", t % 60_000));
    }
    s.push('\r');
    s.into_bytes()
}

/// Parses a frame line (without its CR). Returns the frame and its timestamp if any.
pub fn parse_frame(line: &[u8]) -> Option<(CanFrame, Option<u16>)> {
    let s = std::str::from_utf8(line).ok()?;
    let kind = s.chars().next()?;
    let (ext, rtr) = match kind {
        't' => (false, false),
        'T' => (true, false),
        'r' => (false, true),
        'R' => (true, true),
        _ => return None,
    };
    let idl = if ext { 8 } else { 3 };
    if s.len() < 1 + idl + 1 {
        return None;
    }
    let id = u32::from_str_radix(&s[1..1 + idl], 16).ok()?;
    if (!ext && id > 0x7FF) || id > 0x1FFF_FFFF {
        return None;
    }
    let dlc = s[1 + idl..2 + idl].parse::<u8>().ok().filter(|d| *d <= 8)?;
    let mut pos = 2 + idl;
    let mut data = [0u8; 8];
    if !rtr {
        let need = usize::from(dlc) * 2;
        if s.len() < pos + need {
            return None;
        }
        for (k, d) in data.iter_mut().enumerate().take(usize::from(dlc)) {
            *d = u8::from_str_radix(&s[pos + 2 * k..pos + 2 * k + 2], 16).ok()?;
        }
        pos += need;
    }
    let ts = match s.len() - pos {
        0 => None,
        4 => Some(u16::from_str_radix(&s[pos..], 16).ok()?),
        _ => return None,
    };
    Some((
        CanFrame {
            id,
            extended: ext,
            rtr,
            dlc,
            data,
        },
        ts,
    ))
}

/// Splits a byte stream into CR- or BEL-terminated lines, bounded in length.
#[derive(Debug, Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    overlong: bool,
}

/// One line from [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A CR-terminated line (possibly empty).
    Cr(Vec<u8>),
    /// BEL: an error answer.
    Bel,
    /// A line longer than [`MAX_LINE`] was thrown away.
    Overlong,
}

impl LineSplitter {
    /// Feeds bytes, appending complete lines to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Line>) {
        for &b in bytes {
            match b {
                b'\r' => {
                    if self.overlong {
                        out.push(Line::Overlong);
                    } else {
                        out.push(Line::Cr(std::mem::take(&mut self.line)));
                    }
                    self.line.clear();
                    self.overlong = false;
                }
                0x07 => {
                    self.line.clear();
                    self.overlong = false;
                    out.push(Line::Bel);
                }
                b'\n' => {}
                _ => {
                    if self.line.len() >= MAX_LINE + 2 {
                        self.overlong = true;
                        self.line.clear();
                    } else if !self.overlong {
                        self.line.push(b);
                    }
                }
            }
        }
    }
}

fn code_for(bitrate: u32) -> Option<usize> {
    BITRATES.iter().position(|b| *b == bitrate)
}

/// Opens an SLCAN adapter on `stream` as a CAN link: closes the channel, sets the bit
/// rate, opens it, then carries frames.
pub fn open_host(name: &str, stream: SerialStream, can_bitrate: u32) -> Result<Link, LinkError> {
    let code = code_for(can_bitrate).ok_or_else(|| LinkError::Open {
        link: name.into(),
        address: "slcan".into(),
        cause: format!("CAN bit rate {can_bitrate} has no SLCAN code"),
        hint: Some("use one of 10k, 20k, 50k, 100k, 125k, 250k, 500k, 800k, 1M".into()),
    })?;
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(host_task(ends, stream, code));
    Ok(link)
}

async fn host_task(mut ends: TaskEnds, stream: SerialStream, code: usize) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let init = format!("\r\r\rC\rS{code}\rO\r");
    if let Err(e) = wr.write_all(init.as_bytes()).await {
        ends.close(format!("write error during SLCAN init: {e}"))
            .await;
        return;
    }
    let mut split = LineSplitter::default();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => { ends.close("adapter closed the line").await; return; }
                Ok(n) => {
                    let t = now_ns();
                    split.push(&buf[..n], &mut lines);
                    for l in lines.drain(..) {
                        match l {
                            Line::Cr(l) if matches!(l.first(), Some(b't' | b'T' | b'r' | b'R')) => match parse_frame(&l) {
                                Some((f, _)) => ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: Packet::Frame(f) }),
                                None => LinkStats::add(&ends.stats.framing_errors, 1),
                            },
                            Line::Cr(_) => {} // acknowledgements (empty, z, Z) and status replies
                            Line::Bel => LinkStats::add(&ends.stats.drops, 1), // adapter refused a command
                            Line::Overlong => LinkStats::add(&ends.stats.framing_errors, 1),
                        }
                    }
                }
                Err(e) => { ends.close(format!("read error: {e}")).await; return; }
            },
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Frame(f)) => {
                    if let Err(e) = wr.write_all(&encode_frame(&f, None)).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                    ends.sent(&Packet::Frame(f));
                }
                Some(Packet::Bytes(_) | Packet::ErrorFrame) => LinkStats::add(&ends.stats.drops, 1),
            }
        }
    }
}

/// Runs an SLCAN *adapter* on `stream`: frames the host transmits arrive on the
/// returned link, and frames sent on the link go to the host (when the channel is open).
pub fn adapter(name: &str, stream: SerialStream) -> Link {
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(adapter_task(ends, stream, None));
    link
}

/// An SLCAN adapter on a new pseudo-terminal: the link, and the device path that an
/// SLCAN host (python-can, slcand, a flight computer) opens.
pub fn adapter_on_pty(name: &str) -> Result<(Link, String), LinkError> {
    let (master, path, guard) = crate::serial::pty_raw()?;
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(adapter_task(ends, master, Some(guard)));
    Ok((link, path))
}

async fn adapter_task(mut ends: TaskEnds, stream: SerialStream, mut guard: Option<SerialStream>) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut split = LineSplitter::default();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut open = false;
    let mut timestamps = false;
    let t0 = now_ns();
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => { ends.close("host closed the line").await; return; }
                Ok(n) => {
                    let t = now_ns();
                    drop(guard.take());
                    split.push(&buf[..n], &mut lines);
                    let mut reply = Vec::new();
                    for l in lines.drain(..) {
                        let Line::Cr(l) = l else {
                            LinkStats::add(&ends.stats.framing_errors, 1);
                            reply.push(0x07);
                            continue;
                        };
                        match l.first().copied() {
                            None => reply.push(b'\r'),
                            Some(b'S') if l.len() == 2 && (b'0'..=b'8').contains(&l[1]) && !open => reply.push(b'\r'),
                            Some(b'O' | b'L') => { open = true; reply.push(b'\r'); }
                            Some(b'C') => { open = false; reply.push(b'\r'); }
                            Some(b'V') => reply.extend_from_slice(b"V1013\r"),
                            Some(b'v') => reply.extend_from_slice(b"vSTM32\r"),
                            Some(b'N') => reply.extend_from_slice(b"NCAP1\r"),
                            Some(b'F') => reply.extend_from_slice(b"F00\r"),
                            Some(b'Z') if l.len() == 2 => { timestamps = l[1] == b'1'; reply.push(b'\r'); }
                            Some(c @ (b't' | b'T' | b'r' | b'R')) => match (open, parse_frame(&l)) {
                                (true, Some((f, _))) => {
                                    ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: Packet::Frame(f) });
                                    reply.extend_from_slice(if c == b't' || c == b'r' { b"z\r" } else { b"Z\r" });
                                }
                                (false, _) => reply.push(0x07),
                                (true, None) => { LinkStats::add(&ends.stats.framing_errors, 1); reply.push(0x07); }
                            },
                            Some(_) => reply.push(0x07),
                        }
                    }
                    if !reply.is_empty() && let Err(e) = wr.write_all(&reply).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                }
                Err(e) => { ends.close(format!("read error: {e}")).await; return; }
            },
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Frame(f)) => {
                    if !open {
                        LinkStats::add(&ends.stats.drops, 1);
                        continue;
                    }
                    let ts = timestamps.then(|| (((now_ns() - t0) / 1_000_000) % 60_000) as u16);
                    if let Err(e) = wr.write_all(&encode_frame(&f, ts)).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                    ends.sent(&Packet::Frame(f));
                }
                Some(Packet::Bytes(_) | Packet::ErrorFrame) => LinkStats::add(&ends.stats.drops, 1),
            }
        }
    }
}
