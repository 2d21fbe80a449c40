//===- BitNetDialect.cpp - bitnet dialect and its operations --------------===//

#include "lowbit/Dialect/BitNet/IR/BitNetDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::bitnet;
using lowbit::formatShape;
using lowbit::parseParamRef;
using lowbit::printParamRef;
using lowbit::isStoredFloat;
using lowbit::ParamAttr;
using lowbit::verifyTokenDims;

#include "lowbit/Dialect/BitNet/IR/BitNetDialect.cpp.inc"
#include "lowbit/Dialect/BitNet/IR/BitNetEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "lowbit/Dialect/BitNet/IR/BitNetAttrs.cpp.inc"

/// custom<ActQuant>: the quantizer as a bare keyword (`int8_absmax`).
static ParseResult parseActQuant(OpAsmParser &parser, ActQuantAttr &attr) {
  std::string name;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeywordOrString(&name))
    return failure();
  std::optional<ActQuant> a = symbolizeActQuant(name);
  if (!a)
    return parser.emitError(loc) << "unknown activation quantizer '" << name
                                 << "'; expected int8_absmax or int4_absmean";
  attr = ActQuantAttr::get(parser.getContext(), *a);
  return success();
}

static void printActQuant(OpAsmPrinter &printer, Operation *,
                          ActQuantAttr attr) {
  printer << stringifyActQuant(attr.getValue());
}

#define GET_OP_CLASSES
#include "lowbit/Dialect/BitNet/IR/BitNetOps.cpp.inc"

void BitNetDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "lowbit/Dialect/BitNet/IR/BitNetAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "lowbit/Dialect/BitNet/IR/BitNetOps.cpp.inc"
      >();
}

/// Checks that `p` is a float tensor of rank `rank`; `role` names it.
static LogicalResult verifyFloatParam(Operation *op, ParamAttr p,
                                      int64_t rank, StringRef role) {
  if (!isStoredFloat(p.getType().getElementType()))
    return op->emitOpError() << role << " \"" << p.getName()
                             << "\" must be bf16, f16 or f32, got "
                             << p.getType().getElementType();
  if (p.getType().getRank() != rank)
    return op->emitOpError() << role << " \"" << p.getName() << "\" must be "
                             << rank << "-D, got shape "
                             << formatShape(p.getType().getShape());
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  if (failed(verifyFloatParam(*this, getTable(), 2, "table")))
    return failure();
  ArrayRef<int64_t> t = getTable().getType().getShape();
  ArrayRef<int64_t> ids = getIds().getType().getShape();
  ArrayRef<int64_t> r = getResult().getType().getShape();
  if (ids.size() != 1)
    return emitOpError() << "ids must be 1-D, got " << formatShape(ids);
  if (r.size() != 2 || r[1] != t[1])
    return emitOpError() << "result must be [tokens, " << t[1]
                         << "] (the table's hidden size), got "
                         << formatShape(r);
  if (!ShapedType::isDynamic(ids[0]) && !ShapedType::isDynamic(r[0]) &&
      ids[0] != r[0])
    return emitOpError() << "result has " << r[0] << " rows for " << ids[0]
                         << " ids";
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  if (failed(verifyFloatParam(*this, getWeight(), 1, "weight")))
    return failure();
  int64_t n = getWeight().getType().getShape()[0];
  ArrayRef<int64_t> in = getInput().getType().getShape();
  if (in.empty() || in.back() != n)
    return emitOpError() << "weight \"" << getWeight().getName() << "\" has "
                         << n << " elements but the input is "
                         << formatShape(in);
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError() << "eps must be positive, got "
                         << getEps().convertToFloat();
  return success();
}

//===----------------------------------------------------------------------===//
// BitLinearOp
//===----------------------------------------------------------------------===//

bool BitLinearOp::isPackedWeight() {
  return getWeight().getType().getElementType().isUnsignedInteger(8);
}

int64_t BitLinearOp::getOutFeatures() {
  int64_t rows = getWeight().getType().getShape()[0];
  return isPackedWeight() ? rows * 4 : rows;
}

int64_t BitLinearOp::getInFeatures() {
  return getWeight().getType().getShape()[1];
}

LogicalResult BitLinearOp::verify() {
  ParamAttr w = getWeight();
  ArrayRef<int64_t> ws = w.getType().getShape();
  if (ws.size() != 2)
    return emitOpError() << "weight \"" << w.getName()
                         << "\" must be 2-D, got " << formatShape(ws);
  Type elt = w.getType().getElementType();
  if (isPackedWeight()) {
    std::optional<ParamAttr> scale = getWeightScale();
    if (!scale)
      return emitOpError() << "packed weight \"" << w.getName()
                           << "\" needs a 'scale' (weight_scale) tensor";
    if (scale->getNumElements() != 1 ||
        !isStoredFloat(scale->getType().getElementType()))
      return emitOpError() << "weight_scale \"" << scale->getName()
                           << "\" must be one float element, got "
                           << scale->getType();
  } else if (isStoredFloat(elt)) {
    if (getWeightScale())
      return emitOpError() << "float master weight \"" << w.getName()
                           << "\" takes no 'scale' (its absmean is the scale)";
  } else if (elt.isSignlessInteger(8)) {
    // Ternary codes (GGUF's TQ1_0, TQ2_0, I2_S, ...) carry their own scale;
    // a weight_scale tensor, if any, multiplies it.
    std::optional<ParamAttr> scale = getWeightScale();
    if (scale && (scale->getNumElements() != 1 ||
                  !isStoredFloat(scale->getType().getElementType())))
      return emitOpError() << "weight_scale \"" << scale->getName()
                           << "\" must be one float element, got "
                           << scale->getType();
  } else {
    return emitOpError() << "weight \"" << w.getName() << "\" has dtype " << elt
                         << "; expected float master weights, packed ui8 or "
                            "i8 ternary codes";
  }
  ArrayRef<int64_t> in = getInput().getType().getShape();
  ArrayRef<int64_t> out = getResult().getType().getShape();
  if (in.empty() || in.back() != getInFeatures())
    return emitOpError() << "input " << formatShape(in) << " does not end in "
                         << getInFeatures() << " features of weight \""
                         << w.getName() << "\"";
  if (out.empty() || out.back() != getOutFeatures())
    return emitOpError() << "result " << formatShape(out) << " does not end in "
                         << getOutFeatures() << " output features of weight \""
                         << w.getName() << "\"";
  if (failed(verifyTokenDims(*this, in, out, "input and result")))
    return failure();
  if (std::optional<int64_t> k = getTopk()) {
    if (getAct() != ActQuant::int8_absmax)
      return emitOpError() << "topk is only defined with int8_absmax "
                              "activations";
    if (*k < 1 || *k > getInFeatures())
      return emitOpError() << "topk = " << *k << " must be in [1, "
                           << getInFeatures() << "]";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// RoPEOp
//===----------------------------------------------------------------------===//

LogicalResult RoPEOp::verify() {
  int64_t hd = getHeadDim();
  if (hd <= 0 || hd % 2 != 0)
    return emitOpError() << "head_dim must be positive and even, got " << hd;
  ArrayRef<int64_t> in = getInput().getType().getShape();
  if (in.size() != 2 || ShapedType::isDynamic(in[1]) || in[1] % hd != 0)
    return emitOpError() << "input must be [tokens, heads * " << hd
                         << "], got " << formatShape(in);
  ArrayRef<int64_t> pos = getPositions().getType().getShape();
  if (pos.size() != 1)
    return emitOpError() << "positions must be 1-D, got " << formatShape(pos);
  if (!ShapedType::isDynamic(pos[0]) && !ShapedType::isDynamic(in[0]) &&
      pos[0] != in[0])
    return emitOpError() << pos[0] << " positions for " << in[0] << " tokens";
  if (!(getTheta().convertToFloat() > 0.0f))
    return emitOpError() << "theta must be positive, got "
                         << getTheta().convertToFloat();
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

void AttentionOp::build(OpBuilder &b, OperationState &state, Value q, Value k,
                        Value v, Value kCache, Value vCache, Value start,
                        int64_t numHeads, int64_t numKVHeads, int64_t headDim,
                        int64_t kvBits, bool kvF16) {
  build(b, state, q.getType(), kCache.getType(), vCache.getType(), q, k, v,
        kCache, vCache, start, numHeads, numKVHeads, headDim, kvBits, kvF16);
}

LogicalResult AttentionOp::verify() {
  int64_t nh = getNumHeads(), nkv = getNumKvHeads(), hd = getHeadDim();
  if (nh <= 0 || nkv <= 0 || hd <= 0)
    return emitOpError() << "num_heads, num_kv_heads and head_dim must be "
                            "positive, got "
                         << nh << ", " << nkv << ", " << hd;
  if (nh % nkv != 0)
    return emitOpError() << "num_heads (" << nh
                         << ") must be a multiple of num_kv_heads (" << nkv
                         << ")";
  int64_t bits = getKvBits();
  if (bits != 3 && bits != 4 && bits != 8 && bits != 16)
    return emitOpError() << "kv_bits must be 3, 4, 8 or 16, got " << bits;
  if (getKvF16() && bits != 16)
    return emitOpError() << "kv_f16 needs kv_bits = 16, got " << bits;
  auto check = [&](Value v, int64_t width, StringRef name) -> LogicalResult {
    ArrayRef<int64_t> s = cast<RankedTensorType>(v.getType()).getShape();
    if (s.size() != 2 || s[1] != width)
      return emitOpError() << name << " must be [tokens, " << width
                           << "], got " << formatShape(s);
    return success();
  };
  if (failed(check(getQ(), nh * hd, "q")) ||
      failed(check(getK(), nkv * hd, "k")) ||
      failed(check(getV(), nkv * hd, "v")) ||
      failed(check(getKCache(), nkv * hd, "k_cache")) ||
      failed(check(getVCache(), nkv * hd, "v_cache")))
    return failure();
  for (Value c : {getKCache(), getVCache()})
    if (!cast<RankedTensorType>(c.getType()).hasStaticShape())
      return emitOpError() << "KV caches must have a static context length";
  if (getKCache().getType() != getVCache().getType())
    return emitOpError() << "k_cache and v_cache must have the same type";
  if (failed(verifyTokenDims(*this, getQ().getType().getShape(),
                             getK().getType().getShape(), "q and k")) ||
      failed(verifyTokenDims(*this, getK().getType().getShape(),
                             getV().getType().getShape(), "k and v")))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// LMHeadOp
//===----------------------------------------------------------------------===//

LogicalResult LMHeadOp::verify() {
  if (failed(verifyFloatParam(*this, getWeight(), 2, "weight")))
    return failure();
  ArrayRef<int64_t> w = getWeight().getType().getShape();
  ArrayRef<int64_t> in = getInput().getType().getShape();
  ArrayRef<int64_t> out = getResult().getType().getShape();
  if (in.empty() || in.back() != w[1])
    return emitOpError() << "input " << formatShape(in) << " does not end in "
                         << "the weight's hidden size " << w[1];
  if (out.empty() || out.back() != w[0])
    return emitOpError() << "result " << formatShape(out)
                         << " does not end in the vocabulary size " << w[0];
  return verifyTokenDims(*this, in, out, "input and result");
}
