//! Sensor models: error statistics, determinism, outages and the fault layer.

use twin_core::glam::DVec3;
use twin_core::rng::SimRng;
use twin_core::sensors::fault::{FaultLayer, FaultSpec, SensorFault};
use twin_core::sensors::{
    BaroModel, BaroSpec, Battery, BatterySpec, FixQuality, GnssModel, GnssSpec, ImuModel, ImuSpec,
    PyroChannel, SensorTruth,
};

fn truth(t_s: f64) -> SensorTruth {
    SensorTruth {
        t_s,
        specific_force_body_m_s2: DVec3::new(-20.0, 0.5, 3.0),
        rate_body_rad_s: DVec3::new(0.01, -0.02, 0.3),
        angular_accel_body_rad_s2: DVec3::ZERO,
        latitude_rad: 0.5,
        longitude_rad: -2.0,
        altitude_m: 30_000.0,
        velocity_ned_m_s: DVec3::new(300.0, 100.0, 50.0),
        airspeed_m_s: 320.0,
        static_pressure_pa: 1_197.0,
        static_temperature_k: 226.5,
        heat_shield_surface_k: 900.0,
        bondline_k: 320.0,
        backshell_k: 300.0,
    }
}

fn imu_only_noise() -> ImuSpec {
    let mut s = ImuSpec::default();
    for a in [&mut s.gyro, &mut s.accel] {
        a.turn_on_bias_sigma = 0.0;
        a.bias_instability = 0.0;
        a.scale_factor_ppm = 0.0;
        a.misalignment_rad = 0.0;
        a.resolution = 0.0;
    }
    s
}

#[test]
fn imu_white_noise_matches_noise_density() {
    // sigma per sample = noise density * sqrt(output rate).
    let spec = imu_only_noise();
    let mut imu = ImuModel::new(&spec, 7);
    let n = 20_000;
    let mut sum = [0.0f64; 2];
    let mut sum2 = [0.0f64; 2];
    let tr = truth(0.0);
    for k in 0..n {
        let s = imu.sample(&SensorTruth {
            t_s: k as f64 * 1e-3,
            ..tr
        });
        let e = [
            s.rate_rad_s[0] - tr.rate_body_rad_s.x,
            s.specific_force_m_s2[2] - tr.specific_force_body_m_s2.z,
        ];
        for i in 0..2 {
            sum[i] += e[i];
            sum2[i] += e[i] * e[i];
        }
    }
    let expect = [
        spec.gyro.noise_density * 1000f64.sqrt(),
        spec.accel.noise_density * 1000f64.sqrt(),
    ];
    for i in 0..2 {
        let mean = sum[i] / n as f64;
        let sd = (sum2[i] / n as f64 - mean * mean).sqrt();
        // 20000 samples: the standard error of sigma is 0.5 %; allow 3 %.
        assert!(
            (sd / expect[i] - 1.0).abs() < 0.03,
            "channel {i}: sd {sd} vs {}",
            expect[i]
        );
        assert!(
            mean.abs() < 4.0 * expect[i] / (n as f64).sqrt(),
            "channel {i}: mean {mean}"
        );
    }
}

#[test]
fn imu_saturates_and_flags_it() {
    let spec = ImuSpec::default();
    let mut imu = ImuModel::new(&spec, 1);
    let tr = SensorTruth {
        specific_force_body_m_s2: DVec3::new(-600.0, 0.0, 0.0),
        ..truth(0.0)
    };
    let s = imu.sample(&tr);
    assert!(s.saturated);
    assert!((s.specific_force_m_s2[0] + spec.accel.range).abs() < 1e-9);
}

#[test]
fn imu_same_seed_same_samples_other_seed_differs() {
    let spec = ImuSpec::default();
    let run = |seed| {
        let mut imu = ImuModel::new(&spec, seed);
        (0..100)
            .map(|k| imu.sample(&truth(k as f64 * 1e-3)).rate_rad_s)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn imu_poll_follows_its_rate() {
    let spec = ImuSpec {
        rate_hz: 250.0,
        ..ImuSpec::default()
    };
    let mut imu = ImuModel::new(&spec, 3);
    let count = (0..1000)
        .filter(|k| imu.poll(&truth(*k as f64 * 1e-3)).is_some())
        .count();
    assert_eq!(count, 250);
}

#[test]
fn gnss_has_no_fix_in_plasma_blackout_and_reacquires_after_a_delay() {
    let spec = GnssSpec::default();
    let mut g = GnssModel::new(&spec, 5);
    let mut outputs = Vec::new();
    for k in 0..40_000 {
        let t = k as f64 * 1e-3;
        // Blackout conditions for the first 10 s, then subsonic at 30 km.
        let tr = if t < 10.0 {
            SensorTruth {
                altitude_m: 70_000.0,
                airspeed_m_s: 6_000.0,
                ..truth(t)
            }
        } else {
            truth(t)
        };
        if let Some(f) = g.poll(&tr) {
            outputs.push(f);
        }
    }
    assert!(
        (395..=401).contains(&outputs.len()),
        "10 Hz over 40 s: {}",
        outputs.len()
    );
    for f in &outputs {
        let expect_fix = f.t_valid_s >= 10.0 + spec.reacquisition_s;
        assert_eq!(
            f.quality == FixQuality::Fix3d,
            expect_fix,
            "at {}",
            f.t_valid_s
        );
        assert!((f.t_output_s - f.t_valid_s - spec.latency_s).abs() < 1e-12);
        if f.quality == FixQuality::NoFix {
            assert_eq!(f.satellites, 0);
        } else {
            assert!((f.altitude_m - 30_000.0).abs() < 6.0 * spec.vertical_sigma_m);
        }
    }
}

#[test]
fn gnss_cocom_limits_cut_the_fix() {
    let spec = GnssSpec {
        max_altitude_m: 18_000.0,
        max_speed_m_s: 515.0,
        reacquisition_s: 0.0,
        ..GnssSpec::default()
    };
    let g = GnssModel::new(&spec, 1);
    assert!(g.outage(&truth(0.0)), "30 km is above the 18 km limit");
    let low = SensorTruth {
        altitude_m: 5_000.0,
        velocity_ned_m_s: DVec3::new(10.0, 0.0, 5.0),
        airspeed_m_s: 11.0,
        ..truth(0.0)
    };
    assert!(!g.outage(&low));
}

#[test]
fn baro_clamps_to_its_range_and_quantises() {
    let spec = BaroSpec {
        noise_pa: 0.0,
        ..BaroSpec::default()
    };
    let mut b = BaroModel::new(&spec, 2);
    let s = b
        .poll(&SensorTruth {
            static_pressure_pa: 3.7,
            ..truth(0.0)
        })
        .expect("first sample due");
    assert_eq!(s.pressure_pa, spec.range_pa[0]);
    let s = b
        .poll(&SensorTruth {
            static_pressure_pa: 1_197.4,
            ..truth(1.0)
        })
        .expect("due");
    assert_eq!(s.pressure_pa, 1_197.0);
}

#[test]
fn battery_voltage_sags_under_load_and_with_a_brown_out() {
    let spec = BatterySpec::default();
    let mut b = Battery::new(&spec);
    b.step(1.0, 0.0);
    let v0 = b.sample().voltage_v;
    b.step(1.0, 10.0);
    let v1 = b.sample().voltage_v;
    // 10 A through the internal resistance, plus 1.7 mV of charge drawn in that second.
    assert!(
        (v0 - v1 - 10.0 * spec.internal_resistance_ohm).abs() < 3e-3,
        "{v0} -> {v1}"
    );
    b.fault_bus_limit_v = Some(17.0);
    assert_eq!(b.sample().voltage_v, 17.0);
    // A limit above the loaded voltage changes nothing.
    b.fault_bus_limit_v = Some(40.0);
    assert_eq!(b.sample().voltage_v, v1);
}

#[test]
fn pyro_without_continuity_does_not_fire() {
    let mut p = PyroChannel::new("drogue_primary");
    assert!(p.continuity());
    p.open_circuit = true;
    assert!(!p.continuity());
    assert!(!p.fire());
    let mut q = PyroChannel::new("drogue_backup");
    assert!(q.fire());
    assert!(!q.continuity(), "a fired bridgewire reads open");
}

#[test]
fn fault_layer_kinds_act_in_their_window() {
    let mut f = FaultLayer::new(SimRng::new(1, "faults"));
    f.add(FaultSpec {
        channel: "imu.gyro_x".into(),
        fault: SensorFault::Stuck,
        start_s: 1.0,
        end_s: Some(2.0),
    });
    f.add(FaultSpec {
        channel: "baro.*".into(),
        fault: SensorFault::Bias { value: 100.0 },
        start_s: 0.0,
        end_s: None,
    });
    f.add(FaultSpec {
        channel: "tc.heat_shield".into(),
        fault: SensorFault::Drift { rate_per_s: 2.0 },
        start_s: 5.0,
        end_s: None,
    });
    f.add(FaultSpec {
        channel: "gnss.altitude".into(),
        fault: SensorFault::Dropout,
        start_s: 3.0,
        end_s: Some(4.0),
    });
    f.add(FaultSpec {
        channel: "power.voltage".into(),
        fault: SensorFault::Scale { factor: 0.5 },
        start_s: 0.0,
        end_s: None,
    });
    assert_eq!(f.apply("imu.gyro_x", 0.5, 0.1), Some(0.1));
    assert_eq!(f.apply("imu.gyro_x", 1.0, 0.2), Some(0.2));
    assert_eq!(
        f.apply("imu.gyro_x", 1.5, 0.7),
        Some(0.2),
        "stuck at the first value in the window"
    );
    assert_eq!(
        f.apply("imu.gyro_x", 2.0, 0.9),
        Some(0.9),
        "released after the window"
    );
    assert_eq!(
        f.apply("imu.gyro_y", 1.5, 0.7),
        Some(0.7),
        "other channels untouched"
    );
    assert_eq!(f.apply("baro.pressure", 0.0, 1000.0), Some(1100.0));
    assert_eq!(f.apply("tc.heat_shield", 7.5, 300.0), Some(305.0));
    assert_eq!(f.apply("gnss.altitude", 3.5, 1.0), None);
    assert_eq!(f.apply("gnss.altitude", 4.5, 1.0), Some(1.0));
    assert_eq!(f.apply("power.voltage", 1.0, 28.0), Some(14.0));
}

#[test]
fn fault_layer_latency_and_noise() {
    let mut f = FaultLayer::new(SimRng::new(9, "faults"));
    f.add(FaultSpec {
        channel: "baro.pressure".into(),
        fault: SensorFault::Latency { delay_s: 0.5 },
        start_s: 1.0,
        end_s: None,
    });
    let mut out = Vec::new();
    for k in 0..30 {
        let t = k as f64 * 0.1;
        out.push(f.apply("baro.pressure", t, t * 10.0));
    }
    // At t = 2.0 the value is the one from t = 1.5.
    assert_eq!(out[20], Some(15.0));
    assert_eq!(out[5], Some(5.0), "no delay before the start");
    let mut g = FaultLayer::new(SimRng::new(9, "faults"));
    g.add(FaultSpec {
        channel: "x".into(),
        fault: SensorFault::Noise { sigma: 2.0 },
        start_s: 0.0,
        end_s: None,
    });
    let n = 20_000;
    let s2: f64 = (0..n)
        .map(|_| g.apply("x", 0.0, 0.0).unwrap_or(0.0).powi(2))
        .sum::<f64>()
        / n as f64;
    assert!((s2.sqrt() - 2.0).abs() < 0.06, "noise sigma {}", s2.sqrt());
}
