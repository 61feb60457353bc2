//! u-blox UBX binary protocol: the `NAV-PVT` message (class 0x01, id 0x07, 92-byte
//! payload, as the u-blox 8 / M8 receiver description lays it out) and a
//! resynchronising frame decoder.
//!
//! A UBX frame is `0xB5 0x62`, class, id, a little-endian u16 payload length, the
//! payload, and the 8-bit Fletcher checksum (`CK_A`, `CK_B`) over class, id, length and
//! payload ([`crate::crc::ubx_checksum`]).

use crate::DecodeStats;
use crate::crc::ubx_checksum;
use crate::nmea::GnssEpoch;

/// Frame start.
pub const SYNC: [u8; 2] = [0xB5, 0x62];
/// NAV class.
pub const CLASS_NAV: u8 = 0x01;
/// NAV-PVT id.
pub const ID_NAV_PVT: u8 = 0x07;
/// NAV-PVT payload length.
pub const NAV_PVT_LEN: usize = 92;
/// Largest payload the decoder accepts (longer length fields are framing errors).
pub const MAX_PAYLOAD: usize = 1024;
/// GPS - UTC, s (IERS Bulletin C: unchanged since 2017-01-01).
pub const GPS_UTC_LEAP_S: f64 = 18.0;

/// NAV-PVT fields (units as the message carries them, scaled to SI and degrees).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NavPvt {
    /// GPS time of week of the navigation epoch, ms.
    pub itow_ms: u32,
    /// UTC year, month, day, hour, minute, second.
    pub utc: (u16, u8, u8, u8, u8, u8),
    /// Fraction of the second, ns (-1e9..1e9).
    pub nano_ns: i32,
    /// `valid` bits: 0 validDate, 1 validTime, 2 fullyResolved.
    pub valid: u8,
    /// 0 no fix, 2 2-D, 3 3-D.
    pub fix_type: u8,
    /// `flags` bit 0: gnssFixOK.
    pub flags: u8,
    /// Satellites used.
    pub num_sv: u8,
    /// Longitude, deg (1e-7 deg on the wire).
    pub longitude_deg: f64,
    /// Latitude, deg.
    pub latitude_deg: f64,
    /// Height above the ellipsoid, m (mm on the wire).
    pub height_m: f64,
    /// Height above mean sea level, m.
    pub height_msl_m: f64,
    /// Horizontal accuracy estimate, m.
    pub h_acc_m: f64,
    /// Vertical accuracy estimate, m.
    pub v_acc_m: f64,
    /// Velocity north, east, down, m/s (mm/s on the wire).
    pub vel_ned_m_s: [f64; 3],
    /// Ground speed, m/s.
    pub ground_speed_m_s: f64,
    /// Heading of motion, deg (1e-5 deg on the wire).
    pub head_motion_deg: f64,
    /// Speed accuracy estimate, m/s.
    pub s_acc_m_s: f64,
    /// Position DOP (0.01 on the wire).
    pub pdop: f64,
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant, "chrono-compatible
/// low-level date algorithms", days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn i32_of(x: f64) -> i32 {
    x.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

fn u32_of(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

impl NavPvt {
    /// What a receiver reports at `e` (no fix: fix type 0, gnssFixOK clear, position
    /// and velocity zero, accuracies at their maximum).
    pub fn from_epoch(e: &GnssEpoch) -> Self {
        let (day, month, year) = e.date;
        let t = e.utc_time_s.rem_euclid(86_400.0);
        let whole = t.floor();
        let secs = whole as u32;
        // GPS week starts Sunday 00:00 GPS time; 1980-01-06 was a Sunday.
        let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day))
            - days_from_civil(1980, 1, 6);
        let gps_s = days as f64 * 86_400.0 + t + GPS_UTC_LEAP_S;
        let itow_ms = (gps_s.rem_euclid(604_800.0) * 1e3).round() as u64 % 604_800_000;
        let fix = e.fix;
        let z = |x: f64| if fix { x } else { 0.0 };
        NavPvt {
            itow_ms: itow_ms as u32,
            utc: (
                year,
                month,
                day,
                (secs / 3600) as u8,
                ((secs / 60) % 60) as u8,
                (secs % 60) as u8,
            ),
            nano_ns: i32_of((t - whole) * 1e9),
            valid: 0b0000_0111,
            fix_type: if fix { 3 } else { 0 },
            flags: u8::from(fix),
            num_sv: if fix { e.satellites } else { 0 },
            longitude_deg: z(e.longitude_deg),
            latitude_deg: z(e.latitude_deg),
            height_m: z(e.altitude_msl_m + e.geoid_separation_m),
            height_msl_m: z(e.altitude_msl_m),
            h_acc_m: if fix {
                e.horizontal_accuracy_m
            } else {
                4_294_967.295
            },
            v_acc_m: if fix {
                e.vertical_accuracy_m
            } else {
                4_294_967.295
            },
            vel_ned_m_s: if fix {
                let c = e.course_deg.to_radians();
                [
                    e.speed_m_s * c.cos(),
                    e.speed_m_s * c.sin(),
                    e.velocity_down_m_s,
                ]
            } else {
                [0.0; 3]
            },
            ground_speed_m_s: z(e.speed_m_s),
            head_motion_deg: z(e.course_deg.rem_euclid(360.0)),
            s_acc_m_s: if fix {
                e.speed_accuracy_m_s
            } else {
                4_294_967.295
            },
            pdop: if fix { e.dop.0 } else { 99.99 },
        }
    }

    /// The 92-byte payload.
    pub fn payload(&self) -> [u8; NAV_PVT_LEN] {
        let mut p = [0u8; NAV_PVT_LEN];
        let (y, mo, d, h, mi, s) = self.utc;
        p[0..4].copy_from_slice(&self.itow_ms.to_le_bytes());
        p[4..6].copy_from_slice(&y.to_le_bytes());
        p[6] = mo;
        p[7] = d;
        p[8] = h;
        p[9] = mi;
        p[10] = s;
        p[11] = self.valid;
        p[12..16].copy_from_slice(&50u32.to_le_bytes()); // tAcc, ns
        p[16..20].copy_from_slice(&self.nano_ns.to_le_bytes());
        p[20] = self.fix_type;
        p[21] = self.flags;
        p[22] = 0;
        p[23] = self.num_sv;
        p[24..28].copy_from_slice(&i32_of(self.longitude_deg * 1e7).to_le_bytes());
        p[28..32].copy_from_slice(&i32_of(self.latitude_deg * 1e7).to_le_bytes());
        p[32..36].copy_from_slice(&i32_of(self.height_m * 1e3).to_le_bytes());
        p[36..40].copy_from_slice(&i32_of(self.height_msl_m * 1e3).to_le_bytes());
        p[40..44].copy_from_slice(&u32_of(self.h_acc_m * 1e3).to_le_bytes());
        p[44..48].copy_from_slice(&u32_of(self.v_acc_m * 1e3).to_le_bytes());
        for k in 0..3 {
            p[48 + 4 * k..52 + 4 * k]
                .copy_from_slice(&i32_of(self.vel_ned_m_s[k] * 1e3).to_le_bytes());
        }
        p[60..64].copy_from_slice(&i32_of(self.ground_speed_m_s * 1e3).to_le_bytes());
        p[64..68].copy_from_slice(&i32_of(self.head_motion_deg * 1e5).to_le_bytes());
        p[68..72].copy_from_slice(&u32_of(self.s_acc_m_s * 1e3).to_le_bytes());
        p[72..76].copy_from_slice(&u32_of(180.0 * 1e5).to_le_bytes()); // headAcc
        let pdop = (self.pdop * 100.0).round().clamp(0.0, 65_535.0) as u16;
        p[76..78].copy_from_slice(&pdop.to_le_bytes());
        // 78..84 flags3 and reserved, 84 headVeh, 88 magDec, 90 magAcc: zero.
        p
    }

    /// The whole frame (sync to checksum, 100 bytes).
    pub fn frame(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(NAV_PVT_LEN + 8);
        self.frame_to(&mut f);
        f
    }

    /// Appends the whole frame to `out`.
    pub fn frame_to(&self, out: &mut Vec<u8>) {
        frame_to(CLASS_NAV, ID_NAV_PVT, &self.payload(), out);
    }

    /// Reads a 92-byte payload.
    pub fn from_payload(p: &[u8]) -> Result<Self, UbxError> {
        if p.len() != NAV_PVT_LEN {
            return Err(UbxError::Length(p.len()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
        let i32_at = |o: usize| i32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
        Ok(NavPvt {
            itow_ms: u32_at(0),
            utc: (
                u16::from_le_bytes([p[4], p[5]]),
                p[6],
                p[7],
                p[8],
                p[9],
                p[10],
            ),
            nano_ns: i32_at(16),
            valid: p[11],
            fix_type: p[20],
            flags: p[21],
            num_sv: p[23],
            longitude_deg: f64::from(i32_at(24)) * 1e-7,
            latitude_deg: f64::from(i32_at(28)) * 1e-7,
            height_m: f64::from(i32_at(32)) * 1e-3,
            height_msl_m: f64::from(i32_at(36)) * 1e-3,
            h_acc_m: f64::from(u32_at(40)) * 1e-3,
            v_acc_m: f64::from(u32_at(44)) * 1e-3,
            vel_ned_m_s: [0, 1, 2].map(|k| f64::from(i32_at(48 + 4 * k)) * 1e-3),
            ground_speed_m_s: f64::from(i32_at(60)) * 1e-3,
            head_motion_deg: f64::from(i32_at(64)) * 1e-5,
            s_acc_m_s: f64::from(u32_at(68)) * 1e-3,
            pdop: f64::from(u16::from_le_bytes([p[76], p[77]])) * 0.01,
        })
    }

    /// A 3-D fix the receiver vouches for (fix type 3 and gnssFixOK).
    pub fn has_fix(&self) -> bool {
        self.fix_type == 3 && self.flags & 1 != 0
    }

    /// UTC time of day, s.
    pub fn utc_time_s(&self) -> f64 {
        let (_, _, _, h, m, s) = self.utc;
        f64::from(h) * 3600.0 + f64::from(m) * 60.0 + f64::from(s) + f64::from(self.nano_ns) * 1e-9
    }
}

/// Appends a complete UBX frame of `class`, `id` and `payload` to `out`.
pub fn frame_to(class: u8, id: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&SYNC);
    out.push(class);
    out.push(id);
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(payload);
    let (a, b) = ubx_checksum(&out[start + 2..]);
    out.push(a);
    out.push(b);
}

/// A decoded UBX frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum UbxMessage {
    /// NAV-PVT.
    NavPvt(NavPvt),
    /// A well-formed frame of another class or id.
    Other {
        /// Class.
        class: u8,
        /// Id.
        id: u8,
        /// Payload length.
        len: usize,
    },
}

/// UBX errors (counted by the stream decoder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UbxError {
    /// A NAV-PVT payload of the wrong length.
    #[error("NAV-PVT payload of {0} bytes (92 expected)")]
    Length(usize),
}

/// Streaming UBX decoder: resynchronises on `0xB5 0x62`, checks length and checksum,
/// counts every bad frame and never holds more than one largest frame plus a read.
#[derive(Debug, Clone, Default)]
pub struct UbxStreamDecoder {
    buf: Vec<u8>,
    /// Statistics.
    pub stats: DecodeStats,
}

impl UbxStreamDecoder {
    /// A decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; decoded messages are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<UbxMessage>) {
        const CAP: usize = MAX_PAYLOAD + 8;
        for chunk in bytes.chunks(CAP) {
            self.buf.extend_from_slice(chunk);
            self.scan(out);
        }
    }

    fn scan(&mut self, out: &mut Vec<UbxMessage>) {
        let mut i = 0;
        let b = &self.buf;
        while b.len() - i >= 2 {
            if b[i..i + 2] != SYNC {
                i += 1;
                self.stats.bytes_discarded += 1;
                continue;
            }
            if b.len() - i < 6 {
                break;
            }
            let len = usize::from(u16::from_le_bytes([b[i + 4], b[i + 5]]));
            if len > MAX_PAYLOAD {
                self.stats.framing_errors += 1;
                self.stats.bytes_discarded += 1;
                i += 1;
                continue;
            }
            if b.len() - i < len + 8 {
                break;
            }
            let (a, c) = ubx_checksum(&b[i + 2..i + 6 + len]);
            if (a, c) != (b[i + 6 + len], b[i + 7 + len]) {
                self.stats.checksum_errors += 1;
                self.stats.bytes_discarded += 1;
                i += 1;
                continue;
            }
            let (class, id) = (b[i + 2], b[i + 3]);
            let payload = &b[i + 6..i + 6 + len];
            if (class, id) == (CLASS_NAV, ID_NAV_PVT) {
                match NavPvt::from_payload(payload) {
                    Ok(p) => {
                        out.push(UbxMessage::NavPvt(p));
                        self.stats.frames_ok += 1;
                    }
                    Err(_) => self.stats.framing_errors += 1,
                }
            } else {
                out.push(UbxMessage::Other { class, id, len });
                self.stats.frames_ok += 1;
            }
            i += len + 8;
        }
        self.buf.drain(..i);
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_time_of_week() {
        // 2026-11-21 was a Saturday: 6 days into the GPS week; 12:00:00 UTC is
        // 12:00:18 GPS time.
        let e = GnssEpoch {
            utc_time_s: 12.0 * 3600.0,
            date: (21, 11, 2026),
            fix: true,
            ..GnssEpoch::default()
        };
        let p = NavPvt::from_epoch(&e);
        assert_eq!(p.itow_ms, (6 * 86_400 + 12 * 3600 + 18) * 1000);
        assert_eq!(p.utc, (2026, 11, 21, 12, 0, 0));
    }

    #[test]
    fn frames_resynchronise_after_garbage() {
        let e = GnssEpoch {
            fix: true,
            latitude_deg: 34.85,
            longitude_deg: -139.47,
            altitude_msl_m: 120.5,
            satellites: 9,
            ..GnssEpoch::default()
        };
        let f = NavPvt::from_epoch(&e).frame();
        assert_eq!(f.len(), 100);
        let mut bad = f.clone();
        bad[40] ^= 0x10;
        let mut stream = vec![0xB5, 0x00, 0x62];
        stream.extend_from_slice(&bad);
        stream.extend_from_slice(&f);
        let mut d = UbxStreamDecoder::new();
        let mut out = Vec::new();
        for c in stream.chunks(7) {
            d.push(c, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(d.stats.checksum_errors, 1);
        let UbxMessage::NavPvt(p) = &out[0] else {
            panic!("not NAV-PVT: {:?}", out[0]);
        };
        assert!(p.has_fix());
        assert!((p.latitude_deg - 34.85).abs() < 1e-7);
        assert!((p.height_msl_m - 120.5).abs() < 1e-3);
    }
}
