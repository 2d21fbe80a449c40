//===- Safetensors.h - validated, memory-mapped safetensors ----*- C++ -*-===//
//
// Reads Hugging Face safetensors files: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then raw bytes.
// Files are untrusted: every length, offset and shape is checked before use,
// and the data stays memory-mapped (nothing is copied).
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_IMPORTER_SAFETENSORS_H
#define LOWBIT_IMPORTER_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::lowbit {

/// Stored element types this compiler accepts: safetensors' BF16 ... I8,
/// and GGUF's block formats: llama.cpp's quantized floats (Q8_0, Q4_0, Q4_1,
/// Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) and the ternary TQ1_0, TQ2_0 and I2_S.
enum class DType {
  BF16,
  F16,
  F32,
  U8,
  I8,
  Q8_0,
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q4_K,
  Q5_K,
  Q6_K,
  TQ1_0,
  TQ2_0,
  I2_S
};

/// The spelling ("BF16", ..., "TQ2_0").
llvm::StringRef dtypeName(DType d);
/// Bytes per element of the element types BF16 ... I8.
unsigned dtypeSize(DType d);
/// Whether `d` stores ternary codes with their own scale (GGUF's TQ1_0,
/// TQ2_0, I2_S).
inline bool isTernaryBlock(DType d) {
  return d == DType::TQ1_0 || d == DType::TQ2_0 || d == DType::I2_S;
}
/// Whether `d` is one of llama.cpp's quantized float formats (blocks of
/// codes with scales; lowbit reads them for embeddings and heads).
inline bool isQuantizedFloat(DType d) {
  return d == DType::Q8_0 || d == DType::Q4_0 || d == DType::Q4_1 ||
         d == DType::Q5_0 || d == DType::Q5_1 || d == DType::Q4_K ||
         d == DType::Q5_K || d == DType::Q6_K;
}
/// Whether floatAt() reads `d`.
inline bool isFloatLike(DType d) {
  return d == DType::BF16 || d == DType::F16 || d == DType::F32 ||
         isQuantizedFloat(d);
}
/// Parses a safetensors dtype; std::nullopt for every dtype not accepted.
std::optional<DType> parseDType(llvm::StringRef s);

/// One tensor of a checkpoint.
struct TensorInfo {
  std::string name;
  DType dtype;
  llvm::SmallVector<int64_t, 4> shape;
  /// The file that holds it and its bytes in that file.
  unsigned file = 0;
  llvm::ArrayRef<uint8_t> bytes;
  /// `shape` is [rows, cols] but the bytes hold the transpose, [cols, rows]
  /// row-major (an ONNX MatMul's [in, out] weight); floatAt() and
  /// decodeTernary() read it in `shape`'s order.
  bool transposed = false;
  /// The model multiplies by these values as stored (an ONNX MatMul's own
  /// initializer, a DequantizeLinear's codes): they must be ternary codes, or
  /// 0 and +-scale, never master weights to quantize.
  bool ternaryValues = false;
  /// Where the tensor came from when its name is not the file's own (ONNX:
  /// "initializer 'onnx::MatMul_77' of node '/model/.../MatMul'").
  std::string origin;

  int64_t numElements() const;
  /// The position in `bytes` (in elements) of element `i` in `shape`'s
  /// row-major order.
  int64_t storedIndex(int64_t i) const {
    if (!transposed)
      return i;
    int64_t rows = shape[0], cols = shape[1];
    return i % cols * rows + i / cols;
  }
  /// "tensor 'name'" plus its origin, for messages.
  std::string describe() const {
    return "tensor '" + name + "'" +
           (origin.empty() ? "" : " (" + origin + ")");
  }
};

/// One memory-mapped safetensors file with its validated header.
class SafetensorsFile {
public:
  /// Maps and validates `path`. Errors name the file and the tensor/field.
  /// `fileIndex` is recorded in each TensorInfo (its shard number).
  static llvm::Expected<std::unique_ptr<SafetensorsFile>>
  open(llvm::StringRef path, unsigned fileIndex = 0);

  llvm::StringRef path() const { return filePath; }
  /// Tensors in file order (sorted by offset).
  llvm::ArrayRef<TensorInfo> tensors() const { return infos; }
  const TensorInfo *lookup(llvm::StringRef name) const;
  /// Whether the file is memory-mapped (LLVM reads files under 16 KiB into
  /// heap memory instead).
  bool isMapped() const {
    return buffer->getBufferKind() == llvm::MemoryBuffer::MemoryBuffer_MMap;
  }

private:
  std::string filePath;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::vector<TensorInfo> infos;
  llvm::StringMap<size_t> index;
};

class GGUFFile;
class ONNXModel;

/// All tensors of a model: a directory's model.safetensors or the shards a
/// model.safetensors.index.json names, or one GGUF file.
class WeightSource {
public:
  WeightSource();
  ~WeightSource();
  static llvm::Expected<std::unique_ptr<WeightSource>>
  openDirectory(llvm::StringRef dir);
  /// A model directory, a .gguf file or an ONNX model (a .onnx file, or a
  /// directory holding model.onnx or onnx/model.onnx and no safetensors).
  static llvm::Expected<std::unique_ptr<WeightSource>>
  open(llvm::StringRef path);
  /// The GGUF file, when the model is one.
  const GGUFFile *gguf() const { return ggufFile.get(); }
  /// The ONNX model, when the model is one (tensors by Hugging Face name).
  const ONNXModel *onnx() const { return onnxModel.get(); }

  /// The tensor named `name`, or nullptr.
  const TensorInfo *lookup(llvm::StringRef name) const;
  /// The path of the file holding `t`.
  llvm::StringRef filePath(const TensorInfo &t) const;
  /// Number of tensors over all files.
  size_t size() const { return byName.size(); }
  /// Drops the mapped pages of `t` from memory (they are re-read from the
  /// file if touched again): streaming a 5 GB checkpoint then keeps the
  /// resident set at one tensor's worth. Does nothing to a file read into
  /// heap memory, whose pages MADV_DONTNEED would zero.
  void release(const TensorInfo &t) const;

private:
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::unique_ptr<GGUFFile> ggufFile;
  std::unique_ptr<ONNXModel> onnxModel;
  llvm::StringMap<const TensorInfo *> byName;
};

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_SAFETENSORS_H
