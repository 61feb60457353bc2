//! SIGINT, SIGTERM and SIGHUP as stop requests.
//!
//! A terminal's Ctrl-C, a CI runner's timeout (SIGTERM) and a closed terminal (SIGHUP)
//! all mean the same: stop, keep the results. The first signal raises the run's
//! [`Stop`] (the running scenario ends at once, actuators are commanded safe, the
//! flight computer is stopped gently, the results are written and marked incomplete);
//! the second forces the stop (the flight computer's process group is killed at once);
//! a third kills every flight computer this process started and exits with status 130
//! without writing anything more. The signals are taken on a thread of their own, so
//! they work whatever the runtime is doing.

use capsule_runner::stop::Stop;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The name of a signal number, for messages.
fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Starts the signal thread. Returns an error if the handlers cannot be installed.
pub fn install(stop: Stop) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("hil-signals".into())
        .spawn(move || {
            let mut count = 0;
            for sig in signals.forever() {
                count += 1;
                match count {
                    1 => {
                        eprintln!(
                            "\n{}: stopping: commanding actuators safe, writing results (incomplete); again to force",
                            name(sig)
                        );
                        stop.request();
                    }
                    2 => {
                        eprintln!(
                            "\n{}: forcing the stop: killing the flight computer, writing results (incomplete)",
                            name(sig)
                        );
                        stop.force();
                    }
                    _ => {
                        eprintln!("\n{}: exiting now", name(sig));
                        capsule_runner::process::kill_all();
                        std::process::exit(130);
                    }
                }
            }
        })?;
    Ok(())
}
