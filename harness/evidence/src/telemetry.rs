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
//!   `/serial/gnss` (`capsule.GnssSentence`, every NMEA sentence, or
//!   `capsule.UbxNavPvt`, every NAV-PVT of a UBX line) as sent to the avionics.

use crate::{EvidenceError, io_err};
use capsule_icd::can::{CanDb, CanFrame};
use capsule_icd::gnss::{GnssItem, GnssProtocol, GnssStreamDecoder};
use capsule_icd::imu::{ImuDatagram, ImuStreamDecoder};
use capsule_icd::nmea::Sentence;
use capsule_icd::ubx::{NavPvt, UbxMessage};
use capsule_runner::tap::{Dir, WireLink};
use glam::{DMat3, DQuat};
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

/// Messages, serialized as they are (`f32` where single precision is plenty for
/// viewing: its shortest form is short; times, latitude, longitude and the inertial
/// position stay `f64`; the exact values are in the bundle's record).
#[derive(serde::Serialize)]
struct Time {
    sec: u64,
    nsec: u32,
}

impl Time {
    fn at(t_s: f64) -> Self {
        let ns = (t_s.max(0.0) * 1e9).round() as u64;
        Self {
            sec: ns / 1_000_000_000,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

#[derive(serde::Serialize)]
struct Chute {
    phase: twin_core::parachute::ChutePhase,
    phase_code: u8,
    drag_area_m2: f32,
}

#[derive(serde::Serialize)]
struct TruthState<'a> {
    t_s: f64,
    step: u64,
    phase: twin_core::twin::TruthPhase,
    altitude_m: f32,
    latitude_deg: f64,
    longitude_deg: f64,
    airspeed_m_s: f32,
    inertial_speed_m_s: f32,
    mach: f32,
    dynamic_pressure_pa: f32,
    load_factor_g: f32,
    heat_flux_w_m2: f32,
    heat_load_j_m2: f32,
    heat_shield_surface_k: f32,
    bondline_k: f32,
    backshell_k: f32,
    bank_deg: f32,
    alpha_deg: f32,
    mass_kg: f32,
    propellant_kg: f32,
    thrust_fraction_total: f32,
    position_eci_m: [f64; 3],
    velocity_eci_m_s: [f32; 3],
    eci_from_body_xyzw: [f32; 4],
    rate_body_rad_s: [f32; 3],
    thrusters: Vec<f32>,
    parachutes: BTreeMap<&'a str, Chute>,
}

#[derive(serde::Serialize)]
struct LocationFix {
    timestamp: Time,
    frame_id: &'static str,
    latitude: f64,
    longitude: f64,
    altitude: f32,
    position_covariance: [f32; 9],
    position_covariance_type: u8,
}

#[derive(serde::Serialize)]
struct Xyz {
    x: f32,
    y: f32,
    z: f32,
}

#[derive(serde::Serialize)]
struct Quat {
    x: f32,
    y: f32,
    z: f32,
    w: f32,
}

#[derive(serde::Serialize)]
struct FrameTransform {
    timestamp: Time,
    parent_frame_id: &'static str,
    child_frame_id: &'static str,
    translation: Xyz,
    rotation: Quat,
}

#[derive(serde::Serialize)]
struct Log<'a> {
    timestamp: Time,
    level: u8,
    message: &'a str,
    name: &'static str,
    file: &'static str,
    line: u32,
}

#[derive(serde::Serialize)]
struct ImuMsg {
    t_s: f64,
    counter: u16,
    status: u16,
    time_us: u32,
    rate_rad_s: [f32; 3],
    specific_force_m_s2: [f32; 3],
    temperature_c: f32,
}

#[derive(serde::Serialize)]
struct GnssMsg<'a> {
    t_s: f64,
    sentence: &'a Sentence,
}

#[derive(serde::Serialize)]
struct NavPvtMsg<'a> {
    t_s: f64,
    nav_pvt: &'a NavPvt,
}

/// A decoded CAN frame: `t_s`, `from_fc`, then every signal by name.
struct CanMsg<'a> {
    t_s: f64,
    from_fc: bool,
    signals: &'a [(&'a str, f64)],
}

impl serde::Serialize for CanMsg<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.signals.len() + 2))?;
        m.serialize_entry("t_s", &self.t_s)?;
        m.serialize_entry("from_fc", &self.from_fc)?;
        for (k, v) in self.signals {
            m.serialize_entry(k, &(*v as f32))?;
        }
        m.end()
    }
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
    db: std::sync::Arc<CanDb>,
    seq: u32,
    planet: Planet,
    imu_dec: ImuStreamDecoder,
    gnss_dec: GnssStreamDecoder,
    imu_out: Vec<ImuDatagram>,
    gnss_out: Vec<GnssItem>,
    buf: Vec<u8>,
}

impl Telemetry {
    /// Creates the file and its fixed channels.
    pub fn create(path: &Path, icd: &capsule_icd::Icd) -> Result<Self, EvidenceError> {
        let db: &CanDb = icd;
        let f = File::create(path).map_err(|e| io_err(path, e))?;
        let opts = mcap::WriteOptions::new()
            .compression(Some(mcap::Compression::Zstd))
            // On this thread only: the loop and the avionics keep the other cores.
            .compression_threads(0)
            .compression_level(1)
            .profile("")
            .library("capsule-hil");
        let mut w = opts
            .create(BufWriter::with_capacity(1 << 18, f))
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
        let gnss = match icd.binding.gnss.protocol {
            GnssProtocol::Nmea { .. } => chan(
                "/serial/gnss",
                "capsule.GnssSentence",
                r#"{"title":"capsule.GnssSentence","type":"object","properties":{"t_s":{"type":"number"},"sentence":{"type":"object"}}}"#.to_string(),
            )?,
            GnssProtocol::UbxNavPvt => chan(
                "/serial/gnss",
                "capsule.UbxNavPvt",
                r#"{"title":"capsule.UbxNavPvt","type":"object","properties":{"t_s":{"type":"number"},"nav_pvt":{"type":"object"}}}"#.to_string(),
            )?,
        };
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
            db: std::sync::Arc::new(db.clone()),
            seq: 0,
            planet: Planet::wgs84(),
            imu_dec: ImuStreamDecoder::with_layout(icd.binding.imu.clone(), 1 << 16),
            gnss_dec: GnssStreamDecoder::new(&icd.binding.gnss),
            imu_out: Vec::new(),
            gnss_out: Vec::new(),
            buf: Vec::with_capacity(4096),
        })
    }

    fn put<T: serde::Serialize>(
        &mut self,
        channel: u16,
        t_s: f64,
        v: &T,
    ) -> Result<(), EvidenceError> {
        self.seq = self.seq.wrapping_add(1);
        let t = log_time(t_s);
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v).map_err(|e| EvidenceError::Json(e.to_string()))?;
        self.w
            .write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: channel,
                    sequence: self.seq,
                    log_time: t,
                    publish_time: t,
                },
                &self.buf,
            )
            .map_err(|e| mcap_err(&self.path, e))
    }

    /// A truth sample: the state, the location and the pose.
    pub fn sample(&mut self, s: &Snapshot) -> Result<(), EvidenceError> {
        let f3 = |a: [f64; 3]| a.map(|x| x as f32);
        let v = glam::DVec3::from_array(s.velocity_eci_m_s);
        let state = TruthState {
            t_s: s.t_s,
            step: s.step,
            phase: s.phase,
            altitude_m: s.altitude_m as f32,
            latitude_deg: s.latitude_deg,
            longitude_deg: s.longitude_deg,
            airspeed_m_s: s.airspeed_m_s as f32,
            inertial_speed_m_s: v.length() as f32,
            mach: s.mach as f32,
            dynamic_pressure_pa: s.dynamic_pressure_pa as f32,
            load_factor_g: s.load_factor_g as f32,
            heat_flux_w_m2: s.heat_flux_w_m2 as f32,
            heat_load_j_m2: s.heat_load_j_m2 as f32,
            heat_shield_surface_k: s.heat_shield_surface_k as f32,
            bondline_k: s.bondline_k as f32,
            backshell_k: s.backshell_k as f32,
            bank_deg: s.bank_deg as f32,
            alpha_deg: s.alpha_deg as f32,
            mass_kg: s.mass_kg as f32,
            propellant_kg: s.tanks_kg.iter().sum::<f64>() as f32,
            thrust_fraction_total: s.thrusters.iter().sum::<f64>() as f32,
            position_eci_m: s.position_eci_m,
            velocity_eci_m_s: f3(s.velocity_eci_m_s),
            eci_from_body_xyzw: s.eci_from_body_xyzw.map(|x| x as f32),
            rate_body_rad_s: f3(s.rate_body_rad_s),
            thrusters: s.thrusters.iter().map(|x| *x as f32).collect(),
            parachutes: s
                .parachutes
                .iter()
                .map(|(n, ph, area)| {
                    (
                        n.as_str(),
                        Chute {
                            phase: *ph,
                            phase_code: *ph as u8,
                            drag_area_m2: *area as f32,
                        },
                    )
                })
                .collect(),
        };
        self.put(self.truth, s.t_s, &state)?;
        let loc = LocationFix {
            timestamp: Time::at(s.t_s),
            frame_id: "wgs84",
            latitude: s.latitude_deg,
            longitude: s.longitude_deg,
            altitude: s.altitude_m as f32,
            position_covariance: [0.0; 9],
            position_covariance_type: 0,
        };
        self.put(self.location, s.t_s, &loc)?;
        let q = enu_from_body(&self.planet, s);
        let pose = FrameTransform {
            timestamp: Time::at(s.t_s),
            parent_frame_id: "enu",
            child_frame_id: "capsule",
            translation: Xyz {
                x: 0.0,
                y: 0.0,
                z: 0.0,
            },
            rotation: Quat {
                x: q.x as f32,
                y: q.y as f32,
                z: q.z as f32,
                w: q.w as f32,
            },
        };
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
        let v = Log {
            timestamp: Time::at(t_s),
            level,
            message: name,
            name: "hil",
            file: "",
            line: 0,
        };
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
        let db = self.db.clone();
        let Some(m) = db.by_id(f.id).filter(|m| !m.simulation_only) else {
            return Ok(());
        };
        let Ok(vals) = m.decode(f) else {
            return Ok(());
        };
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
        self.put(
            channel,
            t_s,
            &CanMsg {
                t_s,
                from_fc,
                signals: &vals,
            },
        )
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
                    let v = ImuMsg {
                        t_s,
                        counter: g.counter,
                        status: g.status,
                        time_us: g.time_us,
                        rate_rad_s: g.rate_rad_s.map(|x| x as f32),
                        specific_force_m_s2: g.specific_force_m_s2.map(|x| x as f32),
                        temperature_c: g.temperature_c as f32,
                    };
                    self.put(self.imu, t_s, &v)?;
                }
                self.imu_out = out;
                self.imu_out.clear();
            }
            WireLink::Gnss => {
                self.gnss_dec.push(b, &mut self.gnss_out);
                let out = std::mem::take(&mut self.gnss_out);
                for s in &out {
                    match s {
                        GnssItem::Nmea(sentence) => {
                            self.put(self.gnss, t_s, &GnssMsg { t_s, sentence })?;
                        }
                        GnssItem::Ubx(UbxMessage::NavPvt(nav_pvt)) => {
                            self.put(self.gnss, t_s, &NavPvtMsg { t_s, nav_pvt })?;
                        }
                        GnssItem::Ubx(UbxMessage::Other { .. }) => {}
                    }
                }
                self.gnss_out = out;
                self.gnss_out.clear();
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
