//! The codecs reproduce the golden vectors of `fixtures/icd/golden.toml` exactly.
//! Those vectors were computed independently of this crate (cantools for CAN, Python
//! struct + binascii.crc_hqx for the IMU datagram, hand-written NMEA); see
//! `fixtures/icd/tools/golden.py` and `fixtures/icd/README.md`.

use capsule_icd::can::{CanDb, CanFrame};
use capsule_icd::crc::crc16_ibm_3740;
use capsule_icd::imu::{ImuDatagram, ImuStreamDecoder};
use capsule_icd::nmea::{self, GnssEpoch, Sentence};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Golden {
    check_crc16_ibm_3740: u16,
    can: Vec<CanVec>,
    imu: Vec<ImuVec>,
    nmea: Vec<NmeaVec>,
}
#[derive(Deserialize)]
struct CanVec {
    message: String,
    id: u32,
    data: String,
    signals: BTreeMap<String, f64>,
}
#[derive(Deserialize)]
struct ImuVec {
    counter: u16,
    status: u16,
    time_us: u32,
    rate_rad_s: [f64; 3],
    specific_force_m_s2: [f64; 3],
    temperature_c: f64,
    bytes: String,
}
#[derive(Deserialize)]
struct NmeaVec {
    sentence: String,
}

fn golden() -> Golden {
    toml::from_str(include_str!("../../../fixtures/icd/golden.toml")).expect("golden.toml parses")
}

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("DBC loads")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn crc_check_value() {
    assert_eq!(crc16_ibm_3740(b"123456789"), 0x29B1);
    assert_eq!(golden().check_crc16_ibm_3740, 0x29B1);
}

#[test]
fn can_frames_match_golden_bytes_both_ways() {
    let db = db();
    let g = golden();
    assert!(g.can.len() >= 10);
    for v in &g.can {
        let vals: Vec<(&str, f64)> = v.signals.iter().map(|(k, x)| (k.as_str(), *x)).collect();
        let f = db.encode(&v.message, &vals).expect("encodes");
        assert_eq!(f.id, v.id, "{}", v.message);
        assert_eq!(
            f.payload(),
            unhex(&v.data).as_slice(),
            "{} encodes to {}",
            v.message,
            v.data
        );
        let (m, decoded) = db
            .decode(&CanFrame::new(v.id, &unhex(&v.data)))
            .expect("decodes");
        assert_eq!(m.name, v.message);
        for (name, x) in decoded {
            let s = m.signal(name).expect("signal");
            let want = v.signals[name];
            assert!(
                (x - want).abs() <= 0.5 * s.factor.abs() + 1e-9,
                "{}.{name}: {x} vs {want}",
                v.message
            );
        }
    }
}

#[test]
fn imu_datagrams_match_golden_bytes_both_ways() {
    for v in golden().imu {
        let d = ImuDatagram {
            counter: v.counter,
            status: v.status,
            time_us: v.time_us,
            rate_rad_s: v.rate_rad_s,
            specific_force_m_s2: v.specific_force_m_s2,
            temperature_c: v.temperature_c,
        };
        let bytes = unhex(&v.bytes);
        assert_eq!(d.encode().as_slice(), bytes.as_slice());
        let back = ImuDatagram::decode(&bytes).expect("decodes");
        assert_eq!(back.counter, v.counter);
        assert_eq!(back.status, v.status);
        for k in 0..3 {
            assert!((back.rate_rad_s[k] - v.rate_rad_s[k]).abs() <= 0.5e-6);
            assert!((back.specific_force_m_s2[k] - v.specific_force_m_s2[k]).abs() <= 0.5e-5);
        }
        let mut dec = ImuStreamDecoder::default();
        let mut out = Vec::new();
        dec.push(&bytes, &mut out);
        assert_eq!(out.len(), 1);
    }
}

fn epoch(fix: bool) -> GnssEpoch {
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
        geoid_separation_m: 21.0,
        speed_m_s: 7.5,
        course_deg: 45.0,
        satellites: 9,
        dop: (1.6, 0.9, 1.3),
        prns: vec![2, 5, 7, 9, 13, 15, 20, 24, 30],
        ..GnssEpoch::default()
    }
}

#[test]
fn nmea_sentences_match_golden_text() {
    let g = golden();
    let fix = epoch(true);
    let none = epoch(false);
    let ours = [
        fix.gga(),
        fix.rmc(),
        fix.vtg(),
        fix.gsa(),
        none.gga(),
        none.rmc(),
        none.vtg(),
        none.gsa(),
    ];
    assert_eq!(g.nmea.len(), ours.len());
    for (v, o) in g.nmea.iter().zip(ours.iter()) {
        assert_eq!(
            o.trim_end(),
            v.sentence,
            "encoder output differs from golden"
        );
        nmea::parse(&v.sentence).expect("golden parses");
    }
    match nmea::parse(&g.nmea[0].sentence).expect("GGA") {
        Sentence::Gga {
            latitude_deg: Some(la),
            longitude_deg: Some(lo),
            quality: 1,
            satellites: 9,
            altitude_msl_m: Some(h),
            ..
        } => {
            assert!(
                (la - fix.latitude_deg).abs() < 1e-9
                    && (lo - fix.longitude_deg).abs() < 1e-9
                    && (h - 12.3).abs() < 1e-9
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match nmea::parse(&g.nmea[4].sentence).expect("no-fix GGA") {
        Sentence::Gga {
            latitude_deg: None,
            quality: 0,
            satellites: 0,
            ..
        } => {}
        other => panic!("no-fix GGA decoded as {other:?}"),
    }
}
