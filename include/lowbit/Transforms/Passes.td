//===- Passes.td - lowbit passes ---------------------------*- tablegen -*-===//
//
// Grouped by pipeline phase (design.md), alphabetical within a group.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_TRANSFORMS_PASSES_TD
#define LOWBIT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// select: bitnet -> lowbit
//===----------------------------------------------------------------------===//

def SelectActivationPathPass
    : Pass<"lowbit-select-activation-path", "::mlir::ModuleOp"> {
  let summary = "chooses each linear layer's activation path and lowers it "
                "to lowbit ops";
  let description = [{
    Replaces every `bitnet.bitlinear` by `lowbit.weight`, an optional
    `lowbit.topk_mask`, a `lowbit.quantize` and a `lowbit.ternary_matmul`
    (dense) or `lowbit.ternary_matmul_sparse` (zero-skipping), and records
    the choice and its reasons on the matmul:

    - INT4 absmean inputs take `int4_dense`; with `isa=avx2` their weights
      get the `lut3` layout (lookup-table kernels, 1.67 bits per weight).
    - INT8 inputs take `int8_dense` (`int8_topk` with a Top-K mask) or
      `int8_sparse` when the cost model predicts the zero-skipping kernel is
      faster for one decoded token: it reads only the weight columns of
      non-zero activations (density x bytes) but does more work per weight
      than the dense VNNI/AVX2 kernel. The density comes from `stats-file`
      (calibration: zero fraction at each weight's input, by tensor name),
      else from the scheme: exactly k/K after a Top-K mask, 0.5 after
      ReLU^2-GLU, 0.94 for other INT8 inputs.

    Attributes on each matmul: `path`, `lowbit.density`, `lowbit.bytes`,
    `lowbit.macs` (per token, on the chosen path) and `lowbit.why`.
  }];
  let options = [
    Option<"isa", "isa", "std::string", /*default=*/"\"avx2\"",
           "kernel ISA the cost model assumes: avx512vnni, avx2, neondot, generic">,
    Option<"statsFile", "stats-file", "std::string", /*default=*/"\"\"",
           "calibration statistics: JSON {tensor name: zero fraction}">,
    Option<"bandwidthGBs", "bandwidth-gbs", "double", /*default=*/"30.0",
           "memory read bandwidth of the target, GB/s">,
  ];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
}

def FuseQuantizationPass
    : Pass<"lowbit-fuse-quantization", "::mlir::ModuleOp"> {
  let summary = "folds an RMSNorm into the activation quantizers that read it";
  let description = [{
    A `bitnet.rms_norm` whose every user is a `lowbit.quantize` becomes the
    `norm` of those quantizers, so the normalized row is never written to
    memory: one pass over the input computes the norm, the statistic and the
    codes. Identical quantizers of one value (q/k/v, gate/up) are merged.
  }];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
}

//===----------------------------------------------------------------------===//
// pack
//===----------------------------------------------------------------------===//

def PackTernaryWeightsPass
    : Pass<"lowbit-pack-ternary-weights", "::mlir::ModuleOp"> {
  let summary = "streams every weight once into the packed blob kernels read";
  let description = [{
    Reads each tensor a `#lowbit.param` names from the model directory the
    importer recorded (`lowbit.model_dir`), memory-mapped, and writes one blob:
    ternary weights are ternarized (per-tensor absmean of master weights, or
    unpacked from the published layout) and packed in the kernel layout
    (`tiles2`: rows in tiles of 16; per tile and block of 256 codes along K,
    the 16 rows' 64-byte blocks in turn, byte j of a block holding codes j,
    j+64, j+128, j+192 in its bit pairs, as code+1, so a tile streams
    through memory in order; `cols2`, for weights the select pass put on the
    zero-skipping path: 64-byte blocks per column along N, so a zero input
    skips its column's bytes, in the byte order of the `cols2` layout
    attribute; `lut3`, for the INT4 layers the select pass gave AVX2
    lookup-table kernels: 5 bits per 3 codes, see the layout attribute);
    1-D float tensors are
    stored as f32, 2-D float tensors keep bf16 or become f32. Every entry is
    64-byte aligned. The module gets `lowbit.blob` (name -> [offset, kind]),
    `lowbit.blob_size` and `lowbit.blob_checksum`; each `lowbit.weight` gets
    its `alpha` and the `tiles2` layout in its type (`cols2` and `lut3`
    weights keep theirs).
  }];
  let options = [
    Option<"blobPath", "blob-path", "std::string", /*default=*/"\"\"",
           "file to write the packed weights to (required)">,
    Option<"lmHead", "lm-head", "std::string", /*default=*/"\"auto\"",
           "lm_head storage: auto or f16 (as stored: bf16 in BitNet "
           "checkpoints, or f32), int8 (per-row absmax codes + 128 and f32 "
           "scales, recorded as '<name>#int8') or int4 (per-64-column "
           "absmax nibbles + 8 and f32 scales, '<name>#int4'); both in "
           "tiles of 16 rows">,
  ];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
}

//===----------------------------------------------------------------------===//
// kernels
//===----------------------------------------------------------------------===//

def GenerateKernelsPass
    : Pass<"lowbit-generate-kernels", "::mlir::ModuleOp"> {
  let summary = "lowers the model to shape-specialised vector kernels over memrefs";
  let description = [{
    Replaces `func.func @forward` (tensor level, after the pack phase) by
    `@lowbit_forward`, a C-interface function over memrefs (tokens, start
    position, logits, K/V caches, weight blob) that calls one kernel function
    per operation. Every dimension but the token count is a constant; inner
    loops are vector code (VNNI `vpdpbusd`, AVX2 `vpmaddubsw` or aarch64
    `sdot` for ternary matmuls, per `isa`); large kernels run as parallel tasks through
    `__lowbit_par_<kernel>` calls that `lowbit-lower-parallel-calls` turns into
    thread-pool calls. Also emits `lowbit_model_meta`.
  }];
  let options = [
    Option<"isa", "isa", "std::string", /*default=*/"\"avx2\"",
           "instruction set of the kernels: avx512vnni, avx2, neondot (aarch64 "
           "with the dot-product extension) or generic">,
    Option<"gfni", "gfni", "bool", /*default=*/"false",
           "unpack ternary codes with GFNI's affine byte transform "
           "(isa=avx512vnni only)">,
    Option<"embeddedWeights", "embedded-weights", "bool", /*default=*/"true",
           "whether the weights are linked into the executable">,
  ];
  let dependentDialects = [
    "::mlir::func::FuncDialect", "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
    "::mlir::LLVM::LLVMDialect"
  ];
}

//===----------------------------------------------------------------------===//
// llvm
//===----------------------------------------------------------------------===//

def LowerParallelCallsPass
    : Pass<"lowbit-lower-parallel-calls", "::mlir::ModuleOp"> {
  let summary = "turns __lowbit_par_<kernel> calls into thread-pool calls";
  let description = [{
    Runs after the conversion to the LLVM dialect. Each call to the
    declaration `__lowbit_par_K(args..., n)` becomes: the arguments stored in
    8-byte slots of a stack block, and `lowbit_rt_parallel_for(@K__task,
    block, n)`, where the generated `@K__task(block, begin, end)` reloads the
    arguments and calls `@K(args..., begin, end)`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // LOWBIT_TRANSFORMS_PASSES_TD
