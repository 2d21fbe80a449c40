//===- CPU.h - CPU targets: machine, object emission, linking --*- C++ -*-===//

#ifndef LOWBIT_TARGET_CPU_H
#define LOWBIT_TARGET_CPU_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Target/TargetMachine.h"

#include <memory>
#include <string>

namespace mlir::lowbit {

/// The machine for `triple` (empty: the host), `cpu` (empty or "native":
/// the host's when the triple is the host's) and `features` ("+a,-b").
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(llvm::StringRef triple, llvm::StringRef cpu,
                    llvm::StringRef features);

/// The kernel ISA the machine supports: "avx512vnni", "avx2" or "generic".
std::string kernelISA(const llvm::TargetMachine &tm);

/// Whether the machine has GFNI (the avx512vnni kernels then use it).
bool hasGFNI(const llvm::TargetMachine &tm);

/// Translates an LLVM-dialect module to LLVM IR, optimizes it at O3 for `tm`
/// and writes an object file to `path`.
llvm::Error emitObject(ModuleOp module, llvm::TargetMachine &tm,
                       llvm::StringRef path);

struct LinkOptions {
  std::string objectPath, blobPath, outputPath;
  /// The compiled tokenizer table to embed (lowbit_abi.h); empty for none.
  std::string tokenizerPath;
  bool embedWeights = true;
  /// A shared library exporting the C API of runtime/include/lowbit.h
  /// instead of an executable.
  bool shared = false;
  uint64_t blobSize = 0, blobChecksum = 0;
};

/// Fails, naming what to install, unless lowbit's runtime was built for the
/// target's architecture (the host's, or a cross target's whose C library
/// was installed when lowbit was built).
llvm::Error checkRuntimeFor(const llvm::TargetMachine &tm);

/// Links the model object with the runtime into an executable (or a shared
/// library) at `outputPath` (written to a temporary name, then renamed). Embedded
/// weights go into a page-aligned read-only section; otherwise the blob is
/// written to `outputPath.weights` with a validated header.
llvm::Error linkExecutable(const LinkOptions &options,
                           const llvm::TargetMachine &tm);

} // namespace mlir::lowbit

#endif // LOWBIT_TARGET_CPU_H
