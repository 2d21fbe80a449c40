#!/usr/bin/python3
"""Compares the executable's output with the reference's; exits 1 past the
bound.
  compare.py ppl OURS REF REL     ('perplexity: X over N tokens' lines)
  compare.py stats OURS REF ABS   ({weight: zero fraction} JSON files)
  compare.py logits OURS REF MINCOS POSITIONS  (float32 logits, a row per
                                  position: cosine at each, the same top-1)
"""
import json
import sys

import numpy as np

kind, ours, ref, bound = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == "ppl":
    a = float(open(ours).read().split()[1])
    b = float(open(ref).read().split()[1])
    rel = abs(a / b - 1)
    print("perplexity %.4f vs reference %.4f: relative difference %.2e" % (a, b, rel))
    sys.exit(rel > bound)
if kind == "logits":
    a, b = np.fromfile(ours, "<f4"), np.fromfile(ref, "<f4")
    if a.size != b.size or a.size == 0:
        print("logits: %d values vs %d" % (a.size, b.size))
        sys.exit(1)
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    a, b = a.reshape(n, -1).astype(np.float64), b.reshape(n, -1).astype(np.float64)
    cos = [float(u @ v / np.sqrt((u @ u) * (v @ v))) for u, v in zip(a, b)]
    top1 = float((a.argmax(1) == b.argmax(1)).mean())
    print("logits: min cos %.7f, top-1 %.3f" % (min(cos), top1))
    sys.exit(min(cos) < bound or top1 < 1.0)
a, b = json.load(open(ours)), json.load(open(ref))
bad = sorted(k for k in b if k not in a or abs(a[k] - b[k]) > bound)
print("%d tensors, %d differ by more than %g" % (len(b), len(bad), bound))
for k in bad[:5]:
    print("  %s: %s vs %s" % (k, a.get(k), b[k]))
sys.exit(bool(bad) or set(a) != set(b))
