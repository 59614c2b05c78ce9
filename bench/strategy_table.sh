#!/usr/bin/env bash
# The strategy table (docs/results.md): pretrain vit_cifar_micro on Tiny ImageNet (once; skipped
# when runs/vit_micro_tinyimagenet/model.safetensors exists), then fine-tune it on
# CIFAR-10 with each strategy, and train the same model from scratch for the same 3 epochs
# with the same data path: vit_micro_cifar10_fullft.json without pretrained weights (so
# PyTorch's layer init) and without drop path, the from-scratch recipe
# (SCRATCH_DROP_PATH=0.1 gives the fine-tuning runs' exact recipe). Every run crops with
# reflect padding. Prints test accuracy and wall time per run; logs in runs/table-*.log.
# About an hour on the 2-core machine (22-29 min of it pretraining; 2026-12-02: 52 min in all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FLOWRUN="${FLOWRUN:-build/flowrun}"
mkdir -p runs

run() {  # name pipeline [--set ...]
  local start end name=$1 pipeline=$2
  shift 2
  start=$(date +%s)
  "$FLOWRUN" "pipelines/$pipeline.json" "$@" > "runs/table-$name.log" 2>&1
  end=$(date +%s)
  echo "$name $((end - start))" >> runs/table-times.txt
}

: > runs/table-times.txt
if [[ ! -f runs/vit_micro_tinyimagenet/model.safetensors ]]; then
  run pretrain vit_micro_tinyimagenet_pretrain
fi
for strategy in linear_probe fullft llrd gradual_unfreeze; do
  run "$strategy" "vit_micro_cifar10_$strategy"
done
run scratch vit_micro_cifar10_fullft --set 'nodes.train.params.pretrained=""' \
  --set "nodes.train.params.drop_path=${SCRATCH_DROP_PATH:-0}"

printf "| run | test accuracy | wall time |\n|---|---|---|\n"
while read -r name seconds; do
  acc=$(grep -o "result: accuracy [0-9.]*" "runs/table-$name.log" | awk '{print $3}')
  printf "| %s | %.2f%% | %d min %02d s |\n" "$name" "$(awk "BEGIN {print $acc * 100}")" $((seconds / 60)) $((seconds % 60))
done < runs/table-times.txt
