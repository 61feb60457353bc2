//! The bundle's stream files, written on their own thread as the run goes: the CAN
//! log, the serial logs, the GNSS stream as sent (NMEA text or UBX frames) and the
//! telemetry.
//!
//! Files are flushed at fixed points of bus time, so that the same lockstep run gives
//! the same bytes: every second in real time (a crash or `kill -9` loses at most the
//! last second), every 10 s of simulated time in lockstep (a fraction of a second of
//! wall time there). What was flushed stays readable: gzip data up to the last sync
//! flush, MCAP chunks up to the last closed one.

use crate::telemetry::Telemetry;
use crate::{EvidenceError, io_err};
use capsule_icd::Icd;
use capsule_icd::can::CanFrame;
use capsule_links::Packet;
use capsule_runner::tap::{Dir, TapRecord, WireLink};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The CAN log: candump `-L` lines, gzip-compressed.
pub const CAN_LOG: &str = "can.log.gz";
/// The IMU line's bytes, both directions (see [`SERIAL_MAGIC`]).
pub const IMU_LOG: &str = "imu.serial.gz";
/// The GNSS line's bytes, both directions.
pub const GNSS_LOG: &str = "gnss.serial.gz";
/// The GNSS stream as sent to the avionics, an NMEA line: plain text.
pub const NMEA: &str = "gnss.nmea";
/// The GNSS stream as sent to the avionics, a UBX line: the raw frames (u-center and
/// pyubx2 open `.ubx` files).
pub const UBX: &str = "gnss.ubx";

/// The file of the GNSS stream as sent ([`NMEA`] or [`UBX`], by the binding's line).
pub fn gnss_stream_file(line: &capsule_icd::gnss::GnssLine) -> &'static str {
    match line.protocol {
        capsule_icd::gnss::GnssProtocol::Nmea { .. } => NMEA,
        capsule_icd::gnss::GnssProtocol::UbxNavPvt => UBX,
    }
}
/// The telemetry.
pub const TELEMETRY: &str = "telemetry.mcap";

/// First bytes of a serial log (after gunzip). Then records: bus time in ns (`i64`
/// little-endian), direction (`0` harness to avionics, `1` avionics to harness), byte
/// count (`u32` little-endian), the bytes.
pub const SERIAL_MAGIC: &[u8; 8] = b"HILSER1\n";

/// The interface name in the CAN log.
pub const CAN_INTERFACE: &str = "can0";

/// candump's identifier of an error frame: `CAN_ERR_FLAG | CAN_ERR_BUSERROR`.
pub const ERROR_FRAME_ID: u32 = 0x2000_0080;

/// What the stream carried, counted by the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCounts {
    /// Records received from the run.
    pub records: u64,
    /// CAN frames logged, harness to avionics.
    pub can_tx: u64,
    /// CAN frames logged, avionics to harness (error frames included).
    pub can_rx: u64,
    /// Error frames logged (both directions).
    pub can_error_frames: u64,
    /// Serial chunks and bytes logged per link and direction: (link, tx chunks, tx
    /// bytes, rx chunks, rx bytes).
    pub serial: Vec<(String, u64, u64, u64, u64)>,
    /// Telemetry samples written.
    pub samples: u64,
    /// Events written.
    pub events: u64,
}

/// What the avionics said about themselves on the bus (`FC_Ident`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AvionicsIdent {
    /// Software version `major.minor.patch`.
    pub software: (u8, u8, u8),
    /// Build hash.
    pub build_hash: u32,
}

/// The writer thread's result.
#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    /// Counts.
    pub counts: StreamCounts,
    /// The avionics' identification, if they sent one.
    pub avionics: Option<AvionicsIdent>,
    /// The last bus time seen, s.
    pub last_t_s: f64,
}

/// A gzip file fed through a buffer: the compressor sees 64 KiB at a time, never a
/// 13-byte record header.
struct Gz {
    path: PathBuf,
    w: BufWriter<GzEncoder<BufWriter<File>>>,
}

impl Gz {
    fn create(dir: &Path, name: &'static str) -> Result<Self, EvidenceError> {
        let path = dir.join(name);
        let f = File::create(&path).map_err(|e| io_err(&path, e))?;
        // No file name or time in the gzip header: the same run gives the same bytes.
        let w = BufWriter::with_capacity(
            1 << 16,
            flate2::GzBuilder::new()
                .write(BufWriter::with_capacity(1 << 18, f), Compression::fast()),
        );
        Ok(Self { path, w })
    }
    fn write(&mut self, b: &[u8]) -> Result<(), EvidenceError> {
        self.w.write_all(b).map_err(|e| io_err(&self.path, e))
    }
    fn flush(&mut self) -> Result<(), EvidenceError> {
        self.w.flush().map_err(|e| io_err(&self.path, e))
    }
    fn finish(self) -> Result<(), EvidenceError> {
        let path = self.path.clone();
        let gz = self.w.into_inner().map_err(|e| io_err(&path, e.error()))?;
        let mut inner = gz.finish().map_err(|e| io_err(&path, e))?;
        inner.flush().map_err(|e| io_err(&path, e))?;
        Ok(())
    }
}

/// One candump `-L` line: `(seconds.micro) can0 ID#DATA T|R`, standard identifiers
/// with 3 hex digits, extended with 8, remote frames `ID#R`, error frames
/// [`ERROR_FRAME_ID`] with 8 zero bytes. `T`: harness to avionics, `R`: avionics to
/// harness.
pub fn candump_line(t_s: f64, frame: Option<&CanFrame>, dir: Dir) -> String {
    let t = t_s.max(0.0);
    let (sec, us) = {
        let total_us = (t * 1e6).round() as u64;
        (total_us / 1_000_000, total_us % 1_000_000)
    };
    let body = match frame {
        None => format!("{ERROR_FRAME_ID:08X}#0000000000000000"),
        Some(f) => {
            let id = if f.extended {
                format!("{:08X}", f.id)
            } else {
                format!("{:03X}", f.id)
            };
            if f.rtr {
                format!("{id}#R")
            } else {
                format!("{id}#{}", f.hex())
            }
        }
    };
    let d = if dir == Dir::Tx { 'T' } else { 'R' };
    format!("({sec:010}.{us:06}) {CAN_INTERFACE} {body} {d}\n")
}

/// Runs the stream writer until every sender of `rx` is gone, or `done` is raised and
/// the queue is empty.
pub fn run(
    rx: Receiver<Vec<TapRecord>>,
    tap: &capsule_runner::tap::Tap,
    dir: &Path,
    db: Icd,
    done: &AtomicBool,
    flush_every_s: f64,
) -> Result<StreamSummary, EvidenceError> {
    let mut imu = Gz::create(dir, IMU_LOG)?;
    let mut gnss = Gz::create(dir, GNSS_LOG)?;
    for g in [&mut imu, &mut gnss] {
        g.write(SERIAL_MAGIC)?;
    }
    let nmea_path = dir.join(gnss_stream_file(&db.binding.gnss));
    let nmea = BufWriter::new(File::create(&nmea_path).map_err(|e| io_err(&nmea_path, e))?);
    let mut w = Files {
        can: Gz::create(dir, CAN_LOG)?,
        imu,
        gnss,
        nmea,
        nmea_path,
        tel: Telemetry::create(&dir.join(TELEMETRY), &db)?,
        serial: [(0u64, 0u64, 0u64, 0u64); 2],
    };
    let mut sum = StreamSummary::default();
    let mut next_flush_s = flush_every_s;
    let ident = Some(db.binding.fc.ident_id());
    loop {
        let mut batch = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) if done.load(Ordering::Acquire) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for rec in batch.drain(..) {
            one(rec, &mut w, &mut sum, &db, ident)?;
        }
        tap.recycle(batch);
        if sum.last_t_s >= next_flush_s {
            next_flush_s = (sum.last_t_s / flush_every_s).floor() * flush_every_s + flush_every_s;
            w.flush()?;
        }
    }
    w.finish(sum)
}

/// The stream's open files and decoders.
struct Files {
    can: Gz,
    imu: Gz,
    gnss: Gz,
    nmea_path: PathBuf,
    nmea: BufWriter<File>,
    tel: Telemetry,
    serial: [(u64, u64, u64, u64); 2],
}

impl Files {
    fn flush(&mut self) -> Result<(), EvidenceError> {
        self.can.flush()?;
        self.imu.flush()?;
        self.gnss.flush()?;
        self.nmea.flush().map_err(|e| io_err(&self.nmea_path, e))?;
        self.tel.flush()
    }

    fn finish(self, mut sum: StreamSummary) -> Result<StreamSummary, EvidenceError> {
        let Files {
            can,
            imu,
            gnss,
            nmea_path,
            mut nmea,
            tel,
            serial,
        } = self;
        can.finish()?;
        imu.finish()?;
        gnss.finish()?;
        nmea.flush().map_err(|e| io_err(&nmea_path, e))?;
        tel.finish()?;
        sum.counts.serial = ["imu", "gnss"]
            .iter()
            .zip(serial)
            .map(|(n, c)| (n.to_string(), c.0, c.1, c.2, c.3))
            .collect();
        Ok(sum)
    }
}

/// Writes one record.
fn one(
    rec: TapRecord,
    f: &mut Files,
    sum: &mut StreamSummary,
    db: &Icd,
    ident: Option<u32>,
) -> Result<(), EvidenceError> {
    let Files {
        can,
        imu,
        gnss,
        nmea_path,
        nmea,
        tel,
        serial,
    } = f;
    {
        sum.counts.records += 1;
        let t_s = match &rec {
            TapRecord::Wire { t_s, .. }
            | TapRecord::Event { t_s, .. }
            | TapRecord::Counters { t_s, .. } => *t_s,
            TapRecord::Sample(s) => s.t_s,
        };
        match rec {
            TapRecord::Wire {
                t_s,
                link: WireLink::Can,
                dir: d,
                packet,
            } => {
                let frame = match &packet {
                    Packet::Frame(f) => Some(f),
                    Packet::ErrorFrame => {
                        sum.counts.can_error_frames += 1;
                        None
                    }
                    Packet::Bytes(_) => return Ok(()),
                };
                can.write(candump_line(t_s, frame, d).as_bytes())?;
                match d {
                    Dir::Tx => sum.counts.can_tx += 1,
                    Dir::Rx => sum.counts.can_rx += 1,
                }
                if let Some(f) = frame {
                    let fc = &db.binding.fc;
                    if d == Dir::Rx && Some(f.id) == ident && f.dlc >= fc.sw_major.message().dlc {
                        sum.avionics = Some(AvionicsIdent {
                            software: (
                                fc.sw_major.read_wire(f) as u8,
                                fc.sw_minor.read_wire(f) as u8,
                                fc.sw_patch.read_wire(f) as u8,
                            ),
                            build_hash: fc.build_hash.read_wire(f) as u32,
                        });
                    }
                    tel.can_frame(t_s, f, d == Dir::Rx)?;
                }
            }
            TapRecord::Wire {
                t_s,
                link,
                dir: d,
                packet: Packet::Bytes(b),
            } => {
                let (g, k) = if link == WireLink::Imu {
                    (imu, 0)
                } else {
                    (gnss, 1)
                };
                let mut head = Vec::with_capacity(13);
                head.extend_from_slice(&((t_s * 1e9).round() as i64).to_le_bytes());
                head.push(u8::from(d == Dir::Rx));
                head.extend_from_slice(&(b.len() as u32).to_le_bytes());
                g.write(&head)?;
                g.write(&b)?;
                let c = &mut serial[k];
                if d == Dir::Tx {
                    c.0 += 1;
                    c.1 += b.len() as u64;
                    if link == WireLink::Gnss {
                        nmea.write_all(&b).map_err(|e| io_err(nmea_path, e))?;
                    }
                } else {
                    c.2 += 1;
                    c.3 += b.len() as u64;
                }
                tel.serial(t_s, link, d, &b)?;
            }
            TapRecord::Wire { .. } | TapRecord::Counters { .. } => {}
            TapRecord::Sample(s) => {
                sum.counts.samples += 1;
                tel.sample(&s)?;
            }
            TapRecord::Event { t_s, name } => {
                sum.counts.events += 1;
                tel.event(t_s, &name)?;
            }
        }
        sum.last_t_s = sum.last_t_s.max(t_s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candump_lines_have_the_canutils_form() {
        let f = CanFrame::new(0x101, &[0xDE, 0xAD, 0x01]);
        assert_eq!(
            candump_line(12.3456789, Some(&f), Dir::Rx),
            "(0000000012.345679) can0 101#DEAD01 R\n"
        );
        let mut x = CanFrame::new(0x1234_5678, &[]);
        x.rtr = true;
        assert_eq!(
            candump_line(0.0, Some(&x), Dir::Tx),
            "(0000000000.000000) can0 12345678#R T\n"
        );
        assert_eq!(
            candump_line(1.0, None, Dir::Rx),
            "(0000000001.000000) can0 20000080#0000000000000000 R\n"
        );
    }
}
