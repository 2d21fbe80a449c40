// RUN: lowbit-opt %s -split-input-file -lowbit-select-activation-path | FileCheck %s
// RUN: lowbit-opt %s -split-input-file -lowbit-select-pipeline | FileCheck %s

// Tests that an INT8 layer with master weights takes the dense int8 path.
// CHECK-LABEL: func @int8_master
// CHECK: %[[W:.*]] = lowbit.weight(#lowbit.param<"w" : tensor<16x8xbf16>>) : !lowbit.ternary<16x8, int8>
// CHECK: %[[Q:.*]] = lowbit.quantize %arg0 absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
// CHECK: %[[Y:.*]] = lowbit.ternary_matmul %[[Q]], %[[W]] {path = #lowbit.path<int8_dense>}
// CHECK-SAME: -> tensor<?x16xf32>
// CHECK: return %[[Y]]
// CHECK-NOT: bitnet.bitlinear
func.func @int8_master(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Tests that a packed weight keeps its published layout and its scale, and
// that INT4 absmean inputs take the int4 path.
// CHECK-LABEL: func @int4_packed
// CHECK: lowbit.weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<16x8, hf_packed>
// CHECK: lowbit.quantize %arg0 absmean : tensor<?x8xf32> -> !lowbit.qact<?x8, i4>
// CHECK: lowbit.ternary_matmul {{.*}} {path = #lowbit.path<int4_dense>}
func.func @int4_packed(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) act int4_absmean : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Tests that a TopK layer masks before quantizing and takes the int8_topk path.
// CHECK-LABEL: func @topk
// CHECK: %[[M:.*]] = lowbit.topk_mask %arg0 k = 4 : tensor<?x8xf32>
// CHECK: %[[Q:.*]] = lowbit.quantize %[[M]] absmax
// CHECK: lowbit.ternary_matmul %[[Q]], {{.*}} {path = #lowbit.path<int8_topk>}
func.func @topk(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xf32>>) act int8_absmax {topk = 4 : i64} : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}
