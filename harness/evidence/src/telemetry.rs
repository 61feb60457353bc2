//! `telemetry.mcap`: the run's signals for Foxglove and any MCAP reader.
//!
//! Messages are JSON with JSON Schemas (MCAP's `json` / `jsonschema` encodings), in
//! zstd-compressed chunks, logged at bus time (simulation time, ns). Topics:
//! - `/truth/state` (`capsule.TruthState`, 50 Hz): position, velocity, attitude,
//!   altitude, Mach, dynamic pressure, deceleration, heat flux, temperatures,
//!   parachutes, thrusters, bank angle, angle of attack;
//! - `/truth/location` (`foxglove.LocationFix`): the track, for the Map panel;
//! - `/truth/pose` (`foxglove.FrameTransform`): the capsule's attitude in the local
//!   east-north-up frame (`enu` to `capsule`), for the 3D panel;
//! - `/events` (`foxglove.Log`): every named event and injection;
//! - `/can/<Message>` (`capsule.can.<Message>`): every CAN frame decoded with the DBC
//!   (the avionics' and the devices'; simulation-only messages are in the CAN log
//!   only), with `t_s` and `from_fc`;
//! - `/serial/imu` (`capsule.ImuDatagram`, every 20th datagram: 50 Hz of 1 kHz) and
//!   `/serial/gnss` (`capsule.GnssSentence`, every sentence) as sent to the avionics.

use crate::{EvidenceError, io_err};
use capsule_icd::can::{CanDb, CanFrame};
use capsule_icd::imu::{ImuDatagram, ImuStreamDecoder};
use capsule_icd::nmea::{NmeaStreamDecoder, Sentence};
use capsule_runner::tap::{Dir, WireLink};
use glam::{DMat3, DQuat};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use twin_core::planet::{Geodetic, Planet};
use twin_core::twin::Snapshot;

/// Every how many IMU datagrams one is published.
pub const IMU_DECIMATION: u16 = 20;

const TIME_SCHEMA: &str = r#"{"type":"object","properties":{"sec":{"type":"integer","minimum":0},"nsec":{"type":"integer","minimum":0,"maximum":999999999}}}"#;

fn foxglove_schema(name: &str) -> String {
    let t = TIME_SCHEMA;
    let vec3 = r#"{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"},"z":{"type":"number"}}}"#;
    let quat = r#"{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"},"z":{"type":"number"},"w":{"type":"number"}}}"#;
    let props = match name {
        "foxglove.LocationFix" => format!(
            r#""timestamp":{t},"frame_id":{{"type":"string"}},"latitude":{{"type":"number"}},"longitude":{{"type":"number"}},"altitude":{{"type":"number"}},"position_covariance":{{"type":"array","items":{{"type":"number"}},"minItems":9,"maxItems":9}},"position_covariance_type":{{"type":"integer","minimum":0,"maximum":3}}"#
        ),
        "foxglove.FrameTransform" => format!(
            r#""timestamp":{t},"parent_frame_id":{{"type":"string"}},"child_frame_id":{{"type":"string"}},"translation":{vec3},"rotation":{quat}"#
        ),
        _ => format!(
            r#""timestamp":{t},"level":{{"type":"integer","minimum":0,"maximum":5}},"message":{{"type":"string"}},"name":{{"type":"string"}},"file":{{"type":"string"}},"line":{{"type":"integer","minimum":0}}"#
        ),
    };
    format!(r#"{{"title":"{name}","type":"object","properties":{{{props}}}}}"#)
}

fn object_schema(title: &str, numbers: &[&str], extra: &str) -> String {
    let mut props: Vec<String> = numbers
        .iter()
        .map(|n| format!(r#""{n}":{{"type":"number"}}"#))
        .collect();
    if !extra.is_empty() {
        props.push(extra.to_string());
    }
    format!(
        r#"{{"title":"{title}","type":"object","properties":{{{}}}}}"#,
        props.join(",")
    )
}

const TRUTH_NUMBERS: [&str; 20] = [
    "t_s",
    "altitude_m",
    "latitude_deg",
    "longitude_deg",
    "airspeed_m_s",
    "inertial_speed_m_s",
    "mach",
    "dynamic_pressure_pa",
    "load_factor_g",
    "heat_flux_w_m2",
    "heat_load_j_m2",
    "heat_shield_surface_k",
    "bondline_k",
    "backshell_k",
    "bank_deg",
    "alpha_deg",
    "mass_kg",
    "step",
    "propellant_kg",
    "thrust_fraction_total",
];

fn ts(t_s: f64) -> Value {
    let ns = (t_s.max(0.0) * 1e9).round() as u64;
    json!({"sec": ns / 1_000_000_000, "nsec": ns % 1_000_000_000})
}

fn log_time(t_s: f64) -> u64 {
    (t_s.max(0.0) * 1e9).round() as u64
}

/// The MCAP writer and its channels.
pub struct Telemetry {
    path: PathBuf,
    w: mcap::Writer<BufWriter<File>>,
    truth: u16,
    location: u16,
    pose: u16,
    events: u16,
    imu: u16,
    gnss: u16,
    can: BTreeMap<u32, u16>,
    db: CanDb,
    seq: u32,
    planet: Planet,
    imu_dec: ImuStreamDecoder,
    nmea_dec: NmeaStreamDecoder,
    imu_out: Vec<ImuDatagram>,
    nmea_out: Vec<Sentence>,
}

impl Telemetry {
    /// Creates the file and its fixed channels.
    pub fn create(path: &Path, db: &CanDb) -> Result<Self, EvidenceError> {
        let f = File::create(path).map_err(|e| io_err(path, e))?;
        let opts = mcap::WriteOptions::new()
            .compression(Some(mcap::Compression::Zstd))
            .profile("")
            .library("capsule-hil");
        let mut w = opts
            .create(BufWriter::new(f))
            .map_err(|e| mcap_err(path, e))?;
        let p = path.to_path_buf();
        let mut chan = |topic: &str, schema: &str, data: String| -> Result<u16, EvidenceError> {
            let s = w
                .add_schema(schema, "jsonschema", data.as_bytes())
                .map_err(|e| mcap_err(&p, e))?;
            w.add_channel(s, topic, "json", &BTreeMap::new())
                .map_err(|e| mcap_err(&p, e))
        };
        let truth = chan(
            "/truth/state",
            "capsule.TruthState",
            object_schema(
                "capsule.TruthState",
                &TRUTH_NUMBERS,
                r#""phase":{"type":"string"},"position_eci_m":{"type":"array","items":{"type":"number"}},"velocity_eci_m_s":{"type":"array","items":{"type":"number"}},"eci_from_body_xyzw":{"type":"array","items":{"type":"number"}},"rate_body_rad_s":{"type":"array","items":{"type":"number"}},"thrusters":{"type":"array","items":{"type":"number"}},"parachutes":{"type":"object","additionalProperties":{"type":"object","properties":{"phase":{"type":"string"},"phase_code":{"type":"integer"},"drag_area_m2":{"type":"number"}}}}"#,
            ),
        )?;
        let location = chan(
            "/truth/location",
            "foxglove.LocationFix",
            foxglove_schema("foxglove.LocationFix"),
        )?;
        let pose = chan(
            "/truth/pose",
            "foxglove.FrameTransform",
            foxglove_schema("foxglove.FrameTransform"),
        )?;
        let events = chan("/events", "foxglove.Log", foxglove_schema("foxglove.Log"))?;
        let imu = chan(
            "/serial/imu",
            "capsule.ImuDatagram",
            object_schema(
                "capsule.ImuDatagram",
                &["t_s", "counter", "status", "time_us", "temperature_c"],
                r#""rate_rad_s":{"type":"array","items":{"type":"number"}},"specific_force_m_s2":{"type":"array","items":{"type":"number"}}"#,
            ),
        )?;
        let gnss = chan(
            "/serial/gnss",
            "capsule.GnssSentence",
            r#"{"title":"capsule.GnssSentence","type":"object","properties":{"t_s":{"type":"number"},"sentence":{"type":"object"}}}"#.to_string(),
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            w,
            truth,
            location,
            pose,
            events,
            imu,
            gnss,
            can: BTreeMap::new(),
            db: db.clone(),
            seq: 0,
            planet: Planet::wgs84(),
            imu_dec: ImuStreamDecoder::new(1 << 16),
            nmea_dec: NmeaStreamDecoder::new(),
            imu_out: Vec::new(),
            nmea_out: Vec::new(),
        })
    }

    fn put(&mut self, channel: u16, t_s: f64, v: &Value) -> Result<(), EvidenceError> {
        self.seq = self.seq.wrapping_add(1);
        let t = log_time(t_s);
        let mut v = v.clone();
        compact(&mut v);
        let data = serde_json::to_vec(&v).map_err(|e| EvidenceError::Json(e.to_string()))?;
        self.w
            .write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: channel,
                    sequence: self.seq,
                    log_time: t,
                    publish_time: t,
                },
                &data,
            )
            .map_err(|e| mcap_err(&self.path, e))
    }

    /// A truth sample: the state, the location and the pose.
    pub fn sample(&mut self, s: &Snapshot) -> Result<(), EvidenceError> {
        let v = glam::DVec3::from_array(s.velocity_eci_m_s);
        let parachutes: serde_json::Map<String, Value> = s
            .parachutes
            .iter()
            .map(|(n, ph, area)| {
                (
                    n.clone(),
                    json!({"phase": format!("{ph:?}"), "phase_code": *ph as u8, "drag_area_m2": area}),
                )
            })
            .collect();
        let state = json!({
            "t_s": s.t_s, "step": s.step, "phase": format!("{:?}", s.phase),
            "altitude_m": s.altitude_m, "latitude_deg": s.latitude_deg, "longitude_deg": s.longitude_deg,
            "airspeed_m_s": s.airspeed_m_s, "inertial_speed_m_s": v.length(), "mach": s.mach,
            "dynamic_pressure_pa": s.dynamic_pressure_pa, "load_factor_g": s.load_factor_g,
            "heat_flux_w_m2": s.heat_flux_w_m2, "heat_load_j_m2": s.heat_load_j_m2,
            "heat_shield_surface_k": s.heat_shield_surface_k, "bondline_k": s.bondline_k,
            "backshell_k": s.backshell_k, "bank_deg": s.bank_deg, "alpha_deg": s.alpha_deg,
            "mass_kg": s.mass_kg, "propellant_kg": s.tanks_kg.iter().sum::<f64>(),
            "thrust_fraction_total": s.thrusters.iter().sum::<f64>(),
            "position_eci_m": s.position_eci_m, "velocity_eci_m_s": s.velocity_eci_m_s,
            "eci_from_body_xyzw": s.eci_from_body_xyzw, "rate_body_rad_s": s.rate_body_rad_s,
            "thrusters": s.thrusters, "parachutes": parachutes,
        });
        self.put(self.truth, s.t_s, &state)?;
        let loc = json!({
            "timestamp": ts(s.t_s), "frame_id": "wgs84",
            "latitude": s.latitude_deg, "longitude": s.longitude_deg, "altitude": s.altitude_m,
            "position_covariance": ([0.0f64; 9]).to_vec(), "position_covariance_type": 0,
        });
        self.put(self.location, s.t_s, &loc)?;
        let q = enu_from_body(&self.planet, s);
        let pose = json!({
            "timestamp": ts(s.t_s), "parent_frame_id": "enu", "child_frame_id": "capsule",
            "translation": {"x": 0.0, "y": 0.0, "z": 0.0},
            "rotation": {"x": q.x, "y": q.y, "z": q.z, "w": q.w},
        });
        self.put(self.pose, s.t_s, &pose)
    }

    /// An event (`foxglove.Log`: faults and injections at WARNING, others at INFO).
    pub fn event(&mut self, t_s: f64, name: &str) -> Result<(), EvidenceError> {
        let level =
            if name.starts_with("inject") || name.contains("fault") || name.contains("conflict") {
                3
            } else {
                2
            };
        let v = json!({
            "timestamp": ts(t_s), "level": level, "message": name,
            "name": "hil", "file": "", "line": 0,
        });
        self.put(self.events, t_s, &v)
    }

    /// A CAN frame, decoded with the DBC (frames of unknown identifiers are skipped:
    /// they are in the CAN log).
    pub fn can_frame(
        &mut self,
        t_s: f64,
        f: &CanFrame,
        from_fc: bool,
    ) -> Result<(), EvidenceError> {
        // Simulation-only traffic (SIM_Tick, SIM_Ack, ...) is in the CAN log; it says
        // nothing about the flight.
        let Some(m) = self.db.by_id(f.id).filter(|m| !m.simulation_only) else {
            return Ok(());
        };
        let Ok(vals) = m.decode(f) else {
            return Ok(());
        };
        let mut obj = serde_json::Map::new();
        obj.insert("t_s".into(), json!(t_s));
        obj.insert("from_fc".into(), json!(from_fc));
        for (k, x) in vals {
            obj.insert(k.to_string(), json!(x));
        }
        let channel = match self.can.get(&f.id) {
            Some(c) => *c,
            None => {
                let names: Vec<&str> = m.signals.iter().map(|s| s.name.as_str()).collect();
                let title = format!("capsule.can.{}", m.name);
                let schema = object_schema(
                    &title,
                    &names,
                    r#""t_s":{"type":"number"},"from_fc":{"type":"boolean"}"#,
                );
                let s = self
                    .w
                    .add_schema(&title, "jsonschema", schema.as_bytes())
                    .map_err(|e| mcap_err(&self.path, e))?;
                let c = self
                    .w
                    .add_channel(s, &format!("/can/{}", m.name), "json", &BTreeMap::new())
                    .map_err(|e| mcap_err(&self.path, e))?;
                self.can.insert(f.id, c);
                c
            }
        };
        self.put(channel, t_s, &Value::Object(obj))
    }

    /// Serial bytes sent to the avionics, decoded.
    pub fn serial(
        &mut self,
        t_s: f64,
        link: WireLink,
        d: Dir,
        b: &[u8],
    ) -> Result<(), EvidenceError> {
        if d != Dir::Tx {
            return Ok(());
        }
        match link {
            WireLink::Imu => {
                self.imu_dec.push(b, &mut self.imu_out);
                let out = std::mem::take(&mut self.imu_out);
                for g in out.iter().filter(|g| g.counter % IMU_DECIMATION == 0) {
                    let v = json!({
                        "t_s": t_s, "counter": g.counter, "status": g.status, "time_us": g.time_us,
                        "rate_rad_s": g.rate_rad_s, "specific_force_m_s2": g.specific_force_m_s2,
                        "temperature_c": g.temperature_c,
                    });
                    self.put(self.imu, t_s, &v)?;
                }
                self.imu_out = out;
                self.imu_out.clear();
            }
            WireLink::Gnss => {
                self.nmea_dec.push(b, &mut self.nmea_out);
                let out = std::mem::take(&mut self.nmea_out);
                for s in &out {
                    let v = json!({"t_s": t_s, "sentence": s});
                    self.put(self.gnss, t_s, &v)?;
                }
                self.nmea_out = out;
                self.nmea_out.clear();
            }
            WireLink::Can => {}
        }
        Ok(())
    }

    /// Closes the current chunk and pushes it to the file.
    pub fn flush(&mut self) -> Result<(), EvidenceError> {
        self.w.flush().map_err(|e| mcap_err(&self.path, e))
    }

    /// Writes the summary and footer.
    pub fn finish(mut self) -> Result<(), EvidenceError> {
        self.w.finish().map_err(|e| mcap_err(&self.path, e))?;
        Ok(())
    }
}

/// Keeps 7 significant digits of every number but times and positions on the map
/// (telemetry is for viewing; the exact values are in the bundle's record): 17-digit
/// noise does not compress.
fn compact(v: &mut Value) {
    const EXACT: [&str; 5] = [
        "t_s",
        "latitude",
        "longitude",
        "latitude_deg",
        "longitude_deg",
    ];
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if !EXACT.contains(&k.as_str()) {
                    compact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(compact),
        Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64()
                && let Ok(y) = format!("{x:.6e}").parse::<f64>()
                && let Some(m) = serde_json::Number::from_f64(y)
            {
                *n = m;
            }
        }
        _ => {}
    }
}

fn mcap_err(path: &Path, e: mcap::McapError) -> EvidenceError {
    EvidenceError::Io {
        path: path.display().to_string(),
        cause: format!("MCAP: {e}"),
    }
}

/// The capsule's attitude in the local east-north-up frame under it.
pub fn enu_from_body(planet: &Planet, s: &Snapshot) -> DQuat {
    let [x, y, z, w] = s.eci_from_body_xyzw;
    let eci_from_body = DMat3::from_quat(DQuat::from_xyzw(x, y, z, w));
    let g = Geodetic {
        latitude_rad: s.latitude_deg.to_radians(),
        longitude_rad: s.longitude_deg.to_radians(),
        altitude_m: s.altitude_m,
    };
    let ned_from_ecef = planet.ecef_from_ned(&g).transpose();
    // ENU axes are NED's (y, x, -z).
    let enu_from_ned = DMat3::from_cols(
        glam::DVec3::new(0.0, 1.0, 0.0),
        glam::DVec3::new(1.0, 0.0, 0.0),
        glam::DVec3::new(0.0, 0.0, -1.0),
    );
    let m = enu_from_ned * ned_from_ecef * planet.ecef_from_eci(s.t_s) * eci_from_body;
    DQuat::from_mat3(&m).normalize()
}
