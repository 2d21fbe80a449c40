#!/usr/bin/python3
"""Prints bench/run.sh's table from its JSON-lines results file.

`table.py --mb BENCH_JSON [GGUF_JSON PROMPT DECODE]` prints the megabytes a
decoded token reads instead (run.sh sizes its bandwidth probes with it);
`table.py --measure COMMAND...` runs a compile and prints its wall time and
peak RSS as JSON members for the results file."""
import json
import os
import resource
import subprocess
import sys
import time


def mb_per_token(b, g, prompt=0, gen=1):
    """Weights, plus the KV-cache rows a decoded token attends to on average
    (lowbit reports them; llama.cpp's from the GGUF's bytes per position)."""
    kv = b.get("kv_bytes_per_token")
    if kv is None:
        kv = g.get("kv_bytes_per_position", 0) * (b.get("prompt", prompt) + (b.get("gen", gen) + 1) / 2)
    return ((b.get("weight_bytes_per_token") or g.get("weight_bytes_per_token", 0)) + kv) / 1e6


if len(sys.argv) > 2 and sys.argv[1] == "--mb":
    g = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}
    print("%.0f" % mb_per_token(json.loads(sys.argv[2]), g, *map(int, sys.argv[4:6])))
    sys.exit(0)

if len(sys.argv) > 2 and sys.argv[1] == "--measure":
    start = time.monotonic()
    r = subprocess.run(sys.argv[2:], stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit(r.returncode)
    # ru_maxrss: the largest child waited for, in KiB (this process ran one).
    print('"compile_s": %.1f, "compile_rss_mb": %d' % (
        time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))
    sys.exit(0)

rows, probes, bursts = [], {}, {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    b, g = d["bench"], d.get("gguf", {})
    # The row's own probes (one after each timed run; llama.cpp's before and
    # after its runs), each over as many bytes as the row's decoded token
    # reads: the highest, so the bw% is the conservative figure.
    row_probes = d.get("bandwidth_gb_s") or []
    bw = max(row_probes, default=0)
    probes.setdefault(d["threads"], []).extend(row_probes)
    bursts.setdefault(d["threads"], []).extend(d.get("burst_gb_s") or [])
    mb = mb_per_token(b, g)
    rows.append((d["shape"], d["engine"], d["config"], d["threads"], b["prefill_tok_s"],
                 b["decode_tok_s"], mb, bw, d.get("compile_s"), b.get("stream_gb_s"),
                 d.get("compile_rss_mb")))
# Which llama.cpp configuration each lowbit one is compared with.
peer = {"b1.58": "TQ2_0+f16", "b1.58+int8-head": "TQ2_0+q8_0",
        "b1.58+int4-head": "TQ2_0+q4_0", "a4.8+int4-head": "TQ2_0+q4_0",
        "gguf:b1.58+int8-head": "TQ2_0+q8_0"}
index = {(s, c, t): (p, dc) for s, e, c, t, p, dc, *_ in rows}
def cpu():
    """The CPU printing the table (run.sh prints it right after its runs):
    these VMs land on different host generations from day to day, so tables
    of different days may compare different machines."""
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    return "%s, family %s model %s, %d CPUs" % (
        info.get("model name", "?"), info.get("cpu family", "?"),
        info.get("model", "?"), os.cpu_count() or 0)
def ranges(by_threads):
    return ", ".join("%.1f-%.1f GB/s (%d thread%s)" % (min(v), max(v), k, "s" * (k > 1))
                     for k, v in sorted(by_threads.items()) if v)
print("cpu: " + cpu())
print("read bandwidth over the run, sustained for 1 s over each row's bytes per token: " + ranges(probes))
if any(bursts.values()):
    print("best single ~5 ms pass of those probes: " + ranges(bursts))
print("%-6s %-10s %-20s %3s %9s %9s %8s %6s %8s %13s %9s %8s" % (
    "shape", "engine", "config", "thr", "prefill/s", "decode/s", "MB/token", "bw%",
    "stream%", "vs llama.cpp", "compile", "peak RSS"))
for s, e, c, t, p, dc, mb, bw, cs, st, rss in rows:
    share = 100 * dc * mb / (bw * 1e3) if bw else 0
    stream = "%7.0f%%" % (100 * dc * mb / (st * 1e3)) if st else ""
    ratio = ""
    if e == "lowbit" and (s, peer[c], t) in index:
        lp, ld = index[(s, peer[c], t)]
        ratio = "%.2fx/%.2fx" % (p / lp, dc / ld)
    print("%-6s %-10s %-20s %3d %9.1f %9.1f %8.0f %5.0f%% %8s %13s %9s %8s" % (
        s, e, c, t, p, dc, mb, share, stream, ratio, "%ss" % cs if cs else "",
        "%d MB" % rss if rss else ""))
print("MB/token: weights + the KV-cache rows a decoded token attends to (mean over the "
      "run; llama.cpp's cache in f16); bw%: decode/s x MB/token / read bandwidth (the highest "
      "of the row's 1 s probes, each reading MB/token bytes in 2 MiB pages, one after each "
      "timed run; llama.cpp's before and after)")
print("stream%: decode/s x MB/token / the rate at which the same executable's threads read "
      "MB/token bytes of its weights between its decoded tokens (--bench's stream_gb_s)")
print("compile: lowbitc's wall time and peak RSS for the configuration; gguf: lowbit "
      "compiling llama.cpp's own TQ2_0+q8_0 file")
print("vs llama.cpp: lowbit / llama.cpp prefill x / decode x, same shape and threads, "
      "head of the same width (bf16 ~ F16, int8 ~ Q8_0, int4 ~ Q4_0)")
