//! The GNSS receiver's serial line as a binding describes it (`[serial.gnss]`): its
//! speed and protocol, NMEA 0183 with a talker id and sentence set, or u-blox UBX
//! `NAV-PVT`; what the twin sends at each epoch, and a decoder that gives the flight
//! computer (and the evidence) the same fix from either.

use crate::DecodeStats;
use crate::nmea::{GnssEpoch, NmeaKind, NmeaStreamDecoder, Sentence};
use crate::ubx::{NavPvt, UbxMessage, UbxStreamDecoder};

/// The receiver's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GnssProtocol {
    /// NMEA 0183: the talker id and the sentences of each epoch, in order.
    Nmea {
        /// `GP`, `GN`, ...
        talker: String,
        /// Sentences per epoch (GGA among them).
        sentences: Vec<NmeaKind>,
    },
    /// u-blox UBX: one NAV-PVT frame per epoch.
    UbxNavPvt,
}

/// The GNSS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GnssLine {
    /// Line speed, bit/s (8N1).
    pub baud: u32,
    /// Protocol.
    pub protocol: GnssProtocol,
}

impl GnssLine {
    /// The shipped line: 115200 bit/s, NMEA GGA, RMC, VTG, GSA with talker `GP`.
    pub fn shipped() -> Self {
        Self {
            baud: 115_200,
            protocol: GnssProtocol::Nmea {
                talker: "GP".into(),
                sentences: NmeaKind::SHIPPED.to_vec(),
            },
        }
    }

    /// Appends what the receiver sends at epoch `e`.
    pub fn encode_to(&self, e: &GnssEpoch, out: &mut Vec<u8>) {
        match &self.protocol {
            GnssProtocol::Nmea { talker, sentences } => {
                out.extend_from_slice(e.burst_of(talker, sentences).as_bytes());
            }
            GnssProtocol::UbxNavPvt => NavPvt::from_epoch(e).frame_to(out),
        }
    }

    /// Largest number of bytes one epoch takes (NMEA: 82 per sentence).
    pub fn max_epoch_bytes(&self) -> usize {
        match &self.protocol {
            GnssProtocol::Nmea { sentences, .. } => sentences.len() * crate::nmea::MAX_SENTENCE_LEN,
            GnssProtocol::UbxNavPvt => crate::ubx::NAV_PVT_LEN + 8,
        }
    }

    /// The protocol's name for people.
    pub fn describe(&self) -> String {
        match &self.protocol {
            GnssProtocol::Nmea { talker, sentences } => format!(
                "NMEA 0183, talker {talker}, {}",
                sentences
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            GnssProtocol::UbxNavPvt => "u-blox UBX NAV-PVT".into(),
        }
    }
}

/// One decoded item of the GNSS line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum GnssItem {
    /// An NMEA sentence.
    Nmea(Sentence),
    /// A UBX frame.
    Ubx(UbxMessage),
}

/// A position fix as the flight computer uses it, from GGA or NAV-PVT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GnssFix {
    /// A fix is available (GGA quality > 0; NAV-PVT 3-D with gnssFixOK).
    pub fix: bool,
    /// Latitude, deg.
    pub latitude_deg: Option<f64>,
    /// Longitude, deg.
    pub longitude_deg: Option<f64>,
    /// Altitude, m (GGA's altitude field; NAV-PVT's height above the ellipsoid; the twin
    /// sends a geoid separation of zero, so the two agree).
    pub altitude_m: Option<f64>,
}

impl GnssItem {
    /// The position fix this item carries (GGA, NAV-PVT), if it carries one.
    pub fn fix(&self) -> Option<GnssFix> {
        match self {
            GnssItem::Nmea(Sentence::Gga {
                quality,
                latitude_deg,
                longitude_deg,
                altitude_msl_m,
                ..
            }) => Some(GnssFix {
                fix: *quality > 0,
                latitude_deg: *latitude_deg,
                longitude_deg: *longitude_deg,
                altitude_m: *altitude_msl_m,
            }),
            GnssItem::Ubx(UbxMessage::NavPvt(p)) => {
                let ok = p.has_fix();
                Some(GnssFix {
                    fix: ok,
                    latitude_deg: ok.then_some(p.latitude_deg),
                    longitude_deg: ok.then_some(p.longitude_deg),
                    altitude_m: ok.then_some(p.height_m),
                })
            }
            _ => None,
        }
    }
}

/// A resynchronising decoder of a GNSS line of either protocol.
#[derive(Debug, Clone)]
pub enum GnssStreamDecoder {
    /// NMEA lines.
    Nmea(NmeaStreamDecoder, Vec<Sentence>),
    /// UBX frames.
    Ubx(UbxStreamDecoder, Vec<UbxMessage>),
}

impl GnssStreamDecoder {
    /// A decoder for `line`.
    pub fn new(line: &GnssLine) -> Self {
        match line.protocol {
            GnssProtocol::Nmea { .. } => Self::Nmea(NmeaStreamDecoder::new(), Vec::new()),
            GnssProtocol::UbxNavPvt => Self::Ubx(UbxStreamDecoder::new(), Vec::new()),
        }
    }

    /// Feeds bytes; decoded items are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<GnssItem>) {
        match self {
            Self::Nmea(d, tmp) => {
                d.push(bytes, tmp);
                out.extend(tmp.drain(..).map(GnssItem::Nmea));
            }
            Self::Ubx(d, tmp) => {
                d.push(bytes, tmp);
                out.extend(tmp.drain(..).map(GnssItem::Ubx));
            }
        }
    }

    /// Statistics.
    pub fn stats(&self) -> DecodeStats {
        match self {
            Self::Nmea(d, _) => d.stats,
            Self::Ubx(d, _) => d.stats,
        }
    }
}
