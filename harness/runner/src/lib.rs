//! The HIL runner.
pub mod devices;
pub mod inject;
pub mod lockstep;
