#!/usr/bin/env bash
# Run HERE (the Debian build machine), from the project's root, before a device call.
# Downloads the Debian packages the GPU build needs besides LibTorch (the device's own
# PyTorch provides it) into .deps-debs/ (git-ignored), with the unpacking script beside
# them, and a CIFAR-10 subset small enough to travel (the whole tar is 92 MB, a call
# carries 64 MiB): .device-data/cifar10-jpeg.tar with 2,000 training and 200 test
# images per class (about 33 MB). Then: carry [".deps-debs", ".device-data"] and run
# bench/device_check.sh there (see its header).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
pkgs=(libtbb-dev libtbb12 libtbbmalloc2 libtbbbind-2-5 libhwloc15
      libturbojpeg0-dev libturbojpeg0 libjpeg62-turbo libpng-dev libpng16-16 zlib1g-dev
      libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0 libaec-dev
      libcurl4-openssl-dev libcurl4 libssl-dev libssl3 libnghttp2-14 librtmp1 libssh2-1 libpsl5 libbrotli1 libldap-2.5-0 libsasl2-2
      libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
      libgtest-dev googletest libopenblas0-pthread)
mkdir -p .deps-debs .device-data
for d in /.deps-debs/ /.device-data/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
apt-get update -qq >/dev/null
(cd .deps-debs && apt-get download "${pkgs[@]}" >/dev/null)
cp bench/device/unpack_debs.sh .deps-debs/
python3 - <<'PY'
import tarfile, collections
src = "../shared/data/cifar10-jpeg.tar"
keep = {"train/": 2000, "test/": 200}
seen = collections.Counter()
with tarfile.open(src) as tin, tarfile.open(".device-data/cifar10-jpeg.tar", "w") as tout:
    for m in tin:
        split = next((p for p in keep if m.name.startswith(p)), None)
        if not m.isfile() or split is None:
            continue
        cls = m.name.split("/")[1]
        if seen[(split, cls)] >= keep[split]:
            continue
        seen[(split, cls)] += 1
        tout.addfile(m, tin.extractfile(m))
print("subset:", sum(v for (s, _), v in seen.items() if s == "train/"), "train,", sum(v for (s, _), v in seen.items() if s == "test/"), "test")
PY
du -sh .deps-debs .device-data
