#!/usr/bin/env bash
# Compiles src/main/cuda/amalgam_kernels.cu to PTX for the jar (Maven runs this in
# generate-resources). PTX for compute_80 is JIT-compiled by the driver for any GPU of compute
# capability 8.0 or newer (A100, L4, L40, H100, H200, B200...). --fmad=false keeps every
# multiply and add separately rounded, as the Java kernels compute.
#
# nvcc is looked for in $NVCC, on PATH, then in $CUDA_HOME/bin (default /usr/local/cuda).
# Without nvcc the jar has no PTX and --gpu auto runs on the CPU (the log line says why);
# set AMALGAM_REQUIRE_PTX=1 (or -Damalgam.requirePtx=true) to make that a build failure.
# A compile error always fails the build.
set -euo pipefail
out_dir=$1
require=${2:-false}
source_dir=$(cd "$(dirname "$0")/../src/main/cuda" && pwd)

nvcc=${NVCC:-}
if [[ -z $nvcc ]]; then
  if command -v nvcc >/dev/null 2>&1; then
    nvcc=$(command -v nvcc)
  elif [[ -x ${CUDA_HOME:-/usr/local/cuda}/bin/nvcc ]]; then
    nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
  fi
fi
if [[ -z $nvcc ]]; then
  if [[ $require == true || ${AMALGAM_REQUIRE_PTX:-0} == 1 ]]; then
    echo "build-ptx: nvcc not found (set NVCC or put it on PATH) and the PTX is required" >&2
    exit 1
  fi
  echo "build-ptx: WARNING nvcc not found: this build has no GPU kernels; executors will use the CPU" >&2
  exit 0
fi
mkdir -p "$out_dir"
"$nvcc" -ptx -arch=compute_80 --fmad=false -lineinfo -o "$out_dir/amalgam_kernels.ptx" "$source_dir/amalgam_kernels.cu"
echo "build-ptx: $("$nvcc" --version | tail -1) -> $out_dir/amalgam_kernels.ptx"
