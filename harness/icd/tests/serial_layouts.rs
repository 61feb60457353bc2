//! The serial lines as data: the shipped binding's `[serial]` is the built-in layout;
//! the variant ICD's IMU datagram (big-endian, f32, CRC-32) and UBX NAV-PVT line are
//! read back by independent decoders (Python's `struct` + `zlib.crc32`, and pyubx2);
//! mistakes in `[serial]` are errors naming file, line, column and field.

use capsule_files::config::Source;
use capsule_icd::Icd;
use capsule_icd::binding::Binding;
use capsule_icd::can::CanDb;
use capsule_icd::gnss::{GnssItem, GnssLine, GnssProtocol, GnssStreamDecoder};
use capsule_icd::imu::{ImuDatagram, ImuLayout, ImuStreamDecoder, status};
use capsule_icd::nmea::GnssEpoch;
use std::process::Command;

const DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");
const BINDING: &str = include_str!("../../../fixtures/icd/capsule.binding.toml");
const DBC_B: &str = include_str!("../../../fixtures/icd/variant/capsule-b.dbc");
const BINDING_B: &str = include_str!("../../../fixtures/icd/variant/capsule-b.binding.toml");

fn icd_b() -> Icd {
    Icd::load("capsule-b.dbc", DBC_B, "capsule-b.binding.toml", BINDING_B).expect("ICD B loads")
}

fn bind(text: &str) -> Result<Binding, String> {
    let db = CanDb::from_dbc("capsule.dbc", DBC).expect("DBC loads");
    Binding::from_toml(&Source::new("b.toml", text), &db).map_err(|e| e.to_string())
}

/// Python with `modules`, or None (a failure in CI, where .ci/run installs them).
fn python(modules: &str) -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none() && std::env::var_os("HIL_REQUIRE_PEERS").is_none(),
        "python3 with {modules} is required here (see .ci/run)"
    );
    eprintln!("SKIPPED: python3 with {modules} not found (pip install {modules})");
    None
}

fn run_python(script: &str, hex: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script, hex])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sample(k: u16) -> ImuDatagram {
    let x = f64::from(k);
    ImuDatagram {
        counter: k,
        status: if k.is_multiple_of(3) {
            status::GYRO_SATURATED
        } else {
            0
        },
        time_us: 1_000_000 + 1000 * u32::from(k),
        rate_rad_s: [0.01 * x, -0.5 + 0.001 * x, 1.25],
        specific_force_m_s2: [-9.80665, 30.0 - x, 0.001 * x],
        temperature_c: 21.5 + 0.01 * x,
    }
}

#[test]
fn the_shipped_binding_describes_the_built_in_lines() {
    let b = bind(BINDING).expect("shipped binding resolves");
    assert_eq!(*b.imu, *ImuLayout::shipped());
    assert_eq!(b.gnss, GnssLine::shipped());
    // A binding without [serial] gets the same lines.
    let cut = BINDING.split("\n[serial.imu]").next().expect("text");
    let b = bind(cut).expect("resolves without [serial]");
    assert_eq!(*b.imu, *ImuLayout::shipped());
}

#[test]
fn the_variant_imu_datagram_reads_back_with_python_struct_and_zlib() {
    let icd = icd_b();
    let l = icd.binding.imu.clone();
    assert_eq!((l.len, l.baud), (39, 460_800));
    let mut bytes = Vec::new();
    for k in 0..5 {
        l.encode_to(&sample(k), &mut bytes);
    }
    // Our own decoder, fed in odd pieces behind garbage.
    let mut dec = ImuStreamDecoder::with_layout(l.clone(), 256);
    let mut out = Vec::new();
    let mut stream = vec![0x7E, 0x00, 0x81];
    stream.extend_from_slice(&bytes);
    for c in stream.chunks(11) {
        dec.push(c, &mut out);
    }
    assert_eq!(out.len(), 5);
    for (k, d) in out.iter().enumerate() {
        let want = sample(k as u16);
        assert_eq!(d.counter, want.counter);
        assert_eq!(d.status, want.status);
        assert_eq!(d.time_us, want.time_us);
        for i in 0..3 {
            assert!((d.rate_rad_s[i] - want.rate_rad_s[i]).abs() < 1e-6);
            assert!((d.specific_force_m_s2[i] - want.specific_force_m_s2[i]).abs() < 1e-3);
        }
        assert!((d.temperature_c - want.temperature_c).abs() < 0.006);
    }
    let Some(()) = python("struct, zlib") else {
        return;
    };
    // The layout as the variant's binding states it, read with the standard library.
    let script = r#"
import struct, sys, zlib, json
b = bytes.fromhex(sys.argv[1])
out = []
for i in range(0, len(b), 39):
    f = b[i:i+39]
    assert f[:3] == bytes([0x7E, 0x81, 0x27]), f[:3]
    st, cnt, t, gx, gy, gz, ax, ay, az, temp, crc = struct.unpack(">BBIfffiiiHI", f[3:])
    assert crc == zlib.crc32(f[:35]), (hex(crc), hex(zlib.crc32(f[:35])))
    out.append([st, cnt, t * 10, gx, gy, gz, ax * 0.01e-3 * 9.80665, ay * 0.01e-3 * 9.80665, az * 0.01e-3 * 9.80665, temp * 0.01 - 273.15])
print(json.dumps(out))
"#;
    let got: Vec<Vec<f64>> = serde_json::from_str(&run_python(script, &hex(&bytes))).expect("json");
    assert_eq!(got.len(), 5);
    for (k, v) in got.iter().enumerate() {
        let want = sample(k as u16);
        // Status: saturation is bit 0x01 in this layout.
        assert_eq!(v[0], if k % 3 == 0 { 1.0 } else { 0.0 });
        assert_eq!(v[1], k as f64);
        assert_eq!(v[2], f64::from(want.time_us));
        for i in 0..3 {
            assert!(
                (v[3 + i] - want.rate_rad_s[i].to_degrees()).abs() < 1e-4,
                "gyro {i}: {}",
                v[3 + i]
            );
            assert!(
                (v[6 + i] - want.specific_force_m_s2[i]).abs() < 1e-3,
                "accel {i}: {}",
                v[6 + i]
            );
        }
        assert!((v[9] - want.temperature_c).abs() < 0.006);
    }
}

fn epoch(t: f64, fix: bool) -> GnssEpoch {
    GnssEpoch {
        utc_time_s: t,
        date: (21, 11, 2026),
        fix,
        latitude_deg: 34.851_234_5,
        longitude_deg: -139.470_987_6,
        altitude_msl_m: 2_345.678,
        geoid_separation_m: 0.0,
        speed_m_s: 52.25,
        course_deg: 45.5,
        satellites: 11,
        dop: (1.6, 0.9, 1.3),
        prns: vec![2, 5, 7],
        velocity_down_m_s: 7.125,
        horizontal_accuracy_m: 2.5,
        vertical_accuracy_m: 4.0,
        speed_accuracy_m_s: 0.1,
    }
}

#[test]
fn the_variant_gnss_line_is_ubx_nav_pvt_that_pyubx2_reads() {
    let icd = icd_b();
    let line = &icd.binding.gnss;
    assert_eq!(line.protocol, GnssProtocol::UbxNavPvt);
    assert_eq!(line.baud, 38_400);
    let mut bytes = Vec::new();
    line.encode_to(&epoch(45_296.25, true), &mut bytes);
    line.encode_to(&epoch(45_296.35, false), &mut bytes);
    // Our decoder: the fix, then none.
    let mut dec = GnssStreamDecoder::new(line);
    let mut items = Vec::new();
    dec.push(&bytes, &mut items);
    let fixes: Vec<_> = items.iter().filter_map(GnssItem::fix).collect();
    assert_eq!(fixes.len(), 2);
    assert!(fixes[0].fix && !fixes[1].fix);
    assert!((fixes[0].latitude_deg.expect("lat") - 34.851_234_5).abs() < 1e-7);
    assert!((fixes[0].altitude_m.expect("alt") - 2_345.678).abs() < 1e-3);
    let Some(()) = python("pyubx2") else {
        return;
    };
    let script = r#"
import sys, json
from pyubx2 import UBXReader
b = bytes.fromhex(sys.argv[1])
out = []
while b:
    n = 8 + int.from_bytes(b[4:6], "little")
    m = UBXReader.parse(b[:n], validate=1)
    out.append({k: getattr(m, k) for k in ("identity", "iTOW", "year", "month", "day", "hour", "min", "second", "nano", "fixType", "gnssFixOk", "numSV", "lat", "lon", "height", "hMSL", "velN", "velE", "velD", "gSpeed", "headMot", "hAcc", "vAcc", "pDOP")})
    b = b[n:]
print(json.dumps(out))
"#;
    let got: Vec<serde_json::Value> =
        serde_json::from_str(&run_python(script, &hex(&bytes))).expect("json");
    assert_eq!(got.len(), 2);
    let g = &got[0];
    let num = |k: &str| g[k].as_f64().unwrap_or_else(|| panic!("{k}: {}", g[k]));
    assert_eq!(g["identity"], "NAV-PVT");
    // 2026-11-21 (a Saturday) 12:34:56.25 UTC = GPS time of week 6 d 12:35:14.25.
    assert_eq!(
        num("iTOW"),
        f64::from((6 * 86_400 + 12 * 3600 + 35 * 60 + 14) * 1000 + 250)
    );
    assert_eq!(
        (num("year"), num("month"), num("day")),
        (2026.0, 11.0, 21.0)
    );
    assert_eq!((num("hour"), num("min"), num("second")), (12.0, 34.0, 56.0));
    assert_eq!(num("nano"), 250_000_000.0);
    assert_eq!(
        (num("fixType"), num("gnssFixOk"), num("numSV")),
        (3.0, 1.0, 11.0)
    );
    assert!((num("lat") - 34.851_234_5).abs() < 1e-7);
    assert!((num("lon") + 139.470_987_6).abs() < 1e-7);
    // pyubx2 gives heights and velocities in mm and mm/s.
    assert!((num("height") - 2_345_678.0).abs() <= 1.0);
    assert!((num("hMSL") - 2_345_678.0).abs() <= 1.0);
    let c = 45.5_f64.to_radians();
    assert!((num("velN") - 52_250.0 * c.cos()).abs() <= 1.0);
    assert!((num("velE") - 52_250.0 * c.sin()).abs() <= 1.0);
    assert_eq!(num("velD"), 7_125.0);
    assert_eq!(num("gSpeed"), 52_250.0);
    assert!((num("headMot") - 45.5).abs() < 1e-5);
    assert_eq!((num("hAcc"), num("vAcc")), (2_500.0, 4_000.0));
    assert!((num("pDOP") - 1.6).abs() < 1e-9);
    let n = &got[1];
    assert_eq!(
        (n["fixType"].as_u64(), n["gnssFixOk"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn serial_mistakes_are_located() {
    let cases: [(&str, &str, &str); 8] = [
        (
            "counter = { offset = 4, type = \"u16\" }",
            "counter = { offset = 6, type = \"u16\" }",
            "serial.imu.status",
        ),
        (
            "lsb = 1e-6, unit = \"rad/s\" },\n  { offset = 16",
            "lsb = 1e-6, unit = \"m/s\" },\n  { offset = 16",
            "serial.imu.gyro[0].unit",
        ),
        (
            "lsb = 1e-5, unit = \"m/s^2\" },\n  { offset = 28",
            "lsb = 1, unit = \"m/s^2\" },\n  { offset = 28",
            "serial.imu.accel[0].lsb",
        ),
        (
            "{ offset = 36, type = \"i16\", lsb = 0.01, unit = \"degC\" }",
            "{ offset = 36, type = \"i8\", lsb = 0.01, unit = \"degC\" }",
            "serial.imu.temperature",
        ),
        (
            "from = 2, to = 38, at = 38",
            "from = 2, to = 40, at = 38",
            "serial.imu.checksum.at",
        ),
        ("length = 40", "length = 39", "serial.imu.checksum"),
        (
            "sentences = [\"GGA\", \"RMC\", \"VTG\", \"GSA\"]",
            "sentences = [\"RMC\", \"VTG\"]",
            "serial.gnss.sentences",
        ),
        ("talker = \"GP\"", "talker = \"XX\"", "serial.gnss.talker"),
    ];
    for (from, to, field) in cases {
        assert!(BINDING.contains(from), "{from}");
        let e = bind(&BINDING.replacen(from, to, 1)).expect_err(field);
        assert!(e.starts_with("b.toml:"), "{e}");
        assert!(e.contains(field), "{field}: {e}");
    }
    // A kind that is not in the catalogue is refused by name, located.
    let e = bind(&BINDING.replace("crc16-ibm-3740", "crc16-foo")).expect_err("kind");
    assert!(e.starts_with("b.toml:") && e.contains("crc16-foo"), "{e}");
}
