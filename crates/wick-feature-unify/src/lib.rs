//! No code: this crate exists for the dependency features in its `Cargo.toml`.
