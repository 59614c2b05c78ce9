#!/usr/bin/env bash
# Installs everything flowrun needs on a fresh Debian 12 machine: the Debian
# packages (oneTBB, TurboJPEG, HDF5, spdlog, nlohmann-json, GoogleTest, CLI11, OpenSSL, ccache,
# ninja) and LibTorch from the pinned PyTorch wheel in a project-local virtual
# environment (.venv, or $FLOWRUN_VENV). Safe to run again: each step is skipped
# when already done.
set -euo pipefail

TORCH_VERSION="2.11.0"   # pinned; the GPU device machine runs the same release
# Reference readers the tests run on flowrun's output: transformers loads exported ViTs
# (tools/check_hf_export.py), tensorboard reads event files (tools/check_tensorboard_events.py).
TRANSFORMERS_VERSION="5.24.0"
TENSORBOARD_VERSION="2.21.0"
H5PY_VERSION="3.16.0"
# timm's Mixup is the reference for the mixup/cutmix stages (tools/make_mix_fixtures.py,
# bench/mix_bench.py); installed with torch and torchvision pinned beside it, since an
# unpinned timm pulls the newest torch.
TIMM_VERSION="1.0.31"
TORCHVISION_VERSION="0.26.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FLOWRUN_VENV:-$ROOT/.venv}"

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-venv
  libtbb-dev libturbojpeg0-dev libpng-dev libhdf5-dev libspdlog-dev
  nlohmann-json3-dev libgtest-dev libcli11-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION into $VENV (LibTorch for the C++ build; large download the first time)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
if ! "$VENV/bin/python" -c "import transformers, sys; sys.exit(transformers.__version__ != '$TRANSFORMERS_VERSION')" 2>/dev/null; then
  echo "setup: installing transformers==$TRANSFORMERS_VERSION into $VENV (for the export check)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "transformers==$TRANSFORMERS_VERSION"
fi
if ! "$VENV/bin/python" -c "import tensorboard, sys; sys.exit(tensorboard.__version__ != '$TENSORBOARD_VERSION')" 2>/dev/null; then
  echo "setup: installing tensorboard==$TENSORBOARD_VERSION into $VENV (for the event-file check)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "tensorboard==$TENSORBOARD_VERSION"
fi
if ! "$VENV/bin/python" -c "import h5py, sys; sys.exit(h5py.__version__ != '$H5PY_VERSION')" 2>/dev/null; then
  echo "setup: installing h5py==$H5PY_VERSION into $VENV (for the checkpoint check)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "h5py==$H5PY_VERSION"
fi
if ! "$VENV/bin/python" -c "import timm, torchvision, sys; sys.exit(timm.__version__ != '$TIMM_VERSION' or torchvision.__version__.split('+')[0] != '$TORCHVISION_VERSION')" 2>/dev/null; then
  echo "setup: installing timm==$TIMM_VERSION and torchvision==$TORCHVISION_VERSION into $VENV (the Mixup/CutMix reference)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "timm==$TIMM_VERSION" "torchvision==$TORCHVISION_VERSION" "torch==$TORCH_VERSION"
fi
echo "setup: ok (torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), $(cmake --version | head -1))"
