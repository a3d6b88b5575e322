#!/bin/sh
# Installs what Chronos needs on a fresh Debian machine, only what is missing.
#
#   scripts/deps.sh run     enough to build and run (node, npm, dbus-daemon, dbus-send)
#   scripts/deps.sh test    also the third-party clients and the system-test tools
#
# Then `npm ci` (pinned by package-lock.json), skipped when node_modules matches the lock.
set -eu
cd "$(dirname "$0")/.."
want=${1:-run}

# command-or-file:package pairs
pkgs_run="node:nodejs npm:npm dbus-daemon:dbus-daemon dbus-send:dbus-bin strip:binutils dpkg-deb:dpkg"
pkgs_test="gdbus:libglib2.0-bin busctl:systemd systemd-nspawn:systemd-container debootstrap:debootstrap lintian:lintian systemd-analyze:systemd setpriv:util-linux strace:strace mount:mount xz:xz-utils"

missing=""
for pair in $pkgs_run $( [ "$want" = test ] && echo "$pkgs_test" ); do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
  fi
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $missing >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; }
fi

# npm ci only when node_modules was not installed from this exact lock file.
stamp=node_modules/.chronos-lock.sha256
sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$sum" >"$stamp"
fi
