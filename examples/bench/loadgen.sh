#!/usr/bin/env bash
# What kitt's load generator (its HTTP client) costs: against two nginx instances on
# 127.0.0.1 that answer every POST with a canned 64-chunk chat-completion SSE stream (one at
# full speed, one at 2 KB/s), pinned to core 0 while kitt runs on core 1, it measures
# closed-loop requests/s and client CPU per request, open-loop rate accuracy and send lag,
# single-stream TTFT, memory per in-flight stream and memory growth over a long run, and
# prints each figure next to its target with PASS/MISS. Each figure is the median of
# --runs N runs (default 3); --quick shortens everything about tenfold and runs once.
# The work is done by loadgen.py (its header says how each figure is taken). Needs nginx
# (installs the Debian package nginx-light when missing), taskset (util-linux), python3
# and two cores. KITT_BENCH_NO_BUILD=1 skips `cargo build`.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# nginx lives in /usr/sbin, which a non-root PATH may lack.
command -v nginx >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
if ! command -v nginx >/dev/null 2>&1; then
  echo "nginx is not on PATH; installing the Debian package nginx-light" >&2
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light
  fi
  command -v nginx >/dev/null 2>&1 || { echo "error: nginx still not found after installing nginx-light" >&2; exit 2; }
fi
command -v taskset >/dev/null 2>&1 || { echo "error: needs taskset (Debian package util-linux)" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || { echo "error: needs python3" >&2; exit 2; }

if [ "${KITT_BENCH_NO_BUILD:-}" != 1 ]; then
  cargo build --release --quiet
fi
exec python3 examples/bench/loadgen.py --kitt target/release/kitt "$@"
