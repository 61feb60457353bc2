//! The HIL runner.
pub mod devices;
pub mod lockstep;
