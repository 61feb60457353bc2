//! The viewer renders known snapshots headless (an off-screen target: no window, no
//! display; Mesa's software Vulkan on a machine without a GPU) and the frames show
//! what the snapshots say: not blank, the capsule at the centre of the chase camera
//! with the heating glow when the heat flux is high and without it when it is not,
//! and the HUD with the snapshot's altitude.
//!
//! Needs a Vulkan (or GL) driver: required when `HIL_REQUIRE_PEERS=1` (CI installs
//! `mesa-vulkan-drivers`), else a machine without one skips, saying so.

use std::path::Path;
use std::process::Command;
use twin_stream::{Avionics, Chute, Header, Record, Snapshot};

fn ecef(lat_deg: f64, lon_deg: f64, h_m: f64) -> [f64; 3] {
    let (a, e2) = (6_378_137.0, 6.694_379_990_14e-3);
    let (la, lo) = (lat_deg.to_radians(), lon_deg.to_radians());
    let n: f64 = a / (1.0 - e2 * la.sin().powi(2)).sqrt();
    [
        (n + h_m) * la.cos() * lo.cos(),
        (n + h_m) * la.cos() * lo.sin(),
        (n * (1.0 - e2) + h_m) * la.sin(),
    ]
}

/// A snapshot over the equator at longitude 0, flying east (+y in ECEF) with the heat
/// shield (body +x) forward: `ecef_from_body` turns +x to +y.
fn snap(t_s: f64, altitude_m: f64, heat_flux_w_m2: f64) -> Record {
    let h = std::f64::consts::FRAC_PI_4;
    Record::Snapshot(Box::new(Snapshot {
        t_s,
        phase: "entry".into(),
        position_ecef_m: ecef(0.0, 0.0, altitude_m),
        velocity_ecef_m_s: [0.0, 6_000.0, -300.0],
        ecef_from_body_xyzw: [0.0, 0.0, h.sin(), h.cos()],
        latitude_deg: 0.0,
        longitude_deg: 0.0,
        altitude_m,
        airspeed_m_s: 6_000.0,
        mach: 20.0,
        dynamic_pressure_pa: 12_000.0,
        load_factor_g: 3.5,
        heat_flux_w_m2,
        heat_shield_surface_k: 1_900.0,
        bank_deg: 60.0,
        parachutes: vec![Chute {
            name: "drogue".into(),
            phase: "stowed".into(),
            drag_area_m2: 0.0,
        }],
        avionics: Avionics {
            mode: Some("ENTRY".into()),
            est_altitude_m: Some(altitude_m + 150.0),
            nav_valid: Some(true),
            gnss_fix: Some(false),
            ..Avionics::default()
        },
        ..Snapshot::default()
    }))
}

fn pixels(p: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let d = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(p).expect("png written"),
    ));
    let mut r = d.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size().expect("size")];
    let info = r.next_frame(&mut buf).expect("png data");
    let ch = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(ch)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

/// Mean of R - G over a centred box of `frac` of the frame.
fn centre_red_minus_green(w: u32, h: u32, px: &[[u8; 3]], frac: f64) -> f64 {
    let (bw, bh) = ((w as f64 * frac) as u32, (h as f64 * frac) as u32);
    let (x0, y0) = ((w - bw) / 2, (h - bh) / 2);
    let mut s = 0.0;
    for y in y0..y0 + bh {
        for x in x0..x0 + bw {
            let p = px[(y * w + x) as usize];
            s += f64::from(p[0]) - f64::from(p[1]);
        }
    }
    s / f64::from(bw * bh)
}

fn variance(px: &[[u8; 3]]) -> f64 {
    let l: Vec<f64> = px
        .iter()
        .map(|p| f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2]))
        .collect();
    let m = l.iter().sum::<f64>() / l.len() as f64;
    l.iter().map(|x| (x - m).powi(2)).sum::<f64>() / l.len() as f64
}

#[test]
fn known_snapshots_render_where_the_camera_puts_them_with_the_hud() {
    let dir = tempfile::tempdir().expect("tmp");
    let stream = dir.path().join("twin.jsonl");
    let mut h = Header::new("SCN-R", "render test", "lockstep", "replay");
    h.target_deg = Some((1.0, 1.0));
    let recs = [h]
        .into_iter()
        .map(Record::Header)
        .chain([snap(0.0, 61_234.0, 1.2e6), snap(10.0, 40_000.0, 0.0)]);
    let text: String = recs.map(|r| r.to_line()).collect();
    std::fs::write(&stream, text).expect("writes");
    let out = dir.path().join("frames");
    let o = Command::new(env!("CARGO_BIN_EXE_capsule-view"))
        .args([
            "--replay",
            &stream.display().to_string(),
            "--screenshot",
            "0,10",
        ])
        .args(["--out", &out.display().to_string(), "--size", "320x180"])
        .output()
        .expect("the viewer runs");
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        let no_gpu =
            err.contains("adapter") || err.contains("Vulkan") || err.contains("render device");
        if no_gpu && std::env::var("HIL_REQUIRE_PEERS").as_deref() != Ok("1") {
            eprintln!("SKIPPED: no render device here (install mesa-vulkan-drivers): {err}");
            return;
        }
        panic!("the viewer failed: {}\n{err}", o.status);
    }
    let (w, hgt, hot) = pixels(&out.join("frame-0.0.png"));
    let (_, _, cold) = pixels(&out.join("frame-10.0.png"));
    assert_eq!((w, hgt), (320, 180));
    assert!(
        variance(&hot) > 100.0 && variance(&cold) > 100.0,
        "frames are not blank"
    );
    // The capsule is at the centre of the chase camera: glowing (the plasma sheath and
    // the shield's glow are red-magenta) at 1.2 MW/m^2, grey-white without heating.
    let hot_rg = centre_red_minus_green(w, hgt, &hot, 0.12);
    let cold_rg = centre_red_minus_green(w, hgt, &cold, 0.12);
    eprintln!("centre R-G: {hot_rg:.1} at 1.2 MW/m2, {cold_rg:.1} without heating");
    assert!(
        hot_rg > cold_rg + 10.0,
        "no glow at the centre: R-G {hot_rg:.1} hot, {cold_rg:.1} cold"
    );
    assert!(cold_rg < 5.0, "red without heating: R-G {cold_rg:.1}");
    // The HUD: its text is the snapshot's, and the panel (top left) is drawn.
    let hud = std::fs::read_to_string(out.join("frame-0.0.hud.txt")).expect("hud text");
    assert!(hud.contains("altitude 61.2 km (avionics 61.4 km)"), "{hud}");
    assert!(hud.contains("avionics mode ENTRY"), "{hud}");
    let panel: Vec<[u8; 3]> = (10..60)
        .flat_map(|y| (10..150).map(move |x| (y, x)))
        .map(|(y, x)| hot[(y * w + x) as usize])
        .collect();
    let lit = panel.iter().filter(|p| p[1] > 150).count();
    assert!(
        lit > 30,
        "no HUD text drawn in the top-left panel ({lit} light pixels)"
    );
}
