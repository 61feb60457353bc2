//! The HUD: flight figures, avionics, links and faults on the left, the expectations
//! on the right, and in replay a time scrubber with the events and injections marked.

use crate::timeline::Timeline;
use bevy::prelude::*;
use bevy::text::FontSize;
use bevy::window::PrimaryWindow;

/// The left panel's text.
#[derive(Component)]
pub struct FlightText;

/// The right panel's text.
#[derive(Component)]
pub struct ExpectText;

/// The scrubber's filled part.
#[derive(Component)]
pub struct ScrubFill;

/// The scrubber's caption.
#[derive(Component)]
pub struct ScrubText;

/// The scrubber bar's place on screen, fractions of the window: left, width, and
/// height from the bottom in pixels.
const BAR_LEFT: f32 = 0.1;
const BAR_WIDTH: f32 = 0.8;
const BAR_BOTTOM_PX: f32 = 28.0;
const BAR_HEIGHT_PX: f32 = 12.0;

fn panel(font_px: f32) -> (TextFont, TextColor) {
    (
        TextFont {
            font_size: FontSize::Px(font_px),
            ..default()
        },
        TextColor(Color::srgb(0.85, 1.0, 0.85)),
    )
}

/// Spawns the panels and, for a replay, the scrubber with its marks.
pub fn setup(mut commands: Commands, tl: Res<Timeline>) {
    let bg = BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.55));
    commands.spawn((
        Text::new(""),
        panel(15.0),
        bg,
        Node {
            position_type: PositionType::Absolute,
            top: px(8),
            left: px(8),
            padding: UiRect::all(px(6)),
            ..default()
        },
        FlightText,
    ));
    commands.spawn((
        Text::new(""),
        panel(14.0),
        bg,
        Node {
            position_type: PositionType::Absolute,
            top: px(8),
            right: px(8),
            padding: UiRect::all(px(6)),
            ..default()
        },
        ExpectText,
    ));
    if tl.live {
        return;
    }
    let (t0, t1) = tl.span_s();
    let span = (t1 - t0).max(1e-6);
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                left: percent(BAR_LEFT * 100.0),
                width: percent(BAR_WIDTH * 100.0),
                bottom: px(BAR_BOTTOM_PX),
                height: px(BAR_HEIGHT_PX),
                ..default()
            },
            BackgroundColor(Color::srgba(0.3, 0.3, 0.3, 0.8)),
        ))
        .with_children(|bar| {
            bar.spawn((
                Node {
                    position_type: PositionType::Absolute,
                    left: px(0),
                    top: px(0),
                    height: percent(100),
                    width: percent(0),
                    ..default()
                },
                BackgroundColor(Color::srgb(0.2, 0.7, 0.3)),
                ScrubFill,
            ));
            // Events (white) and injections (red) at their times.
            for (t, name) in &tl.events {
                let colour = if name.starts_with("inject") {
                    Color::srgb(1.0, 0.2, 0.2)
                } else if name.starts_with("fc_mode:") {
                    Color::srgb(0.4, 0.7, 1.0)
                } else {
                    Color::WHITE
                };
                bar.spawn((
                    Node {
                        position_type: PositionType::Absolute,
                        left: percent(((t - t0) / span * 100.0) as f32),
                        top: px(-4),
                        width: px(2),
                        height: px(BAR_HEIGHT_PX + 8.0),
                        ..default()
                    },
                    BackgroundColor(colour),
                ));
            }
        });
    commands.spawn((
        Text::new(""),
        panel(13.0),
        Node {
            position_type: PositionType::Absolute,
            left: percent(BAR_LEFT * 100.0),
            bottom: px(4),
            ..default()
        },
        ScrubText,
    ));
}

/// Writes the panels from the timeline.
#[allow(clippy::type_complexity)]
pub fn update(
    tl: Res<Timeline>,
    mut texts: ParamSet<(
        Query<&mut Text, With<FlightText>>,
        Query<&mut Text, With<ExpectText>>,
        Query<&mut Text, With<ScrubText>>,
    )>,
    mut fill: Query<&mut Node, With<ScrubFill>>,
) {
    if let Ok(mut t) = texts.p0().single_mut() {
        t.0 = tl.hud_flight();
    }
    if let Ok(mut t) = texts.p1().single_mut() {
        t.0 = tl.hud_expectations();
    }
    let (t0, t1) = tl.span_s();
    if let Ok(mut t) = texts.p2().single_mut() {
        t.0 = format!(
            "{:.1} s of {:.1} s   Space play/pause  +/- speed  arrows 10 s  click to seek  C camera",
            tl.t_view_s, t1
        );
    }
    if let Ok(mut n) = fill.single_mut() {
        let f = ((tl.t_view_s - t0) / (t1 - t0).max(1e-6)).clamp(0.0, 1.0);
        n.width = percent((f * 100.0) as f32);
    }
}

/// A click (or drag) on the scrubber moves the time on screen there.
pub fn scrub(
    buttons: Res<ButtonInput<MouseButton>>,
    window: Query<&Window, With<PrimaryWindow>>,
    mut tl: ResMut<Timeline>,
) {
    if tl.live || !buttons.pressed(MouseButton::Left) {
        return;
    }
    let Ok(w) = window.single() else {
        return;
    };
    let Some(c) = w.cursor_position() else {
        return;
    };
    let (width, height) = (w.width(), w.height());
    let y_from_bottom = height - c.y;
    if !(BAR_BOTTOM_PX - 6.0..=BAR_BOTTOM_PX + BAR_HEIGHT_PX + 6.0).contains(&y_from_bottom) {
        return;
    }
    let f = (c.x / width - BAR_LEFT) / BAR_WIDTH;
    if (0.0..=1.0).contains(&f) {
        let (t0, t1) = tl.span_s();
        tl.seek(t0 + f64::from(f) * (t1 - t0));
    }
}
