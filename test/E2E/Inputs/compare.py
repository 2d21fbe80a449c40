#!/usr/bin/python3
"""Compares the executable's output with the reference's; exits 1 past the
bound.
  compare.py ppl OURS REF REL     ('perplexity: X over N tokens' lines)
  compare.py stats OURS REF ABS   ({weight: zero fraction} JSON files)
"""
import json
import sys

kind, ours, ref, bound = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == "ppl":
    a = float(open(ours).read().split()[1])
    b = float(open(ref).read().split()[1])
    rel = abs(a / b - 1)
    print("perplexity %.4f vs reference %.4f: relative difference %.2e" % (a, b, rel))
    sys.exit(rel > bound)
a, b = json.load(open(ours)), json.load(open(ref))
bad = sorted(k for k in b if k not in a or abs(a[k] - b[k]) > bound)
print("%d tensors, %d differ by more than %g" % (len(b), len(bad), bound))
for k in bad[:5]:
    print("  %s: %s vs %s" % (k, a.get(k), b[k]))
sys.exit(bool(bad) or set(a) != set(b))
