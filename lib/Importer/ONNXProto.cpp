//===- ONNXProto.cpp - an ONNX model as plain structs ---------------------===//
//
// Built in its own target with exceptions and RTTI (protobuf's generated code
// and headers expect them); nothing here includes LLVM.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Importer/ONNXProto.h"

#include <onnx/onnx_pb.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <unistd.h>

using namespace lowbit::onnxproto;

unsigned lowbit::onnxproto::elementSize(int32_t t) {
  switch (t) {
  case onnx::TensorProto::FLOAT:
  case onnx::TensorProto::INT32:
  case onnx::TensorProto::UINT32:
    return 4;
  case onnx::TensorProto::UINT8:
  case onnx::TensorProto::INT8:
  case onnx::TensorProto::BOOL:
  case 17: // FLOAT8E4M3FN ... FLOAT8E5M2FNUZ (ONNX 1.14)
  case 18:
  case 19:
  case 20:
    return 1;
  case onnx::TensorProto::UINT16:
  case onnx::TensorProto::INT16:
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    return 2;
  case onnx::TensorProto::INT64:
  case onnx::TensorProto::UINT64:
  case onnx::TensorProto::DOUBLE:
  case onnx::TensorProto::COMPLEX64:
    return 8;
  case onnx::TensorProto::COMPLEX128:
    return 16;
  default:
    return 0;
  }
}

std::string lowbit::onnxproto::dataTypeName(int32_t t) {
  // ONNX 1.12's enum lacks the later types; name them here.
  switch (t) {
  case 17:
    return "FLOAT8E4M3FN";
  case 18:
    return "FLOAT8E4M3FNUZ";
  case 19:
    return "FLOAT8E5M2";
  case 20:
    return "FLOAT8E5M2FNUZ";
  case 21:
    return "UINT4";
  case 22:
    return "INT4";
  default:
    break;
  }
  if (onnx::TensorProto_DataType_IsValid(t) && t != 0)
    return onnx::TensorProto_DataType_Name(
        static_cast<onnx::TensorProto_DataType>(t));
  return "type " + std::to_string(t);
}

namespace {

/// Appends `v`'s low `bytes` bytes, little-endian.
void appendLE(std::string &out, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i)
    out.push_back(char((v >> (8 * i)) & 0xFF));
}

Tensor convert(onnx::TensorProto &p) {
  Tensor t;
  t.name = p.name();
  t.dataType = p.data_type();
  t.dims.assign(p.dims().begin(), p.dims().end());
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    t.external = true;
    t.field = "external_data";
    for (const onnx::StringStringEntryProto &e : p.external_data())
      t.externalData[e.key()] = e.value();
    return t;
  }
  unsigned size = elementSize(t.dataType);
  if (p.has_raw_data()) {
    t.field = "raw_data";
    t.data = std::move(*p.mutable_raw_data());
    return t;
  }
  // Typed fields: each element in a wider field; keep the type's own width.
  if (p.float_data_size()) {
    t.field = "float_data";
    t.typedCount = p.float_data_size();
    t.data.reserve(size_t(p.float_data_size()) * 4);
    for (float f : p.float_data()) {
      uint32_t u;
      std::memcpy(&u, &f, 4);
      appendLE(t.data, u, 4);
    }
  } else if (p.int32_data_size()) {
    t.field = "int32_data";
    t.typedCount = p.int32_data_size();
    for (int32_t v : p.int32_data())
      appendLE(t.data, uint32_t(v), size ? size : 4);
  } else if (p.int64_data_size()) {
    t.field = "int64_data";
    t.typedCount = p.int64_data_size();
    for (int64_t v : p.int64_data())
      appendLE(t.data, uint64_t(v), size ? size : 8);
  } else if (p.uint64_data_size()) {
    t.field = "uint64_data";
    t.typedCount = p.uint64_data_size();
    for (uint64_t v : p.uint64_data())
      appendLE(t.data, v, size ? size : 8);
  } else if (p.double_data_size()) {
    t.field = "double_data";
    t.typedCount = p.double_data_size();
    for (double d : p.double_data()) {
      uint64_t u;
      std::memcpy(&u, &d, 8);
      appendLE(t.data, u, 8);
    }
  } else {
    t.field = "raw_data";
  }
  return t;
}

/// Appends `g`'s initializers and nodes, then those of the graphs its nodes
/// hold (If branches, Loop and Scan bodies: a merged decoder export keeps
/// its layers there), depth first. Value names are unique across nested
/// graphs (ONNX's SSA rule), so one flat list serves the lookups.
void addGraph(onnx::GraphProto &g, Model &model, int depth) {
  if (depth > 16)
    return; // protobuf's recursion limit stops deeper nesting anyway
  for (onnx::TensorProto &t : *g.mutable_initializer())
    model.initializers.push_back(convert(t));
  for (onnx::NodeProto &np : *g.mutable_node()) {
    Node n;
    n.name = np.name();
    n.opType = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? std::string() : np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (onnx::AttributeProto &ap : *np.mutable_attribute()) {
      Attribute a;
      a.type = ap.type();
      a.i = ap.i();
      a.f = ap.f();
      a.s = ap.s();
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      if (ap.has_t()) {
        a.hasTensor = true;
        a.t = convert(*ap.mutable_t());
      }
      n.attributes[ap.name()] = std::move(a);
    }
    model.nodes.push_back(std::move(n));
  }
  for (onnx::NodeProto &np : *g.mutable_node())
    for (onnx::AttributeProto &ap : *np.mutable_attribute()) {
      if (ap.has_g())
        addGraph(*ap.mutable_g(), model, depth + 1);
      for (onnx::GraphProto &sub : *ap.mutable_graphs())
        addGraph(sub, model, depth + 1);
    }
}

} // namespace

bool lowbit::onnxproto::readModel(const std::string &path, Model &model,
                                  std::string &error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  onnx::ModelProto proto;
  bool parsed;
  {
    google::protobuf::io::FileInputStream file(fd);
    google::protobuf::io::CodedInputStream in(&file);
    in.SetTotalBytesLimit(std::numeric_limits<int>::max());
    parsed = proto.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
  }
  ::close(fd);
  if (!parsed) {
    error = "not a valid ONNX model (the protobuf message does not parse; "
            "files over 2 GB must keep their weights as external data)";
    return false;
  }
  if (!proto.has_graph()) {
    error = "the ONNX model has no graph";
    return false;
  }
  model.irVersion = proto.ir_version();
  model.producerName = proto.producer_name();
  model.producerVersion = proto.producer_version();
  for (const onnx::OperatorSetIdProto &o : proto.opset_import())
    model.opsets[o.domain() == "ai.onnx" ? std::string() : o.domain()] =
        o.version();
  for (const onnx::StringStringEntryProto &e : proto.metadata_props())
    model.metadata[e.key()] = e.value();

  onnx::GraphProto &g = *proto.mutable_graph();
  for (const onnx::ValueInfoProto &v : g.input())
    model.graphInputs.push_back(v.name());
  for (const onnx::ValueInfoProto &v : g.output())
    model.graphOutputs.push_back(v.name());
  addGraph(g, model, 0);
  return true;
}
