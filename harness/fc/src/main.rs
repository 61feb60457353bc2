//! `capsule-fc`: the reference simulated flight computer (see `capsule_fc::app`).

fn main() -> std::process::ExitCode {
    capsule_fc::app::main_with_args(std::env::args().skip(1).collect())
}
