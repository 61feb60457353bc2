//! `hil run --key-frames` puts the twin viewer's headless renders of the run's key
//! moments into the bundle and its report: entry interface, peak heating, drogue, main
//! and splashdown, in time order, as PNG frames that are not blank, hashed in
//! `SHA256SUMS` (the bundle still verifies) and shown in `report.html`.
//!
//! Needs the viewer beside `hil` (`cargo test --workspace` builds it) and a Vulkan
//! driver: both required when `HIL_REQUIRE_PEERS=1` (CI), else missing ones skip,
//! saying so.
mod common;
use std::path::Path;
use std::process::Command;

fn require() -> bool {
    std::env::var("HIL_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// Width, height and the luminance variance of a PNG.
fn png_figures(p: &Path) -> (u32, u32, f64) {
    let d = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(p).expect("png written"),
    ));
    let mut r = d.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size().expect("size")];
    let info = r.next_frame(&mut buf).expect("png data");
    let ch = info.color_type.samples();
    let l: Vec<f64> = buf[..info.buffer_size()]
        .chunks(ch)
        .map(|c| f64::from(c[0]) + f64::from(c[1]) + f64::from(c[2]))
        .collect();
    let m = l.iter().sum::<f64>() / l.len() as f64;
    let var = l.iter().map(|x| (x - m).powi(2)).sum::<f64>() / l.len() as f64;
    (info.width, info.height, var)
}

#[test]
fn key_frames_are_rendered_into_the_bundle_and_its_report() {
    let hil = Path::new(env!("CARGO_BIN_EXE_hil"));
    if !hil.with_file_name("capsule-view").is_file() && std::env::var_os("CAPSULE_VIEW").is_none() {
        assert!(
            !require(),
            "the viewer is not built beside {}: run `cargo test --workspace`",
            hil.display()
        );
        eprintln!("SKIPPED: the viewer is not built (cargo build -p capsule-view)");
        return;
    }
    let d = common::test_dir("keyframes");
    let out = d.path().join("runs");
    let o = Command::new(hil)
        .args(["run", "scenarios/nominal-entry.toml", "--key-frames"])
        .args(["--out", out.to_str().expect("utf8")])
        .current_dir(common::root())
        .output()
        .expect("hil runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    if stderr.contains("no key frames") {
        let no_gpu = stderr.contains("adapter")
            || stderr.contains("Vulkan")
            || stderr.contains("render device")
            || stderr.contains("could not render");
        assert!(no_gpu && !require(), "key frames failed: {stderr}");
        eprintln!("SKIPPED: no render device here (install mesa-vulkan-drivers): {stderr}");
        return;
    }
    let b = common::only_dir(&out);
    let report = std::fs::read_to_string(b.join("report.html")).expect("report");
    assert!(
        report.contains("<h2>Key frames</h2>"),
        "no key frames section"
    );
    let sums = std::fs::read_to_string(b.join("SHA256SUMS")).expect("sums");
    // Each figure: label, time, file, in the order of the run.
    let mut last_t_s = f64::NEG_INFINITY;
    for label in [
        "entry interface",
        "peak heating",
        "drogue",
        "main",
        "splashdown",
    ] {
        let at = report
            .find(&format!("alt=\"{label}\""))
            .unwrap_or_else(|| panic!("no `{label}` frame in the report"));
        let img = &report[..at];
        let src_at = img.rfind("<img src=\"").expect("img") + "<img src=\"".len();
        let file = &img[src_at..img[src_at..].find('"').expect("quote") + src_at];
        let caption = &report[at..];
        let t_at = caption.find("t = ").expect("time") + 4;
        let t_s: f64 = caption[t_at..caption[t_at..].find(' ').expect("space") + t_at]
            .parse()
            .expect("time is a number");
        assert!(
            t_s > last_t_s,
            "`{label}` at {t_s} s is not after the frame before ({last_t_s} s)"
        );
        last_t_s = t_s;
        assert_eq!(file, format!("frame-{t_s:.1}.png"), "{label}");
        let (w, h, var) = png_figures(&b.join(file));
        assert_eq!((w, h), (960, 540), "{file}");
        assert!(var > 100.0, "{file} is blank (luminance variance {var:.1})");
        assert!(
            sums.lines().any(|l| l.ends_with(&format!("  {file}"))),
            "{file} not in SHA256SUMS"
        );
    }
    // The frames belong to the bundle: it still verifies.
    let v = Command::new(hil)
        .args(["verify", b.to_str().expect("utf8")])
        .output()
        .expect("verify runs");
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}
