//===- ONNX.h - BitNet weights in an ONNX model -----------------*- C++ -*-===//
//
// Reads a BitNet model exported to ONNX (torch.onnx.export / Optimum, or
// any writer that keeps the module paths in node names or the Hugging Face
// names on initializers) and finds its weights by Hugging Face name:
//
//   - an initializer named like a checkpoint tensor
//     (`model.layers.0.input_layernorm.weight`) is that tensor;
//   - a MatMul / Gemm node named `/model/layers.0/self_attn/q_proj/MatMul`
//     gives `model.layers.0.self_attn.q_proj.weight` from its B input:
//       * an initializer, possibly behind Transpose / Identity / Cast: the
//         values the graph multiplies by (ternary: 0 and +-scale), in either
//         orientation ([in, out] for MatMul is read transposed, no copy);
//       * DequantizeLinear of int8 (or uint8) codes: codes -1/0/+1 and the
//         per-tensor scale (`...weight_scale`);
//       * a constant subgraph with Round (the absmean quantizer of an
//         unfolded export) over one float matrix: master weights, which
//         lowbit quantizes as BitNet does;
//     and a positive scalar the MatMul's output is then multiplied (or
//     divided) by in the same module (transformers' AutoBitLinear:
//     `F.linear(x, codes) * weight_scale`) scales the stored weights;
//   - a MatMul / Gemm without a module path in its name whose weight
//     initializer keeps its checkpoint name (`...q_proj.weight`, an exporter
//     without scope names) is read the same way under that name;
//   - a Gather named `/model/embed_tokens/Gather` gives the embedding, a Mul
//     in a `*norm` module with a 1-D initializer the norm weight.
//
// The architecture comes from config.json beside the .onnx file or in its
// parent directory (Optimum puts the model in onnx/); the graph's other
// nodes are not translated, only checked where they could contradict it
// (an MLP activation other than ReLU^2). Initializers may be inline or
// external data (mapped, never copied; paths must stay inside the model's
// directory). Every count, size, offset and path is checked.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_IMPORTER_ONNX_H
#define LOWBIT_IMPORTER_ONNX_H

#include "lowbit/Importer/Safetensors.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::onnxproto {
struct Model;
}

namespace mlir::lowbit {

class ONNXModel {
public:
  ~ONNXModel();
  /// Reads and validates the ONNX file at `path`.
  static llvm::Expected<std::unique_ptr<ONNXModel>> open(llvm::StringRef path);

  llvm::StringRef path() const { return filePath; }
  /// The weight Hugging Face calls `hfName`, or nullptr.
  const TensorInfo *lookup(llvm::StringRef hfName) const;
  /// Every weight found, by Hugging Face name.
  const llvm::StringMap<const TensorInfo *> &weights() const { return byName; }
  /// Why `hfName` was found but cannot be read (two candidates, an
  /// unsupported data type or computation), if it was.
  std::optional<std::string> problem(llvm::StringRef hfName) const;
  /// Whether `t`'s bytes are memory-mapped external data (inline data is
  /// heap memory, which WeightSource::release must not drop).
  bool isMapped(const TensorInfo &t) const;
  /// An error when a node contradicts BitNet's architecture (an MLP
  /// activation other than ReLU^2).
  llvm::Error checkArchitecture() const;

  /// `path` itself when it names a file, else the ONNX model of a directory
  /// without safetensors (model.onnx, or onnx/model.onnx as Optimum writes
  /// it); "" when there is none.
  static std::string modelFile(llvm::StringRef path);
  /// `name` (config.json, tokenizer.json) beside the ONNX file or in its
  /// parent directory; "" when in neither.
  static std::string companionFile(llvm::StringRef onnxPath,
                                   llvm::StringRef name);

private:
  friend class ONNXWeightMapper;
  ONNXModel() = default;
  llvm::Error error(const llvm::Twine &msg) const;
  llvm::Error readTensors();
  void mapWeights();

  std::string filePath;
  std::unique_ptr<::lowbit::onnxproto::Model> model;
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> external;
  /// Every initializer / Constant of a data type lowbit reads, by ONNX name.
  std::deque<TensorInfo> infos;
  llvm::StringMap<const TensorInfo *> byOnnxName;
  /// Data types of the initializers lowbit does not read, by ONNX name.
  llvm::StringMap<int32_t> otherTypes;
  /// Tensors built by the mapping (codes minus a zero point, renamed views).
  std::deque<TensorInfo> derived;
  std::deque<std::vector<uint8_t>> owned;
  llvm::StringMap<const TensorInfo *> byName;
  llvm::StringMap<std::string> problems;
};

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_ONNX_H
