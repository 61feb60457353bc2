//! The command-line options of the real-time loop (`hil run`, `hil bench-rt`).

use capsule_runner::rt::RtOptions;

/// What the real-time loop asks of the operating system.
#[derive(Debug, Clone, clap::Args)]
pub struct RtArgs {
    /// Real time: ask for SCHED_FIFO at this priority (1-99; runs SCHED_OTHER if
    /// refused). Off by default: measured on a 2-core machine, the loop's hand-off to
    /// the links' runtime thread inverts priorities and FIFO makes lateness worse.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub fifo: Option<u8>,
    /// Real time: do not lock memory (by default the loop asks for mlockall).
    #[arg(long)]
    pub no_mlock: bool,
    /// Real time: pin the loop's thread to this CPU (best on an isolated one).
    #[arg(long, value_name = "CPU", value_parser = clap::value_parser!(u16).range(0..=4095))]
    pub cpu: Option<u16>,
    /// Real time: how long before each step's deadline the loop stops sleeping and
    /// spins, us.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=5000))]
    pub spin_us: u32,
}

impl RtArgs {
    /// The runner's options.
    pub fn options(&self) -> RtOptions {
        RtOptions {
            fifo_priority: self.fifo,
            lock_memory: !self.no_mlock,
            cpu: self.cpu.map(usize::from),
            spin_ns: u64::from(self.spin_us) * 1000,
        }
    }
}
