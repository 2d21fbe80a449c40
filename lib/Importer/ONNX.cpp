//===- ONNX.cpp - BitNet weights in an ONNX model -------------------------===//

#include "lowbit/Importer/ONNX.h"
#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/ONNXProto.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <cstring>
#include <set>

using namespace mlir;
using namespace mlir::lowbit;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;
namespace proto = ::lowbit::onnxproto;

ONNXModel::~ONNXModel() = default;

Error ONNXModel::error(const Twine &msg) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 filePath + ": " + msg);
}

std::string ONNXModel::modelFile(StringRef path) {
  namespace fs = llvm::sys::fs;
  if (fs::is_regular_file(path))
    return llvm::sys::path::extension(path).equals_insensitive(".onnx")
               ? path.str()
               : std::string();
  if (!fs::is_directory(path))
    return {};
  for (StringRef st : {"model.safetensors", "model.safetensors.index.json"}) {
    llvm::SmallString<256> p(path);
    llvm::sys::path::append(p, st);
    if (fs::exists(p))
      return {};
  }
  for (StringRef rel : {"model.onnx", "onnx/model.onnx"}) {
    llvm::SmallString<256> p(path);
    llvm::sys::path::append(p, rel);
    if (fs::is_regular_file(p))
      return std::string(p);
  }
  return {};
}

std::string ONNXModel::companionFile(StringRef onnxPath, StringRef name) {
  llvm::SmallString<256> dir(onnxPath);
  llvm::sys::fs::make_absolute(dir);
  llvm::sys::path::remove_filename(dir);
  for (int up = 0; up < 2; ++up) {
    llvm::SmallString<256> p(dir);
    llvm::sys::path::append(p, name);
    if (llvm::sys::fs::is_regular_file(p))
      return std::string(p);
    dir = llvm::sys::path::parent_path(dir);
  }
  return {};
}

namespace {

std::optional<DType> dtypeOf(int32_t onnxType) {
  switch (onnxType) {
  case 1:
    return DType::F32;
  case 2:
    return DType::U8;
  case 3:
    return DType::I8;
  case 10:
    return DType::F16;
  case 16:
    return DType::BF16;
  default:
    return std::nullopt;
  }
}

std::string dimsStr(llvm::ArrayRef<int64_t> d) {
  return "[" +
         llvm::join(
             llvm::map_range(d, [](int64_t x) { return std::to_string(x); }),
             ", ") +
         "]";
}

/// `/model/layers.0/self_attn/q_proj/MatMul` ->
/// `model.layers.0.self_attn.q_proj` (torch.onnx.export's scope names); "" for
/// names without a module path.
std::string modulePath(StringRef nodeName) {
  if (!nodeName.consume_front("/"))
    return {};
  llvm::SmallVector<StringRef> parts;
  nodeName.split(parts, '/');
  if (parts.size() < 2)
    return {};
  parts.pop_back();
  if (llvm::any_of(parts, [](StringRef p) { return p.empty(); }))
    return {};
  return llvm::join(parts, ".");
}

} // namespace

Expected<std::unique_ptr<ONNXModel>> ONNXModel::open(StringRef path) {
  std::unique_ptr<ONNXModel> m(new ONNXModel);
  m->filePath = path.str();
  m->model = std::make_unique<proto::Model>();
  std::string err;
  if (!proto::readModel(m->filePath, *m->model, err))
    return m->error(err);
  if (Error e = m->readTensors())
    return std::move(e);
  m->mapWeights();
  return std::move(m);
}

Error ONNXModel::readTensors() {
  // Initializers, then the tensors of Constant nodes (named by their output).
  std::vector<std::pair<std::string, const proto::Tensor *>> all;
  for (const proto::Tensor &t : model->initializers)
    all.push_back({t.name, &t});
  for (const proto::Node &n : model->nodes)
    if (n.opType == "Constant" && n.domain.empty() && n.outputs.size() == 1) {
      auto it = n.attributes.find("value");
      if (it != n.attributes.end() && it->second.hasTensor)
        all.push_back({n.outputs[0], &it->second.t});
    }

  llvm::SmallString<256> dir(filePath);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  llvm::SmallString<256> realDir;
  if (llvm::sys::fs::real_path(dir, realDir))
    realDir = dir;
  llvm::StringMap<const llvm::MemoryBuffer *> mapped;
  llvm::StringSet<> seen;

  for (auto &entry : all) {
    const std::string &name = entry.first;
    const proto::Tensor *t = entry.second;
    if (name.empty())
      return error("an initializer has no name");
    std::string what = "initializer '" + name + "'";
    if (!seen.insert(name).second)
      return error(what + " is defined twice");
    int64_t numel = 1;
    for (int64_t d : t->dims) {
      if (d < 0)
        return error(what + " has a negative dimension in " + dimsStr(t->dims));
      if (d != 0 && numel > (int64_t(1) << 42) / d)
        return error(what + " has too many elements (" + dimsStr(t->dims) +
                     ")");
      numel *= d;
    }
    std::optional<DType> dt = dtypeOf(t->dataType);
    if (!dt) {
      otherTypes[name] = t->dataType;
      continue;
    }
    uint64_t size = uint64_t(numel) * dtypeSize(*dt);
    llvm::ArrayRef<uint8_t> bytes;
    if (t->external) {
      auto field = [&](StringRef key) -> std::optional<std::string> {
        auto it = t->externalData.find(key.str());
        if (it == t->externalData.end())
          return std::nullopt;
        return it->second;
      };
      std::optional<std::string> location = field("location");
      if (!location || location->empty())
        return error(what + " is external data without a 'location'");
      // onnx-mlir's rule: a relative path inside the model's directory.
      StringRef loc(*location);
      if (llvm::sys::path::is_absolute(loc) || loc.contains('\\') ||
          llvm::any_of(llvm::make_range(llvm::sys::path::begin(loc),
                                        llvm::sys::path::end(loc)),
                       [](StringRef c) { return c == ".."; }))
        return error(what + ": external data location '" + loc +
                     "' is not a relative path inside the model's directory");
      uint64_t offset = 0;
      if (std::optional<std::string> o = field("offset"))
        if (StringRef(*o).getAsInteger(10, offset))
          return error(what + ": external data offset '" + *o +
                       "' is not a number");
      if (std::optional<std::string> l = field("length")) {
        uint64_t length;
        if (StringRef(*l).getAsInteger(10, length))
          return error(what + ": external data length '" + *l +
                       "' is not a number");
        if (length != size)
          return error(what + ": external data length " + Twine(length) +
                       " does not match " + dimsStr(t->dims) + " of " +
                       proto::dataTypeName(t->dataType) + " (" + Twine(size) +
                       " bytes)");
      }
      auto it = mapped.find(loc);
      if (it == mapped.end()) {
        llvm::SmallString<256> full(dir);
        llvm::sys::path::append(full, loc);
        llvm::SmallString<256> real;
        if (std::error_code ec = llvm::sys::fs::real_path(full, real))
          return error(what + ": external data file '" + loc +
                       "': " + ec.message());
        if (!StringRef(real).starts_with(StringRef(realDir).str() + "/"))
          return error(what + ": external data file '" + loc +
                       "' resolves outside the model's directory");
        auto buf =
            llvm::MemoryBuffer::getFile(real, /*IsText=*/false,
                                        /*RequiresNullTerminator=*/false);
        if (!buf)
          return error(what + ": external data file '" + loc +
                       "': " + buf.getError().message());
        external.push_back(std::move(*buf));
        it = mapped.insert({loc, external.back().get()}).first;
      }
      const llvm::MemoryBuffer &buf = *it->second;
      if (offset > buf.getBufferSize() || size > buf.getBufferSize() - offset)
        return error(what + ": external data [" + Twine(offset) + ", " +
                     Twine(offset) + " + " + Twine(size) + ") runs past the " +
                     Twine(buf.getBufferSize()) + "-byte file '" + loc + "'");
      bytes = llvm::ArrayRef<uint8_t>(
          reinterpret_cast<const uint8_t *>(buf.getBufferStart()) + offset,
          size);
    } else {
      if (t->typedCount >= 0 && t->typedCount != numel)
        return error(what + " has " + Twine(t->typedCount) + " values in " +
                     t->field + ", expected " + Twine(numel) + " for " +
                     dimsStr(t->dims));
      if (t->data.size() != size)
        return error(what + ": " + t->field + " holds " +
                     Twine(uint64_t(t->data.size())) + " bytes, expected " +
                     Twine(size) + " for " + dimsStr(t->dims) + " of " +
                     proto::dataTypeName(t->dataType));
      bytes = llvm::ArrayRef<uint8_t>(
          reinterpret_cast<const uint8_t *>(t->data.data()), size);
    }
    TensorInfo &info = infos.emplace_back();
    info.name = name;
    info.dtype = *dt;
    info.shape.assign(t->dims.begin(), t->dims.end());
    info.bytes = bytes;
    byOnnxName[name] = &info;
  }
  return Error::success();
}

namespace mlir::lowbit {

/// What a weight input is computed from: the rank-2 initializers on its
/// data path (with the parity of the Transposes on the way), and the ops.
struct WeightTrace {
  std::set<std::pair<const TensorInfo *, bool>> leaves;
  std::set<std::string> ops;
  std::vector<const proto::Node *> dequantize;
  std::string unsupportedLeaf, unknownOp;
  bool dynamic = false;
  int visits = 0;
};

/// Finds the weights of an ONNXModel's graph by Hugging Face name (ONNX.h
/// says how) and records them, or why one cannot be read, in the model.
class ONNXWeightMapper {
public:
  explicit ONNXWeightMapper(ONNXModel &m) : m(m) {
    for (const proto::Node &n : m.model->nodes) {
      for (const std::string &o : n.outputs)
        if (!o.empty())
          producer[o] = &n;
      for (const std::string &in : n.inputs)
        if (!in.empty())
          consumers[in].push_back(&n);
    }
  }

  void run() {
    for (const proto::Node &n : m.model->nodes) {
      if (!n.domain.empty())
        continue;
      bool linear = n.opType == "MatMul" || n.opType == "Gemm";
      std::string path = modulePath(n.name);
      if (path.empty() && linear)
        path = unscopedPath(n);
      if (path.empty())
        continue;
      if (linear) {
        if (mapLinear(n, path))
          applyPostScale(n, path);
      } else if (n.opType == "Gather") {
        mapTable(n, path);
      } else if (n.opType == "Mul" &&
                 StringRef(path).rsplit('.').second.contains_insensitive(
                     "norm")) {
        mapNorm(n, path);
      }
    }
    // Initializers named like checkpoint tensors fill in the rest.
    for (auto &kv : m.byOnnxName)
      if (!m.byName.count(kv.first()) && !m.problems.count(kv.first()))
        m.byName[kv.first()] = kv.second;
  }

private:
  /// Follows value `v` back to the initializers it is computed from.
  void visit(const std::string &v, bool parity, bool scalar, WeightTrace &tr,
             int depth) {
    if (v.empty())
      return;
    if (++tr.visits > 4096 || depth > 64) {
      tr.unknownOp = "a subgraph too large to follow";
      return;
    }
    if (const TensorInfo *t = m.byOnnxName.lookup(v)) {
      if (!scalar && t->shape.size() == 2)
        tr.leaves.insert({t, parity});
      return;
    }
    if (m.otherTypes.count(v)) {
      if (!scalar)
        tr.unsupportedLeaf = v;
      return;
    }
    const proto::Node *n = producer.lookup(v);
    if (!n) {
      tr.dynamic = true; // a graph input: not a weight
      return;
    }
    const std::string &op = n->opType;
    if (!n->domain.empty()) {
      tr.unknownOp = n->domain + "." + op;
      return;
    }
    static const std::set<std::string> unary = {
        "Identity", "Cast", "Round", "Neg", "Sign", "Floor", "Ceil", "Abs"};
    static const std::set<std::string> binary = {"Mul", "Div", "Add",
                                                 "Sub", "Max", "Min"};
    static const std::set<std::string> reduce = {
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceL1",
        "Reciprocal", "Sqrt",      "Pow"};
    if (op == "Constant") {
      return; // a scalar given as value_float / value_int
    } else if (op == "Transpose") {
      auto it = n->attributes.find("perm");
      if (it != n->attributes.end() &&
          it->second.ints != std::vector<int64_t>{1, 0}) {
        tr.unknownOp = "Transpose with perm " + dimsStr(it->second.ints);
        return;
      }
      if (!n->inputs.empty())
        visit(n->inputs[0], !parity, scalar, tr, depth + 1);
    } else if (unary.count(op) || op == "Clip" || op == "DequantizeLinear") {
      // Inputs after the first (bounds, scale, zero point) are scalars.
      tr.ops.insert(op);
      if (op == "DequantizeLinear" && !scalar)
        tr.dequantize.push_back(n);
      for (size_t i = 0; i < n->inputs.size(); ++i)
        visit(n->inputs[i], parity, scalar || i > 0, tr, depth + 1);
    } else if (binary.count(op)) {
      tr.ops.insert(op);
      for (const std::string &in : n->inputs)
        visit(in, parity, scalar, tr, depth + 1);
    } else if (reduce.count(op)) {
      // A branch that computes a scale.
      tr.ops.insert(op);
      for (const std::string &in : n->inputs)
        visit(in, parity, true, tr, depth + 1);
    } else {
      tr.unknownOp = op;
    }
  }
  WeightTrace trace(const std::string &v) {
    WeightTrace tr;
    visit(v, false, false, tr, 0);
    return tr;
  }

  /// The one-element float initializer `v` is, through Cast / Identity.
  const TensorInfo *scalarConstant(std::string v) {
    for (int depth = 0; depth < 8; ++depth) {
      if (const TensorInfo *t = m.byOnnxName.lookup(v))
        return t->numElements() == 1 && isFloatLike(t->dtype) &&
                       !isQuantizedFloat(t->dtype)
                   ? t
                   : nullptr;
      const proto::Node *p = producer.lookup(v);
      if (!p || !p->domain.empty() || p->inputs.empty() ||
          (p->opType != "Cast" && p->opType != "Identity"))
        return nullptr;
      v = p->inputs[0];
    }
    return nullptr;
  }

  /// A MatMul / Gemm without a module path in its name (an exporter
  /// without scope names, as torch's dynamo exporter): named by its weight
  /// initializer when that keeps its checkpoint name (`X.weight` -> X).
  std::string unscopedPath(const proto::Node &n) {
    if (n.inputs.size() < 2)
      return {};
    WeightTrace tr = trace(n.inputs[1]);
    std::set<const TensorInfo *> leaves;
    for (auto &leaf : tr.leaves)
      leaves.insert(leaf.first);
    StringRef name;
    if (!tr.dynamic && leaves.size() == 1)
      name = (*leaves.begin())->name;
    if (!name.consume_back(".weight"))
      return {};
    return name.str();
  }

  /// What a trace reads, to compare two claims of one name.
  static std::string reads(const proto::Node &n, const WeightTrace &tr) {
    std::string r = n.opType;
    for (auto &[t, p] : tr.leaves)
      r += "|" + t->name + (p ? "^T" : "");
    for (const std::string &op : tr.ops)
      r += "|" + op;
    for (const proto::Node *d : tr.dequantize)
      for (const std::string &in : d->inputs)
        r += "|dq:" + in;
    for (const auto &[k, a] : n.attributes)
      r += "|" + k + "=" + std::to_string(a.i) + "," + std::to_string(a.f);
    return r + "|" + tr.unknownOp + "|" + tr.unsupportedLeaf;
  }

  /// Records that node `n` names weight `hf` by reading `what`. A merged
  /// decoder export repeats each node in both branches of an If over the
  /// same initializers: the same weight twice is one weight (Same); two
  /// different ones under one name are a problem (Conflict).
  enum Claim { First, Same, Conflict };
  Claim claim(const std::string &hf, const proto::Node &n,
              const std::string &what) {
    auto [it, inserted] = claimedBy.try_emplace(hf, n.name, what);
    if (inserted) {
      firstNode[hf] = &n;
      return First;
    }
    if (it->second.second == what && !m.problems.count(hf))
      return Same;
    fail(hf, it->second.first == n.name
                 ? "two nodes named '" + n.name + "' read different weights"
                 : "nodes '" + it->second.first + "' and '" + n.name +
                       "' both give weight '" + hf + "'");
    return Conflict;
  }
  void fail(const std::string &hf, const std::string &why) {
    m.problems[hf] = why;
    m.byName.erase(hf);
  }
  /// `src` under the name `hf`, read by node `n`.
  TensorInfo &view(const TensorInfo &src, const std::string &hf,
                   const proto::Node &n) {
    TensorInfo &t = m.derived.emplace_back(src);
    t.name = hf;
    t.origin = "initializer '" + src.name + "' of node '" + n.name + "'";
    m.byName[hf] = &t;
    return t;
  }

  /// The weight of projection node `n` (MatMul / Gemm) of module `path`;
  /// false when there is none or it was named before.
  bool mapLinear(const proto::Node &n, const std::string &path) {
    std::string hf = path + ".weight";
    if (n.inputs.size() < 2)
      return false;
    bool transB = false;
    if (n.opType == "Gemm") {
      auto attr = [&](StringRef k) -> const proto::Attribute * {
        auto it = n.attributes.find(k.str());
        return it == n.attributes.end() ? nullptr : &it->second;
      };
      transB = attr("transB") && attr("transB")->i != 0;
      if ((attr("transA") && attr("transA")->i != 0) ||
          (attr("alpha") && attr("alpha")->f != 1.0f)) {
        if (claim(hf, n, "Gemm transA/alpha") == First)
          fail(hf, "node '" + n.name +
                       "' is a Gemm with transA or alpha != 1, which lowbit "
                       "does not read");
        return false;
      }
    }
    WeightTrace tr = trace(n.inputs[1]);
    if (tr.dynamic)
      return false; // activations times activations (attention scores)
    std::string bias = n.inputs.size() > 2 ? n.inputs[2] : "";
    if (claim(hf, n, reads(n, tr) + "|bias:" + bias) != First)
      return false;
    if (n.opType == "Gemm" && !bias.empty())
      if (const TensorInfo *b = m.byOnnxName.lookup(bias))
        view(*b, path + ".bias", n);
    std::string where = "the weight of node '" + n.name + "'";
    if (!tr.unknownOp.empty()) {
      fail(hf, where + " is computed by " + tr.unknownOp +
                   ", which lowbit does not read as a BitNet weight (an "
                   "initializer, DequantizeLinear of int8 codes, or the "
                   "absmean quantizer's Round/Clip over master weights)");
      return false;
    }
    std::set<const TensorInfo *> distinct;
    std::set<bool> parities;
    for (auto &[t, p] : tr.leaves) {
      distinct.insert(t);
      parities.insert(p);
    }
    if (distinct.empty()) {
      fail(hf,
           where + (tr.unsupportedLeaf.empty()
                        ? std::string(" is not computed from an initializer")
                        : " is initializer '" + tr.unsupportedLeaf +
                              "' of data type " +
                              proto::dataTypeName(
                                  m.otherTypes.lookup(tr.unsupportedLeaf)) +
                              " (lowbit reads FLOAT, FLOAT16, BFLOAT16, "
                              "INT8, UINT8)"));
      return false;
    }
    if (distinct.size() > 1 || parities.size() > 1) {
      fail(hf, where + " is computed from " +
                   (distinct.size() > 1 ? "several matrices"
                                        : "a matrix and its transpose") +
                   ", not one weight");
      return false;
    }
    const TensorInfo &leaf = **distinct.begin();
    bool parity = *parities.begin();
    bool master = tr.ops.count("Round");
    bool dq = tr.ops.count("DequantizeLinear");
    std::set<std::string> other = tr.ops;
    for (StringRef ok : {"Identity", "Cast", "DequantizeLinear"})
      other.erase(ok.str());
    if (dq && (master || !other.empty() || tr.dequantize.size() != 1)) {
      fail(hf, where + " applies more than one DequantizeLinear (" +
                   llvm::join(tr.ops, ", ") + ")");
      return false;
    }
    if (!master && !dq && !other.empty()) {
      fail(hf, where + " is computed by " + llvm::join(other, ", ") +
                   " without Round: neither stored weights nor BitNet's "
                   "absmean quantizer");
      return false;
    }
    if (master && !isFloatLike(leaf.dtype)) {
      fail(hf, where + " quantizes " + dtypeName(leaf.dtype).str() +
                   " initializer '" + leaf.name +
                   "'; master weights must be float");
      return false;
    }
    if (!master && !dq && leaf.dtype == DType::U8) {
      fail(hf, where + " is UINT8 initializer '" + leaf.name +
                   "' without a DequantizeLinear");
      return false;
    }
    TensorInfo &w = view(leaf, hf, n);
    // MatMul multiplies by B = [in, out]; lowbit's weight is [out, in].
    w.transposed = parity == transB;
    if (w.transposed)
      std::swap(w.shape[0], w.shape[1]);
    // Master weights are quantized as BitNet does; anything else is what
    // the model multiplies by.
    w.ternaryValues = !master;
    return !dq || mapDequantize(w, *tr.dequantize.front(), leaf, path, n);
  }

  /// DequantizeLinear(x, scale, zero_point) feeding weight `w`: codes
  /// x - zero_point, and the scale as `path.weight_scale`.
  bool mapDequantize(TensorInfo &w, const proto::Node &dqn,
                     const TensorInfo &leaf, const std::string &path,
                     const proto::Node &n) {
    std::string hf = path + ".weight";
    std::string where = "the weight of node '" + n.name +
                        "': DequantizeLinear node '" + dqn.name + "'";
    const TensorInfo *scale =
        dqn.inputs.size() > 1 ? m.byOnnxName.lookup(dqn.inputs[1]) : nullptr;
    if (!scale) {
      fail(hf, where + " has no initializer scale");
      return false;
    }
    if (leaf.dtype != DType::U8 && leaf.dtype != DType::I8) {
      fail(hf, "the weight of node '" + n.name + "': DequantizeLinear of " +
                   dtypeName(leaf.dtype).str() + " initializer '" + leaf.name +
                   "' (codes must be INT8 or UINT8)");
      return false;
    }
    int64_t zero = 0;
    if (dqn.inputs.size() > 2 && !dqn.inputs[2].empty()) {
      const TensorInfo *zp = m.byOnnxName.lookup(dqn.inputs[2]);
      if (!zp || zp->dtype != leaf.dtype || zp->numElements() != 1) {
        fail(hf, where + " needs one zero point of the codes' type (BitNet "
                         "has one scale per tensor)");
        return false;
      }
      zero = zp->dtype == DType::U8 ? int64_t(zp->bytes[0])
                                    : int64_t(int8_t(zp->bytes[0]));
    }
    view(*scale, path + ".weight_scale", n);
    if (leaf.dtype == DType::U8 || zero != 0) {
      // Codes minus the zero point, as int8 (out-of-range values stay out
      // of range: decodeTernary reports them).
      std::vector<uint8_t> &codes = m.owned.emplace_back(leaf.bytes.size());
      for (size_t i = 0; i < codes.size(); ++i) {
        int64_t x = leaf.dtype == DType::U8 ? int64_t(leaf.bytes[i])
                                            : int64_t(int8_t(leaf.bytes[i]));
        codes[i] = uint8_t(int8_t(std::clamp<int64_t>(x - zero, -128, 127)));
      }
      w.bytes = codes;
      w.dtype = DType::I8;
    }
    return true;
  }

  /// A positive scalar that projection `n`'s output is multiplied (or
  /// divided) by in the same module scales its weight: transformers'
  /// AutoBitLinear multiplies by weight_scale after the MatMul of codes.
  void applyPostScale(const proto::Node &n, const std::string &path) {
    std::string hf = path + ".weight";
    if (n.outputs.empty() || firstNode.lookup(hf) != &n)
      return;
    auto uses = consumers.find(n.outputs[0]);
    if (uses == consumers.end() || uses->second.size() != 1)
      return;
    const proto::Node &c = *uses->second.front();
    bool div = c.opType == "Div";
    if (!c.domain.empty() || !(c.opType == "Mul" || div) ||
        c.inputs.size() != 2 || modulePath(c.name) != path ||
        (div && c.inputs[0] != n.outputs[0]))
      return;
    const TensorInfo *sc =
        scalarConstant(c.inputs[0] == n.outputs[0] ? c.inputs[1] : c.inputs[0]);
    if (!sc)
      return;
    float post = storedFloatAt(*sc, 0);
    if (div)
      post = 1.0f / post;
    std::string where = "the scale node '" + c.name + "' applies";
    if (!m.byName[hf]->ternaryValues)
      return fail(hf, where + " after master weights that the graph "
                              "quantizes itself (lowbit reads one or the "
                              "other)");
    if (!(std::isfinite(post) && post > 0.0f))
      return fail(hf, where + " " + std::to_string(post) +
                          ", not a positive number");
    std::string scaleName = path + ".weight_scale";
    if (const TensorInfo *dqScale = m.byName.lookup(scaleName)) {
      if (dqScale->numElements() != 1 || !isFloatLike(dqScale->dtype))
        return; // the importer reports it
      post *= storedFloatAt(*dqScale, 0);
    }
    std::vector<uint8_t> &bytes = m.owned.emplace_back(4);
    uint32_t u;
    std::memcpy(&u, &post, 4);
    llvm::support::endian::write32le(bytes.data(), u);
    TensorInfo &t = m.derived.emplace_back();
    t.name = scaleName;
    t.dtype = DType::F32;
    t.shape = {1};
    t.bytes = bytes;
    t.origin = "the scalar of node '" + c.name + "'";
    m.byName[scaleName] = &t;
  }

  /// The table of Gather `n` (the embedding).
  void mapTable(const proto::Node &n, const std::string &path) {
    std::string hf = path + ".weight";
    if (n.inputs.empty())
      return;
    WeightTrace tr = trace(n.inputs[0]);
    // Gathers from runtime values or integer constants are shape
    // arithmetic, not a table.
    if (tr.dynamic || tr.leaves.empty() || claim(hf, n, reads(n, tr)) != First)
      return;
    std::set<std::string> other = tr.ops;
    other.erase("Identity");
    other.erase("Cast");
    if (!tr.unknownOp.empty() || !other.empty() || tr.leaves.size() != 1)
      return fail(hf, "the table of node '" + n.name +
                          "' is not one float initializer (lowbit reads float "
                          "embeddings)");
    auto [leaf, parity] = *tr.leaves.begin();
    TensorInfo &t = view(*leaf, hf, n);
    t.transposed = parity;
    if (parity)
      std::swap(t.shape[0], t.shape[1]);
  }

  /// The weight a Mul in a `*norm` module multiplies by (a 1-D initializer).
  void mapNorm(const proto::Node &n, const std::string &path) {
    std::string hf = path + ".weight";
    for (const std::string &in : n.inputs) {
      const TensorInfo *t = m.byOnnxName.lookup(in);
      if (!t || t->shape.size() != 1 || t->numElements() < 2)
        continue;
      if (claim(hf, n, "Mul|" + t->name) == First)
        view(*t, hf, n);
    }
  }

  ONNXModel &m;
  llvm::StringMap<const proto::Node *> producer;
  llvm::StringMap<std::vector<const proto::Node *>> consumers;
  /// Weight name -> (node name, what it reads), and the node that first
  /// named it.
  llvm::StringMap<std::pair<std::string, std::string>> claimedBy;
  llvm::StringMap<const proto::Node *> firstNode;
};

} // namespace mlir::lowbit

void ONNXModel::mapWeights() { ONNXWeightMapper(*this).run(); }

const TensorInfo *ONNXModel::lookup(StringRef hfName) const {
  return byName.lookup(hfName);
}

std::optional<std::string> ONNXModel::problem(StringRef hfName) const {
  auto it = problems.find(hfName);
  if (it == problems.end())
    return std::nullopt;
  return it->second;
}

bool ONNXModel::isMapped(const TensorInfo &t) const {
  const char *p = reinterpret_cast<const char *>(t.bytes.data());
  return llvm::any_of(external, [&](const auto &buf) {
    return buf->getBufferKind() == llvm::MemoryBuffer::MemoryBuffer_MMap &&
           p >= buf->getBufferStart() && p < buf->getBufferEnd();
  });
}

Error ONNXModel::checkArchitecture() const {
  static const std::set<std::string> notReLU = {
      "Sigmoid",   "Tanh", "Erf",  "Gelu",      "Softplus", "HardSigmoid",
      "HardSwish", "Elu",  "Selu", "LeakyRelu", "Softsign", "Mish"};
  for (const proto::Node &n : model->nodes) {
    std::string path = modulePath(n.name);
    llvm::SmallVector<StringRef> parts;
    StringRef(path).split(parts, '.');
    if (n.domain.empty() && notReLU.count(n.opType) &&
        llvm::is_contained(parts, "mlp"))
      return error("node '" + n.name + "' computes " + n.opType +
                   ": BitNet's MLP activation is ReLU^2 (relu(gate)^2 * up), "
                   "which is what lowbit compiles");
  }
  return Error::success();
}
