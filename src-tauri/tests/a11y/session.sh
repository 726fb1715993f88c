#!/bin/bash
# Run inside `dbus-run-session`: starts the AT-SPI accessibility bus, the app (on DISPLAY, with
# WICK_HOME set by the caller), waits for its first frame, then lets tests/a11y/screen_reader.py read
# the tree and press a button. Usage: session.sh APP_BINARY LOG_FILE BUTTON_NAME
set -u
app=$1 log=$2 button=$3
here=$(dirname "$0")
launcher=/usr/libexec/at-spi-bus-launcher
[ -x "$launcher" ] || { echo "at-spi2-core is missing: run scripts/setup.sh" >&2; exit 2; }
"$launcher" --launch-immediately &
launcher_pid=$!
address=""
for _ in $(seq 50); do
  address=$(gdbus call --session --dest org.a11y.Bus --object-path /org/a11y/bus --method org.a11y.Bus.GetAddress 2>/dev/null | sed "s/^('\(.*\)',)$/\1/")
  [ -n "$address" ] && break
  sleep 0.2
done
[ -n "$address" ] || { echo "the accessibility bus did not start" >&2; exit 2; }
# What Orca does when it starts: say a screen reader is running. Whether the bus already reports
# accessibility as enabled depends on the machine's GSettings (with gsettings-desktop-schemas and
# dconf installed it says no), and AccessKit only exposes the tree once it is enabled.
gdbus call --session --dest org.a11y.Bus --object-path /org/a11y/bus \
  --method org.freedesktop.DBus.Properties.Set org.a11y.Status ScreenReaderEnabled "<true>" > /dev/null
"$app" > "$log" 2>&1 &
app_pid=$!
for _ in $(seq 300); do
  grep -q "drawing with wgpu" "$log" && break
  sleep 0.2
done
sleep 2  # the first frames, and the adapter's registration on the bus
/usr/bin/python3 "$here/screen_reader.py" "$address" --press "$button"
status=$?
for _ in $(seq 100); do
  grep -q "dataset loaded" "$log" && break
  sleep 0.2
done
kill "$app_pid" "$launcher_pid" 2>/dev/null
wait "$app_pid" 2>/dev/null
exit $status
