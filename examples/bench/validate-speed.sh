#!/usr/bin/env bash
# Measures `kitt validate` process time on the shipped suites and on a generated ~10 MB suite.
# Usage: bash examples/bench/validate-speed.sh   (installs hyperfine with apt if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --locked
big=$(mktemp --suffix=.yaml)
python3 - "$big" <<'PY'
import sys
stops = ", ".join(f'"stop-sequence-number-{i:03}"' for i in range(40))
with open(sys.argv[1], "w") as f:
    f.write("apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: big, version: 1.0.0}\n"
            "engines:\n  sim: {uses: simulator}\nnodes:\n")
    for i in range(8000):
        f.write(f"  - id: n{i}\n    benchmark: latency\n    engine: sim\n"
                f"    params: {{requests: {1 + i % 50}, input_tokens: 128}}\n"
                f"    sampling: {{max_tokens: 64, stop: [{stops}]}}\n")
        if i:
            f.write(f"    needs: [n{i-1}]\n")
PY
echo "generated suite: $(du -h "$big" | cut -f1)"
out=$(mktemp -d)
trap 'rm -rf "$out" "$big"' EXIT
hyperfine --warmup 3 --runs 30 -N --export-json "$out/small.json" \
  "target/release/kitt validate suites/demo.yaml" \
  "target/release/kitt validate suites/demo.yaml suites/nightly.yaml examples/suites/with-templates.yaml"
hyperfine --warmup 1 --runs 10 -N --export-json "$out/big.json" "target/release/kitt validate $big"
python3 - "$out/small.json" "$out/big.json" <<'PY'
import json, sys
print("\nmedian process time (target: < 20 ms for the shipped suites, < 1 s for ~10 MB):")
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        print(f"  {r['median'] * 1000:8.1f} ms  over {len(r['times'])} runs  {r['command']}")
PY
