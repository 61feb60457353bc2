//! `[serial]` of a binding: the IMU datagram's layout and the GNSS line, checked.

use super::file::{FieldFile, GnssFile, GnssProtocolName, ImuFile, SerialFile};
use super::units::Dimension;
use crate::gnss::{GnssLine, GnssProtocol};
use crate::imu::{ByteOrder, ChecksumField, Field, ImuLayout, NumType, StatusBits};
use crate::nmea::{NmeaKind, TALKERS};
use capsule_files::config::Checks;
use std::sync::Arc;

/// Line speeds a binding may give, bit/s.
const BAUD: (u32, u32) = (1_200, 20_000_000);
/// Longest datagram, bytes.
const MAX_LEN: usize = 1024;

/// What a physical field of the IMU datagram must carry: the twin's span and the
/// coarsest LSB that keeps the reference navigation's accuracy, in twin units.
struct Needs {
    dimension: Dimension,
    span: (f64, f64),
    max_lsb: f64,
    what: &'static str,
}

const GYRO: Needs = Needs {
    dimension: Dimension::AngularRate,
    span: (-5.0, 5.0),
    max_lsb: 1e-4,
    what: "angular rate",
};
const ACCEL: Needs = Needs {
    dimension: Dimension::Acceleration,
    span: (-100.0, 100.0),
    max_lsb: 1e-2,
    what: "specific force",
};
const TEMPERATURE: Needs = Needs {
    dimension: Dimension::Temperature,
    span: (233.15, 358.15),
    max_lsb: 1.0,
    what: "temperature",
};

fn baud(c: &mut Checks, field: &str, b: u32) {
    c.require(
        (BAUD.0..=BAUD.1).contains(&b),
        field,
        format!(
            "expected a baud rate in [{}, {}] bit/s, found {b}",
            BAUD.0, BAUD.1
        ),
    );
}

/// Resolves `[serial]` (absent tables: the shipped lines).
pub(super) fn resolve(f: Option<&SerialFile>, c: &mut Checks) -> (Arc<ImuLayout>, GnssLine) {
    let imu = match f.and_then(|s| s.imu.as_ref()) {
        Some(i) => Arc::new(imu(i, c)),
        None => ImuLayout::shipped(),
    };
    let gnss = match f.and_then(|s| s.gnss.as_ref()) {
        Some(g) => gnss(g, c),
        None => GnssLine::shipped(),
    };
    (imu, gnss)
}

fn gnss(g: &GnssFile, c: &mut Checks) -> GnssLine {
    baud(c, "serial.gnss.baud", g.baud);
    let protocol = match g.protocol {
        GnssProtocolName::Nmea => {
            c.require(
                g.messages.is_none(),
                "serial.gnss.messages",
                "`messages` is for protocol \"ubx\"; NMEA takes `sentences`",
            );
            let talker = g.talker.clone().unwrap_or_else(|| "GP".into());
            c.require(
                TALKERS.contains(&talker.as_str()),
                "serial.gnss.talker",
                format!("expected one of {}, found `{talker}`", TALKERS.join(", ")),
            );
            let sentences = g
                .sentences
                .clone()
                .unwrap_or_else(|| NmeaKind::SHIPPED.to_vec());
            c.require(
                sentences.contains(&NmeaKind::Gga),
                "serial.gnss.sentences",
                "must include GGA (the position fix the flight computer navigates with)",
            );
            for (k, s) in sentences.iter().enumerate() {
                c.require(
                    !sentences[..k].contains(s),
                    "serial.gnss.sentences",
                    format!("{} is listed twice", s.name()),
                );
            }
            GnssProtocol::Nmea { talker, sentences }
        }
        GnssProtocolName::Ubx => {
            c.require(
                g.talker.is_none() && g.sentences.is_none(),
                "serial.gnss.protocol",
                "`talker` and `sentences` are for protocol \"nmea\"",
            );
            if let Some(m) = &g.messages {
                c.require(
                    m.len() == 1 && m[0] == "NAV-PVT",
                    "serial.gnss.messages",
                    format!("this build sends UBX [\"NAV-PVT\"], found {m:?}"),
                );
            }
            GnssProtocol::UbxNavPvt
        }
    };
    GnssLine {
        baud: g.baud,
        protocol,
    }
}

fn imu(f: &ImuFile, c: &mut Checks) -> ImuLayout {
    baud(c, "serial.imu.baud", f.baud);
    let order = f.byte_order.unwrap_or(ByteOrder::Little);
    c.require(
        (1..=MAX_LEN).contains(&f.length),
        "serial.imu.length",
        format!(
            "expected a length in [1, {MAX_LEN}] bytes, found {}",
            f.length
        ),
    );
    let len = f.length.clamp(1, MAX_LEN);
    c.require(
        !f.header.is_empty() && f.header.len() < len,
        "serial.imu.header",
        format!(
            "expected 1 to {} constant bytes (a decoder finds frames by them), found {}",
            len - 1,
            f.header.len()
        ),
    );
    let header: Vec<u8> = f.header.iter().copied().take(len - 1).collect();
    let header = if header.is_empty() { vec![0] } else { header };
    let sync_len = f.sync_bytes.unwrap_or(header.len().min(2));
    c.require(
        (1..=header.len()).contains(&sync_len),
        "serial.imu.sync_bytes",
        format!(
            "expected 1 to {} (the header's length), found {sync_len}",
            header.len()
        ),
    );
    let sync_len = sync_len.clamp(1, header.len());
    let mut p = Placer {
        taken: vec![(0..header.len(), "serial.imu.header".into())],
        len,
        order,
    };
    let counter = {
        let x = &f.counter;
        c.require(
            x.lsb.is_none() && x.unit.is_none(),
            "serial.imu.counter",
            "a counter has no `lsb` or `unit`",
        );
        p.integer(c, "serial.imu.counter", x.offset, x.ty, x.byte_order)
    };
    let s = &f.status;
    let status = p.integer(c, "serial.imu.status", s.offset, s.ty, s.byte_order);
    let bits = 8 * s.ty.size() as u32;
    let mut masks: Vec<(&str, u64)> = Vec::new();
    for (name, v) in [
        ("data_invalid", Some(s.data_invalid)),
        ("gyro_saturated", s.gyro_saturated),
        ("accel_saturated", s.accel_saturated),
        ("self_test_fail", s.self_test_fail),
        ("temperature_range", s.temperature_range),
    ] {
        let Some(v) = v else { continue };
        let field = format!("serial.imu.status.{name}");
        if v == 0 || (bits < 64 && v >> bits != 0) {
            c.fail(
                &field,
                format!("expected a non-zero mask within the field's {bits} bits, found {v:#x}"),
            );
        } else if let Some((other, _)) = masks.iter().find(|(_, m)| m & v != 0) {
            c.fail(&field, format!("mask {v:#x} shares bits with `{other}`"));
        }
        masks.push((name, v));
    }
    let status_bits = StatusBits {
        gyro_saturated: s.gyro_saturated.unwrap_or(0),
        accel_saturated: s.accel_saturated.unwrap_or(0),
        self_test_fail: s.self_test_fail.unwrap_or(0),
        temperature_range: s.temperature_range.unwrap_or(0),
        data_invalid: s.data_invalid,
    };
    let time = {
        let t = p.physical(c, "serial.imu.time", &f.time, Dimension::Time);
        c.require(
            t.ty.is_unsigned() || t.ty.is_float(),
            "serial.imu.time.type",
            "a time tag is unsigned (it wraps) or a float",
        );
        t
    };
    let gyro =
        [0, 1, 2].map(|k| p.measured(c, &format!("serial.imu.gyro[{k}]"), &f.gyro[k], &GYRO));
    let accel =
        [0, 1, 2].map(|k| p.measured(c, &format!("serial.imu.accel[{k}]"), &f.accel[k], &ACCEL));
    let temperature = p.measured(c, "serial.imu.temperature", &f.temperature, &TEMPERATURE);
    let checksum = f.checksum.as_ref().map(|k| {
        let field = "serial.imu.checksum";
        let size = k.kind.size();
        c.require(
            k.from < k.to && k.to <= len,
            format!("{field}.to"),
            format!(
                "covers bytes {}..{}: expected from < to <= {len}",
                k.from, k.to
            ),
        );
        c.require(
            k.at + size <= k.from || k.at >= k.to,
            format!("{field}.at"),
            format!(
                "the {}-byte checksum at {} lies inside the bytes it covers ({}..{})",
                size, k.at, k.from, k.to
            ),
        );
        p.place(c, field, k.at..k.at + size);
        ChecksumField {
            kind: k.kind,
            from: k.from.min(len),
            to: k.to.clamp(k.from.min(len), len),
            at: k.at.min(len.saturating_sub(size)),
            order: k.byte_order.unwrap_or(order),
        }
    });
    ImuLayout {
        baud: f.baud,
        header,
        sync_len,
        len,
        counter,
        status,
        status_bits,
        time,
        gyro,
        accel,
        temperature,
        checksum,
    }
}

/// Places fields in the frame: inside it, not overlapping what is already placed.
struct Placer {
    taken: Vec<(std::ops::Range<usize>, String)>,
    len: usize,
    order: ByteOrder,
}

impl Placer {
    fn place(&mut self, c: &mut Checks, field: &str, r: std::ops::Range<usize>) -> bool {
        let len = self.len;
        if r.end > len {
            c.fail(
                field,
                format!(
                    "bytes {}..{} end past the frame's {len} bytes",
                    r.start, r.end
                ),
            );
            return false;
        }
        if let Some((_, who)) = self
            .taken
            .iter()
            .find(|(t, _)| t.start < r.end && r.start < t.end)
        {
            c.fail(
                field,
                format!("bytes {}..{} overlap `{who}`", r.start, r.end),
            );
            return false;
        }
        self.taken.push((r, field.to_string()));
        true
    }

    fn fallback(&self) -> Field {
        Field::integer(0, NumType::U8, self.order)
    }

    fn integer(
        &mut self,
        c: &mut Checks,
        field: &str,
        offset: usize,
        ty: NumType,
        order: Option<ByteOrder>,
    ) -> Field {
        c.require(
            ty.is_unsigned(),
            format!("{field}.type"),
            format!(
                "expected an unsigned type (u8, u16, u32), found {}",
                ty.name()
            ),
        );
        let fld = Field::integer(offset, ty, order.unwrap_or(self.order));
        if !self.place(c, field, fld.bytes()) {
            return self.fallback();
        }
        fld
    }

    fn physical(&mut self, c: &mut Checks, field: &str, x: &FieldFile, dim: Dimension) -> Field {
        let lsb = x.lsb.unwrap_or(1.0);
        c.require(
            lsb.is_finite() && lsb > 0.0,
            format!("{field}.lsb"),
            format!("expected a positive LSB, found {lsb}"),
        );
        let lsb = if lsb.is_finite() && lsb > 0.0 {
            lsb
        } else {
            1.0
        };
        let unit = x.unit.as_deref().unwrap_or(dim.twin_unit());
        let order = x.byte_order.unwrap_or(self.order);
        let Some(fld) = Field::physical(x.offset, x.ty, order, lsb, dim, unit) else {
            c.fail(
                format!("{field}.unit"),
                format!(
                    "`{unit}` is not a unit of {}; expected one of {}",
                    dim.twin_unit(),
                    dim.unit_list()
                ),
            );
            return self.fallback();
        };
        if !self.place(c, field, fld.bytes()) {
            return self.fallback();
        }
        fld
    }

    fn measured(&mut self, c: &mut Checks, field: &str, x: &FieldFile, n: &Needs) -> Field {
        let fld = self.physical(c, field, x, n.dimension);
        if fld.unit.is_empty() {
            return fld;
        }
        let u = n.dimension.twin_unit();
        let (lo, hi) = fld.twin_range();
        c.require(
            lo <= n.span.0 && hi >= n.span.1,
            field,
            format!(
                "carries {} in [{lo:.4}, {hi:.4}] {u}; the twin needs [{}, {}] {u}",
                n.what, n.span.0, n.span.1
            ),
        );
        let lsb_twin = fld.lsb / fld.factor.abs();
        c.require(
            fld.ty.is_float() || lsb_twin <= n.max_lsb,
            format!("{field}.lsb"),
            format!(
                "one LSB is {lsb_twin:e} {u}; the flight computer's navigation needs {} {u} or finer",
                n.max_lsb
            ),
        );
        fld
    }
}
