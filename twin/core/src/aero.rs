//! Aerodynamics: an axisymmetric coefficient database (CA, CN, Cm vs Mach and total
//! angle of attack, with pitch/yaw and roll damping), and a constant-Cd, fixed-L/D
//! option for simple cases.

use serde::{Deserialize, Serialize};

/// Aerodynamic database for an axisymmetric capsule.
///
/// Body frame: origin at the heat-shield nose, +x forward out of the nose. With the
/// air-relative velocity in the x-z plane at total angle of attack alpha (v_z >= 0):
/// CA = -Fx/(q S), CN = -Fz/(q S), Cm = My/(q S L) about `moment_reference_m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeroTable {
    /// Reference area S, m^2 (default: pi d^2 / 4 of the vehicle's reference diameter).
    #[serde(default)]
    pub reference_area_m2: Option<f64>,
    /// Reference length L, m (default: the reference diameter).
    #[serde(default)]
    pub reference_length_m: Option<f64>,
    /// Moment reference point in the body frame, m.
    #[serde(default)]
    pub moment_reference_m: [f64; 3],
    /// Mach breakpoints, increasing.
    pub mach: Vec<f64>,
    /// Total angle of attack breakpoints, deg, increasing, within [0, 180].
    pub alpha_deg: Vec<f64>,
    /// Axial force coefficient, `[mach][alpha]`.
    pub ca: Vec<Vec<f64>>,
    /// Normal force coefficient, `[mach][alpha]`.
    pub cn: Vec<Vec<f64>>,
    /// Pitching moment coefficient about the reference point, `[mach][alpha]`.
    pub cm: Vec<Vec<f64>>,
    /// Pitch/yaw damping Cmq + Cm_alpha_dot, per rad, normalised by q L / (2 V).
    pub cmq_per_rad: f64,
    /// Roll damping Clp, per rad, normalised by p L / (2 V).
    #[serde(default)]
    pub clp_per_rad: f64,
}

/// Coefficients at one flight condition.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Coefficients {
    /// Axial force coefficient.
    pub ca: f64,
    /// Normal force coefficient.
    pub cn: f64,
    /// Pitching moment coefficient about the moment reference point.
    pub cm: f64,
}

/// Breakpoint lookup: (index i, fraction f) with the value between `xs[i]` and
/// `xs[i+1]`; clamped at the ends.
#[inline]
pub fn bracket(xs: &[f64], x: f64) -> (usize, f64) {
    let n = xs.len();
    if n < 2 || x <= xs[0] {
        return (0, 0.0);
    }
    if x >= xs[n - 1] {
        return (n - 2, 1.0);
    }
    // Linear scan from a proportional guess: tables are short and often uniform.
    let guess = ((x - xs[0]) / (xs[n - 1] - xs[0]) * (n - 1) as f64) as usize;
    let mut i = guess.min(n - 2);
    while i > 0 && xs[i] > x {
        i -= 1;
    }
    while i + 2 < n && xs[i + 1] <= x {
        i += 1;
    }
    (i, (x - xs[i]) / (xs[i + 1] - xs[i]))
}

impl AeroTable {
    /// Bilinear interpolation at (Mach, total angle of attack in rad); clamped at the
    /// table edges.
    #[inline]
    pub fn lookup(&self, mach: f64, alpha_rad: f64) -> Coefficients {
        let (i, fm) = bracket(&self.mach, mach);
        let (j, fa) = bracket(&self.alpha_deg, alpha_rad.to_degrees());
        let bl = |t: &Vec<Vec<f64>>| {
            let a = t[i][j] + fa * (t[i][j + 1] - t[i][j]);
            let b = t[i + 1][j] + fa * (t[i + 1][j + 1] - t[i + 1][j]);
            a + fm * (b - a)
        };
        Coefficients {
            ca: bl(&self.ca),
            cn: bl(&self.cn),
            cm: bl(&self.cm),
        }
    }

    /// Checks shapes and monotonic breakpoints; `field` is the table's path.
    pub fn validate(&self, field: &str, checks: &mut crate::config::Checks) {
        let inc = |v: &[f64]| v.windows(2).all(|w| w[1] > w[0]) && v.iter().all(|x| x.is_finite());
        checks.require(
            self.mach.len() >= 2 && inc(&self.mach),
            format!("{field}.mach"),
            "expected at least two increasing, finite Mach numbers",
        );
        checks.require(
            self.alpha_deg.len() >= 2
                && inc(&self.alpha_deg)
                && self.alpha_deg[0] >= 0.0
                && self.alpha_deg[self.alpha_deg.len() - 1] <= 180.0,
            format!("{field}.alpha_deg"),
            "expected at least two increasing angles within [0, 180] deg",
        );
        for (name, t) in [("ca", &self.ca), ("cn", &self.cn), ("cm", &self.cm)] {
            let ok = t.len() == self.mach.len()
                && t.iter()
                    .all(|r| r.len() == self.alpha_deg.len() && r.iter().all(|x| x.is_finite()));
            checks.require(
                ok,
                format!("{field}.{name}"),
                format!(
                    "expected {} rows (one per Mach) of {} finite numbers (one per alpha)",
                    self.mach.len(),
                    self.alpha_deg.len()
                ),
            );
        }
        checks.all_in_range(&format!("{field}.mach"), &self.mach, 0.0, 100.0, "Mach");
        for (name, t) in [("ca", &self.ca), ("cn", &self.cn), ("cm", &self.cm)] {
            for (k, row) in t.iter().enumerate() {
                checks.all_in_range(
                    &format!("{field}.{name}[{k}]"),
                    row,
                    -100.0,
                    100.0,
                    "coefficient",
                );
            }
        }
        checks.in_range(
            &format!("{field}.cmq_per_rad"),
            self.cmq_per_rad,
            -1e3,
            1e3,
            "1/rad",
        );
        checks.in_range(
            &format!("{field}.clp_per_rad"),
            self.clp_per_rad,
            -1e3,
            1e3,
            "1/rad",
        );
        checks.all_in_range(
            &format!("{field}.moment_reference_m"),
            &self.moment_reference_m,
            -100.0,
            100.0,
            "m",
        );
        if let Some(s) = self.reference_area_m2 {
            checks.in_range(&format!("{field}.reference_area_m2"), s, 1e-6, 1e4, "m^2");
        }
        if let Some(l) = self.reference_length_m {
            checks.in_range(&format!("{field}.reference_length_m"), l, 1e-3, 100.0, "m");
        }
    }
}

/// One breakpoint axis compiled for fast lookup. On an axis of equal intervals the
/// interval index and fraction come straight from the scaled value. Otherwise a
/// uniform cell index maps a value to the interval holding its cell's start (cells
/// are no wider than the narrowest interval, so at most one step is left), and the
/// intervals' inverse widths turn the fraction's division into a product.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    x: Vec<f64>,
    inv_width: Vec<f64>,
    /// Cells per unit of the axis (equal intervals: the cells are the intervals).
    inv_cell: f64,
    /// Interval of each cell's start; empty on an axis of equal intervals.
    cell_to_interval: Vec<u32>,
    /// Equal intervals (to 1e-12 of the span).
    uniform: bool,
}

/// Most cells an axis gets (an axis whose narrowest interval is finer than 1/4096 of
/// its span scans a few more steps).
const MAX_CELLS: usize = 4096;

impl Axis {
    /// `x`: at least two increasing, finite breakpoints (checked by
    /// [`AeroTable::validate`]).
    fn new(x: Vec<f64>) -> Self {
        let n = x.len();
        let span = x[n - 1] - x[0];
        let min_width = x
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let inv_width = x.windows(2).map(|w| 1.0 / (w[1] - w[0])).collect();
        let uniform = x
            .windows(2)
            .all(|w| ((w[1] - w[0]) - span / (n - 1) as f64).abs() <= 1e-12 * span);
        let cells = if uniform {
            n - 1
        } else {
            ((span / min_width).ceil() as usize).clamp(1, MAX_CELLS)
        };
        let inv_cell = cells as f64 / span;
        let cell_to_interval = if uniform {
            Vec::new()
        } else {
            (0..cells)
                .map(|c| {
                    let start = x[0] + c as f64 / inv_cell;
                    (x.partition_point(|&b| b <= start).saturating_sub(1)).min(n - 2) as u32
                })
                .collect()
        };
        Self {
            x,
            inv_width,
            inv_cell,
            cell_to_interval,
            uniform,
        }
    }

    /// Same contract as [`bracket`] (NaN gives the first breakpoint).
    #[inline]
    fn bracket(&self, v: f64) -> (usize, f64) {
        let x = &self.x;
        let n = x.len();
        if v <= x[0] || v.is_nan() {
            return (0, 0.0);
        }
        if v >= x[n - 1] {
            return (n - 2, 1.0);
        }
        // Through i64: f64 -> usize saturates with several more instructions (v > x[0]
        // here, so the value is not negative).
        let t = (v - x[0]) * self.inv_cell;
        let c = t as i64 as usize;
        if self.uniform {
            // Interval and fraction from the scaled value itself (no dependent load).
            let i = c.min(n - 2);
            return (i, t - i as f64);
        }
        let c = c.min(self.cell_to_interval.len() - 1);
        let mut i = self.cell_to_interval[c] as usize;
        // Rounding at a cell edge can leave the start one interval off either way.
        while i > 0 && x[i] > v {
            i -= 1;
        }
        while i + 2 < n && x[i + 1] <= v {
            i += 1;
        }
        (i, (v - x[i]) * self.inv_width[i])
    }
}

/// An [`AeroTable`] compiled for the integration loop: the same bilinear interpolation
/// (to floating-point rounding), with the three coefficients of each node side by side,
/// angles in radians and no search or division per lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct AeroGrid {
    mach: Axis,
    alpha_rad: Axis,
    /// `[ca, cn, cm]` at `[i_mach * n_alpha + j_alpha]`.
    nodes: Vec<[f64; 3]>,
}

impl AeroGrid {
    /// Compiles a table that passed [`AeroTable::validate`] (at least two increasing
    /// breakpoints per axis and matching row lengths; [`crate::twin::Twin::new`]
    /// checks this before compiling).
    ///
    /// # Panics
    /// On a table that would fail validation.
    pub fn new(table: &AeroTable) -> Self {
        let n_alpha = table.alpha_deg.len();
        let mut nodes = Vec::with_capacity(table.mach.len() * n_alpha);
        for i in 0..table.mach.len() {
            for j in 0..n_alpha {
                nodes.push([table.ca[i][j], table.cn[i][j], table.cm[i][j]]);
            }
        }
        Self {
            mach: Axis::new(table.mach.clone()),
            alpha_rad: Axis::new(table.alpha_deg.iter().map(|a| a.to_radians()).collect()),
            nodes,
        }
    }

    /// Bilinear interpolation at (Mach, total angle of attack in rad); clamped at the
    /// table edges, like [`AeroTable::lookup`].
    #[inline]
    pub fn lookup(&self, mach: f64, alpha_rad: f64) -> Coefficients {
        let (i, fm) = self.mach.bracket(mach);
        let (j, fa) = self.alpha_rad.bracket(alpha_rad);
        let n_alpha = self.alpha_rad.x.len();
        let row0 = i * n_alpha + j;
        let row1 = row0 + n_alpha;
        let (a0, a1, b0, b1) = (
            self.nodes[row0],
            self.nodes[row0 + 1],
            self.nodes[row1],
            self.nodes[row1 + 1],
        );
        let bl = |k: usize| {
            let a = a0[k] + fa * (a1[k] - a0[k]);
            let b = b0[k] + fa * (b1[k] - b0[k]);
            a + fm * (b - a)
        };
        Coefficients {
            ca: bl(0),
            cn: bl(1),
            cm: bl(2),
        }
    }
}

/// Trimmed aerodynamics at one Mach number (for 3-DOF flight of a table vehicle).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrimPoint {
    /// Mach number.
    pub mach: f64,
    /// Trim total angle of attack, rad.
    pub alpha_rad: f64,
    /// Drag coefficient at trim.
    pub cd: f64,
    /// Lift coefficient at trim (magnitude, towards the lift side).
    pub cl: f64,
}

/// Trim of the table about a CG: for each Mach, the first stable zero of the pitching
/// moment about the CG, searching alpha from 0 upward in 0.05 deg steps.
pub fn trim_table(table: &AeroTable, cg_m: [f64; 3], reference_length_m: f64) -> Vec<TrimPoint> {
    let mref = table.moment_reference_m;
    let cm_cg = |mach: f64, a: f64| {
        let c = table.lookup(mach, a);
        // M_cg = M_ref + (r_ref - r_cg) x F, F = (-CA, 0, -CN) (per q S), y component.
        let dx = mref[0] - cg_m[0];
        let dz = mref[2] - cg_m[2];
        c.cm + (dz * (-c.ca) - dx * (-c.cn)) / reference_length_m
    };
    table
        .mach
        .iter()
        .map(|&m| {
            let step = 0.05f64.to_radians();
            let mut a0 = 0.0;
            let mut c0 = cm_cg(m, 0.0);
            let mut alpha = 0.0;
            for k in 1..=1800 {
                let a1 = step * k as f64;
                let c1 = cm_cg(m, a1);
                if c0 > 0.0 && c1 <= 0.0 {
                    alpha = a0 + (a1 - a0) * c0 / (c0 - c1);
                    break;
                }
                if k == 1 && c0 <= 0.0 && c1 <= c0 {
                    // Stable at zero incidence.
                    alpha = 0.0;
                    break;
                }
                a0 = a1;
                c0 = c1;
            }
            let c = table.lookup(m, alpha);
            let (s, co) = alpha.sin_cos();
            TrimPoint {
                mach: m,
                alpha_rad: alpha,
                cd: c.ca * co + c.cn * s,
                cl: c.ca * s - c.cn * co,
            }
        })
        .collect()
}

/// Interpolates a trim table at a Mach number.
pub fn trim_at(trim: &[TrimPoint], mach: f64) -> TrimPoint {
    let n = trim.len();
    if n == 1 || mach <= trim[0].mach {
        return trim[0];
    }
    if mach >= trim[n - 1].mach {
        return trim[n - 1];
    }
    let i = trim
        .partition_point(|t| t.mach <= mach)
        .saturating_sub(1)
        .min(n - 2);
    let (a, b) = (trim[i], trim[i + 1]);
    let f = (mach - a.mach) / (b.mach - a.mach);
    TrimPoint {
        mach,
        alpha_rad: a.alpha_rad + f * (b.alpha_rad - a.alpha_rad),
        cd: a.cd + f * (b.cd - a.cd),
        cl: a.cl + f * (b.cl - a.cl),
    }
}
