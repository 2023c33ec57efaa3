#!/usr/bin/env bash
# GSM8K accuracy of SmolLM2-135M-Instruct (Q4_1) under llama-server, natively, on the 50
# real test items in tests/data/gsm8k/test-first50.jsonl: 5-shot, generative, greedy,
# 256 tokens, stop at "Question:". Prints accuracy with its standard error and the counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(bash scripts/fetch-llama.sh | sed 's/^/export /')"
cargo build --release --quiet
./target/release/kitt test run gsm8k --engine llama.cpp --mode native \
  --model "$KITT_TEST_MODEL" --config "binary=$LLAMA_SERVER" --config threads=2 \
  -p dataset=tests/data/gsm8k/test-first50.jsonl -p concurrency=1
