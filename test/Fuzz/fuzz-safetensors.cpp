//===- fuzz-safetensors.cpp - libFuzzer target: safetensors files ---------===//
//
// Any bytes as model.safetensors: open() accepts or returns an error, and
// every tensor it accepts lies inside the file with as many bytes as its
// dtype and shape say (each byte is read, so AddressSanitizer sees a range
// past the buffer).
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "lowbit/Importer/Safetensors.h"

using namespace mlir::lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = lowbit_fuzz::parseInput(
      "model.safetensors", data, size,
      [](const std::string &path) { return SafetensorsFile::open(path); });
  if (!file)
    return 0;
  unsigned sum = 0;
  for (const TensorInfo &t : (*file)->tensors()) {
    if (int64_t(t.bytes.size()) != t.numElements() * dtypeSize(t.dtype))
      abort();
    if ((*file)->lookup(t.name) != &t)
      abort();
    for (uint8_t b : t.bytes)
      sum += b;
  }
  return sum == ~0u; // keeps the reads
}
