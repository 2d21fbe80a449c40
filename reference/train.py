#!/usr/bin/python3
"""Trains the small BitNet models lowbit ships (reference/models/).

Recipe (reference/models/MODEL_CARD.md gives the figures it produced):
  1. Text: the King James Bible from Debian's bible-kjv-text, printed by the
     `bible` program of bible-kjv (public domain). One verse per line, verse
     numbers and chapter headings dropped, a blank line after each chapter.
     Split by chapter: every 20th chapter (index % 20 == 19) is validation.
  2. Tokenizer: byte-level BPE in the Hugging Face tokenizer.json format with
     the Llama-3 pre-tokenizer split (so lowbit's runtime tokenizer reads it),
     trained on the training chapters; 4088 regular tokens (256 bytes + 3832
     merges) and 8 Llama-3-named special tokens.
  3. Stage 1, BitNet b1.58 (W1.58 A8): latent float weights, absmean ternary
     weights and per-token INT8 absmax activations with straight-through
     estimators, exactly the quantizers of reference/bitnet_ref.py.
  4. Stage 2, from the stage-1 weights, the same number of steps for both
     models: b1.58 continues with its quantizers; BitNet a4.8 switches to
     INT4 absmean inputs to q/k/v and gate/up, TopK (K = ceil(d/2)) + INT8 at
     the o_proj input and INT8 at the down_proj input (the paper's two-stage
     recipe). Equal budgets make the a4.8 - b1.58 gap a fair comparison.
  5. Export: the packed Hugging Face layout (spec §2.4: U8 [out/4, in] codes +
     a BF16 weight_scale), bf16 embeddings and norms, tied lm_head.

Needs Debian's python3-torch (CPU), python3-regex and bible-kjv(-text);
libopenblas0-pthread makes torch's matmuls ~10x faster than the reference
BLAS it otherwise uses. Training is not part of the test command.

  train.py --out reference/models [--steps1 N] [--steps2 N] [--threads 2]
           [--work DIR] [--resume-stage1 DIR/stage1.pt --only b1.58|a4.8]
  train.py --tokenizer-only --out DIR      (corpus + tokenizer.json only)
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import Writer, f32_to_bf16  # noqa: E402

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
                r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_0|>",
            "<|reserved_special_token_1|>", "<|reserved_special_token_2|>"]
VOCAB = 4096


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

def kjv_chapters():
    """[(book chapter heading, [verse text, ...]), ...] in canonical order."""
    out = subprocess.run(["bible", "Gen1:1-Rev22:21"], capture_output=True,
                         text=True, check=True).stdout
    chapters, verses = [], None
    head = regex.compile(r"^(\S.*\S) (\d+)$")
    verse = regex.compile(r"^\s+(\d+) (.*)$")
    for line in out.splitlines():
        if not line.strip():
            continue
        m = verse.match(line)
        if m:
            verses.append(m.group(2).strip())
        elif head.match(line) and not line.startswith(" "):
            verses = []
            chapters.append((line, verses))
        else:                       # a verse's continuation line
            verses[-1] += " " + line.strip()
    return chapters


def corpus():
    """(train text, validation text)."""
    chapters = kjv_chapters()
    if len(chapters) != 1189:
        sys.exit("train.py: expected 1189 chapters from `bible`, got %d"
                 % len(chapters))
    parts = ([], [])
    for i, (_, verses) in enumerate(chapters):
        parts[i % 20 == 19].append("\n".join(verses) + "\n\n")
    return "".join(parts[0]), "".join(parts[1])


# --------------------------------------------------------------------------
# Byte-level BPE
# --------------------------------------------------------------------------

def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) +
          list(range(0xAE, 0x100)))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_bpe(text, n_merges):
    """Returns the merges [(left bytes, right bytes)] in rank order."""
    counts = {}
    for chunk in regex.findall(LLAMA3_SPLIT, text):
        counts[chunk] = counts.get(chunk, 0) + 1
    words = [[bytes([b]) for b in w.encode()] for w in counts]
    freq = list(counts.values())
    pairs, where = {}, {}
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] = pairs.get((a, b), 0) + freq[wi]
            where.setdefault((a, b), set()).add(wi)
    merges = []
    for _ in range(n_merges):
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        a, b = best
        joined = a + b
        for wi in sorted(where.pop(best, ())):
            w, f = words[wi], freq[wi]
            for p in zip(w, w[1:]):          # remove this word's old pairs
                pairs[p] -= f
                if pairs[p] == 0:
                    del pairs[p]
            i, nw = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    nw.append(joined)
                    i += 2
                else:
                    nw.append(w[i])
                    i += 1
            words[wi] = nw
            for p in zip(nw, nw[1:]):
                pairs[p] = pairs.get(p, 0) + f
                where.setdefault(p, set()).add(wi)
        pairs.pop(best, None)
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.b2u = bytes_to_unicode()
        self.tokens = [bytes([b]) for b in sorted(self.b2u, key=lambda b: ord(self.b2u[b]))]
        self.tokens += [a + b for a, b in merges]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.rank = {p: r for r, p in enumerate(merges)}
        self.merges = merges
        self.cache = {}

    def u(self, b):
        return "".join(self.b2u[x] for x in b)

    def encode_chunk(self, chunk):
        ids = self.cache.get(chunk)
        if ids is None:
            w = [bytes([b]) for b in chunk.encode()]
            while len(w) > 1:
                r, i = min((self.rank.get((w[i], w[i + 1]), 1 << 30), i)
                           for i in range(len(w) - 1))
                if r == 1 << 30:
                    break
                w[i:i + 2] = [w[i] + w[i + 1]]
            ids = self.cache[chunk] = [self.ids[t] for t in w]
        return ids

    def encode(self, text):
        out = []
        for chunk in regex.findall(LLAMA3_SPLIT, text):
            out += self.encode_chunk(chunk)
        return out

    def save(self, path):
        n = len(self.tokens)
        added = [{"id": n + i, "content": s, "single_word": False,
                  "lstrip": False, "rstrip": False, "normalized": False,
                  "special": True} for i, s in enumerate(SPECIALS)]
        doc = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False,
                 "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                               "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                        "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False,
                      "byte_fallback": False, "ignore_merges": False,
                      "vocab": {self.u(t): i for i, t in enumerate(self.tokens)},
                      "merges": ["%s %s" % (self.u(a), self.u(b))
                                 for a, b in self.merges]},
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        cfg = {"bos_token": SPECIALS[0], "eos_token": SPECIALS[1],
               "model_max_length": 512, "tokenizer_class": "PreTrainedTokenizerFast",
               "clean_up_tokenization_spaces": False}
        with open(os.path.join(os.path.dirname(path), "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)


# --------------------------------------------------------------------------
# The model (reference/bitnet_ref.py's forward, with straight-through
# estimators)
# --------------------------------------------------------------------------

def build_model(torch, cfg):
    nn, F = torch.nn, torch.nn.functional
    EPS = 1e-5

    def ste(x, q):
        return x + (q - x).detach()

    def quant8(x):
        s = 127.0 / x.abs().amax(-1, keepdim=True).clamp(min=EPS)
        return ste(x, (x * s).round().clamp(-128, 127) / s)

    def quant4(x):
        s = math.sqrt(7.0) / x.abs().mean(-1, keepdim=True).clamp(min=EPS)
        return ste(x, (x * s).round().clamp(-8, 7) / s)

    def topk(x):
        k = (x.shape[-1] + 1) // 2
        idx = x.abs().topk(k, dim=-1).indices
        return x * torch.zeros_like(x).scatter_(-1, idx, 1.0)

    class BitLinear(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(n_out, n_in) * 0.02)

        def forward(self, x, quant):
            w = self.weight
            alpha = w.abs().mean().clamp(min=EPS)
            w = ste(w, (w / alpha).round().clamp(-1, 1) * alpha)
            return F.linear(quant(x), w)

    class RMSNorm(nn.Module):
        def __init__(self, n, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.eps = eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    H, Fd, nh, nkv = (cfg["hidden_size"], cfg["intermediate_size"],
                      cfg["num_attention_heads"], cfg["num_key_value_heads"])
    hd, eps = H // nh, cfg["rms_norm_eps"]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm(H, eps)
            self.post_attention_layernorm = RMSNorm(H, eps)
            self.attn_sub_norm = RMSNorm(nh * hd, eps)
            self.ffn_sub_norm = RMSNorm(Fd, eps)
            self.q_proj = BitLinear(H, nh * hd)
            self.k_proj = BitLinear(H, nkv * hd)
            self.v_proj = BitLinear(H, nkv * hd)
            self.o_proj = BitLinear(nh * hd, H)
            self.gate_proj = BitLinear(H, Fd)
            self.up_proj = BitLinear(H, Fd)
            self.down_proj = BitLinear(Fd, H)

        def forward(self, h, cos, sin, mask, a48):
            B, T, _ = h.shape
            qin = quant4 if a48 else quant8
            x = self.input_layernorm(h)
            q = self.q_proj(x, qin).view(B, T, nh, hd).transpose(1, 2)
            k = self.k_proj(x, qin).view(B, T, nkv, hd).transpose(1, 2)
            v = self.v_proj(x, qin).view(B, T, nkv, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
            o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, nh * hd)
            o = self.attn_sub_norm(o)
            h = h + self.o_proj(topk(o) if a48 else o, quant8)
            x = self.post_attention_layernorm(h)
            g = self.gate_proj(x, qin)
            u = self.up_proj(x, qin)
            m = self.ffn_sub_norm(F.relu(g).square() * u)
            return h + self.down_proj(m, quant8)

    def rope(x, cos, sin):
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], H)
            nn.init.normal_(self.embed_tokens.weight, std=0.02)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))
            self.norm = RMSNorm(H, eps)
            self.a48 = False

        def forward(self, tokens):
            T = tokens.shape[1]
            inv = cfg["rope_theta"] ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
            cos, sin = ang.cos().float(), ang.sin().float()
            mask = torch.full((T, T), float("-inf")).triu(1)
            h = self.embed_tokens(tokens)
            for lay in self.layers:
                h = lay(h, cos, sin, mask, self.a48)
            return self.norm(h) @ self.embed_tokens.weight.t()

    return Model()


# --------------------------------------------------------------------------
# Export (packed HF layout, spec §2.4)
# --------------------------------------------------------------------------

def export(model, cfg, scheme, tok, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    c = dict(cfg, activation_scheme=scheme)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    tensors = [("model.embed_tokens.weight", "BF16", f32_to_bf16(sd["embed_tokens.weight"]))]
    for i in range(cfg["num_hidden_layers"]):
        p, q = "layers.%d." % i, "model.layers.%d." % i
        for src, dst in [("input_layernorm", "input_layernorm"),
                         ("post_attention_layernorm", "post_attention_layernorm"),
                         ("attn_sub_norm", "self_attn.attn_sub_norm"),
                         ("ffn_sub_norm", "mlp.ffn_sub_norm")]:
            tensors.append((q + dst + ".weight", "BF16", f32_to_bf16(sd[p + src + ".weight"])))
        for proj, grp in [("q_proj", "self_attn"), ("k_proj", "self_attn"),
                          ("v_proj", "self_attn"), ("o_proj", "self_attn"),
                          ("gate_proj", "mlp"), ("up_proj", "mlp"), ("down_proj", "mlp")]:
            w = sd[p + proj + ".weight"]
            alpha = np.float32(max(np.abs(w.astype(np.float64)).mean(), 1e-5))
            codes = np.clip(np.rint(w.astype(np.float64) / np.float64(alpha)), -1, 1)
            r = codes.shape[0] // 4
            u = (codes + 1).astype(np.uint8)
            packed = u[:r] | (u[r:2 * r] << 2) | (u[2 * r:3 * r] << 4) | (u[3 * r:] << 6)
            name = "%s%s.%s.weight" % (q, grp, proj)
            tensors.append((name, "U8", packed))
            tensors.append((name + "_scale", "BF16", f32_to_bf16(np.array([alpha], np.float32))))
    tensors.append(("model.norm.weight", "BF16", f32_to_bf16(sd["norm.weight"])))
    w = Writer(os.path.join(out_dir, "model.safetensors"),
               [(n, d, a.shape) for n, d, a in tensors])
    for n, _, a in tensors:
        w.write(n, a)
    w.close()
    tok.save(os.path.join(out_dir, "tokenizer.json"))


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps1", type=int, default=2000)
    ap.add_argument("--steps2", type=int, default=500)
    ap.add_argument("--lr1", type=float, default=3e-3)
    ap.add_argument("--lr2", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-only", action="store_true")
    ap.add_argument("--work", default="/tmp", help="where stage1.pt goes")
    ap.add_argument("--resume-stage1", help="a stage1.pt to start stage 2 from")
    ap.add_argument("--only", choices=["b1.58", "a4.8"], help="one stage-2 model")
    a = ap.parse_args(argv)

    t0 = time.time()
    train_text, val_text = corpus()
    merges = train_bpe(train_text, VOCAB - len(SPECIALS) - 256)
    tok = Tokenizer(merges)
    assert len(tok.tokens) == VOCAB - len(SPECIALS), len(tok.tokens)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "kjv-valid.txt"), "w") as f:
        f.write(val_text)
    train_ids = np.array(tok.encode(train_text), np.int64)
    val_ids = np.array(tok.encode(val_text), np.int64)
    print("corpus: train %d chars / %d tokens, validation %d chars / %d tokens; "
          "tokenizer %.1f s" % (len(train_text), len(train_ids), len(val_text),
                                len(val_ids), time.time() - t0), flush=True)
    if a.tokenizer_only:
        tok.save(os.path.join(a.out, "tokenizer.json"))
        return

    import torch
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    bos, eos = VOCAB - len(SPECIALS), VOCAB - len(SPECIALS) + 1
    cfg = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
        "hidden_size": a.hidden, "intermediate_size": a.intermediate,
        "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "vocab_size": VOCAB,
        "max_position_embeddings": a.seq, "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5, "hidden_act": "relu2", "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "bos_token_id": bos, "eos_token_id": eos,
        "attention_bias": False,
        "quantization_config": {"quant_method": "bitnet",
                                "linear_class": "autobitlinear",
                                "quantization_mode": "offline"},
    }
    model = build_model(torch, cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %d parameters (%d in the embedding)" %
          (n_params, model.embed_tokens.weight.numel()), flush=True)
    rng = np.random.default_rng(a.seed)

    def batch(ids, n):
        starts = rng.integers(0, len(ids) - a.seq, n)
        x = np.stack([np.concatenate([[bos], ids[s:s + a.seq - 1]]) for s in starts])
        y = np.stack([ids[s:s + a.seq] for s in starts])
        return torch.from_numpy(x), torch.from_numpy(y)

    def val_loss():
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(val_ids) - a.seq, a.seq - 1):
                x = torch.from_numpy(np.concatenate([[bos], val_ids[s:s + a.seq - 1]]))[None]
                y = torch.from_numpy(val_ids[s:s + a.seq])[None]
                total += torch.nn.functional.cross_entropy(
                    model(x).view(-1, VOCAB), y.view(-1), reduction="sum").item()
                count += y.numel()
        model.train()
        return total / count

    def stage(name, steps, lr, a48):
        model.a48 = a48
        decay = [p for n, p in model.named_parameters() if n.endswith("proj.weight")]
        other = [p for n, p in model.named_parameters() if not n.endswith("proj.weight")]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": other, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.95))
        warm = min(100, steps // 10)
        ts = time.time()
        for step in range(steps):
            f = (step + 1) / warm if step < warm else \
                0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
            for g in opt.param_groups:
                g["lr"] = lr * f
            if step == steps // 2:       # the BitNet recipe: no decay late on
                opt.param_groups[0]["weight_decay"] = 0.0
            x, y = batch(train_ids, a.batch)
            loss = torch.nn.functional.cross_entropy(model(x).view(-1, VOCAB), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0 or step == steps - 1:
                el = time.time() - ts
                print("%s step %d/%d loss %.4f lr %.2e (%.0f tok/s)" %
                      (name, step, steps, loss.item(), lr * f,
                       (step + 1) * a.batch * a.seq / el), flush=True)
        vl = val_loss()
        print("%s done in %.0f s: validation loss %.4f, perplexity %.3f" %
              (name, time.time() - ts, vl, math.exp(vl)), flush=True)

    stage1 = os.path.join(a.work, "stage1.pt")
    if a.resume_stage1:
        model.load_state_dict(torch.load(a.resume_stage1))
    else:
        stage("stage1 b1.58", a.steps1, a.lr1, False)
        torch.save(model.state_dict(), stage1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # Stage 2: from the same stage-1 weights, the same number of steps for
    # both models, so the a4.8 - b1.58 gap compares equal training budgets.
    for scheme in ["b1.58", "a4.8"]:
        if a.only and a.only != scheme:
            continue
        model.load_state_dict(start)
        stage("stage2 " + scheme, a.steps2, a.lr2, scheme == "a4.8")
        export(model, cfg, scheme, tok, os.path.join(a.out, "kjv-" + scheme))
    print("total %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
