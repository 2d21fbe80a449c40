//===- ONNXProto.h - an ONNX model as plain structs -------------*- C++ -*-===//
//
// The only part of lowbit that sees protobuf: reads an ONNX ModelProto and
// returns the main graph's initializers, Constant tensors and nodes as plain
// structs (no protobuf types, no LLVM), so the importer (built with LLVM's
// -fno-exceptions -fno-rtti) never includes a generated .pb.h. Tensor bytes
// are moved out of the parsed message, not copied.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_IMPORTER_ONNXPROTO_H
#define LOWBIT_IMPORTER_ONNXPROTO_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::onnxproto {

/// One TensorProto: an initializer, or the `value` of a Constant node.
struct Tensor {
  std::string name;
  /// TensorProto.DataType (1 FLOAT, 2 UINT8, 3 INT8, 10 FLOAT16,
  /// 16 BFLOAT16, ...).
  int32_t dataType = 0;
  std::vector<int64_t> dims;
  /// Little-endian element bytes: raw_data, or the typed fields (float_data,
  /// int32_data, int64_data, double_data) converted to the data type's own
  /// width; empty when the data is external.
  std::string data;
  /// Which field held the data (for messages): "raw_data", "float_data"...
  std::string field;
  /// data_location == EXTERNAL: the external_data entries.
  bool external = false;
  std::map<std::string, std::string> externalData;
  /// A typed field's element count when it does not match dims (the
  /// importer reports it).
  int64_t typedCount = -1;
};

/// One AttributeProto (the kinds lowbit reads).
struct Attribute {
  int32_t type = 0; // AttributeProto.AttributeType
  int64_t i = 0;
  float f = 0.0f;
  std::string s;
  std::vector<int64_t> ints;
  bool hasTensor = false;
  Tensor t;
};

struct Node {
  std::string name, opType, domain;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, Attribute> attributes;
};

struct Model {
  int64_t irVersion = 0;
  std::string producerName, producerVersion;
  /// Operator sets: domain ("" for ai.onnx) -> version.
  std::map<std::string, int64_t> opsets;
  std::vector<Tensor> initializers;
  std::vector<Node> nodes;
  std::vector<std::string> graphInputs, graphOutputs;
  std::map<std::string, std::string> metadata;
};

/// Parses the ONNX file at `path` into `model`. On failure returns false
/// with `error` saying what is wrong (without the path).
bool readModel(const std::string &path, Model &model, std::string &error);

/// Bytes per element of an ONNX data type, 0 for types without a fixed
/// byte width (STRING, the 4-bit types, unknown numbers).
unsigned elementSize(int32_t dataType);
/// The data type's name ("FLOAT", "INT8", ...; "type N" when unknown).
std::string dataTypeName(int32_t dataType);

} // namespace lowbit::onnxproto

#endif // LOWBIT_IMPORTER_ONNXPROTO_H
