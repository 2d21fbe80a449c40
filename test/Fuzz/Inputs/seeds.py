"""Writes the fuzzers' seed corpora: small valid inputs of each kind.

    seeds.py SRC_ROOT OUT_DIR

OUT_DIR/safetensors: safetensors files of every accepted dtype (with and
without __metadata__, empty tensors, scalars); OUT_DIR/config: the shipped
models' config.json and a 2B4T-shaped one; OUT_DIR/tokenizer: a cut-down
copy of the shipped tokenizer.json (its byte tokens, the merges among its
first 300 tokens, its added tokens) and the same with ignore_merges and
pair-form merges; OUT_DIR/prompt: a few texts (ASCII, UTF-8, invalid UTF-8,
special-token spellings); OUT_DIR/mlir: each `// -----` chunk of the
dialect tests (test/Dialect/*/*.mlir).
"""
import json
import os
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "reference"))
import numpy as np  # noqa: E402
from safetensors_io import Writer  # noqa: E402


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def safetensors(path, specs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = Writer(path, specs)
    rng = np.random.default_rng(len(specs))
    for name, dtype, shape in specs:
        n = int(np.prod(shape, dtype=np.int64))
        if dtype in ("BF16", "F16"):
            w.write(name, rng.integers(0, 1 << 16, n, dtype=np.uint16).view(
                np.float16 if dtype == "F16" else np.uint16).reshape(shape))
        elif dtype == "F32":
            w.write(name, rng.standard_normal(n).astype(np.float32).reshape(shape))
        else:
            w.write(name, rng.integers(0, 256, n, dtype=np.uint8).reshape(shape))
    w.close()


st = os.path.join(out, "safetensors")
safetensors(os.path.join(st, "a"), [("w", "BF16", [4, 8]), ("b", "F32", [8]),
                                    ("c", "F16", [2, 2, 2])])
safetensors(os.path.join(st, "b"), [("model.layers.0.mlp.up_proj.weight", "U8", [2, 16]),
                                    ("model.layers.0.mlp.up_proj.weight_scale", "BF16", [1]),
                                    ("i", "I8", [3]), ("empty", "F32", [0, 4]),
                                    ("scalar", "F32", [])])
header = json.dumps({"__metadata__": {"format": "pt"},
                     "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
write(os.path.join(st, "c"), struct.pack("<Q", len(header)) + header + bytes(8))

cfg = os.path.join(out, "config")
for name in ("kjv-b1.58", "kjv-a4.8"):
    with open(os.path.join(src, "reference", "models", name, "config.json"), "rb") as f:
        write(os.path.join(cfg, name), f.read())
write(os.path.join(cfg, "2b4t"), json.dumps({
    "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
    "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 30,
    "num_attention_heads": 20, "num_key_value_heads": 5, "head_dim": 128,
    "vocab_size": 128256, "max_position_embeddings": 4096,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "relu2",
    "tie_word_embeddings": True, "bos_token_id": 128000,
    "eos_token_id": [128001, 128009],
    "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                            "quantization_mode": "offline"}}).encode())

with open(os.path.join(src, "reference", "models", "kjv-b1.58", "tokenizer.json")) as f:
    tok = json.load(f)
model = tok["model"]
vocab = {t: i for t, i in model["vocab"].items() if i < 300}
model["vocab"] = vocab
model["merges"] = [m for m in model["merges"]
                   if all(p in vocab for p in m.split(" ")) and m.replace(" ", "") in vocab]
tk = os.path.join(out, "tokenizer")
write(os.path.join(tk, "small"), json.dumps(tok).encode())
model["ignore_merges"] = True
model["merges"] = [m.split(" ") for m in model["merges"]]
write(os.path.join(tk, "pairs"), json.dumps(tok).encode())

pr = os.path.join(out, "prompt")
write(os.path.join(pr, "a"), b"In the beginning God created the heaven and the earth.\n")
write(os.path.join(pr, "b"), "caf\u00e9 na\u00efve \u4e2d\u6587 123456 \t\n  x's".encode())
write(os.path.join(pr, "c"), b"\xff\xfe\xc3 \xe2\x82 \x00 ok")
write(os.path.join(pr, "d"), b"<|begin_of_text|>And<|end_of_text|>")

ml = os.path.join(out, "mlir")
for dialect in ("BitNet", "LowBit"):
    for name in ("ops", "invalid"):
        path = os.path.join(src, "test", "Dialect", dialect, name + ".mlir")
        with open(path) as f:
            chunks = f.read().split("// -----")
        for i, chunk in enumerate(chunks):
            write(os.path.join(ml, "%s-%s-%d" % (dialect, name, i)), chunk.encode())
