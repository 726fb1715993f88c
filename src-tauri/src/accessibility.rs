//! Screen-reader access. egui describes every widget as an AccessKit tree (the same tree the
//! egui_kittest screen tests query by role and label); `accesskit_xplat` hands it to the platform:
//! AT-SPI on Linux, NSAccessibility on macOS, UI Automation on Windows. The tree is built only while
//! an assistive technology is listening, and what it asks for (press, focus, set a value) comes back
//! as egui events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use accesskit_xplat::{Adapter, EventHandler, WindowEvent};
use egui::accesskit::{ActionRequest, Rect, TreeUpdate};

/// What the platform adapter's thread reports, for the event loop to pick up.
struct Shared {
    /// An assistive technology asked for the tree and has not gone away.
    listening: AtomicBool,
    actions: Mutex<Vec<ActionRequest>>,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl EventHandler for Handler {
    fn handle_accesskit_event(&self, event: WindowEvent) {
        let shared = &self.0;
        match event {
            WindowEvent::InitialTreeRequested => shared.listening.store(true, Ordering::Relaxed),
            WindowEvent::ActionRequested(request) => {
                if let Ok(mut actions) = shared.actions.lock() {
                    actions.push(request);
                }
            }
            WindowEvent::AccessibilityDeactivated => {
                shared.listening.store(false, Ordering::Relaxed)
            }
        }
        (shared.wake)();
    }
}

struct Handler(Arc<Shared>);

pub struct Accessibility {
    adapter: Adapter,
    shared: Arc<Shared>,
}

impl Accessibility {
    /// Creates the platform adapter for `window`; on macOS and Windows this must happen before the
    /// window is first shown. `wake` asks the event loop for a frame.
    pub fn new(
        window: raw_window_handle::RawWindowHandle,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            listening: AtomicBool::new(false),
            actions: Mutex::default(),
            wake: Box::new(wake),
        });
        let adapter = Adapter::with_combined_handler(window, Arc::new(Handler(shared.clone())));
        Self { adapter, shared }
    }

    /// Before a frame: egui builds the tree only while someone listens, and gets the actions asked for.
    pub fn before_frame(&self, ctx: &egui::Context, input: &mut egui::RawInput) {
        take_actions(&self.shared, ctx, input);
    }

    /// After a frame: the new tree goes to the platform.
    pub fn after_frame(&mut self, update: Option<TreeUpdate>) {
        if let Some(update) = update {
            self.adapter.update_if_active(|| update);
        }
    }

    pub fn set_focus(&mut self, focused: bool) {
        self.adapter.set_focus(focused);
    }

    /// The window's outer and inner (client area) rectangles in physical pixels, for screen
    /// readers that highlight or hit-test on screen.
    pub fn set_bounds(&mut self, outer: Rect, inner: Rect) {
        self.adapter.set_window_bounds(outer, inner);
    }
}

fn take_actions(shared: &Shared, ctx: &egui::Context, input: &mut egui::RawInput) {
    if shared.listening.load(Ordering::Relaxed) {
        ctx.enable_accesskit();
    } else {
        ctx.disable_accesskit();
    }
    if let Ok(mut actions) = shared.actions.lock() {
        input
            .events
            .extend(actions.drain(..).map(egui::Event::AccessKitActionRequest));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use egui::accesskit::{Action, NodeId, Role, TreeId};

    fn shared(wakes: Arc<AtomicUsize>) -> Arc<Shared> {
        Arc::new(Shared {
            listening: AtomicBool::new(false),
            actions: Mutex::default(),
            wake: Box::new(move || {
                wakes.fetch_add(1, Ordering::Relaxed);
            }),
        })
    }

    #[test]
    fn the_tree_is_built_only_while_a_screen_reader_listens() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let shared = shared(wakes.clone());
        let handler = Handler(shared.clone());
        let ctx = egui::Context::default();
        wick_ui::theme::install(&ctx, false);
        let frame = |ctx: &egui::Context, shared: &Shared| {
            let mut input = egui::RawInput::default();
            take_actions(shared, ctx, &mut input);
            let mut output = ctx.run_ui(input, |ui| {
                let _ = ui.button("Train");
            });
            output.textures_delta.clear(); // no GPU here to upload the font atlas to
            output.platform_output.accesskit_update
        };
        assert!(
            frame(&ctx, &shared).is_none(),
            "no tree while nobody listens"
        );
        handler.handle_accesskit_event(WindowEvent::InitialTreeRequested);
        let tree = frame(&ctx, &shared).expect("a tree once a screen reader asks");
        assert!(
            tree.nodes
                .iter()
                .any(|(_, node)| node.role() == Role::Button && node.label() == Some("Train")),
            "the button is in the tree with its label"
        );
        handler.handle_accesskit_event(WindowEvent::AccessibilityDeactivated);
        assert!(frame(&ctx, &shared).is_none());
        assert_eq!(
            wakes.load(Ordering::Relaxed),
            2,
            "each report asks for a frame"
        );
    }

    #[test]
    fn screen_reader_actions_become_egui_events() {
        let shared = shared(Arc::default());
        let handler = Handler(shared.clone());
        let request = ActionRequest {
            action: Action::Click,
            target_tree: TreeId::ROOT,
            target_node: NodeId(7),
            data: None,
        };
        handler.handle_accesskit_event(WindowEvent::ActionRequested(request.clone()));
        let mut input = egui::RawInput::default();
        take_actions(&shared, &egui::Context::default(), &mut input);
        assert_eq!(
            input.events,
            vec![egui::Event::AccessKitActionRequest(request)]
        );
        let mut again = egui::RawInput::default();
        take_actions(&shared, &egui::Context::default(), &mut again);
        assert!(again.events.is_empty(), "each action is delivered once");
    }
}
