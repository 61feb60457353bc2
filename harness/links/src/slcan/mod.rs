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
//! The adapter side and its command set are in [`adapter`].

use crate::clock::now_ns;
use crate::{Link, LinkError, LinkStats, Packet, Received, TaskEnds};
use capsule_icd::can::CanFrame;

pub mod adapter;
pub use adapter::{Adapter, ChannelState, adapter, adapter_on_pty, adapter_on_pty_for_bus};
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

/// How long the host waits for the adapter's answer to each set-up command.
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the host asks an open adapter for its status flags (`F`).
pub const STATUS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Status flag bits (`F` reply): receive FIFO full, transmit FIFO full, data overrun
/// (frames lost) and bus error / arbitration lost / error warning / error passive.
const FLAGS_LOST: u8 = 0b0000_1011;
const FLAGS_BUS: u8 = 0b1111_0100;

/// Opens an SLCAN adapter on `stream` as a CAN link, checking every answer: closes the
/// channel (an error answer is tolerated: it may be closed already), asks for the
/// version, sets the bit rate and opens the channel; a refused (`BEL`) or missing
/// answer to `S` or `O` fails with an error naming the adapter and the command. Then
/// carries frames, and polls the status flags every [`STATUS_POLL`]: lost frames
/// (FIFO full, overrun) count as receive drops, bus errors as framing errors.
pub async fn open_host(
    name: &str,
    address: &str,
    stream: SerialStream,
    can_bitrate: u32,
) -> Result<Link, LinkError> {
    let fail = |cause: String, hint: Option<&str>| LinkError::Open {
        link: name.into(),
        address: address.into(),
        cause,
        hint: hint.map(str::to_string),
    };
    let code = code_for(can_bitrate).ok_or_else(|| {
        fail(
            format!("CAN bit rate {can_bitrate} has no SLCAN code"),
            Some("use one of 10k, 20k, 50k, 100k, 125k, 250k, 500k, 800k, 1M"),
        )
    })?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut split = LineSplitter::default();
    // Empty commands flush a half-typed line in the adapter; their answers (CR or
    // BEL, adapters differ) are read and thrown away, so that every later answer
    // belongs to its own command.
    if let Err(e) = wr.write_all(b"\r\r\r").await {
        return Err(fail(format!("during set-up: {e}"), None));
    }
    let mut buf = [0u8; 256];
    let quiet = std::time::Duration::from_millis(100);
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, rd.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
    let _ = ask(&mut rd, &mut wr, &mut split, b"C\r", 1).await;
    let version = match ask(&mut rd, &mut wr, &mut split, b"V\r", 1).await {
        Ok(v) => v.into_iter().next().unwrap_or_default(),
        Err(_) => String::new(),
    };
    for (cmd, what) in [
        (
            format!("S{code}\r"),
            format!("the bit-rate command S{code} ({can_bitrate} bit/s)"),
        ),
        ("O\r".to_string(), "the open command O".to_string()),
    ] {
        match ask(&mut rd, &mut wr, &mut split, cmd.as_bytes(), 1).await {
            Ok(_) => {}
            Err(Answer::Refused) => {
                return Err(fail(
                    format!(
                        "the adapter refused {what} (answered BEL){}",
                        version_note(&version)
                    ),
                    Some(
                        "is the channel already open by another program, or the bit rate unsupported?",
                    ),
                ));
            }
            Err(Answer::Silent) => {
                return Err(fail(
                    format!(
                        "the adapter did not answer {what} within {REPLY_TIMEOUT:?}{}",
                        version_note(&version)
                    ),
                    Some(
                        "is this an SLCAN (Lawicel) adapter, at the serial settings of the bench?",
                    ),
                ));
            }
            Err(Answer::Io(e)) => return Err(fail(format!("during set-up: {e}"), None)),
        }
    }
    let (link, ends) = Link::new_pair(name);
    tokio::spawn(host_task(ends, rd, wr, split));
    Ok(link)
}

fn version_note(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("; adapter version `{v}`")
    }
}

/// Why a set-up command failed.
enum Answer {
    Refused,
    Silent,
    Io(std::io::Error),
}

/// Writes a command and waits for `answers` answers: the text of each non-empty CR
/// line (an empty line is a plain OK); BEL is a refusal.
async fn ask(
    rd: &mut (impl AsyncReadExt + Unpin),
    wr: &mut (impl AsyncWriteExt + Unpin),
    split: &mut LineSplitter,
    cmd: &[u8],
    answers: usize,
) -> Result<Vec<String>, Answer> {
    wr.write_all(cmd).await.map_err(Answer::Io)?;
    let mut got = Vec::new();
    let mut n = 0;
    let mut buf = [0u8; 256];
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    while n < answers {
        let r = tokio::time::timeout_at(deadline, rd.read(&mut buf))
            .await
            .map_err(|_| Answer::Silent)?
            .map_err(Answer::Io)?;
        if r == 0 {
            return Err(Answer::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the adapter closed the line",
            )));
        }
        split.push(&buf[..r], &mut lines);
        for l in lines.drain(..) {
            match l {
                Line::Bel => return Err(Answer::Refused),
                Line::Cr(t) => {
                    n += 1;
                    if !t.is_empty() {
                        got.push(String::from_utf8_lossy(&t).into_owned());
                    }
                }
                Line::Overlong => n += 1,
            }
        }
    }
    Ok(got)
}

async fn host_task(
    mut ends: TaskEnds,
    mut rd: tokio::io::ReadHalf<SerialStream>,
    mut wr: tokio::io::WriteHalf<SerialStream>,
    mut split: LineSplitter,
) {
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut poll = tokio::time::interval(STATUS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                            Line::Cr(l) if l.first() == Some(&b'F') => {
                                let flags = std::str::from_utf8(&l[1..]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                                match flags {
                                    Some(f) => {
                                        if f & FLAGS_LOST != 0 { LinkStats::add(&ends.stats.rx_dropped, 1); }
                                        if f & FLAGS_BUS != 0 { LinkStats::add(&ends.stats.framing_errors, 1); }
                                        if f != 0 { tracing::warn!(link = %ends.name, flags = format!("{f:#04x}"), "SLCAN adapter status flags"); }
                                    }
                                    None => LinkStats::add(&ends.stats.framing_errors, 1),
                                }
                            }
                            Line::Cr(_) => {} // acknowledgements (empty, z, Z)
                            Line::Bel => LinkStats::add(&ends.stats.drops, 1), // adapter refused a transmission
                            Line::Overlong => LinkStats::add(&ends.stats.framing_errors, 1),
                        }
                    }
                }
                Err(e) => { ends.close(format!("read error: {e}")).await; return; }
            },
            _ = poll.tick() => {
                if let Err(e) = tokio::time::timeout(crate::serial::WRITE_STALL, wr.write_all(b"F\r")).await.unwrap_or_else(|_| Err(std::io::Error::other("the adapter stopped reading"))) {
                    ends.close(format!("write error: {e}")).await;
                    return;
                }
            }
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Frame(f)) => {
                    if let Err(e) = tokio::time::timeout(crate::serial::WRITE_STALL, wr.write_all(&encode_frame(&f, None))).await.unwrap_or_else(|_| Err(std::io::Error::other("the adapter stopped reading"))) {
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
