#!/usr/bin/python3
"""Tiny XDND drag source for headless tests: a GTK3 window whose button offers
text/uri-list for the paths given on the command line.
Usage: drag_source.py X Y PATH...   (window placed at X,Y; 220x80)"""
import sys, pathlib
import gi
gi.require_version("Gtk", "3.0")
from gi.repository import Gtk, Gdk

x, y, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
uris = [pathlib.Path(p).resolve().as_uri() for p in paths]   # percent-encodes spaces etc.

win = Gtk.Window(title="wick drag source")
win.set_default_size(220, 80)
win.move(x, y)
btn = Gtk.Button(label="DRAG ME")
btn.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
btn.drag_source_add_uri_targets()

def on_get(widget, ctx, data, info, time):
    print("SOURCE drag-data-get ->", uris, flush=True)
    data.set_uris(uris)

btn.connect("drag-data-get", on_get)
btn.connect("drag-begin", lambda *a: print("SOURCE drag-begin", flush=True))
btn.connect("drag-end", lambda *a: print("SOURCE drag-end", flush=True))
btn.connect("drag-failed", lambda w, c, r: print("SOURCE drag-failed", r, flush=True) or False)
win.add(btn)
win.connect("destroy", Gtk.main_quit)
win.show_all()
print("SOURCE ready", uris, flush=True)
Gtk.main()
