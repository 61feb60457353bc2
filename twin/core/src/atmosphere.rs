//! Atmosphere models: the U.S. Standard Atmosphere 1976 from -5 km to 1000 km, an
//! exponential atmosphere, and none; plus a layered wind profile.
//!
//! US76 (NOAA-S/T 76-1562, NASA-TM-X-74335, October 1976):
//! - below 86 km geometric: the seven geopotential layers of table 4 with the
//!   molecular-weight ratio M/M0 of table 8 between 80 and 86 km (kinetic temperature
//!   T = T_M M/M0);
//! - 86 to 1000 km: the published high-altitude formulation (section 1.3): kinetic
//!   temperature from eqs. 25-31 and the number densities of N2, O, O2, Ar, He and H
//!   from the diffusion equations 32-40 with the constants of tables 5-7. The integrals
//!   are evaluated once (trapezoid rule, 10 m steps) into a 100 m table of ln P and
//!   ln rho, interpolated linearly.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Air properties at a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AirState {
    /// Kinetic temperature, K.
    pub temperature_k: f64,
    /// Static pressure, Pa.
    pub pressure_pa: f64,
    /// Density, kg/m^3.
    pub density_kg_m3: f64,
    /// Speed of sound, m/s.
    pub speed_of_sound_m_s: f64,
}

impl AirState {
    /// Vacuum (density and pressure zero; speed of sound kept finite for Mach).
    pub const VACUUM: AirState = AirState {
        temperature_k: 0.0,
        pressure_pa: 0.0,
        density_kg_m3: 0.0,
        speed_of_sound_m_s: 300.0,
    };
}

/// Atmosphere model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Atmosphere {
    /// No air at all.
    None,
    /// U.S. Standard Atmosphere 1976.
    Us76,
    /// rho = rho0 exp(-h / H), isothermal at `temperature_k`.
    Exponential {
        /// Density at h = 0, kg/m^3.
        rho0_kg_m3: f64,
        /// Scale height, m.
        scale_height_m: f64,
        /// Isothermal temperature for pressure and speed of sound, K.
        temperature_k: f64,
    },
}

impl Atmosphere {
    /// Air at geometric altitude `h_m`, with the density multiplied by `density_scale`
    /// (1.0 nominal; dispersions and environment faults). The pressure is not scaled.
    #[inline]
    pub fn at(&self, h_m: f64, density_scale: f64) -> AirState {
        let mut a = match self {
            Atmosphere::None => return AirState::VACUUM,
            Atmosphere::Us76 => us76_fast(h_m),
            Atmosphere::Exponential {
                rho0_kg_m3,
                scale_height_m,
                temperature_k,
            } => {
                let rho = rho0_kg_m3 * (-h_m / scale_height_m).exp();
                let r_air = R_STAR / M0;
                AirState {
                    temperature_k: *temperature_k,
                    pressure_pa: rho * r_air * temperature_k,
                    density_kg_m3: rho,
                    speed_of_sound_m_s: (1.4 * r_air * temperature_k).sqrt(),
                }
            }
        };
        if density_scale != 1.0 {
            // A density dispersion at the local pressure (as for a colder or warmer air
            // mass): the static pressure, and so a barometric altimeter, is unaffected.
            a.density_kg_m3 *= density_scale;
        }
        a
    }
}

// ----- US76 constants (table 2) -----
const G0: f64 = 9.806_65;
const R_STAR: f64 = 8_314.32; // J/(kmol K)
const M0: f64 = 28.964_4; // kg/kmol
const R0_M: f64 = 6_356_766.0; // effective earth radius for geopotential
const N_A: f64 = 6.022_169e26; // 1/kmol
const K_B: f64 = 1.380_622e-23; // J/K
const GAMMA: f64 = 1.4;

/// Layer bases: geopotential height (m'), molecular-scale temperature (K), lapse (K/m').
const LAYERS: [(f64, f64, f64); 8] = [
    (0.0, 288.15, -0.0065),
    (11_000.0, 216.65, 0.0),
    (20_000.0, 216.65, 0.001),
    (32_000.0, 228.65, 0.0028),
    (47_000.0, 270.65, 0.0),
    (51_000.0, 270.65, -0.0028),
    (71_000.0, 214.65, -0.002),
    (84_852.0, 186.946, 0.0),
];

/// Table 8: M/M0 at geometric 80.0, 80.5, ..., 86.0 km.
const M_RATIO: [f64; 13] = [
    1.000_000, 0.999_996, 0.999_989, 0.999_971, 0.999_941, 0.999_909, 0.999_870, 0.999_829,
    0.999_786, 0.999_741, 0.999_694, 0.999_641, 0.999_579,
];

struct LowerLayers {
    base_pressure_pa: [f64; 8],
}

fn lower_layers() -> &'static LowerLayers {
    static L: OnceLock<LowerLayers> = OnceLock::new();
    L.get_or_init(|| {
        let mut p = [0.0; 8];
        p[0] = 101_325.0;
        for i in 1..8 {
            let (hb, tb, lb) = LAYERS[i - 1];
            p[i] = layer_pressure(p[i - 1], hb, tb, lb, LAYERS[i].0);
        }
        LowerLayers {
            base_pressure_pa: p,
        }
    })
}

#[inline]
fn layer_pressure(pb: f64, hb: f64, tb: f64, lb: f64, h: f64) -> f64 {
    let gmr = G0 * M0 / R_STAR;
    if lb == 0.0 {
        pb * (-gmr * (h - hb) / tb).exp()
    } else {
        pb * (tb / (tb + lb * (h - hb))).powf(gmr / lb)
    }
}

fn us76_lower(z_m: f64) -> AirState {
    let h = R0_M * z_m / (R0_M + z_m);
    let ll = lower_layers();
    let mut i = 0;
    while i + 1 < LAYERS.len() && h >= LAYERS[i + 1].0 {
        i += 1;
    }
    let (hb, tb, lb) = LAYERS[i];
    let tm = tb + lb * (h - hb);
    let p = layer_pressure(ll.base_pressure_pa[i], hb, tb, lb, h);
    let rho = p * M0 / (R_STAR * tm);
    let ratio = if z_m > 80_000.0 {
        let x = ((z_m - 80_000.0) / 500.0).min(12.0);
        let k = (x.floor() as usize).min(11);
        let f = x - k as f64;
        M_RATIO[k] + f * (M_RATIO[k + 1] - M_RATIO[k])
    } else {
        1.0
    };
    let t = tm * ratio;
    AirState {
        temperature_k: t,
        pressure_pa: p,
        density_kg_m3: rho,
        speed_of_sound_m_s: (GAMMA * R_STAR * tm / M0).sqrt(),
    }
}

// ----- Upper atmosphere (86-1000 km) -----
const Z7: f64 = 86_000.0;
const Z_TOP: f64 = 1_000_000.0;
const T7: f64 = 186.867_3;
const TABLE_DZ: f64 = 100.0;
const INTEGRATION_SUBSTEPS: usize = 10;

/// Kinetic temperature above 86 km (eqs. 25-31).
pub fn us76_upper_temperature_k(z: f64) -> f64 {
    if z <= 91_000.0 {
        T7
    } else if z <= 110_000.0 {
        let a = -19_942.9;
        263.190_5 - 76.323_2 * (1.0 - ((z - 91_000.0) / a).powi(2)).max(0.0).sqrt()
    } else if z <= 120_000.0 {
        240.0 + 0.012 * (z - 110_000.0)
    } else {
        let xi = (z - 120_000.0) * (R0_M + 120_000.0) / (R0_M + z);
        1000.0 - 640.0 * (-0.018_75e-3 * xi).exp()
    }
}

fn upper_dtdz(z: f64) -> f64 {
    if z < 91_000.0 {
        0.0
    } else if z < 110_000.0 {
        let a = -19_942.9;
        let x = (z - 91_000.0) / a;
        76.323_2 / a * x / (1.0 - x * x).max(1e-12).sqrt()
    } else if z <= 120_000.0 {
        0.012
    } else {
        let r = (R0_M + 120_000.0) / (R0_M + z);
        0.018_75e-3 * 640.0 * r * r * (-0.018_75e-3 * (z - 120_000.0) * r).exp()
    }
}

fn gravity_us76(z: f64) -> f64 {
    let r = R0_M / (R0_M + z);
    G0 * r * r
}

fn eddy_k(z: f64) -> f64 {
    if z < 95_000.0 {
        120.0
    } else if z < 115_000.0 {
        let d = z - 95_000.0;
        120.0 * (1.0 - 4e8 / (4e8 - d * d)).exp()
    } else {
        0.0
    }
}

/// Molecular weights (kg/kmol): N2, O, O2, Ar, He, H.
const M_SPECIES: [f64; 6] = [28.013_4, 15.999_4, 31.998_8, 39.948, 4.002_6, 1.007_97];

struct Diffusing {
    m: f64,
    a: f64,
    b: f64,
    alpha: f64,
    q_big: f64,
    u_big: f64,
    w_big: f64,
    // Second (lower) flux term, atomic oxygen only.
    q_small: f64,
    u_small: f64,
    w_small: f64,
}

// Table 6 and 7 (Q, U, W, q, u, w converted to m).
const O_SPEC: Diffusing = Diffusing {
    m: 15.999_4,
    a: 6.986e20,
    b: 0.75,
    alpha: 0.0,
    q_big: -5.809_644e-13,
    u_big: 56_903.11,
    w_big: 2.706_240e-14,
    q_small: -3.416_248e-12,
    u_small: 97_000.0,
    w_small: 5.008_765e-13,
};
const O2_SPEC: Diffusing = Diffusing {
    m: 31.998_8,
    a: 4.863e20,
    b: 0.75,
    alpha: 0.0,
    q_big: 1.366_212e-13,
    u_big: 86_000.0,
    w_big: 8.333_333e-14,
    q_small: 0.0,
    u_small: 0.0,
    w_small: 0.0,
};
const AR_SPEC: Diffusing = Diffusing {
    m: 39.948,
    a: 4.487e20,
    b: 0.87,
    alpha: 0.0,
    q_big: 9.434_079e-14,
    u_big: 86_000.0,
    w_big: 8.333_333e-14,
    q_small: 0.0,
    u_small: 0.0,
    w_small: 0.0,
};
const HE_SPEC: Diffusing = Diffusing {
    m: 4.002_6,
    a: 1.7e21,
    b: 0.691,
    alpha: -0.4,
    q_big: -2.457_369e-13,
    u_big: 86_000.0,
    w_big: 6.666_667e-13,
    q_small: 0.0,
    u_small: 0.0,
    w_small: 0.0,
};

/// Mean molecular weight used in the N2 equation and the eddy term: M0 up to 100 km,
/// M(N2) above (section 1.3.2).
fn m_mix(z: f64) -> f64 {
    if z <= 100_000.0 { M0 } else { M_SPECIES[0] }
}

/// Integrand of eq. 33 (1/m) for a diffusing species at height z, with background
/// number density `nb` for the molecular diffusion coefficient (eq. 8).
fn f_diffusing(s: &Diffusing, z: f64, nb: f64) -> f64 {
    let t = us76_upper_temperature_k(z);
    let g = gravity_us76(z);
    let dtdz = upper_dtdz(z);
    let mut f = if z < 115_000.0 {
        let d = s.a * (t / 273.15).powf(s.b) / nb;
        let k = eddy_k(z);
        g / (R_STAR * t) * d / (d + k) * (s.m + m_mix(z) * k / d + s.alpha * R_STAR * dtdz / g)
    } else {
        g / (R_STAR * t) * (s.m + s.alpha * R_STAR * dtdz / g)
    };
    if z <= 150_000.0 {
        let dz = z - s.u_big;
        f += s.q_big * dz * dz * (-s.w_big * dz * dz * dz).exp();
        if s.q_small != 0.0 && z <= s.u_small {
            let du = s.u_small - z;
            f += s.q_small * du * du * (-s.w_small * du * du * du).exp();
        }
    }
    f
}

struct UpperTable {
    ln_p: Vec<f64>,
    ln_rho: Vec<f64>,
}

fn upper_table() -> &'static UpperTable {
    static T: OnceLock<UpperTable> = OnceLock::new();
    T.get_or_init(build_upper_table)
}

fn build_upper_table() -> UpperTable {
    let n_out = ((Z_TOP - Z7) / TABLE_DZ).round() as usize + 1;
    let steps = (n_out - 1) * INTEGRATION_SUBSTEPS;
    let dz = TABLE_DZ / INTEGRATION_SUBSTEPS as f64;
    let z_at = |i: usize| Z7 + dz * i as f64;

    // Number densities on the fine grid (N2, O, O2, Ar, He), m^-3.
    let mut n = vec![[0.0f64; 5]; steps + 1];
    n[0] = [1.129_794e20, 8.6e16, 3.030_898e19, 1.351_400e18, 7.581_7e14];
    let mut int = [0.0f64; 5];
    let t0 = T7;
    let f_n2 = |z: f64| m_mix(z) * gravity_us76(z) / (R_STAR * us76_upper_temperature_k(z));
    let specs = [&O_SPEC, &O2_SPEC, &AR_SPEC, &HE_SPEC];
    for i in 1..=steps {
        let (za, zb) = (z_at(i - 1), z_at(i));
        let tb = us76_upper_temperature_k(zb);
        int[0] += 0.5 * (f_n2(za) + f_n2(zb)) * dz;
        let n2_b = n[0][0] * t0 / tb * (-int[0]).exp();
        let mut nb_new = [n2_b, 0.0, 0.0, 0.0, 0.0];
        // O and O2 diffuse through N2 (background N2 only).
        for (k, s) in specs.iter().enumerate().take(2) {
            let fa = f_diffusing(s, za, n[i - 1][0]);
            let fb = f_diffusing(s, zb, n2_b);
            int[k + 1] += 0.5 * (fa + fb) * dz;
            nb_new[k + 1] = n[0][k + 1] * t0 / tb * (-int[k + 1]).exp();
        }
        // Ar and He diffuse through N2 + O + O2.
        let bg_a = n[i - 1][0] + n[i - 1][1] + n[i - 1][2];
        let bg_b = nb_new[0] + nb_new[1] + nb_new[2];
        for (k, s) in specs.iter().enumerate().skip(2) {
            let fa = f_diffusing(s, za, bg_a);
            let fb = f_diffusing(s, zb, bg_b);
            int[k + 1] += 0.5 * (fa + fb) * dz;
            nb_new[k + 1] = n[0][k + 1] * t0 / tb * (-int[k + 1]).exp();
        }
        n[i] = nb_new;
    }

    // Atomic hydrogen (eqs. 39-40), 150-1000 km, referenced to 8e10 m^-3 at 500 km.
    let mut n_h = vec![0.0f64; steps + 1];
    let i150 = ((150_000.0 - Z7) / dz).round() as usize;
    let i500 = ((500_000.0 - Z7) / dz).round() as usize;
    let alpha_h = -0.25;
    let t11 = us76_upper_temperature_k(500_000.0);
    let f_tau = |z: f64| M_SPECIES[5] * gravity_us76(z) / (R_STAR * us76_upper_temperature_k(z));
    // tau(z) = integral from 500 km to z.
    let mut tau = vec![0.0f64; steps + 1];
    for i in (i500 + 1)..=steps {
        tau[i] = tau[i - 1] + 0.5 * (f_tau(z_at(i - 1)) + f_tau(z_at(i))) * dz;
    }
    for i in (i150..i500).rev() {
        tau[i] = tau[i + 1] - 0.5 * (f_tau(z_at(i)) + f_tau(z_at(i + 1))) * dz;
    }
    let phi = 7.2e11;
    let d_h = |i: usize| {
        let z = z_at(i);
        let t = us76_upper_temperature_k(z);
        let nb: f64 = n[i].iter().sum();
        3.305e21 * (t / 273.15).powf(0.5) / nb
    };
    let integrand = |i: usize| {
        let t = us76_upper_temperature_k(z_at(i));
        phi / d_h(i) * (t / t11).powf(1.0 + alpha_h) * tau[i].exp()
    };
    let mut acc = 0.0;
    n_h[i500] = 8.0e10;
    for i in (i150..i500).rev() {
        acc += 0.5 * (integrand(i) + integrand(i + 1)) * dz;
        let t = us76_upper_temperature_k(z_at(i));
        n_h[i] = (8.0e10 - acc) * (t11 / t).powf(1.0 + alpha_h) * (-tau[i]).exp();
    }
    for i in (i500 + 1)..=steps {
        let t = us76_upper_temperature_k(z_at(i));
        n_h[i] = 8.0e10 * (t11 / t).powf(1.0 + alpha_h) * (-tau[i]).exp();
    }

    let mut ln_p = Vec::with_capacity(n_out);
    let mut ln_rho = Vec::with_capacity(n_out);
    for j in 0..n_out {
        let i = j * INTEGRATION_SUBSTEPS;
        let z = z_at(i);
        let t = us76_upper_temperature_k(z);
        let ns = n[i];
        let total: f64 = ns.iter().sum::<f64>() + n_h[i];
        let mass: f64 = ns
            .iter()
            .zip(M_SPECIES.iter())
            .map(|(a, b)| a * b)
            .sum::<f64>()
            + n_h[i] * M_SPECIES[5];
        ln_p.push((total * K_B * t).ln());
        ln_rho.push((mass / N_A).ln());
    }
    UpperTable { ln_p, ln_rho }
}

fn us76_upper(z: f64) -> AirState {
    let tab = upper_table();
    let x = (z - Z7) / TABLE_DZ;
    let k = (x.floor().max(0.0) as usize).min(tab.ln_p.len() - 2);
    let f = x - k as f64;
    let lp = tab.ln_p[k] + f * (tab.ln_p[k + 1] - tab.ln_p[k]);
    let lr = tab.ln_rho[k] + f * (tab.ln_rho[k + 1] - tab.ln_rho[k]);
    let t = us76_upper_temperature_k(z);
    let p = lp.exp();
    let rho = lr.exp();
    // Speed of sound from the local mean molecular weight, M = rho R* T / P.
    let a = (GAMMA * p / rho).sqrt();
    AirState {
        temperature_k: t,
        pressure_pa: p,
        density_kg_m3: rho,
        speed_of_sound_m_s: a,
    }
}

/// US76 at geometric altitude `z_m`. Below -5 km the -5 km layer equations are
/// extrapolated; above 1000 km the air is vacuum.
pub fn us76(z_m: f64) -> AirState {
    if z_m < Z7 {
        us76_lower(z_m)
    } else if z_m <= Z_TOP {
        us76_upper(z_m)
    } else {
        AirState::VACUUM
    }
}

const FAST_Z0: f64 = -5_000.0;
const FAST_DZ: f64 = 20.0;

/// One 20 m interval of the fast table: values at its lower node and their changes
/// to the upper node (64 bytes: one cache line per lookup).
#[derive(Clone, Copy)]
struct FastNode {
    p_pa: f64,
    rho_kg_m3: f64,
    t_k: f64,
    a_m_s: f64,
    d_ln_p: f64,
    d_ln_rho: f64,
    d_t_k: f64,
    d_a_m_s: f64,
}

/// Largest |d ln P| or |d ln rho| over one 20 m interval (checked when the table is
/// built): keeps the series in [`exp_small`] exact to ~1e-15 relative.
const FAST_MAX_D_LN: f64 = 0.02;

fn fast_table() -> &'static [FastNode] {
    static T: OnceLock<Vec<FastNode>> = OnceLock::new();
    T.get_or_init(|| {
        let n = ((Z_TOP - FAST_Z0) / FAST_DZ).round() as usize + 1;
        let nodes: Vec<AirState> = (0..n).map(|i| us76(FAST_Z0 + FAST_DZ * i as f64)).collect();
        nodes
            .windows(2)
            .map(|w| {
                let (lo, hi) = (w[0], w[1]);
                let node = FastNode {
                    p_pa: lo.pressure_pa,
                    rho_kg_m3: lo.density_kg_m3,
                    t_k: lo.temperature_k,
                    a_m_s: lo.speed_of_sound_m_s,
                    d_ln_p: (hi.pressure_pa / lo.pressure_pa).ln(),
                    d_ln_rho: (hi.density_kg_m3 / lo.density_kg_m3).ln(),
                    d_t_k: hi.temperature_k - lo.temperature_k,
                    d_a_m_s: hi.speed_of_sound_m_s - lo.speed_of_sound_m_s,
                };
                assert!(
                    node.d_ln_p.abs() < FAST_MAX_D_LN && node.d_ln_rho.abs() < FAST_MAX_D_LN,
                    "US76 fast table: interval too coarse for the exp series"
                );
                node
            })
            .collect()
    })
}

/// exp(y) for |y| <= [`FAST_MAX_D_LN`]: Taylor series to y^6 (truncation below
/// 0.02^7 / 5040 = 2.5e-16 relative), a few multiply-adds instead of a libm call.
#[inline]
fn exp_small(y: f64) -> f64 {
    1.0 + y
        * (1.0
            + y * (1.0 / 2.0
                + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))))))
}

/// US76 from a 20 m table of the exact model ([`us76`]), interpolated linearly in
/// ln P, ln rho, T and a: the form used in the integration loop. The interpolation
/// error is below 1e-4 relative at the layer bases (kinks of T(z)), far smaller
/// inside layers, and 1e-3 within 20 m below 86 km where the two published
/// formulations meet (checked by a property test).
#[inline]
pub fn us76_fast(z_m: f64) -> AirState {
    if !(FAST_Z0..Z_TOP).contains(&z_m) {
        return us76(z_m);
    }
    let tab = fast_table();
    let x = (z_m - FAST_Z0) * (1.0 / FAST_DZ);
    // Through i64 (cheaper than f64 -> usize); x >= 0 here.
    let k = (x as i64 as usize).min(tab.len() - 1);
    let f = x - k as f64;
    let n = &tab[k];
    AirState {
        temperature_k: n.t_k + f * n.d_t_k,
        pressure_pa: n.p_pa * exp_small(f * n.d_ln_p),
        density_kg_m3: n.rho_kg_m3 * exp_small(f * n.d_ln_rho),
        speed_of_sound_m_s: n.a_m_s + f * n.d_a_m_s,
    }
}

/// One point of a layered wind profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindPoint {
    /// Geometric altitude, m.
    pub altitude_m: f64,
    /// Wind towards north, m/s.
    pub north_m_s: f64,
    /// Wind towards east, m/s.
    pub east_m_s: f64,
}

/// Wind as a function of altitude (linear between points, constant beyond the ends),
/// in the local north-east frame, carried with the rotating atmosphere.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindProfile {
    points: Vec<WindPoint>,
}

impl WindProfile {
    /// Builds a profile; points are sorted by altitude.
    pub fn new(mut points: Vec<WindPoint>) -> Self {
        points.sort_by(|a, b| a.altitude_m.total_cmp(&b.altitude_m));
        Self { points }
    }

    /// True when there is no wind.
    pub fn is_calm(&self) -> bool {
        self.points.is_empty()
    }

    /// (north, east) wind at altitude, m/s.
    pub fn at(&self, h_m: f64) -> (f64, f64) {
        let p = &self.points;
        match p.len() {
            0 => (0.0, 0.0),
            _ if h_m <= p[0].altitude_m => (p[0].north_m_s, p[0].east_m_s),
            _ if h_m >= p[p.len() - 1].altitude_m => {
                let l = p[p.len() - 1];
                (l.north_m_s, l.east_m_s)
            }
            _ => {
                let i = p.partition_point(|w| w.altitude_m <= h_m).max(1);
                let (a, b) = (p[i - 1], p[i]);
                let f = (h_m - a.altitude_m) / (b.altitude_m - a.altitude_m);
                (
                    a.north_m_s + f * (b.north_m_s - a.north_m_s),
                    a.east_m_s + f * (b.east_m_s - a.east_m_s),
                )
            }
        }
    }
}
