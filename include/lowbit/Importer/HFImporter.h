//===- HFImporter.h - Hugging Face BitNet checkpoint -> bitnet IR -*- C++ -*-//

#ifndef LOWBIT_IMPORTER_HFIMPORTER_H
#define LOWBIT_IMPORTER_HFIMPORTER_H

#include "lowbit/Importer/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace mlir::lowbit {

struct ImportOptions {
  /// Overrides config.json's `activation_scheme` when set.
  std::optional<Scheme> scheme;
  /// KV-cache precision: 16 (float32, or IEEE half with kvF16) or 8, 4, 3
  /// bits (spec §7.3 option A).
  int64_t kvBits = 16;
  bool kvF16 = false;
  /// Positions the executable holds (its KV caches' length); 0: config.json's
  /// max_position_embeddings, which it may not exceed.
  int64_t context = 0;
};

/// The longest context lowbit compiles (the caches' byte counts stay far
/// from overflowing).
constexpr int64_t kMaxContext = int64_t(1) << 24;

/// Imports a BitNetForCausalLM checkpoint directory (config.json +
/// safetensors, bf16 master or packed 2B4T layout) as `bitnet` dialect IR:
///
///   func.func @forward(%ids: tensor<?xi32>, %start: index,
///                      %k_cache_0, %v_cache_0, ...) -> (logits, caches...)
///
/// Weights stay in the mapped files, referenced by `#lowbit.param`; each op
/// is located at the tensor name it reads. Errors are one line naming the
/// file and the tensor or field.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importHFModel(llvm::StringRef dir, mlir::MLIRContext &ctx,
              const ImportOptions &options);

/// Imports a BitNet GGUF file (llama.cpp's `bitnet` or bitnet.cpp's
/// `bitnet-b1.58` / `bitnet-25` architecture) the same way: metadata for
/// config.json, ternary TQ1_0 / TQ2_0 / I2_S (or float) projections, F32 /
/// F16 / BF16 / Q8_0 embeddings and norms.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importGGUFModel(llvm::StringRef path, mlir::MLIRContext &ctx,
                const ImportOptions &options);

/// Imports a BitNet model exported to ONNX (a .onnx file, or a directory
/// holding model.onnx or onnx/model.onnx) with the config.json beside it or
/// in its parent directory; ONNX.h says how weights are found.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importONNXModel(llvm::StringRef path, mlir::MLIRContext &ctx,
                const ImportOptions &options);

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_HFIMPORTER_H
