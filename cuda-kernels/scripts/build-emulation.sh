#!/usr/bin/env bash
# Builds the test-only JNI library that runs src/main/cuda/amalgam_kernels.cu on the CPU
# (src/test/cpp/emulated_device.cpp with src/main/cuda/host_emulation.h). Maven runs this after
# test-compile; the differential tests load it to compare the CUDA sources with the Java kernels.
set -euo pipefail
out_dir=$1
java_home=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=${CXX:-g++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "build-emulation: $cxx not found; install g++ (apt-get install g++) to run the kernel tests" >&2
  exit 1
fi
mkdir -p "$out_dir"
"$cxx" -std=c++17 -O2 -ffp-contract=off -fPIC -shared -Wall -Wno-unused-function \
  -DAMALGAM_HOST_EMULATION -I"$root/src/main/cuda" \
  -I"$java_home/include" -I"$java_home/include/linux" \
  -o "$out_dir/libamalgam_emulation.so" "$root/src/test/cpp/emulated_device.cpp"
echo "build-emulation: $out_dir/libamalgam_emulation.so"
