//! The ICD document's serial sections, generated from a binding's lines: the GNSS
//! receiver's protocol (NMEA sentence set or UBX NAV-PVT) with examples the harness
//! computes, and the IMU datagram's byte table, checksum and a worked example.

use crate::crc::ChecksumKind;
use crate::gnss::{GnssLine, GnssProtocol};
use crate::imu::{ByteOrder, Field, ImuDatagram, ImuLayout};
use crate::nmea::{GnssEpoch, NmeaKind};
use crate::ubx::NavPvt;
use std::fmt::Write;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_spaced(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The example epochs of the document: a fix (the golden vectors' position) and none.
fn example_epoch(fix: bool) -> GnssEpoch {
    GnssEpoch {
        utc_time_s: if fix {
            12.0 * 3600.0 + 34.0 * 60.0 + 56.78
        } else {
            60.0
        },
        date: (21, 11, 2026),
        fix,
        latitude_deg: 33.0 + 56.27531 / 60.0,
        longitude_deg: -(140.0 + 46.81810 / 60.0),
        altitude_msl_m: 12.3,
        geoid_separation_m: 0.0,
        speed_m_s: 7.5,
        course_deg: 45.0,
        satellites: 9,
        dop: (1.6, 0.9, 1.3),
        prns: vec![2, 5, 7, 9, 13, 15, 20, 24, 30],
        velocity_down_m_s: 0.25,
        horizontal_accuracy_m: 2.5,
        vertical_accuracy_m: 4.0,
        speed_accuracy_m_s: 0.1,
    }
}

/// Section 2: the GNSS line.
pub fn gnss_markdown(line: &GnssLine) -> String {
    let mut s = String::new();
    match &line.protocol {
        GnssProtocol::Nmea { talker, sentences } => {
            let list = sentences
                .iter()
                .map(|k| format!("`{}`", k.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(s, "## 2. GNSS receiver: NMEA 0183 over serial\n");
            let _ = writeln!(
                s,
                "- {} baud, 8N1, ASCII. Talker `{talker}`. One epoch at the receiver's rate (the vehicle file's\n  `sensors.gnss.rate_hz`, 10 Hz in `capsule-srcv.toml`): {list} in that order, each\n  terminated by CR LF, at most 82 characters.",
                line.baud
            );
            s.push_str(
                "- Checksum: `*hh` = XOR of every byte between `$` and `*`, two upper-case hex digits.\n\
                 - Latitude `ddmm.mmmmm` + `N`/`S`, longitude `dddmm.mmmmm` + `E`/`W`, time `hhmmss.ss`\n  \
                 UTC, speed in knots (RMC, VTG) and km/h (VTG), altitude in metres (section 5: above the\n  \
                 ellipsoid, geoid separation 0).\n\
                 - **No fix** (before first fix, plasma blackout, above the receiver's limits): the\n  \
                 receiver keeps sending every sentence at its rate with empty position, speed and\n  \
                 course fields; GGA fix quality `0`, satellites `00`, HDOP `99.9`; RMC status `V`,\n  \
                 mode `N`; VTG mode `N`; GSA fix type `1`.\n\n",
            );
            let _ = writeln!(
                s,
                "Examples (an epoch with a fix, then one without, as the harness sends them):\n\n```"
            );
            for fix in [true, false] {
                for l in example_epoch(fix).burst_of(talker, sentences).lines() {
                    let _ = writeln!(s, "{l}");
                }
            }
            let _ = writeln!(s, "```\n\n| sentence | fields |\n|---|---|");
            for k in sentences {
                let fields = match k {
                    NmeaKind::Gga => {
                        "time, lat, N/S, lon, E/W, quality (0 none, 1 GPS), satellites, HDOP, altitude, `M`, geoid separation, `M`, (empty), (empty)"
                    }
                    NmeaKind::Rmc => {
                        "time, status A/V, lat, N/S, lon, E/W, speed kn, course deg true, date ddmmyy, (empty), (empty), mode A/N"
                    }
                    NmeaKind::Vtg => {
                        "course deg true, `T`, (empty), `M`, speed kn, `N`, speed km/h, `K`, mode A/N"
                    }
                    NmeaKind::Gsa => "`A`, fix type 1/2/3, 12 PRN fields, PDOP, HDOP, VDOP",
                };
                let _ = writeln!(s, "| {} | {fields} |", k.name());
            }
        }
        GnssProtocol::UbxNavPvt => {
            let _ = writeln!(s, "## 2. GNSS receiver: u-blox UBX NAV-PVT over serial\n");
            let _ = writeln!(
                s,
                "- {} baud, 8N1, binary. One `NAV-PVT` frame (100 bytes) per epoch at the receiver's rate\n  (the vehicle file's `sensors.gnss.rate_hz`).",
                line.baud
            );
            s.push_str(
                "- Frame: `B5 62`, class `01`, id `07`, payload length 92 (u16, little-endian), the\n  \
                 payload, then `CK_A` `CK_B`: the 8-bit Fletcher checksum over class, id, length and\n  \
                 payload (u-blox protocol specification). All fields little-endian.\n\
                 - **No fix**: `fixType` 0, `gnssFixOK` (flags bit 0) clear, `numSV` 0, position and\n  \
                 velocity 0, accuracy estimates at their maximum.\n\
                 - `iTOW` is GPS time of week (UTC + 18 s); the UTC fields carry the same instant.\n\n\
                 | offset | type | field | the harness sends |\n|---|---|---|---|\n\
                 | 0 | U4 | iTOW | GPS time of week, ms |\n\
                 | 4 | U2, 5 x U1 | year, month, day, hour, min, sec | UTC |\n\
                 | 11 | X1 | valid | 0x07 (date, time, fully resolved) |\n\
                 | 12 | U4 | tAcc | 50 ns |\n\
                 | 16 | I4 | nano | fraction of the second, ns |\n\
                 | 20 | U1 | fixType | 3 with a fix, 0 without |\n\
                 | 21 | X1 | flags | bit 0 gnssFixOK |\n\
                 | 23 | U1 | numSV | satellites used |\n\
                 | 24, 28 | I4 | lon, lat | 1e-7 deg |\n\
                 | 32, 36 | I4 | height, hMSL | mm (equal: geoid separation 0) |\n\
                 | 40, 44 | U4 | hAcc, vAcc | mm, the receiver model's 1-sigma |\n\
                 | 48, 52, 56 | I4 | velN, velE, velD | mm/s |\n\
                 | 60 | I4 | gSpeed | mm/s |\n\
                 | 64 | I4 | headMot | 1e-5 deg |\n\
                 | 68 | U4 | sAcc | mm/s |\n\
                 | 72 | U4 | headAcc | 180 deg |\n\
                 | 76 | U2 | pDOP | 0.01 |\n\
                 | 78-91 | | flags3, reserved, headVeh, magDec, magAcc | 0 |\n\n",
            );
            let f = NavPvt::from_epoch(&example_epoch(true)).frame();
            let _ = writeln!(
                s,
                "Example (an epoch with a fix, as the harness sends it; pyubx2 reads it in the tests):\n\n```\n{}\n{}\n```",
                hex_spaced(&f[..50]),
                hex_spaced(&f[50..])
            );
        }
    }
    s
}

fn type_text(f: &Field, default: ByteOrder) -> String {
    let mut t = f.ty.name().to_string();
    if f.ty.size() > 1 && f.order != default {
        let _ = write!(t, " {}-endian", f.order.name());
    }
    t
}

fn lsb_text(f: &Field) -> String {
    if f.ty.is_float() && f.lsb == 1.0 {
        format!("in {}", f.unit)
    } else {
        format!("{} {} per LSB", crate::doc::fmt_g12(f.lsb), f.unit)
    }
}

/// Section 3: the IMU datagram.
pub fn imu_markdown(l: &ImuLayout) -> String {
    let mut s = String::new();
    let order = l.counter.order;
    let bits = l.len * 10;
    let _ = writeln!(s, "## 3. IMU: binary datagram over serial\n");
    let _ = writeln!(
        s,
        "- {} baud, 8N1, binary. {} bytes per datagram = {bits} bits on the wire; at the vehicle\n  file's rate (`sensors.imu.rate_hz`, 1 kHz in `capsule-srcv.toml`) {} kbit/s, {:.0} % of\n  the line.\n- Multi-byte fields {}-endian unless the table says otherwise.\n",
        l.baud,
        l.len,
        crate::doc::fmt_g12(bits as f64),
        bits as f64 * 1000.0 / f64::from(l.baud) * 100.0,
        order.name()
    );
    let _ = writeln!(s, "| offset | size | field | encoding |\n|---|---|---|---|");
    let sync = hex_spaced(&l.header[..l.sync_len]);
    let _ = writeln!(
        s,
        "| 0 | {} | header | `{}` (sync: `{sync}`) |",
        l.header.len(),
        hex_spaced(&l.header)
    );
    let mut rows: Vec<(usize, String)> = Vec::new();
    let sb = &l.status_bits;
    let flags: Vec<String> = [
        (sb.gyro_saturated, "gyro saturated"),
        (sb.accel_saturated, "accel saturated"),
        (sb.self_test_fail, "built-in test failed"),
        (sb.temperature_range, "temperature out of range"),
        (sb.data_invalid, "no valid data"),
    ]
    .iter()
    .filter(|(m, _)| *m != 0)
    .map(|(m, n)| format!("0x{m:02X} {n}"))
    .collect();
    rows.push((
        l.counter.offset,
        format!(
            "| {} | {} | counter | {}, +1 per datagram, wraps |",
            l.counter.offset,
            l.counter.ty.size(),
            type_text(&l.counter, order)
        ),
    ));
    rows.push((
        l.status.offset,
        format!(
            "| {} | {} | status | {} bit flags: {} |",
            l.status.offset,
            l.status.ty.size(),
            type_text(&l.status, order),
            flags.join(", ")
        ),
    ));
    rows.push((
        l.time.offset,
        format!(
            "| {} | {} | time tag | {}, sensor time, {}{} |",
            l.time.offset,
            l.time.ty.size(),
            type_text(&l.time, order),
            lsb_text(&l.time),
            if l.time.ty.is_float() { "" } else { ", wraps" }
        ),
    ));
    for (name, fields) in [("angular rate", &l.gyro), ("specific force", &l.accel)] {
        for (k, f) in fields.iter().enumerate() {
            rows.push((
                f.offset,
                format!(
                    "| {} | {} | {name} {} | {}, {} (sensor axes) |",
                    f.offset,
                    f.ty.size(),
                    ["x", "y", "z"][k],
                    type_text(f, order),
                    lsb_text(f)
                ),
            ));
        }
    }
    let t = &l.temperature;
    rows.push((
        t.offset,
        format!(
            "| {} | {} | temperature | {}, {} |",
            t.offset,
            t.ty.size(),
            type_text(t, order),
            lsb_text(t)
        ),
    ));
    if let Some(c) = &l.checksum {
        let ord = if c.kind.has_byte_order() {
            format!(", {}-endian", c.order.name())
        } else {
            String::new()
        };
        rows.push((
            c.at,
            format!(
                "| {} | {} | checksum | {} over bytes {} to {}{ord} |",
                c.at,
                c.kind.size(),
                c.kind.catalogue_name(),
                c.from,
                c.to - 1
            ),
        ));
    }
    rows.sort_by_key(|(o, _)| *o);
    for (_, r) in &rows {
        let _ = writeln!(s, "{r}");
    }
    s.push('\n');
    if let Some(c) = &l.checksum {
        let check = c.kind.compute(b"123456789");
        let w = 2 * c.kind.size();
        match c.kind.crc_parameters() {
            Some((width, poly, init, refin, refout, xorout)) => {
                let aka = if c.kind == ChecksumKind::Crc16Ibm3740 {
                    " (a.k.a. CRC-16/CCITT-FALSE; *not* KERMIT or XMODEM)"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "**Checksum**: {}{aka}: width {width}, polynomial 0x{poly:0w$X}, initial value 0x{init:0w$X}, input reflected {}, output reflected {}, final XOR 0x{xorout:0w$X}. Check value: the CRC of ASCII `123456789` = **0x{check:0w$X}**.\n",
                    c.kind.catalogue_name(),
                    if refin { "yes" } else { "no" },
                    if refout { "yes" } else { "no" },
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "**Checksum**: {}. Check value over ASCII `123456789`: **0x{check:0w$X}**.\n",
                    c.kind.catalogue_name()
                );
            }
        }
    } else {
        s.push_str("**Checksum**: none.\n\n");
    }
    let _ = writeln!(
        s,
        "**No valid data** (start-up, after a reset, failed built-in test): the IMU keeps\nsending at its rate with status 0x{:02X} set and zero measurements.\n",
        l.status_bits.data_invalid
    );
    // Worked example: golden vector 1 of the shipped layout, in this layout.
    let d = ImuDatagram {
        counter: 1,
        status: 0,
        time_us: 1000,
        rate_rad_s: [0.01, -0.02, 0.3],
        specific_force_m_s2: [-20.0, 0.5, 3.0],
        temperature_c: 30.0,
    };
    let mut b = vec![0u8; l.len];
    l.encode_into(&d, &mut b);
    // Group the bytes by field, in frame order.
    let mut cuts: Vec<usize> = vec![0, l.header.len(), l.len];
    for (_, f) in l.fields() {
        cuts.push(f.offset);
        cuts.push(f.offset + f.ty.size());
    }
    if let Some(c) = &l.checksum {
        cuts.push(c.at);
        cuts.push(c.at + c.kind.size());
    }
    cuts.sort_unstable();
    cuts.dedup();
    let groups: Vec<String> = cuts.windows(2).map(|w| hex(&b[w[0]..w[1]])).collect();
    let _ = writeln!(
        s,
        "Worked example: counter 1, status 0, time 1000 us, rates (0.01, -0.02, 0.3) rad/s,\nspecific force (-20, 0.5, 3) m/s^2, 30.00 degC (golden vector 1 of the shipped layout):\n\n```\n{}\n```\n",
        groups.join(" ")
    );
    if let Some(c) = &l.checksum {
        let v = c.kind.compute(&b[c.from..c.to]);
        let w = 2 * c.kind.size();
        let _ = writeln!(
            s,
            "The checksum over bytes {}..{} is 0x{v:0w$X}, sent as `{}`.\n",
            c.from,
            c.to - 1,
            hex_spaced(&b[c.at..c.at + c.kind.size()])
        );
    }
    let _ = writeln!(
        s,
        "The receiver resynchronises by searching for `{sync}`, checking the rest of the\nheader and the checksum, and dropping one byte on any mismatch."
    );
    s
}
