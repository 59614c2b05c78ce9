#!/usr/bin/env bash
# Sourced ON THE DEVICE MACHINE from the project's root (fetch_debs.sh copies it into
# the carried .deps-debs/): unpacks every carried .deb into /opt/deps (never into /)
# and exports what CMake, the compiler and the loader need. LibTorch with CUDA comes
# from the machine's own PyTorch.
set -e  # sourced in a subshell by device_check.sh build-on-device: this does not leak
root=/opt/deps
mkdir -p "$root"
for f in .deps-debs/*.deb; do dpkg -x "$f" "$root"; done
lib=$root/usr/lib/x86_64-linux-gnu
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export CMAKE_PREFIX_PATH="$torch_prefix;$root/usr;$lib/cmake"
export HDF5_ROOT=$root/usr
export HDF5_INCLUDE_DIRS=$root/usr/include/hdf5/serial
export LD_LIBRARY_PATH=$lib:$lib/hdf5/serial:${LD_LIBRARY_PATH:-}
export LIBRARY_PATH=$lib:$lib/hdf5/serial:${LIBRARY_PATH:-}
export PKG_CONFIG_PATH=$lib/pkgconfig:$root/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}
# Debian's multiarch include folder holds OpenSSL's opensslconf.h and configuration.h.
export CPATH=$root/usr/include:$root/usr/include/x86_64-linux-gnu:$root/usr/include/hdf5/serial:${CPATH:-}
echo "deps unpacked in $root; torch from $torch_prefix"
