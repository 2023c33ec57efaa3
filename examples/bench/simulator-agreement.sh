#!/usr/bin/env bash
# How precisely the simulator keeps the timing it is set to, and what it costs: runs the
# `load` benchmark through `kitt test run` on a simulator with TTFT 50 ms, 10 ms between
# tokens and 32-token answers, N times each (default 5), and prints the median of
#   - ttft_p50 and tpot_p50 against the configured 50 ms and 10 ms, at 1 and at 32 in flight
#     (target: TTFT p50 within 1 %, i.e. 0.5 ms);
#   - the simulator's own CPU time per request at 64 in flight (engine_cpu_ms_per_request:
#     its thread's CPU time over the run / requests; the configured waits cost none) and the
#     client's (client_cpu_ms_per_request, kitt's process minus the simulator's thread).
# Release build; KITT_BENCH_NO_BUILD=1 skips `cargo build`, KITT_BIN picks another binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
if [ "${KITT_BENCH_NO_BUILD:-}" != 1 ] && [ -z "${KITT_BIN:-}" ]; then
  cargo build --release --quiet
fi
kitt="${KITT_BIN:-./target/release/kitt}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
point() { # label concurrency requests
  for i in $(seq "$runs"); do
    "$kitt" test run load --config ttft=50ms --config itl=10ms --config max_concurrency=64 \
      -p concurrency="$2" -p requests="$3" -p input_tokens=64 -p output_tokens=32 \
      --json >"$out/$1.$i.json" 2>/dev/null
  done
}
point one 1 100
point c32 32 640
point c64 64 2000
python3 - "$out" <<'EOF'
import glob, json, os, statistics, sys
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    label = os.path.basename(path).split(".")[0]
    with open(path) as f:
        r = json.load(f)
    rows.setdefault(label, []).append({x["name"]: x["value"] for x in r["metrics"]})
def med(label, name):
    vals = [m[name] for m in rows.get(label, []) if name in m]
    return (statistics.median(vals), vals) if vals else (float("nan"), [])
for label, what in (("one", "1 in flight"), ("c32", "32 in flight")):
    t, tv = med(label, "ttft_p50_ms"); p, _ = med(label, "tpot_p50_ms")
    e, _ = med(label, "engine_cpu_ms_per_request")
    print("%-13s ttft_p50 %.3f ms (%+.3f ms, %+.2f %% of 50 ms; runs %s)   tpot_p50 %.3f ms (%+.3f ms)   simulator CPU %.4f ms/request"
          % (what, t, t - 50, (t - 50) / 50 * 100, " ".join("%.3f" % v for v in tv), p, p - 10, e))
e, ev = med("c64", "engine_cpu_ms_per_request"); c, _ = med("c64", "client_cpu_ms_per_request")
t, _ = med("c64", "ttft_p50_ms")
print("64 in flight  simulator CPU %.4f ms/request (runs %s)   client CPU %.4f ms/request   ttft_p50 %.3f ms"
      % (e, " ".join("%.4f" % v for v in ev), c, t))
print("(medians of %d runs; targets: ttft_p50 within 0.5 ms of 50 ms, simulator CPU <= 0.05 ms/request)"
      % min(len(v) for v in rows.values()))
EOF
