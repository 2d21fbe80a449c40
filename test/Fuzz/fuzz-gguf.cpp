//===- fuzz-gguf.cpp - libFuzzer target: GGUF model files -----------------===//
//
// Any bytes as model.gguf, through everything lowbit reads of a GGUF file:
// open() accepts or returns an error; every tensor it accepts lies inside
// the file (each byte is read, so AddressSanitizer sees a range past the
// buffer); the model configuration and the tokenizer are read or refused;
// ternary tensors decode to codes -1..1 with a positive finite scale or
// are refused, float tensors read element by element.
//
//===----------------------------------------------------------------------===//
#include "FuzzTensors.h"
#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/Tokenizer.h"

using namespace mlir::lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = lowbit_fuzz::parseInput(
      "model.gguf", data, size,
      [](const std::string &path) { return GGUFFile::open(path); });
  if (!file)
    return 0;
  const GGUFFile &g = **file;
  unsigned sum = 0;
  for (const TensorInfo &t : g.tensors()) {
    if (g.lookup(t.name) != &t)
      abort();
    // Quantized floats are tables, never ternary weights.
    sum += lowbit_fuzz::readTensor(
        t, g.path(),
        isTernaryBlock(t.dtype) ||
            (isFloatLike(t.dtype) && !isQuantizedFloat(t.dtype)));
  }
  if (auto cfg = readGGUFConfig(g)) {
    if (cfg->hiddenSize <= 0 || cfg->numHeads <= 0 || cfg->headDim <= 0 ||
        cfg->numHeads % cfg->numKVHeads != 0 || cfg->vocabSize <= 0)
      abort();
  } else {
    lowbit_fuzz::dropError(cfg.takeError());
  }
  if (auto table = compileTokenizer(g))
    sum += unsigned(table->size());
  else
    lowbit_fuzz::dropError(table.takeError());
  return sum == ~0u; // keeps the reads
}
