//! Wick's desktop app: a Tauri v2 window with no webview, painted by egui through egui-wgpu, with the
//! endpoint server embedded on 127.0.0.1 so one-click publish works without setup.

mod accessibility;
mod dialogs;
mod egui_host;
mod gpu;
mod input;
#[cfg(target_os = "linux")]
mod linux_dnd;
#[cfg(target_os = "linux")]
mod linux_wheel;
mod menu;
mod paths;
mod window_state;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _};
use egui_host::{EguiPluginBuilder, Host, RepaintScheduler, SharedHost, SharedInbox, MAIN_WINDOW};
use wick_ui::{AppConfig, EndpointTarget, HostEvent, HostRequest, WickApp};

use crate::dialogs::DialogSpec;
use crate::menu::MenuAction;
use crate::paths::AppPaths;
use crate::window_state::WindowState;

/// Native menus on macOS (the global menu bar) and Windows (the window's menu). On Linux GTK packs the
/// menu bar into the same X window wgpu presents to, where the two painters fight, so the UI draws the
/// same File and Help menus itself (see ARCHITECTURE.md).
const NATIVE_MENU: bool = !cfg!(target_os = "linux");
const ATTACH_ACCESSIBILITY_BEFORE_SHOW: bool = !cfg!(target_os = "linux");

fn main() -> ExitCode {
    wick_core::train::fix_cpu_thread_count();
    wick_core::train::keep_freed_memory_for_reuse();
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WICK_LOG")
                .unwrap_or_else(|_| "info,wgpu=warn,naga=warn".into()),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Wick could not start: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let paths = AppPaths::resolve()?;
    let host: SharedHost = Arc::new(Mutex::new(None));
    let inbox: SharedInbox = Arc::default();
    let scheduler = RepaintScheduler::start();

    let (setup_host, setup_inbox, setup_scheduler) =
        (host.clone(), inbox.clone(), scheduler.clone());
    let (menu_inbox, menu_scheduler, menu_host) = (inbox.clone(), scheduler.clone(), host.clone());
    let app = tauri::Builder::default()
        .setup(move |app| {
            setup(app, &paths, setup_host, setup_inbox, setup_scheduler).map_err(|e| {
                eprintln!("Wick could not open its window: {e:#}");
                e.into()
            })
        })
        .on_menu_event(move |app, event| match menu::action(event.id().as_ref()) {
            Some(MenuAction::Ui(e)) => deliver(&menu_inbox, &menu_scheduler, e),
            Some(MenuAction::OpenProjectDialog) => handle_request(
                app,
                &menu_host,
                &menu_inbox,
                &menu_scheduler,
                HostRequest::PickProject,
            ),
            Some(MenuAction::Quit) => handle_request(
                app,
                &menu_host,
                &menu_inbox,
                &menu_scheduler,
                HostRequest::Quit,
            ),
            None => {}
        })
        .build(tauri::generate_context!())
        .context("building the Tauri application")?;
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            // Flush the project and stop the embedded server before the process ends.
            if let Ok(mut h) = host.lock() {
                if let Some(h) = h.as_mut() {
                    h.shut_down();
                }
                *h = None;
            }
        }
    });
    Ok(())
}

fn setup(
    app: &mut tauri::App,
    paths: &AppPaths,
    host: SharedHost,
    inbox: SharedInbox,
    scheduler: RepaintScheduler,
) -> anyhow::Result<()> {
    let handle = app.handle().clone();
    let (req_host, req_inbox, req_scheduler) = (host.clone(), inbox.clone(), scheduler.clone());
    app.wry_plugin(EguiPluginBuilder {
        host: host.clone(),
        inbox: inbox.clone(),
        scheduler: scheduler.clone(),
        requests: Arc::new(move |r| {
            handle_request(&handle, &req_host, &req_inbox, &req_scheduler, r)
        }),
    });

    let state = WindowState::load(&paths.window_state);
    let mut builder = tauri::window::WindowBuilder::new(app, MAIN_WINDOW)
        .title("Wick")
        .inner_size(state.width, state.height)
        .min_inner_size(900.0, 600.0)
        // macOS and Windows attach the accessibility adapter before the window is first shown. On
        // Linux the X window, and so the handle the adapter is given, exists only once it is shown;
        // the Linux adapter does not need to come first.
        .visible(!ATTACH_ACCESSIBILITY_BEFORE_SHOW);
    if NATIVE_MENU {
        builder = builder.menu(menu::build(app)?);
    }
    if let (Some(x), Some(y)) = (state.x, state.y) {
        builder = builder.position(x, y);
    }
    let window = builder.build().context("opening the main window")?;
    let accessibility = {
        use raw_window_handle::HasWindowHandle;
        let handle = window
            .window_handle()
            .map_err(|e| anyhow!("no window handle: {e}"))?
            .as_raw();
        let wake = scheduler.clone();
        accessibility::Accessibility::new(handle, move || wake.schedule(std::time::Duration::ZERO))
    };
    if ATTACH_ACCESSIBILITY_BEFORE_SHOW {
        window.show().context("showing the main window")?;
    }
    if state.maximized {
        let _ = window.maximize();
    }
    if let Ok(icon) = tauri::image::Image::from_bytes(include_bytes!("../../icons/128x128.png")) {
        let _ = window.set_icon(icon);
    }
    #[cfg(target_os = "linux")]
    {
        let dnd_inbox: linux_dnd::SharedInbox = Arc::default();
        let (relay_inbox, relay_scheduler) = (inbox.clone(), scheduler.clone());
        let source = dnd_inbox.clone();
        // GTK signals arrive on the main thread; relay them into the host inbox and wake a frame.
        linux_dnd::install(&window.gtk_window()?, dnd_inbox, move || {
            if let (Ok(mut from), Ok(mut to)) = (source.lock(), relay_inbox.lock()) {
                if std::mem::take(&mut from.changed) {
                    to.hovered = from.hovered.clone();
                    to.hover_changed = true;
                    to.dropped.append(&mut from.dropped);
                }
            }
            relay_scheduler.schedule(std::time::Duration::ZERO);
        });
        let (wheel_inbox, wheel_scheduler) = (inbox.clone(), scheduler.clone());
        linux_wheel::install(&window.gtk_window()?, move |step| {
            if let Ok(mut i) = wheel_inbox.lock() {
                i.wheel_lines.push(step);
            }
            wheel_scheduler.schedule(std::time::Duration::ZERO);
        });
    }

    let gpu = gpu::Gpu::new(&window)?;
    tracing::info!(adapter = %gpu.adapter_name, "drawing with wgpu");
    let ctx = egui::Context::default();
    let repaint = scheduler.clone();
    ctx.set_request_repaint_callback(move |info| repaint.schedule(info.delay));

    let mut startup_notices = Vec::new();
    let port = match std::env::var("WICK_ENDPOINT_PORT") {
        Ok(v) => v
            .trim()
            .parse::<u16>()
            .with_context(|| format!("WICK_ENDPOINT_PORT={v} is not a port number (0 to 65535)"))?,
        Err(_) => wick_serve::embedded::DEFAULT_PORT,
    };
    let (server, server_error) = match wick_serve::EmbeddedServer::start(
        &paths.serve_dir,
        &paths.endpoint_token,
        port,
    ) {
        Ok(s) => {
            if let Some(taken) = s.port_taken {
                startup_notices.push(format!(
                    "Another program uses port {taken}, where the built-in endpoint usually listens, so it listens at {} this time: copied snippets with port {taken} won't reach it until that port is free again.",
                    s.url
                ));
            }
            (Some(s), None)
        }
        Err(e) => {
            tracing::error!("the built-in endpoint could not start: {e}");
            (None, Some(e.to_string()))
        }
    };
    let config = AppConfig {
        project_dir: paths.project_dir.clone(),
        settings_path: paths.settings.clone(),
        samples_dir: paths.samples_dir(app),
        embedded_endpoint: server.as_ref().map(|s| EndpointTarget {
            url: s.url.clone(),
            token: s.token.clone(),
        }),
        embedded_endpoint_error: server_error,
        embedded_token_file: Some(paths.endpoint_token.clone()),
        native_menu: NATIVE_MENU,
        stream_threshold_bytes: wick_core::data::STREAM_THRESHOLD_BYTES,
        stream_sample_rows: wick_ui::jobs::SAMPLE_ROWS,
        hub: wick_core::hub::HubClient::from_env().ok(),
        startup_notices,
    };
    let wick = WickApp::new(config);
    let new_host = Host::new(
        window,
        gpu,
        ctx,
        wick,
        state,
        paths.window_state.clone(),
        accessibility,
        server,
    )?;
    *host
        .lock()
        .map_err(|_| anyhow!("the host lock is poisoned"))? = Some(new_host);
    Ok(())
}

fn deliver(inbox: &SharedInbox, scheduler: &RepaintScheduler, event: HostEvent) {
    if let Ok(mut i) = inbox.lock() {
        i.events.push(event);
    }
    scheduler.schedule(std::time::Duration::ZERO);
}

/// Native dialogs (shown without blocking the event loop, see `dialogs`) and quitting.
fn handle_request<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    host: &SharedHost,
    inbox: &SharedInbox,
    scheduler: &RepaintScheduler,
    request: HostRequest,
) {
    let dataset_filter = [
        "csv", "tsv", "txt", "parquet", "pq", "ndjson", "jsonl", "json",
    ];
    let ask = |spec: DialogSpec, to_event: fn(std::path::PathBuf) -> HostEvent| {
        open_dialog(app, inbox, scheduler, spec, to_event)
    };
    match request {
        HostRequest::PickDataset { folder: false } => ask(
            DialogSpec::open_file("Open a dataset").filter("Tables", &dataset_filter),
            HostEvent::OpenDataset,
        ),
        HostRequest::PickDataset { folder: true } => ask(
            DialogSpec::open_folder("Open a folder of images (one sub-folder per class)"),
            HostEvent::OpenDataset,
        ),
        HostRequest::PickProject => ask(
            DialogSpec::open_folder("Open a Wick project folder"),
            HostEvent::OpenProject,
        ),
        HostRequest::PickExportPath { suggested_name } => {
            let spec = if suggested_name.ends_with(".onnx") {
                DialogSpec::save("Export the model as ONNX", &suggested_name)
                    .filter("ONNX model", &["onnx"])
            } else {
                DialogSpec::save("Export the model package", &suggested_name)
            };
            ask(spec, HostEvent::ExportTo)
        }
        HostRequest::PickBackbone => ask(
            DialogSpec::open_file("Choose pretrained ResNet-18 weights")
                .filter("safetensors", &["safetensors"]),
            HostEvent::BackboneChosen,
        ),
        HostRequest::PickTryImage => ask(
            DialogSpec::open_file("Choose an image for the model to look at")
                .filter("Images", wick_core::data::IMAGE_EXTENSIONS),
            HostEvent::TryImageChosen,
        ),
        HostRequest::Quit => {
            if let Ok(mut h) = host.lock() {
                if let Some(h) = h.as_mut() {
                    h.shut_down();
                }
            }
            app.exit(0);
        }
    }
}

/// Shows a file dialog over the main window; its answer reaches the UI as `to_event(path)`.
fn open_dialog<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    inbox: &SharedInbox,
    scheduler: &RepaintScheduler,
    spec: DialogSpec,
    to_event: fn(std::path::PathBuf) -> HostEvent,
) {
    let (inbox, scheduler) = (inbox.clone(), scheduler.clone());
    let answer = move |path: Option<std::path::PathBuf>| {
        if let Some(path) = path {
            deliver(&inbox, &scheduler, to_event(path));
        }
    };
    #[cfg(target_os = "linux")]
    {
        use tauri::Manager as _;
        let parent = app
            .get_window(MAIN_WINDOW)
            .and_then(|w| w.gtk_window().ok());
        dialogs::show(parent.as_ref(), spec, answer);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = app;
        dialogs::show(spec, answer);
    }
}
