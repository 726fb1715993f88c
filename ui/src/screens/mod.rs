//! The six screens, one module each, and what they share (`common`). The shell (`crate::shell`)
//! places them in the window.

pub mod common;
pub mod data;
pub mod evaluate;
pub mod model;
pub mod monitor;
pub mod publish;
pub mod train;
