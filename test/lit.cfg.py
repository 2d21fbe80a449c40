# -*- Python -*-
import os
import subprocess
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "LOWBIT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.lowbit_obj_root, "test")

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Debian's numpy imports only in /usr/bin/python3 (and %python is lit's own).
config.substitutions.append(("%pyref", "/usr/bin/python3"))
config.substitutions.append(
    ("%reference", os.path.join(config.lowbit_src_root, "reference")))

config.substitutions.append(("%clang", os.path.join(config.llvm_tools_dir, "clang")))
config.substitutions.append(
    ("%lowbit_include", os.path.join(config.lowbit_src_root, "runtime", "include")))

# The npm reference tokenizer, installed by tools/setup.sh.
npm_modules = os.path.join(config.lowbit_obj_root, "npm", "node_modules")
config.substitutions.append(("%npm_modules", npm_modules))
config.substitutions.append(
    ("%llama3_tokenizer",
     os.path.join(npm_modules, "@lenml", "tokenizer-llama3", "models", "tokenizer.json")))

tools = ["lowbit-opt", "lowbit-translate", "lowbitc"]
llvm_config.add_tool_substitutions(["llvm-objdump", "llvm-objcopy", "llvm-readelf"], [config.llvm_tools_dir])
llvm_config.add_tool_substitutions(tools, [config.lowbit_tools_dir])

# The host's x86 features, for tests that run code built for a narrower CPU.
try:
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
except OSError:
    flags = []
for flag in ("avx512_vnni", "gfni"):
    if flag in flags:
        config.available_features.add("host-" + flag)

# libFuzzer targets (LOWBIT_ENABLE_FUZZERS; tools/setup.sh turns it on).
if getattr(config, "lowbit_fuzzers", False):
    config.available_features.add("fuzzers")
    llvm_config.add_tool_substitutions(
        ["lowbit-fuzz-" + n for n in ("safetensors", "gguf", "onnx", "config", "tokenizer", "prompt", "mlir")],
        [config.lowbit_tools_dir])

# PyTorch (Debian's python3-torch, which imports only in /usr/bin/python3):
# the ONNX tests export models with torch.onnx.export.
if subprocess.run(["/usr/bin/python3", "-c", "import torch"],
                  capture_output=True).returncode == 0:
    config.available_features.add("torch")

# A model cross-compiled for aarch64 runs under qemu-aarch64 when the runtime
# was built for aarch64 (Debian's libc6-dev-arm64-cross) and qemu-user is
# installed (tools/setup.sh installs both).
if (os.path.exists(os.path.join(config.lowbit_obj_root, "lib", "aarch64-linux-gnu",
                                "liblowbit_rt.a"))
        and shutil.which("qemu-aarch64")):
    config.available_features.add("aarch64-cross")
    config.substitutions.append(
        ("%qemu_aarch64", "qemu-aarch64 -L /usr/aarch64-linux-gnu"))
