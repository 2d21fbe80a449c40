//===- FuzzTensors.h - reading every tensor a parser accepted ---*- C++ -*-===//
//
// Shared by the model-file fuzz targets: each byte of an accepted tensor is
// read (AddressSanitizer sees a range past its buffer), each float element
// decoded, and ternary tensors decode to codes -1..1 with a positive finite
// scale or are refused; anything else aborts.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TEST_FUZZ_FUZZTENSORS_H
#define LOWBIT_TEST_FUZZ_FUZZTENSORS_H

#include "FuzzInput.h"
#include "lowbit/Importer/GGUF.h"

#include <cmath>
#include <vector>

namespace lowbit_fuzz {

/// Reads `t` (from `file`) as lowbit's pack phase does; `ternary`: decode it
/// as ternary weights too. Returns a checksum that keeps the reads.
inline unsigned readTensor(const mlir::lowbit::TensorInfo &t,
                           llvm::StringRef file, bool ternary) {
  using namespace mlir::lowbit;
  unsigned sum = 0;
  for (uint8_t b : t.bytes)
    sum += b;
  int64_t n = t.numElements();
  if (n > (int64_t(1) << 20))
    return sum; // keeps each input fast; the bounds are checked by then
  if (isFloatLike(t.dtype))
    for (int64_t i = 0; i < n; ++i)
      sum += unsigned(floatAt(t, i) > 0.0f);
  if (!ternary)
    return sum;
  std::vector<int8_t> codes(size_t(n), 7);
  llvm::Expected<float> alpha = decodeTernary(t, file, codes.data());
  if (!alpha) {
    dropError(alpha.takeError());
    return sum;
  }
  if (!(std::isfinite(*alpha) && *alpha > 0.0f))
    abort();
  for (int8_t c : codes)
    if (c < -1 || c > 1)
      abort();
  return sum;
}

} // namespace lowbit_fuzz

#endif // LOWBIT_TEST_FUZZ_FUZZTENSORS_H
