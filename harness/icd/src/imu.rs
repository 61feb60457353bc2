//! The IMU datagram: a fixed-length binary frame whose layout is data
//! ([`ImuLayout`], the `[serial.imu]` table of a binding). The shipped layout
//! ([`ImuLayout::shipped`]): 40 bytes, little-endian, CRC-16/IBM-3740.
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
use crate::binding::units::Dimension;
use crate::crc::ChecksumKind;
use std::sync::{Arc, LazyLock};

/// Datagram length of the shipped layout, bytes.
pub const DATAGRAM_LEN: usize = 40;
/// Sync bytes of the shipped layout.
pub const SYNC: [u8; 2] = [0xA5, 0x5A];
/// Message identifier of the shipped layout's inertial data datagram.
pub const MSG_ID: u8 = 0x01;
/// Payload length field value of the shipped layout.
pub const PAYLOAD_LEN: u8 = 34;
/// Rate LSB of the shipped layout, rad/s.
pub const RATE_LSB_RAD_S: f64 = 1e-6;
/// Specific force LSB of the shipped layout, m/s^2.
pub const ACCEL_LSB_M_S2: f64 = 1e-5;
/// Temperature LSB of the shipped layout, degC.
pub const TEMP_LSB_C: f64 = 0.01;

/// Status flags as the twin and the flight computer see them ([`ImuDatagram::status`]);
/// a layout maps each to its own bits on the wire. In the shipped layout the wire bits
/// are these values.
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
    /// Counter (a layout's narrower counter wraps sooner).
    pub counter: u16,
    /// Status flags ([`status`]).
    pub status: u16,
    /// Sensor time, microseconds (wraps as the layout's time tag does).
    pub time_us: u32,
    /// Angular rate, rad/s (sensor frame).
    pub rate_rad_s: [f64; 3],
    /// Specific force, m/s^2 (sensor frame).
    pub specific_force_m_s2: [f64; 3],
    /// Temperature, degC.
    pub temperature_c: f64,
}

/// A field's number type on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum NumType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl NumType {
    /// Bytes on the wire.
    pub fn size(self) -> usize {
        match self {
            NumType::U8 | NumType::I8 => 1,
            NumType::U16 | NumType::I16 => 2,
            NumType::U32 | NumType::I32 | NumType::F32 => 4,
            NumType::F64 => 8,
        }
    }
    /// An unsigned integer type.
    pub fn is_unsigned(self) -> bool {
        matches!(self, NumType::U8 | NumType::U16 | NumType::U32)
    }
    /// A floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, NumType::F32 | NumType::F64)
    }
    /// The name as written in a binding.
    pub fn name(self) -> &'static str {
        match self {
            NumType::U8 => "u8",
            NumType::I8 => "i8",
            NumType::U16 => "u16",
            NumType::I16 => "i16",
            NumType::U32 => "u32",
            NumType::I32 => "i32",
            NumType::F32 => "f32",
            NumType::F64 => "f64",
        }
    }
    /// The raw values an integer type holds (floats: their finite range).
    pub fn range(self) -> (f64, f64) {
        match self {
            NumType::U8 => (0.0, 255.0),
            NumType::I8 => (-128.0, 127.0),
            NumType::U16 => (0.0, 65_535.0),
            NumType::I16 => (-32_768.0, 32_767.0),
            NumType::U32 => (0.0, 4_294_967_295.0),
            NumType::I32 => (-2_147_483_648.0, 2_147_483_647.0),
            NumType::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
            NumType::F64 => (f64::MIN, f64::MAX),
        }
    }
}

/// Byte order of a multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    /// The name as written in a binding.
    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little",
            ByteOrder::Big => "big",
        }
    }
}

fn put_uint(b: &mut [u8], order: ByteOrder, v: u64) {
    let n = b.len();
    for (k, x) in b.iter_mut().enumerate() {
        let shift = match order {
            ByteOrder::Little => 8 * k,
            ByteOrder::Big => 8 * (n - 1 - k),
        };
        *x = (v >> shift) as u8;
    }
}

fn get_uint(b: &[u8], order: ByteOrder) -> u64 {
    let n = b.len();
    b.iter().enumerate().fold(0u64, |acc, (k, &x)| {
        let shift = match order {
            ByteOrder::Little => 8 * k,
            ByteOrder::Big => 8 * (n - 1 - k),
        };
        acc | u64::from(x) << shift
    })
}

/// One field of a binary frame: where it is, how it is encoded and what one LSB is.
/// A physical field's value on the wire is `raw * lsb` in `unit`, the twin's value is
/// converted to `unit` first (`wire = twin * factor + offset`, [`Dimension`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Byte offset from the frame start.
    pub offset: usize,
    /// Number type.
    pub ty: NumType,
    /// Byte order.
    pub order: ByteOrder,
    /// Value of one LSB, in `unit`.
    pub lsb: f64,
    /// Unit as written (empty for counters and flags).
    pub unit: String,
    /// `wire = twin * factor + unit_offset`.
    pub factor: f64,
    /// See `factor`.
    pub unit_offset: f64,
}

impl Field {
    /// A plain integer field (counter, flags): LSB 1, no unit.
    pub fn integer(offset: usize, ty: NumType, order: ByteOrder) -> Self {
        Self {
            offset,
            ty,
            order,
            lsb: 1.0,
            unit: String::new(),
            factor: 1.0,
            unit_offset: 0.0,
        }
    }

    /// A physical field in `unit` of `dimension` (`None` if the unit is not one of it).
    pub fn physical(
        offset: usize,
        ty: NumType,
        order: ByteOrder,
        lsb: f64,
        dimension: Dimension,
        unit: &str,
    ) -> Option<Self> {
        let (factor, unit_offset) = dimension.conversion(unit)?;
        Some(Self {
            offset,
            ty,
            order,
            lsb,
            unit: unit.to_string(),
            factor,
            unit_offset,
        })
    }

    /// The byte range in the frame.
    pub fn bytes(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.ty.size()
    }

    /// The twin values the field can carry, low to high.
    pub fn twin_range(&self) -> (f64, f64) {
        let (lo, hi) = self.ty.range();
        let a = (lo * self.lsb - self.unit_offset) / self.factor;
        let b = (hi * self.lsb - self.unit_offset) / self.factor;
        (a.min(b), a.max(b))
    }

    /// Writes a twin value (integers round and saturate at the type's limits).
    pub fn put(&self, frame: &mut [u8], twin: f64) {
        let raw = (twin * self.factor + self.unit_offset) / self.lsb;
        let b = &mut frame[self.bytes()];
        match self.ty {
            NumType::F32 => put_uint(b, self.order, u64::from((raw as f32).to_bits())),
            NumType::F64 => put_uint(b, self.order, raw.to_bits()),
            t => {
                let (lo, hi) = t.range();
                let r = if raw.is_nan() {
                    0.0
                } else {
                    raw.round().clamp(lo, hi)
                };
                // Two's complement of the signed value, cut to the field's width.
                put_uint(b, self.order, r as i64 as u64);
            }
        }
    }

    /// Writes an integer, wrapping at the field's width (counters, time tags, flags).
    pub fn put_wrapping(&self, frame: &mut [u8], v: u64) {
        put_uint(&mut frame[self.bytes()], self.order, v);
    }

    /// Reads the raw integer (zero-extended).
    pub fn get_raw(&self, frame: &[u8]) -> u64 {
        get_uint(&frame[self.bytes()], self.order)
    }

    /// Reads the twin value.
    pub fn get(&self, frame: &[u8]) -> f64 {
        let u = self.get_raw(frame);
        let bits = 8 * self.ty.size() as u32;
        let raw = match self.ty {
            NumType::F32 => f64::from(f32::from_bits(u as u32)),
            NumType::F64 => f64::from_bits(u),
            NumType::I8 | NumType::I16 | NumType::I32 => {
                // Sign-extend from the field's width.
                ((u << (64 - bits)) as i64 >> (64 - bits)) as f64
            }
            _ => u as f64,
        };
        (raw * self.lsb - self.unit_offset) / self.factor
    }
}

/// The wire bits of each status flag ([`status`]); 0 where the layout has no such bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatusBits {
    pub gyro_saturated: u64,
    pub accel_saturated: u64,
    pub self_test_fail: u64,
    pub temperature_range: u64,
    pub data_invalid: u64,
}

impl StatusBits {
    fn pairs(&self) -> [(u16, u64); 5] {
        [
            (status::GYRO_SATURATED, self.gyro_saturated),
            (status::ACCEL_SATURATED, self.accel_saturated),
            (status::SELF_TEST_FAIL, self.self_test_fail),
            (status::TEMPERATURE_RANGE, self.temperature_range),
            (status::DATA_INVALID, self.data_invalid),
        ]
    }
    /// Logical flags to wire bits.
    pub fn to_wire(&self, flags: u16) -> u64 {
        self.pairs()
            .iter()
            .filter(|(f, _)| flags & f != 0)
            .fold(0, |a, (_, w)| a | w)
    }
    /// Wire bits to logical flags (unknown bits are dropped).
    pub fn from_wire(&self, wire: u64) -> u16 {
        self.pairs()
            .iter()
            .filter(|(_, w)| *w != 0 && wire & w == *w)
            .fold(0, |a, (f, _)| a | f)
    }
}

/// Where a frame's checksum is and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumField {
    /// Algorithm.
    pub kind: ChecksumKind,
    /// First covered byte.
    pub from: usize,
    /// One past the last covered byte.
    pub to: usize,
    /// Offset of the checksum itself.
    pub at: usize,
    /// Byte order of a multi-byte checksum.
    pub order: ByteOrder,
}

impl ChecksumField {
    fn bytes(&self) -> std::ops::Range<usize> {
        self.at..self.at + self.kind.size()
    }
    fn compute(&self, frame: &[u8]) -> u32 {
        self.kind.compute(&frame[self.from..self.to])
    }
    fn write(&self, frame: &mut [u8]) {
        let c = self.compute(frame);
        let order = if self.kind.has_byte_order() {
            self.order
        } else {
            ByteOrder::Big
        };
        put_uint(&mut frame[self.bytes()], order, u64::from(c));
    }
    fn read(&self, frame: &[u8]) -> u32 {
        let order = if self.kind.has_byte_order() {
            self.order
        } else {
            ByteOrder::Big
        };
        get_uint(&frame[self.bytes()], order) as u32
    }
}

/// The IMU line: baud rate and the datagram's layout. Built by a binding's
/// `[serial.imu]` (checked there: fields inside the frame and not overlapping, types and
/// units that fit), or [`ImuLayout::shipped`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImuLayout {
    /// Line speed, bit/s (8N1).
    pub baud: u32,
    /// Constant bytes the frame starts with.
    pub header: Vec<u8>,
    /// How many of the header bytes a decoder hunts for (the rest are checked).
    pub sync_len: usize,
    /// Frame length, bytes.
    pub len: usize,
    /// Rolling counter.
    pub counter: Field,
    /// Status flags field.
    pub status: Field,
    /// Wire bits of the status flags.
    pub status_bits: StatusBits,
    /// Sensor time tag (twin unit s).
    pub time: Field,
    /// Angular rate x, y, z (twin unit rad/s).
    pub gyro: [Field; 3],
    /// Specific force x, y, z (twin unit m/s^2).
    pub accel: [Field; 3],
    /// Temperature (twin unit K).
    pub temperature: Field,
    /// Checksum, if the frame has one.
    pub checksum: Option<ChecksumField>,
}

static SHIPPED: LazyLock<Arc<ImuLayout>> = LazyLock::new(|| Arc::new(ImuLayout::build_shipped()));

impl ImuLayout {
    /// The shipped layout (the table at the top of this module).
    pub fn shipped() -> Arc<ImuLayout> {
        SHIPPED.clone()
    }

    fn build_shipped() -> Self {
        let le = ByteOrder::Little;
        let phys = |o, t, lsb, d, u| {
            Field::physical(o, t, le, lsb, d, u).unwrap_or_else(|| Field::integer(o, t, le))
        };
        Self {
            baud: 921_600,
            header: vec![SYNC[0], SYNC[1], MSG_ID, PAYLOAD_LEN],
            sync_len: 2,
            len: DATAGRAM_LEN,
            counter: Field::integer(4, NumType::U16, le),
            status: Field::integer(6, NumType::U16, le),
            status_bits: StatusBits {
                gyro_saturated: u64::from(status::GYRO_SATURATED),
                accel_saturated: u64::from(status::ACCEL_SATURATED),
                self_test_fail: u64::from(status::SELF_TEST_FAIL),
                temperature_range: u64::from(status::TEMPERATURE_RANGE),
                data_invalid: u64::from(status::DATA_INVALID),
            },
            time: phys(8, NumType::U32, 1.0, Dimension::Time, "us"),
            gyro: [12, 16, 20].map(|o| {
                phys(
                    o,
                    NumType::I32,
                    RATE_LSB_RAD_S,
                    Dimension::AngularRate,
                    "rad/s",
                )
            }),
            accel: [24, 28, 32].map(|o| {
                phys(
                    o,
                    NumType::I32,
                    ACCEL_LSB_M_S2,
                    Dimension::Acceleration,
                    "m/s^2",
                )
            }),
            temperature: phys(36, NumType::I16, TEMP_LSB_C, Dimension::Temperature, "degC"),
            checksum: Some(ChecksumField {
                kind: ChecksumKind::Crc16Ibm3740,
                from: 2,
                to: 38,
                at: 38,
                order: le,
            }),
        }
    }

    /// The fields by name, in frame order of their definition (for documents and
    /// overlap checks).
    pub fn fields(&self) -> Vec<(&'static str, &Field)> {
        let mut v = vec![
            ("counter", &self.counter),
            ("status", &self.status),
            ("time", &self.time),
        ];
        for (k, n) in ["gyro_x", "gyro_y", "gyro_z"].iter().enumerate() {
            v.push((n, &self.gyro[k]));
        }
        for (k, n) in ["accel_x", "accel_y", "accel_z"].iter().enumerate() {
            v.push((n, &self.accel[k]));
        }
        v.push(("temperature", &self.temperature));
        v
    }

    /// Bits per second the line needs at `rate_hz` datagrams (8N1: 10 bits a byte).
    pub fn bits_per_s(&self, rate_hz: f64) -> f64 {
        self.len as f64 * 10.0 * rate_hz
    }

    /// Encodes into `frame` (at least [`ImuLayout::len`] bytes; values saturate at the
    /// field limits, the counter and time tag wrap).
    pub fn encode_into(&self, d: &ImuDatagram, frame: &mut [u8]) {
        let frame = &mut frame[..self.len];
        frame.fill(0);
        frame[..self.header.len()].copy_from_slice(&self.header);
        self.counter.put_wrapping(frame, u64::from(d.counter));
        self.status
            .put_wrapping(frame, self.status_bits.to_wire(d.status));
        let t = &self.time;
        let time_s = f64::from(d.time_us) * 1e-6;
        if t.ty.is_float() {
            t.put(frame, time_s);
        } else {
            t.put_wrapping(frame, (time_s * t.factor / t.lsb).round() as u64);
        }
        for k in 0..3 {
            self.gyro[k].put(frame, d.rate_rad_s[k]);
            self.accel[k].put(frame, d.specific_force_m_s2[k]);
        }
        self.temperature.put(frame, d.temperature_c + 273.15);
        if let Some(c) = &self.checksum {
            c.write(frame);
        }
    }

    /// Appends one encoded datagram to `out`.
    pub fn encode_to(&self, d: &ImuDatagram, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.len, 0);
        self.encode_into(d, &mut out[start..]);
    }

    /// Decodes one complete datagram (header, length and checksum checked).
    pub fn decode(&self, b: &[u8]) -> Result<ImuDatagram, ImuError> {
        if b.len() < self.len {
            return Err(ImuError::Short(b.len()));
        }
        let b = &b[..self.len];
        if b[..self.header.len()] != self.header[..] {
            return Err(ImuError::Framing);
        }
        if let Some(c) = &self.checksum {
            let expected = c.compute(b);
            let got = c.read(b);
            if expected != got {
                return Err(ImuError::Crc { expected, got });
            }
        }
        let t = &self.time;
        let time_s = if t.ty.is_float() {
            t.get(b)
        } else {
            t.get_raw(b) as f64 * t.lsb / t.factor
        };
        Ok(ImuDatagram {
            counter: self.counter.get_raw(b) as u16,
            status: self.status_bits.from_wire(self.status.get_raw(b)),
            time_us: (time_s * 1e6).round() as u64 as u32,
            rate_rad_s: [0, 1, 2].map(|k| self.gyro[k].get(b)),
            specific_force_m_s2: [0, 1, 2].map(|k| self.accel[k].get(b)),
            temperature_c: self.temperature.get(b) - 273.15,
        })
    }
}

impl ImuDatagram {
    /// Encodes to the shipped 40-byte wire form (values saturate at the field limits).
    pub fn encode(&self) -> [u8; DATAGRAM_LEN] {
        let mut b = [0u8; DATAGRAM_LEN];
        SHIPPED.encode_into(self, &mut b);
        b
    }

    /// Decodes one complete datagram of the shipped layout.
    pub fn decode(b: &[u8]) -> Result<Self, ImuError> {
        SHIPPED.decode(b)
    }
}

/// Datagram errors (each counted by the stream decoder, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImuError {
    /// Fewer bytes than the layout's length.
    #[error("datagram too short: {0} bytes")]
    Short(usize),
    /// A header byte (sync, id, length) wrong.
    #[error("bad sync, message id or length")]
    Framing,
    /// Checksum mismatch.
    #[error("checksum mismatch: computed 0x{expected:04X}, received 0x{got:04X}")]
    Crc {
        /// Computed over the received bytes.
        expected: u32,
        /// Received.
        got: u32,
    },
}

/// Streaming decoder: feed arbitrary byte chunks, get datagrams; resynchronises after
/// garbage, counts every bad frame, and never holds more than `max_buffer` bytes.
#[derive(Debug, Clone)]
pub struct ImuStreamDecoder {
    layout: Arc<ImuLayout>,
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
    /// A decoder of the shipped layout holding at most `max_buffer` (>= 40) bytes.
    pub fn new(max_buffer: usize) -> Self {
        Self::with_layout(ImuLayout::shipped(), max_buffer)
    }

    /// A decoder of `layout` holding at most `max_buffer` (at least one datagram) bytes.
    pub fn with_layout(layout: Arc<ImuLayout>, max_buffer: usize) -> Self {
        let max_buffer = max_buffer.max(layout.len);
        Self {
            layout,
            buf: Vec::with_capacity(max_buffer),
            max_buffer,
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
        let l = &*self.layout;
        let sync = &l.header[..l.sync_len];
        let mut i = 0;
        while self.buf.len() - i >= sync.len() {
            if self.buf[i..i + sync.len()] != *sync {
                i += 1;
                self.stats.bytes_discarded += 1;
                continue;
            }
            if self.buf.len() - i < l.header.len() {
                break;
            }
            if self.buf[i..i + l.header.len()] != l.header[..] {
                self.stats.framing_errors += 1;
                self.stats.bytes_discarded += 1;
                i += 1;
                continue;
            }
            if self.buf.len() - i < l.len {
                break;
            }
            match l.decode(&self.buf[i..i + l.len]) {
                Ok(d) => {
                    out.push(d);
                    self.stats.frames_ok += 1;
                    i += l.len;
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
