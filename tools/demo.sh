#!/usr/bin/env bash
# The README's main command: sets up and builds, makes a model, compiles it
# to a standalone executable and generates from it. Until the tokenizer lands
# the executable takes and prints token ids (see README "Status").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
work="$root/build/demo"
model="$work/model"
if [ ! -f "$model/config.json" ]; then
  /usr/bin/python3 "$root/reference/make_checkpoint.py" --shape tiny --seed 1 \
    --layout packed "$model"
fi
echo "== lowbitc $model -o $work/bitnet"
"$root/build/bin/lowbitc" "$model" -o "$work/bitnet"
echo "== $work/bitnet --tokens 254,17,42,99 -n 24   (greedy token ids)"
"$work/bitnet" --tokens 254,17,42,99 -n 24
echo "== $work/bitnet --bench -P 64 -n 64 -t 2"
"$work/bitnet" --bench -P 64 -n 64 -t 2
