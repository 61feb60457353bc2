//! Capsule physics core: a deterministic model of a cargo-return capsule from orbit to
//! splashdown, with sensor models. No I/O, no async, no wall clock, no Bevy.
pub mod atmosphere;
pub mod config;
pub mod gravity;
pub mod planet;
