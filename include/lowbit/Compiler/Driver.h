//===- Driver.h - the lowbitc compiler driver ------------------*- C++ -*-===//

#ifndef LOWBIT_COMPILER_DRIVER_H
#define LOWBIT_COMPILER_DRIVER_H

namespace mlir::lowbit {

/// Runs lowbitc with the given command line: imports a model directory (or
/// parses .mlir at any phase), runs the phases up to `--emit=`, and writes
/// the result. Returns the process exit code (0 success, 1 user error).
int compilerMain(int argc, char **argv);

} // namespace mlir::lowbit

#endif // LOWBIT_COMPILER_DRIVER_H
