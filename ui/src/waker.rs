//! Waking the UI from background threads.

use std::sync::Arc;

/// Wakes the UI from background threads once the host's egui context is known.
#[derive(Clone, Default)]
pub struct Waker(Arc<std::sync::OnceLock<egui::Context>>);

impl Waker {
    pub fn set(&self, ctx: &egui::Context) {
        let _ = self.0.set(ctx.clone());
    }

    pub fn ctx(&self) -> Option<egui::Context> {
        self.0.get().cloned()
    }

    pub fn wake(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint();
        }
    }

    pub fn wake_after(&self, delay: std::time::Duration) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint_after(delay);
        }
    }
}
