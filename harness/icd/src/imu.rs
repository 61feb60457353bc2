//! The IMU datagram: 40 bytes, little-endian, CRC-16/IBM-3740.
//!
//! | offset | size | field | encoding |
//! |---|---|---|---|
//! | 0 | 2 | sync | 0xA5 0x5A |
//! | 2 | 1 | message id | 0x01 |
//! | 3 | 1 | payload length | 34 (bytes 4 to 37) |
//! | 4 | 2 | counter | u16, +1 per datagram, wraps |
//! | 6 | 2 | status | u16 bit flags, see [`status`] |
//! | 8 | 4 | time tag | u32, sensor time in microseconds, wraps |
//! | 12 | 12 | angular rate x, y, z | i32 each, 1e-6 rad/s per LSB |
//! | 24 | 12 | specific force x, y, z | i32 each, 1e-5 m/s^2 per LSB |
//! | 36 | 2 | temperature | i16, 0.01 degC per LSB |
//! | 38 | 2 | CRC | CRC-16/IBM-3740 of bytes 2 to 37, little-endian |

use crate::DecodeStats;
use crate::crc::crc16_ibm_3740;

/// Datagram length, bytes.
pub const DATAGRAM_LEN: usize = 40;
/// Sync bytes.
pub const SYNC: [u8; 2] = [0xA5, 0x5A];
/// Message identifier of the inertial data datagram.
pub const MSG_ID: u8 = 0x01;
/// Payload length field value.
pub const PAYLOAD_LEN: u8 = 34;
/// Rate LSB, rad/s.
pub const RATE_LSB_RAD_S: f64 = 1e-6;
/// Specific force LSB, m/s^2.
pub const ACCEL_LSB_M_S2: f64 = 1e-5;
/// Temperature LSB, degC.
pub const TEMP_LSB_C: f64 = 0.01;

/// Status bits.
pub mod status {
    /// A gyro channel is saturated.
    pub const GYRO_SATURATED: u16 = 1 << 0;
    /// An accelerometer channel is saturated.
    pub const ACCEL_SATURATED: u16 = 1 << 1;
    /// Built-in test failed.
    pub const SELF_TEST_FAIL: u16 = 1 << 2;
    /// Temperature outside the calibrated range.
    pub const TEMPERATURE_RANGE: u16 = 1 << 3;
    /// No valid data (start-up, reset): the measurement fields are zero.
    pub const DATA_INVALID: u16 = 1 << 4;
}

/// One decoded datagram, in physical units.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImuDatagram {
    /// Counter.
    pub counter: u16,
    /// Status bits.
    pub status: u16,
    /// Sensor time, microseconds.
    pub time_us: u32,
    /// Angular rate, rad/s (sensor frame).
    pub rate_rad_s: [f64; 3],
    /// Specific force, m/s^2 (sensor frame).
    pub specific_force_m_s2: [f64; 3],
    /// Temperature, degC.
    pub temperature_c: f64,
}

fn q_i32(v: f64, lsb: f64) -> i32 {
    (v / lsb)
        .round()
        .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

impl ImuDatagram {
    /// Encodes to the 40-byte wire form (values saturate at the field limits).
    pub fn encode(&self) -> [u8; DATAGRAM_LEN] {
        let mut b = [0u8; DATAGRAM_LEN];
        b[0..2].copy_from_slice(&SYNC);
        b[2] = MSG_ID;
        b[3] = PAYLOAD_LEN;
        b[4..6].copy_from_slice(&self.counter.to_le_bytes());
        b[6..8].copy_from_slice(&self.status.to_le_bytes());
        b[8..12].copy_from_slice(&self.time_us.to_le_bytes());
        for k in 0..3 {
            b[12 + 4 * k..16 + 4 * k]
                .copy_from_slice(&q_i32(self.rate_rad_s[k], RATE_LSB_RAD_S).to_le_bytes());
            b[24 + 4 * k..28 + 4 * k]
                .copy_from_slice(&q_i32(self.specific_force_m_s2[k], ACCEL_LSB_M_S2).to_le_bytes());
        }
        let t = (self.temperature_c / TEMP_LSB_C)
            .round()
            .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        b[36..38].copy_from_slice(&t.to_le_bytes());
        let crc = crc16_ibm_3740(&b[2..38]);
        b[38..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes one complete datagram (sync, id, length and CRC checked).
    pub fn decode(b: &[u8]) -> Result<Self, ImuError> {
        if b.len() < DATAGRAM_LEN {
            return Err(ImuError::Short(b.len()));
        }
        if b[0..2] != SYNC || b[2] != MSG_ID || b[3] != PAYLOAD_LEN {
            return Err(ImuError::Framing);
        }
        let expected = crc16_ibm_3740(&b[2..38]);
        let got = u16::from_le_bytes([b[38], b[39]]);
        if expected != got {
            return Err(ImuError::Crc { expected, got });
        }
        let i32_at = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Ok(Self {
            counter: u16::from_le_bytes([b[4], b[5]]),
            status: u16::from_le_bytes([b[6], b[7]]),
            time_us: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            rate_rad_s: [0, 1, 2].map(|k| f64::from(i32_at(12 + 4 * k)) * RATE_LSB_RAD_S),
            specific_force_m_s2: [0, 1, 2].map(|k| f64::from(i32_at(24 + 4 * k)) * ACCEL_LSB_M_S2),
            temperature_c: f64::from(i16::from_le_bytes([b[36], b[37]])) * TEMP_LSB_C,
        })
    }
}

/// Datagram errors (each counted by the stream decoder, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImuError {
    /// Fewer than 40 bytes.
    #[error("datagram too short: {0} bytes")]
    Short(usize),
    /// Sync, id or length field wrong.
    #[error("bad sync, message id or length")]
    Framing,
    /// CRC mismatch.
    #[error("CRC mismatch: computed 0x{expected:04X}, received 0x{got:04X}")]
    Crc {
        /// Computed over the received bytes.
        expected: u16,
        /// Received.
        got: u16,
    },
}

/// Streaming decoder: feed arbitrary byte chunks, get datagrams; resynchronises after
/// garbage, counts every bad frame, and never holds more than `max_buffer` bytes.
#[derive(Debug, Clone)]
pub struct ImuStreamDecoder {
    buf: Vec<u8>,
    max_buffer: usize,
    /// Statistics.
    pub stats: DecodeStats,
}

impl Default for ImuStreamDecoder {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl ImuStreamDecoder {
    /// A decoder holding at most `max_buffer` (>= 40) bytes.
    pub fn new(max_buffer: usize) -> Self {
        Self {
            buf: Vec::with_capacity(max_buffer.max(DATAGRAM_LEN)),
            max_buffer: max_buffer.max(DATAGRAM_LEN),
            stats: DecodeStats::default(),
        }
    }

    /// Feeds bytes; decoded datagrams are appended to `out`. Input of any size is
    /// taken in pieces that fit the buffer, scanning after each.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<ImuDatagram>) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = self.max_buffer - self.buf.len();
            if room == 0 {
                // Unreachable in practice (a scan leaves less than one datagram), but
                // the bound holds regardless: drop the oldest byte.
                self.buf.remove(0);
                self.stats.overflow_bytes += 1;
                continue;
            }
            let take = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.scan(out);
        }
    }

    fn scan(&mut self, out: &mut Vec<ImuDatagram>) {
        let mut i = 0;
        while self.buf.len() - i >= 2 {
            if self.buf[i] != SYNC[0] || self.buf[i + 1] != SYNC[1] {
                i += 1;
                self.stats.bytes_discarded += 1;
                continue;
            }
            if self.buf.len() - i < 4 {
                break;
            }
            if self.buf[i + 2] != MSG_ID || self.buf[i + 3] != PAYLOAD_LEN {
                self.stats.framing_errors += 1;
                self.stats.bytes_discarded += 1;
                i += 1;
                continue;
            }
            if self.buf.len() - i < DATAGRAM_LEN {
                break;
            }
            match ImuDatagram::decode(&self.buf[i..i + DATAGRAM_LEN]) {
                Ok(d) => {
                    out.push(d);
                    self.stats.frames_ok += 1;
                    i += DATAGRAM_LEN;
                }
                Err(_) => {
                    self.stats.checksum_errors += 1;
                    self.stats.bytes_discarded += 1;
                    i += 1;
                }
            }
        }
        self.buf.drain(..i);
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
