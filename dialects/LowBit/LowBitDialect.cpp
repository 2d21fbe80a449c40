//===- LowBitDialect.cpp - lowbit dialect, attributes and types ----------===//

#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::lowbit;

#include "lowbit/Dialect/LowBit/IR/LowBitDialect.cpp.inc"
#include "lowbit/Dialect/LowBit/IR/LowBitEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitTypes.cpp.inc"

void LowBitDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "lowbit/Dialect/LowBit/IR/LowBitAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "lowbit/Dialect/LowBit/IR/LowBitTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "lowbit/Dialect/LowBit/IR/LowBitOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

std::string mlir::lowbit::formatShape(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << '?';
        else
          os << d;
      },
      "x");
  return s;
}

LogicalResult mlir::lowbit::verifyTokenDims(Operation *op, ArrayRef<int64_t> a,
                                            ArrayRef<int64_t> b,
                                            StringRef what) {
  if (a.size() != b.size())
    return op->emitOpError() << what << " must have the same rank, got "
                             << a.size() << " and " << b.size();
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (!ShapedType::isDynamic(a[i]) && !ShapedType::isDynamic(b[i]) &&
        a[i] != b[i])
      return op->emitOpError()
             << what << " must have the same token dimensions, got "
             << formatShape(a) << " and " << formatShape(b);
  return success();
}

ParseResult mlir::lowbit::parseParamRef(OpAsmParser &parser, ParamAttr &attr) {
  return parser.parseAttribute(attr);
}

void mlir::lowbit::printParamRef(OpAsmPrinter &printer, Operation *,
                                 ParamAttr attr) {
  printer.printAttribute(attr);
}

bool mlir::lowbit::isStoredFloat(Type t) {
  return t.isBF16() || t.isF16() || t.isF32();
}

//===----------------------------------------------------------------------===//
// ParamAttr
//===----------------------------------------------------------------------===//

LogicalResult ParamAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                StringRef name, RankedTensorType type) {
  if (name.empty())
    return emitError() << "#lowbit.param needs a non-empty tensor name";
  if (!type.hasStaticShape())
    return emitError() << "#lowbit.param \"" << name
                       << "\" must have a static shape, got "
                       << formatShape(type.getShape());
  Type elt = type.getElementType();
  bool ok = isStoredFloat(elt) || elt.isUnsignedInteger(8) ||
            elt.isSignlessInteger(8);
  if (!ok)
    return emitError() << "#lowbit.param \"" << name << "\" has element type "
                       << elt << "; stored dtypes are bf16, f16, f32, ui8, i8";
  return success();
}

//===----------------------------------------------------------------------===//
// TernaryType
//===----------------------------------------------------------------------===//

Type TernaryType::parse(AsmParser &parser) {
  SmallVector<int64_t, 2> dims;
  std::string layoutName;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseKeywordOrString(&layoutName) ||
      parser.parseGreater())
    return {};
  if (dims.size() != 2) {
    parser.emitError(loc) << "!lowbit.ternary takes 2 dimensions (rows x "
                             "cols), got "
                          << dims.size();
    return {};
  }
  std::optional<TernaryLayout> layout = symbolizeTernaryLayout(layoutName);
  if (!layout) {
    parser.emitError(loc) << "unknown ternary layout '" << layoutName
                          << "'; expected hf_packed, int8, tiles2, cols2 or "
                             "lut3";
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); },
                    parser.getContext(), dims[0], dims[1], *layout);
}

void TernaryType::print(AsmPrinter &printer) const {
  printer << '<' << getRows() << 'x' << getCols() << ", "
          << stringifyTernaryLayout(getLayout()) << '>';
}

LogicalResult
TernaryType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t rows,
                    int64_t cols, TernaryLayout layout) {
  if (rows <= 0 || cols <= 0)
    return emitError() << "!lowbit.ternary dimensions must be positive, got "
                       << rows << "x" << cols;
  if (layout == TernaryLayout::hf_packed && rows % 4 != 0)
    return emitError() << "!lowbit.ternary with layout hf_packed needs rows "
                          "divisible by 4, got "
                       << rows;
  return success();
}

int64_t TernaryType::getPackedBytes() const {
  int64_t n = getRows(), k = getCols();
  switch (getLayout()) {
  case TernaryLayout::hf_packed:
    return n / 4 * k;
  case TernaryLayout::int8:
    return n * k;
  case TernaryLayout::tiles2:
    return llvm::alignTo(n, 16) * llvm::alignTo(k, 256) / 4;
  case TernaryLayout::cols2:
    return k * llvm::divideCeil(n, 4);
  case TernaryLayout::lut3:
    return llvm::divideCeil(n, 32) * llvm::divideCeil(k, 24) * 160;
  }
  llvm_unreachable("unknown ternary layout");
}

//===----------------------------------------------------------------------===//
// QActType
//===----------------------------------------------------------------------===//

Type QActType::parse(AsmParser &parser) {
  SmallVector<int64_t, 2> dims;
  Type elt;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/true,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseType(elt) || parser.parseGreater())
    return {};
  auto intTy = dyn_cast<IntegerType>(elt);
  if (!intTy) {
    parser.emitError(loc) << "!lowbit.qact element type must be i4 or i8, got "
                          << elt;
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); },
                    parser.getContext(), dims, intTy);
}

void QActType::print(AsmPrinter &printer) const {
  printer << '<' << formatShape(getShape()) << ", " << getElementType()
          << '>';
}

LogicalResult QActType::verify(function_ref<InFlightDiagnostic()> emitError,
                               ArrayRef<int64_t> shape, IntegerType elt) {
  if (shape.empty())
    return emitError() << "!lowbit.qact needs at least one dimension";
  if (ShapedType::isDynamic(shape.back()) || shape.back() <= 0)
    return emitError() << "!lowbit.qact feature (last) dimension must be "
                          "static and positive, got "
                       << formatShape(shape);
  if (!elt.isSignless() || (elt.getWidth() != 4 && elt.getWidth() != 8))
    return emitError() << "!lowbit.qact element type must be i4 or i8, got "
                       << Type(elt);
  return success();
}

//===----------------------------------------------------------------------===//
// KVCacheType
//===----------------------------------------------------------------------===//

Type KVCacheType::parse(AsmParser &parser) {
  SmallVector<int64_t, 3> dims;
  unsigned bits = 0;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseInteger(bits) ||
      parser.parseGreater())
    return {};
  if (dims.size() != 3) {
    parser.emitError(loc) << "!lowbit.kv_cache takes 3 dimensions (context x "
                             "heads x head_dim), got "
                          << dims.size();
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); },
                    parser.getContext(), dims[0], dims[1], dims[2], bits);
}

void KVCacheType::print(AsmPrinter &printer) const {
  printer << '<' << getContextLength() << 'x' << getHeads() << 'x' << getHeadDim()
          << ", " << getBits() << '>';
}

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t contextLength, int64_t heads,
                                  int64_t headDim, unsigned bits) {
  if (contextLength <= 0 || heads <= 0 || headDim <= 0)
    return emitError() << "!lowbit.kv_cache dimensions must be positive, got "
                       << contextLength << "x" << heads << "x" << headDim;
  if (bits != 3 && bits != 4 && bits != 8 && bits != 16)
    return emitError() << "!lowbit.kv_cache bits must be 3, 4, 8 or 16, got "
                       << bits;
  return success();
}
