#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript and
# spark.worker.resource.gpu.discoveryScript): prints the GPUs this executor may use as
#   {"name": "gpu", "addresses": ["0", "1"]}
# Addresses are CUDA device ordinals as the executor's process sees them, which is what
# Amalgam's executors open (TaskContext.resources().get("gpu")). Where CUDA_VISIBLE_DEVICES
# restricts the process (YARN and Kubernetes GPU isolation set it), CUDA numbers the visible
# devices 0..n-1, so those are the addresses.
set -euo pipefail

if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
  IFS=',' read -r -a visible <<<"$CUDA_VISIBLE_DEVICES"
  count=${#visible[@]}
else
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-discovery.sh: nvidia-smi not found: install the NVIDIA driver on this node, or do not request" \
      "spark.executor.resource.gpu.amount for executors without GPUs" >&2
    exit 1
  fi
  count=$(nvidia-smi --query-gpu=index --format=csv,noheader | grep -c '[0-9]' || true)
fi

addresses=""
for ((i = 0; i < count; i++)); do
  addresses+="${addresses:+, }\"$i\""
done
echo "{\"name\": \"gpu\", \"addresses\": [$addresses]}"
