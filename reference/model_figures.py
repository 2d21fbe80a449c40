#!/usr/bin/python3
"""Measures the figures of reference/models/MODEL_CARD.md with the compiled
models (nothing here trains): validation perplexity of each model, the
a4.8 - b1.58 gap, the cost of a half-precision (--kv-bits=f16) and a 3-bit KV
cache, the accuracy of --lm-head=int8 / int4 against the 16-bit head, and the
zero fraction at each projection's input. Prints Markdown.

  model_figures.py [--lowbitc build/bin/lowbitc] [--models reference/models]
                   [--work build/model-figures] [--ctx 256] [--positions 2040]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lowbitc", default=os.path.join(here, "..", "build", "bin", "lowbitc"))
    ap.add_argument("--models", default=os.path.join(here, "models"))
    ap.add_argument("--work", default=os.path.join(here, "..", "build", "model-figures"))
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--positions", type=int, default=2040)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    valid = os.path.join(a.models, "kjv-valid.txt")
    builds = {}

    def build(model, *flags):
        key = (model,) + flags
        if key not in builds:
            exe = os.path.join(a.work, "-".join([model] + [f.strip("-").replace("=", "")
                                                           for f in flags]))
            run([a.lowbitc, os.path.join(a.models, model), "-o", exe] + list(flags))
            builds[key] = exe
        return builds[key]

    def ppl(exe):
        out = run([exe, "--ppl", valid, "--ctx", str(a.ctx)]).split()
        return float(out[1]), int(out[3])

    base = build("kjv-b1.58")
    ids = [int(t) for t in run([base, "--tokenize-file", valid, "--whole"]).replace(",", " ").split()]
    with open(os.path.join(a.models, "kjv-b1.58", "config.json")) as f:
        bos = json.load(f)["bos_token_id"]

    print("## Validation perplexity (held-out chapters, %d tokens, windows of %d, stride %d)\n"
          % (len(ids), a.ctx, a.ctx // 2))
    print("| model | KV cache | lm_head | perplexity |")
    print("|---|---|---|---:|")
    p = {}
    for model, flags, kv, head in [("kjv-b1.58", (), "float32", "bf16"),
                                   ("kjv-b1.58", ("--lm-head=int8",), "float32", "int8"),
                                   ("kjv-b1.58", ("--lm-head=int4",), "float32", "int4"),
                                   ("kjv-b1.58", ("--kv-bits=f16",), "f16", "bf16"),
                                   ("kjv-a4.8", (), "float32", "bf16"),
                                   ("kjv-a4.8", ("--kv-bits=f16",), "f16", "bf16"),
                                   ("kjv-a4.8", ("--kv-bits=3",), "3-bit", "bf16"),
                                   ("kjv-a4.8", ("--kv-bits=3", "--lm-head=int4"), "3-bit", "int4")]:
        value, _ = ppl(build(model, *flags))
        p[(model, flags)] = value
        print("| %s | %s | %s | %.3f |" % (model, kv, head, value))
    gap = p[("kjv-a4.8", ())] / p[("kjv-b1.58", ())] - 1
    print("\na4.8 vs b1.58: %+.2f %% perplexity (the paper: a4.8 within about 1.5 %% at 7B)\n"
          % (100 * gap))

    # lm_head accuracy: top-1 agreement with the 16-bit head, position by
    # position, over windows of ctx - 1 tokens after BOS.
    print("## lm_head precision (kjv-b1.58, %d positions of held-out text)\n" % a.positions)
    print("| lm_head | top-1 agreement with bf16 | max abs logit diff | perplexity |")
    print("|---|---:|---:|---:|")
    chunks = []
    w = a.ctx - 1
    for s in range(0, min(len(ids), a.positions // w * w), w):
        chunks.append([bos] + ids[s:s + w])

    def logits(exe):
        out = []
        for c in chunks:
            tf, lf = os.path.join(a.work, "t.txt"), os.path.join(a.work, "l.f32")
            with open(tf, "w") as f:
                f.write(",".join(map(str, c)))
            run([exe, "--tokens-file", tf, "-n", "0", "--logits-out", lf])
            out.append(np.fromfile(lf, dtype="<f4").reshape(len(c), -1))
        return np.concatenate(out)

    ref = logits(base)
    for head in ["int8", "int4"]:
        got = logits(build("kjv-b1.58", "--lm-head=" + head))
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        print("| %s | %.2f %% | %.3f | %.3f |" % (head, 100 * agree, float(np.abs(got - ref).max()),
                                                p[("kjv-b1.58", ("--lm-head=" + head,))]))
    print("| bf16 (reference) | 100 %% | 0 | %.3f |\n" % p[("kjv-b1.58", ())])

    # KV-cache precision: the same comparison against each model's float32
    # cache.
    print("## KV-cache precision (%d positions of held-out text)\n" % a.positions)
    print("| model | KV cache | top-1 agreement with float32 | max abs logit diff | perplexity |")
    print("|---|---|---:|---:|---:|")
    for model in ["kjv-b1.58", "kjv-a4.8"]:
        full = ref if model == "kjv-b1.58" else logits(build(model))
        for kv in ["f16", "3"]:
            flags = ("--kv-bits=" + kv,)
            got = logits(build(model, *flags))
            agree = float((got.argmax(1) == full.argmax(1)).mean())
            value = p.get((model, flags)) or ppl(build(model, *flags))[0]
            print("| %s | %s | %.2f %% | %.3f | %.3f |" % (
                model, "f16" if kv == "f16" else kv + "-bit", 100 * agree,
                float(np.abs(got - full).max()), value))
    print()

    # Zero fraction at each projection input, mean over layers (and range).
    tf = os.path.join(a.work, "stats-tokens.txt")
    with open(tf, "w") as f:
        f.write(" ".join(map(str, ids[:2048])))
    print("## Zero fraction at each projection's input (2048 held-out tokens, `--stats`)\n")
    print("| input of | b1.58 | a4.8 | a4.8 per layer | paper Table 2 (a4.8, 7B) |")
    print("|---|---:|---:|---|---:|")
    st = {m: json.loads(run([build(m), "--stats", "--tokens-file", tf]))
          for m in ["kjv-b1.58", "kjv-a4.8"]}
    paper = {"q_proj": "12.1 % (QKV)", "k_proj": "", "v_proj": "", "o_proj": "50.0 % (Out)",
             "gate_proj": "", "up_proj": "(Up/Gate)", "down_proj": "80-85 % (Down)"}
    for proj in ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]:
        def frac(m):
            return [v for k, v in sorted(st[m].items(), key=lambda kv: int(kv[0].split(".")[2]))
                    if k.endswith("." + proj + ".weight")]
        b, c = frac("kjv-b1.58"), frac("kjv-a4.8")
        print("| %s | %.1f %% | %.1f %% | %s | %s |" % (
            proj, 100 * np.mean(b), 100 * np.mean(c), " ".join("%.1f" % (100 * x) for x in c),
            paper[proj]))


if __name__ == "__main__":
    main()
