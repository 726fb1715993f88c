//! Wick desktop host. The Tauri + egui window arrives with the desktop issue; until then this binary
//! says so and points at the `wick` command, which runs the same engine.

fn main() {
    let screens: Vec<String> = wick_ui::Screen::ALL.iter().map(|s| format!("{s:?}")).collect();
    println!(
        "Wick desktop ({}) is not built yet. The engine works today from the command line:\n  \
         cargo run --release -p wick-cli -- --help",
        screens.join(" → ")
    );
}
