//! The scene: the Earth at true scale (WGS-84 ellipsoid, NASA Visible Earth day
//! texture, graticule), the capsule (sphere-cone) at its true attitude, the ghost
//! capsule where the avionics navigate it, heat-shield glow and plasma sheath scaled by
//! the heat flux, canopies, plumes, the trail, the landing target and the ocean; and
//! the cameras.
//!
//! The render frame is Earth-fixed (ECEF axes) with a floating origin at the capsule:
//! positions are differenced in `f64` before they become `f32`, so the capsule and its
//! surroundings keep millimetre precision 6,400 km from the Earth's centre.

use crate::CameraMode;
use crate::hud;
use crate::timeline::Timeline;
use anyhow::{Context, Result};
use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::image::{CompressedImageFormats, ImageSampler, ImageType};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat, TextureUsages};
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy::window::ExitCondition;
use bevy::winit::WinitPlugin;
use std::f64::consts::PI;
use std::path::Path;

/// The day texture: NASA Visible Earth (not copyrighted), as shipped by Debian's
/// `xplanet-images` (`/usr/share/xplanet/images/earth.jpg`), equirectangular,
/// longitude -180 at the left edge.
const EARTH_JPG: &[u8] = include_bytes!("../assets/earth.jpg");

/// WGS-84 semi-major axis, m, and first eccentricity squared.
const WGS84_A_M: f64 = 6_378_137.0;
const WGS84_E2: f64 = 6.694_379_990_14e-3;

/// Heat flux at which the glow is full, W/m^2.
const FULL_GLOW_W_M2: f64 = 1.0e6;

/// Earth-fixed position of a geodetic point (WGS-84), m.
pub fn ecef_m(lat_deg: f64, lon_deg: f64, h_m: f64) -> [f64; 3] {
    let (la, lo) = (lat_deg.to_radians(), lon_deg.to_radians());
    let n = WGS84_A_M / (1.0 - WGS84_E2 * la.sin().powi(2)).sqrt();
    [
        (n + h_m) * la.cos() * lo.cos(),
        (n + h_m) * la.cos() * lo.sin(),
        (n * (1.0 - WGS84_E2) + h_m) * la.sin(),
    ]
}

/// The local "up" (geodetic normal) at a point.
fn up_at(lat_deg: f64, lon_deg: f64) -> Vec3 {
    let (la, lo) = (lat_deg.to_radians(), lon_deg.to_radians());
    Vec3::new(
        (la.cos() * lo.cos()) as f32,
        (la.cos() * lo.sin()) as f32,
        la.sin() as f32,
    )
}

/// The viewing-aid Sun's light over the ground point whose "up" is `up`: 35 degrees
/// from the zenith, from the east.
fn sun_over(up: Vec3) -> Transform {
    let east = Vec3::Z.cross(up).normalize_or(Vec3::Y);
    let towards_sun = (up * 35f32.to_radians().cos() + east * 35f32.to_radians().sin()).normalize();
    let hint = if towards_sun.z.abs() > 0.99 {
        Vec3::X
    } else {
        Vec3::Z
    };
    Transform::default().looking_to(-towards_sun, hint)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> Vec3 {
    Vec3::new(
        (a[0] - b[0]) as f32,
        (a[1] - b[1]) as f32,
        (a[2] - b[2]) as f32,
    )
}

/// The Earth's mesh: a latitude-longitude grid on the ellipsoid, 1 degree cells,
/// texture coordinates for an equirectangular image.
fn earth_mesh() -> Mesh {
    let (nlon, nlat) = (360u32, 180u32);
    let mut pos = Vec::new();
    let mut nrm = Vec::new();
    let mut uv = Vec::new();
    for j in 0..=nlat {
        let lat = 90.0 - 180.0 * f64::from(j) / f64::from(nlat);
        for i in 0..=nlon {
            let lon = -180.0 + 360.0 * f64::from(i) / f64::from(nlon);
            let p = ecef_m(lat, lon, 0.0);
            pos.push([p[0] as f32, p[1] as f32, p[2] as f32]);
            nrm.push(up_at(lat, lon).to_array());
            uv.push([i as f32 / nlon as f32, j as f32 / nlat as f32]);
        }
    }
    let mut idx = Vec::new();
    let w = nlon + 1;
    for j in 0..nlat {
        for i in 0..nlon {
            let (a, b, c, d) = (
                j * w + i,
                j * w + i + 1,
                (j + 1) * w + i,
                (j + 1) * w + i + 1,
            );
            idx.extend_from_slice(&[a, c, b, b, c, d]);
        }
    }
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, pos)
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, nrm)
    .with_inserted_attribute(Mesh::ATTRIBUTE_UV_0, uv)
    .with_inserted_indices(Indices::U32(idx))
}

/// Handles and entities the update systems move.
#[derive(Resource)]
struct Parts {
    earth: Entity,
    ocean: Entity,
    capsule: Entity,
    ghost: Entity,
    plasma: Entity,
    plasma_mat: Handle<StandardMaterial>,
    shield_mat: Handle<StandardMaterial>,
    drogue: Entity,
    main: Entity,
    target: Option<Entity>,
    splash: Entity,
    sun: Entity,
    plumes: Vec<Entity>,
    plume_mesh: Handle<Mesh>,
    plume_mat: Handle<StandardMaterial>,
    diameter_m: f32,
    /// Last usable flight direction (for the chase camera after landing).
    flight_dir: Vec3,
}

/// Headless: the image the camera renders into.
#[derive(Resource)]
struct Offscreen(Handle<Image>);

/// The orbit camera's angles and distance.
#[derive(Resource)]
struct Orbit {
    yaw_rad: f32,
    pitch_rad: f32,
    distance_m: f32,
}

/// Adds the scene, the HUD and their systems to `app`; `interactive` adds the keys,
/// mouse and wall-clock replay.
pub fn build(app: &mut App, tl: Timeline, camera: CameraMode, interactive: bool) {
    app.insert_resource(tl)
        .insert_resource(camera)
        .insert_resource(ClearColor(Color::srgb(0.0, 0.0, 0.012)))
        .insert_resource(GlobalAmbientLight {
            color: Color::srgb(0.6, 0.7, 1.0),
            brightness: 120.0,
            ..default()
        })
        .insert_resource(Orbit {
            yaw_rad: 0.6,
            pitch_rad: 0.3,
            distance_m: 14.0,
        })
        .add_systems(Startup, (setup, hud::setup))
        .add_systems(Update, (place, hud::update).chain());
    if interactive {
        app.add_systems(Update, (controls, hud::scrub, advance).before(place));
    }
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut mats: ResMut<Assets<StandardMaterial>>,
    mut images: ResMut<Assets<Image>>,
    tl: Res<Timeline>,
    offscreen: Option<Res<Offscreen>>,
) {
    let texture = Image::from_buffer(
        EARTH_JPG,
        ImageType::Extension("jpg"),
        CompressedImageFormats::NONE,
        true,
        ImageSampler::linear(),
        RenderAssetUsages::default(),
    )
    .ok()
    .map(|i| images.add(i));
    let earth = commands
        .spawn((
            Mesh3d(meshes.add(earth_mesh())),
            MeshMaterial3d(mats.add(StandardMaterial {
                base_color: if texture.is_some() {
                    Color::WHITE
                } else {
                    Color::srgb(0.05, 0.2, 0.45)
                },
                base_color_texture: texture,
                perceptual_roughness: 0.9,
                ..default()
            })),
            Transform::default(),
        ))
        .id();
    // The ocean near the capsule: the 1-degree grid's facets lie up to 250 m below
    // the ellipsoid, so low down a tangent disc at sea level is the surface.
    let ocean = commands
        .spawn((
            Mesh3d(meshes.add(Circle::new(40_000.0))),
            MeshMaterial3d(mats.add(StandardMaterial {
                base_color: Color::srgb(0.02, 0.12, 0.3),
                perceptual_roughness: 0.3,
                double_sided: true,
                cull_mode: None,
                ..default()
            })),
            Transform::default(),
            Visibility::Hidden,
        ))
        .id();
    let h = tl.header.as_ref();
    let d = h.map_or(2.5, |h| h.capsule_diameter_m) as f32;
    let shield_mat = mats.add(StandardMaterial {
        base_color: Color::srgb(0.25, 0.18, 0.12),
        perceptual_roughness: 0.8,
        ..default()
    });
    let shell_mat = mats.add(StandardMaterial {
        base_color: Color::srgb(0.85, 0.85, 0.82),
        perceptual_roughness: 0.5,
        metallic: 0.2,
        ..default()
    });
    let capsule = spawn_capsule(&mut commands, &mut meshes, shield_mat.clone(), shell_mat, d);
    let ghost_mat = mats.add(StandardMaterial {
        base_color: Color::srgba(0.3, 0.9, 1.0, 0.35),
        alpha_mode: AlphaMode::Blend,
        unlit: true,
        ..default()
    });
    let ghost = spawn_capsule(&mut commands, &mut meshes, ghost_mat.clone(), ghost_mat, d);
    commands.entity(ghost).insert(Visibility::Hidden);
    let plasma_mat = mats.add(StandardMaterial {
        base_color: Color::srgba(1.0, 0.45, 0.9, 0.0),
        emissive: LinearRgba::rgb(2.0, 0.6, 1.6),
        alpha_mode: AlphaMode::Add,
        unlit: true,
        cull_mode: None,
        ..default()
    });
    let plasma = commands
        .spawn((
            Mesh3d(meshes.add(Sphere::new(1.0).mesh().uv(32, 16))),
            MeshMaterial3d(plasma_mat.clone()),
            Transform::default(),
            Visibility::Hidden,
        ))
        .id();
    let canopy_mat = |c: Color, mats: &mut Assets<StandardMaterial>| {
        mats.add(StandardMaterial {
            base_color: c,
            double_sided: true,
            cull_mode: None,
            perceptual_roughness: 0.9,
            ..default()
        })
    };
    let dome = meshes.add(Sphere::new(1.0).mesh().uv(24, 12));
    let drogue_mat = canopy_mat(Color::srgb(1.0, 0.45, 0.05), &mut mats);
    let main_mat = canopy_mat(Color::srgb(0.95, 0.95, 0.95), &mut mats);
    let drogue = commands
        .spawn((
            Mesh3d(dome.clone()),
            MeshMaterial3d(drogue_mat),
            Transform::default(),
            Visibility::Hidden,
        ))
        .id();
    let main = commands
        .spawn((
            Mesh3d(dome),
            MeshMaterial3d(main_mat),
            Transform::default(),
            Visibility::Hidden,
        ))
        .id();
    let target = h.and_then(|h| h.target_deg).map(|_| {
        commands
            .spawn((
                Mesh3d(meshes.add(Cylinder::new(1_500.0, 40_000.0))),
                MeshMaterial3d(mats.add(StandardMaterial {
                    base_color: Color::srgba(1.0, 0.9, 0.1, 0.35),
                    emissive: LinearRgba::rgb(0.8, 0.7, 0.05),
                    alpha_mode: AlphaMode::Blend,
                    unlit: true,
                    ..default()
                })),
                Transform::default(),
            ))
            .id()
    });
    let splash = commands
        .spawn((
            Mesh3d(meshes.add(Annulus::new(3.0 * d, 4.5 * d))),
            MeshMaterial3d(mats.add(StandardMaterial {
                base_color: Color::WHITE,
                emissive: LinearRgba::rgb(0.6, 0.8, 1.0),
                unlit: true,
                double_sided: true,
                cull_mode: None,
                ..default()
            })),
            Transform::default(),
            Visibility::Hidden,
        ))
        .id();
    let plume_mesh = meshes.add(Cone::new(0.5, 1.0));
    let plume_mat = mats.add(StandardMaterial {
        base_color: Color::srgba(1.0, 0.8, 0.5, 0.6),
        emissive: LinearRgba::rgb(6.0, 3.5, 1.2),
        alpha_mode: AlphaMode::Add,
        unlit: true,
        ..default()
    });
    // The Sun: a viewing aid, not an ephemeris. It stands high over the capsule's
    // ground point, a little to the east, so the continents, the ocean and the
    // capsule are lit wherever and whenever the run flies (`place` moves it).
    let sun = commands
        .spawn((
            DirectionalLight {
                illuminance: 12_000.0,
                ..default()
            },
            Transform::default().looking_to(Vec3::new(-0.8, -0.35, -0.45), Vec3::Z),
        ))
        .id();
    let cam = commands
        .spawn((
            Camera3d::default(),
            Projection::Perspective(PerspectiveProjection {
                fov: 50f32.to_radians(),
                near: 0.05,
                ..default()
            }),
            Transform::from_xyz(0.0, -10.0, 3.0).looking_at(Vec3::ZERO, Vec3::Z),
            IsDefaultUiCamera,
        ))
        .id();
    if let Some(o) = offscreen {
        commands
            .entity(cam)
            .insert(RenderTarget::Image(o.0.clone().into()));
    }
    commands.insert_resource(Parts {
        earth,
        ocean,
        capsule,
        ghost,
        plasma,
        plasma_mat,
        shield_mat,
        drogue,
        main,
        target,
        splash,
        sun,
        plumes: Vec::new(),
        plume_mesh,
        plume_mat,
        diameter_m: d,
        flight_dir: Vec3::X,
    });
}

/// A sphere-cone capsule: the heat shield (a shallow spherical dome) towards body +x,
/// the conical backshell behind it.
fn spawn_capsule(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    shield: Handle<StandardMaterial>,
    shell: Handle<StandardMaterial>,
    d: f32,
) -> Entity {
    let r = d / 2.0;
    let h = 0.75 * d;
    commands
        .spawn((Transform::default(), Visibility::Visible))
        .with_children(|c| {
            c.spawn((
                Mesh3d(meshes.add(Sphere::new(r).mesh().uv(32, 16))),
                MeshMaterial3d(shield),
                Transform::from_scale(Vec3::new(0.28, 1.0, 1.0)),
            ));
            c.spawn((
                Mesh3d(meshes.add(Cone::new(r * 0.98, h))),
                MeshMaterial3d(shell),
                Transform::from_translation(Vec3::new(-h / 2.0, 0.0, 0.0))
                    .with_rotation(Quat::from_rotation_arc(Vec3::Y, Vec3::NEG_X)),
            ));
        })
        .id()
}

fn quat(q: [f64; 4]) -> Quat {
    Quat::from_xyzw(q[0] as f32, q[1] as f32, q[2] as f32, q[3] as f32).normalize()
}

/// Puts everything where the snapshot on screen says.
#[allow(clippy::too_many_arguments)]
fn place(
    tl: Res<Timeline>,
    mode: Res<CameraMode>,
    orbit: Res<Orbit>,
    mut parts: ResMut<Parts>,
    mut mats: ResMut<Assets<StandardMaterial>>,
    mut q: Query<(&mut Transform, &mut Visibility), Without<Camera3d>>,
    mut cam: Query<(&mut Transform, &mut Projection), With<Camera3d>>,
    mut commands: Commands,
    mut gizmos: Gizmos,
) {
    let Some(s) = tl.current().cloned() else {
        return;
    };
    let o = s.position_ecef_m;
    let up = up_at(s.latitude_deg, s.longitude_deg);
    let d = parts.diameter_m;
    let body = quat(s.ecef_from_body_xyzw);
    let v = Vec3::new(
        s.velocity_ecef_m_s[0] as f32,
        s.velocity_ecef_m_s[1] as f32,
        s.velocity_ecef_m_s[2] as f32,
    );
    if v.length() > 1.0 {
        parts.flight_dir = v.normalize();
    }
    let fwd = parts.flight_dir;
    let mut set = |e: Entity, t: Option<Transform>| {
        if let Ok((mut tr, mut vis)) = q.get_mut(e) {
            match t {
                Some(t) => {
                    *tr = t;
                    *vis = Visibility::Visible;
                }
                None => *vis = Visibility::Hidden,
            }
        }
    };
    set(
        parts.earth,
        Some(Transform::from_translation(sub([0.0; 3], o))),
    );
    set(parts.capsule, Some(Transform::from_rotation(body)));
    set(parts.sun, Some(sun_over(up)));
    // The ocean: a tangent disc at sea level below the capsule, when low.
    let sea = ecef_m(s.latitude_deg, s.longitude_deg, 0.0);
    set(
        parts.ocean,
        (s.altitude_m < 60_000.0).then(|| {
            Transform::from_translation(sub(sea, o))
                .with_rotation(Quat::from_rotation_arc(Vec3::Z, up))
        }),
    );
    // The ghost: where the avionics navigate the capsule. Their telemetry reports the
    // navigated altitude only: the ghost is drawn at the true position moved along the
    // local vertical by the altitude error.
    let a = &s.avionics;
    set(
        parts.ghost,
        a.est_altitude_m
            .filter(|_| a.nav_valid != Some(false))
            .map(|e| {
                Transform::from_translation(up * (e - s.altitude_m) as f32).with_rotation(body)
            }),
    );
    // Heating: the shield glows, the plasma sheath shows ahead of it.
    let glow = (s.heat_flux_w_m2 / FULL_GLOW_W_M2).clamp(0.0, 1.5) as f32;
    if let Some(mut m) = mats.get_mut(&parts.shield_mat) {
        m.emissive = LinearRgba::rgb(60.0 * glow, 18.0 * glow, 3.0 * glow);
    }
    if let Some(mut m) = mats.get_mut(&parts.plasma_mat) {
        m.base_color = Color::srgba(1.0, 0.35, 0.7, (0.35 * glow).min(0.5));
    }
    set(
        parts.plasma,
        (glow > 0.03).then(|| {
            Transform::from_translation(fwd * 0.25 * d)
                .with_scale(Vec3::new(0.95 * d, 0.95 * d, 0.95 * d) * (1.0 + 0.3 * glow))
        }),
    );
    // Canopies trail behind along the flight direction, risers to the capsule.
    for (entity, key, line_m) in [
        (parts.drogue, "drogue", 6.0 * d),
        (parts.main, "main", 12.0 * d),
    ] {
        let chute = s.parachutes.iter().find(|c| {
            c.name.contains(key) && c.phase != "stowed" && c.phase != "cut" && c.drag_area_m2 > 0.0
        });
        let t = chute.map(|c| {
            let r = (c.drag_area_m2 as f32 / PI as f32).sqrt().max(0.3);
            let at = -fwd * (line_m + r);
            gizmos.line(Vec3::ZERO, at + fwd * 0.3 * r, Color::srgb(0.8, 0.8, 0.8));
            Transform::from_translation(at)
                .with_rotation(Quat::from_rotation_arc(Vec3::Y, -fwd))
                .with_scale(Vec3::new(r, 0.45 * r, r))
        });
        set(entity, t);
    }
    // Plumes: one per firing thruster, in the body frame (children of the capsule).
    while parts.plumes.len() < s.thrusters.len() {
        let e = commands
            .spawn((
                Mesh3d(parts.plume_mesh.clone()),
                MeshMaterial3d(parts.plume_mat.clone()),
                Transform::default(),
                Visibility::Hidden,
            ))
            .id();
        commands.entity(parts.capsule).add_child(e);
        parts.plumes.push(e);
    }
    for (k, th) in s.thrusters.iter().enumerate() {
        let e = parts.plumes[k];
        let dir = Vec3::new(
            th.direction_body[0] as f32,
            th.direction_body[1] as f32,
            th.direction_body[2] as f32,
        )
        .normalize_or(Vec3::X);
        let p = Vec3::new(
            th.position_body_m[0] as f32,
            th.position_body_m[1] as f32,
            th.position_body_m[2] as f32,
        );
        let len = if th.name.contains("deorbit") {
            3.0 * d
        } else {
            0.5 * d
        };
        let t = (th.throttle > 0.01).then(|| {
            let l = len * th.throttle.min(1.0) as f32;
            // The cone's tip (+y) at the nozzle, the plume opening away from the force.
            Transform::from_translation(p - dir * l / 2.0)
                .with_rotation(Quat::from_rotation_arc(Vec3::Y, dir))
                .with_scale(Vec3::new(l * 0.35, l, l * 0.35))
        });
        set(e, t);
    }
    // The landing target and the splashdown.
    if let (Some(e), Some((lat, lon))) =
        (parts.target, tl.header.as_ref().and_then(|h| h.target_deg))
    {
        let p = ecef_m(lat, lon, 20_000.0);
        set(
            e,
            Some(
                Transform::from_translation(sub(p, o))
                    .with_rotation(Quat::from_rotation_arc(Vec3::Y, up_at(lat, lon))),
            ),
        );
    }
    let landed = tl
        .events
        .iter()
        .any(|(t, n)| n == "splashdown" && *t <= s.t_s);
    set(
        parts.splash,
        landed.then(|| {
            Transform::from_translation(sub(sea, o) + up * 0.05)
                .with_rotation(Quat::from_rotation_arc(Vec3::Z, up))
        }),
    );
    // The trail: every snapshot up to now, thinned to at most 2000 points.
    let upto = tl.snapshots.partition_point(|x| x.t_s <= s.t_s);
    let step = (upto / 2000).max(1);
    let pts: Vec<Vec3> = tl.snapshots[..upto]
        .iter()
        .step_by(step)
        .map(|x| sub(x.position_ecef_m, o))
        .chain(std::iter::once(Vec3::ZERO))
        .collect();
    gizmos.linestrip(pts, Color::srgb(0.2, 0.9, 0.4));
    // The camera.
    if let Ok((mut tr, mut proj)) = cam.single_mut() {
        let (eye, fov_deg) = match *mode {
            CameraMode::Chase => {
                let side = fwd.cross(up).normalize_or(Vec3::Y);
                (-fwd * 4.5 * d + up * 1.6 * d + side * 1.2 * d, 50.0)
            }
            CameraMode::Orbit => {
                let east = Vec3::Z.cross(up).normalize_or(Vec3::Y);
                let north = up.cross(east);
                let dir = (east * orbit.yaw_rad.cos() + north * orbit.yaw_rad.sin())
                    * orbit.pitch_rad.cos()
                    + up * orbit.pitch_rad.sin();
                (dir * orbit.distance_m * d / 2.5, 50.0)
            }
            CameraMode::Ground => {
                let (lat, lon) = tl
                    .header
                    .as_ref()
                    .and_then(|h| h.target_deg)
                    .unwrap_or((s.latitude_deg, s.longitude_deg));
                let eye = sub(ecef_m(lat, lon, 2.0), o);
                // Zoom so that the capsule and its canopies fill part of the view.
                let dist = eye.length().max(1.0);
                let fov = (2.0 * (40.0 * d / dist).atan())
                    .to_degrees()
                    .clamp(0.5, 60.0);
                (eye, fov)
            }
        };
        let up_cam = if *mode == CameraMode::Ground {
            up_at(s.latitude_deg, s.longitude_deg)
        } else {
            up
        };
        *tr = Transform::from_translation(eye).looking_at(Vec3::ZERO, up_cam);
        if let Projection::Perspective(p) = &mut *proj {
            p.fov = fov_deg.to_radians();
        }
    }
}

/// Replay: the time on screen follows the wall clock at the chosen speed.
fn advance(time: Res<Time>, mut tl: ResMut<Timeline>) {
    tl.advance(time.delta_secs_f64());
}

/// Keys and mouse.
fn controls(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut mode: ResMut<CameraMode>,
    mut orbit: ResMut<Orbit>,
    mut tl: ResMut<Timeline>,
) {
    if keys.just_pressed(KeyCode::KeyC) {
        *mode = match *mode {
            CameraMode::Chase => CameraMode::Orbit,
            CameraMode::Orbit => CameraMode::Ground,
            CameraMode::Ground => CameraMode::Chase,
        };
    }
    for (k, m) in [
        (KeyCode::Digit1, CameraMode::Chase),
        (KeyCode::Digit2, CameraMode::Orbit),
        (KeyCode::Digit3, CameraMode::Ground),
    ] {
        if keys.just_pressed(k) {
            *mode = m;
        }
    }
    if *mode == CameraMode::Orbit {
        if buttons.pressed(MouseButton::Left) {
            orbit.yaw_rad -= motion.delta.x * 0.005;
            orbit.pitch_rad = (orbit.pitch_rad + motion.delta.y * 0.005).clamp(-1.5, 1.5);
        }
        orbit.distance_m = (orbit.distance_m * (1.0 - 0.1 * scroll.delta.y)).clamp(3.0, 5_000.0);
    }
    if tl.live {
        return;
    }
    if keys.just_pressed(KeyCode::Space) {
        let (_, t1) = tl.span_s();
        if !tl.playing && tl.t_view_s >= t1 {
            tl.t_view_s = tl.span_s().0;
        }
        tl.playing = !tl.playing;
    }
    if keys.just_pressed(KeyCode::Equal) || keys.just_pressed(KeyCode::NumpadAdd) {
        tl.scale_speed(2.0);
    }
    if keys.just_pressed(KeyCode::Minus) || keys.just_pressed(KeyCode::NumpadSubtract) {
        tl.scale_speed(0.5);
    }
    let t = tl.t_view_s;
    if keys.just_pressed(KeyCode::ArrowRight) {
        tl.seek(t + 10.0);
    }
    if keys.just_pressed(KeyCode::ArrowLeft) {
        tl.seek(t - 10.0);
    }
    if keys.just_pressed(KeyCode::Home) {
        tl.seek(f64::NEG_INFINITY);
    }
    if keys.just_pressed(KeyCode::End) {
        tl.seek(f64::INFINITY);
    }
}

/// Renders the frames at `times` into `out` as `frame-<t>.png` (and the HUD's text
/// beside each as `frame-<t>.hud.txt`) with no window: an off-screen render target,
/// any Vulkan, GL or software driver wgpu finds (Mesa's lavapipe on a machine without
/// a GPU).
pub fn headless(
    tl: Timeline,
    times: &[f64],
    out: &Path,
    size: (u32, u32),
    camera: CameraMode,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: None,
                exit_condition: ExitCondition::DontExit,
                ..default()
            })
            .set(RenderPlugin {
                synchronous_pipeline_compilation: true,
                ..default()
            })
            .disable::<WinitPlugin>(),
    );
    build(&mut app, tl, camera, false);
    // The off-screen target.
    let mut target = Image::new_uninit(
        Extent3d {
            width: size.0,
            height: size.1,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    );
    target.texture_descriptor.usage |=
        TextureUsages::RENDER_ATTACHMENT | TextureUsages::COPY_SRC | TextureUsages::TEXTURE_BINDING;
    app.finish();
    app.cleanup();
    let handle = app.world_mut().resource_mut::<Assets<Image>>().add(target);
    app.insert_resource(Offscreen(handle.clone()));
    app.world_mut().resource_mut::<Timeline>().playing = false;
    for &t in times {
        app.world_mut().resource_mut::<Timeline>().seek(t);
        for _ in 0..3 {
            app.update();
        }
        let name = format!("frame-{t:.1}");
        let png = out.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        app.world_mut()
            .spawn(Screenshot::image(handle.clone()))
            .observe(save_to_disk(png.clone()));
        let mut waited = 0;
        while !png.exists() {
            app.update();
            waited += 1;
            if waited > 600 {
                anyhow::bail!("the frame at t = {t} s was not written (no render device?)");
            }
        }
        // The file appears before it is complete: wait until it decodes.
        let mut n = 0;
        while std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0) == 0 && n < 200 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            n += 1;
        }
        let tl = app.world().resource::<Timeline>();
        std::fs::write(
            out.join(format!("{name}.hud.txt")),
            format!("{}\n{}", tl.hud_flight(), tl.hud_expectations()),
        )
        .with_context(|| format!("cannot write the HUD text beside {}", png.display()))?;
        println!("{}", png.display());
    }
    Ok(())
}
