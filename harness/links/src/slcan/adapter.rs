//! The harness as an SLCAN (Lawicel) USB-CAN adapter on a serial line, usually a
//! pseudo-terminal, so that flight software under test reaches the bus with a standard
//! SLCAN host: python-can's `slcan` interface, Linux `slcand` + SocketCAN, or a bare
//! serial library. Nothing of ours is needed on the flight software's side.
//!
//! Commands (each ends with CR; the answer is CR for success, BEL for an error):
//!
//! | command | answer | when |
//! |---|---|---|
//! | (empty) | CR | always (python-can sends one after `S`) |
//! | `S0`..`S8` | CR | channel closed; BEL when open or out of range |
//! | `sxxyy` (SJA1000 BTR0/BTR1, 8 MHz clock) | CR | channel closed; BEL when open or malformed |
//! | `O` | CR | opens the channel (a repeated `O` is answered CR: python-can sends two) |
//! | `L` | CR | opens listen-only: every transmit is refused with BEL |
//! | `C` | CR | closes the channel (also when closed: python-can starts with it) |
//! | `tiiil..`, `Tiiiiiiiil..`, `riiil`, `Riiiiiiiil` | `z` CR (11-bit), `Z` CR (29-bit) | open, not listen-only; else BEL |
//! | `d`, `D`, `b`, `B` (CAN FD) | BEL | always: the bus is classic CAN |
//! | `F` | `Fxx` CR | open; BEL when closed. Reading clears the flags |
//! | `Z0` / `Z1` | CR | timestamps off / on (4 hex digits, ms, wrap at 60000); channel closed |
//! | `Mxxxxxxxx` / `mxxxxxxxx` | CR | acceptance code / mask, channel closed: accepted, not applied (every frame passes) |
//! | `V` | `V1013` CR | always |
//! | `v` | `vSTM32` CR | always |
//! | `N` | `NCAP1` CR | always |
//! | anything else | BEL | |
//!
//! Status flags (`F`) are real: bit 0 (receive FIFO full) and bit 3 (data overrun)
//! when frames for the host were lost because it did not read them; bit 1 (transmit
//! FIFO full) when the host sent frames faster than the harness took them; bits 2
//! (error warning) and 7 (bus error) when an error frame was on the bus.
//!
//! The bus's bit rate is fixed by the bench: a host that opens the channel at another
//! bit rate (set with `S` or `s`) would see nothing but errors on a real bus, so the
//! link closes at once with a cause that names both rates.

use super::{BITRATES, Line, LineSplitter, encode_frame, parse_frame};
use crate::clock::now_ns;
use crate::{Link, LinkError, LinkStats, Packet, Received, TaskEnds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_serial::SerialStream;

/// The channel as the host has set it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelState {
    /// The channel is open (`O` or `L`).
    pub open: bool,
    /// Opened with `L`: the host may not transmit.
    pub listen_only: bool,
    /// Bit rate the host set with `S` or `s`, bit/s (`None`: not set, the bus's).
    pub bitrate_bps: Option<u32>,
    /// Time stamps on received frames (`Z1`).
    pub timestamps: bool,
    /// How many times the host has opened the channel.
    pub opens: u32,
}

/// An emulated adapter on a pseudo-terminal.
#[derive(Debug)]
pub struct Adapter {
    /// The bus side: frames the host transmits arrive here; frames sent here go to the
    /// host while its channel is open.
    pub link: Link,
    /// The device path the host opens (`/dev/pts/N`).
    pub path: String,
    /// The channel state, updated on every command that changes it.
    pub state: watch::Receiver<ChannelState>,
}

/// Status flag bits of the `F` answer.
const F_RX_FULL: u8 = 1 << 0;
const F_TX_FULL: u8 = 1 << 1;
const F_ERROR_WARNING: u8 = 1 << 2;
const F_OVERRUN: u8 = 1 << 3;
const F_BUS_ERROR: u8 = 1 << 7;

/// Identification answers.
const VERSION: &[u8] = b"V1013\r";
const DETAILED_VERSION: &[u8] = b"vSTM32\r";
const SERIAL_NUMBER: &[u8] = b"NCAP1\r";

/// Runs an SLCAN adapter on `stream` (any bit rate accepted): frames the host
/// transmits arrive on the returned link, frames sent on it go to the host while its
/// channel is open.
pub fn adapter(name: &str, stream: SerialStream) -> Link {
    let (link, ends) = Link::new_pair(name);
    let (tx, _rx) = watch::channel(ChannelState::default());
    tokio::spawn(adapter_task(ends, stream, None, tx, None));
    link
}

/// An SLCAN adapter on a new pseudo-terminal: the link, and the device path that an
/// SLCAN host (python-can, slcand, a flight computer) opens. Any bit rate is accepted.
pub fn adapter_on_pty(name: &str) -> Result<(Link, String), LinkError> {
    let (master, path, guard) = crate::serial::pty_raw()?;
    let (link, ends) = Link::new_pair(name);
    let (tx, _rx) = watch::channel(ChannelState::default());
    tokio::spawn(adapter_task(ends, master, Some(guard), tx, None));
    Ok((link, path))
}

/// An SLCAN adapter on a new pseudo-terminal for a bus at `bus_bitrate_bps`: a host
/// that opens the channel at another bit rate closes the link with a cause naming both.
pub fn adapter_on_pty_for_bus(name: &str, bus_bitrate_bps: u32) -> Result<Adapter, LinkError> {
    let (master, path, guard) = crate::serial::pty_raw()?;
    let (link, ends) = Link::new_pair(name);
    let (tx, state) = watch::channel(ChannelState::default());
    tokio::spawn(adapter_task(
        ends,
        master,
        Some(guard),
        tx,
        Some(bus_bitrate_bps),
    ));
    Ok(Adapter { link, path, state })
}

/// The bit rate of SJA1000 bus timing registers on an 8 MHz CAN clock (the convention
/// of `s` and of python-can's `BitTiming` for SLCAN): `8 MHz / (BRP (1 + TSEG1 +
/// TSEG2))`.
pub fn btr_bitrate_bps(btr0: u8, btr1: u8) -> u32 {
    let brp = u32::from(btr0 & 0x3F) + 1;
    let tseg1 = u32::from(btr1 & 0x0F) + 1;
    let tseg2 = u32::from((btr1 >> 4) & 0x07) + 1;
    8_000_000 / (brp * (1 + tseg1 + tseg2))
}

fn hex_u8(s: &[u8]) -> Option<u8> {
    let t = std::str::from_utf8(s).ok()?;
    u8::from_str_radix(t, 16).ok()
}

/// The adapter's state between commands.
struct Emulation {
    state: ChannelState,
    flags: u8,
    /// Frames for the host dropped because the channel was closed (not an overrun).
    closed_drops: u64,
    /// Overrun and receive-drop counts already reflected in the flags.
    seen_overruns: u64,
    seen_rx_dropped: u64,
}

impl Emulation {
    /// Answers one command line (without its CR); a frame the host transmits is given
    /// back for delivery.
    fn command(&mut self, l: &[u8], reply: &mut Vec<u8>) -> Option<capsule_icd::can::CanFrame> {
        let s = &mut self.state;
        let ok = |reply: &mut Vec<u8>, yes: bool| reply.push(if yes { b'\r' } else { 0x07 });
        match l.first().copied() {
            None => ok(reply, true),
            Some(b'S') => {
                let code = (l.len() == 2).then(|| l[1].wrapping_sub(b'0') as usize);
                match code.and_then(|c| BITRATES.get(c)) {
                    Some(&b) if !s.open => {
                        s.bitrate_bps = Some(b);
                        ok(reply, true);
                    }
                    _ => ok(reply, false),
                }
            }
            Some(b's') => match (
                l.len() == 5,
                l.get(1..3).and_then(hex_u8),
                l.get(3..5).and_then(hex_u8),
            ) {
                (true, Some(b0), Some(b1)) if !s.open => {
                    s.bitrate_bps = Some(btr_bitrate_bps(b0, b1));
                    ok(reply, true);
                }
                _ => ok(reply, false),
            },
            Some(c @ (b'O' | b'L')) if l.len() == 1 => {
                s.open = true;
                s.listen_only = c == b'L';
                s.opens += 1;
                ok(reply, true);
            }
            Some(b'C') if l.len() == 1 => {
                s.open = false;
                s.listen_only = false;
                ok(reply, true);
            }
            Some(b'V') if l.len() == 1 => reply.extend_from_slice(VERSION),
            Some(b'v') if l.len() == 1 => reply.extend_from_slice(DETAILED_VERSION),
            Some(b'N') if l.len() == 1 => reply.extend_from_slice(SERIAL_NUMBER),
            Some(b'F') if l.len() == 1 => {
                if s.open {
                    reply.extend_from_slice(format!("F{:02X}\r", self.flags).as_bytes());
                    self.flags = 0;
                } else {
                    ok(reply, false);
                }
            }
            Some(b'Z') if l.len() == 2 && matches!(l[1], b'0' | b'1') => {
                if !s.open {
                    s.timestamps = l[1] == b'1';
                }
                ok(reply, !s.open);
            }
            Some(b'M' | b'm') if l.len() == 9 && l[1..].iter().all(u8::is_ascii_hexdigit) => {
                ok(reply, !s.open);
            }
            Some(c @ (b't' | b'T' | b'r' | b'R')) => match parse_frame(l) {
                Some((f, _)) if s.open && !s.listen_only => {
                    reply.extend_from_slice(if c == b't' || c == b'r' {
                        b"z\r"
                    } else {
                        b"Z\r"
                    });
                    return Some(f);
                }
                _ => ok(reply, false),
            },
            Some(_) => ok(reply, false),
        }
        None
    }

    /// Raises the flags that the link's counters imply.
    fn update_flags(&mut self, stats: &LinkStats) {
        let snap = stats.snapshot();
        let overruns = snap.drops.saturating_sub(self.closed_drops);
        if overruns > self.seen_overruns {
            self.flags |= F_RX_FULL | F_OVERRUN;
            self.seen_overruns = overruns;
        }
        if snap.rx_dropped > self.seen_rx_dropped {
            self.flags |= F_TX_FULL;
            self.seen_rx_dropped = snap.rx_dropped;
        }
    }
}

async fn adapter_task(
    mut ends: TaskEnds,
    stream: SerialStream,
    mut guard: Option<SerialStream>,
    state_tx: watch::Sender<ChannelState>,
    bus_bitrate_bps: Option<u32>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut split = LineSplitter::default();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut em = Emulation {
        state: ChannelState::default(),
        flags: 0,
        closed_drops: 0,
        seen_overruns: 0,
        seen_rx_dropped: 0,
    };
    let t0 = now_ns();
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => { ends.close("the SLCAN host closed the line").await; return; }
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
                        if let Some(f) = em.command(&l, &mut reply) {
                            ends.deliver(Received { t_ns: t, bus_t_ns: None, packet: Packet::Frame(f) });
                        }
                    }
                    em.update_flags(&ends.stats);
                    if !reply.is_empty() && let Err(e) = wr.write_all(&reply).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                    if *state_tx.borrow() != em.state {
                        state_tx.send_replace(em.state);
                    }
                    if let (Some(bus), true) = (bus_bitrate_bps, em.state.open)
                        && let Some(host) = em.state.bitrate_bps
                        && host != bus
                    {
                        ends.close(format!(
                            "the SLCAN host opened the channel at {host} bit/s; the bus runs at {bus} bit/s (set the host's bit rate to {bus})"
                        ))
                        .await;
                        return;
                    }
                }
                Err(e) => { ends.close(format!("read error: {e}")).await; return; }
            },
            p = ends.to_task.recv() => match p {
                None => return,
                Some(Packet::Frame(f)) => {
                    if !em.state.open {
                        em.closed_drops += 1;
                        LinkStats::add(&ends.stats.drops, 1);
                        continue;
                    }
                    let ts = em.state.timestamps.then(|| (((now_ns() - t0) / 1_000_000) % 60_000) as u16);
                    if let Err(e) = wr.write_all(&encode_frame(&f, ts)).await {
                        ends.close(format!("write error: {e}")).await;
                        return;
                    }
                    ends.sent(&Packet::Frame(f));
                }
                Some(Packet::ErrorFrame) => em.flags |= F_BUS_ERROR | F_ERROR_WARNING,
                Some(Packet::Bytes(_)) => {
                    em.closed_drops += 1;
                    LinkStats::add(&ends.stats.drops, 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn em() -> Emulation {
        Emulation {
            state: ChannelState::default(),
            flags: 0,
            closed_drops: 0,
            seen_overruns: 0,
            seen_rx_dropped: 0,
        }
    }

    fn answer(e: &mut Emulation, cmd: &str) -> String {
        let mut r = Vec::new();
        e.command(cmd.as_bytes(), &mut r);
        String::from_utf8_lossy(&r)
            .replace('\r', "<CR>")
            .replace('\x07', "<BEL>")
    }

    #[test]
    fn lawicel_commands_answer_as_the_table_says() {
        let mut e = em();
        assert_eq!(answer(&mut e, "C"), "<CR>");
        assert_eq!(answer(&mut e, "S6"), "<CR>");
        assert_eq!(e.state.bitrate_bps, Some(500_000));
        assert_eq!(answer(&mut e, "S9"), "<BEL>");
        assert_eq!(answer(&mut e, ""), "<CR>");
        assert_eq!(answer(&mut e, "Z1"), "<CR>");
        assert_eq!(answer(&mut e, "M00000000"), "<CR>");
        assert_eq!(answer(&mut e, "F"), "<BEL>", "F needs an open channel");
        assert_eq!(answer(&mut e, "t1230"), "<BEL>", "closed: no transmit");
        assert_eq!(answer(&mut e, "O"), "<CR>");
        assert_eq!(answer(&mut e, "O"), "<CR>");
        assert_eq!(e.state.opens, 2);
        assert_eq!(answer(&mut e, "S6"), "<BEL>", "bit rate only while closed");
        assert_eq!(answer(&mut e, "Z0"), "<BEL>");
        assert_eq!(answer(&mut e, "t12321122"), "z<CR>");
        assert_eq!(answer(&mut e, "T1ABCDEF01AA"), "Z<CR>");
        assert_eq!(answer(&mut e, "d1230"), "<BEL>", "no CAN FD");
        assert_eq!(answer(&mut e, "F"), "F00<CR>");
        assert_eq!(answer(&mut e, "V"), "V1013<CR>");
        assert_eq!(answer(&mut e, "N"), "NCAP1<CR>");
        assert_eq!(answer(&mut e, "v"), "vSTM32<CR>");
        assert_eq!(answer(&mut e, "Q1"), "<BEL>");
        assert_eq!(answer(&mut e, "C"), "<CR>");
        assert_eq!(answer(&mut e, "L"), "<CR>");
        assert!(e.state.listen_only);
        assert_eq!(
            answer(&mut e, "t1230"),
            "<BEL>",
            "listen-only refuses transmits"
        );
    }

    #[test]
    fn btr_registers_give_python_can_bit_rates() {
        // python-can's BitTiming(f_clock=8 MHz): btr0 = (sjw-1)<<6 | (brp-1),
        // btr1 = (tseg2-1)<<4 | (tseg1-1); bit rate = f_clock / (brp (1+tseg1+tseg2)).
        assert_eq!(btr_bitrate_bps(0x00, 0x1C), 500_000); // brp 1, tseg1 13, tseg2 2
        assert_eq!(btr_bitrate_bps(0x01, 0x1C), 250_000);
        assert_eq!(btr_bitrate_bps(0x00, 0x14), 1_000_000); // brp 1, tseg1 5, tseg2 2
        assert_eq!(btr_bitrate_bps(0x00, 0x16), 800_000); // brp 1, tseg1 7, tseg2 2
        let mut e = em();
        assert_eq!(answer(&mut e, "s001C"), "<CR>");
        assert_eq!(e.state.bitrate_bps, Some(500_000));
        assert_eq!(answer(&mut e, "s00"), "<BEL>");
        assert_eq!(answer(&mut e, "s0G1C"), "<BEL>");
    }

    #[test]
    fn flags_follow_the_counters_and_clear_when_read() {
        let mut e = em();
        answer(&mut e, "O");
        let stats = LinkStats::default();
        LinkStats::add(&stats.drops, 3);
        e.closed_drops = 1;
        e.update_flags(&stats);
        assert_eq!(answer(&mut e, "F"), "F09<CR>");
        assert_eq!(answer(&mut e, "F"), "F00<CR>");
        LinkStats::add(&stats.rx_dropped, 1);
        e.update_flags(&stats);
        assert_eq!(answer(&mut e, "F"), "F02<CR>");
    }
}
