//! Empty: a build script makes Cargo resolve the `[build-dependencies]`, whose features then match
//! those of the app's build scripts and proc macros.
fn main() {}
