#!/usr/bin/python3
"""Writes a lowbit checkpoint directory as a GGUF file that llama.cpp loads
(architecture `bitnet`), so bench/run.sh can time llama.cpp on the same
weights. No Debian package ships gguf-py, hence this small writer (GGUF v3).

  gguf.py MODEL_DIR OUT.gguf [--embd f32|f16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k]
          [--tokenizer FILE]
          [--ternary tq2_0|tq1_0|i2_s|f32|f16] [--arch bitnet|bitnet-b1.58|bitnet-25]

Ternary weights become TQ2_0 (blocks of 256 codes in 64 bytes + an f16 scale,
here the tensor's alpha), or TQ1_0 (5 codes per byte, 54 bytes per 256),
bitnet.cpp's I2_S (x86 layout: per 128 codes 32 bytes, then one f32 scale)
or the float values they stand for (0, +-alpha); norms F32; the tied token
embedding / lm_head F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K. The tokenizer (model dir's
tokenizer.json or --tokenizer) is written as llama.cpp's "gpt2" BPE with the
"llama-bpe" pre-tokenizer. The encoders follow ggml's quantize_row_tq*_ref
and bitnet.cpp's quantize_i2_s; tests compile these files with lowbitc.
Timing only: llama.cpp's `bitnet` graph uses SiLU where BitNet b1.58 2B4T
uses ReLU^2, a cost that is negligible next to the matmuls.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from bitnet_ref import ternary  # noqa: E402
from safetensors_io import Writer, read_dir, to_f32  # noqa: E402

ALIGN = 32
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0 = 0, 1, 2, 3, 6, 7, 8
T_Q4_K, T_Q5_K, T_Q6_K = 12, 13, 14
T_TQ1_0, T_TQ2_0, T_I2_S = 34, 35, 36
V_U32, V_I32, V_F32, V_STR, V_ARR = 4, 5, 6, 8, 9


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == V_STR:
        return out + gstr(value)
    if vtype == V_ARR:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        if etype == V_STR:
            return out + b"".join(gstr(x) for x in items)
        return out + np.asarray(items, dtype="<i4" if etype == V_I32 else "<u4").tobytes()
    return out + struct.pack({V_U32: "<I", V_I32: "<i", V_F32: "<f"}[vtype], value)


def tq2_0(codes, alpha):
    """ggml's quantize_row_tq2_0 layout: per 256 codes, 2 chunks of 32 bytes;
    byte m of chunk j holds codes 128 j + 32 n + m (n = 0..3) + 1 at bits 2n."""
    n, k = codes.shape
    if k % 256:
        sys.exit("gguf.py: TQ2_0 needs rows of a multiple of 256 codes, got %d" % k)
    u = (codes.astype(np.uint8) + 1).reshape(n, k // 256, 2, 4, 32)
    qs = (u[:, :, :, 0] | (u[:, :, :, 1] << 2) | (u[:, :, :, 2] << 4) |
          (u[:, :, :, 3] << 6)).reshape(n, k // 256, 64)
    d = np.full((n, k // 256, 1), alpha, np.float16).view(np.uint8).reshape(n, k // 256, 2)
    return np.concatenate([qs, d], axis=2).tobytes()


def tq1_0(codes, alpha):
    """ggml's quantize_row_tq1_0_ref layout: per 256 codes, 48 bytes of five
    trits each (codes 32 n + m in byte m < 32, codes 160 + 16 n + m in byte
    32 + m) and 4 of four (codes 240 + 4 n + m); the first trit the most
    significant, each byte ceil(value * 256 / 243); then the f16 scale."""
    n, k = codes.shape
    if k % 256:
        sys.exit("gguf.py: TQ1_0 needs rows of a multiple of 256 codes, got %d" % k)
    u = (codes.astype(np.int32) + 1).reshape(n, k // 256, 256)

    def pack(v, trits):  # v: [..., trits, width] -> [..., width]
        q = np.zeros(v.shape[:-2] + v.shape[-1:], np.int32)
        for t in range(trits):
            q = q * 3 + v[..., t, :]
        q = q * 3 ** (5 - trits)
        return ((q * 256 + 242) // 243).astype(np.uint8)
    qs0 = pack(u[:, :, :160].reshape(n, k // 256, 5, 32), 5)
    qs1 = pack(u[:, :, 160:240].reshape(n, k // 256, 5, 16), 5)
    qh = pack(u[:, :, 240:].reshape(n, k // 256, 4, 4), 4)
    d = np.full((n, k // 256, 1), alpha, np.float16).view(np.uint8).reshape(n, k // 256, 2)
    return np.concatenate([qs0, qs1, qh, d], axis=2).tobytes()


def i2_s(codes, alpha):
    """bitnet.cpp's quantize_i2_s (x86): the tensor's codes row-major in
    blocks of 128; code j of a block at byte j % 32, bits 6 - 2 (j / 32);
    then the f32 scale, padded to 32 bytes."""
    if codes.size % 128:
        sys.exit("gguf.py: I2_S needs a multiple of 128 codes per tensor, got %d"
                 % codes.size)
    u = (codes.astype(np.uint8) + 1).reshape(-1, 4, 32)
    packed = (u[:, 0] << 6) | (u[:, 1] << 4) | (u[:, 2] << 2) | u[:, 3]
    return packed.tobytes() + np.float32(alpha).tobytes() + b"\0" * 28


def q4_1(x):
    """ggml's block_q4_1: per 32 values f16 d = (max - min) / 15, f16 m = min,
    byte j holds codes j (low nibble) and j + 16 (high); x = q d + m."""
    b = x.reshape(-1, 32)
    mn, mx = b.min(axis=1, keepdims=True), b.max(axis=1, keepdims=True)
    d = ((mx - mn) / 15).astype(np.float16)
    m = mn.astype(np.float16)
    df = d.astype(np.float32)
    q = np.clip(np.rint((b - m.astype(np.float32)) / np.where(df == 0, 1, df)), 0, 15).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.view(np.uint8), m.view(np.uint8), qs], axis=1).tobytes()


def q5(x, offset):
    """ggml's block_q5_0 (offset: codes - 16, x = (q - 16) d) or block_q5_1
    (no offset: x = q d + m): f16 d (and m), 4 bytes of fifth bits (bit j for
    value j), then byte j holds the low bits of values j and j + 16."""
    b = x.reshape(-1, 32).astype(np.float32)
    if offset:
        idx = np.abs(b).argmax(axis=1)
        d = (b[np.arange(len(b)), idx] / -16)[:, None].astype(np.float16)
        df = d.astype(np.float32)
        q = np.clip(np.rint(b / np.where(df == 0, 1, df)) + 16, 0, 31).astype(np.uint32)
        head = d.view(np.uint8)
    else:
        mn, mx = b.min(axis=1, keepdims=True), b.max(axis=1, keepdims=True)
        d = ((mx - mn) / 31).astype(np.float16)
        m = mn.astype(np.float16)
        df = d.astype(np.float32)
        q = np.clip(np.rint((b - m.astype(np.float32)) / np.where(df == 0, 1, df)), 0, 31).astype(np.uint32)
        head = np.concatenate([d.view(np.uint8), m.view(np.uint8)], axis=1)
    qh = ((q >> 4) << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint64).astype("<u4")
    lo = (q & 0xF).astype(np.uint8)
    qs = lo[:, :16] | (lo[:, 16:] << 4)
    return np.concatenate([head, qh[:, None].view(np.uint8), qs], axis=1).tobytes()


def q4_k(x, five=False):
    """ggml's block_q4_K: per 256 values f16 d and dmin, eight 6-bit
    (scale, min) pairs in 12 bytes, 128 bytes of nibbles (per 64 values,
    byte l: value l low, l + 32 high); x = d sc q - dmin m. five: block_q5_K,
    with 32 bytes of fifth bits (bit 2c + h of byte l for value 64c + 32h + l)
    before the nibbles."""
    top = 31 if five else 15
    b = x.reshape(-1, 8, 32).astype(np.float32)
    mins = np.maximum(-b.min(axis=2), 0)              # [n, 8]
    scales = (b.max(axis=2) + mins) / top
    d = (scales.max(axis=1, keepdims=True) / 63).astype(np.float16)
    dmin = (mins.max(axis=1, keepdims=True) / 63).astype(np.float16)
    df, dmf = d.astype(np.float32), dmin.astype(np.float32)
    sc = np.clip(np.rint(scales / np.where(df == 0, 1, df)), 0, 63).astype(np.uint8)
    m = np.clip(np.rint(mins / np.where(dmf == 0, 1, dmf)), 0, 63).astype(np.uint8)
    step = (df * sc)[:, :, None]
    q = np.clip(np.rint((b + (dmf * m)[:, :, None]) / np.where(step == 0, 1, step)),
                0, top).astype(np.uint8)
    packed = np.zeros((len(b), 12), np.uint8)
    packed[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    high = ((q >> 4) << np.arange(8, dtype=np.uint8)[None, :, None]).sum(axis=1, dtype=np.uint8)
    q = (q & 0xF).reshape(-1, 4, 2, 32)
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128)
    parts = [d.view(np.uint8), dmin.view(np.uint8), packed] + ([high] if five else []) + [qs]
    return np.concatenate(parts, axis=1).tobytes()


def q6_k(x):
    """ggml's block_q6_K: per 256 values 128 bytes of low nibbles, 64 of
    high bit pairs, 16 int8 scales, f16 d; per half of 128 values, quarter k
    of 32 in nibble k / 2 of byte l + 32 (k % 2), bits 2k of high byte l;
    x = d sc (q - 32)."""
    b = x.reshape(-1, 16, 16).astype(np.float32)
    sub = np.abs(b).max(axis=2) / 31                   # [n, 16]
    d = (sub.max(axis=1, keepdims=True) / 127).astype(np.float16)
    df = d.astype(np.float32)
    sc = np.clip(np.rint(sub / np.where(df == 0, 1, df)), -128, 127).astype(np.int8)
    step = (df * sc)[:, :, None]
    q = (np.clip(np.rint(b / np.where(step == 0, 1, step)), -32, 31) + 32).astype(np.uint8)
    q = q.reshape(-1, 2, 4, 32)                        # [n, half, quarter, l]
    lo, hi = q & 0xF, q >> 4
    ql = np.concatenate([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)],
                        axis=2).reshape(-1, 128)
    qh = (hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8)], axis=1).tobytes()


def dequantize(kind, raw, n):
    """float32 values of `raw` as llama.cpp's dequantize_row_<kind> computes
    them (the same float32 operations, in the same order)."""
    f32 = np.float32
    if kind == "f32":
        return np.frombuffer(raw, "<f4")[:n].copy()
    if kind == "f16":
        return np.frombuffer(raw, "<f2")[:n].astype(f32)

    def blocks(size):
        return np.frombuffer(raw, np.uint8).reshape(-1, size)

    def half(b, at):
        return b[:, at:at + 2].copy().view("<f2").astype(f32)  # [nb, 1]
    if kind == "q8_0":
        b = blocks(34)
        return (half(b, 0) * b[:, 2:].view(np.int8).astype(f32)).reshape(-1)
    if kind in ("q4_0", "q4_1"):
        b = blocks(18 if kind == "q4_0" else 20)
        qs = b[:, 2 if kind == "q4_0" else 4:]
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32)
        if kind == "q4_0":
            return ((q - 8).astype(f32) * half(b, 0)).reshape(-1)
        return (q.astype(f32) * half(b, 0) + half(b, 2)).reshape(-1)
    if kind in ("q5_0", "q5_1"):
        b = blocks(22 if kind == "q5_0" else 24)
        at = 2 if kind == "q5_0" else 4
        qh = b[:, at:at + 4].copy().view("<u4").astype(np.uint32)      # [nb, 1]
        qs = b[:, at + 4:]
        hi = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32) | (hi << 4)
        if kind == "q5_0":
            return ((q - 16).astype(f32) * half(b, 0)).reshape(-1)
        return (q.astype(f32) * half(b, 0) + half(b, 2)).reshape(-1)
    if kind in ("q4_k", "q5_k"):
        five = kind == "q5_k"
        b = blocks(176 if five else 144)
        sc8 = b[:, 4:16].astype(np.int32)
        scale = np.empty((len(b), 8), np.int32)
        mn = np.empty((len(b), 8), np.int32)
        for j in range(8):
            if j < 4:
                scale[:, j], mn[:, j] = sc8[:, j] & 63, sc8[:, j + 4] & 63
            else:
                scale[:, j] = (sc8[:, j + 4] & 0xF) | ((sc8[:, j - 4] >> 6) << 4)
                mn[:, j] = (sc8[:, j + 4] >> 4) | ((sc8[:, j] >> 6) << 4)
        d1 = half(b, 0) * scale.astype(f32)                # [nb, 8]
        m1 = half(b, 2) * mn.astype(f32)
        qs = b[:, 48 if five else 16:].reshape(-1, 4, 32)
        q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.int32)
        if five:  # sub-block s takes bit s of the 32 high bytes
            qh = b[:, 16:48].astype(np.int32)
            q = q + 16 * ((qh[:, None, :] >> np.arange(8)[None, :, None]) & 1)
        q = q.astype(f32)
        return (d1[:, :, None] * q - m1[:, :, None]).reshape(-1)
    if kind == "q6_k":
        b = blocks(210)
        ql = b[:, :128].reshape(-1, 2, 64)
        qh = b[:, 128:192].reshape(-1, 2, 32).astype(np.int32)
        sc = b[:, 192:208].view(np.int8).reshape(-1, 2, 8).astype(f32)
        d = half(b, 208)[:, :, None, None]
        out = np.empty((len(b), 2, 4, 32), f32)
        for k in range(4):
            low = ql[:, :, 32 * (k % 2):32 * (k % 2) + 32].astype(np.int32)
            low = low & 0xF if k < 2 else low >> 4
            q = (low | (((qh >> (2 * k)) & 3) << 4)) - 32
            s = np.stack([sc[:, :, 2 * k], sc[:, :, 2 * k + 1]], axis=2).repeat(16, axis=2)
            out[:, :, k] = (d[:, :, :, 0] * s) * q.astype(f32)
        return out.reshape(-1)
    raise ValueError(kind)


def float_ternary(codes, alpha, dtype):
    return (codes.astype(np.float32) * np.float32(alpha)).astype(dtype).tobytes()


def q8_0(x):
    b = x.reshape(-1, 32)
    d = np.abs(b).max(axis=1, keepdims=True) / 127.0
    q = np.rint(b / np.where(d == 0, 1, d)).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1).tobytes()


def q4_0(x):
    b = x.reshape(-1, 32)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), idx][:, None]
    d = mx / -8.0
    q = np.clip(np.floor(b / np.where(d == 0, 1, d) + 8.5), 0, 15).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.astype(np.float16).view(np.uint8), qs], axis=1).tobytes()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--embd", choices=["f32", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                       "q4_k", "q5_k", "q6_k"],
                    default="f16")
    ap.add_argument("--ternary", choices=["tq2_0", "tq1_0", "i2_s", "f32", "f16"],
                    default="tq2_0")
    ap.add_argument("--arch", choices=["bitnet", "bitnet-b1.58", "bitnet-25"],
                    default="bitnet")
    ap.add_argument("--tokenizer")
    ap.add_argument("--dequantized-dir",
                    help="also write the checkpoint with the embedding and head "
                         "as the GGUF file holds them (float32, dequantized as "
                         "llama.cpp does): what the file means, for a reference run")
    a = ap.parse_args(argv)
    with open(os.path.join(a.model_dir, "config.json")) as f:
        c = json.load(f)
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    nh = c["num_attention_heads"]
    t = read_dir(a.model_dir)
    tok_path = a.tokenizer or os.path.join(a.model_dir, "tokenizer.json")
    tj = None
    if a.tokenizer or os.path.exists(tok_path):  # none: token ids only
        with open(tok_path, encoding="utf-8") as f:
            tj = json.load(f)

    meta = [
        kv("general.architecture", V_STR, a.arch),
        kv("general.name", V_STR, os.path.basename(os.path.normpath(a.model_dir))),
        kv("general.alignment", V_U32, ALIGN),
        kv(a.arch + ".context_length", V_U32, c.get("max_position_embeddings", 2048)),
        kv(a.arch + ".embedding_length", V_U32, H),
        kv(a.arch + ".block_count", V_U32, L),
        kv(a.arch + ".feed_forward_length", V_U32, c["intermediate_size"]),
        kv(a.arch + ".attention.head_count", V_U32, nh),
        kv(a.arch + ".attention.head_count_kv", V_U32, c.get("num_key_value_heads", nh)),
        kv(a.arch + ".rope.freq_base", V_F32, float(c.get("rope_theta", 500000.0))),
        kv(a.arch + ".rope.dimension_count", V_U32, c.get("head_dim", H // nh)),
        kv(a.arch + ".attention.layer_norm_rms_epsilon", V_F32, float(c.get("rms_norm_eps", 1e-5))),
        kv(a.arch + ".vocab_size", V_U32, V),
    ]
    for key in ("bos_token_id", "eos_token_id"):
        if isinstance(c.get(key), int):
            meta.append(kv("tokenizer.ggml." + key, V_U32, c[key]))
    if tj is not None:
        tokens = [""] * V
        types = [1] * V
        for s, i in tj["model"]["vocab"].items():
            if i < V:
                tokens[i] = s
        for at in tj.get("added_tokens", []):
            if at["id"] < V:
                tokens[at["id"]] = at["content"]
                types[at["id"]] = 3
        for i in range(V):
            if not tokens[i]:
                tokens[i], types[i] = "<|unused_%d|>" % i, 5
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        meta += [
            kv("tokenizer.ggml.model", V_STR, "gpt2"),
            kv("tokenizer.ggml.pre", V_STR, "llama-bpe"),
            kv("tokenizer.ggml.tokens", V_ARR, (V_STR, tokens)),
            kv("tokenizer.ggml.token_type", V_ARR, (V_I32, types)),
            kv("tokenizer.ggml.merges", V_ARR, (V_STR, merges)),
        ]

    # (gguf name, ggml type, dims [ne0, ne1], producer of the bytes)
    emb = a.embd
    specs = [("token_embd.weight",
              {"f32": T_F32, "f16": T_F16, "q8_0": T_Q8_0, "q4_0": T_Q4_0, "q4_1": T_Q4_1,
               "q5_0": T_Q5_0, "q5_1": T_Q5_1, "q4_k": T_Q4_K, "q5_k": T_Q5_K,
               "q6_k": T_Q6_K}[emb], [H, V],
              lambda: embd_bytes(t, emb))]
    norm = lambda n: (lambda: to_f32(t[n]).astype("<f4").tobytes())  # noqa: E731
    specs.append(("output_norm.weight", T_F32, [H], norm("model.norm.weight")))
    if "lm_head.weight" in t:  # untied
        specs.append(("output.weight", specs[0][1], [H, V],
                      lambda: embd_bytes(t, emb, "lm_head.weight")))
    names = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
             ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
             ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
             ("ffn_down", "mlp.down_proj")]
    for i in range(L):
        p, g = "model.layers.%d." % i, "blk.%d." % i
        for gn, hn in [("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
                       ("attn_sub_norm", "self_attn.attn_sub_norm"),
                       ("ffn_sub_norm", "mlp.ffn_sub_norm")]:
            shape = t[p + hn + ".weight"][1].shape
            specs.append((g + gn + ".weight", T_F32, [shape[0]], norm(p + hn + ".weight")))
        for gn, hn in names:
            dtype, w = t[p + hn + ".weight"]
            rows = w.shape[0] * (4 if dtype == "U8" else 1)
            ty, enc = {"tq2_0": (T_TQ2_0, tq2_0), "tq1_0": (T_TQ1_0, tq1_0),
                       "i2_s": (T_I2_S, i2_s),
                       "f32": (T_F32, lambda c, s: float_ternary(c, s, "<f4")),
                       "f16": (T_F16, lambda c, s: float_ternary(c, s, "<f2"))}[a.ternary]
            specs.append((g + gn + ".weight", ty, [w.shape[1], rows],
                          lambda n=p + hn + ".weight", enc=enc: enc(*ternary(t, n))))

    def nbytes(ty, dims):
        n = int(np.prod(dims))
        return {T_F32: 4 * n, T_F16: 2 * n, T_Q8_0: n // 32 * 34, T_Q4_0: n // 32 * 18,
                T_Q4_1: n // 32 * 20, T_Q5_0: n // 32 * 22, T_Q5_1: n // 32 * 24,
                T_Q4_K: n // 256 * 144, T_Q5_K: n // 256 * 176, T_Q6_K: n // 256 * 210,
                T_TQ1_0: n // 256 * 54, T_TQ2_0: n // 256 * 66, T_I2_S: n // 4 + 32}[ty]

    info, offset = b"", 0
    for name, ty, dims, _ in specs:
        info += gstr(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ty, offset)
        offset += -(-nbytes(ty, dims) // ALIGN) * ALIGN
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(specs), len(meta)))
        f.write(b"".join(meta))
        f.write(info)
        f.write(b"\0" * (-f.tell() % ALIGN))
        for name, ty, dims, make in specs:
            data = make()
            if len(data) != nbytes(ty, dims):
                sys.exit("gguf.py: %s: %d bytes, expected %d" % (name, len(data), nbytes(ty, dims)))
            f.write(data)
            f.write(b"\0" * (-len(data) % ALIGN))
    os.replace(tmp, a.out)
    if a.dequantized_dir:
        write_dequantized(a.model_dir, a.dequantized_dir, t, emb)
    # What one decoded token reads: every tensor once (the tied embedding
    # in full, as the lm_head), and per position it attends to, a K and a V
    # row per layer in llama.cpp's default f16 cache.
    kv_width = c.get("num_key_value_heads", nh) * (H // nh)
    print(json.dumps({"gguf": a.out, "weight_bytes_per_token":
                      sum(nbytes(ty, dims) for _, ty, dims, _ in specs),
                      "kv_bytes_per_position": L * 2 * kv_width * 2}))


def write_dequantized(model_dir, out_dir, t, kind):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json")) as f:
        text = f.read()
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(text)
    tables = [n for n in ("model.embed_tokens.weight", "lm_head.weight") if n in t]
    specs = [(n, "F32" if n in tables else dtype, w.shape) for n, (dtype, w) in t.items()]
    w = Writer(os.path.join(out_dir, "model.safetensors"), specs)
    for n, (dtype, arr) in t.items():
        if n in tables:
            raw = embd_bytes(t, kind, n)
            arr = dequantize(kind, raw, arr.size).reshape(arr.shape)
        w.write(n, arr)
    w.close()


def embd_bytes(t, kind, name="model.embed_tokens.weight"):
    out = []
    dtype, w = t[name]
    for r in range(0, w.shape[0], 8192):
        x = to_f32((dtype, w[r:r + 8192])).astype(np.float32)
        out.append(x.astype("<f4").tobytes() if kind == "f32" else
                   x.astype("<f2").tobytes() if kind == "f16" else
                   {"q8_0": q8_0, "q4_0": q4_0, "q4_1": q4_1, "q4_k": q4_k,
                    "q5_0": lambda v: q5(v, True), "q5_1": lambda v: q5(v, False),
                    "q5_k": lambda v: q4_k(v, five=True), "q6_k": q6_k}[kind](x))
    return b"".join(out)


if __name__ == "__main__":
    main()
