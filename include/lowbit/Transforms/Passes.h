//===- Passes.h - lowbit passes and pipelines ------------------*- C++ -*-===//

#ifndef LOWBIT_TRANSFORMS_PASSES_H
#define LOWBIT_TRANSFORMS_PASSES_H

#include "lowbit/Dialect/BitNet/IR/BitNetDialect.h"
#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir::lowbit {

#define GEN_PASS_DECL
#include "lowbit/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lowbit/Transforms/Passes.h.inc"

/// Pipeline phases, in order (design.md). `lowbitc --emit=` stops after one.
enum class Phase { Import, Graph, Select, Pack, Kernels, LLVM, Obj, Exe, Shared };

/// Parses a phase name as `--emit=` spells it; std::nullopt if unknown.
std::optional<Phase> parsePhase(llvm::StringRef name);
/// The `--emit=` spelling of a phase.
llvm::StringRef phaseName(Phase phase);
/// All phase names, in order, comma-separated (for messages).
std::string allPhaseNames();

/// What the phases need to know beyond the IR.
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<std::string> blobPath{*this, "blob-path",
                               llvm::cl::desc("packed weight file to write")};
  Option<std::string> isa{*this, "isa",
                          llvm::cl::desc("kernel ISA: avx512vnni, avx2, generic"),
                          llvm::cl::init("avx2")};
  Option<bool> gfni{*this, "gfni",
                    llvm::cl::desc("kernels may use GFNI (with isa=avx512vnni)"),
                    llvm::cl::init(false)};
  Option<std::string> lmHead{
      *this, "lm-head",
      llvm::cl::desc("lm_head storage: auto, f16, int8 or int4"), llvm::cl::init("auto")};
  Option<std::string> statsFile{
      *this, "stats-file",
      llvm::cl::desc("calibration statistics for the select phase")};
  Option<bool> embeddedWeights{*this, "embedded-weights",
                               llvm::cl::desc("weights linked in"),
                               llvm::cl::init(true)};
};

/// Adds the passes of one phase to `pm`.
void buildPhasePipeline(OpPassManager &pm, Phase phase,
                        const PipelineOptions &options);

/// Registers all lowbit passes and the named `lowbit-<phase>-pipeline`s.
void registerAllPassesAndPipelines();

} // namespace mlir::lowbit

#endif // LOWBIT_TRANSFORMS_PASSES_H
