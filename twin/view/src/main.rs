//! `capsule-view`: the Bevy-rendered digital twin of a run.
//!
//! Reads a twin snapshot stream (`twin-stream`): live from a running `hil run`'s Unix
//! socket (`--attach SOCKET`), or recorded (`--replay FILE`, with play/pause, speed and
//! a time scrubber). With `--screenshot T1,T2,...` it renders those run times to PNG
//! files without a window or a display (an off-screen render target) and exits.
//!
//! Keys: `C` (or `1` `2` `3`) camera chase / orbit / ground; mouse drag and wheel in
//! orbit; replay: `Space` play/pause, `+`/`-` speed, `Left`/`Right` 10 s, `Home`/`End`,
//! click on the scrubber to seek.

mod hud;
mod scene;
mod timeline;

use anyhow::{Context, Result, bail};
use bevy::prelude::*;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, TryRecvError};
use timeline::Timeline;
use twin_stream::Record;

/// The camera's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Resource, Default)]
pub enum CameraMode {
    /// Behind the capsule, along its velocity.
    #[default]
    Chase,
    /// Around the capsule, turned with the mouse.
    Orbit,
    /// On the ground at the landing target, looking at the capsule.
    Ground,
}

/// The Bevy-rendered digital twin: live and replay view of a run.
#[derive(Debug, Parser)]
#[command(name = "capsule-view", version)]
struct Args {
    /// Attach to a running run's snapshot socket (`hil run --view` or
    /// `hil view --attach` find it).
    #[arg(long, value_name = "SOCKET", conflicts_with = "replay")]
    attach: Option<PathBuf>,
    /// Replay a recorded snapshot stream (JSON Lines; `hil view DIR` makes one from a
    /// run bundle).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Headless: render the frames at these run times (s) to PNG files and exit.
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        requires = "replay"
    )]
    screenshot: Vec<f64>,
    /// Where screenshots go.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Frame size, WIDTHxHEIGHT (16 to 8192 each).
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    size: (u32, u32),
    /// The camera at start.
    #[arg(long, value_enum, default_value_t = CameraMode::Chase)]
    camera: CameraMode,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT, e.g. 1280x720"))?;
    let p = |v: &str| -> Result<u32, String> {
        let n: u32 = v
            .parse()
            .map_err(|_| format!("`{v}` is not a whole number"))?;
        if (16..=8192).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is out of range (16 to 8192)"))
        }
    };
    Ok((p(w)?, p(h)?))
}

/// What the live source thread sends.
enum Msg {
    Records(Vec<Record>),
    Closed(Option<String>),
}

/// The live source's receiving end.
#[derive(Resource)]
struct Live(Mutex<Receiver<Msg>>);

fn main() -> Result<()> {
    let args = Args::parse();
    let mut tl = Timeline::new(args.attach.is_some());
    let mut live = None;
    match (&args.attach, &args.replay) {
        (Some(sock), None) => live = Some(connect(sock.clone())),
        (None, Some(file)) => {
            let recs = twin_stream::read_file(file)
                .with_context(|| format!("cannot replay {}", file.display()))?;
            tl.push(recs);
            tl.t_view_s = tl.span_s().0;
        }
        _ => bail!("say what to view: --attach SOCKET or --replay FILE"),
    }
    if !args.screenshot.is_empty() {
        return scene::headless(tl, &args.screenshot, &args.out, args.size, args.camera);
    }
    let title = tl.header.as_ref().map_or("capsule twin".to_string(), |h| {
        format!("capsule twin: {}", h.scenario_id)
    });
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title,
            resolution: args.size.into(),
            ..default()
        }),
        ..default()
    }));
    scene::build(&mut app, tl, args.camera, true);
    if let Some(rx) = live {
        app.insert_resource(Live(Mutex::new(rx)))
            .add_systems(PreUpdate, ingest);
    }
    app.run();
    Ok(())
}

/// Reads the live stream on a thread of its own (the socket may not exist yet when a
/// run is starting: tried for 10 s).
fn connect(sock: PathBuf) -> Receiver<Msg> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        let mut sub = loop {
            match twin_stream::Subscriber::connect(&sock) {
                Ok(s) => break s,
                Err(e) if t0.elapsed().as_secs() >= 10 => {
                    let _ = tx.send(Msg::Closed(Some(e.to_string())));
                    return;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        };
        loop {
            match sub.poll() {
                Ok(r) if r.is_empty() && sub.closed() => {
                    let _ = tx.send(Msg::Closed(None));
                    return;
                }
                Ok(r) if r.is_empty() => {}
                Ok(r) => {
                    if tx.send(Msg::Records(r)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Msg::Closed(Some(e.to_string())));
                    return;
                }
            }
        }
    });
    rx
}

/// Moves what the live source read into the timeline.
fn ingest(live: Res<Live>, mut tl: ResMut<Timeline>) {
    let Ok(rx) = live.0.lock() else {
        return;
    };
    loop {
        match rx.try_recv() {
            Ok(Msg::Records(r)) => tl.push(r),
            Ok(Msg::Closed(e)) => {
                if let Some(e) = e {
                    warn!("live stream: {e}");
                }
                tl.disconnected = true;
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
}
