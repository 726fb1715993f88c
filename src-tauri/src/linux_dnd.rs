//! File drag-and-drop on Linux. tao reports dropped files only on Windows and macOS, so the GTK window
//! itself is made an XDND drop target for `text/uri-list`, and its drag signals are turned into hover
//! and drop updates for the egui host.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use gtk::prelude::*;
use gtk::{gdk, glib, DestDefaults, TargetEntry, TargetFlags};

/// What the drag signals reported since the host last looked.
#[derive(Default)]
pub struct DropInbox {
    /// `Some` while a drag is over the window; the paths once the source has sent them.
    pub hovered: Option<Vec<PathBuf>>,
    pub dropped: Vec<PathBuf>,
    pub changed: bool,
}

pub type SharedInbox = Arc<Mutex<DropInbox>>;

fn update(inbox: &SharedInbox, wake: &(dyn Fn() + 'static), f: impl FnOnce(&mut DropInbox)) {
    if let Ok(mut i) = inbox.lock() {
        f(&mut i);
        i.changed = true;
    }
    wake();
}

fn paths_of(data: &gtk::SelectionData) -> Vec<PathBuf> {
    data.uris()
        .iter()
        .filter_map(|uri| glib::filename_from_uri(uri).ok().map(|(path, _host)| path))
        .collect()
}

/// Makes `widget` a drop target. `wake` asks the event loop for a frame.
pub fn install(widget: &impl IsA<gtk::Widget>, inbox: SharedInbox, wake: impl Fn() + 'static) {
    let widget = widget.as_ref();
    let wake: Rc<dyn Fn()> = Rc::new(wake);
    let uri_list = gdk::Atom::intern("text/uri-list");
    // MOTION only: GTK answers position messages for us. Not HIGHLIGHT (GTK would paint with cairo into
    // the window wgpu presents to) and not DROP (GTK would finish the drag after every data-received,
    // which ends the drag when the URIs are read during hover).
    widget.drag_dest_set(
        DestDefaults::MOTION,
        &[TargetEntry::new("text/uri-list", TargetFlags::OTHER_APP, 0)],
        gdk::DragAction::COPY,
    );
    let dropping = Rc::new(Cell::new(false));
    let peeked = Rc::new(Cell::new(false));

    let (i, p, w, atom) = (inbox.clone(), peeked.clone(), wake.clone(), uri_list);
    widget.connect_drag_motion(move |widget, ctx, _x, _y, time| {
        if !p.replace(true) {
            update(&i, &*w, |i| i.hovered = Some(Vec::new()));
            widget.drag_get_data(ctx, &atom, time);
        }
        true
    });
    let (i, p, w) = (inbox.clone(), peeked.clone(), wake.clone());
    widget.connect_drag_leave(move |_, _, _| {
        p.set(false);
        update(&i, &*w, |i| i.hovered = None);
    });
    let d = dropping.clone();
    widget.connect_drag_drop(move |widget, ctx, _x, _y, time| {
        d.set(true);
        widget.drag_get_data(ctx, &uri_list, time);
        true
    });
    widget.connect_drag_data_received(move |_, ctx, _x, _y, data, _info, time| {
        let paths = paths_of(data);
        if dropping.replace(false) {
            ctx.drag_finish(!paths.is_empty(), false, time);
            tracing::info!(count = paths.len(), "files dropped");
            update(&inbox, &*wake, |i| {
                i.hovered = None;
                i.dropped.extend(paths);
            });
        } else {
            update(&inbox, &*wake, |i| {
                if i.hovered.is_some() {
                    i.hovered = Some(paths);
                }
            });
        }
    });
}
