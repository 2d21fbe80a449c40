#!/usr/bin/python3
"""The numpy reference of a BitNet b1.58 / a4.8 forward pass (shared/bitnet-spec.md).

This is the project's executable definition of correct: every compiled logit is
compared with it. It follows the spec's "Project decisions":
  - every quantizer rounds half to even (np.rint);
  - max|x| and mean|x| are clamped to >= 1e-5 before dividing;
  - master weights: alpha = mean|W| (summed in float64, kept in float32),
    codes = clip(rint(W / alpha), -1, 1); packed: codes from spec §2.4 and
    alpha = weight_scale (a multiplier);
  - integer activations x ternary codes accumulate exactly, then
    y = acc * (d * alpha) in float32 with d = 1/s the token's scale;
  - rotate-half RoPE (pairs i, i + head_dim/2); cos/sin from float64 angles;
  - a4.8: q/k/v and gate/up inputs INT4 absmean (sqrt 7), o_proj input INT8
    with exactly K = ceil(d/2) kept per token (lower index wins ties), down_proj
    input INT8;
  - KV cache: float32 (kv-bits 16), IEEE half (kv-bits f16: each K and V
    element rounded to the nearest float16, ties to even, and widened back
    exactly), or option A at 3/4/8 bits per token and KV head with the BOS
    position at 8 bits; codes of V (and of K at position 0, where RoPE is the
    identity) come from the exact integer accumulators.
Reductions (means, dot products of floats) accumulate in float64 and round to
float32, so the result does not depend on summation order.

Usage:
  bitnet_ref.py MODEL_DIR --tokens 1,2,3 [--logits-out F] [--generate N]
                [--scheme b1.58|a4.8] [--kv-bits 16|f16|8|4|3]
  bitnet_ref.py MODEL_DIR --tokens-file F --stats   (zero fractions, JSON)
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_dir, to_f32  # noqa: E402

F32 = np.float32
EPS_Q = F32(1e-5)
SQRT7 = F32(math.sqrt(7.0))


# --------------------------------------------------------------------------
# Quantizers (spec §7.1)
# --------------------------------------------------------------------------

def ternary(t, name):
    """(codes int8 [N, K], alpha float32) of projection `name` of the tensors
    `t` (read_dir): packed U8 with its weight_scale, or float master weights
    quantized by absmean (spec §2, Project decisions)."""
    dtype, w = t[name]
    if dtype == "U8":
        r = w.shape[0]
        codes = np.empty((4 * r, w.shape[1]), np.int8)
        for i in range(4):
            codes[i * r:(i + 1) * r] = ((w >> (2 * i)) & 3).astype(np.int8) - 1
        return codes, F32(to_f32(t[name + "_scale"]).reshape(-1)[0])
    wf = to_f32((dtype, w))
    alpha = F32(np.sum(np.abs(wf.astype(np.float64))) / wf.size)
    alpha = max(alpha, EPS_Q)
    codes = np.clip(np.rint(wf.astype(np.float64) / np.float64(alpha)), -1, 1)
    return codes.astype(np.int8), alpha


def quant8(x):
    """Per-token INT8 absmax. Returns integer codes (float64) and d = 1/s."""
    x = x.astype(F32)
    gamma = np.maximum(np.max(np.abs(x), axis=-1, keepdims=True), EPS_Q)
    s = (F32(127.0) / gamma).astype(F32)
    q = np.clip(np.rint(x * s), -128, 127)
    return q.astype(np.float64), (F32(1.0) / s).astype(F32)


def quant4(x):
    """Per-token INT4 absmean with sqrt(7) (a4.8)."""
    x = x.astype(F32)
    beta = np.mean(np.abs(x).astype(np.float64), axis=-1, keepdims=True).astype(F32)
    beta = np.maximum(beta, EPS_Q)
    s = (SQRT7 / beta).astype(F32)
    q = np.clip(np.rint(x * s), -8, 7)
    return q.astype(np.float64), (F32(1.0) / s).astype(F32)


def topk_mask(x, k):
    """Keeps exactly k largest |x| per row; ties go to the lower index."""
    order = np.argsort(-np.abs(x), axis=-1, kind="stable")
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, order[..., :k], True, axis=-1)
    return np.where(mask, x, F32(0.0)).astype(F32)


def bitlinear(x, w, quant, topk=None, return_acc=False, stats=None):
    """y = (quant(x) @ T^T) * (d * alpha). `w` = (codes [N, K] int8, alpha,
    name); `stats`, a dict, accumulates [zero codes, codes] per weight name."""
    codes, alpha = w[0], w[1]
    if topk is not None:
        x = topk_mask(x, topk)
    q, d = quant(x)
    if stats is not None:
        c = stats.setdefault(w[2], [0, 0])
        c[0] += int(np.count_nonzero(q == 0))
        c[1] += int(q.size)
    acc = q @ codes.T.astype(np.float64)          # exact integer sums
    scale = (d * alpha).astype(F32)
    y = (acc.astype(F32) * scale).astype(F32)
    return (y, acc, scale) if return_acc else y


def rmsnorm(x, w, eps):
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True).astype(F32)
    r = (F32(1.0) / np.sqrt(ms + F32(eps))).astype(F32)
    return (x * r * w).astype(F32)


def rope(x, positions, head_dim, theta):
    """Rotate-half RoPE over [tokens, heads*head_dim]."""
    t = x.shape[0]
    h = x.reshape(t, -1, head_dim)
    half = head_dim // 2
    inv = theta ** (-np.arange(half, dtype=np.float64) * 2.0 / head_dim)
    ang = positions.astype(np.float64)[:, None] * inv[None, :]
    cos = np.cos(ang).astype(F32)[:, None, :]
    sin = np.sin(ang).astype(F32)[:, None, :]
    a, b = h[..., :half], h[..., half:]
    out = np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
    return out.reshape(x.shape).astype(F32)


# --------------------------------------------------------------------------
# KV cache (spec §7.3 option A)
# --------------------------------------------------------------------------

def kv_quant(z, bits, acc=None, scale=None):
    """Quantizes one head vector z; returns the dequantized vector. When the
    exact integer accumulator `acc` (z = acc * scale) is given, codes come from
    it so exact ties round half to even."""
    n = 2 ** (bits - 1) - 1
    gamma = max(F32(np.max(np.abs(z))), EPS_Q)
    if acc is not None and np.max(np.abs(acc)) * scale >= EPS_Q:
        m = np.max(np.abs(acc))
        c = np.clip(np.rint(acc * n / m), -n - 1, n)
    else:
        c = np.clip(np.rint(z.astype(np.float64) * n / np.float64(gamma)), -n - 1, n)
    step = F32(gamma / F32(n))
    return (c.astype(F32) * step).astype(F32)


def kv_bits_arg(s):
    """--kv-bits: "f16" (a half-precision cache) or a number of bits."""
    return s if s == "f16" else int(s)


class Cache:
    def __init__(self, layers, context, width, bits, kv_heads, head_dim):
        self.k = np.zeros((layers, context, width), F32)
        self.v = np.zeros((layers, context, width), F32)
        self.bits, self.kvh, self.hd = bits, kv_heads, head_dim

    def store(self, layer, pos, k, v, k_acc, v_acc, k_scale, v_scale):
        """Stores rows k, v at positions pos[0].. (quantizing when asked)."""
        for t, p in enumerate(pos):
            kr, vr = k[t].copy(), v[t].copy()
            if self.bits == "f16":
                kr = kr.astype(np.float16).astype(F32)
                vr = vr.astype(np.float16).astype(F32)
            elif self.bits != 16:
                b = 8 if p == 0 else self.bits
                for h in range(self.kvh):
                    sl = slice(h * self.hd, (h + 1) * self.hd)
                    # RoPE is the identity at position 0: K is acc * scale there
                    ka = k_acc[t, sl] if p == 0 else None
                    kr[sl] = kv_quant(k[t, sl], b, ka, k_scale[t, 0])
                    vr[sl] = kv_quant(v[t, sl], b, v_acc[t, sl], v_scale[t, 0])
            self.k[layer, p], self.v[layer, p] = kr, vr


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class Model:
    def __init__(self, model_dir, scheme=None, kv_bits=16, perturb_ulps=0):
        """perturb_ulps scales every ternary weight scale by (1 + k 2^-23):
        a model whose outputs move under it sits on a rounding tie, and tests
        should not compare against it (see shared/bitnet-spec.md)."""
        self.perturb = F32(1.0 + perturb_ulps * 2.0 ** -23)
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.c = c
        self.H = c["hidden_size"]
        self.F = c["intermediate_size"]
        self.L = c["num_hidden_layers"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh)
        self.hd = c.get("head_dim", self.H // self.nh)
        self.V = c["vocab_size"]
        self.ctx = c.get("max_position_embeddings", 2048)
        self.theta = c.get("rope_theta", 500000.0)
        self.eps = c.get("rms_norm_eps", 1e-5)
        self.scheme = scheme or c.get("activation_scheme", "b1.58")
        self.kv_bits = kv_bits
        t = read_dir(model_dir)
        self.t = t
        self.embed = to_f32(t["model.embed_tokens.weight"])
        tied = c.get("tie_word_embeddings", "lm_head.weight" not in t)
        self.head = self.embed if tied else to_f32(t["lm_head.weight"])
        self.norm = to_f32(t["model.norm.weight"])
        self.layers = []
        for i in range(self.L):
            p = "model.layers.%d." % i
            lay = {n: to_f32(t[p + n + ".weight"]) for n in
                   ["input_layernorm", "post_attention_layernorm",
                    "self_attn.attn_sub_norm", "mlp.ffn_sub_norm"]}
            for proj in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                lay[proj] = self.ternary(p + "self_attn." + proj) + (
                    p + "self_attn." + proj + ".weight",)
            for proj in ["gate_proj", "up_proj", "down_proj"]:
                lay[proj] = self.ternary(p + "mlp." + proj) + (
                    p + "mlp." + proj + ".weight",)
            self.layers.append(lay)
        self.stats = None  # a dict to count zeros at each projection input
        self.reset()

    def ternary(self, prefix):
        codes, alpha = ternary(self.t, prefix + ".weight")
        return codes, F32(alpha * self.perturb)

    def reset(self):
        self.cache = Cache(self.L, self.ctx, self.nkv * self.hd, self.kv_bits,
                           self.nkv, self.hd)
        self.pos = 0

    def forward(self, tokens):
        """Runs tokens at positions pos, pos+1, ...; returns logits [T, V]."""
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        if self.pos + T > self.ctx:
            raise ValueError("context overflow")
        pos = np.arange(self.pos, self.pos + T)
        a48 = self.scheme == "a4.8"
        q4 = quant4 if a48 else quant8
        h = self.embed[tokens].astype(F32)
        group = self.nh // self.nkv
        for li, lay in enumerate(self.layers):
            x = rmsnorm(h, lay["input_layernorm"], self.eps)
            st = self.stats
            q = bitlinear(x, lay["q_proj"], q4, stats=st)
            k, k_acc, k_scale = bitlinear(x, lay["k_proj"], q4, return_acc=True, stats=st)
            v, v_acc, v_scale = bitlinear(x, lay["v_proj"], q4, return_acc=True, stats=st)
            q = rope(q, pos, self.hd, self.theta)
            k = rope(k, pos, self.hd, self.theta)
            self.cache.store(li, pos, k, v, k_acc, v_acc, k_scale, v_scale)
            n = self.pos + T
            K = self.cache.k[li, :n].reshape(n, self.nkv, self.hd)
            Vc = self.cache.v[li, :n].reshape(n, self.nkv, self.hd)
            qh = q.reshape(T, self.nh, self.hd)
            o = np.empty((T, self.nh, self.hd), F32)
            inv = F32(1.0 / math.sqrt(self.hd))
            for j in range(self.nh):
                kv = j // group
                s = (qh[:, j, :].astype(np.float64) @ K[:, kv, :].T.astype(np.float64)).astype(F32) * inv
                s = np.where(np.arange(n)[None, :] <= pos[:, None], s, F32(-np.inf))
                s = s - np.max(s, axis=-1, keepdims=True)
                e = np.exp(s).astype(F32)
                p = (e / np.sum(e.astype(np.float64), axis=-1, keepdims=True).astype(F32)).astype(F32)
                o[:, j, :] = (p.astype(np.float64) @ Vc[:, kv, :].astype(np.float64)).astype(F32)
            o = rmsnorm(o.reshape(T, -1), lay["self_attn.attn_sub_norm"], self.eps)
            topk = (o.shape[-1] + 1) // 2 if a48 else None
            h = (h + bitlinear(o, lay["o_proj"], quant8, topk=topk, stats=st)).astype(F32)
            x = rmsnorm(h, lay["post_attention_layernorm"], self.eps)
            g = bitlinear(x, lay["gate_proj"], q4, stats=st)
            u = bitlinear(x, lay["up_proj"], q4, stats=st)
            r = np.maximum(g, F32(0.0))
            m = (r * r * u).astype(F32)
            m = rmsnorm(m, lay["mlp.ffn_sub_norm"], self.eps)
            h = (h + bitlinear(m, lay["down_proj"], quant8, stats=st)).astype(F32)
        self.pos += T
        xf = rmsnorm(h, self.norm, self.eps)
        return (xf.astype(np.float64) @ self.head.T.astype(np.float64)).astype(F32)

    def generate(self, prompt, n):
        """Greedy: returns the n tokens after the prompt."""
        logits = self.forward(prompt)
        out = []
        for _ in range(n):
            tok = int(np.argmax(logits[-1]))
            out.append(tok)
            if len(out) == n or self.pos >= self.ctx:
                break
            logits = self.forward([tok])
        return out


def perplexity(model, tokens, ctx, bos=None):
    """exp(mean NLL) of the text tokens over windows of `ctx` tokens: BOS
    (when given; models are trained with it at position 0) + up to ctx - 1
    text tokens, consecutive windows moving by half of that (fresh caches);
    each window scores only predictions no earlier window made, so every
    text token (the first too, from BOS) is predicted once. runtime/main.c
    does the same."""
    pre = [] if bos is None else [bos]
    width = ctx - len(pre)
    stride = max(width // 2, 1)
    nll, count, start, done = 0.0, 0, 0, 0 if pre else 1
    while True:
        window = pre + list(tokens[start:start + width])
        model.reset()
        logits = model.forward(window).astype(np.float64)
        for r in range(len(window) - 1):
            if start + r + 1 - len(pre) < done:
                continue
            row = logits[r]
            m = row.max()
            lse = m + np.log(np.exp(row - m).sum())
            nll += lse - row[window[r + 1]]
            count += 1
        done = start + len(window) - len(pre)
        if done >= len(tokens):
            break
        start += stride
    return math.exp(nll / count), count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--tokens", help="comma-separated prompt ids")
    ap.add_argument("--tokens-file", help="a file of token ids")
    ap.add_argument("--logits-out", help="float32 LE [positions x vocab]")
    ap.add_argument("--generate", type=int, default=0, help="greedy tokens")
    ap.add_argument("--scheme", choices=["b1.58", "a4.8"])
    ap.add_argument("--kv-bits", type=kv_bits_arg, choices=[16, "f16", 8, 4, 3],
                    default=16)
    ap.add_argument("--stats", action="store_true",
                    help="print the zero fraction at each projection input "
                         "over the tokens (context-sized windows), as JSON")
    ap.add_argument("--ppl", action="store_true",
                    help="perplexity of the tokens, BOS first in each window "
                         "(see perplexity())")
    ap.add_argument("--ctx", type=int, default=512, help="--ppl window")
    ap.add_argument("--perturb-ulps", type=int, default=0,
                    help="scale weight scales by (1 + k ulp), to screen ties")
    a = ap.parse_args(argv)
    m = Model(a.model_dir, a.scheme, a.kv_bits, a.perturb_ulps)
    if a.tokens_file:
        a.tokens = open(a.tokens_file).read()
    if not a.tokens:
        ap.error("give --tokens or --tokens-file")
    toks = [int(t) for t in a.tokens.replace(",", " ").split()]
    if a.ppl:
        bos = m.c.get("bos_token_id")
        ppl, n = perplexity(m, toks, min(a.ctx, m.ctx),
                            bos if bos is not None and 0 <= bos < m.V else None)
        print("perplexity: %.6f over %d tokens" % (ppl, n))
        return
    if a.stats:
        m.stats = {}
        for at in range(0, len(toks), m.ctx):
            m.reset()
            m.forward(toks[at:at + m.ctx])
        print(json.dumps({k: z / n for k, (z, n) in m.stats.items()}, indent=1))
        return
    if a.logits_out:
        logits = m.forward(toks)
        logits.astype("<f4").tofile(a.logits_out)
        m.reset()
    if a.generate:
        print(",".join(str(t) for t in m.generate(toks, a.generate)))


if __name__ == "__main__":
    main()
