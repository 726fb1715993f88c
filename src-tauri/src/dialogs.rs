//! Native file dialogs that never block the event loop.
//!
//! On Linux tao runs GTK's main loop on the main thread. rfd's GTK backend runs its own GTK loop on a
//! helper thread and waits for it, which deadlocks against tao's loop: the window froze for good on
//! the first File → Open. So on Linux the dialog is a `gtk::FileChooserDialog` shown on the main
//! thread without `run()`: it answers through its `response` signal while tao's loop keeps painting
//! the window. macOS and Windows keep rfd, whose dialogs are modal on the calling (main) thread there.

use std::path::PathBuf;

/// What a dialog asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogSpec {
    pub title: String,
    pub kind: DialogKind,
    /// (name, extensions without the dot); an "All files" filter is always added after these.
    pub filters: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogKind {
    OpenFile,
    OpenFolder,
    /// A save dialog with this file name filled in; it asks before overwriting.
    Save {
        suggested_name: String,
    },
}

impl DialogSpec {
    pub fn open_file(title: &str) -> Self {
        Self {
            title: title.into(),
            kind: DialogKind::OpenFile,
            filters: Vec::new(),
        }
    }

    pub fn open_folder(title: &str) -> Self {
        Self {
            title: title.into(),
            kind: DialogKind::OpenFolder,
            filters: Vec::new(),
        }
    }

    pub fn save(title: &str, suggested_name: &str) -> Self {
        Self {
            title: title.into(),
            kind: DialogKind::Save {
                suggested_name: suggested_name.into(),
            },
            filters: Vec::new(),
        }
    }

    pub fn filter(mut self, name: &str, extensions: &[&str]) -> Self {
        self.filters.push((
            name.into(),
            extensions.iter().map(|e| e.to_string()).collect(),
        ));
        self
    }
}

/// GTK's glob patterns are case-sensitive: `data.CSV` must match the Tables filter too.
pub fn patterns(extensions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for e in extensions {
        for p in [
            format!("*.{}", e.to_lowercase()),
            format!("*.{}", e.to_uppercase()),
        ] {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Shows the dialog over `parent` and returns at once; `answer` gets the chosen path (or `None` when
/// the person cancels) later, on the main thread.
#[cfg(target_os = "linux")]
pub fn show(
    parent: Option<&gtk::ApplicationWindow>,
    spec: DialogSpec,
    answer: impl FnOnce(Option<PathBuf>) + 'static,
) {
    use gtk::prelude::*;
    use gtk::{FileChooserAction, FileChooserDialog, FileFilter, ResponseType};

    let (action, accept) = match &spec.kind {
        DialogKind::OpenFile => (FileChooserAction::Open, "_Open"),
        DialogKind::OpenFolder => (FileChooserAction::SelectFolder, "_Open"),
        DialogKind::Save { .. } => (FileChooserAction::Save, "_Save"),
    };
    let dialog = FileChooserDialog::new(Some(&spec.title), parent, action);
    dialog.add_buttons(&[
        ("_Cancel", ResponseType::Cancel),
        (accept, ResponseType::Accept),
    ]);
    dialog.set_default_response(ResponseType::Accept);
    dialog.set_modal(true);
    dialog.set_local_only(true);
    if let DialogKind::Save { suggested_name } = &spec.kind {
        dialog.set_do_overwrite_confirmation(true);
        dialog.set_current_name(suggested_name);
    }
    if !spec.filters.is_empty() {
        for (name, extensions) in &spec.filters {
            let filter = FileFilter::new();
            filter.set_name(Some(name));
            for p in patterns(extensions) {
                filter.add_pattern(&p);
            }
            dialog.add_filter(filter);
        }
        let all = FileFilter::new();
        all.set_name(Some("All files"));
        all.add_pattern("*");
        dialog.add_filter(all);
    }
    let answer = std::cell::Cell::new(Some(answer));
    dialog.connect_response(move |dialog, response| {
        // `close()` below sends the dialog a delete event, which answers once more: only the first
        // answer counts.
        let Some(f) = answer.take() else { return };
        let path = (response == ResponseType::Accept)
            .then(|| dialog.filename())
            .flatten();
        tracing::info!(chosen = ?path, "file dialog answered");
        dialog.close();
        f(path);
    });
    tracing::info!(title = %spec.title, "file dialog shown");
    dialog.show();
}

/// macOS and Windows: rfd's dialog, modal on the main thread, answers before this returns.
#[cfg(not(target_os = "linux"))]
pub fn show(spec: DialogSpec, answer: impl FnOnce(Option<PathBuf>) + 'static) {
    let mut dialog = rfd::FileDialog::new().set_title(&spec.title);
    for (name, extensions) in &spec.filters {
        dialog = dialog.add_filter(name, extensions);
    }
    let path = match &spec.kind {
        DialogKind::OpenFile => dialog.pick_file(),
        DialogKind::OpenFolder => dialog.pick_folder(),
        DialogKind::Save { suggested_name } => dialog.set_file_name(suggested_name).save_file(),
    };
    answer(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_either_case_once() {
        let p = patterns(&["csv".into(), "CSV".into(), "pq".into()]);
        assert_eq!(p, ["*.csv", "*.CSV", "*.pq", "*.PQ"]);
    }

    #[test]
    fn specs_say_what_they_ask_for() {
        let s = DialogSpec::save("Export", "model.onnx").filter("ONNX model", &["onnx"]);
        assert_eq!(
            s.kind,
            DialogKind::Save {
                suggested_name: "model.onnx".into()
            }
        );
        assert_eq!(
            s.filters,
            vec![("ONNX model".to_string(), vec!["onnx".to_string()])]
        );
    }
}
