#!/usr/bin/env python3
"""A minimal capsule flight computer in Python: a starting point for your own.

It is written against the ICD alone (fixtures/icd/README.md and capsule.dbc) and
reaches the capsule the way flight software reaches hardware: the CAN bus through an
SLCAN (Lawicel) USB-CAN adapter with python-can, the IMU and GNSS receivers on serial
lines with pyserial. On the bench the harness plays the adapter and both receivers on
pseudo-terminals; on a lab desk the same program runs against real ones.

What it does, in real time (no lockstep):
- sends FC_Ident at start-up and at 1 Hz for 5 s, and FC_Status at 10 Hz (heartbeat);
- takes the state handover (HV_*, the set completes on HV_StateTime) and assumes the
  mode it gives, reporting every mode change with FC_Event MODE_CHANGE;
- navigates: strapdown inertial navigation from the handover state (IMU datagrams at
  1 kHz, J2 gravity), then GNSS (NMEA GGA, ellipsoidal altitude) once a fix is back
  after the plasma blackout, and the barometer (Baro_Data) below 30 km;
- fires the drogue (Pyro_FireMask bit0) below 15 km once slower than 250 m/s, the main
  (bit2) with the drogue released (bit4) in the same command below 3 km;
- detects splashdown (a deceleration spike, or resting at sea level) and turns the
  recovery beacon on.
- steers in entry: a numerical predictor-corrector picks the bank angle that lands on
  the mission's target (MSN_Target) without exceeding 3.8 g predicted, reversing the
  bank to null the crossrange; the roll jets fly it (RCS_Command at 50 Hz).

Usage:
    fc.py --can /dev/pts/N --imu /dev/pts/M --gnss /dev/pts/K [--dbc capsule.dbc]

Needs: python-can, pyserial, cantools (pip install python-can pyserial cantools).
"""

import argparse
import binascii
import math
import struct
import sys
import threading
import time

import can
import cantools
import serial

# FC_Mode values (ICD).
PRE_SEPARATION, COAST, DEORBIT_BURN, ENTRY, DROGUE, MAIN, SPLASHDOWN, RECOVERY, SAFE = range(9)
# FC_EventCode values (ICD).
MODE_CHANGE = 1
# Pyro_FireMask bits (ICD).
DROGUE_PRIMARY, MAIN_PRIMARY, DROGUE_RELEASE = 0x01, 0x04, 0x10
PYRO_ARM_KEY = 0xA5

# WGS-84 and gravity.
MU = 3.986004418e14
RE = 6378137.0
J2 = 1.08262668e-3
F_WGS = 1 / 298.257223563
E2 = F_WGS * (2 - F_WGS)
OMEGA_E = 7.2921150e-5

# Decision thresholds (this example's choices, not requirements).
DROGUE_BELOW_M = 15000.0
DROGUE_SLOWER_THAN_M_S = 250.0
DROGUE_LATEST_M = 13500.0
MAIN_BELOW_M = 3000.0
SPLASH_SPIKE_M_S2 = 25.0
SPLASH_NEAR_M = 300.0
SPLASH_REST_M = 5.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Clock:
    """Seconds on the flight software's time base. Real time: the monotonic clock,
    set to the handover's HV_TimeUs when the handover arrives. Lockstep: the time of
    the last SIM_Tick, nothing else."""

    def __init__(self, lockstep):
        self.lockstep = lockstep
        self.offset_s = -time.monotonic()
        self.tick_s = 0.0

    def now(self):
        return self.tick_s if self.lockstep else time.monotonic() + self.offset_s

    def set(self, t_s):
        if self.lockstep:
            self.tick_s = t_s
        else:
            self.offset_s = t_s - time.monotonic()


# ---------------------------------------------------------------- math helpers
def qmul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw)


def qrot(q, v):
    """Rotates vector v by unit quaternion q (scalar first)."""
    w, x, y, z = q
    vx, vy, vz = v
    # t = 2 (q_vec x v); v' = v + w t + q_vec x t
    tx = 2 * (y * vz - z * vy)
    ty = 2 * (z * vx - x * vz)
    tz = 2 * (x * vy - y * vx)
    return (vx + w * tx + (y * tz - z * ty),
            vy + w * ty + (z * tx - x * tz),
            vz + w * tz + (x * ty - y * tx))


def gravity_eci(r):
    x, y, z = r
    r2 = x * x + y * y + z * z
    rn = math.sqrt(r2)
    k = -MU / (r2 * rn)
    c = 1.5 * J2 * (RE * RE) / r2
    zz = 5 * z * z / r2
    return (k * x * (1 + c * (1 - zz)), k * y * (1 + c * (1 - zz)), k * z * (1 + c * (3 - zz)))


def geodetic_altitude_m(r_eci, t_s):
    """Altitude above the WGS-84 ellipsoid of an inertial position at time t_s (the
    inertial frame's x axis points at the prime meridian at t = 0)."""
    a = -OMEGA_E * t_s
    x = math.cos(a) * r_eci[0] - math.sin(a) * r_eci[1]
    y = math.sin(a) * r_eci[0] + math.cos(a) * r_eci[1]
    z = r_eci[2]
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - E2))
    h = 0.0
    for _ in range(5):
        n = RE / math.sqrt(1 - E2 * math.sin(lat) ** 2)
        h = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1 - E2 * n / (n + h)))
    return h


def earth_relative_speed(r, v):
    # v_rel = v - omega x r, omega = (0, 0, OMEGA_E)
    return math.sqrt((v[0] + OMEGA_E * r[1]) ** 2 + (v[1] - OMEGA_E * r[0]) ** 2 + v[2] ** 2)


def pressure_altitude_m(p_pa):
    """Geometric altitude of a static pressure in the US Standard Atmosphere 1976
    (layers up to 32 km)."""
    layers = [(0.0, 288.15, -0.0065, 101325.0), (11000.0, 216.65, 0.0, 22632.06),
              (20000.0, 216.65, 0.001, 5474.889)]
    g0, r_air = 9.80665, 287.053
    for hb, tb, lapse, pb in reversed(layers):
        if p_pa <= pb or hb == 0.0:
            if lapse == 0.0:
                h = hb - r_air * tb / g0 * math.log(p_pa / pb)
            else:
                h = hb + tb / lapse * ((p_pa / pb) ** (-r_air * lapse / g0) - 1)
            r0 = 6356766.0
            return r0 * h / (r0 - h)
    return 0.0


# ---------------------------------------------------------------- guidance and control
# What this flight computer knows of its vehicle (capsule-srcv.toml): centre of gravity
# and the RCS jets in RCS_ValveCmd bit order, position and thrust in the body frame (m,
# N); the trim aerodynamics; a density table (US Standard Atmosphere 1976, every 10 km).
CG_M = (-0.26, 0.0, 0.06)
JETS = [((-0.45, 0.0, 0.35), (0.0, -5.0, 0.0)), ((-0.45, 0.0, -0.35), (0.0, 5.0, 0.0)),
        ((-0.45, 0.0, 0.35), (0.0, 5.0, 0.0)), ((-0.45, 0.0, -0.35), (0.0, -5.0, 0.0)),
        ((-0.90, 0.0, 0.15), (0.0, 0.0, -5.0)), ((-0.90, 0.0, -0.15), (0.0, 0.0, 5.0)),
        ((-0.90, 0.15, 0.0), (0.0, -5.0, 0.0)), ((-0.90, -0.15, 0.0), (0.0, 5.0, 0.0))]
TRIM_ALPHA_RAD = math.pi / 8
LIFT_TO_DRAG = 0.15
BALLISTIC_KG_M2 = 316.0
RHO_TABLE = [1.225, 4.1351e-1, 8.8910e-2, 1.8410e-2, 3.9957e-3, 1.0269e-3, 3.0968e-4,
             8.2829e-5, 1.8458e-5, 3.416e-6, 5.604e-7, 9.708e-8, 2.222e-8, 8.152e-9,
             3.831e-9, 2.076e-9]
G_LIMIT = 3.8               # predicted deceleration the guidance keeps under, g
MAX_BANK_RAD = math.radians(170.0)
LATERAL_MIN_BANK_RAD = math.radians(30.0)
PREDICT_END_M = 12000.0     # the predictor stops near the drogue deployment
GUIDANCE_END_M_S = 500.0    # below this airspeed the bank is held
GUIDANCE_EVERY_S = 2.0


def add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def scale(a, k):
    return (a[0] * k, a[1] * k, a[2] * k)


def dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def unit(a):
    n = math.sqrt(dot(a, a))
    return scale(a, 1.0 / n) if n > 0 else a


def qconj(q):
    return (q[0], -q[1], -q[2], -q[3])


def rot_z(v, a):
    c, s = math.cos(a), math.sin(a)
    return (c * v[0] - s * v[1], s * v[0] + c * v[1], v[2])


def density_kg_m3(h):
    x = min(max(h / 10000.0, 0.0), 14.999)
    k = int(x)
    f = x - k
    return math.exp(math.log(RHO_TABLE[k]) * (1 - f) + math.log(RHO_TABLE[k + 1]) * f)


def altitude_quick_m(r):
    rn = math.sqrt(dot(r, r))
    return rn - RE * (1 - F_WGS * (r[2] / rn) ** 2)


def air_velocity(r, v):
    return (v[0] + OMEGA_E * r[1], v[1] - OMEGA_E * r[0], v[2])


def ecef_unit(lat_deg, lon_deg):
    la, lo = math.radians(lat_deg), math.radians(lon_deg)
    n = RE / math.sqrt(1 - E2 * math.sin(la) ** 2)
    return unit((n * math.cos(la) * math.cos(lo), n * math.cos(la) * math.sin(lo),
                 n * (1 - E2) * math.sin(la)))


def jet_mask(axis, sign):
    """The valves whose torque about the centre of gravity is mostly about body axis
    `axis` (0 x, 1 y, 2 z) in the direction `sign`."""
    mask = 0
    for k, (p, f) in enumerate(JETS):
        t = cross(sub(p, CG_M), f)
        main = max(range(3), key=lambda i: abs(t[i]))
        if main == axis and t[axis] * sign > 0:
            mask |= 1 << k
    return mask


def bank_rad(r, v, q):
    """Bank of the lift (body +z tilted by the trim angle) about the air-relative
    velocity: 0 lift up, positive lift to the right."""
    vh = unit(air_velocity(r, v))
    up = unit(r)
    l0 = unit(sub(up, scale(vh, dot(up, vh))))
    right = cross(vh, l0)
    lift = qrot(q, (-math.sin(TRIM_ALPHA_RAD), 0.0, math.cos(TRIM_ALPHA_RAD)))
    lift = sub(lift, scale(vh, dot(lift, vh)))
    return math.atan2(dot(lift, right), dot(lift, l0))


def wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


class Guidance:
    """Entry guidance by a numerical predictor-corrector (as the reference flight
    computer does it): every few seconds, integrate the point-mass entry from the
    navigated state to 12 km for a bank magnitude and find the one whose end point lies
    abeam the target; lower it (more lift up) while the predicted peak load exceeds
    3.8 g; reverse the bank's sign when the target lies beyond a deadband on the other
    side of the ground track. The bank is flown with the roll jets."""

    def __init__(self, lat_deg, lon_deg, background):
        self.target = ecef_unit(lat_deg, lon_deg)
        self.sign = 0.0
        self.magnitude = 0.0
        self.last_s = -1e9
        self.density_ratio = 1.0
        # Real time: the solution (about 0.1 s of Python) runs on a worker thread so
        # that the 100 Hz cycle keeps commanding the jets; lockstep: in the cycle, so
        # that runs repeat exactly.
        self.background = background
        self.worker = None

    def measure_drag(self, r, v, q, force_body):
        va = air_velocity(r, v)
        speed = math.sqrt(dot(va, va))
        if speed < 1.0:
            return
        drag = -dot(qrot(q, force_body), scale(va, 1.0 / speed))
        model = density_kg_m3(altitude_quick_m(r)) * speed * speed / (2 * BALLISTIC_KG_M2)
        if drag > 1.0 and model > 0.5:
            ratio = min(max(drag / model, 0.3), 3.0)
            self.density_ratio += 0.05 * (ratio - self.density_ratio)

    def predict(self, t0, r, v, magnitude):
        bank = magnitude * (self.sign or 1.0)
        sb, cb = math.sin(bank), math.cos(bank)

        def accel(r, v):
            va = air_velocity(r, v)
            speed = math.sqrt(dot(va, va))
            d = density_kg_m3(altitude_quick_m(r)) * self.density_ratio * speed * speed \
                / (2 * BALLISTIC_KG_M2)
            vh = scale(va, 1.0 / max(speed, 1e-3))
            up = unit(r)
            l0 = unit(sub(up, scale(vh, dot(up, vh))))
            right = cross(vh, l0)
            lift = add(scale(l0, cb), scale(right, sb))
            aero = add(scale(vh, -d), scale(lift, d * LIFT_TO_DRAG))
            return add(aero, gravity_eci(r)), d * math.sqrt(1 + LIFT_TO_DRAG ** 2) / 9.80665

        t, peak = t0, 0.0
        for _ in range(5000):
            h = altitude_quick_m(r)
            va = air_velocity(r, v)
            if dot(va, va) < 400.0 or h < PREDICT_END_M or t - t0 > 4000.0:
                break
            dt = 4.0 if h > 90000.0 else 1.0
            a1, g1 = accel(r, v)
            rm, vm = add(r, scale(v, dt / 2)), add(v, scale(a1, dt / 2))
            a2, g2 = accel(rm, vm)
            r, v, t = add(r, scale(vm, dt)), add(v, scale(a2, dt)), t + dt
            peak = max(peak, g1, g2)
        re = unit(rot_z(r, -OMEGA_E * t))
        ve = rot_z(air_velocity(r, v), -OMEGA_E * t)
        n = unit(cross(re, ve))
        ahead = dot(cross(re, self.target), n)
        return math.atan2(ahead, dot(re, self.target)) * RE, peak

    def update(self, t, r, v):
        if t - self.last_s < GUIDANCE_EVERY_S - 1e-9:
            return self.command()
        if self.background:
            if self.worker is None or not self.worker.is_alive():
                self.last_s = t
                self.worker = threading.Thread(target=self.solve, args=(t, r, v), daemon=True)
                self.worker.start()
        else:
            self.last_s = t
            self.solve(t, r, v)
        return self.command()

    def solve(self, t, r, v):
        va = air_velocity(r, v)
        speed = math.sqrt(dot(va, va))
        n = unit(cross(r, va))
        target_in = rot_z(self.target, OMEGA_E * t)
        crossrange = -math.asin(min(max(dot(target_in, n), -1.0), 1.0)) * RE
        side = math.copysign(1.0, crossrange) if crossrange else 1.0
        if self.sign == 0.0:
            self.sign = side
        if abs(crossrange) > 1000.0 + 12000.0 * (speed / 7400.0) ** 2 and side != self.sign:
            self.sign = side
            log(f"fc: bank reversal at t = {t:.0f} s, crossrange {crossrange / 1000:.1f} km")
        if speed < GUIDANCE_END_M_S:
            return
        # Longitudinal: secant steps on the magnitude for zero downrange error.
        lo, hi = 0.0, MAX_BANK_RAD
        d_lo, _ = self.predict(t, r, v, lo)
        d_hi, _ = self.predict(t, r, v, hi)
        if d_lo >= 0.0:
            mag = lo
        elif d_hi <= 0.0:
            mag = hi
        else:
            for _ in range(6):
                mid = lo + (hi - lo) * d_lo / (d_lo - d_hi)
                mid = min(max(mid, lo + 0.02 * (hi - lo)), hi - 0.02 * (hi - lo))
                d_mid, _ = self.predict(t, r, v, mid)
                if abs(d_mid) < 500.0:
                    lo = hi = mid
                    break
                if d_mid < 0.0:
                    lo, d_lo = mid, d_mid
                else:
                    hi, d_hi = mid, d_mid
            mag = 0.5 * (lo + hi)
        mag = max(mag, LATERAL_MIN_BANK_RAD * min(abs(crossrange) / 10000.0, 1.0))
        # Deceleration limit: more lift up until the predicted peak is under the limit.
        if self.predict(t, r, v, mag)[1] > G_LIMIT:
            lo, hi = 0.0, mag
            for _ in range(5):
                mid = 0.5 * (lo + hi)
                if self.predict(t, r, v, mid)[1] > G_LIMIT:
                    hi = mid
                else:
                    lo = mid
            mag = lo
        self.magnitude = mag

    def command(self):
        return self.magnitude * (self.sign or 1.0)


def bank_control(r, v, q, rate, bank_cmd):
    """Roll towards the commanded bank at up to 15 deg/s with the roll jets; pitch and
    yaw rates above 5 deg/s are damped (the capsule is statically stable in both)."""
    err = wrap(bank_cmd - bank_rad(r, v, q))
    max_rate = math.radians(15.0)
    roll_cmd = min(max(err * 0.6, -max_rate), max_rate)
    v_b = unit(qrot(qconj(q), air_velocity(r, v)))
    e = roll_cmd - dot(rate, v_b)
    mask = 0
    if abs(e) > math.radians(1.0):
        mask |= jet_mask(0, e)
    for axis in (1, 2):
        if abs(rate[axis]) > math.radians(5.0):
            mask |= jet_mask(axis, -rate[axis])
    return mask


# ---------------------------------------------------------------- navigation
class Nav:
    """Strapdown navigation in the inertial frame, started from the handover."""

    def __init__(self, clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.valid = False
        self.t_s = 0.0
        self.r = (0.0, 0.0, 0.0)
        self.v = (0.0, 0.0, 0.0)
        self.q = (1.0, 0.0, 0.0, 0.0)
        self.last_tag = None
        self.imu_valid = False
        self.imu_last = 0.0
        self.max_force = 0.0
        self.rate = (0.0, 0.0, 0.0)
        self.force = (0.0, 0.0, 0.0)

    def init(self, t_s, r, v, q):
        with self.lock:
            self.t_s, self.r, self.v, self.q = t_s, r, v, q
            self.last_tag = None
            self.valid = True

    def on_imu(self, tag_us, status, rate, force):
        self.imu_last = self.clock.now()
        self.imu_valid = status & 0x10 == 0
        f = math.sqrt(sum(c * c for c in force))
        self.max_force = max(self.max_force, f)
        if status & 0x10 == 0:
            self.rate, self.force = tuple(rate), tuple(force)
        with self.lock:
            if not self.valid or not self.imu_valid:
                self.last_tag = tag_us
                return
            if self.last_tag is None:
                self.last_tag = tag_us
                return
            dt = ((tag_us - self.last_tag) & 0xFFFFFFFF) * 1e-6
            self.last_tag = tag_us
            if dt <= 0 or dt > 0.1:
                return
            wx, wy, wz = rate
            ang = math.sqrt(wx * wx + wy * wy + wz * wz) * dt
            if ang > 1e-12:
                s = math.sin(ang / 2) / (ang / dt)
                dq = (math.cos(ang / 2), wx * s, wy * s, wz * s)
            else:
                dq = (1.0, wx * dt / 2, wy * dt / 2, wz * dt / 2)
            q = qmul(self.q, dq)
            n = math.sqrt(sum(c * c for c in q))
            self.q = tuple(c / n for c in q)
            a = qrot(self.q, force)
            g = gravity_eci(self.r)
            self.v = tuple(self.v[i] + (a[i] + g[i]) * dt for i in range(3))
            self.r = tuple(self.r[i] + self.v[i] * dt for i in range(3))
            self.t_s += dt

    def state(self):
        with self.lock:
            return self.valid, self.t_s, self.r, self.v

    def attitude(self):
        with self.lock:
            return self.q


class ImuDecoder:
    """IMU datagrams: A5 5A, id 01, length 34, CRC-16/IBM-3740 over bytes 2..37;
    resynchronises on the next A5 5A after anything that does not check."""

    def __init__(self, nav):
        self.nav = nav
        self.buf = bytearray()
        self.bad = 0

    def push(self, chunk):
        buf = self.buf
        buf += chunk
        while len(buf) >= 40:
            i = buf.find(b"\xa5\x5a")
            if i < 0:
                del buf[:-1]
                break
            if i > 0:
                del buf[:i]
                continue
            d = bytes(buf[:40])
            if d[2] != 0x01 or d[3] != 34 or binascii.crc_hqx(d[2:38], 0xFFFF) != struct.unpack_from("<H", d, 38)[0]:
                self.bad += 1
                del buf[:1]
                continue
            del buf[:40]
            _, status, tag = struct.unpack_from("<HHI", d, 4)
            raw = struct.unpack_from("<6i", d, 12)
            self.nav.on_imu(tag, status, tuple(x * 1e-6 for x in raw[:3]), tuple(x * 1e-5 for x in raw[3:]))


class NmeaDecoder:
    """NMEA 0183 sentences, checksum checked, bounded line length."""

    def __init__(self, gnss):
        self.gnss = gnss
        self.buf = b""

    def push(self, chunk):
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.buf = self.buf[-200:]
        for line in lines:
            line = line.strip()
            if not line.startswith(b"$") or b"*" not in line:
                continue
            body, _, ck = line[1:].partition(b"*")
            x = 0
            for b in body:
                x ^= b
            if ck[:2].upper() == b"%02X" % x:
                self.gnss.on_sentence(body.decode("ascii", "replace"))


def reader(port, decoder, stop):
    """Real time: feeds a serial line to its decoder as bytes arrive."""
    while not stop.is_set():
        chunk = port.read(port.in_waiting or 1)
        if chunk:
            decoder.push(chunk)


class Gnss:
    def __init__(self, clock):
        self.clock = clock
        self.fix = False
        self.alt_m = None
        self.speed_m_s = None
        self.vz_m_s = 0.0
        self.at = 0.0

    def on_sentence(self, s):
        fields = s.split(",")
        if fields[0].endswith("GGA"):
            if len(fields) > 9 and fields[6] not in ("", "0") and fields[9]:
                now = self.clock.now()
                alt = float(fields[9])
                if self.alt_m is not None and self.fix and now - self.at > 0.05:
                    self.vz_m_s = (alt - self.alt_m) / (now - self.at)
                self.alt_m, self.at, self.fix = alt, now, True
            else:
                self.fix = False
        elif fields[0].endswith("RMC") and len(fields) > 7 and fields[2] == "A" and fields[7]:
            self.speed_m_s = float(fields[7]) * 0.514444

    def fresh(self):
        return self.fix and self.clock.now() - self.at < 0.5


# ---------------------------------------------------------------- flight software
class Fc:
    def __init__(self, bus, db, clock, nav, gnss):
        self.bus, self.db, self.clock, self.nav, self.gnss = bus, db, clock, nav, gnss
        self.mode = PRE_SEPARATION
        self.handover = {}
        self.seq = 0
        self.pyro_counter = 0
        self.beacon_counter = 0
        self.baro_pa = None
        self.baro_ok = False
        self.splash_at = None
        self.low_since = None
        self.boot_s = None
        self.next_ident_s = None
        self.next_status_s = None
        self.guidance = None
        self.rcs_counter = 0
        self.rcs_mask = None
        self.cycles = 0

    def send(self, name, **signals):
        m = self.db.get_message_by_name(name)
        self.bus.send(can.Message(arbitration_id=m.frame_id, is_extended_id=False,
                                  data=m.encode(signals)))

    def set_mode(self, mode):
        if mode == self.mode:
            return
        log(f"fc: mode {self.mode} -> {mode} at t = {self.clock.now():.2f} s")
        self.send("FC_Event", FC_EventCode=MODE_CHANGE, FC_EventModeFrom=self.mode,
                  FC_EventModeTo=mode, FC_EventDetail=0,
                  FC_EventTime=min(max(round(self.clock.now(), 3), 0.0), 4294967.295))
        self.mode = mode

    def fire(self, mask):
        self.pyro_counter = (self.pyro_counter + 1) % 256
        self.send("Pyro_Command", Pyro_ArmKey=PYRO_ARM_KEY, Pyro_Arm=1, Pyro_FireMask=mask,
                  Pyro_CmdCounter=self.pyro_counter)

    def on_frame(self, msg):
        try:
            m = self.db.get_message_by_frame_id(msg.arbitration_id)
            vals = m.decode(msg.data, decode_choices=False)
        except (KeyError, ValueError, cantools.database.errors.DecodeError):
            return
        if m.name.startswith("HV_") or m.name.startswith("MSN_"):
            self.handover.update(vals)
            if m.name == "HV_StateTime":
                h = self.handover
                need = ("HV_PosX", "HV_PosY", "HV_PosZ", "HV_VelX", "HV_VelY", "HV_VelZ",
                        "HV_QuatW", "HV_QuatX", "HV_QuatY", "HV_QuatZ")
                if not all(k in h for k in need):
                    return
                q = (h["HV_QuatW"], h["HV_QuatX"], h["HV_QuatY"], h["HV_QuatZ"])
                n = math.sqrt(sum(c * c for c in q))
                t_s = h["HV_TimeUs"] * 1e-6
                # Real time: the handover's time is "now" on our time base (in lockstep
                # the ticks alone set the time).
                if not self.clock.lockstep:
                    self.clock.set(t_s)
                self.nav.init(t_s, (h["HV_PosX"], h["HV_PosY"], h["HV_PosZ"]),
                              (h["HV_VelX"], h["HV_VelY"], h["HV_VelZ"]), tuple(c / n for c in q))
                if "MSN_TargetLat" in h and self.guidance is None:
                    self.guidance = Guidance(h["MSN_TargetLat"], h["MSN_TargetLon"],
                                             background=not self.clock.lockstep)
                self.set_mode(int(h["HV_Mode"]))
        elif m.name == "Baro_Data":
            self.baro_ok = int(vals["Baro_Status"]) == 0
            if self.baro_ok:
                self.baro_pa = vals["Baro_Pressure"]

    def altitude_m(self):
        """GNSS when it has a fresh fix, else the barometer below 30 km, else inertial."""
        if self.gnss.fresh():
            # The last fix, carried forward at the climb rate between fixes.
            return self.gnss.alt_m + self.gnss.vz_m_s * (self.clock.now() - self.gnss.at)
        if self.baro_ok and self.baro_pa and self.baro_pa > 1200.0:
            return pressure_altitude_m(self.baro_pa)
        valid, t, r, _ = self.nav.state()
        return geodetic_altitude_m(r, t) if valid else None

    def speed_m_s(self):
        if self.gnss.fresh() and self.gnss.speed_m_s is not None:
            return math.hypot(self.gnss.speed_m_s, self.gnss.vz_m_s)
        valid, _, r, v = self.nav.state()
        return earth_relative_speed(r, v) if valid else None

    def cycle(self):
        """One 10 ms cycle: decide, then send what is due."""
        now = self.clock.now()
        if self.boot_s is None:
            self.boot_s = self.next_ident_s = self.next_status_s = now
        alt, speed = self.altitude_m(), self.speed_m_s()
        if self.mode == ENTRY and alt is not None and speed is not None:
            if (alt < DROGUE_BELOW_M and speed < DROGUE_SLOWER_THAN_M_S) or alt < DROGUE_LATEST_M:
                self.fire(DROGUE_PRIMARY)
                self.set_mode(DROGUE)
        elif self.mode == DROGUE and alt is not None and alt < MAIN_BELOW_M:
            # Arm and fire in one command; main out and drogue cut away together.
            self.fire(MAIN_PRIMARY | DROGUE_RELEASE)
            self.set_mode(MAIN)
        elif self.mode == MAIN:
            # The main's opening shock is a spike too: only near the water does one count.
            near_water = alt is not None and alt < SPLASH_NEAR_M
            spike = near_water and self.nav.max_force > SPLASH_SPIKE_M_S2
            if alt is not None and alt < SPLASH_REST_M:
                self.low_since = self.low_since if self.low_since is not None else now
            else:
                self.low_since = None
            if spike or (self.low_since is not None and now - self.low_since > 1.0):
                self.splash_at = now
                self.set_mode(SPLASHDOWN)
        elif self.mode == SPLASHDOWN and now - self.splash_at > 1.0:
            self.beacon_counter = (self.beacon_counter + 1) % 256
            self.send("Beacon_Command", Beacon_Activate=1, Beacon_CmdCounter=self.beacon_counter)
            self.set_mode(RECOVERY)
        self.nav.max_force = 0.0
        self.steer()
        # FC_Ident at start-up and at 1 Hz for 5 s; FC_Status at 10 Hz.
        if now >= self.next_ident_s and now - self.boot_s < 5.0:
            self.send("FC_Ident", FC_SwMajor=0, FC_SwMinor=1, FC_SwPatch=0, FC_BuildHash=0x5079FC00)
            self.next_ident_s += 1.0
        if now >= self.next_status_s - 1e-6:
            self.status(alt, speed)
            self.next_status_s = max(self.next_status_s + 0.1, now)

    def steer(self):
        """Entry: fly the guidance's bank with the RCS (RCS_Command at 50 Hz: the
        driver closes the valves 100 ms after the last command); afterwards, valves
        closed."""
        self.cycles += 1
        valid, t, r, v = self.nav.state()
        mask = 0
        if self.mode == ENTRY and valid and self.guidance is not None:
            q = self.nav.attitude()
            self.guidance.measure_drag(r, v, q, self.nav.force)
            mask = bank_control(r, v, q, self.nav.rate, self.guidance.update(t, r, v))
        elif self.rcs_mask in (None, 0):
            return
        if self.cycles % 2 == 0 or mask != self.rcs_mask:
            self.rcs_counter = (self.rcs_counter + 1) % 256
            self.send("RCS_Command", RCS_ValveCmd=mask, RCS_IsolateMask=0,
                      RCS_CmdCounter=self.rcs_counter)
            self.rcs_mask = mask

    def status(self, alt, speed):
        self.seq = (self.seq + 1) % 16
        imu_ok = self.nav.imu_valid and self.clock.now() - self.nav.imu_last < 0.1
        self.send("FC_Status", FC_Mode=self.mode, FC_SeqCounter=self.seq, FC_FaultFlags=0,
                  FC_EstAltitude=min(max(alt if alt is not None else 0.0, -1000.0), 261143.75),
                  FC_EstVelocity=min(round(speed or 0.0), 16383),
                  FC_NavValid=1 if self.nav.valid else 0, FC_GnssFix=1 if self.gnss.fresh() else 0,
                  FC_BaroValid=1 if self.baro_ok else 0, FC_ImuValid=1 if imu_ok else 0)


def read_exactly(port, n):
    """Lockstep: the bytes SIM_Sync says were written before the tick (the harness
    wrote them before it sent the tick, so they are on their way)."""
    out = bytearray()
    deadline = time.monotonic() + 5.0
    while len(out) < n:
        chunk = port.read(n - len(out))
        out += chunk
        if not chunk and time.monotonic() > deadline:
            raise OSError(f"serial line {port.port}: {len(out)} of {n} bytes within 5 s")
    return bytes(out)


def run_lockstep(bus, db, fc, imu, gps, imu_dec, nmea_dec):
    """The lockstep protocol (fixtures/icd/README.md, "Lockstep"): hold what arrives;
    on SIM_Sync note the serial byte counts; on SIM_Tick read each line up to them,
    apply CAN, then NMEA, then IMU, run the cycle at the tick's time, send, and answer
    SIM_Ack with the tick's time and step."""
    tick = db.get_message_by_name("SIM_Tick")
    sync = db.get_message_by_name("SIM_Sync")
    ack = db.get_message_by_name("SIM_Ack")
    held = []
    imu_target = gnss_target = 0
    imu_read = gnss_read = 0
    while True:
        msg = bus.recv(timeout=1.0)
        if msg is None:
            continue
        if msg.arbitration_id == sync.frame_id:
            v = sync.decode(msg.data)
            imu_target, gnss_target = int(v["SIM_ImuBytes"]), int(v["SIM_GnssBytes"])
        elif msg.arbitration_id == tick.frame_id:
            v = tick.decode(msg.data)
            imu_chunk = read_exactly(imu, imu_target - imu_read)
            gnss_chunk = read_exactly(gps, gnss_target - gnss_read)
            imu_read, gnss_read = imu_target, gnss_target
            fc.clock.set(v["SIM_TimeUs"] * 1e-6)
            for m in held:
                fc.on_frame(m)
            held.clear()
            nmea_dec.push(gnss_chunk)
            imu_dec.push(imu_chunk)
            fc.cycle()
            bus.send(can.Message(arbitration_id=ack.frame_id, is_extended_id=False, data=ack.encode(
                {"SIM_AckTimeUs": v["SIM_TimeUs"], "SIM_AckStep": v["SIM_Step"]})))
        else:
            held.append(msg)


def run_realtime(bus, fc, imu, gps, imu_dec, nmea_dec):
    stop = threading.Event()
    threading.Thread(target=reader, args=(imu, imu_dec, stop), daemon=True).start()
    threading.Thread(target=reader, args=(gps, nmea_dec, stop), daemon=True).start()
    # python-can's usual pattern: a notifier thread receives into a buffer.
    inbox = can.BufferedReader()
    notifier = can.Notifier(bus, [inbox], timeout=0.05)
    next_cycle = time.monotonic()
    try:
        while True:
            # 100 Hz: take what arrived, decide, send what is due.
            while (msg := inbox.get_message(timeout=0)) is not None:
                fc.on_frame(msg)
            fc.cycle()
            next_cycle += 0.01
            time.sleep(max(0.0, next_cycle - time.monotonic()))
    finally:
        stop.set()
        notifier.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--can", required=True, help="SLCAN device (e.g. /dev/ttyACM0 or /dev/pts/N)")
    ap.add_argument("--imu", required=True, help="IMU serial device (921600 baud)")
    ap.add_argument("--gnss", required=True, help="GNSS serial device (115200 baud)")
    ap.add_argument("--dbc", default="fixtures/icd/capsule.dbc", help="the ICD's DBC file")
    ap.add_argument("--bitrate", type=int, default=500000, help="CAN bit rate")
    ap.add_argument("--lockstep", action="store_true",
                    help="follow SIM_Tick / SIM_Ack (simulated benches only)")
    a = ap.parse_args()

    db = cantools.database.load_file(a.dbc)
    # Serial lines first, the CAN channel last: opening the channel is joining the bus,
    # and the harness may write the first cycle's bytes at once (opening a port with
    # pyserial flushes what is already waiting).
    imu = serial.Serial(a.imu, 921600, timeout=0.05)
    gps = serial.Serial(a.gnss, 115200, timeout=0.05)
    bus = can.Bus(interface="slcan", channel=a.can, bitrate=a.bitrate, sleep_after_open=0.05)
    clock = Clock(a.lockstep)
    nav = Nav(clock)
    gnss = Gnss(clock)
    fc = Fc(bus, db, clock, nav, gnss)
    imu_dec, nmea_dec = ImuDecoder(nav), NmeaDecoder(gnss)
    log(f"fc: up ({'lockstep' if a.lockstep else 'real time'})")
    try:
        if a.lockstep:
            run_lockstep(bus, db, fc, imu, gps, imu_dec, nmea_dec)
        else:
            run_realtime(bus, fc, imu, gps, imu_dec, nmea_dec)
    except (can.CanError, serial.SerialException, OSError) as e:
        # The harness closed the lines: the run is over.
        log(f"fc: link closed: {e}")
    except KeyboardInterrupt:
        pass
    finally:
        try:
            bus.shutdown()
        except (can.CanError, serial.SerialException, OSError):
            pass


if __name__ == "__main__":
    main()
