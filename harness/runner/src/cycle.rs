//! The closed loop's state and the work of one cycle, shared by both clocks.
//!
//! A cycle: the device emulators sample the twin and the twin steps (one or more
//! physics steps); their wire output goes through the bus fault layers; the flight
//! computer's frames are recorded, named and handed to the devices, which act on the
//! twin; at the cycle's end, events are named, injections react and snapshots are
//! taken. The clocks differ only in how they pace cycles and collect the FC's frames
//! ([`crate::lockstep`], [`crate::realtime`]).

use crate::devices::{Devices, Outputs};
use crate::inject::{BusFaults, Injector};
use crate::record::{EndReason, FrameRecord, MODE_NAMES, Peaks, RunRecord, TimingReport};
use crate::session::{RunConfig, RunError};
use crate::tap::{Dir, TapRecord, TapWriter, WireLink};
use capsule_icd::binding::{Binding, encode_into};
use capsule_icd::can::{CanDb, CanFrame};
use capsule_links::Packet;
use capsule_links::fault::Direction;
use std::sync::Arc;
use twin_core::twin::{Snapshot, Twin};

/// Link numbers in routed output.
pub(crate) const LINK_CAN: u8 = 0;
pub(crate) const LINK_IMU: u8 = 1;
pub(crate) const LINK_GNSS: u8 = 2;

/// The loop's state.
pub(crate) struct LoopCore {
    pub cfg: RunConfig,
    pub twin: Twin,
    pub devices: Devices,
    db: CanDb,
    frames: Vec<FrameRecord>,
    snapshots: Vec<Snapshot>,
    next_snapshot_s: f64,
    peaks: Peaks,
    named: Vec<(f64, String)>,
    named_seen: usize,
    fc_named: Vec<(f64, String)>,
    fc_event_this_cycle: bool,
    conflicts_this_cycle: u32,
    splashdown_named: bool,
    injector: Injector,
    bus: BusFaults,
    delayed: Vec<(f64, u8, Packet)>,
    babble_acc: f64,
    babble_count: u64,
    /// The ICD binding (shared with the devices).
    icd: Arc<Binding>,
    /// The mode the flight computer last reported (its event MODE_CHANGE or its
    /// status's mode), mode values.
    pub fc_mode_reported: Option<u8>,
    /// Sequence number of the last state handover sent (wraps at the binding's
    /// sequence signal's modulus, skipping 0).
    handover_seq: u8,
    events_seen: usize,
    contact_seen: bool,
    imu_total: u64,
    gnss_total: u64,
    motor_index: Option<usize>,
    /// The record stream (batched; sends wait for room in lockstep).
    tap: Option<TapWriter>,
    next_sample_s: f64,
    named_tapped: usize,
    /// The view stream (never waits).
    view: Option<TapWriter>,
    next_view_s: f64,
    next_counters_s: f64,
    named_viewed: usize,
}

impl LoopCore {
    pub fn new(cfg: RunConfig, db: CanDb, twin: Twin, mut devices: Devices) -> Self {
        let icd = devices.icd().clone();
        let motor_index = twin.thruster_index(&icd.deorbit.thruster);
        if cfg.separation.is_some() {
            devices.start_mated();
        }
        let mut tap = cfg
            .tap
            .as_ref()
            .map(|t| t.writer(matches!(cfg.clock, crate::session::Clock::Lockstep)));
        if let Some(w) = &mut tap {
            w.push(TapRecord::Sample(Box::new(twin.snapshot())), twin.time_s());
        }
        let mut view = cfg
            .view
            .as_ref()
            .map(|t| t.writer_every(false, t.sample_every_s));
        if let Some(w) = &mut view {
            w.push(TapRecord::Sample(Box::new(twin.snapshot())), twin.time_s());
        }
        Self {
            next_sample_s: twin.time_s() + tap.as_ref().map_or(0.0, |t| t.sample_every_s()),
            tap,
            named_tapped: 0,
            next_view_s: twin.time_s() + view.as_ref().map_or(0.0, |t| t.sample_every_s()),
            next_counters_s: twin.time_s(),
            view,
            named_viewed: 0,
            snapshots: vec![twin.snapshot()],
            next_snapshot_s: cfg.snapshot_every_s,
            injector: Injector::new(cfg.injections.clone()),
            bus: BusFaults::new(cfg.fault_seed),
            icd,
            fc_mode_reported: None,
            handover_seq: 0,
            cfg,
            twin,
            devices,
            db,
            frames: Vec::new(),
            peaks: Peaks::default(),
            named: Vec::new(),
            named_seen: 0,
            fc_named: Vec::new(),
            fc_event_this_cycle: false,
            conflicts_this_cycle: 0,
            splashdown_named: false,
            delayed: Vec::new(),
            babble_acc: 0.0,
            babble_count: 0,
            events_seen: 0,
            contact_seen: false,
            imu_total: 0,
            gnss_total: 0,
            motor_index,
        }
    }

    pub fn db(&self) -> &CanDb {
        &self.db
    }

    /// The ICD binding.
    pub fn icd(&self) -> &Arc<Binding> {
        &self.icd
    }

    /// Puts the links' counters on the view stream when they are due (every
    /// [`crate::tap::COUNTERS_EVERY_S`] of bus time); `counters` is called only then.
    pub fn view_counters(&mut self, counters: impl FnOnce() -> crate::record::LinkCounters) {
        let t_s = self.twin.time_s();
        if let Some(w) = &mut self.view
            && t_s >= self.next_counters_s
        {
            self.next_counters_s = t_s + crate::tap::COUNTERS_EVERY_S;
            let links = Box::new(counters());
            w.push(TapRecord::Counters { t_s, links }, t_s);
        }
    }

    /// Puts a packet that crossed link number `link` at bus time `t_s` on the record
    /// stream.
    pub fn tap_wire(&mut self, link: u8, dir: Dir, packet: &Packet, t_s: f64) {
        if link == LINK_CAN
            && let Some(w) = &mut self.view
        {
            let packet = packet.clone();
            let r = TapRecord::Wire {
                t_s,
                link: WireLink::Can,
                dir,
                packet,
            };
            w.push(r, t_s);
        }
        if let Some(w) = &mut self.tap {
            let link = match link {
                LINK_IMU => WireLink::Imu,
                LINK_GNSS => WireLink::Gnss,
                _ => WireLink::Can,
            };
            let packet = packet.clone();
            w.push(
                TapRecord::Wire {
                    t_s,
                    link,
                    dir,
                    packet,
                },
                t_s,
            );
        }
    }

    /// The state handover frames at the current time (recorded as sent): the mission
    /// data the scenario has, then the state, the message with its time last.
    pub fn handover(&mut self) -> Result<Vec<CanFrame>, RunError> {
        let icd = self.icd.clone();
        let h = &icd.handover;
        let m = &icd.mission;
        let modulo = h.sequence.modulo().clamp(2, 256) as u8 - 1;
        self.handover_seq = self.handover_seq % modulo + 1;
        let s = *self.twin.state();
        let (p, v, q) = (s.position_eci_m, s.velocity_eci_m_s, s.eci_from_body);
        let mut frames = Vec::with_capacity(8);
        if let Some((t_ig, dv)) = self.cfg.mission.deorbit {
            encode_into(
                &[
                    (&m.ignition_time, (t_ig * 1000.0).round() / 1000.0),
                    (&m.delta_v, (dv * 100.0).round() / 100.0),
                    (&m.burn_attitude, 0.0),
                ],
                &mut frames,
            )?;
        }
        if let Some((lat, lon)) = self.cfg.mission.target_deg {
            encode_into(&[(&m.target_lat, lat), (&m.target_lon, lon)], &mut frames)?;
        }
        encode_into(
            &[
                (&h.position[0], p.x),
                (&h.position[1], p.y),
                (&h.position[2], p.z),
                (&h.velocity[0], v.x),
                (&h.velocity[1], v.y),
                (&h.velocity[2], v.z),
                (&h.attitude[0], q.w),
                (&h.attitude[1], q.x),
                (&h.attitude[2], q.y),
                (&h.attitude[3], q.z),
            ],
            &mut frames,
        )?;
        encode_into(
            &[
                (&h.time, (self.twin.time_s() * 1e6).round() / 1e6),
                (&h.mode, f64::from(self.cfg.handover_mode)),
                (&h.sequence, f64::from(self.handover_seq)),
            ],
            &mut frames,
        )?;
        let t_s = self.twin.time_s();
        for f in &frames {
            self.frames.push(FrameRecord {
                t_s,
                from_fc: false,
                frame: *f,
            });
        }
        Ok(frames)
    }

    /// Samples the devices and steps the twin `n` times, tracking peaks and taking
    /// the periodic snapshots.
    pub fn step(&mut self, n: u32, out: &mut Outputs) -> Result<(), RunError> {
        let dt = self.twin.dt_s();
        for _ in 0..n {
            if let Some(sep) = self.cfg.separation
                && self.devices.mated()
                && self.twin.time_s() + 1e-9 >= sep.at_s
            {
                let t = self.twin.time_s();
                self.devices.separate(&self.twin, t, sep.delta_v_m_s);
            }
            self.devices.actuate(&mut self.twin);
            self.devices.step(&self.twin, dt, out)?;
            self.twin.step();
            let twin = &self.twin;
            if let Some(k) = self.motor_index
                && twin.thruster_output(k) > 0.0
            {
                let thrust_n = twin.vehicle().thrusters[k].thrust_n * twin.thruster_output(k);
                self.peaks.deorbit_delta_v_m_s += thrust_n / twin.mass_kg() * dt;
            }
            if twin.contact().is_none() {
                let p = &mut self.peaks;
                p.load_factor_g = p.load_factor_g.max(twin.load_factor_g());
                if twin
                    .parachutes()
                    .iter()
                    .all(|c| c.phase == twin_core::parachute::ChutePhase::Stowed)
                {
                    p.entry_load_factor_g = p.entry_load_factor_g.max(twin.load_factor_g());
                }
                p.heat_flux_w_m2 = p.heat_flux_w_m2.max(twin.heat_flux_w_m2());
                p.dynamic_pressure_pa = p
                    .dynamic_pressure_pa
                    .max(twin.environment().dynamic_pressure_pa);
                p.bondline_k = p.bondline_k.max(twin.thermal().bondline_k);
            }
            if twin.time_s() + 1e-9 >= self.next_snapshot_s {
                self.snapshots.push(twin.snapshot());
                self.next_snapshot_s += self.cfg.snapshot_every_s;
            }
            if let Some(w) = &mut self.tap
                && twin.time_s() + 1e-9 >= self.next_sample_s
            {
                w.push(TapRecord::Sample(Box::new(twin.snapshot())), twin.time_s());
                self.next_sample_s += w.sample_every_s();
            }
            if let Some(w) = &mut self.view
                && twin.time_s() + 1e-9 >= self.next_view_s
            {
                w.push(TapRecord::Sample(Box::new(twin.snapshot())), twin.time_s());
                self.next_view_s += w.sample_every_s();
            }
        }
        Ok(())
    }

    /// Sends the devices' output of a cycle lasting `cycle_s` through the bus fault
    /// layers. Returns what goes on the wire now, in order; delayed packets come out in
    /// the first cycle at or after their time. Serial byte counts are taken after the
    /// faults (what really went down the line) and device frames are recorded.
    pub fn route(&mut self, out: Outputs, cycle_s: f64) -> Vec<(u8, Packet)> {
        let t = self.twin.time_s();
        self.bus.clock.set_s(t);
        let mut ready: Vec<(u8, Packet)> = Vec::new();
        self.delayed.retain(|(due, link, p)| {
            if *due <= t + 1e-9 {
                ready.push((*link, p.clone()));
                false
            } else {
                true
            }
        });
        let delayed = &mut self.delayed;
        let mut push = |link: u8, list: Vec<(u64, Packet)>, ready: &mut Vec<(u8, Packet)>| {
            for (d, p) in list {
                if d == 0 {
                    ready.push((link, p));
                } else {
                    delayed.push((t + d as f64 * 1e-9, link, p));
                }
            }
        };
        if !out.imu_bytes.is_empty() {
            let l = self
                .bus
                .imu
                .apply(Direction::Tx, Packet::Bytes(out.imu_bytes));
            push(LINK_IMU, l, &mut ready);
        }
        if !out.gnss_bytes.is_empty() {
            let l = self
                .bus
                .gnss
                .apply(Direction::Tx, Packet::Bytes(out.gnss_bytes));
            push(LINK_GNSS, l, &mut ready);
        }
        for f in out.frames {
            let l = self.bus.can.apply(Direction::Tx, Packet::Frame(f));
            push(LINK_CAN, l, &mut ready);
        }
        if let Some((id, rate)) = self.bus.can.babble() {
            self.babble_acc += rate * cycle_s;
            while self.babble_acc >= 1.0 {
                self.babble_acc -= 1.0;
                self.babble_count += 1;
                self.bus.can.control.stats.record("babble");
                ready.push((
                    LINK_CAN,
                    Packet::Frame(CanFrame::new(id, &self.babble_count.to_le_bytes())),
                ));
            }
        } else {
            self.babble_acc = 0.0;
        }
        for (link, p) in &ready {
            match (*link, p) {
                (LINK_IMU, Packet::Bytes(b)) => self.imu_total += b.len() as u64,
                (LINK_GNSS, Packet::Bytes(b)) => self.gnss_total += b.len() as u64,
                (_, Packet::Frame(f)) => self.frames.push(FrameRecord {
                    t_s: t,
                    from_fc: false,
                    frame: *f,
                }),
                _ => {}
            }
        }
        ready
    }

    /// Serial bytes routed so far (IMU, GNSS).
    pub fn serial_totals(&self) -> (u64, u64) {
        (self.imu_total, self.gnss_total)
    }

    /// Takes a frame from the flight computer at time `t_s` (the cycle's time in
    /// lockstep, the wire time in real time): records it, names its events and, after
    /// the bus fault layer, lets the devices act on it. Returns (it is the lockstep
    /// acknowledgement, it was a new actuator command).
    pub fn on_fc_frame(&mut self, f: CanFrame, t_s: f64) -> (bool, bool) {
        self.frames.push(FrameRecord {
            t_s,
            from_fc: true,
            frame: f,
        });
        if f.id == self.icd.ack_id() {
            return (true, false);
        }
        // A frame with an identifier the DBC gives another node: recorded as the FC's
        // (so never judged as the device's) and named, at most once per cycle.
        if let Some(m) = self.db.by_id(f.id)
            && m.transmitter != self.icd.fc.node
            && self.conflicts_this_cycle < 1
        {
            self.conflicts_this_cycle += 1;
            self.fc_named
                .push((t_s, format!("can_id_conflict:{}", m.name)));
        }
        let fc = &self.icd.fc;
        if f.id == fc.event_id() && f.dlc >= fc.event_code.message().dlc {
            self.fc_event_this_cycle = true;
            // Event codes (the twin's vocabulary): 1 MODE_CHANGE, 2 FAULT_DETECTED,
            // 3 FAULT_CLEARED, 6 RESET_RECOVERY.
            let code = fc.event_code.read(&f);
            let to = fc.event_mode_to.read(&f) as usize;
            if code == 1.0 && to < MODE_NAMES.len() {
                self.fc_mode_reported = Some(to as u8);
                self.fc_named
                    .push((t_s, format!("fc_mode:{}", MODE_NAMES[to])));
            }
            if code == 6.0 {
                self.fc_named.push((t_s, "fc_reset_recovery".into()));
            }
            // FAULT_DETECTED and FAULT_CLEARED, with and without their detail.
            let fault = match code {
                2.0 => Some("fc_fault"),
                3.0 => Some("fc_fault_cleared"),
                _ => None,
            };
            if let Some(name) = fault {
                let detail = fc.event_detail.read(&f) as u16;
                self.fc_named.push((t_s, name.into()));
                self.fc_named.push((t_s, format!("{name}:{detail:#06x}")));
            }
        }
        if f.id == fc.status_id() && f.dlc >= fc.mode.message().dlc {
            self.fc_mode_reported = Some(fc.mode.read(&f) as u8);
        }
        // The FC's commands cross the faulted bus too.
        let mut command = false;
        for (_, p) in self.bus.can.apply(Direction::Rx, Packet::Frame(f)) {
            if let Packet::Frame(g) = p {
                command |= self.devices.on_fc_frame(&g, &mut self.twin, t_s);
            }
        }
        (false, command)
    }

    /// Ends a cycle at the twin's time: names this cycle's events, lets the injections
    /// react to them, and takes a snapshot if anything happened.
    pub fn end_cycle(&mut self) {
        let t = self.twin.time_s();
        for (te, e) in &self.devices.events[self.named_seen..] {
            self.named.push((*te, e.name()));
        }
        self.named_seen = self.devices.events.len();
        self.named.append(&mut self.fc_named);
        if let Some(c) = self.twin.contact()
            && !self.splashdown_named
        {
            self.splashdown_named = true;
            self.named.push((c.t_s, "splashdown".into()));
        }
        let before = self.injector.log.len();
        self.injector.update(
            t,
            &self.named,
            &mut self.twin,
            &mut self.devices,
            &mut self.bus,
        );
        for (ti, id, started) in &self.injector.log[before..] {
            if *started {
                self.named.push((*ti, format!("inject:{id}")));
            } else {
                let name = format!("inject_end:{id}");
                if let Some(w) = &mut self.view {
                    w.push(
                        TapRecord::Event {
                            t_s: *ti,
                            name: name.clone(),
                        },
                        *ti,
                    );
                }
                if let Some(w) = &mut self.tap {
                    w.push(TapRecord::Event { t_s: *ti, name }, *ti);
                }
            }
        }
        if let Some(w) = &mut self.view {
            for (t_s, name) in &self.named[self.named_viewed..] {
                let (t_s, name) = (*t_s, name.clone());
                w.push(TapRecord::Event { t_s, name }, t_s);
            }
        }
        self.named_viewed = self.named.len();
        if let Some(w) = &mut self.tap {
            for (t_s, name) in &self.named[self.named_tapped..] {
                let (t_s, name) = (*t_s, name.clone());
                w.push(TapRecord::Event { t_s, name }, t_s);
            }
        }
        self.named_tapped = self.named.len();
        // A snapshot at every cycle where something happened, so checks can read the
        // truth at the moment of each event.
        if self.devices.events.len() != self.events_seen
            || self.fc_event_this_cycle
            || (self.twin.contact().is_some() && !self.contact_seen)
        {
            self.events_seen = self.devices.events.len();
            self.contact_seen = self.twin.contact().is_some();
            if self.snapshots.last().is_none_or(|s| s.t_s < t) {
                self.snapshots.push(self.twin.snapshot());
            }
        }
        self.fc_event_this_cycle = false;
        self.conflicts_this_cycle = 0;
        if let Some(p) = &self.cfg.progress_ms {
            p.store(
                (t * 1e3).max(0.0) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// Why the run should end now, if it should.
    pub fn end_reason(&self) -> Option<EndReason> {
        let t = self.twin.time_s();
        if let Some(c) = self.twin.contact()
            && t >= c.t_s + self.cfg.after_landing_s
        {
            return Some(EndReason::Landed);
        }
        if t >= self.cfg.max_time_s {
            return Some(EndReason::MaxTime);
        }
        if self.cfg.stop.is_requested() {
            return Some(EndReason::Interrupted);
        }
        None
    }

    /// Closes the record.
    pub fn finish(
        mut self,
        clock: &'static str,
        end: EndReason,
        timing: Option<TimingReport>,
        links: crate::record::LinkCounters,
    ) -> RunRecord {
        if end == EndReason::Interrupted {
            let t = self.twin.time_s();
            self.devices.make_safe(t);
            self.end_cycle();
        }
        let mut named = std::mem::take(&mut self.named);
        named.sort_by(|a, b| a.0.total_cmp(&b.0));
        let faults_injected = [
            ("can", &self.bus.can),
            ("imu", &self.bus.imu),
            ("gnss", &self.bus.gnss),
        ]
        .iter()
        .flat_map(|(l, f)| {
            f.control
                .stats
                .all()
                .into_iter()
                .map(move |(k, n)| (format!("{l}.{k}"), n))
        })
        .collect();
        RunRecord {
            clock: clock.to_string(),
            frames: self.frames,
            events: std::mem::take(&mut self.devices.events),
            contact: self.twin.contact().copied(),
            snapshots: self.snapshots,
            end,
            t_end_s: self.twin.time_s(),
            serial_bytes: (self.imu_total, self.gnss_total),
            peaks: self.peaks,
            named_events: named,
            injections: self.injector.log,
            faults_injected,
            timing,
            links,
        }
    }
}
