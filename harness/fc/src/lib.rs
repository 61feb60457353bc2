//! The reference simulated flight computer (FC).
//!
//! A black box to the harness: it depends on the ICD (`capsule-icd`) and nothing of
//! the harness, and is reached only through the serial and CAN addresses on its
//! command line. [`fsw`] is the flight software proper (pure and deterministic:
//! inputs in, CAN outputs out, no I/O); [`drivers`] are its serial and CAN drivers;
//! the binary ties them to a clock: `realtime` (wall clock) or `lockstep` (the
//! harness's `SIM_Tick` messages, see `fixtures/icd/README.md`).

pub mod app;
pub mod defects;
pub mod drivers;
pub mod fsw;
pub mod gnc;
pub mod nav;
pub mod schedule;

/// Standard gravity, m/s² (load factors in g).
pub(crate) const G0_M_S2: f64 = 9.806_65;

/// Software version reported in `FC_Ident`.
pub const VERSION: (u8, u8, u8) = (0, 1, 0);
