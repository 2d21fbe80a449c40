//===- LowBitDialect.h - lowbit dialect ------------------------*- C++ -*-===//
//
// The `lowbit` dialect: packed ternary weights, quantized activations, KV
// caches and the kernels over them. Include this one header for all of it.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBITDIALECT_H
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBITDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h.inc"
#include "lowbit/Dialect/LowBit/IR/LowBitEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitTypes.h.inc"

#define GET_OP_CLASSES
#include "lowbit/Dialect/LowBit/IR/LowBitOps.h.inc"

namespace mlir::lowbit {

/// Verifies that two token-major shapes agree on every leading (token)
/// dimension, dynamic dimensions matching anything. `what` names the pair in
/// the error message. Shared by the bitnet and lowbit verifiers.
LogicalResult verifyTokenDims(Operation *op, ArrayRef<int64_t> a,
                              ArrayRef<int64_t> b, StringRef what);

/// Prints a shape as "2x?x64".
std::string formatShape(ArrayRef<int64_t> shape);

/// custom<ParamRef>: a `#lowbit.param<...>` printed in full, for op formats.
ParseResult parseParamRef(OpAsmParser &parser, ParamAttr &attr);
void printParamRef(OpAsmPrinter &printer, Operation *op, ParamAttr attr);

/// True when `t` is one of the stored floating dtypes (bf16, f16, f32).
bool isStoredFloat(Type t);

} // namespace mlir::lowbit

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBITDIALECT_H
