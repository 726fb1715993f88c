"""A screen reader's hands for the journey tests: finds the app's widgets on the AT-SPI bus by the
name a person reads, presses them through the Action interface, and waits for text to appear.

Usage (Debian's python3-gi):
  atspi.py ADDRESS press NAME [TIMEOUT_SECS]   press the first widget named NAME (waits for it)
  atspi.py ADDRESS wait TEXT [TIMEOUT_SECS]    wait until a node's name contains TEXT
  atspi.py ADDRESS dump                        print "role: name" for every named node
Exit status 0 on success; 1 with the names seen on a time-out.
"""
import sys
import time

from gi.repository import Gio, GLib

ACCESSIBLE = "org.a11y.atspi.Accessible"

address, verb = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def call(name, path, iface, method, args=None):
    return bus.call_sync(name, path, iface, method, args, None, Gio.DBusCallFlags.NONE, 5000, None).unpack()


def nodes():
    """(bus name, path, role, name) of every node of every application, depth first."""
    out = []

    def walk(name, path, depth):
        if depth > 30:
            return
        label = call(name, path, "org.freedesktop.DBus.Properties", "Get", GLib.Variant("(ss)", (ACCESSIBLE, "Name")))[0]
        role = call(name, path, ACCESSIBLE, "GetRole")[0]
        out.append((name, path, role, label))
        for child_name, child_path in call(name, path, ACCESSIBLE, "GetChildren")[0]:
            walk(child_name, child_path, depth + 1)

    for app_name, app_path in call("org.a11y.atspi.Registry", "/org/a11y/atspi/accessible/root", ACCESSIBLE, "GetChildren")[0]:
        try:
            walk(app_name, app_path, 0)
        except GLib.Error:
            pass  # an application that left the bus mid-walk
    return out


def until(found):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        try:
            seen = nodes()
            hit = found(seen)
            if hit is not None:
                return hit
        except GLib.Error as e:
            print(f"retrying after: {e.message}", file=sys.stderr)
        if time.monotonic() > deadline:
            names = "\n".join(f"{r}: {n}" for _, _, r, n in seen if n)
            raise SystemExit(f"timed out after {timeout:.0f} s waiting to {verb} {arg!r}; the screen shows:\n{names}")
        time.sleep(0.3)


if verb == "dump":
    for _, _, role, name in nodes():
        if name:
            print(f"{role}: {name}")
elif verb == "wait":
    until(lambda seen: next((n for _, _, _, n in seen if arg in n), None))
    print(f"seen: {arg}")
elif verb == "press":
    def actionable(b, p):
        # A heading or label can share a button's name ("Publish"): only what can be pressed counts.
        return "org.a11y.atspi.Action" in call(b, p, ACCESSIBLE, "GetInterfaces")[0]

    name, path = until(lambda seen: next(((b, p) for b, p, _, n in seen if n == arg and actionable(b, p)), None))
    call(name, path, "org.a11y.atspi.Action", "DoAction", GLib.Variant("(i)", (0,)))
    print(f"pressed: {arg}")
else:
    raise SystemExit(f"unknown verb {verb!r}: use press, wait or dump")
