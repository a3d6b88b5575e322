#!/bin/sh
# Build (once) and cache a minimal Debian root filesystem for the system tests.
#
#   scripts/rootfs.sh [bookworm|trixie]...     default: bookworm
#
# Output: .cache/rootfs/<release>.tar (a tarball of a debootstrap minbase with
# dbus, systemd-sysv and libnss-systemd: enough to boot with systemd-nspawn -b,
# and no Node at all). Built only when missing; delete the tarball to rebuild.
# Needs root. Installs its own Debian build dependencies (debootstrap,
# systemd-container) with apt-get when they are missing.
set -eu

cd "$(dirname "$0")/.."
CACHE=${CHRONOS_ROOTFS_CACHE:-$PWD/.cache/rootfs}
[ $# -gt 0 ] || set -- bookworm

if [ "$(id -u)" != 0 ]; then
  echo "rootfs.sh: must run as root (debootstrap)" >&2
  exit 1
fi

need=""
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v systemd-nspawn >/dev/null 2>&1 || need="$need systemd-container"
if [ -n "$need" ]; then
  echo "rootfs.sh: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $need ||
    { apt-get update && apt-get install -y --no-install-recommends $need; }
fi

# The host's Debian mirror (deb822 sources on Debian 12+, else sources.list).
mirror() {
  m=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^https?:/){print $i; exit}}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${CHRONOS_MIRROR:-$(mirror)}

mkdir -p "$CACHE"
for rel in "$@"; do
  case "$rel" in
    bookworm|trixie) ;;
    *) echo "rootfs.sh: unsupported release '$rel'" >&2; exit 2 ;;
  esac
  tar="$CACHE/$rel.tar"
  if [ -s "$tar" ]; then
    echo "rootfs.sh: $tar exists"
    continue
  fi
  work=$(mktemp -d "$CACHE/.$rel.XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  echo "rootfs.sh: debootstrap $rel from $MIRROR (about a minute)" >&2
  debootstrap --variant=minbase --include=dbus,systemd-sysv,libnss-systemd \
    "$rel" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # Trim what the tests never need, and make the boot quiet and quick.
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* 2>/dev/null || true
  echo "chronos-test" >"$work/root/etc/hostname"
  : >"$work/root/etc/machine-id"
  tar -C "$work/root" --numeric-owner -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$work"
  trap - EXIT INT TERM
  echo "rootfs.sh: wrote $tar ($(du -h "$tar" | cut -f1))"
done
