//===- lowbit-opt.cpp - lowbit's mlir-opt ---------------------------------===//
//
// Parses any IR of the lowbit pipeline, runs passes and pipelines on it.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Compiler/Registration.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::lowbit::registerAllDialects(registry);
  mlir::lowbit::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "lowbit optimizer: bitnet and lowbit dialects\n", registry));
}
