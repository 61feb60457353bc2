//! CAN messages and signals from a DBC file, encoded and decoded to the bit.

use std::collections::BTreeMap;

/// A CAN frame (classic CAN, up to 8 data bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CanFrame {
    /// Identifier (11-bit standard unless `extended`).
    pub id: u32,
    /// 29-bit identifier.
    pub extended: bool,
    /// Remote transmission request.
    pub rtr: bool,
    /// Data length code (0..=8).
    pub dlc: u8,
    /// Data bytes; bytes beyond `dlc` are zero.
    pub data: [u8; 8],
}

impl CanFrame {
    /// A standard data frame; `data` longer than 8 bytes is truncated.
    pub fn new(id: u32, data: &[u8]) -> Self {
        let n = data.len().min(8);
        let mut d = [0u8; 8];
        d[..n].copy_from_slice(&data[..n]);
        Self {
            id,
            extended: id > 0x7FF,
            rtr: false,
            dlc: n as u8,
            data: d,
        }
    }

    /// The used data bytes.
    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.dlc.min(8))]
    }

    /// The used data bytes as upper-case hex, two digits per byte (candump's form).
    pub fn hex(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(16);
        for b in self.payload() {
            let _ = write!(s, "{b:02X}");
        }
        s
    }
}

/// Bytes from hex digits (two per byte, either case); `None` for an odd count or a
/// character that is not a hex digit.
pub fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Byte order of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ByteOrder {
    /// Intel: start bit is the least significant bit.
    LittleEndian,
    /// Motorola: start bit is the most significant bit (DBC sawtooth numbering).
    BigEndian,
}

/// One signal of a message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SignalDef {
    /// Name.
    pub name: String,
    /// DBC start bit.
    pub start_bit: u32,
    /// Length in bits (1..=64).
    pub size: u32,
    /// Byte order.
    pub byte_order: ByteOrder,
    /// Two's complement signed raw value.
    pub signed: bool,
    /// physical = raw * factor + offset.
    pub factor: f64,
    /// See `factor`.
    pub offset: f64,
    /// Minimum physical value.
    pub min: f64,
    /// Maximum physical value.
    pub max: f64,
    /// Unit.
    pub unit: String,
    /// Raw value to send when an encoder is not given this signal, from the DBC
    /// attribute `GenSigStartValue`; `None`: the encoder must be given it.
    pub start_raw: Option<u64>,
    /// Named raw values (`VAL_`), in the DBC's order.
    pub values: Vec<(i64, String)>,
    /// The DBC's comment (`CM_ SG_`), if any.
    pub comment: Option<String>,
    /// Bit positions (byte * 8 + bit-in-byte) from the most to the least significant
    /// raw bit.
    bits_msb_first: Vec<u32>,
}

/// One message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageDef {
    /// Identifier.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Data length, bytes.
    pub dlc: u8,
    /// Transmitting node.
    pub transmitter: String,
    /// Cycle time from `GenMsgCycleTime`, ms (None for event messages).
    pub cycle_time_ms: Option<u32>,
    /// Simulation-only (attribute `SimulationOnly` = 1): real hardware ignores it.
    pub simulation_only: bool,
    /// The DBC's comment (`CM_ BO_`), if any.
    pub comment: Option<String>,
    /// Signals in file order.
    pub signals: Vec<SignalDef>,
}

/// Errors loading a DBC. All fatal for the load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbcError {
    /// Syntax error.
    #[error("{file}:{line}:{column}: DBC syntax error: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// A signal does not fit in its message.
    #[error("{file}:{line}: message `{message}` signal `{signal}`: bits {detail}")]
    SignalOutOfFrame {
        /// File.
        file: String,
        /// Line of the signal.
        line: usize,
        /// Message.
        message: String,
        /// Signal.
        signal: String,
        /// Which bits.
        detail: String,
    },
    /// Two signals share bits.
    #[error("{file}:{line}: message `{message}`: signals `{a}` and `{b}` overlap")]
    Overlap {
        /// File.
        file: String,
        /// Line of the second signal.
        line: usize,
        /// Message.
        message: String,
        /// First signal.
        a: String,
        /// Second signal.
        b: String,
    },
    /// Two messages share an identifier.
    #[error("{file}: messages `{a}` and `{b}` share identifier 0x{id:03X}")]
    DuplicateId {
        /// File.
        file: String,
        /// Identifier.
        id: u32,
        /// First.
        a: String,
        /// Second.
        b: String,
    },
    /// A signal's scaling is unusable (factor 0, min > max, non-finite).
    #[error("{file}:{line}: message `{message}` signal `{signal}`: {detail}")]
    BadScaling {
        /// File.
        file: String,
        /// Line.
        line: usize,
        /// Message.
        message: String,
        /// Signal.
        signal: String,
        /// What.
        detail: String,
    },
}

/// Errors encoding or decoding a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// No message with this name or identifier.
    #[error("unknown message {0}")]
    UnknownMessage(String),
    /// No signal with this name in the message.
    #[error("message `{message}` has no signal `{signal}`")]
    UnknownSignal {
        /// Message.
        message: String,
        /// Signal.
        signal: String,
    },
    /// An encoder was not given a signal that has no start value in the DBC
    /// (`GenSigStartValue`): silently sending 0 would put a value on the wire that
    /// nobody decided.
    #[error(
        "message `{message}`: no value given for signal `{signal}` (and the DBC gives it no GenSigStartValue)"
    )]
    MissingSignal {
        /// Message.
        message: String,
        /// Signal.
        signal: String,
    },
    /// Physical value outside the signal's range.
    #[error("signal `{signal}` = {value} is outside [{min}, {max}] {unit}")]
    OutOfRange {
        /// Signal.
        signal: String,
        /// Given value.
        value: f64,
        /// Minimum.
        min: f64,
        /// Maximum.
        max: f64,
        /// Unit.
        unit: String,
    },
    /// Frame shorter than the message's DLC.
    #[error("message `{message}` needs {expected} bytes, frame has {got}")]
    ShortFrame {
        /// Message.
        message: String,
        /// DLC.
        expected: u8,
        /// Frame length.
        got: u8,
    },
}

/// A decoded frame: its message and (signal, physical value) pairs.
pub type Decoded<'a> = (&'a MessageDef, Vec<(&'a str, f64)>);

/// A CAN database loaded from a DBC.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CanDb {
    /// Source file name.
    pub source: String,
    /// Nominal bit rate from the `Baudrate` attribute, bit/s (500000 default).
    pub bitrate_bps: u32,
    messages: Vec<MessageDef>,
    by_id: BTreeMap<u32, usize>,
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

impl CanDb {
    /// Parses and checks a DBC text. `file` names it in errors.
    pub fn from_dbc(file: &str, text: &str) -> Result<Self, DbcError> {
        let dbc = can_dbc::Dbc::try_from(text).map_err(|e| {
            let msg = e.to_string();
            // pest renders " --> line:col" on the first line.
            let (line, column) = msg
                .split("-->")
                .nth(1)
                .and_then(|rest| {
                    let loc = rest.split_whitespace().next()?;
                    let mut it = loc.split(':');
                    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
                })
                .unwrap_or((0, 0));
            DbcError::Syntax {
                file: file.into(),
                line,
                column,
                message: msg.lines().last().unwrap_or("").trim().to_string(),
            }
        })?;
        let mut bitrate_bps = 500_000;
        for a in &dbc.attribute_values_database {
            if a.name == "Baudrate"
                && let Some(v) = attr_u64(&a.value)
            {
                bitrate_bps = v as u32;
            }
        }
        let mut messages = Vec::new();
        let mut by_id = BTreeMap::new();
        for m in &dbc.messages {
            let id = match m.id {
                can_dbc::MessageId::Standard(i) => u32::from(i),
                can_dbc::MessageId::Extended(i) => i,
            };
            let msg_line = line_of(text, &format!("BO_ {} {}", m.id.raw(), m.name));
            let mut cycle = None;
            let mut sim = false;
            for a in dbc
                .attribute_values_message
                .iter()
                .filter(|a| a.message_id == m.id)
            {
                match a.name.as_str() {
                    "GenMsgCycleTime" => {
                        cycle = attr_u64(&a.value).filter(|v| *v > 0).map(|v| v as u32)
                    }
                    "SimulationOnly" => sim = attr_u64(&a.value) == Some(1),
                    _ => {}
                }
            }
            let dlc = m.size.min(8) as u8;
            let mut signals: Vec<SignalDef> = Vec::new();
            let mut used = [None::<usize>; 64];
            for s in &m.signals {
                let sline = line_of(text, &format!("SG_ {} ", s.name)).max(msg_line);
                let bad = |detail: String| DbcError::BadScaling {
                    file: file.into(),
                    line: sline,
                    message: m.name.clone(),
                    signal: s.name.clone(),
                    detail,
                };
                if !(s.factor.is_finite() && s.factor != 0.0 && s.offset.is_finite()) {
                    return Err(bad(format!(
                        "factor {} / offset {} unusable",
                        s.factor, s.offset
                    )));
                }
                if s.min
                    .partial_cmp(&s.max)
                    .is_none_or(|o| o == std::cmp::Ordering::Greater)
                {
                    return Err(bad(format!("min {} > max {}", s.min, s.max)));
                }
                if s.size == 0 || s.size > 64 {
                    return Err(bad(format!("size {} bits (1 to 64)", s.size)));
                }
                let order = match s.byte_order {
                    can_dbc::ByteOrder::LittleEndian => ByteOrder::LittleEndian,
                    can_dbc::ByteOrder::BigEndian => ByteOrder::BigEndian,
                };
                let bits = bit_positions(s.start_bit as u32, s.size as u32, order);
                let limit = u32::from(dlc) * 8;
                if let Some(b) = bits.iter().find(|b| **b >= limit) {
                    return Err(DbcError::SignalOutOfFrame {
                        file: file.into(),
                        line: sline,
                        message: m.name.clone(),
                        signal: s.name.clone(),
                        detail: format!("reach bit {b}, beyond the {dlc}-byte frame"),
                    });
                }
                if s.multiplexer_indicator == can_dbc::MultiplexIndicator::Plain {
                    for b in &bits {
                        if let Some(prev) = used[*b as usize] {
                            return Err(DbcError::Overlap {
                                file: file.into(),
                                line: sline,
                                message: m.name.clone(),
                                a: signals[prev].name.clone(),
                                b: s.name.clone(),
                            });
                        }
                        used[*b as usize] = Some(signals.len());
                    }
                }
                signals.push(SignalDef {
                    name: s.name.clone(),
                    start_bit: s.start_bit as u32,
                    size: s.size as u32,
                    byte_order: order,
                    signed: s.value_type == can_dbc::ValueType::Signed,
                    factor: s.factor,
                    offset: s.offset,
                    min: s.min,
                    max: s.max,
                    unit: s.unit.clone(),
                    start_raw: dbc
                        .attribute_values_signal
                        .iter()
                        .find(|a| {
                            a.message_id == m.id
                                && a.signal_name == s.name
                                && a.name == "GenSigStartValue"
                        })
                        .and_then(|a| attr_u64(&a.value)),
                    values: dbc
                        .value_descriptions
                        .iter()
                        .find_map(|v| match v {
                            can_dbc::ValueDescription::Signal {
                                message_id,
                                name,
                                value_descriptions,
                            } if *message_id == m.id && *name == s.name => Some(
                                value_descriptions
                                    .iter()
                                    .map(|d| (d.id, d.description.clone()))
                                    .collect(),
                            ),
                            _ => None,
                        })
                        .unwrap_or_default(),
                    comment: dbc.comments.iter().find_map(|c| match c {
                        can_dbc::Comment::Signal {
                            message_id,
                            name,
                            comment,
                        } if *message_id == m.id && *name == s.name => Some(comment.clone()),
                        _ => None,
                    }),
                    bits_msb_first: bits,
                });
            }
            if let Some(&other) = by_id.get(&id) {
                let o: &MessageDef = &messages[other];
                return Err(DbcError::DuplicateId {
                    file: file.into(),
                    id,
                    a: o.name.clone(),
                    b: m.name.clone(),
                });
            }
            by_id.insert(id, messages.len());
            messages.push(MessageDef {
                id,
                name: m.name.clone(),
                dlc,
                transmitter: match &m.transmitter {
                    can_dbc::Transmitter::NodeName(n) => n.clone(),
                    can_dbc::Transmitter::VectorXXX => String::new(),
                },
                cycle_time_ms: cycle,
                simulation_only: sim,
                comment: dbc.comments.iter().find_map(|c| match c {
                    can_dbc::Comment::Message { id, comment } if *id == m.id => {
                        Some(comment.clone())
                    }
                    _ => None,
                }),
                signals,
            });
        }
        Ok(Self {
            source: file.into(),
            bitrate_bps,
            messages,
            by_id,
        })
    }

    /// All messages, in identifier order.
    pub fn messages(&self) -> impl Iterator<Item = &MessageDef> {
        self.by_id.values().map(|&i| &self.messages[i])
    }

    /// Message by identifier.
    pub fn by_id(&self, id: u32) -> Option<&MessageDef> {
        self.by_id.get(&id).map(|&i| &self.messages[i])
    }

    /// Message by name.
    pub fn by_name(&self, name: &str) -> Option<&MessageDef> {
        self.messages.iter().find(|m| m.name == name)
    }

    /// Encodes a message from physical values; signals not given are sent as the raw
    /// value closest to 0 physical within range (typically 0).
    pub fn encode(&self, message: &str, values: &[(&str, f64)]) -> Result<CanFrame, CodecError> {
        let m = self
            .by_name(message)
            .ok_or_else(|| CodecError::UnknownMessage(message.into()))?;
        m.encode(values)
    }

    /// Encodes a message like [`CanDb::encode`], but a signal not given is sent as 0
    /// (clamped into its range) instead of being an error. For tests and tools that
    /// build frames by hand; the harness and the flight computer use the strict form.
    pub fn encode_zero_filled(
        &self,
        message: &str,
        values: &[(&str, f64)],
    ) -> Result<CanFrame, CodecError> {
        let m = self
            .by_name(message)
            .ok_or_else(|| CodecError::UnknownMessage(message.into()))?;
        let all: Vec<(&str, f64)> = m
            .signals
            .iter()
            .map(|s| {
                let v = values
                    .iter()
                    .find(|(n, _)| *n == s.name)
                    .map_or(0f64.clamp(s.min, s.max), |(_, v)| *v);
                (s.name.as_str(), v)
            })
            .collect();
        for (n, _) in values {
            if m.signal(n).is_none() {
                return Err(CodecError::UnknownSignal {
                    message: m.name.clone(),
                    signal: (*n).into(),
                });
            }
        }
        m.encode(&all)
    }

    /// Decodes a frame into (signal, physical value) pairs.
    pub fn decode(&self, frame: &CanFrame) -> Result<Decoded<'_>, CodecError> {
        let m = self
            .by_id(frame.id)
            .ok_or_else(|| CodecError::UnknownMessage(format!("0x{:03X}", frame.id)))?;
        Ok((m, m.decode(frame)?))
    }
}

fn attr_u64(v: &can_dbc::AttributeValue) -> Option<u64> {
    match v {
        can_dbc::AttributeValue::Uint(u) => Some(*u),
        can_dbc::AttributeValue::Int(i) => u64::try_from(*i).ok(),
        can_dbc::AttributeValue::Double(d) if *d >= 0.0 => Some(*d as u64),
        _ => None,
    }
}

/// Bit positions (byte*8 + bit) of a signal, most significant raw bit first.
fn bit_positions(start: u32, size: u32, order: ByteOrder) -> Vec<u32> {
    match order {
        ByteOrder::LittleEndian => (0..size).rev().map(|k| start + k).collect(),
        ByteOrder::BigEndian => {
            let mut out = Vec::with_capacity(size as usize);
            let mut pos = start;
            for _ in 0..size {
                out.push(pos);
                pos = if pos.is_multiple_of(8) {
                    pos + 15
                } else {
                    pos - 1
                };
            }
            out
        }
    }
}

impl SignalDef {
    /// A 1-bit unsigned signal at bit 0, for placeholders in error paths.
    pub fn placeholder() -> Self {
        Self {
            name: String::new(),
            start_bit: 0,
            size: 1,
            byte_order: ByteOrder::LittleEndian,
            signed: false,
            factor: 1.0,
            offset: 0.0,
            min: 0.0,
            max: 1.0,
            unit: String::new(),
            start_raw: Some(0),
            values: Vec::new(),
            comment: None,
            bits_msb_first: vec![0],
        }
    }

    /// Raw value -> physical value.
    pub fn physical(&self, raw: u64) -> f64 {
        let v = if self.signed && self.size < 64 && (raw >> (self.size - 1)) & 1 == 1 {
            (raw | (!0u64 << self.size)) as i64 as f64
        } else if self.signed {
            raw as i64 as f64
        } else {
            raw as f64
        };
        v * self.factor + self.offset
    }

    /// Physical value -> raw bits (rounded to the nearest step), with range checks.
    pub fn raw(&self, value: f64) -> Result<u64, CodecError> {
        let out_of_range = || CodecError::OutOfRange {
            signal: self.name.clone(),
            value,
            min: self.min,
            max: self.max,
            unit: self.unit.clone(),
        };
        let half_step = 0.5 * self.factor.abs();
        if !value.is_finite() || value < self.min - half_step || value > self.max + half_step {
            return Err(out_of_range());
        }
        let r = ((value - self.offset) / self.factor).round();
        let (lo, hi) = if self.signed {
            (
                -(2f64.powi(self.size as i32 - 1)),
                2f64.powi(self.size as i32 - 1) - 1.0,
            )
        } else {
            (0.0, 2f64.powi(self.size as i32) - 1.0)
        };
        if r < lo || r > hi {
            return Err(out_of_range());
        }
        let mask = if self.size == 64 {
            u64::MAX
        } else {
            (1u64 << self.size) - 1
        };
        Ok((r as i64 as u64) & mask)
    }

    /// Reads the raw bits from data.
    pub fn extract(&self, data: &[u8; 8]) -> u64 {
        let mut raw = 0u64;
        for &b in &self.bits_msb_first {
            raw = (raw << 1) | u64::from((data[(b / 8) as usize] >> (b % 8)) & 1);
        }
        raw
    }

    /// Writes the raw bits into data.
    pub fn insert(&self, data: &mut [u8; 8], raw: u64) {
        let n = self.bits_msb_first.len();
        for (k, &b) in self.bits_msb_first.iter().enumerate() {
            let bit = (raw >> (n - 1 - k)) & 1;
            let byte = &mut data[(b / 8) as usize];
            *byte = (*byte & !(1 << (b % 8))) | ((bit as u8) << (b % 8));
        }
    }
}

impl MessageDef {
    /// Encodes physical values (unlisted signals: physical value clamped 0).
    pub fn encode(&self, values: &[(&str, f64)]) -> Result<CanFrame, CodecError> {
        for (name, _) in values {
            if !self.signals.iter().any(|s| s.name == *name) {
                return Err(CodecError::UnknownSignal {
                    message: self.name.clone(),
                    signal: (*name).into(),
                });
            }
        }
        let mut data = [0u8; 8];
        for s in &self.signals {
            let raw = match values.iter().find(|(n, _)| *n == s.name) {
                Some((_, v)) => s.raw(*v)?,
                None => s.start_raw.ok_or_else(|| CodecError::MissingSignal {
                    message: self.name.clone(),
                    signal: s.name.clone(),
                })?,
            };
            s.insert(&mut data, raw);
        }
        Ok(CanFrame {
            id: self.id,
            extended: self.id > 0x7FF,
            rtr: false,
            dlc: self.dlc,
            data,
        })
    }

    /// Decodes every signal of a frame.
    pub fn decode(&self, frame: &CanFrame) -> Result<Vec<(&str, f64)>, CodecError> {
        if frame.dlc < self.dlc {
            return Err(CodecError::ShortFrame {
                message: self.name.clone(),
                expected: self.dlc,
                got: frame.dlc,
            });
        }
        Ok(self
            .signals
            .iter()
            .map(|s| (s.name.as_str(), s.physical(s.extract(&frame.data))))
            .collect())
    }

    /// One signal by name.
    pub fn signal(&self, name: &str) -> Option<&SignalDef> {
        self.signals.iter().find(|s| s.name == name)
    }
}
