//! Hosting egui in the Tauri window: a tauri-runtime-wry event-loop plugin feeds tao's window events to
//! egui, paints with egui-wgpu when a redraw is due, and carries out what the UI asks of the host.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tauri_runtime_wry::tao::event::{ElementState, Event, WindowEvent};
use tauri_runtime_wry::tao::event_loop::{ControlFlow, EventLoopProxy, EventLoopWindowTarget};
use tauri_runtime_wry::{
    Context, EventLoopIterationContext, Message, Plugin, PluginBuilder, WebContextStore,
    WindowMessage,
};
use wick_ui::{HostEvent, HostRequest, WickApp};

use crate::accessibility::Accessibility;
use crate::gpu::Gpu;
use crate::input::{key_events, screen_rect, InputTracker};
use crate::window_state::WindowState;

/// The label of the one window egui paints.
pub const MAIN_WINDOW: &str = "main";

/// Everything the painted window needs; lives behind a mutex shared with the plugin.
pub struct Host {
    pub window: tauri::Window,
    gpu: Gpu,
    ctx: egui::Context,
    app: WickApp,
    input: egui::RawInput,
    tracker: InputTracker,
    start: Instant,
    clipboard: Option<arboard::Clipboard>,
    cursor: egui::CursorIcon,
    window_state: WindowState,
    window_state_path: PathBuf,
    accessibility: Accessibility,
    /// Keeps the embedded endpoint alive as long as the window.
    _server: Option<wick_serve::EmbeddedServer>,
    closing: bool,
}

pub type SharedHost = Arc<Mutex<Option<Host>>>;

/// Host events from outside the event loop's window events: menu clicks, dialog answers, drops.
#[derive(Default)]
pub struct Inbox {
    pub events: Vec<HostEvent>,
    pub hovered: Option<Vec<PathBuf>>,
    pub dropped: Vec<PathBuf>,
    pub hover_changed: bool,
    /// Discrete mouse-wheel steps, in lines (Linux; see linux_wheel).
    pub wheel_lines: Vec<egui::Vec2>,
}

pub type SharedInbox = Arc<Mutex<Inbox>>;

/// A dropped file as egui wants it.
#[derive(Debug)]
pub struct PathFile(pub PathBuf);

impl egui::DroppedFile for PathFile {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

impl Host {
    #[allow(clippy::too_many_arguments)] // every part the host owns, each built by `main`
    pub fn new(
        window: tauri::Window,
        gpu: Gpu,
        ctx: egui::Context,
        app: WickApp,
        window_state: WindowState,
        window_state_path: PathBuf,
        accessibility: Accessibility,
        server: Option<wick_serve::EmbeddedServer>,
    ) -> anyhow::Result<Self> {
        let pixels_per_point = window.scale_factor()? as f32;
        let clipboard = arboard::Clipboard::new()
            .map_err(|e| tracing::warn!("no clipboard: {e}"))
            .ok();
        Ok(Self {
            window,
            gpu,
            ctx,
            app,
            input: egui::RawInput::default(),
            tracker: InputTracker::new(pixels_per_point),
            start: Instant::now(),
            clipboard,
            cursor: egui::CursorIcon::Default,
            window_state,
            window_state_path,
            accessibility,
            _server: server,
            closing: false,
        })
    }

    /// Returns true when the event should lead to a new frame.
    fn on_window_event(&mut self, event: &WindowEvent<'_>) -> bool {
        match event {
            WindowEvent::Resized(size) => {
                self.gpu.resize(size.width, size.height);
                self.remember_geometry();
                true
            }
            WindowEvent::Moved(_) => {
                self.remember_geometry();
                false
            }
            WindowEvent::Focused(focused) => {
                self.accessibility.set_focus(*focused);
                let events = self.tracker.translate(event);
                self.input.events.extend(events);
                true
            }
            WindowEvent::ScaleFactorChanged {
                scale_factor,
                new_inner_size,
            } => {
                self.tracker.pixels_per_point = *scale_factor as f32;
                self.gpu.resize(new_inner_size.width, new_inner_size.height);
                true
            }
            WindowEvent::CloseRequested => {
                self.shut_down();
                false
            }
            WindowEvent::KeyboardInput { event, .. } => {
                let clipboard = &mut self.clipboard;
                let events = key_events(
                    event.physical_key,
                    &event.logical_key,
                    event.state == ElementState::Pressed,
                    event.repeat,
                    self.tracker.modifiers,
                    || clipboard.as_mut().and_then(|c| c.get_text().ok()),
                );
                let any = !events.is_empty();
                self.input.events.extend(events);
                any
            }
            // Windows and macOS report drops through tao; Linux through GTK (see linux_dnd).
            WindowEvent::HoveredFile(path) => {
                self.input.hovered_files.push(egui::HoveredFile {
                    path: Some(path.clone()),
                    mime: String::new(),
                });
                true
            }
            WindowEvent::HoveredFileCancelled => {
                self.input.hovered_files.clear();
                true
            }
            WindowEvent::DroppedFile(path) => {
                self.input.hovered_files.clear();
                self.input
                    .dropped_files
                    .push(Arc::new(PathFile(path.clone())));
                true
            }
            other => {
                let events = self.tracker.translate(other);
                let any = !events.is_empty();
                self.input.events.extend(events);
                any
            }
        }
    }

    fn remember_geometry(&mut self) {
        if let (Ok(outer), Ok(size), Ok(inner), Ok(inner_size)) = (
            self.window.outer_position(),
            self.window.outer_size(),
            self.window.inner_position(),
            self.window.inner_size(),
        ) {
            let rect = |x: i32, y: i32, w: u32, h: u32| {
                egui::accesskit::Rect::new(
                    x as f64,
                    y as f64,
                    x as f64 + w as f64,
                    y as f64 + h as f64,
                )
            };
            self.accessibility.set_bounds(
                rect(outer.x, outer.y, size.width, size.height),
                rect(inner.x, inner.y, inner_size.width, inner_size.height),
            );
        }
        let scale = self.window.scale_factor().unwrap_or(1.0);
        if let Ok(size) = self.window.inner_size() {
            self.window_state.width = size.width as f64 / scale;
            self.window_state.height = size.height as f64 / scale;
        }
        if let Ok(pos) = self.window.outer_position() {
            self.window_state.x = Some(pos.x as f64 / scale);
            self.window_state.y = Some(pos.y as f64 / scale);
        }
        self.window_state.maximized = self.window.is_maximized().unwrap_or(false);
    }

    /// Saves everything before the window goes away.
    pub fn shut_down(&mut self) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.app.flush();
        if let Err(e) = self.window_state.save(&self.window_state_path) {
            tracing::warn!("could not remember the window size: {e}");
        }
    }

    fn take_inbox(&mut self, inbox: &SharedInbox) {
        let Ok(mut i) = inbox.lock() else { return };
        if std::mem::take(&mut i.hover_changed) {
            self.input.hovered_files = match &i.hovered {
                None => Vec::new(),
                Some(paths) if paths.is_empty() => vec![egui::HoveredFile {
                    path: None,
                    mime: "text/uri-list".into(),
                }],
                Some(paths) => paths
                    .iter()
                    .map(|p| egui::HoveredFile {
                        path: Some(p.clone()),
                        mime: String::new(),
                    })
                    .collect(),
            };
        }
        for p in i.dropped.drain(..) {
            self.input.dropped_files.push(Arc::new(PathFile(p)));
        }
        for delta in i.wheel_lines.drain(..) {
            self.input.events.push(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Line,
                delta,
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: self.tracker.modifiers,
            });
        }
        for e in i.events.drain(..) {
            self.app.handle_host_event(e);
        }
    }

    /// Runs one egui pass and paints it. Returns the host requests the UI made and when egui wants
    /// the next frame (`None`: only on input).
    fn frame(&mut self) -> (Vec<HostRequest>, Option<Duration>) {
        let (w, h) = self.gpu.size();
        let ppp = self.tracker.pixels_per_point;
        let mut input = self.input.take();
        input.time = Some(self.start.elapsed().as_secs_f64());
        input.screen_rect = Some(screen_rect(tauri::PhysicalSize::new(w, h), ppp));
        input.max_texture_side = Some(self.gpu.max_texture_side());
        input
            .viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(ppp);
        input.focused = self.window.is_focused().unwrap_or(true);
        // hovered_files is a state, not an event: keep it across frames until the drag ends.
        self.input.hovered_files = input.hovered_files.clone();
        self.accessibility.before_frame(&self.ctx, &mut input);

        let app = &mut self.app;
        let mut output = self.ctx.run_ui(input, |ui| app.ui(ui));
        let jobs = self
            .ctx
            .tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point);
        let clear = self.ctx.global_style().visuals.panel_fill;
        let painted = self.gpu.paint(
            &jobs,
            &mut output.textures_delta,
            output.pixels_per_point,
            clear,
        );
        self.accessibility
            .after_frame(output.platform_output.accesskit_update.take());
        self.platform_output(output.platform_output);

        let mut next = output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map(|v| v.repaint_delay)
            .filter(|d| *d < Duration::from_secs(3600));
        if !painted || !self.input.hovered_files.is_empty() {
            // Surface not ready, or a drag in progress (its icon leaves trails without repaints).
            next = Some(Duration::from_millis(16));
        }
        (self.app.take_host_requests(), next)
    }

    fn platform_output(&mut self, out: egui::PlatformOutput) {
        for command in out.commands {
            match command {
                egui::OutputCommand::CopyText(text) => {
                    if let Some(c) = &mut self.clipboard {
                        if let Err(e) = c.set_text(text) {
                            tracing::warn!("could not copy to the clipboard: {e}");
                        }
                    }
                }
                egui::OutputCommand::OpenUrl(url) => {
                    tracing::info!(url = %url.url, "links open in the browser are not supported yet");
                }
                _ => {}
            }
        }
        if out.cursor_icon != self.cursor {
            self.cursor = out.cursor_icon;
            match crate::input::cursor_icon(out.cursor_icon) {
                Some(icon) => {
                    let _ = self.window.set_cursor_visible(true);
                    let _ = self.window.set_cursor_icon(icon);
                }
                None => {
                    let _ = self.window.set_cursor_visible(false);
                }
            }
        }
    }
}

/// Wakes the event loop for a frame at a given time, so egui's timed repaints (cursor blink, spinners,
/// progress) need no busy loop: the loop sleeps until then.
#[derive(Clone, Default)]
pub struct RepaintScheduler {
    state: Arc<(Mutex<SchedulerState>, Condvar)>,
}

#[derive(Default)]
struct SchedulerState {
    due: Option<Instant>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl RepaintScheduler {
    pub fn start() -> Self {
        let s = Self::default();
        let state = s.state.clone();
        let spawned = std::thread::Builder::new()
            .name("wick-repaint".into())
            .spawn(move || {
                let (lock, cvar) = &*state;
                let Ok(mut guard) = lock.lock() else { return };
                loop {
                    match guard.due {
                        None => match cvar.wait(guard) {
                            Ok(g) => guard = g,
                            Err(_) => return,
                        },
                        Some(due) => {
                            let now = Instant::now();
                            if due <= now {
                                guard.due = None;
                                if let Some(wake) = guard.wake.clone() {
                                    drop(guard);
                                    wake();
                                    match lock.lock() {
                                        Ok(g) => guard = g,
                                        Err(_) => return,
                                    }
                                }
                            } else {
                                match cvar.wait_timeout(guard, due - now) {
                                    Ok((g, _)) => guard = g,
                                    Err(_) => return,
                                }
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the repaint timer: {e}");
        }
        s
    }

    /// Asks for a frame `delay` from now (an earlier request wins).
    pub fn schedule(&self, delay: Duration) {
        let (lock, cvar) = &*self.state;
        if let Ok(mut s) = lock.lock() {
            let at = Instant::now() + delay;
            if s.due.is_none_or(|d| at < d) {
                s.due = Some(at);
                cvar.notify_one();
            }
        }
    }

    fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        if let Ok(mut s) = self.state.0.lock() {
            s.wake = Some(wake);
        }
    }

    fn has_wake(&self) -> bool {
        self.state
            .0
            .lock()
            .map(|s| s.wake.is_some())
            .unwrap_or(false)
    }
}

/// Carries out host requests that need the main thread (native dialogs) or the app (quit).
pub type RequestHandler = Arc<dyn Fn(HostRequest) + Send + Sync>;

pub struct EguiPluginBuilder {
    pub host: SharedHost,
    pub inbox: SharedInbox,
    pub scheduler: RepaintScheduler,
    pub requests: RequestHandler,
}

pub struct EguiPlugin(EguiPluginBuilder);

impl<T: tauri_runtime::UserEvent> PluginBuilder<T> for EguiPluginBuilder {
    type Plugin = EguiPlugin;
    fn build(self, _: Context<T>) -> EguiPlugin {
        EguiPlugin(self)
    }
}

impl<T: tauri_runtime::UserEvent> Plugin<T> for EguiPlugin {
    fn on_event(
        &mut self,
        event: &Event<Message<T>>,
        _: &EventLoopWindowTarget<Message<T>>,
        proxy: &EventLoopProxy<Message<T>>,
        _: &mut ControlFlow,
        cx: EventLoopIterationContext<'_, T>,
        _: &WebContextStore,
    ) -> bool {
        let (tao_id, window_event) = match event {
            Event::WindowEvent {
                window_id, event, ..
            } => (window_id, Some(event)),
            Event::RedrawRequested(window_id) => (window_id, None),
            _ => return false,
        };
        let Some(id) = cx.window_id_map.get(tao_id) else {
            return false;
        };
        let is_main = cx
            .windows
            .0
            .borrow()
            .get(&id)
            .is_some_and(|w| w.label() == MAIN_WINDOW);
        if !is_main {
            return false;
        }
        let scheduler = &self.0.scheduler;
        if !scheduler.has_wake() {
            let proxy = proxy.clone();
            scheduler.set_wake(Arc::new(move || {
                let _ = proxy.send_event(Message::Window(id, WindowMessage::RequestRedraw));
            }));
        }
        // A native dialog runs a nested GTK loop that can call back in here: skip rather than deadlock.
        let Ok(mut guard) = self.0.host.try_lock() else {
            return false;
        };
        let Some(host) = guard.as_mut() else {
            return false;
        };
        match window_event {
            Some(ev) => {
                if host.on_window_event(ev) {
                    let _ = proxy.send_event(Message::Window(id, WindowMessage::RequestRedraw));
                }
            }
            None => {
                host.take_inbox(&self.0.inbox);
                let (requests, next) = host.frame();
                drop(guard);
                if let Some(delay) = next {
                    if delay.is_zero() {
                        let _ = proxy.send_event(Message::Window(id, WindowMessage::RequestRedraw));
                    } else {
                        scheduler.schedule(delay);
                    }
                }
                for r in requests {
                    (self.0.requests)(r);
                }
            }
        }
        false // Tauri keeps its own handling (close, resize bookkeeping)
    }
}
