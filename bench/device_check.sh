#!/usr/bin/env bash
# The GPU half of the batch-augmentation work, prepared to run in one device call.
# Here first:   bash bench/device/fetch_debs.sh      (Debian packages + a CIFAR-10 subset)
# Then one device `run` with carry [".deps-debs", ".device-data"] and the command
#   bash bench/device_check.sh all      (or: build | test | bench, for a second try)
# (test also runs the NCCL data-parallel probe: one rank per GPU, up to 2)
# It writes everything under $OUT (summary.txt first). What it does:
#   build  configure against the device's own LibTorch (python3's torch) and build the
#          binaries the checks need, into build-cuda/
#   test   the test cases parameterised over cpu and cuda (OnDevice/*: batch stages and
#          Mixup equal to the CPU's, to_device delivering every batch whole, a tiny ViT
#          trained through to_device on real JPEGs), the batch twins, Mixup goldens,
#          the trainer (deferred reads) and the batch-augment pipelines
#   bench  the ViT-B/16 224-px bf16 fine-tune pipeline (random weights, one epoch of
#          the 20,000-image subset): images/s, the train stage's wait for data, GPU busy
#          share (nvidia-smi, sampled every 200 ms); the same model and batch in
#          PyTorch-Python (bench/device/vit_b16_reference.py: timm + DataLoader with
#          num_workers = cores, pin_memory, bf16, fused AdamW); mixup_cutmix and the
#          batch stages per batch on the GPU against timm's Mixup there.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-/tmp/flowrun-device-check}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
BUILD=build-cuda
note() { echo "$*" | tee -a "$SUMMARY"; }
phase="${1:-all}"

setup() {
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || note "nvidia-smi failed"
  note "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  note "torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())')"
  # shellcheck disable=SC1091
  source .deps-debs/unpack_debs.sh > "$OUT/unpack.log" 2>&1 || { note "unpacking the Debian packages failed"; return 1; }
  mkdir -p ../shared/data  # where the tests look for CIFAR-10: the carried subset
  [[ -e ../shared/data/cifar10-jpeg.tar ]] || ln -s "$ROOT/.device-data/cifar10-jpeg.tar" ../shared/data/cifar10-jpeg.tar
}

build() {
  local venv; venv="$(python3 -c 'import sys; print(sys.prefix)')"
  local t0=$SECONDS
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLOWRUN_VENV="$venv" > "$OUT/configure.log" 2>&1 \
    || { note "configure failed (configure.log)"; tail -30 "$OUT/configure.log"; return 1; }
  cmake --build "$BUILD" --target flowrun flowrun_tests flowrun_dp_probe flowrun_mix_bench flowrun_train_step_bench -- -j "$(nproc)" \
    > "$OUT/build.log" 2>&1 || { note "build failed (build.log)"; grep -m20 -B2 -A6 "error" "$OUT/build.log"; return 1; }
  note "build: ok in $((SECONDS - t0)) s"
}

run_tests() {
  local filter='Devices/OnDevice.*:BatchTwins.*:MixGolden.*:MixStage.*:ToDevice.*:Trainer.*:BatchAugmentPipeline.*:TrainPipeline.*'
  "$BUILD/tests/flowrun_tests" --gtest_filter="$filter" > "$OUT/tests.log" 2>&1
  local rc=$?
  note "tests ($filter): exit $rc; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/tests.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]|SKIPPED' "$OUT/tests.log" | head -20 | tee -a "$SUMMARY"
  # The NCCL path of data-parallel training, as one rank (one GPU here): all-reduce,
  # broadcast and the gradient Reducer on CUDA tensors through ProcessGroupNCCL.
  local gpus; gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
  local ranks=$(( gpus >= 2 ? 2 : 1 ))
  local port=$(( 29600 + RANDOM % 1000 ))
  for ((r = 0; r < ranks; r++)); do
    RANK=$r WORLD_SIZE=$ranks LOCAL_RANK=$r LOCAL_WORLD_SIZE=$ranks MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$BUILD/tests/flowrun_dp_probe" nccl 60 > "$OUT/nccl_rank$r.log" 2>&1 &
  done
  wait
  note "NCCL probe ($ranks rank(s)): $(grep -c '^ok' "$OUT/nccl_rank0.log") ok, $(grep -c '^FAIL' "$OUT/nccl_rank0.log") failed"
  grep '^FAIL' "$OUT/nccl_rank0.log" | head -5 | tee -a "$SUMMARY"
}

run_bench() {
  local tar="$ROOT/.device-data/cifar10-jpeg.tar"
  note "-- ViT-B/16 224 px bf16, random weights, flowrun pipelines/vit_cifar10_fullft.json, 1 epoch of 20,000 images"
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$OUT/gpu_util_flowrun.txt" 2>/dev/null &
  local smi=$!
  "$BUILD/flowrun" pipelines/vit_cifar10_fullft.json --run-dir "$OUT/run" \
    --set 'nodes.train.params.pretrained=""' --set "nodes.train_data.params.paths=[\"$tar\"]" \
    --set "nodes.test_data.params.paths=[\"$tar\"]" --set nodes.train_data.params.epochs=1 \
    --set nodes.test_data.params.epochs=1 --set nodes.train.params.log_every=20 > "$OUT/flowrun_vit_b16.log" 2>&1
  note "flowrun exit $?"
  kill "$smi" 2>/dev/null
  grep -E "img/s|run finished| train  +train |to_device|crop|norm " "$OUT/flowrun_vit_b16.log" | tail -12 | tee -a "$SUMMARY"
  python3 - "$OUT/gpu_util_flowrun.txt" <<'PY' | tee -a "$SUMMARY"
import sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
busy = v[len(v) // 5:] if len(v) > 10 else v  # past start-up (model build, first batches)
print(f"GPU busy share (nvidia-smi utilization, after the first fifth): {sum(busy) / max(len(busy), 1):.1f}% over {len(busy)} samples")
PY
  note "-- the same in PyTorch-Python"
  mkdir -p /tmp/cifar && tar -xf "$tar" -C /tmp/cifar
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$OUT/gpu_util_python.txt" 2>/dev/null &
  smi=$!
  PYTHONUNBUFFERED=1 python3 bench/device/vit_b16_reference.py --data /tmp/cifar/train --steps 120 \
    > "$OUT/python_vit_b16.log" 2>&1
  kill "$smi" 2>/dev/null
  tail -1 "$OUT/python_vit_b16.log" | tee -a "$SUMMARY"
  note "-- per batch on the GPU (ms, median)"
  for size in 32 224; do
    "$BUILD/flowrun_mix_bench" --device cuda --size "$size" --batches 100 | tee -a "$SUMMARY"
    python3 bench/mix_timm.py --device cuda --size "$size" --batches 100 | tee -a "$SUMMARY"
  done
  "$BUILD/flowrun_mix_bench" --device cuda --plugin batch_random_resized_crop --params '{"size": [224]}' --dtype uint8 \
    --size 32 --batches 50 | tee -a "$SUMMARY"
  "$BUILD/flowrun_mix_bench" --device cuda --plugin batch_normalize --dtype uint8 --size 224 --batches 50 | tee -a "$SUMMARY"
  "$BUILD/flowrun_train_step_bench" --device cuda --model vit_base_patch16_224 --batch 128 --precision bf16 --steps 20 \
    | tee -a "$SUMMARY"
}

case "$phase" in
  build) setup && build ;;
  test) setup && run_tests ;;
  bench) setup && run_bench ;;
  all) setup && build && run_tests && run_bench ;;
  *) echo "usage: bench/device_check.sh [all|build|test|bench]"; exit 2 ;;
esac
