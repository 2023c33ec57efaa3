#!/usr/bin/env bash
# kitt's client measurements against llama-server's own report: runs one streaming request
# N times (default 5) through `kitt engines try llama.cpp` and prints, per run and as the
# median, TTFT minus the server's prompt_ms and e2e minus prompt_ms + predicted_ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
eval "$(bash scripts/fetch-llama.sh | sed 's/^/export /')"
cargo build --release --quiet
for _ in $(seq "$runs"); do
  ./target/release/kitt engines try llama.cpp --mode native --model "$KITT_TEST_MODEL" \
    --config "binary=$LLAMA_SERVER" --config threads=2 --prompt "Name three colors." \
    --max-tokens 16 --json 2>/dev/null
done | python3 -c '
import json, statistics, sys
dec = json.JSONDecoder(); text = sys.stdin.read().strip(); rows = []
while text:
    r, end = dec.raw_decode(text); text = text[end:].strip()
    t = r["server_timings"]
    rows.append((r["ttft"] - t["prompt_ms"], r["e2e"] - t["prompt_ms"] - t["predicted_ms"],
                 r["completion_tokens"] == t["predicted_n"]))
    print("ttft - prompt_ms %6.1f ms   e2e - (prompt_ms + predicted_ms) %6.1f ms   tokens agree %s" % rows[-1])
print("median over %d runs: ttft - prompt_ms %.1f ms, e2e - server total %.1f ms" % (
    len(rows), statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)))
'
