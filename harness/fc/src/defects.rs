//! Seeded defects: realistic flight-software bugs, switched on from the command line
//! (`--defect NAME`), that the harness's checks must catch. Each names the requirement
//! it violates.

/// A seeded defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The drogue altitude threshold uses feet where metres are meant: the drogue comes
    /// out at about 4.6 km instead of 15 km. Violates REQ-SEQ-010.
    LateDrogue,
    /// The drogue and main channel bits are swapped: the main is fired first, at the
    /// drogue condition, high and fast. Violates REQ-SEQ-010 and REQ-SEQ-020.
    MainBeforeDrogue,
    /// The beacon command is never sent after splashdown. Violates REQ-REC-001.
    BeaconNeverActivated,
    /// The heartbeat task is not restarted after the first mode change: FC_Status stops.
    /// Violates REQ-TLM-001.
    HeartbeatStopsAfterModeChange,
    /// The pyro FDIR never uses a backup initiator (no continuity check, no fire
    /// confirmation). Violates REQ-PYR-001.
    NoBackupPyro,
    /// The IMU health checks are not wired in: a stuck or silent IMU keeps driving
    /// navigation and splashdown detection. Violates REQ-FDIR-040.
    IgnoresImuFault,
    /// The lateral guidance takes the crossrange with the wrong sign: bank reversals
    /// steer away from the target. Violates REQ-GNC-010.
    WrongBankSign,
    /// The GNSS innovation gate is not applied: a position jump from the receiver is
    /// taken into navigation. Violates REQ-FDIR-030.
    GnssJumpAccepted,
    /// The deorbit cut-off command reuses the ignition command's counter, so the motor
    /// controller ignores it as a repeat and the motor burns to depletion. Violates
    /// REQ-DEO-010.
    DeorbitBurnTooLong,
}

impl Defect {
    /// Every defect, in `--list-defects` order.
    pub const ALL: [Defect; 9] = [
        Defect::LateDrogue,
        Defect::MainBeforeDrogue,
        Defect::BeaconNeverActivated,
        Defect::HeartbeatStopsAfterModeChange,
        Defect::NoBackupPyro,
        Defect::IgnoresImuFault,
        Defect::WrongBankSign,
        Defect::GnssJumpAccepted,
        Defect::DeorbitBurnTooLong,
    ];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Defect::LateDrogue => "late-drogue",
            Defect::MainBeforeDrogue => "main-before-drogue",
            Defect::BeaconNeverActivated => "beacon-never-activated",
            Defect::HeartbeatStopsAfterModeChange => "heartbeat-stops-after-mode-change",
            Defect::NoBackupPyro => "no-backup-pyro",
            Defect::IgnoresImuFault => "ignores-imu-fault",
            Defect::WrongBankSign => "wrong-bank-sign",
            Defect::GnssJumpAccepted => "gnss-jump-accepted",
            Defect::DeorbitBurnTooLong => "deorbit-burn-too-long",
        }
    }

    /// The requirement it violates.
    pub fn violates(self) -> &'static str {
        match self {
            Defect::LateDrogue => "REQ-SEQ-010",
            Defect::MainBeforeDrogue => "REQ-SEQ-010, REQ-SEQ-020",
            Defect::BeaconNeverActivated => "REQ-REC-001",
            Defect::HeartbeatStopsAfterModeChange => "REQ-TLM-001",
            Defect::NoBackupPyro => "REQ-PYR-001",
            Defect::IgnoresImuFault => "REQ-FDIR-040",
            Defect::WrongBankSign => "REQ-GNC-010",
            Defect::GnssJumpAccepted => "REQ-FDIR-030",
            Defect::DeorbitBurnTooLong => "REQ-DEO-010",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Defect> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}
