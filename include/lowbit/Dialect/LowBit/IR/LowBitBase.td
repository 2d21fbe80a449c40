//===- LowBitBase.td - lowbit dialect definition -----------*- tablegen -*-===//
//
// The `lowbit` dialect: what the hardware does. Packed ternary weights,
// quantized activations, low-bit KV caches, and the kernels over them.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBITBASE_TD
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBITBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def LowBit_Dialect : Dialect {
  let name = "lowbit";
  let cppNamespace = "::mlir::lowbit";
  let summary = "Quantized tensors, packed ternary weights and their kernels";
  let description = [{
    The `lowbit` dialect models what the hardware computes for a BitNet model:
    ternary weights in a packed layout (`!lowbit.ternary`), activations
    quantized per token to 4 or 8 bits (`!lowbit.qact`), KV caches stored in
    3 to 16 bits (`!lowbit.kv_cache`), and the matmuls between them. Layout
    choices are parameters of the types, so a pass can change them without
    rewriting ops. Weights are referenced by name (`#lowbit.param`), never
    carried as dense literals.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
}

class LowBit_Op<string mnemonic, list<Trait> traits = []>
    : Op<LowBit_Dialect, mnemonic, traits>;

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBITBASE_TD
