//===- Passes.td - lowbit passes ---------------------------*- tablegen -*-===//
//
// Grouped by pipeline phase (design.md), alphabetical within a group.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_TRANSFORMS_PASSES_TD
#define LOWBIT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// select: bitnet -> lowbit
//===----------------------------------------------------------------------===//

def SelectActivationPathPass
    : Pass<"lowbit-select-activation-path", "::mlir::ModuleOp"> {
  let summary = "lowers each bitnet.bitlinear to lowbit ops on a chosen "
                "activation path";
  let description = [{
    Replaces every `bitnet.bitlinear` by `lowbit.weight` (the ternary matrix,
    in the layout its checkpoint stores), an optional `lowbit.topk_mask`, a
    `lowbit.quantize` and a `lowbit.ternary_matmul` whose `path` attribute
    records the choice: `int4_dense` for INT4 absmean inputs, `int8_topk` for
    INT8 inputs with a TopK mask, `int8_dense` otherwise.

    Before:
    ```mlir
    %y = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<8x16xbf16>>)
           act int8_absmax : tensor<?x16xf32> -> tensor<?x8xf32>
    ```
    After:
    ```mlir
    %w = lowbit.weight(#lowbit.param<"w" : tensor<8x16xbf16>>) : !lowbit.ternary<8x16, int8>
    %q = lowbit.quantize %x absmax : tensor<?x16xf32> -> !lowbit.qact<?x16, i8>
    %y = lowbit.ternary_matmul %q, %w {path = #lowbit.path<int8_dense>} : ...
    ```
  }];
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
}

#endif // LOWBIT_TRANSFORMS_PASSES_TD
