//===- LowBit.td - lowbit dialect, all definitions ---------*- tablegen -*-===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_TD
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_TD

include "lowbit/Dialect/LowBit/IR/LowBitOps.td"

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_TD
