//! The native menu and what its items mean to the UI.

use tauri::menu::{Menu, MenuBuilder, MenuItemBuilder, PredefinedMenuItem, SubmenuBuilder};
use wick_ui::HostEvent;

/// What a menu item does: a UI event, or quitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    Ui(HostEvent),
    OpenProjectDialog,
    Quit,
}

/// The action of a menu item id, `None` for ids that are not ours.
pub fn action(id: &str) -> Option<MenuAction> {
    Some(match id {
        "open_dataset" => MenuAction::Ui(HostEvent::OpenDatasetDialog),
        "open_project" => MenuAction::OpenProjectDialog,
        "save" => MenuAction::Ui(HostEvent::Save),
        "export_model" => MenuAction::Ui(HostEvent::ExportModel),
        "export_onnx" => MenuAction::Ui(HostEvent::ExportOnnx),
        "about" => MenuAction::Ui(HostEvent::About),
        "quit" => MenuAction::Quit,
        _ => return None,
    })
}

pub fn build<R: tauri::Runtime>(app: &impl tauri::Manager<R>) -> tauri::Result<Menu<R>> {
    let item = |id: &str, text: &str, accel: Option<&str>| {
        let b = MenuItemBuilder::with_id(id, text);
        let b = match accel {
            Some(a) => b.accelerator(a),
            None => b,
        };
        b.build(app)
    };
    let file = SubmenuBuilder::new(app, "File")
        .item(&item("open_dataset", "Open dataset…", Some("CmdOrCtrl+O"))?)
        .item(&item(
            "open_project",
            "Open project…",
            Some("CmdOrCtrl+Shift+O"),
        )?)
        .item(&item("save", "Save", Some("CmdOrCtrl+S"))?)
        .item(&item("export_model", "Export model…", Some("CmdOrCtrl+E"))?)
        .item(&item("export_onnx", "Export model as ONNX…", None)?)
        .item(&PredefinedMenuItem::separator(app)?)
        .item(&item("quit", "Quit", Some("CmdOrCtrl+Q"))?)
        .build()?;
    let help = SubmenuBuilder::new(app, "Help")
        .item(&item("about", "About Wick", None)?)
        .build()?;
    MenuBuilder::new(app).items(&[&file, &help]).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_has_an_action() {
        for id in [
            "open_dataset",
            "open_project",
            "save",
            "export_model",
            "about",
            "quit",
        ] {
            assert!(action(id).is_some(), "{id}");
        }
        assert_eq!(action("quit"), Some(MenuAction::Quit));
        assert_eq!(action("nope"), None);
    }
}
