#!/usr/bin/env bash
# The FALLBACK for when the bundle (bench/device/make_bundle.sh) cannot run on the device:
# run HERE, from the project's root. Downloads the Debian packages the GPU build needs
# besides LibTorch (the device's own PyTorch provides it) into .deps-debs/ (git-ignored),
# with the unpacking script beside them, and the bundle's CIFAR-10 subset into
# .device-bundle/data/ (1,000 training and 100 test images a class). Then carry
# [".deps-debs", ".device-bundle"] and run `bash bench/device_check.sh build-on-device`
# there (see its header).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
pkgs=(libtbb-dev libtbb12 libtbbmalloc2 libtbbbind-2-5 libhwloc15
      libturbojpeg0-dev libturbojpeg0 libjpeg62-turbo libpng-dev libpng16-16 zlib1g-dev
      libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0 libaec-dev
      libcurl4-openssl-dev libcurl4 libssl-dev libssl3 libnghttp2-14 librtmp1 libssh2-1 libpsl5 libbrotli1 libldap-2.5-0 libsasl2-2
      libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libidn2-0 libunistring2 libzstd1
      libgnutls30 libhogweed6 libnettle8 libgmp10 libp11-kit0 libtasn1-6 libffi8
      libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
      libgtest-dev googletest libopenblas0-pthread)
mkdir -p .deps-debs
apt-get update -qq >/dev/null
(cd .deps-debs && apt-get download "${pkgs[@]}" >/dev/null)
cp bench/device/unpack_debs.sh .deps-debs/
bash bench/device/make_bundle.sh --no-build --data-only
du -sh .deps-debs .device-bundle
