#!/usr/bin/env bash
# The layout's rules, checked on the sources (a CTest case):
#   - a stage family (stages/<family>/) includes no other family's headers; only
#     stages/messages/ (payloads) and stages/common/ (declaration helpers) are shared;
#   - lib/ (libraries with no stages) includes nothing from stages/;
#   - graph/ (the runtime) includes nothing from stages/ or lib/.
# Prints each offending include and exits 1 when there is one.
set -euo pipefail
ROOT="${1:?usage: check_layout.sh SOURCE_ROOT}"
cd "$ROOT"
bad=0
for f in stages/*/*.cpp stages/*/*.hpp; do
  family=$(echo "$f" | cut -d/ -f2)
  while IFS= read -r inc; do
    other=$(echo "$inc" | sed -E 's#.*"stages/([a-z_]+)/.*#\1#')
    case "$other" in "$family" | messages | common) ;; *) echo "$f includes $inc (family '$other')"; bad=1 ;; esac
  done < <(grep -h '#include "stages/' "$f" || true)
done
for f in $(find lib -name '*.cpp' -o -name '*.hpp'); do
  grep -Hn '#include "stages/' "$f" && bad=1
done
for f in $(find graph -name '*.cpp' -o -name '*.hpp'); do
  grep -Hn '#include "\(stages\|lib\)/' "$f" && bad=1
done
if ((bad)); then
  echo "layout: the includes above cross a boundary (see the comment at the top of tests/check_layout.sh)"
  exit 1
fi
echo "layout: no stage family includes another's headers; lib/ and graph/ include no stage"
