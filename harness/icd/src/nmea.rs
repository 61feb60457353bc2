//! NMEA 0183 (v2.3) sentences of the GNSS receiver: GGA, RMC, VTG, GSA with talker
//! `GP`, and a resynchronising line decoder.
//!
//! With no fix the receiver sends every sentence with empty position, speed and course
//! fields, GGA fix quality 0, RMC status `V` and mode `N`, VTG mode `N`, GSA fix type 1.

use crate::DecodeStats;
use crate::crc::nmea_checksum;

/// Maximum sentence length including `$` and CR LF (NMEA 0183: 82 characters).
pub const MAX_SENTENCE_LEN: usize = 82;

/// What the receiver reports at one epoch (the NMEA sentences and the UBX NAV-PVT
/// message are both made from it).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct GnssEpoch {
    /// UTC time of day, s (0..86400).
    pub utc_time_s: f64,
    /// UTC date (day, month, year).
    pub date: (u8, u8, u16),
    /// A 3-D fix is available.
    pub fix: bool,
    /// Latitude, deg (north positive).
    pub latitude_deg: f64,
    /// Longitude, deg (east positive).
    pub longitude_deg: f64,
    /// Altitude above mean sea level, m.
    pub altitude_msl_m: f64,
    /// Geoid separation (ellipsoid - MSL), m.
    pub geoid_separation_m: f64,
    /// Ground speed, m/s.
    pub speed_m_s: f64,
    /// Course over ground, deg true.
    pub course_deg: f64,
    /// Satellites used.
    pub satellites: u8,
    /// Dilutions of precision (position, horizontal, vertical).
    pub dop: (f64, f64, f64),
    /// PRNs of the satellites used (at most 12 are sent).
    pub prns: Vec<u8>,
    /// Vertical velocity, m/s, down positive (UBX only; NMEA has none).
    #[serde(default)]
    pub velocity_down_m_s: f64,
    /// Horizontal accuracy estimate, m (UBX only).
    #[serde(default)]
    pub horizontal_accuracy_m: f64,
    /// Vertical accuracy estimate, m (UBX only).
    #[serde(default)]
    pub vertical_accuracy_m: f64,
    /// Speed accuracy estimate, m/s (UBX only).
    #[serde(default)]
    pub speed_accuracy_m_s: f64,
}

/// The NMEA sentences a receiver may be set to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NmeaKind {
    /// Fix data: time, position, quality, satellites, HDOP, altitude.
    #[serde(rename = "GGA")]
    Gga,
    /// Recommended minimum: time, status, position, speed, course, date.
    #[serde(rename = "RMC")]
    Rmc,
    /// Course and speed over ground.
    #[serde(rename = "VTG")]
    Vtg,
    /// DOP and active satellites.
    #[serde(rename = "GSA")]
    Gsa,
}

impl NmeaKind {
    /// The shipped receiver's epoch: GGA, RMC, VTG, GSA in that order.
    pub const SHIPPED: [NmeaKind; 4] = [NmeaKind::Gga, NmeaKind::Rmc, NmeaKind::Vtg, NmeaKind::Gsa];

    /// The sentence formatter as written in a binding.
    pub fn name(self) -> &'static str {
        match self {
            NmeaKind::Gga => "GGA",
            NmeaKind::Rmc => "RMC",
            NmeaKind::Vtg => "VTG",
            NmeaKind::Gsa => "GSA",
        }
    }
}

/// Talker ids a receiver may use (GPS, GLONASS, Galileo, BeiDou, combined).
pub const TALKERS: [&str; 5] = ["GP", "GL", "GA", "GB", "GN"];

const KNOTS_PER_M_S: f64 = 3600.0 / 1852.0;

fn hhmmss(t: f64) -> String {
    let cs = (t.rem_euclid(86_400.0) * 100.0).round() as u64 % 8_640_000;
    format!(
        "{:02}{:02}{:02}.{:02}",
        cs / 360_000,
        (cs / 6_000) % 60,
        (cs / 100) % 60,
        cs % 100
    )
}

/// `d..dmm.mmmmm` with `deg_digits` degree digits and the hemisphere letter.
fn angle_field(deg: f64, deg_digits: usize, pos: char, neg: char) -> (String, char) {
    let a = deg.abs();
    let mut d = a.trunc();
    let mut m = ((a - d) * 60.0 * 100_000.0).round() / 100_000.0;
    if m >= 60.0 {
        d += 1.0;
        m -= 60.0;
    }
    (
        format!("{:0w$}{:08.5}", d as u32, m, w = deg_digits),
        if deg < 0.0 { neg } else { pos },
    )
}

fn lat_field(deg: f64) -> (String, char) {
    angle_field(deg, 2, 'N', 'S')
}

fn lon_field(deg: f64) -> (String, char) {
    angle_field(deg, 3, 'E', 'W')
}

/// Wraps a sentence body (between `$` and `*`) with checksum and CR LF.
pub fn frame(body: &str) -> String {
    format!("${body}*{:02X}\r\n", nmea_checksum(body.as_bytes()))
}

impl GnssEpoch {
    /// GGA: time, position, fix quality, satellites, HDOP, altitude, geoid separation.
    pub fn gga(&self) -> String {
        self.gga_as("GP")
    }

    /// The same with talker id `talker`.
    pub fn gga_as(&self, talker: &str) -> String {
        let t = hhmmss(self.utc_time_s);
        if !self.fix {
            return frame(&format!("{talker}GGA,{t},,,,,0,00,99.9,,M,,M,,"));
        }
        let (la, ns) = lat_field(self.latitude_deg);
        let (lo, ew) = lon_field(self.longitude_deg);
        frame(&format!(
            "GPGGA,{t},{la},{ns},{lo},{ew},1,{:02},{:.1},{:.1},M,{:.1},M,,",
            self.satellites.min(99),
            self.dop.1,
            self.altitude_msl_m,
            self.geoid_separation_m
        ))
    }

    /// RMC: time, status, position, speed (knots), course, date, mode.
    pub fn rmc(&self) -> String {
        self.rmc_as("GP")
    }

    /// The same with talker id `talker`.
    pub fn rmc_as(&self, talker: &str) -> String {
        let t = hhmmss(self.utc_time_s);
        let (d, m, y) = self.date;
        let date = format!("{:02}{:02}{:02}", d, m, y % 100);
        if !self.fix {
            return frame(&format!("{talker}RMC,{t},V,,,,,,,{date},,,N"));
        }
        let (la, ns) = lat_field(self.latitude_deg);
        let (lo, ew) = lon_field(self.longitude_deg);
        frame(&format!(
            "GPRMC,{t},A,{la},{ns},{lo},{ew},{:.2},{:.2},{date},,,A",
            self.speed_m_s * KNOTS_PER_M_S,
            self.course_deg.rem_euclid(360.0)
        ))
    }

    /// VTG: course and speed (knots and km/h).
    pub fn vtg(&self) -> String {
        self.vtg_as("GP")
    }

    /// The same with talker id `talker`.
    pub fn vtg_as(&self, talker: &str) -> String {
        if !self.fix {
            return frame(&format!("{talker}VTG,,T,,M,,N,,K,N"));
        }
        frame(&format!(
            "GPVTG,{:.2},T,,M,{:.2},N,{:.2},K,A",
            self.course_deg.rem_euclid(360.0),
            self.speed_m_s * KNOTS_PER_M_S,
            self.speed_m_s * 3.6
        ))
    }

    /// GSA: automatic mode, fix type, satellites used, DOPs.
    pub fn gsa(&self) -> String {
        self.gsa_as("GP")
    }

    /// The same with talker id `talker`.
    pub fn gsa_as(&self, talker: &str) -> String {
        let mut prns: Vec<String> = if self.fix {
            self.prns
                .iter()
                .take(12)
                .map(|p| format!("{p:02}"))
                .collect()
        } else {
            vec![]
        };
        prns.resize(12, String::new());
        if !self.fix {
            return frame(&format!("{talker}GSA,A,1,{},,,", prns.join(",")));
        }
        frame(&format!(
            "GPGSA,A,3,{},{:.1},{:.1},{:.1}",
            prns.join(","),
            self.dop.0,
            self.dop.1,
            self.dop.2
        ))
    }

    /// GGA, RMC, VTG, GSA in order (one epoch's burst), talker `GP`.
    pub fn burst(&self) -> String {
        self.burst_of("GP", &NmeaKind::SHIPPED)
    }

    /// The sentences `kinds` in that order with talker id `talker`.
    pub fn burst_of(&self, talker: &str, kinds: &[NmeaKind]) -> String {
        let mut s = String::new();
        for k in kinds {
            s.push_str(&match k {
                NmeaKind::Gga => self.gga_as(talker),
                NmeaKind::Rmc => self.rmc_as(talker),
                NmeaKind::Vtg => self.vtg_as(talker),
                NmeaKind::Gsa => self.gsa_as(talker),
            });
        }
        s
    }
}

/// A decoded sentence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Sentence {
    /// GGA.
    Gga {
        /// UTC time of day, s.
        utc_time_s: Option<f64>,
        /// Latitude, deg.
        latitude_deg: Option<f64>,
        /// Longitude, deg.
        longitude_deg: Option<f64>,
        /// Fix quality (0 = none).
        quality: u8,
        /// Satellites.
        satellites: u8,
        /// HDOP.
        hdop: Option<f64>,
        /// Altitude MSL, m.
        altitude_msl_m: Option<f64>,
    },
    /// RMC.
    Rmc {
        /// UTC time of day, s.
        utc_time_s: Option<f64>,
        /// `A` valid, `V` void.
        valid: bool,
        /// Latitude, deg.
        latitude_deg: Option<f64>,
        /// Longitude, deg.
        longitude_deg: Option<f64>,
        /// Speed, m/s.
        speed_m_s: Option<f64>,
        /// Course, deg.
        course_deg: Option<f64>,
    },
    /// VTG.
    Vtg {
        /// Course, deg true.
        course_deg: Option<f64>,
        /// Speed, m/s (from the km/h field).
        speed_m_s: Option<f64>,
    },
    /// GSA.
    Gsa {
        /// 1 no fix, 2 2-D, 3 3-D.
        fix_type: u8,
        /// PRNs used.
        prns: Vec<u8>,
        /// PDOP.
        pdop: Option<f64>,
    },
    /// Well-formed sentence of another type.
    Other(String),
}

/// Sentence errors (counted by the stream decoder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NmeaError {
    /// Missing `$`, `*` or checksum digits, or over-long.
    #[error("malformed sentence")]
    Malformed,
    /// Checksum mismatch.
    #[error("checksum mismatch: computed {expected:02X}, received {got:02X}")]
    Checksum {
        /// Computed.
        expected: u8,
        /// Received.
        got: u8,
    },
    /// A field does not parse.
    #[error("bad field {index} in {kind}")]
    Field {
        /// Sentence type.
        kind: String,
        /// Field index (0 = address).
        index: usize,
    },
}

fn opt_f64(s: &str, kind: &str, index: usize) -> Result<Option<f64>, NmeaError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>().map(Some).map_err(|_| NmeaError::Field {
        kind: kind.into(),
        index,
    })
}

fn time_field(s: &str, kind: &str, index: usize) -> Result<Option<f64>, NmeaError> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || NmeaError::Field {
        kind: kind.into(),
        index,
    };
    if s.len() < 6 || !s.is_char_boundary(6) {
        return Err(bad());
    }
    let h: f64 = s[0..2].parse().map_err(|_| bad())?;
    let m: f64 = s[2..4].parse().map_err(|_| bad())?;
    let sec: f64 = s[4..].parse().map_err(|_| bad())?;
    Ok(Some(h * 3600.0 + m * 60.0 + sec))
}

fn angle(
    v: &str,
    hemi: &str,
    deg_digits: usize,
    kind: &str,
    index: usize,
) -> Result<Option<f64>, NmeaError> {
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || NmeaError::Field {
        kind: kind.into(),
        index,
    };
    if v.len() <= deg_digits || !v.is_char_boundary(deg_digits) {
        return Err(bad());
    }
    let d: f64 = v[..deg_digits].parse().map_err(|_| bad())?;
    let m: f64 = v[deg_digits..].parse().map_err(|_| bad())?;
    let x = d + m / 60.0;
    match hemi {
        "N" | "E" => Ok(Some(x)),
        "S" | "W" => Ok(Some(-x)),
        _ => Err(bad()),
    }
}

/// Parses one sentence (with or without CR LF).
pub fn parse(line: &str) -> Result<Sentence, NmeaError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.len() > MAX_SENTENCE_LEN || !line.starts_with('$') {
        return Err(NmeaError::Malformed);
    }
    let (body, cks) = line[1..].rsplit_once('*').ok_or(NmeaError::Malformed)?;
    if cks.len() != 2 {
        return Err(NmeaError::Malformed);
    }
    let got = u8::from_str_radix(cks, 16).map_err(|_| NmeaError::Malformed)?;
    let expected = nmea_checksum(body.as_bytes());
    if got != expected {
        return Err(NmeaError::Checksum { expected, got });
    }
    let f: Vec<&str> = body.split(',').collect();
    let kind = f[0];
    if kind.len() != 5 {
        return Err(NmeaError::Malformed);
    }
    let need = |n: usize| {
        if f.len() >= n {
            Ok(())
        } else {
            Err(NmeaError::Field {
                kind: kind.into(),
                index: f.len(),
            })
        }
    };
    match &kind[2..] {
        "GGA" => {
            need(10)?;
            Ok(Sentence::Gga {
                utc_time_s: time_field(f[1], kind, 1)?,
                latitude_deg: angle(f[2], f[3], 2, kind, 2)?,
                longitude_deg: angle(f[4], f[5], 3, kind, 4)?,
                quality: f[6].parse().map_err(|_| NmeaError::Field {
                    kind: kind.into(),
                    index: 6,
                })?,
                satellites: if f[7].is_empty() {
                    0
                } else {
                    f[7].parse().map_err(|_| NmeaError::Field {
                        kind: kind.into(),
                        index: 7,
                    })?
                },
                hdop: opt_f64(f[8], kind, 8)?,
                altitude_msl_m: opt_f64(f[9], kind, 9)?,
            })
        }
        "RMC" => {
            need(9)?;
            Ok(Sentence::Rmc {
                utc_time_s: time_field(f[1], kind, 1)?,
                valid: f[2] == "A",
                latitude_deg: angle(f[3], f[4], 2, kind, 3)?,
                longitude_deg: angle(f[5], f[6], 3, kind, 5)?,
                speed_m_s: opt_f64(f[7], kind, 7)?.map(|k| k / KNOTS_PER_M_S),
                course_deg: opt_f64(f[8], kind, 8)?,
            })
        }
        "VTG" => {
            need(8)?;
            Ok(Sentence::Vtg {
                course_deg: opt_f64(f[1], kind, 1)?,
                speed_m_s: opt_f64(f[7], kind, 7)?.map(|k| k / 3.6),
            })
        }
        "GSA" => {
            need(18)?;
            let mut prns = Vec::new();
            for (i, p) in f[3..15].iter().enumerate() {
                if !p.is_empty() {
                    prns.push(p.parse().map_err(|_| NmeaError::Field {
                        kind: kind.into(),
                        index: 3 + i,
                    })?);
                }
            }
            Ok(Sentence::Gsa {
                fix_type: f[2].parse().map_err(|_| NmeaError::Field {
                    kind: kind.into(),
                    index: 2,
                })?,
                prns,
                pdop: opt_f64(f[15], kind, 15)?,
            })
        }
        _ => Ok(Sentence::Other(kind.to_string())),
    }
}

/// Streaming decoder: splits a byte stream into sentences at `$` and LF, resyncs on
/// garbage, bounds the line length, counts errors.
#[derive(Debug, Clone, Default)]
pub struct NmeaStreamDecoder {
    line: Vec<u8>,
    in_sentence: bool,
    /// Statistics.
    pub stats: DecodeStats,
}

impl NmeaStreamDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; decoded sentences are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Sentence>) {
        for &b in bytes {
            if b == b'$' {
                if self.in_sentence && !self.line.is_empty() {
                    // A new start inside a sentence: the previous one was cut.
                    self.stats.framing_errors += 1;
                    self.stats.bytes_discarded += self.line.len() as u64;
                }
                self.line.clear();
                self.line.push(b);
                self.in_sentence = true;
                continue;
            }
            if !self.in_sentence {
                if b != b'\r' && b != b'\n' {
                    self.stats.bytes_discarded += 1;
                }
                continue;
            }
            if b == b'\n' {
                self.in_sentence = false;
                let text = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                match parse(&text) {
                    Ok(s) => {
                        self.stats.frames_ok += 1;
                        out.push(s);
                    }
                    Err(NmeaError::Checksum { .. }) => self.stats.checksum_errors += 1,
                    Err(_) => self.stats.framing_errors += 1,
                }
                continue;
            }
            self.line.push(b);
            if self.line.len() > MAX_SENTENCE_LEN {
                self.stats.framing_errors += 1;
                self.stats.bytes_discarded += self.line.len() as u64;
                self.line.clear();
                self.in_sentence = false;
            }
        }
    }
}
