#!/bin/sh
# The whole test suite, from a fresh clone on a fresh Debian machine (as root for the
# mount, nspawn and access-control tests; they skip with a reason otherwise):
#
#   scripts/test.sh
#
# Installs missing Debian packages and the pinned npm packages, typechecks, builds the
# standalone binary and the .deb, then runs every vitest suite: unit, integration (real
# dbus-daemon), system (booted systemd in nspawn), faults (CI profile unless told otherwise).
# Ends with one line "N passed, N failed[, N skipped]".
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh test
echo "== typecheck" >&2
npx tsc --noEmit -p tsconfig.json
echo "== build (binary + .deb)" >&2
npm run -s build
npm run -s deb

echo "== tests" >&2
mkdir -p test-results
: "${CHRONOS_FAULTS_PROFILE:=ci}"
export CHRONOS_FAULTS_PROFILE
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@" || status=$?

node -e '
const r = JSON.parse(require("fs").readFileSync("test-results/vitest.json", "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || { echo "0 passed, 1 failed"; status=1; }
exit $status
