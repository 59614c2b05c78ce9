#!/usr/bin/env bash
# Builds here what the GPU device check runs there, into .device-bundle/ (git-ignored;
# the device call carries it): the device machine has the same PyTorch (2.11.0+cu130)
# but no Debian -dev packages, so binaries built against this wheel run there on its
# own LibTorch.
#
#   bin/   flowrun, flowrun_tests, flowrun_dp_probe and the benches, stripped
#   lib/   libflowrun_*.so and every library they load that is neither glibc's,
#          libstdc++/libgcc, LibTorch's nor CUDA's (those come from the device's own
#          python3 -c 'import torch' install): oneTBB, TurboJPEG, libpng, HDF5, libcurl
#          and their dependencies, spdlog, fmt... (their ldd closure), stripped
#   data/  cifar10-jpeg.tar: 1,000 training and 100 test images a class from
#          ../shared/data (../shared does not travel)
#   MANIFEST.txt  what is in it, with sizes, and the torch version it was built against
#
# The whole bundle must stay inside the 64 MiB a device call carries (the script says
# how much it takes, and fails above 56 MiB to leave room for the sources).
#   bash bench/device/make_bundle.sh [--no-build] [--no-data] [--data-only]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BUILD="${FLOWRUN_BUILD_DIR:-$ROOT/build}"
OUT="${FLOWRUN_BUNDLE_DIR:-$ROOT/.device-bundle}"
LIMIT_MB=56
build=1 data=1 binaries=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --no-data) data=0 ;;
    --data-only) binaries=0 build=0 ;;  # the fallback's data (fetch_debs.sh)
    *) echo "usage: make_bundle.sh [--no-build] [--no-data] [--data-only]" >&2; exit 2 ;;
  esac
done
BINARIES=(flowrun tests/flowrun_tests tests/flowrun_dp_probe flowrun_mix_bench flowrun_train_step_bench)

if ((build)); then
  scripts/build.sh flowrun flowrun_tests flowrun_dp_probe flowrun_mix_bench flowrun_train_step_bench >/dev/null
fi
mkdir -p "$OUT/data"
if ((binaries)); then
rm -rf "$OUT/bin" "$OUT/lib"
mkdir -p "$OUT/bin" "$OUT/lib"
for b in "${BINARIES[@]}"; do
  [[ -x "$BUILD/$b" ]] || { echo "make_bundle: $BUILD/$b is missing (build it, or drop --no-build)" >&2; exit 1; }
  cp "$BUILD/$b" "$OUT/bin/"
done

# Libraries that the device machine provides itself: the C library's family, the
# compiler's runtime, LibTorch (torch/lib) and CUDA's (nvidia/*/lib in the wheel; named
# one by one: a libcu* pattern would take libcurl too).
provided() {
  case "$(basename "$1")" in
    ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libutil.so*|libresolv.so*) return 0 ;;
    libstdc++.so*|libgcc_s.so*) return 0 ;;
    libtorch*|libc10*|libshm*|libgomp*|libcaffe2*|libnccl*|libnv*) return 0 ;;
    libcuda.so*|libcudart*|libcublas*|libcufft*|libcurand*|libcusolver*|libcusparse*|libcudnn*|libcupti*|libcufile*) return 0 ;;
  esac
  case "$1" in */site-packages/torch/*|*/site-packages/nvidia/*) return 0 ;; esac
  return 1
}

# The closure: each binary's and each copied library's dependencies, resolved here.
todo=("$OUT"/bin/* "$BUILD"/graph/libflowrun_graph.so* "$BUILD"/stages/libflowrun_stages.so*)
# Loaded with dlopen by oneTBB (its allocator, its hwloc binding): ldd does not see them,
# so they are named here, and their own dependencies join the closure.
for extra in libtbbmalloc.so.2 libtbbmalloc_proxy.so.2 libtbbbind_2_5.so.3 libhwloc.so.15; do
  path=$(ldconfig -p | awk -v n="$extra" '$1 == n && !p {p = $NF} END {print p}')
  if [[ -n "$path" ]]; then
    cp -L "$path" "$OUT/lib/$extra"
    todo+=("$path")
  fi
done
declare -A seen=()
while ((${#todo[@]})); do
  f="${todo[0]}"; todo=("${todo[@]:1}")
  while read -r name path; do
    [[ -n "$path" && -e "$path" ]] || continue
    provided "$path" && continue
    [[ -n "${seen[$name]:-}" ]] && continue
    seen[$name]=1
    cp -L "$path" "$OUT/lib/$name"
    todo+=("$path")
  done < <(ldd "$f" 2>/dev/null | awk '/=> \// {print $1, $3}')
done
strip --strip-unneeded "$OUT"/bin/* "$OUT"/lib/* 2>/dev/null || true
fi

if ((data)) && [[ ! -s "$OUT/data/cifar10-jpeg.tar" ]]; then
  python3 - "$ROOT/../shared/data/cifar10-jpeg.tar" "$OUT/data/cifar10-jpeg.tar" <<'PY'
import collections, sys, tarfile
keep = {"train/": 1000, "test/": 100}
seen = collections.Counter()
with tarfile.open(sys.argv[1]) as tin, tarfile.open(sys.argv[2], "w") as tout:
    for m in tin:
        split = next((p for p in keep if m.name.startswith(p)), None)
        if not m.isfile() or split is None:
            continue
        cls = m.name.split("/")[1]
        if seen[(split, cls)] < keep[split]:
            seen[(split, cls)] += 1
            tout.addfile(m, tin.extractfile(m))
PY
fi

torch_version=$("$ROOT/.venv/bin/python" -c 'import torch; print(torch.__version__)')
{
  dirty=$(git diff HEAD --quiet 2>/dev/null || echo " plus uncommitted changes ($(git diff HEAD | sha256sum | cut -c1-12))")
  echo "flowrun device bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) from $(git rev-parse --short HEAD)$dirty"
  echo "torch $torch_version"
  (cd "$OUT" && find . -type f -printf '%s %p\n' | sort -k2)
} > "$OUT/MANIFEST.txt"
echo "$torch_version" > "$OUT/TORCH_VERSION"
size_mb=$(du -sm "$OUT" | cut -f1)
echo "make_bundle: $OUT: $(ls "$OUT/bin" 2>/dev/null | wc -l) binaries, $(ls "$OUT/lib" 2>/dev/null | wc -l) libraries, $size_mb MiB (torch $torch_version)"
if ((size_mb > LIMIT_MB)); then
  echo "make_bundle: $size_mb MiB is over the $LIMIT_MB MiB this bundle may take of a device call's 64 MiB" >&2
  exit 1
fi
