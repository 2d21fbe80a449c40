//===- Registration.cpp - what every lowbit tool registers ----------------===//

#include "lowbit/Compiler/Registration.h"

#include "lowbit/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"

void mlir::lowbit::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::bitnet::BitNetDialect, mlir::lowbit::LowBitDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
}

void mlir::lowbit::registerAllPasses() {
  mlir::registerAllPasses();
  registerAllPassesAndPipelines();
}
