//===- fuzz-onnx.cpp - libFuzzer target: ONNX models ----------------------===//
//
// Any bytes as model.onnx, through everything lowbit reads of an ONNX
// model: open() accepts or returns an error (protobuf parses, then lowbit
// checks every initializer's size, external data reference and the weight
// mapping); every weight it maps lies inside its buffer (each byte is read,
// so AddressSanitizer sees a range past it), has a shape matching its bytes,
// and reads element by element; weights the model multiplies as stored
// decode to codes -1..1 with a positive finite scale or are refused.
//
//===----------------------------------------------------------------------===//
#include "FuzzTensors.h"
#include "lowbit/Importer/ONNX.h"

using namespace mlir::lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto model = lowbit_fuzz::parseInput(
      "model.onnx", data, size,
      [](const std::string &path) { return ONNXModel::open(path); });
  if (!model)
    return 0;
  const ONNXModel &m = **model;
  unsigned sum = 0;
  for (auto &kv : m.weights()) {
    const TensorInfo &t = *kv.second;
    if (m.lookup(kv.first()) != &t)
      abort();
    if (t.transposed && t.shape.size() != 2)
      abort();
    int64_t n = t.numElements();
    if (uint64_t(n) * dtypeSize(t.dtype) != t.bytes.size())
      abort();
    sum += lowbit_fuzz::readTensor(t, m.path(), t.ternaryValues);
  }
  if (llvm::Error e = m.checkArchitecture())
    lowbit_fuzz::dropError(std::move(e));
  return sum == ~0u; // keeps the reads
}
