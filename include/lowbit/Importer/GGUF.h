//===- GGUF.h - validated, memory-mapped GGUF model files ------*- C++ -*-===//
//
// Reads GGUF (versions 2 and 3, little-endian) as llama.cpp and bitnet.cpp
// write it: a header, typed metadata key/values, tensor infos, then the
// aligned tensor data. Files are untrusted: every count, length, offset and
// shape is checked before use, and the data stays memory-mapped.
//
// Tensors are described with lowbit's TensorInfo: shapes row-major (GGUF's
// ne[] reversed), dtypes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K and
// the ternary TQ1_0, TQ2_0
// and I2_S; a tensor of any other GGML type is refused by name when a
// model reads it.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_IMPORTER_GGUF_H
#define LOWBIT_IMPORTER_GGUF_H

#include "lowbit/Importer/ModelConfig.h"
#include "lowbit/Importer/Safetensors.h"

#include "llvm/ADT/StringMap.h"

namespace mlir::lowbit {

/// One metadata value. Arrays of numbers keep their raw little-endian bytes;
/// arrays of strings their strings (pointing into the mapped file).
struct GGUFValue {
  enum Type : uint32_t {
    U8 = 0,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64
  };
  Type type = U8;
  /// Scalars: integers in `i` (or `u` when unsigned), floats in `f`.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  llvm::StringRef str;
  /// Arrays: element type and count; numbers' bytes or the strings.
  Type elemType = U8;
  uint64_t count = 0;
  llvm::ArrayRef<uint8_t> raw;
  std::vector<llvm::StringRef> strings;

  bool isInteger() const { return type <= I32 || type == U64 || type == I64; }
  bool isFloat() const { return type == F32 || type == F64; }
};

/// The name GGUF gives a value type ("u32", "string", ...).
llvm::StringRef ggufTypeName(GGUFValue::Type t);

class GGUFFile {
public:
  /// Maps and validates `path`. Errors name the file and the key/tensor.
  static llvm::Expected<std::unique_ptr<GGUFFile>> open(llvm::StringRef path);
  /// Whether `path` starts with the GGUF magic.
  static bool hasMagic(llvm::StringRef path);

  llvm::StringRef path() const { return filePath; }
  uint32_t version() const { return fileVersion; }
  const GGUFValue *get(llvm::StringRef key) const;
  llvm::ArrayRef<TensorInfo> tensors() const { return infos; }
  const TensorInfo *lookup(llvm::StringRef name) const;
  /// The GGML type name of tensor `name` when lowbit does not read its
  /// type (lookup() does not find it then).
  std::optional<llvm::StringRef> unsupportedType(llvm::StringRef name) const;
  bool isMapped() const {
    return buffer->getBufferKind() == llvm::MemoryBuffer::MemoryBuffer_MMap;
  }

  /// Typed metadata access; errors name the key and what it holds instead.
  /// An absent key gives std::nullopt.
  llvm::Expected<std::optional<uint64_t>> getUInt(llvm::StringRef key) const;
  llvm::Expected<std::optional<double>> getFloat(llvm::StringRef key) const;
  llvm::Expected<std::optional<llvm::StringRef>>
  getString(llvm::StringRef key) const;
  /// An array of strings, or of integers (as int64).
  llvm::Expected<const GGUFValue *> getArray(llvm::StringRef key,
                                             GGUFValue::Type elem) const;
  /// Element i of an integer array.
  static int64_t intAt(const GGUFValue &v, uint64_t i);

  llvm::Error error(const llvm::Twine &msg) const;

private:
  std::string filePath;
  uint32_t fileVersion = 0;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  llvm::StringMap<GGUFValue> meta;
  std::vector<TensorInfo> infos;
  llvm::StringMap<size_t> index;
  llvm::StringMap<std::string> unsupported;
};

/// Decodes a ternary projection weight into codes -1/0/+1 (row-major
/// [rows, cols], `codes` has rows * cols entries) and returns the scale
/// stored with them:
///   - I8: the codes (each must be -1, 0 or +1), scale 1 (a separate
///     weight_scale applies);
///   - TQ1_0 / TQ2_0: llama.cpp's blocks of 256; every block with a non-zero
///     code must carry the same scale d (one scale per tensor, as BitNet);
///   - I2_S: bitnet.cpp's x86 layout, blocks of 128 codes in 32 bytes, then
///     one f32 scale;
///   - F32 / F16 / BF16 as GGUF (or an ONNX MatMul's initializer) stores
///     BitNet weights unquantized: each value must be 0 or +-alpha (alpha =
///     the largest magnitude), within 0.1 % of alpha.
/// A `transposed` tensor is read in its logical order.
/// Errors name the tensor and what is wrong.
llvm::Expected<float> decodeTernary(const TensorInfo &t, llvm::StringRef file,
                                    int8_t *codes);

/// Element i of a float tensor (BF16, F16, F32, or a quantized float:
/// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, decoded as llama.cpp's
/// dequantize_row_*) as
/// f32.
float floatAt(const TensorInfo &t, int64_t i);
/// Element i of the tensor's bytes in stored order (floatAt without the
/// transposition).
float storedFloatAt(const TensorInfo &t, int64_t i);

/// The model configuration a BitNet GGUF file's metadata gives
/// (architectures bitnet, bitnet-b1.58, bitnet-25). Errors name the file
/// and the key.
llvm::Expected<ModelConfig> readGGUFConfig(const GGUFFile &gguf);

/// The GGUF name of the tensor Hugging Face calls `hfName`
/// (model.layers.3.self_attn.q_proj.weight -> blk.3.attn_q.weight); an
/// unknown name is returned unchanged.
std::string ggufTensorName(llvm::StringRef hfName);

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_GGUF_H
