#!/usr/bin/python3
"""Writes a random BitNet checkpoint directory (config.json + safetensors).

Two layouts from one seed hold the same ternary weights and scales:
  --layout bf16    bf16 master weights [out, in] (spec §2.3). Each matrix is
                   built so that its absmean, mean|W|, is exactly a power of
                   two and W / mean|W| rounds to the chosen ternary codes; the
                   codes are roughly a third each of -1, 0, +1.
  --layout packed  the published 2B4T layout: U8 [out/4, in] (spec §2.4) plus
                   a BF16 `weight_scale` [1] multiplier (= the same power of
                   two), so both layouts give bit-identical logits.

Examples:
  make_checkpoint.py --shape tiny out/tiny
  make_checkpoint.py --shape 2b4t --layout packed --scheme a4.8 out/2b4t
  make_checkpoint.py --hidden 320 --intermediate 864 --heads 5 --kv-heads 1 out/m
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import Writer, f32_to_bf16  # noqa: E402

SHAPES = {
    # hidden, intermediate, layers, heads, kv_heads, vocab, context
    "tiny": (64, 160, 2, 4, 2, 256, 128),
    "700m": (1536, 4096, 24, 24, 24, 128256, 2048),
    "2b4t": (2560, 6912, 30, 20, 5, 128256, 4096),
}
PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def proj_shapes(c):
    H, F, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    return {"self_attn.q_proj": (q, H), "self_attn.k_proj": (kv, H),
            "self_attn.v_proj": (kv, H), "self_attn.o_proj": (H, q),
            "mlp.gate_proj": (F, H), "mlp.up_proj": (F, H),
            "mlp.down_proj": (H, F)}


def rng_for(seed, *key):
    """An independent generator per tensor, so every layout and sharding
    draws identical values for it."""
    return np.random.default_rng([seed] + [abs(hash_str(k)) for k in key])


def hash_str(s):
    h = 2166136261
    for ch in s.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def ternary(seed, name, shape):
    """Codes in {-1, 0, 1} (a third each) and alpha, a power of two chosen so
    outputs of RMS-normed inputs are O(1)."""
    rng = rng_for(seed, name, "codes")
    n = shape[0] * shape[1]
    codes = np.ones(n, dtype=np.int8)
    codes[: n // 3] = 0
    codes[n // 3:] = rng.choice(np.array([-1, 1], dtype=np.int8), n - n // 3)
    rng.shuffle(codes)
    exponent = round(math.log2(1.0 / math.sqrt(shape[1] * 2.0 / 3.0)))
    exponent += int(rng.integers(-1, 2))
    return codes.reshape(shape), np.float32(2.0 ** exponent)


def master_weights(seed, name, codes, alpha):
    """bf16 master weights whose absmean is exactly alpha and whose absmean
    ternarization gives exactly `codes`. Magnitudes are multiples of
    u = alpha/128: zeros below 0.4 alpha, non-zeros in [alpha, 2 alpha)."""
    rng = rng_for(seed, name, "master")
    flat = codes.reshape(-1)
    zero = flat == 0
    n0, n1 = int(zero.sum()), int((~zero).sum())
    k = rng.integers(0, 52, n0)                   # zeros: k*u, k <= 51
    target = 128 * n0 - int(k.sum())              # sum of j over non-zeros
    j = np.full(n1, target // n1, dtype=np.int64)
    j[: target - int(j.sum())] += 1               # exact total
    # spread values without changing the total: move random amounts in pairs
    d = rng.integers(0, 40, n1 // 2)
    j[0:2 * (n1 // 2):2] += d
    j[1:2 * (n1 // 2):2] -= d
    np.clip(j, 0, 127, out=j)
    excess = int(j.sum()) - target                # clipping rarely shifts it
    idx = 0
    while excess != 0:
        step = -1 if excess > 0 else 1
        if 0 <= j[idx] + step <= 127:
            j[idx] += step
            excess += step
        idx = (idx + 1) % n1
    rng.shuffle(j)
    mag = np.empty(flat.size, dtype=np.float64)
    mag[zero] = k
    mag[~zero] = 128 + j
    signs = np.where(flat < 0, -1.0, 1.0)
    signs[zero] = np.where(rng.random(n0) < 0.5, -1.0, 1.0)
    w = (signs * mag * (float(alpha) / 128.0)).astype(np.float32)
    return f32_to_bf16(w).reshape(codes.shape)


def pack_hf(codes):
    """Spec §2.4: byte (r, c), bit pair i holds codes[i*R + r, c] + 1."""
    n, _ = codes.shape
    r = n // 4
    u = (codes.astype(np.int16) + 1).astype(np.uint8)
    return (u[0:r] | (u[r:2 * r] << 2) | (u[2 * r:3 * r] << 4) | (u[3 * r:] << 6)).astype(np.uint8)


def float_tensor(seed, name, shape, kind):
    rng = rng_for(seed, name, kind)
    if kind == "norm":
        x = 1.0 + 0.1 * rng.standard_normal(shape)
    else:  # embedding / lm_head
        x = rng.standard_normal(shape) * (1.5 / math.sqrt(shape[-1]))
    return f32_to_bf16(x.astype(np.float32))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    for f in ["hidden", "intermediate", "layers", "heads", "kv-heads", "vocab",
              "context", "head-dim"]:
        ap.add_argument("--" + f, type=int)
    ap.add_argument("--layout", choices=["bf16", "packed"], default="bf16")
    ap.add_argument("--scheme", choices=["b1.58", "a4.8"], default="b1.58")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1,
                    help="write N shards with model.safetensors.index.json")
    ap.add_argument("--untied", action="store_true",
                    help="write a separate lm_head.weight")
    ap.add_argument("--rope-theta", type=float, default=500000.0)
    a = ap.parse_args(argv)

    H, F, L, nh, nkv, V, C = SHAPES[a.shape]
    H = a.hidden or H
    F = a.intermediate or F
    L = a.layers or L
    nh = a.heads or nh
    nkv = a.kv_heads or (nh if a.heads and not a.kv_heads else nkv)
    V = a.vocab or V
    C = a.context or C
    hd = a.head_dim or H // nh
    cfg = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
        "hidden_size": H, "intermediate_size": F, "num_hidden_layers": L,
        "num_attention_heads": nh, "num_key_value_heads": nkv,
        "vocab_size": V, "max_position_embeddings": C,
        "rope_theta": a.rope_theta, "rms_norm_eps": 1e-5, "hidden_act": "relu2",
        "tie_word_embeddings": not a.untied, "torch_dtype": "bfloat16",
        "bos_token_id": min(128000, V - 2), "eos_token_id": min(128001, V - 1),
        "attention_bias": False, "activation_scheme": a.scheme,
    }
    if a.head_dim:
        cfg["head_dim"] = hd
    cfg["quantization_config"] = {
        "quant_method": "bitnet", "linear_class": "autobitlinear",
        "quantization_mode": "offline" if a.layout == "packed" else "online"}
    projs = proj_shapes(dict(cfg, head_dim=hd))
    if a.layout == "packed":
        bad = sorted({s[0] for s in projs.values() if s[0] % 4})
        if bad:
            sys.exit("make_checkpoint: the packed layout needs output sizes "
                     "divisible by 4, got %s" % bad)

    # (name, dtype, shape, producer)
    specs = [("model.embed_tokens.weight", "BF16", (V, H),
              lambda n: float_tensor(a.seed, n, (V, H), "embed"))]
    for i in range(L):
        p = "model.layers.%d." % i
        for norm, dim in [("input_layernorm", H), ("post_attention_layernorm", H),
                          ("self_attn.attn_sub_norm", nh * hd), ("mlp.ffn_sub_norm", F)]:
            specs.append((p + norm + ".weight", "BF16", (dim,),
                          lambda n, dim=dim: float_tensor(a.seed, n, (dim,), "norm")))
        for proj in PROJ:
            shape = projs[proj]
            name = p + proj + ".weight"
            if a.layout == "bf16":
                specs.append((name, "BF16", shape, lambda n, shape=shape:
                              master_weights(a.seed, n, *ternary(a.seed, n, shape))))
            else:
                specs.append((name, "U8", (shape[0] // 4, shape[1]),
                              lambda n, shape=shape: pack_hf(ternary(a.seed, n, shape)[0])))
                specs.append((name + "_scale", "BF16", (1,),
                              lambda n, shape=shape: f32_to_bf16(np.array(
                                  [ternary(a.seed, n[:-len("_scale")], shape)[1]], np.float32))))
    specs.append(("model.norm.weight", "BF16", (H,),
                  lambda n: float_tensor(a.seed, n, (H,), "norm")))
    if a.untied:
        specs.append(("lm_head.weight", "BF16", (V, H),
                      lambda n: float_tensor(a.seed, n, (V, H), "embed")))

    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shards = max(1, a.shards)
    per = math.ceil(len(specs) / shards)
    groups = [specs[i:i + per] for i in range(0, len(specs), per)]
    weight_map = {}
    for si, group in enumerate(groups):
        fname = ("model.safetensors" if shards == 1 else
                 "model-%05d-of-%05d.safetensors" % (si + 1, len(groups)))
        w = Writer(os.path.join(a.out_dir, fname), [(n, d, s) for n, d, s, _ in group])
        for name, _, _, make in group:
            w.write(name, make(name))
            weight_map[name] = fname
        w.close()
    if shards > 1:
        with open(os.path.join(a.out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)


if __name__ == "__main__":
    main()
