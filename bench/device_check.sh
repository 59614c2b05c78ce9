#!/usr/bin/env bash
# The GPU device check: one command that turns one device call into every GPU figure.
#
# Here, first:   bash bench/device/make_bundle.sh      (binaries + their libraries + data,
#                                                        .device-bundle/, about 45 MiB)
# Rehearse here: bash bench/device_check.sh rehearse    (the same script on this CPU, from
#                the bundle unpacked in a temporary folder under `env -i`; .ci/run does it)
# On the device: one `run` with carry [".device-bundle"] and the command
#                bash bench/device_check.sh
#
# Phases, each with its own time limit, all within one deadline (FLOWRUN_CHECK_SECONDS,
# default 450 s: a phase gets what is left of it, one with nothing left is skipped, so
# the call fits a 500 s timeout and its 10 minutes);
# each runs and reports whatever an earlier one did; summary, figures and logs are
# rewritten after every phase; the exit status is the number of failed phases:
#   preflight   60 s  every library ldd cannot resolve, torch versions here and there,
#                     nvidia-smi, whether the bundled binaries see the GPU, the measured
#                     bf16 matrix rate (stops the check when nothing could run)
#   tests      120 s  the CUDA halves of the CPU/CUDA-parameterised cases (CI runs the CPU
#                     halves): batch stages, Mixup, to_device, the trainer, evaluation, the
#                     sync-debug tests (a trainer's steps; a whole pipeline's waits counted);
#                     a CUDA case that skips fails the phase
#   nccl        30 s  the data-parallel probe, one rank per GPU (up to 2), exit codes kept
#   vit         90 s  pipelines/vit_cifar10_fullft.json, ViT-B/16 224 px bf16, random
#                     weights, 3 epochs of the bundle's 10,000 images: images/s (whole run
#                     and after warm-up), the data stall, GPU busy share and peak memory
#                     (nvidia-smi every 200 ms), MFU
#   eager       60 s  the same model and batch in PyTorch-Python: timm + DataLoader
#   batch       80 s  mixup_cutmix and the batch stages per batch, against timm's Mixup
#   step        30 s  flowrun_train_step_bench: the train step alone on device batches
#   compiled   120 s  PyTorch-Python with torch.compile (last: the longest to start)
# Both sides' images/s after warm-up are the median of 20-step windows between log
# steps (where both sides read the loss; flowrun also waits at its between-epoch
# evaluations, windows the median leaves out), and the GPU busy share is taken over
# each side's timed span.
#
# $OUT gets three files: summary.txt (what ran, what failed, the figures), figures.json
# (every figure with its unit and the command that measured it) and logs.tar.gz (every
# phase's log and the small files of the run folders, under 16 MiB). Run folders and
# checkpoints stay in a temporary folder.
#
# Fallback when the bundle cannot run there (a library mismatch): `build-on-device`
# builds into build-cuda/ from the Debian packages bench/device/fetch_debs.sh carried in
# .deps-debs/, then runs the same phases with those binaries.
set -uo pipefail  # no -e: a failing phase must not end the check
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${1:-device}"
OUT="${OUT:-/tmp/flowrun-device-check}"
BUNDLE="${FLOWRUN_BUNDLE:-$ROOT/.device-bundle}"
DEVICE="${FLOWRUN_CHECK_DEVICE:-cuda}"  # rehearse: cpu
QUICK="${FLOWRUN_CHECK_QUICK:-0}"       # rehearse: 1 (a few batches per figure)
# The Python whose torch the binaries run on: $PYTHON, else the device machine's, else python3.
for candidate in "${PYTHON:-}" /opt/torch/.venv/bin/python3 python3; do
  if [[ -n "$candidate" ]] && "$candidate" -c 'import torch' > /dev/null 2>&1; then PYTHON=$candidate; break; fi
done
PYTHON="${PYTHON:-python3}"
DEADLINE=$((SECONDS + ${FLOWRUN_CHECK_SECONDS:-450}))  # the whole check

rehearse() {
  # The bundle as the device gets it, in a folder of its own, used from a clean
  # environment: only the bundle's libraries and the wheel's torch/lib are findable.
  local tmp; tmp=$(mktemp -d /tmp/flowrun-rehearsal.XXXXXX)
  bash bench/device/make_bundle.sh || { echo "rehearse: make_bundle.sh failed"; return 1; }
  cp -r "$BUNDLE" "$tmp/bundle"
  local out="$tmp/out"; mkdir -p "$out"
  local t0=$SECONDS
  env -i HOME="$tmp" PATH=/usr/bin:/bin TMPDIR=/tmp OUT="$out" FLOWRUN_BUNDLE="$tmp/bundle" \
    FLOWRUN_CHECK_DEVICE=cpu FLOWRUN_CHECK_QUICK=1 PYTHON="$ROOT/.venv/bin/python" \
    bash bench/device_check.sh device > "$tmp/rehearsal.log" 2>&1
  local rc=$?
  echo "rehearse: the check exited $rc after $((SECONDS - t0)) s; its summary:"
  sed 's/^/  | /' "$out/summary.txt" 2>/dev/null || echo "  (no summary.txt)"
  # What comes back from a device call: at most 8 files, 16 MiB each, two folders deep,
  # names of letters, digits, '.', '_' and '-'.
  local problems=0 files
  files=$(cd "$out" && find . -mindepth 1 -type f | sed 's#^\./##')
  if (( $(echo "$files" | grep -c .) > 8 )); then echo "rehearse: more than 8 files in \$OUT"; problems=1; fi
  for f in summary.txt figures.json logs.tar.gz; do
    [[ -s "$out/$f" ]] || { echo "rehearse: \$OUT/$f is missing or empty"; problems=1; }
  done
  while read -r f; do
    [[ -z "$f" ]] && continue
    (( $(stat -c %s "$out/$f") <= 16 * 1024 * 1024 )) || { echo "rehearse: $f is over 16 MiB"; problems=1; }
    (( $(tr -cd '/' <<< "$f" | wc -c) <= 2 )) || { echo "rehearse: $f is more than two folders deep"; problems=1; }
    [[ "$(basename "$f")" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "rehearse: $f has a name the device would not return"; problems=1; }
  done <<< "$files"
  # Every figure complete, and the ones that need the logs, the samples and their
  # timestamps parsed (their parsing runs only here before a GPU call).
  "$ROOT/.venv/bin/python" - "$out/figures.json" <<'PY' || problems=1
import json, sys
f = json.load(open(sys.argv[1]))
assert f and all({"name", "value", "unit", "command"} <= set(x) for x in f), "figures.json lacks fields"
names = [x["name"] for x in f]
for start in ("flowrun images/s after warm-up", "PyTorch-Python (eager) images/s after warm-up",
              "PyTorch-Python (compiled) images/s after warm-up", "GPU busy share during the flowrun run",
              "GPU busy share during the python_eager run", "flowrun / PyTorch-Python (eager)", "test cases passed",
              "data-parallel probe checks"):
    assert any(n.startswith(start) for n in names), f"figures.json has no '{start}...' figure"
print(f"rehearse: figures.json has {len(f)} figures")
PY
  if ((rc != 0 || problems)); then
    echo "rehearse: FAILED (the check's log: $tmp/rehearsal.log)"
    tail -40 "$tmp/rehearsal.log"
    return 1
  fi
  echo "rehearse: passed (\$OUT: $(echo "$files" | tr '\n' ' '))"
  rm -rf "$tmp"
}

case "$MODE" in
  rehearse) rehearse; exit $? ;;
  device | build-on-device) ;;
  *) echo "usage: bench/device_check.sh [device|rehearse|build-on-device]" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/flowrun-check.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/raw"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
BIN="$BUNDLE/bin"
DATA="$BUNDLE/data/cifar10-jpeg.tar"
failed=()
samplers=()

note() { echo "$*" | tee -a "$SUMMARY"; }

# figures.json and logs.tar.gz as they stand: rewritten after every phase, so that a
# call killed later still brings back what was measured.
write_outputs() {
  "$PYTHON" bench/device/figures.py "$WORK" "$OUT/figures.json" > "$WORK/figures.txt" 2>> "$WORK/logs/figures.log" ||
    echo '[]' > "$OUT/figures.json"
  # Logs, the raw figures and the run folder's small files; never checkpoints.
  (cd "$WORK" && find logs raw vit python_*.json gpu_* figures.txt -type f -size -2097152c ! -name '*.h5' 2>/dev/null |
    tar -czf "$OUT/logs.tar.gz" -T -)
  if (( $(stat -c %s "$OUT/logs.tar.gz") > 15 * 1024 * 1024 )); then
    (cd "$WORK" && tar -czf "$OUT/logs.tar.gz" logs)
  fi
}

finish() {
  stop_samplers
  write_outputs
  note "-- figures (figures.json has each with its command)"
  cat "$WORK/figures.txt" >> "$SUMMARY"
  note "-- ${#failed[@]} phase(s) failed${failed[*]:+: ${failed[*]}}"
  rm -rf "$WORK"
}
trap finish EXIT

# phase NAME SECONDS FUNCTION: runs it within its limit and what is left of the deadline,
# times it, records a failure; never stops the script. No time left: skipped, a failure.
phase() {
  local name=$1 budget=$2 fn=$3 t0=$SECONDS
  local left=$((DEADLINE - SECONDS - 20))
  ((left < budget)) && budget=$left
  if ((budget < 5)); then
    note "-- $name: SKIPPED (the check's deadline is reached)"
    failed+=("$name")
    return 0
  fi
  note "-- $name (limit ${budget} s)"
  PHASE_BUDGET=$budget "$fn"
  local rc=$?
  ((rc == 0)) || failed+=("$name")
  note "   $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)") in $((SECONDS - t0)) s"
  write_outputs
  return 0
}

# limited SECONDS CMD...: SIGTERM after SECONDS, SIGKILL 15 s later (flowrun stops cleanly
# on the first signal and aborts only on a second); the bundle's binaries get its libraries.
limited() {
  local limit=$1; shift
  if [[ "$1" == "$BIN"/* ]]; then
    timeout -k 15 "$limit" env LD_LIBRARY_PATH="$RUN_LIBS" "$@"
  else
    timeout -k 15 "$limit" "$@"
  fi
}

# sample SIDE: nvidia-smi every 200 ms into WORK/gpu_SIDE.csv (time, utilization %,
# memory MiB) until stop_samplers: one process, killed (at last with SIGKILL) and waited for.
# Rehearsing on the CPU, a stand-in writes the same lines (zeros) so that the figures'
# parsing of them runs in CI.
sample() {
  if [[ "$DEVICE" == cuda* ]]; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
      -f "$WORK/gpu_$1.csv" > /dev/null 2>&1 &
  else
    while :; do date '+%Y/%m/%d %H:%M:%S.%3N, 0, 0'; sleep 0.2; done > "$WORK/gpu_$1.csv" 2>/dev/null &
  fi
  samplers+=($!)
}
stop_samplers() {
  local pid i
  for pid in "${samplers[@]}"; do
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  samplers=()
}

# bench NAME COMMAND...: runs it within BENCH_BUDGET (default the phase's); its last line
# (JSON) is a figure.
bench() {
  local name=$1; shift
  echo "$*" > "$WORK/raw/$name.cmd"
  limited "${BENCH_BUDGET:-$PHASE_BUDGET}" "$@" > "$WORK/logs/$name.log" 2>&1
  local rc=$?
  tail -1 "$WORK/logs/$name.log" > "$WORK/raw/$name.json"
  tail -1 "$WORK/logs/$name.log" | tee -a "$SUMMARY"
  return $rc
}

preflight() {
  # One Python start (seconds on these machines) answers everything asked of the machine's
  # torch: its version and lib folder, CUDA, timm, the GPU and its measured bf16 rate.
  local info
  info=$(timeout -k 5 60 "$PYTHON" - "$DEVICE" 2> "$WORK/logs/preflight_python.log" <<'PY'
import os, sys, time
import torch
print("version", torch.__version__)
print("lib", os.path.join(os.path.dirname(torch.__file__), "lib"))
print("cuda", int(torch.cuda.is_available()))
try:
    import timm, torchvision
    print("timm", timm.__version__)
except Exception:
    print("timm missing")
if sys.argv[1].startswith("cuda") and torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
    print("gpus", torch.cuda.device_count())
    # The ceiling MFU is also given against (measured, not the datasheet's): 8192^3
    # products (1.1 TFLOP each) after half a second of warm-up (clocks ramp), timed for
    # at least a second.
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    def run(seconds):
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            for _ in range(20):
                a @ b
            torch.cuda.synchronize()
            n += 20
        return n, time.perf_counter() - t
    run(0.5)
    n, s = run(1.0)
    print("bf16_tflops", round(n * 2 * 8192**3 / s / 1e12, 1))
PY
)
  field() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' <<< "$info"; }
  TORCH_LIB=$(field lib)
  if [[ -z "$TORCH_LIB" ]]; then
    note "STOP: $PYTHON cannot import torch: $(tail -1 "$WORK/logs/preflight_python.log")"
    return 1
  fi
  # CUDA's runtime libraries as the wheel ships them (site-packages/nvidia/*/lib): the
  # binaries need libcudart themselves, not only through LibTorch.
  local cuda_libs
  cuda_libs=$(ls -d "$TORCH_LIB"/../../nvidia/*/lib 2>/dev/null | tr '\n' ':')
  BIN_LIBS="$BUNDLE/lib:$TORCH_LIB:${cuda_libs%:}"
  # The bundled binaries get those first and then the machine's own path, which may be
  # where the driver's libcuda is found (it is loaded at run time: ldd does not list it).
  RUN_LIBS="$BIN_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # First: every library must resolve, and from the bundle, LibTorch's folders or the C
  # and C++ runtime: one found anywhere else (this machine's /usr/lib) is one the bundle lacks.
  local missing="" foreign=""
  local listing
  for f in "$BIN"/* "$BUNDLE"/lib/*.so*; do
    listing=$(LD_LIBRARY_PATH="$RUN_LIBS" ldd "$f" 2>&1)
    while read -r lib arrow found _; do
      if [[ "$found" == "not" || "$arrow" == "not" ]]; then
        missing+="   $(basename "$f"): $lib not found\n"
      elif [[ "$arrow" == "=>" && "$found" == /* ]]; then
        case "$found" in
          "$BUNDLE"/lib/* | "$TORCH_LIB"/* | */site-packages/nvidia/* | */site-packages/torch/*) ;;
          */libc.so* | */libm.so* | */libdl.so* | */libpthread.so* | */librt.so* | */ld-linux* | */libstdc++.so* | \
            */libgcc_s.so* | */libutil.so* | */libresolv.so*) ;;
          */libcuda.so* | */libnvidia*) ;;  # the driver's, wherever the machine keeps it
          *) foreign+="   $(basename "$f"): $lib from $found\n" ;;
        esac
      fi
    done <<< "$listing"
    # A missing symbol version ("version `GLIBCXX_3.4.30' not found") is a missing library too.
    grep -q "not found" <<< "$listing" && missing+="   $(basename "$f"): $(grep -m1 "not found" <<< "$listing")\n"
  done
  if [[ -n "$missing" ]]; then
    note "STOP: libraries the loader cannot find:"
    printf '%b' "$missing" | sort -u | tee -a "$SUMMARY"
    return 1
  fi
  if [[ -n "$foreign" ]]; then
    note "STOP: libraries found outside the bundle and LibTorch (make_bundle.sh must copy them):"
    printf '%b' "$foreign" | sort -u | tee -a "$SUMMARY"
    return 1
  fi
  note "ldd: every library of $(ls "$BIN" | wc -l) binaries and $(ls "$BUNDLE/lib" | wc -l) bundled libraries resolves, from the bundle, LibTorch or the C/C++ runtime"
  note "machine: $(nproc) cores; $(timeout 10 nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  timeout 10 nvidia-smi > "$WORK/logs/nvidia-smi.txt" 2>&1 || [[ "$DEVICE" != cuda* ]] || note "   nvidia-smi failed"
  local here built
  here=$(field version)
  built=$(cat "$BUNDLE/TORCH_VERSION" 2>/dev/null)
  note "bundle: $(head -1 "$BUNDLE/MANIFEST.txt" 2>/dev/null || echo "no MANIFEST.txt")"
  note "torch here: $here; the bundle was built against: ${built:-nothing (no $BUNDLE/TORCH_VERSION)}"
  if [[ "$here" != "$built" ]]; then
    note "STOP: the bundle needs torch $built and this machine has $here: build here (build-on-device)"
    return 1
  fi
  if [[ "$DEVICE" == cuda* && "$(field cuda)" != 1 ]]; then
    note "STOP: torch.cuda.is_available() is false on this machine"
    return 1
  fi
  # The bundled binaries must see the GPU as Python does (the driver's library is found
  # at run time, through the loader's path): else every flowrun figure would be lost.
  limited 30 "$BIN/flowrun" --version > "$WORK/logs/flowrun_version.txt" 2>&1
  note "   flowrun --version: $(tr '\n' ' ' < "$WORK/logs/flowrun_version.txt")"
  if [[ "$DEVICE" == cuda* ]] && ! grep -qE 'CUDA devices usable here: [1-9]' "$WORK/logs/flowrun_version.txt"; then
    note "STOP: the bundled flowrun sees no CUDA device though Python's torch does (LD_LIBRARY_PATH=$RUN_LIBS)"
    return 1
  fi
  [[ "$(field timm)" == missing ]] && note "   timm or torchvision does not import: the Python phases will fail"
  GPUS=$(field gpus)
  field gpu > "$WORK/gpu_name.txt"
  local rate; rate=$(field bf16_tflops)
  if [[ -n "$rate" ]]; then
    note "   bf16 matrix product (8192^3, for a second after half a second of warm-up): $rate TFLOP/s"
    echo "{\"name\": \"bf16 matrix product rate measured here (8192^3, timed for a second after half a second of warm-up)\", \"value\": $rate, \"unit\": \"TFLOP/s\"}" > "$WORK/raw/peak.json"
    echo "python3: torch.randn(8192, 8192, bf16) @ randn_like, in rounds of 20, timed >= 1 s after 0.5 s" > "$WORK/raw/peak.cmd"
  fi
  export FLOWRUN_TEST_BINARY="$BIN/flowrun" FLOWRUN_TEST_SOURCE_DIR="$ROOT" FLOWRUN_TEST_DP_PROBE="$BIN/flowrun_dp_probe"
  # The tests read CIFAR-10 from ../shared/data, which does not travel: the bundle's subset.
  if [[ ! -e ../shared/data/cifar10-jpeg.tar ]]; then
    mkdir -p ../shared/data && ln -sfn "$DATA" ../shared/data/cifar10-jpeg.tar ||
      note "   could not link ../shared/data/cifar10-jpeg.tar to the bundle's data: tests that read CIFAR-10 will fail"
  fi
  return 0
}

tests() {
  # The CPU halves run in every CI run; the saved-model case trains on the CPU, then
  # evaluates and predicts on the GPU (~20 s); the host-sync case runs two small ViT
  # pipelines on the GPU under --warn-host-syncs (~20 s).
  local filter='Devices/*/cuda:SavedModels.EvaluateAndPredictOnCudaAgreeWithTheCpu:HostSyncs.TrainingOnCuda*'
  [[ "$DEVICE" == cuda* ]] || filter='Devices/*:LabelCheck.*:ToDevice.*:MixGolden.*:HostSyncs.*'
  echo "flowrun_tests --gtest_filter='$filter'" > "$WORK/raw/tests.cmd"
  limited "$PHASE_BUDGET" "$BIN/flowrun_tests" --gtest_filter="$filter" > "$WORK/logs/tests.log" 2>&1
  local rc=$?
  # gtest's closing lines: "[  PASSED  ] N tests.", "[  SKIPPED ] N tests, listed below:", ...
  count() { grep -E "^\[  $1 *\] [0-9]+ tests?[,.]" "$WORK/logs/tests.log" | tail -1 | grep -oE '[0-9]+' | head -1; }
  local passed failed skipped
  passed=$(count PASSED) failed=$(count FAILED) skipped=$(count SKIPPED)
  note "   ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped (exit $rc)"
  echo "{\"name\": \"test cases passed ($DEVICE halves; ${failed:-0} failed, ${skipped:-0} skipped)\", \"value\": ${passed:-0}, \"unit\": \"tests\"}" > "$WORK/raw/tests.json"
  grep -E '^\[  FAILED  \] [A-Za-z]' "$WORK/logs/tests.log" | sort -u | head -20 | tee -a "$SUMMARY"
  if [[ "$DEVICE" == cuda* ]] && grep -qE '^\[  SKIPPED \] .*(/cuda|OnCuda)' "$WORK/logs/tests.log"; then
    note "   CUDA cases skipped on a GPU machine (the binaries did not see the GPU):"
    grep -E '^\[  SKIPPED \] .*(/cuda|OnCuda)' "$WORK/logs/tests.log" | sort -u | head -5 | tee -a "$SUMMARY"
    rc=1
  fi
  return $rc
}

nccl() {
  local mode=nccl ranks=1
  if [[ "$DEVICE" == cuda* ]]; then
    ranks=${GPUS:-1}
    ((ranks > 2)) && ranks=2
    ((ranks < 1)) && ranks=1
  else
    mode=collectives  # Gloo on the CPU: the same probe, the rehearsal's stand-in
  fi
  local port=$((29600 + RANDOM % 1000)) pids=() rc=0
  for ((r = 0; r < ranks; r++)); do
    RANK=$r WORLD_SIZE=$ranks LOCAL_RANK=$r LOCAL_WORLD_SIZE=$ranks MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      limited "$PHASE_BUDGET" "$BIN/flowrun_dp_probe" "$mode" 20 > "$WORK/logs/probe_rank$r.log" 2>&1 &
    pids+=($!)
  done
  for ((r = 0; r < ranks; r++)); do
    wait "${pids[$r]}"
    local code=$?
    note "   probe ($mode) rank $r of $ranks: exit $code; $(grep -c '^ok' "$WORK/logs/probe_rank$r.log") ok, $(grep -c '^FAIL' "$WORK/logs/probe_rank$r.log") failed"
    ((code == 0)) || rc=1
  done
  echo "{\"name\": \"data-parallel probe checks passed on rank 0 ($mode, $ranks rank(s); $(grep -c '^FAIL' "$WORK/logs/probe_rank0.log") failed; exit codes all 0: $([[ $rc == 0 ]] && echo yes || echo no))\", \"value\": $(grep -c '^ok' "$WORK/logs/probe_rank0.log"), \"unit\": \"checks\"}" > "$WORK/raw/nccl.json"
  echo "flowrun_dp_probe $mode 20 (RANK=0..$((ranks - 1)) WORLD_SIZE=$ranks)" > "$WORK/raw/nccl.cmd"
  return $rc
}

vit() {
  local batch=128 epochs=3 model=vit_base_patch16_224 limit=0 test_limit=0
  local log_every=20
  if ((QUICK)); then batch=8 epochs=1 model=vit_tiny_patch16_224 limit=4 test_limit=1 log_every=1; fi
  mkdir -p "$WORK/vit"
  local args=(pipelines/vit_cifar10_fullft.json --run-dir "$WORK/vit"
    --set "device=$DEVICE" --set 'nodes.train.params.pretrained=""' --set "nodes.train.params.model=$model"
    --set "nodes.train_data.params.paths=[\"$DATA\"]" --set "nodes.test_data.params.paths=[\"$DATA\"]"
    --set "nodes.train_data.params.epochs=$epochs" --set "nodes.test_data.params.epochs=$epochs"
    --set "nodes.train_data.params.per_class_limit=$limit" --set "nodes.test_data.params.per_class_limit=$test_limit"
    --set "nodes.batch.params.batch_size=$batch" --set "nodes.train.params.log_every=$log_every"
    --set nodes.checkpoint.plugin=discard --set 'nodes.checkpoint.params={}'
    --set nodes.train.params.save_every_epochs=0)  # no ~1 GB state copies to the host per epoch for a discard
  "$PYTHON" - "$batch" "$model" "${args[@]}" > "$WORK/vit/meta.json" <<'PY'
import json, sys
print(json.dumps({"command": "flowrun " + " ".join(sys.argv[3:]), "batch": int(sys.argv[1]),
                  "vit_b16": sys.argv[2] == "vit_base_patch16_224"}))
PY
  sample flowrun
  limited "$PHASE_BUDGET" "$BIN/flowrun" "${args[@]}" > "$WORK/logs/flowrun_vit.log" 2>&1
  local rc=$?
  stop_samplers
  grep -E "run finished|data stall|^.{24}(train|crop|norm|to_device) " "$WORK/logs/flowrun_vit.log" | tail -8 | tee -a "$SUMMARY"
  return $rc
}

python_reference() {  # SIDE: eager | compiled
  local side=$1 extra=()
  [[ $side == compiled ]] && extra=(--compile)
  local images="$WORK/images"
  if [[ ! -d "$images/train" ]]; then
    mkdir -p "$images" && tar -xf "$DATA" -C "$images" || return 1
  fi
  local args=(--data "$images/train" --device "$DEVICE" "${extra[@]}")
  ((QUICK)) && args+=(--model vit_tiny_patch16_224 --batch 8 --steps 3 --workers 2 --log-every 1)
  sample "python_$side"
  PYTHONUNBUFFERED=1 limited "$PHASE_BUDGET" "$PYTHON" bench/device/vit_b16_reference.py "${args[@]}" \
    > "$WORK/logs/python_$side.log" 2>&1
  local rc=$?
  stop_samplers
  tail -1 "$WORK/logs/python_$side.log" | tee -a "$SUMMARY" | grep '^{' > "$WORK/python_$side.json" || rc=1
  return $rc
}
eager() { python_reference eager; }
compiled() { python_reference compiled; }

batch_stages() {
  local rc=0 n=100
  ((QUICK)) && n=3
  # Six benches share the phase: the four flowrun ones 1/10 of it each, the two Python
  # ones (a start that imports torch and timm and opens CUDA: 5-10 s) 3/10 each.
  local BENCH_BUDGET=$((PHASE_BUDGET / 10)) python_budget=$((PHASE_BUDGET * 3 / 10))
  for size in 32 224; do
    bench "mix_flowrun_$size" "$BIN/flowrun_mix_bench" --device "$DEVICE" --size "$size" --batches "$n" || rc=1
    BENCH_BUDGET=$python_budget bench "mix_timm_$size" "$PYTHON" bench/mix_timm.py --device "$DEVICE" --size "$size" \
      --batches "$n" || rc=1
  done
  bench crop "$BIN/flowrun_mix_bench" --device "$DEVICE" --plugin batch_random_resized_crop --params '{"size": [224]}' \
    --dtype uint8 --size 32 --batches "$n" || rc=1
  bench normalize "$BIN/flowrun_mix_bench" --device "$DEVICE" --plugin batch_normalize --dtype uint8 --size 224 \
    --batches "$n" || rc=1
  return $rc
}

step() {
  if ((QUICK)); then
    bench step "$BIN/flowrun_train_step_bench" --device "$DEVICE" --model vit_cifar_micro --batch 16 --precision fp32 --steps 2
  else
    bench step "$BIN/flowrun_train_step_bench" --device "$DEVICE" --model vit_base_patch16_224 --batch 128 \
      --precision bf16 --steps 20
  fi
}

build_on_device() {
  # The documented fallback: the Debian packages fetch_debs.sh carried, unpacked in a
  # subshell (their script sets -e and exports; neither leaks), then a build.
  local tool
  for tool in cmake ninja nvcc; do
    command -v "$tool" > /dev/null || { note "   $tool is not on this machine"; return 1; }
  done
  (
    source .deps-debs/unpack_debs.sh > "$WORK/logs/unpack.log" 2>&1 || exit 1
    cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLOWRUN_VENV="$("$PYTHON" -c 'import sys; print(sys.prefix)')" \
      > "$WORK/logs/configure.log" 2>&1 || exit 1
    timeout -k 10 "$PHASE_BUDGET" cmake --build build-cuda --target flowrun flowrun_tests flowrun_dp_probe \
      flowrun_mix_bench flowrun_train_step_bench > "$WORK/logs/build.log" 2>&1 || exit 1
    mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
    cp build-cuda/flowrun build-cuda/tests/flowrun_tests build-cuda/tests/flowrun_dp_probe build-cuda/flowrun_mix_bench \
      build-cuda/flowrun_train_step_bench "$BUNDLE/bin/"
    cp /opt/deps/usr/lib/x86_64-linux-gnu/*.so* /opt/deps/usr/lib/x86_64-linux-gnu/hdf5/serial/*.so* "$BUNDLE/lib/" 2>/dev/null
    cp build-cuda/graph/libflowrun_graph.so* build-cuda/stages/libflowrun_stages.so* "$BUNDLE/lib/"
    "$PYTHON" -c 'import torch; print(torch.__version__)' > "$BUNDLE/TORCH_VERSION"
  )
}

if [[ "$MODE" == build-on-device ]]; then
  DEADLINE=$((SECONDS + 560))  # a call of its own: the build, then what time is left
  phase build 420 build_on_device
fi
phase preflight 60 preflight
if [[ " ${failed[*]} " == *" preflight "* ]]; then
  note "the preflight failed: no other phase can run"
  exit "${#failed[@]}"
fi
phase tests 120 tests
phase nccl 30 nccl
phase vit 90 vit
phase eager 60 eager
phase batch 80 batch_stages
phase step 30 step
phase compiled 120 compiled
exit "${#failed[@]}"
