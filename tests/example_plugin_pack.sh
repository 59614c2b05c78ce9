#!/usr/bin/env bash
# Builds examples/plugin_pack out of tree against this build of flowrun, then runs
# its pipeline through the flowrun binary and checks what came out.
set -euo pipefail
SOURCE_DIR="$1"; BUILD_DIR="$2"; FLOWRUN="$3"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cmake -S "$SOURCE_DIR/examples/plugin_pack" -B "$WORK/build" -G Ninja -Dflowrun_DIR="$BUILD_DIR" > "$WORK/configure.log" \
  || { cat "$WORK/configure.log"; exit 1; }
cmake --build "$WORK/build" > "$WORK/build.log" || { cat "$WORK/build.log"; exit 1; }
printf 'data flows through graphs\n' > "$WORK/words.txt"
cd "$WORK"
FLOWRUN_PLUGIN_PATH="$WORK/build" "$FLOWRUN" "$SOURCE_DIR/examples/plugin_pack/pipeline.json" \
  --set "nodes.words.params.path=$WORK/words.txt" --set "nodes.sink.params.path=$WORK/words.jsonl"
for word in DATA FLOWS THROUGH GRAPHS; do
  grep -q "\"payload\":\"$word\"" "$WORK/words.jsonl" || { echo "missing $word in output:"; cat "$WORK/words.jsonl"; exit 1; }
done
# flowrun plugins shows the pack's plugin with its own kind.
FLOWRUN_PLUGIN_PATH="$WORK/build" "$FLOWRUN" plugins words.source | grep -q "words/text"
echo "example plugin pack: built out of tree, loaded, ran, output checked"
