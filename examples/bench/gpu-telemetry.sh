#!/usr/bin/env bash
# Checks kitt's GPU telemetry on a machine with an NVIDIA GPU and its driver: builds the
# gpu_probe example and samples every GPU through NVML and through nvidia-smi (kitt's two
# sources) for --seconds S (default 30) every --interval-ms M (default 100), then compares
# NVML's mean power with nvidia-smi's and the energy counter's increase with mean power ×
# time, each within 5 %. Optional: --load CMD runs CMD in the background meanwhile (any
# GPU workload) so the figures are taken under load, not at idle. Exit 0: all checks
# passed; 1: a check failed; 2: a source did not work.
set -euo pipefail
cd "$(dirname "$0")/../.."
load=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --load) load="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: needs an NVIDIA driver" >&2; exit 2; }
nvidia-smi --query-gpu=index,name,driver_version,power.limit --format=csv
cargo build --release --quiet --example gpu_probe
pid=""
if [ -n "$load" ]; then
  bash -c "$load" >/dev/null 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' EXIT
  sleep 2
fi
target/release/examples/gpu_probe "${args[@]}"
