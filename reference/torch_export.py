#!/usr/bin/python3
"""Exports a checkpoint directory to ONNX with torch.onnx.export (Debian's
python3-torch), through a PyTorch BitNet whose modules are named as
transformers' BitNetForCausalLM names them (model.embed_tokens,
model.layers.N.self_attn.q_proj, mlp.act_fn, model.norm, lm_head), so the
ONNX file is what exporting a real BitNet model gives: scoped node names
(/model/layers.0/self_attn/q_proj/MatMul), master weights as initializers
named as in the checkpoint, and the absmean weight quantizer and the
activation quantizers in the graph.

  torch_export.py MODEL_DIR OUT_DIR [--no-constant-folding] [--offline]
                  [--logits FILE]

The checkpoint's weights load as float32 master weights (packed ternary
ones as codes * weight_scale). With --offline, BitLinear is transformers'
AutoBitLinear for offline-quantized checkpoints instead: its weight holds
the codes -1/0/+1 and its output is multiplied by a weight_scale buffer
(F.linear(quant(x), codes) * weight_scale). OUT_DIR gets model.onnx, config.json and
tokenizer.json. --logits writes the PyTorch model's own float32 logits for
--tokens (one row per position).
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitnet_ref import ternary  # noqa: E402
from make_checkpoint import PROJ  # noqa: E402
from safetensors_io import read_dir, to_f32  # noqa: E402

nn, F = torch.nn, torch.nn.functional
EPS = 1e-5


def build(cfg, offline=False):
    H, Fd = cfg["hidden_size"], cfg["intermediate_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", H // nh)
    V, L, eps = cfg["vocab_size"], cfg["num_hidden_layers"], cfg.get("rms_norm_eps", 1e-5)
    a48 = cfg.get("activation_scheme") == "a4.8"

    def quant8(x):
        s = 127.0 / x.abs().amax(-1, keepdim=True).clamp(min=EPS)
        return (x * s).round().clamp(-128, 127) / s

    def quant4(x):
        s = math.sqrt(7.0) / x.abs().mean(-1, keepdim=True).clamp(min=EPS)
        return (x * s).round().clamp(-8, 7) / s

    class BitLinear(nn.Linear):
        def __init__(self, n_in, n_out, quant):
            super().__init__(n_in, n_out, bias=False)
            self.quant = quant
            if offline:
                self.register_buffer("weight_scale", torch.ones(1))

        def forward(self, x):
            w = self.weight
            if offline:
                return F.linear(self.quant(x), w) * self.weight_scale
            alpha = w.abs().mean().clamp(min=EPS)
            return F.linear(self.quant(x), (w / alpha).round().clamp(-1, 1) * alpha)

    class RMSNorm(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    qin = quant4 if a48 else quant8

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = BitLinear(H, nh * hd, qin)
            self.k_proj = BitLinear(H, nkv * hd, qin)
            self.v_proj = BitLinear(H, nkv * hd, qin)
            self.o_proj = BitLinear(nh * hd, H, quant8)
            self.attn_sub_norm = RMSNorm(nh * hd)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            q = self.q_proj(x).view(B, T, nh, hd).transpose(1, 2)
            k = self.k_proj(x).view(B, T, nkv, hd).transpose(1, 2)
            v = self.v_proj(x).view(B, T, nkv, hd).transpose(1, 2)

            def rope(t):
                a, b = t[..., :hd // 2], t[..., hd // 2:]
                return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            mask = torch.full((T, T), float("-inf")).triu(1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
            o = self.attn_sub_norm((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, nh * hd))
            if a48:  # the top 50 % of the o_proj input per token
                idx = o.abs().topk((nh * hd + 1) // 2, dim=-1).indices
                o = o * torch.zeros_like(o).scatter(-1, idx, 1.0)
            return self.o_proj(o)

    class ReLU2(nn.Module):
        def forward(self, x):
            return F.relu(x).square()

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = BitLinear(H, Fd, qin)
            self.up_proj = BitLinear(H, Fd, qin)
            self.down_proj = BitLinear(Fd, H, quant8)
            self.ffn_sub_norm = RMSNorm(Fd)
            self.act_fn = ReLU2()

        def forward(self, x):
            return self.down_proj(self.ffn_sub_norm(self.act_fn(self.gate_proj(x)) * self.up_proj(x)))

    class DecoderLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.mlp = MLP()
            self.input_layernorm = RMSNorm(H)
            self.post_attention_layernorm = RMSNorm(H)

        def forward(self, h, cos, sin):
            h = h + self.self_attn(self.input_layernorm(h), cos, sin)
            return h + self.mlp(self.post_attention_layernorm(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(V, H)
            self.layers = nn.ModuleList(DecoderLayer() for _ in range(L))
            self.norm = RMSNorm(H)

        def forward(self, ids):
            T = ids.shape[1]
            inv = cfg["rope_theta"] ** (-torch.arange(0, hd // 2, dtype=torch.float32) * 2.0 / hd)
            ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
            cos, sin = ang.cos(), ang.sin()
            h = self.embed_tokens(ids)
            for layer in self.layers:
                h = layer(h, cos, sin)
            return self.norm(h)

    class BitNetForCausalLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Model()
            self.lm_head = nn.Linear(H, V, bias=False)
            if cfg.get("tie_word_embeddings", True):
                self.lm_head.weight = self.model.embed_tokens.weight

        def forward(self, ids):
            return self.lm_head(self.model(ids))

    return BitNetForCausalLM()


def load(model_dir, offline=False):
    """The checkpoint as float32 master weights, by name; offline: each
    projection as codes and weight_scale."""
    t = read_dir(model_dir)
    sd = {}
    for name, (dtype, arr) in t.items():
        if name.endswith(".weight_scale"):
            continue
        if offline and (dtype == "U8" or any(name.endswith(p + ".weight") for p in PROJ)):
            codes, alpha = ternary(t, name)
            sd[name] = codes.astype(np.float32)
            sd[name + "_scale"] = np.array([alpha], np.float32)
        elif dtype == "U8":
            r = arr.shape[0]
            codes = np.empty((4 * r, arr.shape[1]), np.float32)
            for i in range(4):
                codes[i * r:(i + 1) * r] = ((arr >> (2 * i)) & 3).astype(np.float32) - 1
            sd[name] = codes * to_f32(t[name + "_scale"]).reshape(-1)[0]
        else:
            sd[name] = to_f32((dtype, arr)).astype(np.float32)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--no-constant-folding", action="store_true")
    ap.add_argument("--offline", action="store_true")
    ap.add_argument("--logits")
    ap.add_argument("--tokens", default="1,2,3,4")
    a = ap.parse_args(argv)
    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    m = build(cfg, a.offline).eval()
    sd = load(a.model_dir, a.offline)
    want = set(m.state_dict())
    if set(sd) - want or want - set(sd) - {"lm_head.weight"}:
        sys.exit("torch_export: checkpoint names do not match: extra %s, missing %s" %
                 (sorted(set(sd) - want), sorted(want - set(sd))))
    m.load_state_dict(sd, strict=False)
    os.makedirs(a.out_dir, exist_ok=True)
    ids = torch.tensor([[int(x) for x in a.tokens.split(",")]])
    with torch.no_grad():
        torch.onnx.export(m, (ids,), os.path.join(a.out_dir, "model.onnx"), opset_version=17,
                          do_constant_folding=not a.no_constant_folding,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "sequence"},
                                        "logits": {1: "sequence"}})
        if a.logits:
            m(ids)[0].numpy().astype("<f4").tofile(a.logits)
    for f in ["config.json", "tokenizer.json"]:
        if os.path.exists(os.path.join(a.model_dir, f)):
            shutil.copy(os.path.join(a.model_dir, f), os.path.join(a.out_dir, f))


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
