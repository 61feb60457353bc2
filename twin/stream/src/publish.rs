//! The publishing end: a Unix socket that any number of viewers connect to.

use crate::{Record, StreamError};
use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a viewer may leave a line unread before it is let go.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the accepting and writing threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// History kept for viewers that attach late: one snapshot per this much run time.
const HISTORY_EVERY_S: f64 = 1.0;

/// At most this many history lines (snapshots and events) are kept; older snapshots
/// are thinned out when it is reached.
const HISTORY_MAX: usize = 20_000;

/// What the publisher did, for the run's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublisherStats {
    /// Viewers that connected.
    pub viewers: u64,
    /// Lines published.
    pub lines: u64,
    /// Lines dropped for viewers that read slower than the run (oldest first).
    pub dropped: u64,
    /// Viewers let go because they left a line unread for [`WRITE_TIMEOUT`].
    pub let_go: u64,
}

struct Viewer {
    queue: Mutex<VecDeque<Arc<str>>>,
    ready: Condvar,
    gone: AtomicBool,
}

#[derive(Default)]
struct State {
    header: Option<Arc<str>>,
    history: Vec<(f64, bool, Arc<str>)>,
    last_history_s: f64,
    end: Option<Arc<str>>,
    viewers: Vec<Arc<Viewer>>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    capacity: usize,
    viewers: AtomicU64,
    lines: AtomicU64,
    dropped: AtomicU64,
    let_go: AtomicU64,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

/// Serves a stream to viewers over a Unix socket. [`Publisher::publish`] never waits:
/// each viewer's queue holds `capacity` lines and drops its oldest when full.
pub struct Publisher {
    path: PathBuf,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("path", &self.path)
            .field("stats", &self.stats())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Publisher {
    /// Listens on `path` (a stale socket left there by a crashed run is replaced; any
    /// other file is an error), with `capacity` lines queued per viewer.
    pub fn bind(path: &Path, capacity: usize) -> Result<Self, StreamError> {
        let io = |source| StreamError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.file_type().is_socket() {
                std::fs::remove_file(path).map_err(io)?;
            } else {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                )));
            }
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            capacity: capacity.max(2),
            viewers: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            let_go: AtomicU64::new(0),
            writers: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("twin-stream-accept".into())
            .spawn(move || accept_loop(&listener, &s))
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            shared,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends a record to every viewer (and keeps what a late viewer needs).
    pub fn publish(&self, record: &Record) {
        let line: Arc<str> = record.to_line().into();
        self.shared.lines.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&self.shared.state);
        match record {
            Record::Header(_) => st.header = Some(line.clone()),
            Record::Snapshot(s) => {
                if st.history.is_empty() || s.t_s >= st.last_history_s + HISTORY_EVERY_S {
                    st.last_history_s = s.t_s;
                    st.history.push((s.t_s, true, line.clone()));
                    if st.history.len() > HISTORY_MAX {
                        thin(&mut st.history);
                    }
                }
            }
            Record::Event { t_s, .. } => {
                st.history.push((*t_s, false, line.clone()));
                if st.history.len() > HISTORY_MAX {
                    thin(&mut st.history);
                }
            }
            Record::End(_) => st.end = Some(line.clone()),
        }
        st.viewers.retain(|v| !v.gone.load(Ordering::Relaxed));
        for v in &st.viewers {
            let mut q = lock(&v.queue);
            if q.len() >= self.shared.capacity {
                q.pop_front();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(line.clone());
            v.ready.notify_one();
        }
    }

    /// What the publisher did so far.
    pub fn stats(&self) -> PublisherStats {
        let s = &self.shared;
        PublisherStats {
            viewers: s.viewers.load(Ordering::Relaxed),
            lines: s.lines.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            let_go: s.let_go.load(Ordering::Relaxed),
        }
    }

    /// Viewers connected now.
    pub fn connected(&self) -> usize {
        lock(&self.shared.state)
            .viewers
            .iter()
            .filter(|v| !v.gone.load(Ordering::Relaxed))
            .count()
    }

    /// Stops accepting, gives every viewer what is queued (each within
    /// [`WRITE_TIMEOUT`]), closes the connections and removes the socket.
    pub fn close(mut self) -> PublisherStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for v in &lock(&self.shared.state).viewers {
            v.ready.notify_one();
        }
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let writers = std::mem::take(&mut *lock(&self.shared.writers));
        for w in writers {
            let _ = w.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

/// Halves the snapshot history (keeps every event).
fn thin(h: &mut Vec<(f64, bool, Arc<str>)>) {
    let mut k = 0usize;
    h.retain(|(_, snap, _)| {
        k += 1;
        !*snap || k.is_multiple_of(2)
    });
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => attach(stream, shared),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!("twin stream: accepting a viewer failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn attach(stream: UnixStream, shared: &Arc<Shared>) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let viewer = Arc::new(Viewer {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        gone: AtomicBool::new(false),
    });
    // The preface (header, history, end) is taken under the same lock that publishing
    // holds: nothing is missed or sent twice.
    let preface: Vec<Arc<str>> = {
        let mut st = lock(&shared.state);
        let mut p: Vec<Arc<str>> = st.header.iter().cloned().collect();
        p.extend(st.history.iter().map(|(_, _, l)| l.clone()));
        p.extend(st.end.iter().cloned());
        st.viewers.push(viewer.clone());
        p
    };
    shared.viewers.fetch_add(1, Ordering::Relaxed);
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("twin-stream-viewer".into())
        .spawn(move || serve(stream, &viewer, preface, &s));
    match spawned {
        Ok(h) => lock(&shared.writers).push(h),
        Err(e) => tracing::warn!("twin stream: no thread for a viewer: {e}"),
    }
}

fn serve(mut stream: UnixStream, v: &Viewer, preface: Vec<Arc<str>>, shared: &Shared) {
    let mut write = |lines: &[Arc<str>]| -> bool {
        for l in lines {
            if let Err(e) = stream.write_all(l.as_bytes()) {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    shared.let_go.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("twin stream: a viewer stopped reading; let go");
                }
                return false;
            }
        }
        true
    };
    let mut ok = write(&preface);
    drop(preface);
    let mut batch: Vec<Arc<str>> = Vec::new();
    while ok {
        {
            let q = lock(&v.queue);
            let (mut q, _) = v
                .ready
                .wait_timeout_while(q, POLL, |q| {
                    q.is_empty() && !shared.stop.load(Ordering::Relaxed)
                })
                .unwrap_or_else(PoisonError::into_inner);
            batch.extend(q.drain(..));
        }
        ok = write(&batch);
        batch.clear();
        if shared.stop.load(Ordering::Relaxed) && lock(&v.queue).is_empty() {
            break;
        }
    }
    v.gone.store(true, Ordering::Relaxed);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
