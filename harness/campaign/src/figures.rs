//! A run's figures, from what it recorded (closed loop) or from its case result
//! (physics).

use crate::result::Figures;
use capsule_runner::record::RunRecord;
use capsule_scenario::eval::great_circle_km;
use twin_core::case::CaseResult;
use twin_core::parachute::ChutePhase;

/// Figures of a closed-loop run; the miss distance is to `target_deg` (latitude,
/// longitude) when the scenario has one.
pub fn of_record(r: &RunRecord, target_deg: Option<(f64, f64)>) -> Figures {
    // The first snapshot with the drogue out of its bag: the runner takes one at every
    // cycle with an event, so this is the deployment cycle.
    let drogue = r.snapshots.iter().find(|s| {
        s.parachutes
            .iter()
            .any(|(n, p, _)| n == "drogue" && *p != ChutePhase::Stowed)
    });
    let miss = match (&r.contact, target_deg) {
        (Some(c), Some((lat, lon))) => Some(
            1e3 * great_circle_km(
                c.geodetic.latitude_rad,
                c.geodetic.longitude_rad,
                lat.to_radians(),
                lon.to_radians(),
            ),
        ),
        _ => None,
    };
    Figures {
        peak_decel_g: Some(r.peaks.load_factor_g),
        peak_heat_flux_w_m2: Some(r.peaks.heat_flux_w_m2),
        heat_load_j_m2: r.snapshots.last().map(|s| s.heat_load_j_m2),
        peak_dynamic_pressure_pa: Some(r.peaks.dynamic_pressure_pa),
        landing_miss_m: miss,
        landing_speed_m_s: r.contact.as_ref().map(|c| c.speed_m_s),
        drogue_mach: drogue.map(|s| s.mach),
        drogue_altitude_m: drogue.map(|s| s.altitude_m),
        drogue_dynamic_pressure_pa: drogue.map(|s| s.dynamic_pressure_pa),
    }
}

/// Figures of a physics run; the miss distance is to `reference_deg` (the nominal
/// case's landing point).
pub fn of_case(r: &CaseResult, reference_deg: Option<(f64, f64)>) -> Figures {
    let drogue = r.parachutes.iter().find(|c| c.name == "drogue");
    let landing = r.landing_latitude_deg.zip(r.landing_longitude_deg);
    let miss = landing.zip(reference_deg).map(|((la, lo), (ra, ro))| {
        1e3 * great_circle_km(
            la.to_radians(),
            lo.to_radians(),
            ra.to_radians(),
            ro.to_radians(),
        )
    });
    Figures {
        peak_decel_g: Some(r.peak_g),
        peak_heat_flux_w_m2: Some(r.peak_heat_flux_w_m2),
        heat_load_j_m2: Some(r.heat_load_j_m2),
        peak_dynamic_pressure_pa: Some(r.peak_dynamic_pressure_pa),
        landing_miss_m: miss,
        landing_speed_m_s: r.landing_speed_m_s,
        drogue_mach: drogue.map(|c| c.mach_deploy),
        drogue_altitude_m: drogue.map(|c| c.alt_deploy_m),
        drogue_dynamic_pressure_pa: None,
    }
}
