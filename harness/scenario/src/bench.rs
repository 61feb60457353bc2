//! The bench file format: where the devices are.
//!
//! A scenario says what happens; a bench says where the links go and which avionics
//! are in the loop. The same scenario runs on the simulated bench in CI and on a
//! hardware bench on the lab's desk; only the bench file differs.
//!
//! ```toml
//! [bench]
//! name = "simulated"
//! description = "Reference flight computer in its own process; pty serial lines; virtual CAN bus."
//! clock = "lockstep"                    # default clock: lockstep | realtime
//!
//! [links]                               # "simulated" or an address
//! can = "simulated"                     # socketcan:can0, slcan:/dev/ttyACM0@1000000, vbus:/tmp/x.bus
//! imu = "simulated"                     # serial:/dev/ttyUSB0@921600
//! gnss = "simulated"                    # serial:/dev/ttyUSB1@115200
//!
//! [flight_computer]
//! kind = "reference"                    # reference | command | external
//! # defect = "late-drogue"              # reference only: a seeded defect
//! # command = ["./my-fsw", "--can", "{can}", "--imu", "{imu}", "--gnss", "{gnss}"]
//! # lockstep = true                     # command / external: speaks SIM_Tick / SIM_Ack
//! # join_timeout_s = 20.0               # started FC must join the bus within this
//! # ack_timeout_s = 10.0                # lockstep: each tick acknowledged within this
//! # can_transport = "slcan"             # simulated bus reached through an SLCAN pty (default virtual-bus)
//! # ready = ["FC_Ident", "FC_Status"]   # real time: start on the FC's first frame of these
//!                                       # (default: the binding's fc ident and status messages)
//!
//! [icd]                                 # optional: the avionics' own DBC and binding
//! dbc = "../icd/capsule.dbc"            # relative to this file (hil run --icd overrides)
//! # binding = "../icd/capsule.binding.toml"  # default: the built-in binding (--binding overrides)
//!
//! [timing]                              # real-time runs
//! physics_rate_hz = 1000.0
//! silence_timeout_s = 2.0               # avionics silent this long: ERROR naming the link
//! max_lateness_p99_us = 500.0
//! max_lateness_us = 5000.0
//! max_overruns = 0
//! max_command_latency_p99_us = 2000.0
//! ```
//!
//! Flight computer kinds: `reference` is the reference simulated flight computer
//! (`capsule-fc`, started by the runner, every link simulated); `command` is any
//! command line the runner starts, with `{can}`, `{imu}` and `{gnss}` replaced by the
//! far ends of simulated links (or the addresses of real ones), so that your own
//! flight software (host build, QEMU, Renode) can be in the loop before hardware
//! exists; `external` is avionics already connected to the links (hardware): nothing
//! is started, and the run is in real time unless it declares `lockstep = true`.

use capsule_links::address::Address;
use capsule_runner::record::TimingBudget;
use capsule_runner::session::BenchLinks;
use serde::{Deserialize, Serialize};
use twin_core::config::{Checks, ConfigError, Source};

/// The simulated bench, built in (`fixtures/benches/simulated.toml`).
pub const SIMULATED: &str = include_str!("../../../fixtures/benches/simulated.toml");

/// A bench file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// Identity and default clock.
    pub bench: BenchIdentity,
    /// Where each link goes.
    pub links: Links,
    /// The avionics in the loop.
    pub flight_computer: FlightComputer,
    /// Real-time settings and budget.
    #[serde(default)]
    pub timing: Timing,
    /// The ICD of this bench's avionics (default: the built-in `capsule.dbc`).
    #[serde(default)]
    pub icd: Option<IcdFiles>,
}

/// `[icd]`: the avionics' own interface definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcdFiles {
    /// The DBC file, relative to the bench file's directory.
    pub dbc: String,
    /// The ICD binding file (how the twin meets the DBC), relative to the bench
    /// file's directory; default the built-in binding of the shipped ICD.
    #[serde(default)]
    pub binding: Option<String>,
}

/// `[bench]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchIdentity {
    /// Short name.
    pub name: String,
    /// What the bench is.
    #[serde(default)]
    pub description: String,
    /// Default clock: `lockstep` or `realtime`.
    #[serde(default = "default_clock")]
    pub clock: String,
}

fn default_clock() -> String {
    "lockstep".into()
}

/// `[links]`: `simulated` or an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// The CAN bus.
    pub can: String,
    /// The IMU serial line.
    pub imu: String,
    /// The GNSS serial line.
    pub gnss: String,
}

/// `[flight_computer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlightComputer {
    /// `reference`, `command` or `external`.
    pub kind: String,
    /// Seeded defect of the reference flight computer.
    #[serde(default)]
    pub defect: Option<String>,
    /// Command line (`command` kind).
    #[serde(default)]
    pub command: Vec<String>,
    /// The avionics speak the lockstep messages (`command` and `external` kinds; the
    /// reference always does).
    #[serde(default)]
    pub lockstep: bool,
    /// How long a started flight computer may take to join the CAN bus, s (0.5 to
    /// 3600; default 20: a QEMU or Renode target may need more).
    #[serde(default = "default_join")]
    pub join_timeout_s: f64,
    /// Lockstep: how long the flight computer may take to acknowledge a tick, s (0.1
    /// to 600; default 10). Also how long a link may refuse data in lockstep.
    #[serde(default = "default_ack")]
    pub ack_timeout_s: f64,
    /// How a started flight computer reaches a simulated CAN bus: `virtual-bus` (the
    /// harness's own socket protocol, `{can}` = `vbus:PATH`; the default) or `slcan`
    /// (an emulated SLCAN USB-CAN adapter on a pseudo-terminal, `{can}` =
    /// `slcan:/dev/pts/N@115200,500000`, `{can_device}` = `/dev/pts/N`).
    #[serde(default = "default_can_transport")]
    pub can_transport: String,
    /// Real time: the scenario starts when the flight computer has sent the first frame
    /// of one of these messages (its readiness signal), and the state handover is sent
    /// again every 0.5 s until it reports the handed-over mode. Default: the ICD
    /// binding's identification and heartbeat messages (`FC_Ident`, `FC_Status` in the
    /// shipped ICD); `[]` starts as soon as it has joined the bus.
    #[serde(default)]
    pub ready: Option<Vec<String>>,
}

fn default_can_transport() -> String {
    "virtual-bus".into()
}

fn default_join() -> f64 {
    20.0
}
fn default_ack() -> f64 {
    10.0
}

/// `[timing]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Physics step rate, Hz (a multiple of 100: the FC cycle is 10 ms).
    #[serde(default = "default_rate")]
    pub physics_rate_hz: f64,
    /// Avionics silent this long end the run with an error naming the link, s.
    #[serde(default = "default_silence")]
    pub silence_timeout_s: f64,
    /// Budget: limit on the 99th percentile of step lateness, us.
    #[serde(default = "default_p99_us")]
    pub max_lateness_p99_us: f64,
    /// Budget: limit on the worst step lateness, us.
    #[serde(default = "default_max_us")]
    pub max_lateness_us: f64,
    /// Budget: limit on overruns (steps started more than one period late).
    #[serde(default)]
    pub max_overruns: u64,
    /// Budget: limit on the 99th percentile of command latency, us.
    #[serde(default = "default_cmd_us")]
    pub max_command_latency_p99_us: f64,
}

fn default_p99_us() -> f64 {
    TimingBudget::default().max_lateness_p99_us
}
fn default_max_us() -> f64 {
    TimingBudget::default().max_lateness_us
}
fn default_cmd_us() -> f64 {
    TimingBudget::default().max_command_latency_p99_us
}

impl Timing {
    /// The real-time budget.
    pub fn budget(&self) -> TimingBudget {
        TimingBudget {
            max_lateness_p99_us: self.max_lateness_p99_us,
            max_lateness_us: self.max_lateness_us,
            max_overruns: self.max_overruns,
            max_command_latency_p99_us: self.max_command_latency_p99_us,
        }
    }
}

fn default_rate() -> f64 {
    1000.0
}
fn default_silence() -> f64 {
    2.0
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            physics_rate_hz: default_rate(),
            silence_timeout_s: default_silence(),
            max_lateness_p99_us: default_p99_us(),
            max_lateness_us: default_max_us(),
            max_overruns: 0,
            max_command_latency_p99_us: default_cmd_us(),
        }
    }
}

/// A link: simulated, or a parsed address.
pub fn link_address(s: &str) -> Result<Option<Address>, String> {
    if s == "simulated" {
        return Ok(None);
    }
    Address::parse(s).map(Some).map_err(|e| e.to_string())
}

impl Bench {
    /// The links as addresses (`None` for simulated ones).
    pub fn links(&self) -> Result<BenchLinks, String> {
        let one = |field: &str, v: &str| link_address(v).map_err(|e| format!("links.{field}: {e}"));
        Ok(BenchLinks {
            can: one("can", &self.links.can)?,
            imu: one("imu", &self.links.imu)?,
            gnss: one("gnss", &self.links.gnss)?,
        })
    }

    /// Parses and validates a bench file; errors name file, line, column and field.
    pub fn from_toml(src: &Source<'_>) -> Result<Self, ConfigError> {
        let b: Bench = src.parse()?;
        let mut c = Checks::default();
        b.validate(&mut c);
        c.finish(src)?;
        Ok(b)
    }

    /// The built-in simulated bench.
    pub fn simulated() -> Result<Self, ConfigError> {
        Self::from_toml(&Source::new(
            "fixtures/benches/simulated.toml (built in)",
            SIMULATED,
        ))
    }

    fn validate(&self, c: &mut Checks) {
        c.require(
            matches!(self.bench.clock.as_str(), "lockstep" | "realtime"),
            "bench.clock",
            format!(
                "unknown clock `{}` (expected lockstep or realtime)",
                self.bench.clock
            ),
        );
        let mut simulated = 0;
        for (name, v) in [
            ("can", &self.links.can),
            ("imu", &self.links.imu),
            ("gnss", &self.links.gnss),
        ] {
            match link_address(v) {
                Ok(None) => simulated += 1,
                Ok(Some(a)) => {
                    let can_kind = matches!(
                        a,
                        Address::SocketCan { .. }
                            | Address::Slcan { .. }
                            | Address::VirtualBus { .. }
                    );
                    c.require(
                        (name == "can") == can_kind,
                        format!("links.{name}"),
                        if name == "can" {
                            format!("`{v}` is not a CAN address (socketcan:, slcan:, vbus:)")
                        } else {
                            format!("`{v}` is not a serial address (serial:PATH@BAUD)")
                        },
                    );
                }
                Err(m) => c.fail(format!("links.{name}"), m),
            }
        }
        let fc = &self.flight_computer;
        match fc.kind.as_str() {
            "reference" => {
                c.require(
                    simulated == 3,
                    "flight_computer.kind",
                    "the reference flight computer needs every link simulated (its far ends)",
                );
                c.require(
                    fc.command.is_empty(),
                    "flight_computer.command",
                    "only for kind = \"command\"",
                );
                if let Some(d) = &fc.defect {
                    c.require(
                        capsule_fc::defects::Defect::parse(d).is_some(),
                        "flight_computer.defect",
                        format!(
                            "unknown defect `{d}` (defects: {})",
                            capsule_fc::defects::Defect::ALL
                                .iter()
                                .map(|d| d.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            "command" => {
                c.require(
                    !fc.command.is_empty(),
                    "flight_computer.command",
                    "kind = \"command\" needs the command line",
                );
                c.require(
                    fc.defect.is_none(),
                    "flight_computer.defect",
                    "defects belong to the reference flight computer",
                );
            }
            "external" => {
                c.require(
                    simulated == 0,
                    "links",
                    "external avionics need every link at a real address",
                );
                c.require(
                    fc.command.is_empty() && fc.defect.is_none(),
                    "flight_computer",
                    "external avionics take no command or defect",
                );
            }
            other => c.fail(
                "flight_computer.kind",
                format!("unknown kind `{other}` (reference, command, external)"),
            ),
        }
        match fc.can_transport.as_str() {
            "virtual-bus" => {}
            "slcan" => c.require(
                fc.kind != "external" && link_address(&self.links.can) == Ok(None),
                "flight_computer.can_transport",
                "slcan is how a started flight computer reaches a simulated bus (links.can = \"simulated\", kind reference or command)",
            ),
            other => c.fail(
                "flight_computer.can_transport",
                format!("unknown transport `{other}` (virtual-bus, slcan)"),
            ),
        }
        if let Some(i) = &self.icd {
            c.require(
                !i.dbc.trim().is_empty(),
                "icd.dbc",
                "the DBC file's path is empty",
            );
            c.require(
                i.binding.as_ref().is_none_or(|b| !b.trim().is_empty()),
                "icd.binding",
                "the binding file's path is empty",
            );
        }
        for r in fc.ready.iter().flatten() {
            c.require(
                crate::spec::safe_id(r),
                "flight_computer.ready",
                format!("`{r}` is not a message name"),
            );
        }
        if self.bench.clock == "lockstep" {
            c.require(
                self.speaks_lockstep(),
                "bench.clock",
                "lockstep needs avionics that speak SIM_Tick / SIM_Ack (set flight_computer.lockstep = true, or use realtime)",
            );
        }
        let t = &self.timing;
        c.require(
            t.physics_rate_hz >= 100.0
                && t.physics_rate_hz <= 10_000.0
                && (t.physics_rate_hz / 100.0).fract() == 0.0,
            "timing.physics_rate_hz",
            format!(
                "{} Hz: expected a multiple of 100 Hz from 100 to 10000 (the FC cycle is 10 ms)",
                t.physics_rate_hz
            ),
        );
        c.in_range(
            "timing.silence_timeout_s",
            t.silence_timeout_s,
            0.05,
            600.0,
            "s",
        );
        c.in_range(
            "timing.max_lateness_p99_us",
            t.max_lateness_p99_us,
            0.0,
            1e6,
            "us",
        );
        c.in_range("timing.max_lateness_us", t.max_lateness_us, 0.0, 1e7, "us");
        c.in_range(
            "timing.max_command_latency_p99_us",
            t.max_command_latency_p99_us,
            0.0,
            1e6,
            "us",
        );
        c.in_range(
            "flight_computer.join_timeout_s",
            fc.join_timeout_s,
            0.5,
            3600.0,
            "s",
        );
        c.in_range(
            "flight_computer.ack_timeout_s",
            fc.ack_timeout_s,
            0.1,
            600.0,
            "s",
        );
    }

    /// True when the avionics can run in lockstep.
    pub fn speaks_lockstep(&self) -> bool {
        self.flight_computer.kind == "reference" || self.flight_computer.lockstep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Bench, String> {
        Bench::from_toml(&Source::new("b.toml", text)).map_err(|e| e.to_string())
    }

    const HW: &str = r#"[bench]
name = "lab"
clock = "realtime"

[links]
can = "socketcan:can0"
imu = "serial:/dev/ttyUSB0@921600"
gnss = "serial:/dev/ttyUSB1@115200"

[flight_computer]
kind = "external"
"#;

    #[test]
    fn the_shipped_benches_validate() {
        let b = Bench::simulated().expect("simulated bench");
        assert_eq!(b.flight_computer.kind, "reference");
        assert!(b.speaks_lockstep());
        let hw = parse(HW).expect("hardware bench");
        assert!(!hw.speaks_lockstep());
        assert_eq!(
            link_address(&hw.links.can).expect("address"),
            Some(Address::SocketCan {
                interface: "can0".into()
            })
        );
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/benches");
        let mut n = 0;
        for e in std::fs::read_dir(dir).expect("benches dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).expect("read");
                let name = p.display().to_string();
                Bench::from_toml(&Source::new(&name, &text)).expect(&name);
                n += 1;
            }
        }
        assert!(n >= 4, "{n} bench files");
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let e = parse(&HW.replace("socketcan:can0", "serial:/dev/ttyS0@115200")).expect_err("bad");
        assert!(e.contains("b.toml:6:"), "{e}");
        assert!(e.contains("links.can"), "{e}");
        assert!(e.contains("not a CAN address"), "{e}");
        let e = parse(&HW.replace("socketcan:can0", "canbus:0")).expect_err("bad");
        assert!(
            e.contains("links.can") && e.contains("unknown scheme"),
            "{e}"
        );
        let e = parse(&HW.replace("\"realtime\"", "\"lockstep\"")).expect_err("bad");
        assert!(e.contains("b.toml:3:") && e.contains("SIM_Tick"), "{e}");
        let e = parse(&HW.replace("\"external\"", "\"reference\"")).expect_err("bad");
        assert!(e.contains("flight_computer.kind"), "{e}");
        let e = parse(&format!("{HW}\n[timing]\nphysics_rate_hz = 1234.0\n")).expect_err("bad");
        assert!(
            e.contains("b.toml:14:") && e.contains("timing.physics_rate_hz"),
            "{e}"
        );
        let e = parse(&format!("{HW}\n[timing]\nmax_overrun = 3\n")).expect_err("bad");
        assert!(e.contains("max_overrun"), "{e}");
    }
}
