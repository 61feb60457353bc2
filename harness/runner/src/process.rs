//! The flight computer's process: started in a process group of its own, with its
//! output captured to files, and ended as a group.
//!
//! A terminal's Ctrl-C goes to the terminal's foreground process group; the flight
//! computer is not in it, so it is the harness that stops it (and anything it started:
//! a wrapper script's children, QEMU, Renode), never the terminal behind its back.
//! Ending a group: the harness closes the links (a well-behaved flight computer exits
//! when its bus closes) and waits up to [`GENTLE`]; then it sends SIGTERM to the whole
//! group and waits up to [`TERM_GRACE`]; then SIGKILL. A forced stop sends SIGKILL at
//! once. Every live group is also in a process-wide registry, so that a harness that
//! must exit early can kill them all ([`kill_all`]).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a flight computer may take to exit by itself once its links close.
pub const GENTLE: Duration = Duration::from_secs(2);
/// How long the group may take to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<i32>> {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills (SIGKILL) every flight-computer process group this process started and has
/// not yet ended. For a harness about to exit without the normal shutdown.
pub fn kill_all() {
    for pg in registry().drain(..) {
        let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
    }
}

/// True while any process of group `pg` is alive.
fn group_alive(pg: i32) -> bool {
    killpg(Pid::from_raw(pg), None).is_ok()
}

/// A started flight computer.
#[derive(Debug)]
pub struct FcProcess {
    /// The process (the group's leader).
    pub child: tokio::process::Child,
    pgid: i32,
    /// Where its standard output went.
    pub stdout_path: PathBuf,
    /// Where its standard error went.
    pub stderr_path: PathBuf,
}

impl FcProcess {
    /// Starts `args` in a new process group, standard input from /dev/null, standard
    /// output and error to `fc.stdout.log` / `fc.stderr.log` in `dir`.
    pub fn spawn(args: &[String], dir: &Path) -> Result<Self, String> {
        let (prog, rest) = args
            .split_first()
            .ok_or_else(|| "empty flight computer command".to_string())?;
        let stdout_path = dir.join("fc.stdout.log");
        let stderr_path = dir.join("fc.stderr.log");
        let open = |p: &Path| {
            std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
        };
        let (out, err) = (open(&stdout_path)?, open(&stderr_path)?);
        let child = {
            let _g = capsule_links::serial::fd_lock();
            tokio::process::Command::new(prog)
                .args(rest)
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start flight computer `{prog}`: {e}"))?
        };
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| "the flight computer exited before it could be tracked".to_string())?;
        registry().push(pgid);
        Ok(Self {
            child,
            pgid,
            stdout_path,
            stderr_path,
        })
    }

    /// The process group id.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The last `max_bytes` of its standard error, as text (for error messages).
    pub fn stderr_tail(&self, max_bytes: u64) -> String {
        tail(&self.stderr_path, max_bytes)
    }

    /// Ends the group: waits up to [`GENTLE`] for the leader to exit by itself, then
    /// SIGTERM to the group, up to [`TERM_GRACE`], then SIGKILL. With `forced`, or as
    /// soon as `stop` is forced (a second signal arriving during the gentle part),
    /// SIGKILL at once. Returns when no process of the group is left (or after SIGKILL).
    pub async fn end(mut self, stop: &crate::stop::Stop, forced: bool) {
        if !forced && !stop.is_forced() {
            tokio::select! {
                _ = tokio::time::timeout(GENTLE, self.child.wait()) => {}
                _ = stop.wait_forced() => {}
            }
        }
        let forced = forced || stop.is_forced();
        let pg = Pid::from_raw(self.pgid);
        if group_alive(self.pgid) {
            let _ = killpg(
                pg,
                if forced {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                },
            );
            let deadline = tokio::time::Instant::now() + TERM_GRACE;
            while group_alive(self.pgid)
                && tokio::time::Instant::now() < deadline
                && !stop.is_forced()
            {
                // Reap the leader so that it does not linger as a zombie.
                let _ = self.child.try_wait();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if group_alive(self.pgid) {
                let _ = killpg(pg, Signal::SIGKILL);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
        registry().retain(|g| *g != self.pgid);
    }
}

/// The last `max_bytes` of a file, as text; empty when unreadable.
pub fn tail(path: &Path, max_bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut buf = Vec::new();
    let _ = f.take(max_bytes).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_string()
}
