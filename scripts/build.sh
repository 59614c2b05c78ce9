#!/usr/bin/env bash
# Configures (once) and builds flowrun into build/ (or $FLOWRUN_BUILD_DIR) with
# Ninja and ccache. Extra arguments go to the build tool, e.g. a target name.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FLOWRUN_BUILD_DIR:-$ROOT/build}"
TYPE="${FLOWRUN_BUILD_TYPE:-RelWithDebInfo}"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$TYPE" \
        -DFLOWRUN_VENV="${FLOWRUN_VENV:-$ROOT/.venv}" ${FLOWRUN_CMAKE_ARGS:-}
fi
# Two cores and ~1 GB per LibTorch translation unit: let Ninja use both.
cmake --build "$BUILD" -- "$@"
