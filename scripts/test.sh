#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
# Prints ctest's summary ("100% tests passed, 0 tests failed out of N") and exits
# non-zero when any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FLOWRUN_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" "$@"
