#!/usr/bin/env bash
# The README's main command: sets up and builds, compiles the shipped model
# (reference/models/kjv-b1.58, a small BitNet b1.58 trained on the King James
# Bible; LOWBIT_DEMO_MODEL=DIR picks another model directory) to one
# executable and generates text for a prompt.
#   tools/demo.sh ["PROMPT"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
model="${LOWBIT_DEMO_MODEL:-$root/reference/models/kjv-b1.58}"
work="$root/build/demo"
mkdir -p "$work"
echo "== lowbitc $model -o $work/bitnet"
"$root/build/bin/lowbitc" "$model" -o "$work/bitnet"
prompt="${1:-And God said}"
echo "== $work/bitnet -p \"$prompt\" -n 64 --temp 0.7 --top-p 0.9 --seed 1"
"$work/bitnet" -p "$prompt" -n 64 --temp 0.7 --top-p 0.9 --seed 1
