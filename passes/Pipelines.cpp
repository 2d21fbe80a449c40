//===- Pipelines.cpp - the phases of lowbitc as named pipelines -----------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
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

bool mlir::lowbit::isPhaseImplemented(Phase phase) {
  switch (phase) {
  case Phase::Import:
  case Phase::Graph:
  case Phase::Select:
    return true;
  default:
    return false;
  }
}

void mlir::lowbit::buildPhasePipeline(OpPassManager &pm, Phase phase) {
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
    pm.addPass(createSelectActivationPathPass());
    break;
  default:
    assert(!isPhaseImplemented(phase) && "implemented phase without passes");
    break;
  }
}

void mlir::lowbit::registerAllPassesAndPipelines() {
  registerLowBitPasses();
  for (Phase phase : {Phase::Graph, Phase::Select}) {
    std::string arg = ("lowbit-" + phaseName(phase) + "-pipeline").str();
    std::string help =
        ("the passes of lowbitc's '" + phaseName(phase) + "' phase").str();
    PassPipelineRegistration<>(arg, help, [phase](OpPassManager &pm) {
      buildPhasePipeline(pm, phase);
    });
  }
}
