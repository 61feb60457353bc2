//! The FC's strapdown navigation against the twin's truth: IMU datagrams are produced
//! from the physics core's sensor model and the ICD codec, exactly as the harness will
//! send them, for the first 330 s of the nominal entry (into the deceleration pulse, above 3 g).

use capsule_fc::nav::{Nav, NavState, altitude_m};
use capsule_icd::imu::ImuDatagram;
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::sensors::{ImuModel, ImuSpec};
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

fn fly(spec: &ImuSpec, seconds: f64) -> (f64, f64, f64) {
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let e = EntryState {
        altitude_m: 120_000.0,
        speed_m_s: 7_400.0,
        flight_path_angle_rad: -1.6f64.to_radians(),
        heading_rad: 45f64.to_radians(),
        latitude_rad: 20f64.to_radians(),
        longitude_rad: -160f64.to_radians(),
        relative_to_atmosphere: true,
        bank_rad: 60f64.to_radians(),
    };
    let init = e.to_body_state(&opts.planet, &veh);
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut imu = ImuModel::new(spec, 7);
    let mut nav = Nav::new();
    let s = twin.state();
    nav.init(NavState {
        t_s: 0.0,
        position_m: s.position_eci_m,
        velocity_m_s: s.velocity_eci_m_s,
        inertial_from_body: s.eci_from_body,
    });
    let mut counter = 0u16;
    let mut peak_g: f64 = 0.0;
    loop {
        let truth = twin.sensor_truth();
        if let Some(sample) = imu.poll(&truth) {
            let d = ImuDatagram {
                counter,
                status: 0,
                time_us: (truth.t_s * 1e6).round() as u32,
                rate_rad_s: sample.rate_rad_s,
                specific_force_m_s2: sample.specific_force_m_s2,
                temperature_c: sample.temperature_k - 273.15,
            };
            counter = counter.wrapping_add(1);
            nav.on_imu(&ImuDatagram::decode(&d.encode()).expect("wire round trip"));
        }
        peak_g = peak_g.max(twin.load_factor_g());
        if twin.time_s() >= seconds {
            break;
        }
        twin.step();
    }
    let est = nav.state().expect("initialised");
    let s = twin.state();
    let dr = (est.position_m - s.position_eci_m).length();
    let dv = (est.velocity_m_s - s.velocity_eci_m_s).length();
    let dh = (altitude_m(est.position_m) - twin.environment().altitude_m).abs();
    assert!(
        peak_g > 3.0,
        "the run reached the deceleration pulse ({peak_g} g)"
    );
    assert_eq!(nav.rejected, 0);
    assert!(
        nav.samples as f64 >= seconds * 1000.0,
        "every datagram integrated: {}",
        nav.samples
    );
    eprintln!(
        "position error {dr:.3} m, velocity error {dv:.4} m/s, altitude error {dh:.3} m, peak {peak_g:.2} g"
    );
    (dr, dv, dh)
}

fn ideal() -> ImuSpec {
    let mut s = ImuSpec::default();
    for a in [&mut s.gyro, &mut s.accel] {
        a.noise_density = 0.0;
        a.turn_on_bias_sigma = 0.0;
        a.bias_instability = 0.0;
        a.scale_factor_ppm = 0.0;
        a.misalignment_rad = 0.0;
        a.resolution = 0.0;
    }
    s
}

#[test]
fn strapdown_with_an_ideal_imu_tracks_truth_through_entry() {
    let (dr, dv, dh) = fly(&ideal(), 330.0);
    // Only the datagram quantisation (1e-6 rad/s, 1e-5 m/s^2) and the integration error
    // remain: metres after 120 s at 7.4 km/s.
    assert!(dr < 5.0, "position error {dr:.3} m");
    assert!(dv < 0.1, "velocity error {dv:.4} m/s");
    assert!(
        dh < 5.0,
        "altitude error {dh:.3} m (includes the FC's own geodesy)"
    );
}

#[test]
fn strapdown_with_the_vehicle_imu_drifts_as_its_error_budget_says() {
    // Tactical-grade errors (2 mg turn-on accelerometer bias, 5 deg/h gyro bias; seed 7):
    // the drift after 330 s (measured: 278 m, 5.3 m/s) must stay within the budget that
    // the GNSS and baro updates then bound.
    let (dr, dv, _) = fly(&ImuSpec::default(), 330.0);
    assert!(dr < 1_000.0, "position error {dr:.1} m");
    assert!(dv < 20.0, "velocity error {dv:.2} m/s");
}

/// The nominal entry with the vehicle's IMU (seed 7) and its GNSS receiver (plasma
/// blackout above 4.5 km/s between 40 and 95 km, 12 s to reacquire): returns the
/// velocity error (m/s) at the end of the blackout (just before the first fix after it)
/// and `after_s` later, and the fixes used and rejected.
fn fly_with_gnss(after_s: f64, use_gnss: bool) -> (f64, f64, u64, u64) {
    use twin_core::sensors::{FixQuality, GnssModel, GnssSpec};
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let e = EntryState {
        altitude_m: 120_000.0,
        speed_m_s: 7_400.0,
        flight_path_angle_rad: -1.6f64.to_radians(),
        heading_rad: 45f64.to_radians(),
        latitude_rad: 20f64.to_radians(),
        longitude_rad: -160f64.to_radians(),
        relative_to_atmosphere: true,
        bank_rad: 60f64.to_radians(),
    };
    let init = e.to_body_state(&opts.planet, &veh);
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut imu = ImuModel::new(&ImuSpec::default(), 7);
    let mut gnss = GnssModel::new(&GnssSpec::default(), 7);
    let mut nav = Nav::new();
    let s = twin.state();
    nav.init(NavState {
        t_s: 0.0,
        position_m: s.position_eci_m,
        velocity_m_s: s.velocity_eci_m_s,
        inertial_from_body: s.eci_from_body,
    });
    let vel_err = |nav: &Nav, twin: &Twin| {
        (nav.state().expect("nav").velocity_m_s - twin.state().velocity_eci_m_s).length()
    };
    let mut counter = 0u16;
    let mut had_fix = false;
    let mut lost_fix = false;
    let mut at_reacquisition: Option<(f64, f64)> = None;
    loop {
        let truth = twin.sensor_truth();
        if let Some(sample) = imu.poll(&truth) {
            let d = ImuDatagram {
                counter,
                status: 0,
                time_us: (truth.t_s * 1e6).round() as u32,
                rate_rad_s: sample.rate_rad_s,
                specific_force_m_s2: sample.specific_force_m_s2,
                temperature_c: sample.temperature_k - 273.15,
            };
            counter = counter.wrapping_add(1);
            nav.on_imu(&ImuDatagram::decode(&d.encode()).expect("wire round trip"));
        }
        if let Some(fix) = gnss.poll(&truth) {
            if fix.quality == FixQuality::NoFix {
                lost_fix |= had_fix;
            } else {
                had_fix = true;
                if lost_fix && at_reacquisition.is_none() {
                    at_reacquisition = Some((truth.t_s, vel_err(&nav, &twin)));
                }
                if use_gnss {
                    nav.gnss_update(
                        truth.t_s,
                        fix.latitude_rad.to_degrees(),
                        fix.longitude_rad.to_degrees(),
                        fix.altitude_m,
                        true,
                    );
                }
            }
        }
        if let Some((t0, _)) = at_reacquisition
            && truth.t_s >= t0 + after_s
        {
            break;
        }
        assert!(twin.time_s() < 1_000.0, "the fix came back");
        twin.step();
    }
    let (_, dv0) = at_reacquisition.expect("reacquired");
    (dv0, vel_err(&nav, &twin), nav.gnss_used, nav.gnss_rejected)
}

#[test]
fn gnss_fixes_after_the_blackout_correct_the_inertial_drift() {
    // Inertial only: the drift through the blackout and the rest of the pulse stays.
    let (_, dv_inertial, used, _) = fly_with_gnss(20.0, false);
    assert_eq!(used, 0);
    // Aided: the filter's covariance grew through the blackout as the drift did, so
    // the first fixes after it are accepted (not gated out as a jump) and within 20 s
    // the velocity is back to the metre-per-second level.
    let (dv_blackout, dv_aided, used, rejected) = fly_with_gnss(20.0, true);
    eprintln!(
        "velocity error: {dv_blackout:.2} m/s at reacquisition; 20 s later {dv_aided:.3} m/s aided, {dv_inertial:.2} m/s inertial; fixes used {used}, rejected {rejected}"
    );
    assert_eq!(rejected, 0, "no good fix rejected");
    assert!(dv_aided < 1.0, "aided velocity error {dv_aided:.3} m/s");
    assert!(
        dv_inertial > 5.0 * dv_aided,
        "inertial {dv_inertial:.2} m/s vs aided {dv_aided:.3} m/s"
    );
}
