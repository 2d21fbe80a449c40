//===- Registration.h - what every lowbit tool registers -------*- C++ -*-===//

#ifndef LOWBIT_COMPILER_REGISTRATION_H
#define LOWBIT_COMPILER_REGISTRATION_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::lowbit {

/// Inserts the bitnet and lowbit dialects and every upstream dialect a
/// lowbit pipeline produces (func, arith, tensor, memref, vector, scf, llvm,
/// ...) with their extensions and translation interfaces.
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers the lowbit passes, the lowbit named pipelines and the upstream
/// passes, so lowbit-opt can run any phase alone.
void registerAllPasses();

} // namespace mlir::lowbit

#endif // LOWBIT_COMPILER_REGISTRATION_H
