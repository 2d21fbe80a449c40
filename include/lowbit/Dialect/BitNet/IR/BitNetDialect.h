//===- BitNetDialect.h - bitnet dialect ------------------------*- C++ -*-===//
//
// The `bitnet` dialect: a BitNet model as its authors describe it.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_DIALECT_BITNET_IR_BITNETDIALECT_H
#define LOWBIT_DIALECT_BITNET_IR_BITNETDIALECT_H

#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h"

#include "lowbit/Dialect/BitNet/IR/BitNetDialect.h.inc"
#include "lowbit/Dialect/BitNet/IR/BitNetEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "lowbit/Dialect/BitNet/IR/BitNetAttrs.h.inc"

#define GET_OP_CLASSES
#include "lowbit/Dialect/BitNet/IR/BitNetOps.h.inc"

#endif // LOWBIT_DIALECT_BITNET_IR_BITNETDIALECT_H
