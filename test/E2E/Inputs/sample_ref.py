#!/usr/bin/python3
"""The runtime's sampler (runtime/sampler.c) over a full sort, in numpy:
  sample_ref.py LOGITS.f32 VOCAB TEMP TOP_K TOP_P MIN_P SEED
prints the token it picks from the last row of LOGITS (no repetition
penalty): p = exp((l - max) / T) in float32, the sum in float64, order by p
descending then id, keep top_k, cut at the first p < min_p x p_max and once
the kept share reaches top_p, then draw with splitmix64(SEED)."""
import sys

import numpy as np

path, vocab, temp, top_k, top_p, min_p, seed = sys.argv[1:]
vocab, top_k, seed = int(vocab), int(top_k), int(seed)
temp, top_p, min_p = np.float32(temp), np.float32(top_p), np.float32(min_p)
logits = np.fromfile(path, dtype="<f4").reshape(-1, vocab)[-1]
best = int(np.argmax(logits))
p = np.exp(((logits - logits[best]) / temp).astype(np.float32)).astype(np.float32)
total_sum = 0.0
for v in p:  # float64, in index order, as the C loop
    total_sum += float(v)
order = sorted(range(vocab), key=lambda i: (-float(p[i]), i))
n = top_k if 0 < top_k < vocab else vocab
kept, cut = 0.0, n
for i in range(n):
    pi = float(p[order[i]])
    if i > 0 and min_p > 0 and pi < float(min_p * np.float32(p[order[0]])):
        cut = i
        break
    kept += pi / total_sum
    if 0 < top_p < 1 and kept >= float(top_p):
        cut = i + 1
        break
M = (1 << 64) - 1
z = (seed + 0x9E3779B97F4A7C15) & M
z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
z ^= z >> 31
total = 0.0
for i in range(cut):
    total += float(p[order[i]])
r = float(z >> 11) / 9007199254740992.0 * total
pick = order[cut - 1]
for i in range(cut):
    r -= float(p[order[i]])
    if r <= 0.0:
        pick = order[i]
        break
print(pick)
