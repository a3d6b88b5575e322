#!/bin/sh
# The main job, on a fresh Debian machine: build the standalone binary, start the daemon on
# a private bus (never the host's), and show it answering through chronos-ctl and dbus-send.
#
#   scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh run
npm run -s build

work=$(mktemp -d /tmp/chronos-demo.XXXXXX)
cleanup() {
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "${bus_pid:-}" ] && kill "$bus_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The two names of the one binary, as the .deb installs them.
ln -s "$PWD/dist/chronos" "$work/chronosd-dbus"
ln -s "$PWD/dist/chronos" "$work/chronos-ctl"

cat >"$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --nofork 2>/dev/null &
bus_pid=$!
export DBUS_SESSION_BUS_ADDRESS="unix:path=$work/bus"
export CHRONOS_USE_SESSION_BUS=1
i=0; while [ ! -S "$work/bus" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

# The daemon writes each LogEvent record to stdout (the journal, under systemd).
"$work/chronosd-dbus" --tick-file "$work/state/tick.dat" >"$work/events.log" &
daemon_pid=$!
i=0; until "$work/chronos-ctl" --timeout 200 ping >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done

show() { printf '\n$ %s\n' "$*"; "$@"; }
show "$work/chronos-ctl" version
show "$work/chronos-ctl" ping
show "$work/chronos-ctl" tick
show "$work/chronos-ctl" next
show "$work/chronos-ctl" next
show "$work/chronos-ctl" stamp DEMO-AGENT
show "$work/chronos-ctl" log DEMO-AGENT deploy ok "first release"
show "$work/chronos-ctl" --json stamp DEMO-AGENT
show dbus-send --session --print-reply --dest=org.jesternet.Chronos /org/jesternet/Chronos org.jesternet.Chronos.NextTick
show cat "$work/state/tick.dat"
show cat "$work/events.log"
show "$work/chronos-ctl" shutdown
wait "$daemon_pid"; daemon_pid=
echo
echo "demo: the daemon answered and shut down cleanly; its tick file held $(cat "$work/state/tick.dat")"
