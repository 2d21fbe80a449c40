//===- ModelConfig.h - BitNetForCausalLM config.json -----------*- C++ -*-===//

#ifndef LOWBIT_IMPORTER_MODELCONFIG_H
#define LOWBIT_IMPORTER_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::lowbit {

/// The activation scheme: W1.58A8 or the a4.8 hybrid (spec §4).
enum class Scheme { B158, A48 };

/// Parses "b1.58" / "a4.8"; std::nullopt otherwise.
std::optional<Scheme> parseScheme(llvm::StringRef s);
llvm::StringRef schemeName(Scheme s);

/// The fields of a BitNetForCausalLM config.json (spec §2.1), validated.
struct ModelConfig {
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  int64_t maxPositions = 0;
  double ropeTheta = 500000.0;
  double rmsNormEps = 1e-5;
  /// true/false when config.json says; std::nullopt when it is silent (then
  /// the checkpoint decides: tied unless it has an lm_head.weight).
  std::optional<bool> tieWordEmbeddings;
  Scheme scheme = Scheme::B158;
  std::optional<int64_t> bosTokenId, eosTokenId;
  /// quantization_config.linear_class "bitlinear": a packed tensor's
  /// weight_scale is a divisor (AutoBitLinear's, the default, a multiplier).
  bool weightScaleDivides = false;
  /// What read() let pass but the user should hear (one line each).
  std::vector<std::string> warnings;

  /// Reads and validates `path`. Errors name the file and the field.
  static llvm::Expected<ModelConfig> read(llvm::StringRef path);
};

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_MODELCONFIG_H
