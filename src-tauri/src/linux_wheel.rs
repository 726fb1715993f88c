//! Discrete mouse-wheel steps on Linux. GTK reports a wheel without smooth scrolling (core X button
//! 4/5 events, as from many mice and from `xdotool click 5`) as a scroll event with a direction and
//! zero deltas; tao forwards only the deltas, so those steps arrive as a wheel event of (0, 0) and
//! scroll nothing. The GTK window's own `scroll-event` signal still has the direction: the host
//! turns it into a one-line wheel step. Smooth scrolling keeps coming through tao.

use gtk::gdk::ScrollDirection;
use gtk::glib;
use gtk::prelude::*;

/// A discrete scroll direction as a wheel step in lines, in egui's convention (positive y scrolls up,
/// towards the top of the content); `None` for smooth scrolling, which tao reports itself.
pub fn step(direction: ScrollDirection) -> Option<egui::Vec2> {
    match direction {
        ScrollDirection::Up => Some(egui::vec2(0.0, 1.0)),
        ScrollDirection::Down => Some(egui::vec2(0.0, -1.0)),
        ScrollDirection::Left => Some(egui::vec2(1.0, 0.0)),
        ScrollDirection::Right => Some(egui::vec2(-1.0, 0.0)),
        _ => None,
    }
}

/// Calls `on_step` with each discrete wheel step over `widget`.
pub fn install(widget: &impl IsA<gtk::Widget>, on_step: impl Fn(egui::Vec2) + 'static) {
    let widget = widget.as_ref();
    widget.add_events(gtk::gdk::EventMask::SCROLL_MASK);
    widget.connect_scroll_event(move |_, event| {
        if let Some(delta) = step(event.direction()) {
            on_step(delta);
        }
        // tao's own handler runs too (for smooth scrolling).
        glib::Propagation::Proceed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_directions_become_one_line_steps() {
        assert_eq!(
            step(ScrollDirection::Down),
            Some(egui::vec2(0.0, -1.0)),
            "wheel towards the user scrolls down"
        );
        assert_eq!(step(ScrollDirection::Up), Some(egui::vec2(0.0, 1.0)));
        assert_eq!(step(ScrollDirection::Right), Some(egui::vec2(-1.0, 0.0)));
        assert_eq!(
            step(ScrollDirection::Smooth),
            None,
            "smooth scrolling comes through tao"
        );
    }
}
