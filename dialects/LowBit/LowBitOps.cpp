//===- LowBitOps.cpp - lowbit operations ----------------------------------===//

#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::lowbit;

/// custom<QuantMethod>: the method as a bare keyword (`absmax`).
static ParseResult parseQuantMethod(OpAsmParser &parser, QuantMethodAttr &attr) {
  std::string name;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeywordOrString(&name))
    return failure();
  std::optional<QuantMethod> m = symbolizeQuantMethod(name);
  if (!m)
    return parser.emitError(loc)
           << "unknown quantization method '" << name
           << "'; expected absmax or absmean";
  attr = QuantMethodAttr::get(parser.getContext(), *m);
  return success();
}

static void printQuantMethod(OpAsmPrinter &printer, Operation *,
                             QuantMethodAttr attr) {
  printer << stringifyQuantMethod(attr.getValue());
}

#define GET_OP_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitOps.cpp.inc"

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  ParamAttr src = getSource();
  ArrayRef<int64_t> s = src.getType().getShape();
  TernaryType ty = getResult().getType();
  Type elt = src.getType().getElementType();
  if (s.size() != 2)
    return emitOpError() << "source \"" << src.getName()
                         << "\" must be a 2-D tensor, got shape "
                         << formatShape(s);
  if (isStoredFloat(elt)) {
    if (s[0] != ty.getRows() || s[1] != ty.getCols())
      return emitOpError() << "float source \"" << src.getName() << "\" is "
                           << formatShape(s) << " but the result is "
                           << ty.getRows() << "x" << ty.getCols();
    if (getScale())
      return emitOpError() << "float master weights \"" << src.getName()
                           << "\" take no 'scale' (their absmean is the scale)";
    return success();
  }
  if (elt.isUnsignedInteger(8)) {
    if (s[0] * 4 != ty.getRows() || s[1] != ty.getCols())
      return emitOpError() << "packed source \"" << src.getName() << "\" is "
                           << formatShape(s) << " (ui8 [N/4, K]) but the result is "
                           << ty.getRows() << "x" << ty.getCols();
  } else if (s[0] != ty.getRows() || s[1] != ty.getCols()) {
    return emitOpError() << "i8 code source \"" << src.getName() << "\" is "
                         << formatShape(s) << " but the result is "
                         << ty.getRows() << "x" << ty.getCols();
  }
  // Packed ui8 needs its weight_scale; i8 codes carry their own scale,
  // which a scale tensor, if any, multiplies.
  std::optional<ParamAttr> scale = getScale();
  if (!scale && elt.isUnsignedInteger(8))
    return emitOpError() << "packed source \"" << src.getName()
                         << "\" needs a 'scale' tensor";
  if (!scale)
    return success();
  if (scale->getNumElements() != 1 ||
      !isStoredFloat(scale->getType().getElementType()))
    return emitOpError() << "scale \"" << scale->getName()
                         << "\" must be one float element, got "
                         << scale->getType();
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizeOp
//===----------------------------------------------------------------------===//

LogicalResult QuantizeOp::verify() {
  QActType resTy = getResult().getType();
  ArrayRef<int64_t> in = getInput().getType().getShape();
  if (in.empty() || in.back() != resTy.getFeatures())
    return emitOpError() << "input features (" << formatShape(in)
                         << ") do not match the result's "
                         << resTy.getFeatures();
  if (failed(verifyTokenDims(*this, in, resTy.getShape(), "input and result")))
    return failure();
  if (getMethod() == QuantMethod::absmean && resTy.getBits() != 4)
    return emitOpError() << "absmean quantization is defined for i4 results "
                            "only, got i"
                         << resTy.getBits();
  if (std::optional<ParamAttr> norm = getNorm()) {
    ArrayRef<int64_t> ns = norm->getType().getShape();
    if (ns.size() != 1 || ns[0] != resTy.getFeatures() ||
        !isStoredFloat(norm->getType().getElementType()))
      return emitOpError() << "norm weight \"" << norm->getName()
                           << "\" must be a float vector of "
                           << resTy.getFeatures() << " elements, got "
                           << norm->getType();
    if (!getEps() || !(getEps()->convertToFloat() > 0.0f))
      return emitOpError() << "a fused norm needs a positive 'eps'";
  } else if (getEps()) {
    return emitOpError() << "'eps' is only meaningful with a fused norm";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// TopKMaskOp
//===----------------------------------------------------------------------===//

LogicalResult TopKMaskOp::verify() {
  ArrayRef<int64_t> in = getInput().getType().getShape();
  if (in.empty() || ShapedType::isDynamic(in.back()))
    return emitOpError() << "input needs a static last dimension, got "
                         << formatShape(in);
  int64_t k = getK();
  if (k < 1 || k > in.back())
    return emitOpError() << "k = " << k << " must be in [1, " << in.back()
                         << "]";
  return success();
}

//===----------------------------------------------------------------------===//
// TernaryMatmulOp / TernaryMatmulSparseOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyTernaryMatmul(Operation *op, QActType in,
                                         TernaryType w, RankedTensorType res) {
  if (in.getFeatures() != w.getCols())
    return op->emitOpError()
           << "input has " << in.getFeatures()
           << " features but the weight has " << w.getCols() << " columns";
  ArrayRef<int64_t> r = res.getShape();
  if (r.empty() || r.back() != w.getRows())
    return op->emitOpError() << "result (" << formatShape(r)
                             << ") must end in the weight's " << w.getRows()
                             << " rows";
  return verifyTokenDims(op, in.getShape(), r, "input and result");
}

LogicalResult TernaryMatmulOp::verify() {
  if (Value g = getGate())
    if (g.getType() != getResult().getType())
      return emitOpError() << "gate " << g.getType()
                           << " must have the result's type "
                           << getResult().getType();
  return verifyTernaryMatmul(*this, getInput().getType(),
                             getWeight().getType(), getResult().getType());
}

LogicalResult TernaryMatmulSparseOp::verify() {
  if (getWeight().getType().getLayout() != TernaryLayout::cols2)
    return emitOpError() << "zero-skipping needs a column-major (cols2) "
                            "weight, got "
                         << stringifyTernaryLayout(
                                getWeight().getType().getLayout());
  if (getInput().getType().getBits() != 8)
    return emitOpError() << "zero-skipping is implemented for i8 "
                            "activations, got i"
                         << getInput().getType().getBits();
  return verifyTernaryMatmul(*this, getInput().getType(),
                             getWeight().getType(), getResult().getType());
}

//===----------------------------------------------------------------------===//
// KVStoreOp / KVLoadOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyKVRows(Operation *op, RankedTensorType rows,
                                  KVCacheType cache, StringRef what) {
  int64_t width = cache.getHeads() * cache.getHeadDim();
  if (rows.getRank() != 2 || rows.getShape().back() != width)
    return op->emitOpError()
           << what << " must be [tokens, " << width
           << "] (heads x head_dim of the cache), got "
           << formatShape(rows.getShape());
  return success();
}

LogicalResult KVStoreOp::verify() {
  return verifyKVRows(*this, getInput().getType(), getCache().getType(),
                      "input");
}

LogicalResult KVLoadOp::verify() {
  return verifyKVRows(*this, getResult().getType(), getCache().getType(),
                      "result");
}
