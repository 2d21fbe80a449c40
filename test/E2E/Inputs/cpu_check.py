#!/usr/bin/python3
"""Runs EXE (compiled for a CPU this machine may lack) and checks the runtime's
CPU-feature check against /proc/cpuinfo: cpu_check.py EXE FEATURE...

FEATURE... are features the executable's --mcpu has (LLVM names). If this
CPU lacks any of them, EXE must exit 1 with one line naming only features
this CPU lacks, those among them; if it has them all, EXE must run."""
import re
import subprocess
import sys

# LLVM feature names -> /proc/cpuinfo flags where they differ.
FLAGS = {"sse4.1": "sse4_1", "sse4.2": "sse4_2", "bmi": "bmi1", "lzcnt": "abm",
         "pclmul": "pclmulqdq", "avx512vnni": "avx512_vnni",
         "avx512bf16": "avx512_bf16", "avx512vbmi2": "avx512_vbmi2",
         "avx512bitalg": "avx512_bitalg", "avx512vpopcntdq": "avx512_vpopcntdq",
         "avx512fp16": "avx512_fp16", "avxvnni": "avx_vnni"}

exe, wanted = sys.argv[1], sys.argv[2:]
with open("/proc/cpuinfo") as f:
    flags = set(re.search(r"^flags\s*:(.*)$", f.read(), re.M).group(1).split())
lacks = [w for w in wanted if FLAGS.get(w, w) not in flags]
r = subprocess.run([exe, "--tokens", "1,2", "-n", "1"], capture_output=True, text=True)
if not lacks:
    if r.returncode != 0:
        sys.exit("FAIL: this CPU has %s, but %s exited %d: %s" %
                 (" ".join(wanted), exe, r.returncode, r.stderr.strip()))
    print("OK: this CPU has them all and the executable ran")
    sys.exit(0)
lines = r.stderr.strip().splitlines()
m = re.match(r".*: error: this CPU lacks (\S+), which the model was compiled to "
             r"use \(--mcpu=\S+\); compile it with --mcpu=native on this machine$",
             lines[0] if lines else "")
if r.returncode != 1 or len(lines) != 1 or not m:
    sys.exit("FAIL: expected exit 1 and one line naming %s; got %d: %s" %
             (" ".join(lacks), r.returncode, r.stderr.strip()))
named = m.group(1).split(",")
wrong = [n for n in named if FLAGS.get(n, n) in flags]
if wrong or not set(lacks) <= set(named):
    sys.exit("FAIL: named %s; this CPU lacks %s" % (named, lacks))
print("OK: refused, naming %s" % ",".join(named))
