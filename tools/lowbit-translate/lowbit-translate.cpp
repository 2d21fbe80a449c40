//===- lowbit-translate.cpp - lowbit's mlir-translate ---------------------===//
//
// Translates lowbit IR after the llvm phase to LLVM IR (and back), with the
// bitnet and lowbit dialects registered so any phase's file parses.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Compiler/Registration.h"
#include "mlir/InitAllTranslations.h"
#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::registerAllTranslations();
  return mlir::failed(
      mlir::mlirTranslateMain(argc, argv, "lowbit translation tool"));
}
