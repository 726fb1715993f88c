//! The real app in a real X server, driven as a person drives it: widgets pressed by the names a
//! person reads (through AT-SPI, as a screen reader presses them), native dialogs answered by typing
//! into them (xdotool), and what the screen says read back the same way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: run scripts/setup.sh, which installs what the GUI tests need"
    );
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Where screenshots of the journeys go (CI keeps `target/`).
pub fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/journeys");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An X server, a session bus with the accessibility bus, and the app, which can be quit and
/// started again on the same home folder (a restart).
pub struct Desktop {
    // Fields drop in order: the app first, then its home folder, the buses and the X server.
    app: Option<Killed>,
    pub display: String,
    pub home: tempfile::TempDir,
    /// The endpoint port the app is asked to keep.
    pub port: u16,
    session_bus: String,
    a11y_bus: String,
    pub log: PathBuf,
    pub window: String,
    launches: u32,
    _launcher: Killed,
    _dbus: Killed,
    _xvfb: Killed,
}

/// Starts Xvfb on a display of its own and waits for it. The tests of one binary run at once, each
/// with its own `slot` (0 to 3); the process id keeps two test runs on one machine apart.
pub fn start_xvfb(slot: u32) -> (Killed, String) {
    assert!(slot < 4, "slots 0 to 3");
    let display = format!(":{}", 1000 + (std::process::id() % 2000) * 4 + slot);
    let xvfb = Killed(
        Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("Xvfb", Duration::from_secs(10), || {
        Command::new("xdotool")
            .arg("getdisplaygeometry")
            .env("DISPLAY", &display)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    (xvfb, display)
}

impl Desktop {
    /// `slot`: the test's own X display (see [`start_xvfb`]).
    pub fn new(slot: u32) -> Self {
        for tool in ["Xvfb", "xdotool", "import", "dbus-daemon", "gdbus"] {
            need(tool);
        }
        let launcher_bin = "/usr/libexec/at-spi-bus-launcher";
        assert!(
            Path::new(launcher_bin).exists(),
            "at-spi2-core is missing: run scripts/setup.sh"
        );
        let (xvfb, display) = start_xvfb(slot);
        let home = tempfile::tempdir().unwrap();
        let address_file = home.path().join("session-bus");
        let dbus = Killed(
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--print-address=1"])
                .stdout(std::fs::File::create(&address_file).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut session_bus = String::new();
        wait_until("the session bus", Duration::from_secs(10), || {
            session_bus = read(&address_file).trim().to_string();
            !session_bus.is_empty()
        });
        let launcher = Killed(
            Command::new(launcher_bin)
                .arg("--launch-immediately")
                .env("DISPLAY", &display)
                .env("DBUS_SESSION_BUS_ADDRESS", &session_bus)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let gdbus = |args: &[&str]| {
            Command::new("gdbus")
                .args([
                    "call",
                    "--session",
                    "--dest",
                    "org.a11y.Bus",
                    "--object-path",
                    "/org/a11y/bus",
                ])
                .args(args)
                .env("DBUS_SESSION_BUS_ADDRESS", &session_bus)
                .output()
                .unwrap()
        };
        let mut a11y_bus = String::new();
        wait_until("the accessibility bus", Duration::from_secs(10), || {
            let out = gdbus(&["--method", "org.a11y.Bus.GetAddress"]);
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            a11y_bus = text
                .trim_start_matches("('")
                .trim_end_matches("',)")
                .to_string();
            out.status.success() && !a11y_bus.is_empty()
        });
        // What a screen reader says when it starts; AccessKit exposes the tree only then.
        let set = gdbus(&[
            "--method",
            "org.freedesktop.DBus.Properties.Set",
            "org.a11y.Status",
            "ScreenReaderEnabled",
            "<true>",
        ]);
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        let port = free_port();
        let log = home.path().join("app-1.log");
        Self {
            display,
            home,
            port,
            session_bus,
            a11y_bus,
            app: None,
            log,
            window: String::new(),
            launches: 0,
            _launcher: launcher,
            _dbus: dbus,
            _xvfb: xvfb,
        }
    }

    /// Starts the app (again) and waits for its first frames.
    pub fn launch(&mut self) {
        self.launches += 1;
        self.log = self.home.path().join(format!("app-{}.log", self.launches));
        let log_file = std::fs::File::create(&self.log).unwrap();
        // WICK_JOURNEY_BIN runs the journeys against another build (an older one, to show a
        // journey fails without its fix).
        let binary = std::env::var_os("WICK_JOURNEY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wick-desktop")));
        self.app = Some(Killed(
            Command::new(binary)
                .env("DISPLAY", &self.display)
                .env("DBUS_SESSION_BUS_ADDRESS", &self.session_bus)
                .env("WICK_HOME", self.home.path())
                .env("WICK_ENDPOINT_PORT", self.port.to_string())
                .env("WICK_LOG", "info")
                .env("LIBGL_ALWAYS_SOFTWARE", "1")
                // GTK's dialogs remember settings through dconf, which has no daemon here.
                .env("GSETTINGS_BACKEND", "memory")
                .env_remove("WAYLAND_DISPLAY")
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap(),
        ));
        let mut window = String::new();
        wait_until("the Wick window", Duration::from_secs(60), || {
            window = self
                .xdotool(&["search", "--name", "^Wick$"])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            !window.is_empty() && read(&self.log).contains("drawing with wgpu")
        });
        self.window = window;
        self.xdotool(&["windowmove", &self.window, "0", "0"]);
        // The first frames, and the accessibility adapter's registration on the bus.
        std::thread::sleep(Duration::from_secs(2));
    }

    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn atspi(&self, verb: &str, arg: &str, timeout_secs: u32) -> Result<String, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a11y/atspi.py");
        let out = Command::new("/usr/bin/python3")
            .arg(script)
            .args([&self.a11y_bus, verb, arg, &timeout_secs.to_string()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Presses the widget a person reads as `name`, waiting up to 30 s for it to be shown.
    pub fn press(&self, name: &str) {
        if let Err(e) = self.atspi("press", name, 30) {
            panic!(
                "could not press {name:?}: {e}\n--- app log ---\n{}",
                read(&self.log)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Waits until some text on the screen contains `text`.
    pub fn wait_text(&self, text: &str, timeout_secs: u32) {
        if let Err(e) = self.atspi("wait", text, timeout_secs) {
            panic!(
                "{text:?} did not appear: {e}\n--- app log ---\n{}",
                read(&self.log)
            );
        }
    }

    /// Every named node on the screen, one "role: name" a line. A failed read panics: an error text
    /// would pass every "does not contain" check.
    pub fn screen_text(&self) -> String {
        self.atspi("dump", "-", 10)
            .unwrap_or_else(|e| panic!("the screen could not be read over AT-SPI: {e}"))
    }

    /// Waits until the app's log holds `text` `times` times; fails at once if the app exits.
    pub fn wait_log(&mut self, text: &str, times: usize, timeout: Duration) {
        let start = Instant::now();
        while read(&self.log).matches(text).count() < times {
            if let Some(status) = self
                .app
                .as_mut()
                .and_then(|a| a.0.try_wait().ok().flatten())
            {
                panic!(
                    "the app exited ({status}) while waiting for {text:?}:\n{}",
                    read(&self.log)
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {times}× {text:?} in the app log:\n{}",
                    read(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Keys pressed in the main window, as a person types them (`ctrl+o`).
    pub fn key(&self, keys: &str) {
        self.xdotool(&["windowfocus", "--sync", &self.window]);
        self.xdotool(&["key", "--window", &self.window, keys]);
    }

    /// Waits for a native dialog titled `title` (it must appear, and the app must keep drawing
    /// behind it), types `path` into it as a person would, and presses Return.
    pub fn answer_dialog(&self, title: &str, path: &Path, shot: &str) {
        let mut dialog = String::new();
        let pattern = format!("^{title}$");
        let start = Instant::now();
        while dialog.is_empty() {
            dialog = self
                .xdotool(&["search", "--onlyvisible", "--name", &pattern])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            if start.elapsed() > Duration::from_secs(15) {
                let shot = self.screenshot(&format!("{shot}-no-dialog"));
                panic!(
                    "no dialog titled {title:?} appeared within 15 s (see {}):\n{}",
                    shot.display(),
                    read(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(800));
        self.screenshot(shot);
        self.xdotool(&["windowfocus", "--sync", &dialog]);
        // Ctrl+L opens the location field of an Open dialog; a Save dialog's name field is focused
        // and takes a whole path. Either way the text is replaced.
        if !title.starts_with("Export") {
            self.xdotool(&["key", "--window", &dialog, "ctrl+l"]);
        }
        self.xdotool(&["key", "--window", &dialog, "ctrl+a"]);
        std::thread::sleep(Duration::from_millis(200));
        self.xdotool(&[
            "type",
            "--window",
            &dialog,
            "--delay",
            "15",
            &path.to_string_lossy(),
        ]);
        std::thread::sleep(Duration::from_millis(500));
        self.xdotool(&["key", "--window", &dialog, "Return"]);
        let closed = || {
            self.xdotool(&["search", "--onlyvisible", "--name", &pattern])
                .is_empty()
        };
        // On a loaded machine GTK's location field may still show its completion list when the
        // Return arrives, which takes the Return; a person presses it again, and so does this.
        let start = Instant::now();
        while !closed() && start.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(200));
        }
        if !closed() {
            self.screenshot(&format!("{}-second-return", title.replace(' ', "-")));
            self.xdotool(&["key", "--window", &dialog, "Return"]);
        }
        wait_until(
            &format!("the dialog {title:?} to close"),
            Duration::from_secs(15),
            closed,
        );
    }

    /// Mouse-wheel steps down over the screen's middle, as a person scrolls to what is below.
    pub fn scroll_down(&self, steps: u32) {
        self.xdotool(&["mousemove", "--window", &self.window, "640", "500"]);
        for _ in 0..steps {
            self.xdotool(&["click", "5"]);
            std::thread::sleep(Duration::from_millis(80));
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    /// The whole screen (dialogs included) as a PNG under `target/journeys/`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = shots_dir().join(format!("{name}.png"));
        let ok = Command::new("import")
            .args(["-window", "root"])
            .arg(&path)
            .env("DISPLAY", &self.display)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "screenshot {name} failed");
        path
    }

    /// Ctrl+Q, as a person quits: the app must exit cleanly.
    pub fn quit(&mut self) {
        self.key("ctrl+q");
        let mut app = self.app.take().expect("the app runs");
        let mut status = None;
        wait_until("the app to quit", Duration::from_secs(30), || {
            status = app.0.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(
            status.is_some_and(|s| s.success()),
            "exit status {status:?}\n{}",
            read(&self.log)
        );
    }

    /// The built-in endpoint, as the app's own token reaches it.
    pub fn endpoint(&self) -> wick_core::publish::Endpoint {
        let token = read(&self.home.path().join("config/endpoint-token"))
            .trim()
            .to_string();
        wick_core::publish::Endpoint::new(&format!("http://127.0.0.1:{}", self.port), &token)
            .unwrap()
    }

    pub fn listing(&self, name: &str) -> wick_core::wire::ModelListing {
        self.endpoint()
            .models()
            .unwrap()
            .into_iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} is not on the endpoint"))
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
