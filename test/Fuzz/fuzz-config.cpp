//===- fuzz-config.cpp - libFuzzer target: config.json --------------------===//
//
// Any bytes as config.json: read() accepts or returns an error, and what it
// accepts is a model the compiler can build (positive sizes, heads that
// divide the hidden size or an explicit head_dim, KV heads that divide the
// heads, special token ids inside the vocabulary).
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "lowbit/Importer/ModelConfig.h"

using namespace mlir::lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto cfg =
      lowbit_fuzz::parseInput("config.json", data, size, ModelConfig::read);
  if (!cfg)
    return 0;
  const ModelConfig &c = *cfg;
  if (c.hiddenSize <= 0 || c.intermediateSize <= 0 || c.numLayers <= 0 ||
      c.numHeads <= 0 || c.numKVHeads <= 0 || c.headDim <= 0 ||
      c.vocabSize <= 0 || c.maxPositions <= 0)
    abort();
  if (c.numHeads % c.numKVHeads)
    abort();
  for (std::optional<int64_t> id : {c.bosTokenId, c.eosTokenId})
    if (id && (*id < 0 || *id >= c.vocabSize))
      abort();
  return 0;
}
