#!/bin/sh
# Check the exposure score of the shipped unit with systemd-analyze (offline:
# no running systemd needed). Fails when it is above the limit (default 1.0).
#
#   scripts/check-security.sh [UNIT_FILE] [LIMIT]
set -eu
cd "$(dirname "$0")/.."
unit=${1:-packaging/systemd/chronosd.service}
limit=${2:-1.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$unit" "$tmp/chronosd.service"
out=$(cd "$tmp" && systemd-analyze security --offline=yes --no-pager chronosd.service 2>&1) || true
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for chronosd.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  printf '%s\n' "$out" >&2
  echo "check-security: no score from systemd-analyze" >&2
  exit 1
fi
printf '%s\n' "$out" | grep -E '^(✗|→)' || true
if awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }'; then
  echo "check-security: chronosd.service exposure $score <= $limit"
else
  echo "check-security: chronosd.service exposure $score > $limit" >&2
  exit 1
fi
