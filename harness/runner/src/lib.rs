//! The HIL runner: the physics core, the device emulators on the ICD, the links, the
//! clocks (lockstep and real time) and the closed loop with the avionics under test.
//!
//! Start with [`session::run`]: it wires the links and the flight computer
//! ([`session::RunConfig`]), drives the loop on the chosen [`session::Clock`] and
//! returns a [`record::RunRecord`] of everything it saw.
mod cycle;
pub mod devices;
pub mod inject;
pub mod lockstep;
pub mod process;
pub mod realtime;
pub mod record;
pub mod reinject;
pub mod rt;
pub mod session;
pub mod stop;
pub mod tap;
