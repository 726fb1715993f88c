"""What a screen reader sees: walks the AT-SPI tree of every application on the accessibility bus,
prints one line per named node ("role-name: name"), and with --press NAME presses the first push
button of that name through the AT-SPI Action interface, as a screen reader user would.

Usage: screen_reader.py A11Y_BUS_ADDRESS [--press NAME]   (Debian's python3-gi)
"""
import sys

from gi.repository import Gio, GLib

ACCESSIBLE = "org.a11y.atspi.Accessible"
PUSH_BUTTON = 43  # ATSPI_ROLE_PUSH_BUTTON

address = sys.argv[1]
press = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--press" else None
flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def call(name, path, iface, method, args=None):
    return bus.call_sync(name, path, iface, method, args, None, Gio.DBusCallFlags.NONE, 5000, None).unpack()


def node_name(name, path):
    args = GLib.Variant("(ss)", (ACCESSIBLE, "Name"))
    return call(name, path, "org.freedesktop.DBus.Properties", "Get", args)[0]


def walk(name, path, depth=0):
    if depth > 20:
        return
    label = node_name(name, path)
    role = call(name, path, ACCESSIBLE, "GetRole")[0]
    if label:
        print(f"{role}: {label}", flush=True)
    if press and role == PUSH_BUTTON and label == press:
        call(name, path, "org.a11y.atspi.Action", "DoAction", GLib.Variant("(i)", (0,)))
        print(f"pressed: {label}", flush=True)
        raise SystemExit(0)
    for child_name, child_path in call(name, path, ACCESSIBLE, "GetChildren")[0]:
        walk(child_name, child_path, depth + 1)


registry = call("org.a11y.atspi.Registry", "/org/a11y/atspi/accessible/root", ACCESSIBLE, "GetChildren")[0]
for app_name, app_path in registry:
    try:
        walk(app_name, app_path)
    except GLib.Error as e:
        print(f"skipped {app_name}: {e.message}", file=sys.stderr)
if press:
    raise SystemExit(f"no push button named {press!r}")
