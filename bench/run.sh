#!/usr/bin/env bash
# Benchmarks lowbit on one machine and prints a table; asserts nothing.
#   bench/run.sh [tiny|700m|2b4t] [PROMPT_LEN] [DECODE_LEN]
# Generates the checkpoint once (cached in build/bench/), compiles b1.58,
# a4.8 and b1.58 with an INT8 lm_head, runs `--bench` (weights copied into
# memory first) on 1 and 2 threads, and prints tokens/s, the weight bytes
# read per decoded token and the share of the measured read bandwidth that
# decode reaches. Run it on a quiet machine: other busy processes on these
# 2 cores wreck spinning-thread timings. llama.cpp side by side: not yet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shape=${1:-tiny} prompt=${2:-128} decode=${3:-64}
"$root/tools/setup.sh" > /dev/null
work="$root/build/bench"
mkdir -p "$work"
model="$work/$shape"
if [ ! -f "$model/config.json" ]; then
  echo "generating the $shape checkpoint (cached in $model)" >&2
  /usr/bin/python3 "$root/reference/make_checkpoint.py" --shape "$shape" \
    --layout packed "$model"
fi
clang-22 -O3 -march=native -pthread "$root/bench/bandwidth.c" -o "$work/bandwidth"
bw1=$("$work/bandwidth" 1)
bw2=$("$work/bandwidth" 2)

declare -A flags=([b1.58]="--scheme=b1.58" [a4.8]="--scheme=a4.8"
                  [b1.58+int8-head]="--scheme=b1.58 --lm-head=int8")
printf "machine read bandwidth: %s GB/s (1 thread), %s GB/s (2 threads)\n" "$bw1" "$bw2"
printf "%-18s %7s %12s %12s %14s %10s\n" config threads prefill_tok_s decode_tok_s \
  MB_per_token bw_share
for config in b1.58 a4.8 b1.58+int8-head; do
  exe="$work/$shape-$config"
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  "$root/build/bin/lowbitc" "$model" ${flags[$config]} -o "$exe" 2> /dev/null
  compile_ms=$((($(date +%s%N) - start) / 1000000))
  bytes=$(stat -c %s "$exe")
  for t in 1 2; do
    line=$("$exe" --bench -P "$prompt" -n "$decode" -t "$t")
    /usr/bin/python3 - "$config" "$t" "$line" "$bw1" "$bw2" <<'PY'
import json, sys
config, t, line, bw1, bw2 = sys.argv[1:]
d = json.loads(line)
mb = d["weight_bytes_per_token"] / 1e6  # as the compiler counts them
bw = float(bw1 if t == "1" else bw2) * 1e3
share = d["decode_tok_s"] * mb / bw
print("%-18s %7s %12.1f %12.1f %14.0f %9.0f%%" % (config, t, d["prefill_tok_s"],
      d["decode_tok_s"], mb, 100 * share))
PY
  done
  printf "%-18s compile %d.%01d s, executable %d MB\n" "$config" \
    $((compile_ms / 1000)) $((compile_ms % 1000 / 100)) $((bytes / 1000000))
done
