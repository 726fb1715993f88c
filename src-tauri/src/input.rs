//! Translating tao's window events into egui input: pure functions, unit-tested without a window.

use tauri_runtime_wry::tao::dpi::{PhysicalPosition, PhysicalSize};
use tauri_runtime_wry::tao::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use tauri_runtime_wry::tao::keyboard::{Key, KeyCode, ModifiersState};

/// The physical key, by its W3C code name (`KeyA`, `Digit1`, `NumpadEnter`, `F5`, …), which is
/// exactly what `egui::Key::from_name` understands.
pub fn key_from_code(code: KeyCode) -> Option<egui::Key> {
    egui::Key::from_name(&format!("{code:?}"))
}

/// The key as the keyboard layout names it (what shortcuts like Ctrl+Z should follow).
pub fn key_from_logical(key: &Key<'_>) -> Option<egui::Key> {
    match key {
        Key::Character(s) => egui::Key::from_name(s),
        Key::Space => Some(egui::Key::Space),
        Key::Unidentified(_) | Key::Dead(_) => None,
        named => egui::Key::from_name(&format!("{named:?}")),
    }
}

pub fn modifiers(m: ModifiersState) -> egui::Modifiers {
    let mac = cfg!(target_os = "macos");
    egui::Modifiers {
        alt: m.alt_key(),
        ctrl: m.control_key(),
        shift: m.shift_key(),
        mac_cmd: mac && m.super_key(),
        command: if mac { m.super_key() } else { m.control_key() },
    }
}

pub fn pointer_button(button: MouseButton) -> Option<egui::PointerButton> {
    Some(match button {
        MouseButton::Left => egui::PointerButton::Primary,
        MouseButton::Right => egui::PointerButton::Secondary,
        MouseButton::Middle => egui::PointerButton::Middle,
        MouseButton::Other(1) => egui::PointerButton::Extra1,
        MouseButton::Other(2) => egui::PointerButton::Extra2,
        _ => return None,
    })
}

/// A physical pixel position in egui points.
pub fn to_points(p: PhysicalPosition<f64>, pixels_per_point: f32) -> egui::Pos2 {
    egui::pos2(p.x as f32 / pixels_per_point, p.y as f32 / pixels_per_point)
}

/// The whole window in egui points.
pub fn screen_rect(size: PhysicalSize<u32>, pixels_per_point: f32) -> egui::Rect {
    egui::Rect::from_min_size(
        egui::Pos2::ZERO,
        egui::vec2(size.width as f32, size.height as f32) / pixels_per_point,
    )
}

/// A tao wheel event in egui's units. A zero delta is dropped: on Linux that is a discrete wheel step
/// whose direction tao lost, and the host reports it from GTK instead (`linux_wheel`).
pub fn wheel(
    delta: MouseScrollDelta,
    pixels_per_point: f32,
) -> Option<(egui::MouseWheelUnit, egui::Vec2)> {
    match delta {
        MouseScrollDelta::LineDelta(x, y) if x == 0.0 && y == 0.0 => None,
        MouseScrollDelta::LineDelta(x, y) => Some((egui::MouseWheelUnit::Line, egui::vec2(x, y))),
        MouseScrollDelta::PixelDelta(p) => Some((
            egui::MouseWheelUnit::Point,
            egui::vec2(p.x as f32, p.y as f32) / pixels_per_point,
        )),
        _ => None,
    }
}

/// What a key press means to egui: the key event, plus the clipboard events egui expects for
/// Cmd/Ctrl+C, X and V (`paste` supplies the clipboard text only when it is needed).
pub fn key_events(
    physical: KeyCode,
    logical: &Key<'_>,
    pressed: bool,
    repeat: bool,
    mods: egui::Modifiers,
    paste: impl FnOnce() -> Option<String>,
) -> Vec<egui::Event> {
    let physical_key = key_from_code(physical);
    let Some(key) = key_from_logical(logical).or(physical_key) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(2);
    if pressed && mods.command && !mods.alt {
        match key {
            egui::Key::C => out.push(egui::Event::Copy),
            egui::Key::X => out.push(egui::Event::Cut),
            egui::Key::V => {
                if let Some(text) = paste() {
                    out.push(egui::Event::Paste(text));
                }
            }
            _ => {}
        }
    }
    out.push(egui::Event::Key {
        key,
        physical_key,
        pressed,
        repeat,
        modifiers: mods,
    });
    out
}

/// Text typed into the window (tao delivers committed IME text and plain typing this way on Linux).
/// Control characters and text typed with Ctrl/Cmd held are shortcuts, not text.
pub fn text_event(text: &str, mods: egui::Modifiers) -> Option<egui::Event> {
    let printable: String = text.chars().filter(|c| !c.is_control()).collect();
    if printable.is_empty() || (mods.command && !mods.alt) || (mods.ctrl && !mods.alt) {
        return None;
    }
    Some(egui::Event::Text(printable))
}

/// Input state carried between events: where the pointer is and which modifiers are held.
#[derive(Debug, Clone, Copy)]
pub struct InputTracker {
    pub pointer: egui::Pos2,
    pub modifiers: egui::Modifiers,
    pub pixels_per_point: f32,
}

impl InputTracker {
    pub fn new(pixels_per_point: f32) -> Self {
        Self {
            pointer: egui::Pos2::ZERO,
            modifiers: egui::Modifiers::default(),
            pixels_per_point,
        }
    }

    /// egui events for one tao window event (keyboard handled by [`key_events`], which needs the
    /// clipboard). Returns an empty list for events egui does not care about.
    pub fn translate(&mut self, event: &WindowEvent<'_>) -> Vec<egui::Event> {
        let ppp = self.pixels_per_point;
        match event {
            WindowEvent::Focused(focused) => vec![egui::Event::WindowFocused(*focused)],
            WindowEvent::CursorMoved { position, .. } => {
                self.pointer = to_points(*position, ppp);
                vec![egui::Event::PointerMoved(self.pointer)]
            }
            WindowEvent::CursorLeft { .. } => vec![egui::Event::PointerGone],
            WindowEvent::MouseInput { state, button, .. } => match pointer_button(*button) {
                Some(button) => vec![egui::Event::PointerButton {
                    pos: self.pointer,
                    button,
                    pressed: *state == ElementState::Pressed,
                    modifiers: self.modifiers,
                }],
                None => Vec::new(),
            },
            WindowEvent::MouseWheel { delta, .. } => match wheel(*delta, ppp) {
                Some((unit, delta)) => vec![egui::Event::MouseWheel {
                    unit,
                    delta,
                    phase: egui::TouchPhase::Move,
                    source: egui::MouseWheelSource::Unknown,
                    modifiers: self.modifiers,
                }],
                None => Vec::new(),
            },
            WindowEvent::ModifiersChanged(m) => {
                self.modifiers = modifiers(*m);
                vec![egui::Event::ModifiersChanged(self.modifiers)]
            }
            WindowEvent::ReceivedImeText(text) => {
                text_event(text, self.modifiers).into_iter().collect()
            }
            WindowEvent::ScaleFactorChanged { scale_factor, .. } => {
                self.pixels_per_point = *scale_factor as f32;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// egui's cursor for the window; `None` hides the cursor.
pub fn cursor_icon(icon: egui::CursorIcon) -> Option<tauri::CursorIcon> {
    use egui::CursorIcon as E;
    use tauri::CursorIcon as T;
    Some(match icon {
        E::None => return None,
        E::Default => T::Default,
        E::ContextMenu => T::ContextMenu,
        E::Help => T::Help,
        E::PointingHand => T::Hand,
        E::Progress => T::Progress,
        E::Wait => T::Wait,
        E::Cell => T::Cell,
        E::Crosshair => T::Crosshair,
        E::Text => T::Text,
        E::VerticalText => T::VerticalText,
        E::Alias => T::Alias,
        E::Copy => T::Copy,
        E::Move => T::Move,
        E::NoDrop => T::NoDrop,
        E::NotAllowed => T::NotAllowed,
        E::Grab => T::Grab,
        E::Grabbing => T::Grabbing,
        E::AllScroll => T::AllScroll,
        E::ResizeHorizontal => T::EwResize,
        E::ResizeNeSw => T::NeswResize,
        E::ResizeNwSe => T::NwseResize,
        E::ResizeVertical => T::NsResize,
        E::ResizeEast => T::EResize,
        E::ResizeSouthEast => T::SeResize,
        E::ResizeSouth => T::SResize,
        E::ResizeSouthWest => T::SwResize,
        E::ResizeWest => T::WResize,
        E::ResizeNorthWest => T::NwResize,
        E::ResizeNorth => T::NResize,
        E::ResizeNorthEast => T::NeResize,
        E::ResizeColumn => T::ColResize,
        E::ResizeRow => T::RowResize,
        E::ZoomIn => T::ZoomIn,
        E::ZoomOut => T::ZoomOut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_keys_map_by_code_name() {
        assert_eq!(key_from_code(KeyCode::KeyA), Some(egui::Key::A));
        assert_eq!(key_from_code(KeyCode::Digit7), Some(egui::Key::Num7));
        assert_eq!(key_from_code(KeyCode::NumpadEnter), Some(egui::Key::Enter));
        assert_eq!(key_from_code(KeyCode::F5), Some(egui::Key::F5));
        assert_eq!(
            key_from_code(KeyCode::ArrowLeft),
            Some(egui::Key::ArrowLeft)
        );
        assert_eq!(key_from_code(KeyCode::PageDown), Some(egui::Key::PageDown));
        assert_eq!(
            key_from_code(KeyCode::BracketLeft),
            Some(egui::Key::OpenBracket)
        );
        assert_eq!(key_from_code(KeyCode::Backquote), Some(egui::Key::Backtick));
    }

    #[test]
    fn logical_keys_follow_the_layout() {
        // On an AZERTY keyboard the physical KeyQ types "a": shortcuts must see A.
        assert_eq!(key_from_logical(&Key::Character("a")), Some(egui::Key::A));
        assert_eq!(key_from_logical(&Key::Enter), Some(egui::Key::Enter));
        assert_eq!(key_from_logical(&Key::Escape), Some(egui::Key::Escape));
        assert_eq!(key_from_logical(&Key::Space), Some(egui::Key::Space));
        assert_eq!(key_from_logical(&Key::Dead(None)), None);
    }

    #[test]
    fn ctrl_v_pastes_and_still_reports_the_key_with_repeat() {
        let ctrl = modifiers(ModifiersState::CONTROL);
        let events = key_events(
            KeyCode::KeyV,
            &Key::Character("v"),
            true,
            false,
            ctrl,
            || Some("12.5".into()),
        );
        if cfg!(target_os = "macos") {
            assert!(
                !events.contains(&egui::Event::Paste("12.5".into())),
                "Cmd, not Ctrl, pastes on macOS"
            );
        } else {
            assert_eq!(events[0], egui::Event::Paste("12.5".into()));
        }
        let held = key_events(
            KeyCode::Backspace,
            &Key::Backspace,
            true,
            true,
            egui::Modifiers::NONE,
            || None,
        );
        assert_eq!(
            held,
            vec![egui::Event::Key {
                key: egui::Key::Backspace,
                physical_key: Some(egui::Key::Backspace),
                pressed: true,
                repeat: true,
                modifiers: egui::Modifiers::NONE
            }]
        );
        let copy = key_events(
            KeyCode::KeyC,
            &Key::Character("c"),
            true,
            false,
            egui::Modifiers::COMMAND,
            || None,
        );
        assert_eq!(copy[0], egui::Event::Copy);
    }

    #[test]
    fn paste_is_not_read_for_other_keys() {
        let events = key_events(
            KeyCode::KeyA,
            &Key::Character("a"),
            true,
            false,
            egui::Modifiers::NONE,
            || panic!("the clipboard must not be read for plain typing"),
        );
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn text_skips_controls_and_shortcuts_but_keeps_altgr() {
        assert_eq!(
            text_event("é", egui::Modifiers::NONE),
            Some(egui::Event::Text("é".into()))
        );
        assert_eq!(text_event("\u{8}", egui::Modifiers::NONE), None);
        assert_eq!(text_event("c", egui::Modifiers::COMMAND), None);
        let altgr = egui::Modifiers {
            alt: true,
            ctrl: true,
            ..Default::default()
        };
        assert_eq!(
            text_event("@", altgr),
            Some(egui::Event::Text("@".into())),
            "AltGr is Ctrl+Alt on Windows"
        );
    }

    #[test]
    fn positions_and_wheel_are_scaled_to_points() {
        assert_eq!(
            to_points(PhysicalPosition::new(200.0, 100.0), 2.0),
            egui::pos2(100.0, 50.0)
        );
        let rect = screen_rect(PhysicalSize::new(1600, 1000), 2.0);
        assert_eq!(rect.size(), egui::vec2(800.0, 500.0));
        let (unit, d) = wheel(
            MouseScrollDelta::PixelDelta(PhysicalPosition::new(0.0, 40.0)),
            2.0,
        )
        .unwrap_or((egui::MouseWheelUnit::Page, egui::Vec2::ZERO));
        assert_eq!(unit, egui::MouseWheelUnit::Point);
        assert_eq!(d, egui::vec2(0.0, 20.0));
        let (unit, d) = wheel(MouseScrollDelta::LineDelta(0.0, -1.0), 2.0)
            .unwrap_or((egui::MouseWheelUnit::Page, egui::Vec2::ZERO));
        assert_eq!(
            (unit, d),
            (egui::MouseWheelUnit::Line, egui::vec2(0.0, -1.0))
        );
        assert_eq!(
            wheel(MouseScrollDelta::LineDelta(0.0, 0.0), 1.0),
            None,
            "tao's direction-less discrete step"
        );
    }

    #[test]
    fn modifiers_use_command_for_the_platform_shortcut_key() {
        let m = modifiers(ModifiersState::CONTROL | ModifiersState::SHIFT);
        assert!(m.ctrl && m.shift && !m.alt);
        assert_eq!(m.command, !cfg!(target_os = "macos"));
    }

    #[test]
    fn buttons_and_cursors_map() {
        assert_eq!(
            pointer_button(MouseButton::Left),
            Some(egui::PointerButton::Primary)
        );
        assert_eq!(pointer_button(MouseButton::Other(9)), None);
        assert_eq!(cursor_icon(egui::CursorIcon::None), None);
        assert!(matches!(
            cursor_icon(egui::CursorIcon::Text),
            Some(tauri::CursorIcon::Text)
        ));
        assert!(matches!(
            cursor_icon(egui::CursorIcon::PointingHand),
            Some(tauri::CursorIcon::Hand)
        ));
    }
}
