"""The control for the wheel step of the smoke test: a plain GTK 3 window under the same Xvfb that
prints each scroll event GTK delivers (direction and deltas), so `xdotool click 5` can be checked
against a toolkit that is not tao. Prints "ready" once mapped, then one line per event."""
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402


def on_scroll(_widget, event):
    ok, dx, dy = event.get_scroll_deltas()
    print(f"scroll direction={event.direction.value_nick} deltas={(dx, dy) if ok else (0.0, 0.0)}", flush=True)
    return True


window = Gtk.Window(title="wick wheel control")
window.set_default_size(300, 200)
window.add_events(Gdk.EventMask.SCROLL_MASK | Gdk.EventMask.SMOOTH_SCROLL_MASK)
window.connect("scroll-event", on_scroll)
window.connect("destroy", Gtk.main_quit)
window.move(0, 0)
window.show_all()
GLib.timeout_add(300, lambda: print("ready", flush=True) and False)
GLib.timeout_add_seconds(int(sys.argv[1]) if len(sys.argv) > 1 else 20, Gtk.main_quit)
Gtk.main()
