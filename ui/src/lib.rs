//! Every Wick screen, drawn with egui and host-agnostic. The desktop issue fills this crate; until then
//! it only names the screens the engine's API is shaped for.

/// The workbench's screens, in the order a user meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Data,
    Model,
    Train,
    Evaluate,
    Publish,
}

impl Screen {
    pub const ALL: [Screen; 5] = [Screen::Data, Screen::Model, Screen::Train, Screen::Evaluate, Screen::Publish];
}
