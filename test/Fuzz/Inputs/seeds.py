"""Writes the fuzzers' seed corpora: small valid inputs of each kind.

    seeds.py SRC_ROOT OUT_DIR

OUT_DIR/safetensors: safetensors files of every accepted dtype (with and
without __metadata__, empty tensors, scalars); OUT_DIR/config: the shipped
models' config.json and a 2B4T-shaped one; OUT_DIR/tokenizer: a cut-down
copy of the shipped tokenizer.json (its byte tokens, the merges among its
first 300 tokens, its added tokens) and the same with ignore_merges and
pair-form merges; OUT_DIR/prompt: a few texts (ASCII, UTF-8, invalid UTF-8,
special-token spellings); OUT_DIR/mlir: each `// -----` chunk of the
dialect tests (test/Dialect/*/*.mlir); OUT_DIR/gguf: small GGUF files with a
BitNet model's metadata, a tokenizer, and a tensor of every type lowbit
reads (bench/gguf.py's encoders); OUT_DIR/onnx: small ONNX models in each
weight layout reference/onnx_export.py writes.
"""
import json
import os
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "reference"))
sys.path.insert(0, os.path.join(src, "bench"))
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

import gguf  # noqa: E402

gg = os.path.join(out, "gguf")
rng = np.random.default_rng(7)
codes = rng.integers(-1, 2, (2, 256)).astype(np.int8)
tensors = [  # name, type, ne, bytes
    ("token_embd.weight", gguf.T_F16, [8, 4], rng.standard_normal(32).astype("<f2").tobytes()),
    ("output_norm.weight", gguf.T_F32, [8], np.ones(8, "<f4").tobytes()),
    ("blk.0.attn_q.weight", gguf.T_TQ2_0, [256, 2], gguf.tq2_0(codes, 0.5)),
    ("blk.0.attn_k.weight", gguf.T_TQ1_0, [256, 2], gguf.tq1_0(codes, 0.25)),
    ("blk.0.attn_v.weight", gguf.T_I2_S, [256, 2], gguf.i2_s(codes, 2.0)),
    ("blk.0.attn_output.weight", gguf.T_F32, [256, 2], gguf.float_ternary(codes, 0.5, "<f4")),
    ("blk.0.ffn_up.weight", gguf.T_Q8_0, [32, 2], gguf.q8_0(rng.standard_normal(64).astype(np.float32))),
    ("blk.0.ffn_gate.weight", 30, [4, 2], rng.integers(0, 1 << 16, 8, dtype=np.uint16).tobytes()),
    ("blk.0.ffn_down.weight", gguf.T_Q4_0, [32, 1], gguf.q4_0(rng.standard_normal(32).astype(np.float32))),
    ("blk.0.ffn_norm.weight", gguf.T_Q4_1, [32, 1], gguf.q4_1(rng.standard_normal(32).astype(np.float32))),
    ("blk.0.attn_norm.weight", gguf.T_Q4_K, [256, 1], gguf.q4_k(rng.standard_normal(256).astype(np.float32))),
    ("output.weight", gguf.T_Q6_K, [256, 1], gguf.q6_k(rng.standard_normal(256).astype(np.float32))),
    ("blk.0.ffn_sub_norm.weight", gguf.T_Q5_0, [32, 1], gguf.q5(rng.standard_normal(32).astype(np.float32), True)),
    ("blk.0.attn_sub_norm.weight", gguf.T_Q5_1, [32, 1], gguf.q5(rng.standard_normal(32).astype(np.float32), False)),
    ("blk.1.attn_norm.weight", gguf.T_Q5_K, [256, 1], gguf.q4_k(rng.standard_normal(256).astype(np.float32), five=True)),
]
tokens = ["a", "b", "c", "ab", "abc", "\u0120", "\u0120a", "<|begin_of_text|>"]
meta = [gguf.kv("general.architecture", gguf.V_STR, "bitnet"),
        gguf.kv("general.alignment", gguf.V_U32, 32)]
for key, value in [("embedding_length", 8), ("feed_forward_length", 16),
                   ("block_count", 1), ("attention.head_count", 2),
                   ("attention.head_count_kv", 1), ("context_length", 64),
                   ("vocab_size", len(tokens))]:
    meta.append(gguf.kv("bitnet." + key, gguf.V_U32, value))
meta += [gguf.kv("bitnet.rope.freq_base", gguf.V_F32, 10000.0),
         gguf.kv("tokenizer.ggml.model", gguf.V_STR, "gpt2"),
         gguf.kv("tokenizer.ggml.pre", gguf.V_STR, "llama-bpe"),
         gguf.kv("tokenizer.ggml.tokens", gguf.V_ARR, (gguf.V_STR, tokens)),
         gguf.kv("tokenizer.ggml.token_type", gguf.V_ARR, (gguf.V_I32, [1] * 7 + [3])),
         gguf.kv("tokenizer.ggml.merges", gguf.V_ARR, (gguf.V_STR, ["a b", "ab c", "\u0120 a"])),
         gguf.kv("tokenizer.ggml.bos_token_id", gguf.V_U32, 7)]


def gguf_file(version, meta, tensors):
    info, blob = b"", b""
    for name, ty, ne, data in tensors:
        info += gguf.gstr(name) + struct.pack("<I", len(ne)) + b"".join(
            struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ty, len(blob))
        blob += data + b"\0" * (-len(data) % 32)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(meta)) + b"".join(meta) + info
    return head + b"\0" * (-len(head) % 32) + blob


write(os.path.join(gg, "model"), gguf_file(3, meta, tensors))
write(os.path.join(gg, "v2-no-tokenizer"), gguf_file(2, meta[:9], tensors[:3]))

# ONNX models: reference/onnx_export.py over a tiny checkpoint, in each way
# it lays out the weights (folded float32 / float16 / bfloat16, Gemm,
# DequantizeLinear int8 / uint8, master weights behind the quantizer), and
# one without scoped node names, its layers in an If's branches.
import contextlib  # noqa: E402
import io  # noqa: E402
import tempfile  # noqa: E402

import make_checkpoint  # noqa: E402
import onnx_export  # noqa: E402

ox = os.path.join(out, "onnx")
os.makedirs(ox, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    ckpt = os.path.join(tmp, "ckpt")
    make_checkpoint.main(["--hidden", "8", "--intermediate", "16", "--heads", "2",
                          "--kv-heads", "1", "--layers", "1", "--vocab", "8", ckpt])
    for i, args in enumerate([[], ["--dtype", "f16", "--embd-dtype", "bf16"],
                              ["--dtype", "bf16", "--gemm", "--anonymous"],
                              ["--weights", "qdq"], ["--weights", "qdq", "--codes", "uint8"],
                              ["--weights", "master", "--anonymous"],
                              ["--no-scopes", "--merged"]]):
        exp = os.path.join(tmp, "export%d" % i)
        with contextlib.redirect_stdout(io.StringIO()):
            onnx_export.main([ckpt, exp] + args)
        with open(os.path.join(exp, "model.onnx"), "rb") as f:
            write(os.path.join(ox, "model%d" % i), f.read())
