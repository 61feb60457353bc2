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

/// The nominal entry (120 km, 7.4 km/s, -1.6 deg, bank 60 deg) and a navigator
/// initialised on its truth.
fn nominal_entry() -> (Twin, Nav) {
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
    let twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut nav = Nav::new();
    let s = twin.state();
    nav.init(NavState {
        t_s: 0.0,
        position_m: s.position_eci_m,
        velocity_m_s: s.velocity_eci_m_s,
        inertial_from_body: s.eci_from_body,
    });
    (twin, nav)
}

/// Polls the IMU model at the twin's truth and, when a sample is due, passes it to the
/// navigator through the ICD codec, as the harness sends it.
fn feed_imu(imu: &mut ImuModel, twin: &Twin, nav: &mut Nav, counter: &mut u16) {
    let truth = twin.sensor_truth();
    if let Some(sample) = imu.poll(&truth) {
        let d = ImuDatagram {
            counter: *counter,
            status: 0,
            time_us: (truth.t_s * 1e6).round() as u32,
            rate_rad_s: sample.rate_rad_s,
            specific_force_m_s2: sample.specific_force_m_s2,
            temperature_c: sample.temperature_k - 273.15,
        };
        *counter = counter.wrapping_add(1);
        nav.on_imu(&ImuDatagram::decode(&d.encode()).expect("wire round trip"));
    }
}

fn fly(spec: &ImuSpec, seconds: f64) -> (f64, f64, f64) {
    let (mut twin, mut nav) = nominal_entry();
    let mut imu = ImuModel::new(spec, 7);
    let mut counter = 0u16;
    let mut peak_g: f64 = 0.0;
    loop {
        feed_imu(&mut imu, &twin, &mut nav, &mut counter);
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

/// What [`fly_with_gnss`] measured: velocity error (m/s) and the filter's velocity
/// uncertainty (1 sigma, m/s) just before the first fix after the blackout, the
/// velocity error `after_s` later, and the fixes used and rejected.
struct Reacquisition {
    dv_at_m_s: f64,
    sigma_v_at_m_s: f64,
    dv_after_m_s: f64,
    used: u64,
    rejected: u64,
}

/// The nominal entry with the vehicle's IMU (seed 7) and its GNSS receiver (plasma
/// blackout above 4.5 km/s between 40 and 95 km, 12 s to reacquire), the fixes given
/// to the navigator when `use_gnss`.
fn fly_with_gnss(after_s: f64, use_gnss: bool) -> Reacquisition {
    use twin_core::sensors::{FixQuality, GnssModel, GnssSpec};
    let (mut twin, mut nav) = nominal_entry();
    let mut imu = ImuModel::new(&ImuSpec::default(), 7);
    let mut gnss = GnssModel::new(&GnssSpec::default(), 7);
    let vel_err = |nav: &Nav, twin: &Twin| {
        (nav.state().expect("nav").velocity_m_s - twin.state().velocity_eci_m_s).length()
    };
    let mut counter = 0u16;
    let mut had_fix = false;
    let mut lost_fix = false;
    let mut at_reacquisition: Option<(f64, f64, f64)> = None;
    loop {
        feed_imu(&mut imu, &twin, &mut nav, &mut counter);
        let truth = twin.sensor_truth();
        if let Some(fix) = gnss.poll(&truth) {
            if fix.quality == FixQuality::NoFix {
                lost_fix |= had_fix;
            } else {
                had_fix = true;
                if lost_fix && at_reacquisition.is_none() {
                    let (_, sigma_v) = nav.sigma_position_velocity();
                    at_reacquisition = Some((truth.t_s, vel_err(&nav, &twin), sigma_v));
                }
                if use_gnss {
                    nav.gnss_update(
                        fix.latitude_rad.to_degrees(),
                        fix.longitude_rad.to_degrees(),
                        fix.altitude_m,
                        true,
                    );
                }
            }
        }
        if let Some((t0, _, _)) = at_reacquisition
            && truth.t_s >= t0 + after_s
        {
            break;
        }
        assert!(twin.time_s() < 1_000.0, "the fix came back");
        twin.step();
    }
    let (_, dv_at_m_s, sigma_v_at_m_s) = at_reacquisition.expect("reacquired");
    Reacquisition {
        dv_at_m_s,
        sigma_v_at_m_s,
        dv_after_m_s: vel_err(&nav, &twin),
        used: nav.gnss_used,
        rejected: nav.gnss_rejected,
    }
}

#[test]
fn gnss_fixes_after_the_blackout_correct_the_inertial_drift() {
    // Inertial only: the drift through the blackout and the rest of the pulse stays.
    let inertial = fly_with_gnss(20.0, false);
    assert_eq!(inertial.used, 0);
    // Aided: the filter's covariance grew through the blackout as the drift did (its
    // velocity sigma covers the actual error), so the first fixes after it are
    // accepted (not gated out as a jump) and within 20 s the velocity is back under
    // a metre per second.
    let aided = fly_with_gnss(20.0, true);
    eprintln!(
        "velocity error: {:.2} m/s at reacquisition (filter sigma {:.2} m/s); 20 s later {:.3} m/s aided, {:.2} m/s inertial; fixes used {}, rejected {}",
        aided.dv_at_m_s,
        aided.sigma_v_at_m_s,
        aided.dv_after_m_s,
        inertial.dv_after_m_s,
        aided.used,
        aided.rejected
    );
    assert!(
        aided.sigma_v_at_m_s > aided.dv_at_m_s,
        "over-confident: sigma {:.2} m/s, error {:.2} m/s",
        aided.sigma_v_at_m_s,
        aided.dv_at_m_s
    );
    assert_eq!(aided.rejected, 0, "no good fix rejected");
    assert!(
        aided.dv_after_m_s < 1.0,
        "aided velocity error {:.3} m/s",
        aided.dv_after_m_s
    );
    assert!(
        inertial.dv_after_m_s > 5.0 * aided.dv_after_m_s,
        "inertial {:.2} m/s vs aided {:.3} m/s",
        inertial.dv_after_m_s,
        aided.dv_after_m_s
    );
}
