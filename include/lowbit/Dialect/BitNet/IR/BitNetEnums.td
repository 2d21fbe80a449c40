//===- BitNetEnums.td - bitnet enums -----------------------*- tablegen -*-===//
//
// Kept apart from BitNet.td so that -gen-enum-decls on this file emits only
// the bitnet enums, not the lowbit ones BitNet.td includes.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_DIALECT_BITNET_IR_BITNETENUMS_TD
#define LOWBIT_DIALECT_BITNET_IR_BITNETENUMS_TD

include "mlir/IR/EnumAttr.td"

def BitNet_ActQuant : I32EnumAttr<"ActQuant",
    "activation quantizer at a BitLinear input", [
      I32EnumAttrCase<"int8_absmax", 0>,
      I32EnumAttrCase<"int4_absmean", 1>
    ]> {
  let cppNamespace = "::mlir::bitnet";
  let genSpecializedAttr = 0;
}
#endif // LOWBIT_DIALECT_BITNET_IR_BITNETENUMS_TD
