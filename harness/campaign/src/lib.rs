//! Monte Carlo campaigns: a scenario (closed loop) or a physics case flown many times
//! with dispersed inputs.
//!
//! - [`spec`]: the campaign file (located errors, every number range-checked);
//! - [`sample`]: run `i`'s sample from (campaign seed, `i`) alone, applied to the
//!   nominal files by parameter path;
//! - [`figures`]: what a run is summarised by (peak deceleration, heat flux and load,
//!   landing miss and speed, drogue deployment conditions);
//! - [`result`]: run results, the summary (pass rate per requirement with its Wilson
//!   interval, figure statistics), shards and merging;
//! - [`report`]: the HTML report with SVG histograms and CDFs and the worst runs.
//!
//! Running the runs is `hil campaign`'s job (the one path that assembles a run).

pub mod figures;
pub mod report;
pub mod result;
pub mod sample;
pub mod spec;
