//! `hil run --view`, `--publish` and `hil view`: the twin view from the command line.
//!
//! The viewer (`capsule-view`, the only program that links Bevy) runs as a process of
//! its own: `hil` finds it beside itself (or at `$CAPSULE_VIEW`) and says how to build
//! it when it is not there. Live runs publish their twin stream on a Unix socket in a
//! directory only this user can enter (`$XDG_RUNTIME_DIR/capsule-hil`, else
//! `/tmp/capsule-hil-<uid>`); `hil view --attach` finds it there.

use crate::assemble::{Loaded, ViewHook};
use crate::view::{ViewFeed, replay_records};
use anyhow::{Context, Result, bail};
use capsule_icd::Icd;
use capsule_runner::stop::Stop;
use capsule_scenario::eval::ScenarioResult;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;
use twin_stream::Record;

/// The viewer program's name.
pub const VIEWER: &str = "capsule-view";

/// `hil run`'s view options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunViewArgs {
    /// Show each run live in the twin viewer (one run at a time; lockstep is paced to
    /// `--pace` x real time). The viewer stays open after the run until it is closed.
    #[arg(long)]
    pub view: bool,
    /// Lockstep with `--view` or `--publish`: at most this many times faster than
    /// real time (0.1 to 1000).
    #[arg(long, default_value_t = 1.0, value_parser = parse_pace)]
    pub pace: f64,
    /// Publish each run's twin stream for `hil view --attach` (on by default in real
    /// time).
    #[arg(long)]
    pub publish: bool,
    /// Do not publish the twin stream (real time publishes it by default).
    #[arg(long, conflicts_with_all = ["view", "publish"])]
    pub no_publish: bool,
    /// Render key frames (entry interface, peak heating, drogue, main, splashdown)
    /// into each bundle with the viewer, headless, and show them in its report.
    #[arg(long)]
    pub key_frames: bool,
}

fn parse_pace(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.1..=1000.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range (0.1 to 1000)"))
    }
}

impl RunViewArgs {
    /// What a run does for its view on this clock.
    pub fn options(&self, lockstep: bool) -> Option<ViewOptions> {
        let publish = self.view || self.publish || (!lockstep && !self.no_publish);
        publish.then(|| ViewOptions {
            spawn_viewer: self.view,
            pace: (lockstep && (self.view || self.publish)).then_some(self.pace),
        })
    }
}

/// What a run does for its view.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Start a viewer on each run.
    pub spawn_viewer: bool,
    /// Lockstep pace, x real time.
    pub pace: Option<f64>,
}

/// The directory of live runs' sockets (made, mode 0700, if missing).
pub fn socket_dir() -> Result<PathBuf> {
    let d = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(r) if !r.is_empty() => PathBuf::from(r).join("capsule-hil"),
        _ => {
            use std::os::unix::fs::MetadataExt;
            // The owner of this process's /proc entry: its real user.
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            std::env::temp_dir().join(format!("capsule-hil-{uid}"))
        }
    };
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&d)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to this user", d.display()))?;
    }
    Ok(d)
}

/// The viewer program: beside `hil`, or `$CAPSULE_VIEW`.
pub fn viewer_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CAPSULE_VIEW") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("cannot find the hil executable")?;
    let p = me.with_file_name(VIEWER);
    if p.is_file() {
        return Ok(p);
    }
    bail!(
        "the twin viewer is not built (looked for {}): build it with `cargo build --release -p capsule-view` \
         (Bevy: about 20 minutes the first time), or set CAPSULE_VIEW to its path",
        p.display()
    )
}

/// A viewer process, killed if it is still running when dropped.
#[derive(Debug)]
pub struct ViewerProcess(Child);

impl ViewerProcess {
    /// Starts the viewer with `args`.
    pub fn spawn(args: &[String]) -> Result<Self> {
        let exe = viewer_exe()?;
        let child = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(Self(child))
    }

    /// Waits until the viewer exits or `stop` is raised (then kills it). Returns its
    /// exit status when it exited by itself.
    pub fn wait(mut self, stop: &Stop) -> Option<std::process::ExitStatus> {
        loop {
            match self.0.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if stop.is_requested() => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for ViewerProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One run's live view: its feed and, with `--view`, its viewer.
#[derive(Debug)]
pub struct LiveView {
    feed: ViewFeed,
    viewer: Option<ViewerProcess>,
    pace: Option<f64>,
}

impl LiveView {
    /// Publishes run number `n` of scenario `l`, and starts a viewer on it if asked.
    pub fn start(o: &ViewOptions, n: usize, l: &Loaded, db: &Icd, clock: &str) -> Result<Self> {
        let sock = socket_dir()?.join(format!(
            "{}-{n}-{}.sock",
            std::process::id(),
            l.scenario.scenario.id
        ));
        let feed = ViewFeed::start(l, db, &sock, clock)?;
        eprintln!(
            "twin view: {} (hil view --attach {})",
            l.scenario.scenario.id,
            sock.display()
        );
        let viewer = if o.spawn_viewer {
            Some(ViewerProcess::spawn(&[
                "--attach".into(),
                sock.display().to_string(),
            ])?)
        } else {
            None
        };
        Ok(Self {
            feed,
            viewer,
            pace: o.pace,
        })
    }

    /// The run's view hook.
    pub fn hook(&self) -> ViewHook {
        ViewHook {
            tap: self
                .feed
                .tap()
                .unwrap_or_else(|| capsule_runner::tap::Tap::bounded(1).0),
            pace: self.pace,
        }
    }

    /// Ends the view after the run: publishes the verdicts, waits for the viewer to be
    /// closed (or a stop request), and says what the view cost.
    pub fn finish(self, result: Option<&ScenarioResult>, stop: &Stop) -> String {
        let lost = self.feed.dropped();
        let verdict = if stop.is_requested() {
            "INCOMPLETE"
        } else {
            "ERROR"
        };
        let stats = self.feed.finish(result, verdict);
        if let Some(v) = self.viewer
            && !stop.is_requested()
        {
            eprintln!("twin view: close the viewer's window to go on");
            v.wait(stop);
        }
        format!(
            "twin view: {} viewer(s), {} line(s) dropped for slow viewers, {} let go; {} record(s) the loop could not queue",
            stats.viewers, stats.dropped, stats.let_go, lost
        )
    }
}

/// `hil view`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    /// A run bundle directory to replay (or a recorded twin stream, `.jsonl`).
    #[arg(required_unless_present = "attach")]
    pub path: Option<PathBuf>,
    /// Attach to a running run: its socket, or without one the only run publishing.
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, conflicts_with = "path")]
    pub attach: Option<Option<PathBuf>>,
    /// Headless: render these run times (s) to PNG files and exit; `key` for the key
    /// frames (entry interface, peak heating, drogue, main, splashdown).
    #[arg(long, value_delimiter = ',', value_name = "T1,T2,...|key")]
    pub screenshot: Vec<String>,
    /// Where screenshots go.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub size: String,
    /// Write the replay stream (JSON Lines) here and do not start the viewer.
    #[arg(long, value_name = "FILE")]
    pub save_stream: Option<PathBuf>,
}

/// The key frames of a run: entry interface (first at or below 121.92 km, 400 kft),
/// peak heating, drogue, main and splashdown, when the run has them.
pub fn key_frames(records: &[Record]) -> Vec<(&'static str, f64)> {
    let snaps: Vec<&twin_stream::Snapshot> = records
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s) => Some(s.as_ref()),
            _ => None,
        })
        .collect();
    let mut k = Vec::new();
    if let Some(s) = snaps.iter().find(|s| s.altitude_m <= 121_920.0) {
        k.push(("entry interface", s.t_s));
    }
    if let Some(s) = snaps
        .iter()
        .filter(|s| s.heat_flux_w_m2 > 0.0)
        .max_by(|a, b| a.heat_flux_w_m2.total_cmp(&b.heat_flux_w_m2))
    {
        k.push(("peak heating", s.t_s));
    }
    for (label, key) in [("drogue", "drogue"), ("main", "main")] {
        if let Some(s) = snaps.iter().find(|s| {
            s.parachutes
                .iter()
                .any(|c| c.name.contains(key) && c.phase != "stowed" && c.drag_area_m2 > 0.0)
        }) {
            // A few seconds after the deployment: the canopy is out.
            k.push((label, s.t_s + 3.0));
        }
    }
    let t_end = snaps.last().map_or(0.0, |s| s.t_s);
    if let Some(t) = records.iter().find_map(|r| match r {
        Record::Event { t_s, name } if name == "splashdown" => Some(*t_s),
        _ => None,
    }) {
        k.push(("splashdown", (t + 2.0).min(t_end)));
    }
    k.iter_mut().for_each(|(_, t)| *t = t.min(t_end));
    k
}

/// Renders the key frames of bundle `dir` into `out` with the viewer, headless.
/// Returns the PNG files with their labels and times.
pub fn render_key_frames(dir: &Path, out: &Path, db: &Icd) -> Result<Vec<(String, f64, PathBuf)>> {
    let records = replay_records(dir, db)?;
    let frames = key_frames(&records);
    if frames.is_empty() {
        bail!("{}: no key frame in this run", dir.display());
    }
    let tmp = tempfile::Builder::new()
        .prefix("twin-")
        .suffix(".jsonl")
        .tempfile()
        .context("cannot make a temporary stream file")?;
    let text: String = records.iter().map(Record::to_line).collect();
    std::fs::write(tmp.path(), text)?;
    let times: Vec<String> = frames.iter().map(|(_, t)| format!("{t:.1}")).collect();
    headless(tmp.path(), &times, out, "960x540")?;
    Ok(frames
        .iter()
        .map(|(label, t)| (label.to_string(), *t, out.join(format!("frame-{t:.1}.png"))))
        .collect())
}

fn headless(stream: &Path, times: &[String], out: &Path, size: &str) -> Result<()> {
    let exe = viewer_exe()?;
    let st = Command::new(&exe)
        .args([
            "--replay",
            &stream.display().to_string(),
            "--screenshot",
            &times.join(","),
        ])
        .args(["--out", &out.display().to_string(), "--size", size])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if !st.success() {
        bail!("the viewer could not render the frames ({st})");
    }
    Ok(())
}

/// `hil view`.
pub fn run(a: &ViewArgs) -> Result<ExitCode> {
    let stop = Stop::new();
    crate::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    if let Some(sock) = &a.attach {
        let sock = match sock {
            Some(s) => s.clone(),
            None => only_live_run()?,
        };
        let v = ViewerProcess::spawn(&["--attach".into(), sock.display().to_string()])?;
        return Ok(exit_of(v.wait(&stop)));
    }
    let Some(path) = &a.path else {
        bail!("say what to view: a run bundle directory, or --attach");
    };
    let records = if path.is_dir() {
        // The run's own ICD, as copied into its bundle.
        replay_records(path, &crate::replay::bundle_icd(path)?)?
    } else {
        twin_stream::read_file(path)?
    };
    let tmp = tempfile::Builder::new()
        .prefix("twin-")
        .suffix(".jsonl")
        .tempfile()
        .context("cannot make a temporary stream file")?;
    let text: String = records.iter().map(Record::to_line).collect();
    let stream_file = match &a.save_stream {
        Some(f) => {
            std::fs::write(f, &text).with_context(|| format!("cannot write {}", f.display()))?;
            println!("{}", f.display());
            return Ok(ExitCode::SUCCESS);
        }
        None => {
            std::fs::write(tmp.path(), &text)?;
            tmp.path().to_path_buf()
        }
    };
    if !a.screenshot.is_empty() {
        let times: Vec<String> = if a.screenshot == ["key"] {
            key_frames(&records)
                .iter()
                .map(|(_, t)| format!("{t:.1}"))
                .collect()
        } else {
            for t in &a.screenshot {
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .with_context(|| format!("--screenshot: `{t}` is not a time in seconds"))?;
            }
            a.screenshot.clone()
        };
        headless(&stream_file, &times, &a.out, &a.size)?;
        for t in &times {
            println!("{}", a.out.join(format!("frame-{t}.png")).display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let v = ViewerProcess::spawn(&[
        "--replay".into(),
        stream_file.display().to_string(),
        "--size".into(),
        a.size.clone(),
    ])?;
    Ok(exit_of(v.wait(&stop)))
}

fn exit_of(s: Option<std::process::ExitStatus>) -> ExitCode {
    match s {
        Some(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    }
}

/// The socket of the only run publishing now.
fn only_live_run() -> Result<PathBuf> {
    let d = socket_dir()?;
    let mut live: Vec<PathBuf> = std::fs::read_dir(&d)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .filter(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
        .collect();
    live.sort();
    match live.len() {
        0 => bail!(
            "no run is publishing its twin view in {} (start one with `hil run --clock realtime`, `--view` or `--publish`)",
            d.display()
        ),
        1 => Ok(live.remove(0)),
        _ => bail!(
            "several runs are publishing; say which: {}",
            live.iter()
                .map(|p| format!("--attach {}", p.display()))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    }
}
