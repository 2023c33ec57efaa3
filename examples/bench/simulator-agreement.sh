#!/usr/bin/env bash
# What kitt measures against what the simulator is set to do: runs the `latency` benchmark
# N times (default 5) on a simulator with TTFT 40 ms and 8 ms between tokens, 20 requests of
# 32 tokens each, and prints per run and as the median how far ttft_p50, tpot_p50 and
# e2e_p50 lie above the configured 40, 8 and 288 ms (40 + 31 × 8): the client's and the
# simulator's own cost together.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
cargo build --release --quiet
for _ in $(seq "$runs"); do
  ./target/release/kitt test run latency --config ttft=40ms --config itl=8ms \
    -p requests=20 -p input_tokens=64 -p output_tokens=32 --json 2>/dev/null
done | python3 -c '
import json, statistics, sys
dec = json.JSONDecoder(); text = sys.stdin.read().strip(); rows = []
while text:
    r, end = dec.raw_decode(text); text = text[end:].strip()
    m = {x["name"]: x["value"] for x in r["metrics"]}
    rows.append((m["ttft_p50_ms"] - 40, m["tpot_p50_ms"] - 8, m["e2e_p50_ms"] - 288))
    print("ttft_p50 %+.2f ms   tpot_p50 %+.3f ms   e2e_p50 %+.2f ms" % rows[-1])
med = [statistics.median(r[i] for r in rows) for i in range(3)]
print("median over %d runs: ttft_p50 %+.2f ms, tpot_p50 %+.3f ms, e2e_p50 %+.2f ms" % (len(rows), *med))
'
