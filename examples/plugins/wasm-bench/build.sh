#!/usr/bin/env bash
# Builds the wasm-bench module for wasm32-unknown-unknown and assembles the plugin directory
# target/plugins/wasm-bench/ (module, manifest with its sha256, params schema). Fails loudly
# when the target cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
rustup target add wasm32-unknown-unknown >/dev/null
CARGO_TARGET_DIR="$root/target/wasm-bench" cargo build --quiet --release \
  --target wasm32-unknown-unknown --manifest-path "$here/Cargo.toml"
out="$root/target/plugins/wasm-bench"
mkdir -p "$out"
cp "$root/target/wasm-bench/wasm32-unknown-unknown/release/wasm_bench.wasm" "$out/wasm-bench.wasm"
sum="$(sha256sum "$out/wasm-bench.wasm" | cut -d' ' -f1)"
sed "s/^sha256 = .*/sha256 = \"$sum\"/" "$here/plugin.toml.in" > "$out/plugin.toml"
cp "$here/params.schema.json" "$here/README.md" "$out/"
echo "$out"
