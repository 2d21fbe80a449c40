//===- Pipelines.cpp - the phases of lowbitc as named pipelines -----------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::lowbit;

static constexpr llvm::StringLiteral kPhaseNames[] = {
    "import", "graph", "select", "pack", "kernels",
    "llvm",   "obj",   "exe",    "shared"};

std::optional<Phase> mlir::lowbit::parsePhase(StringRef name) {
  for (auto [i, n] : llvm::enumerate(kPhaseNames))
    if (n == name)
      return static_cast<Phase>(i);
  return std::nullopt;
}

StringRef mlir::lowbit::phaseName(Phase phase) {
  return kPhaseNames[static_cast<size_t>(phase)];
}

std::string mlir::lowbit::allPhaseNames() {
  return llvm::join(ArrayRef<llvm::StringLiteral>(kPhaseNames), ", ");
}

void mlir::lowbit::buildPhasePipeline(OpPassManager &pm, Phase phase,
                                      const PipelineOptions &options) {
  switch (phase) {
  case Phase::Import:
    // Importing builds IR; nothing to run.
    break;
  case Phase::Graph:
    // Folds and removes dead values the importer left, so later phases see
    // one op per computation.
    pm.addPass(createCanonicalizerPass());
    break;
  case Phase::Select:
    // Decides each linear layer's activation path and leaves the bitnet
    // level for lowbit quantize/matmul ops.
    pm.addPass(createSelectActivationPathPass(SelectActivationPathPassOptions{
        options.isa, options.statsFile, /*bandwidthGBs=*/30.0}));
    // Folds each RMSNorm into the quantizers that read it and merges the
    // quantizers q/k/v (and gate/up) share.
    pm.addPass(createFuseQuantizationPass());
    break;
  case Phase::Pack:
    // Streams every referenced tensor once into the kernel layouts.
    pm.addPass(createPackTernaryWeightsPass(
        PackTernaryWeightsPassOptions{options.blobPath, options.lmHead}));
    break;
  case Phase::Kernels:
    // The model becomes shape-specialised vector kernels over memrefs.
    pm.addPass(createGenerateKernelsPass(GenerateKernelsPassOptions{
        options.isa, options.gfni, options.embeddedWeights}));
    // Folds the index arithmetic the kernel builders leave behind.
    pm.addPass(createCanonicalizerPass());
    break;
  case Phase::LLVM: {
    // Standard conversions to the LLVM dialect, structured control flow first.
    pm.addPass(createSCFToControlFlowPass());
    pm.addPass(createConvertVectorToLLVMPass());
    pm.addPass(createConvertMathToLLVMPass());
    pm.addPass(createFinalizeMemRefToLLVMConversionPass());
    pm.addPass(createArithToLLVMConversionPass());
    pm.addPass(createConvertIndexToLLVMPass());
    pm.addPass(createConvertFuncToLLVMPass());
    pm.addPass(createConvertControlFlowToLLVMPass());
    pm.addPass(createReconcileUnrealizedCastsPass());
    // Task markers become thread-pool calls once arguments are scalars.
    pm.addPass(createLowerParallelCallsPass());
    break;
  }
  case Phase::Obj:
  case Phase::Exe:
  case Phase::Shared:
    // LLVM IR, object emission and linking happen in the driver.
    break;
  }
}

void mlir::lowbit::registerAllPassesAndPipelines() {
  registerLowBitPasses();
  for (Phase phase : {Phase::Graph, Phase::Select, Phase::Pack,
                      Phase::Kernels, Phase::LLVM}) {
    std::string arg = ("lowbit-" + phaseName(phase) + "-pipeline").str();
    std::string help =
        ("the passes of lowbitc's '" + phaseName(phase) + "' phase").str();
    PassPipelineRegistration<PipelineOptions>(
        arg, help, [phase](OpPassManager &pm, const PipelineOptions &o) {
          buildPhasePipeline(pm, phase, o);
        });
  }
}
