//! Capsule physics core: a deterministic model of a cargo-return capsule from orbit to
//! splashdown, with sensor models. No I/O, no async, no wall clock, no Bevy.
//!
//! - [`twin::Twin`] integrates the vehicle (6-DOF or 3-DOF, fixed-step RK4);
//! - [`vehicle::VehicleSpec`] is read from TOML ([`config::Source`] gives located errors);
//! - [`sensors`] turn truth into sensor outputs, through a fault layer;
//! - [`case`] runs the check cases used for verification (`twin-case` binary).

pub mod aero;
pub mod atmosphere;
pub mod case;
pub use capsule_files::config;
pub mod gravity;
pub mod heating;
pub mod initial;
pub mod parachute;
pub mod planet;
pub mod rng;
pub mod sensors;
pub mod twin;
pub mod vehicle;

pub use glam;
