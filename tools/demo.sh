#!/usr/bin/env bash
# The README's main command: sets up and builds, makes a model, and compiles
# it as far as the pipeline goes today (text generation arrives with the CPU
# code generation phases; see README "Status").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
model="$root/build/demo-model"
if [ ! -f "$model/config.json" ]; then
  /usr/bin/python3 "$root/reference/make_checkpoint.py" --shape tiny --seed 1 \
    --layout packed "$model"
fi
echo "== lowbitc $model --emit=select (the furthest phase implemented so far)"
"$root/build/bin/lowbitc" "$model" --emit=select
