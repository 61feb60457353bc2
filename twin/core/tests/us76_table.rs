//! US Standard Atmosphere 1976 against its published table.
//!
//! Reference values: U.S. Standard Atmosphere, 1976, NOAA-S/T 76-1562 (NASA-TM-X-74335),
//! Part 4, Table I (geometric altitude, SI units): temperature T (K), pressure P (Pa),
//! density rho (kg/m^3), as printed (5 significant figures for P and rho below 86 km,
//! 4 for rho above 86 km).

use twin_core::atmosphere::us76;

/// (altitude m, molecular-scale temperature T_M K, P Pa, rho kg/m^3) from Table I.
/// The kinetic temperature is T = T_M (M/M0), with M/M0 from Table 8 (`m_ratio`).
const LOWER: &[(f64, f64, f64, f64)] = &[
    (0.0, 288.150, 1.01325e5, 1.2250),
    (1_000.0, 281.651, 8.9876e4, 1.1117),
    (5_000.0, 255.676, 5.4048e4, 7.3643e-1),
    (11_000.0, 216.774, 2.2700e4, 3.6480e-1),
    (20_000.0, 216.650, 5.5293e3, 8.8910e-2),
    (32_000.0, 228.490, 8.8906e2, 1.3555e-2),
    (47_000.0, 269.680, 1.1585e2, 1.4965e-3),
    (51_000.0, 270.650, 7.0458e1, 9.0690e-4),
    (71_000.0, 216.846, 4.4795e0, 7.1965e-5),
    (80_000.0, 198.639, 1.0524e0, 1.8458e-5),
    (84_000.0, 190.841, 5.3105e-1, 9.6940e-6),
    (85_500.0, 187.920, 4.0802e-1, 7.5641e-6),
    (86_000.0, 186.946, 3.7338e-1, 6.9580e-6),
];

/// 86-120 km, same table.
const UPPER: &[(f64, f64, f64, f64)] = &[
    (88_000.0, 186.87, 2.6173e-1, 4.875e-6),
    (90_000.0, 186.87, 1.8359e-1, 3.416e-6),
    (92_500.0, 187.08, 1.1798e-1, 2.188e-6),
    (95_000.0, 188.42, 7.5966e-2, 1.393e-6),
    (97_500.0, 191.04, 4.9122e-2, 8.842e-7),
    (100_000.0, 195.08, 3.2011e-2, 5.604e-7),
    (110_000.0, 240.00, 7.1042e-3, 9.708e-8),
    (120_000.0, 360.00, 2.5382e-3, 2.222e-8),
];

/// Above 120 km (not required by the verification plan; checked at 1 %).
const HIGH: &[(f64, f64, f64, f64)] = &[
    (130_000.0, 469.27, 1.2505e-3, 8.152e-9),
    (150_000.0, 634.39, 4.5422e-4, 2.076e-9),
    (200_000.0, 854.56, 8.4736e-5, 2.541e-10),
    (300_000.0, 976.01, 8.7704e-6, 1.916e-11),
    (400_000.0, 995.83, 1.4518e-6, 2.803e-12),
    (1_000_000.0, 1000.0, 7.5138e-9, 3.561e-15),
];

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Table 8 of the standard, M/M0 at the altitudes used above (1 below 80 km).
fn m_ratio(z: f64) -> f64 {
    match z as i64 {
        84_000 => 0.999_786,
        85_500 => 0.999_641,
        86_000 => 0.999_579,
        _ => 1.0,
    }
}

fn check(rows: &[(f64, f64, f64, f64)], tol: f64, molecular_temperature: bool) {
    for &(z, t, p, rho) in rows {
        let t = if molecular_temperature {
            t * m_ratio(z)
        } else {
            t
        };
        let a = us76(z);
        assert!(
            rel(a.temperature_k, t) < tol,
            "T at {z} m: {} vs table {t}",
            a.temperature_k
        );
        assert!(
            rel(a.pressure_pa, p) < tol,
            "P at {z} m: {} vs table {p} ({:.2e})",
            a.pressure_pa,
            rel(a.pressure_pa, p)
        );
        assert!(
            rel(a.density_kg_m3, rho) < tol,
            "rho at {z} m: {} vs table {rho} ({:.2e})",
            a.density_kg_m3,
            rel(a.density_kg_m3, rho)
        );
    }
}

#[test]
fn us76_matches_table_up_to_86_km_within_0_01_percent() {
    check(LOWER, 1e-4, true);
}

#[test]
fn us76_matches_table_86_to_120_km_within_0_5_percent() {
    check(UPPER, 5e-3, false);
}

#[test]
fn us76_matches_table_above_120_km_within_1_percent() {
    check(HIGH, 1e-2, false);
}

#[test]
fn us76_is_continuous_across_86_km() {
    let below = us76(85_999.999);
    let above = us76(86_000.001);
    assert!(rel(below.pressure_pa, above.pressure_pa) < 1e-4);
    assert!(rel(below.density_kg_m3, above.density_kg_m3) < 1e-3);
}

#[test]
fn sea_level_speed_of_sound_is_340_294() {
    // Table I: 340.294 m/s at sea level.
    assert!((us76(0.0).speed_of_sound_m_s - 340.294).abs() < 1e-3);
}
