// RUN: lowbitc %s --emit=graph | FileCheck %s --check-prefix=GRAPH
// RUN: lowbitc %s --emit=select | FileCheck %s --check-prefix=SELECT
// RUN: lowbitc %s --emit=select | lowbitc - --emit=select | FileCheck %s --check-prefix=SELECT
// RUN: lowbitc %s --emit=select --mlir-print-ir-after-all 2>&1 >/dev/null | FileCheck %s --check-prefix=AFTER

// Tests that --emit stops after the named phase and that .mlir input may
// start at any phase (select output fed back in is left as it is).
// GRAPH: bitnet.bitlinear
// SELECT-NOT: bitnet.bitlinear
// SELECT: lowbit.ternary_matmul
// AFTER: IR Dump After SelectActivationPathPass (lowbit-select-activation-path)
func.func @f(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}
