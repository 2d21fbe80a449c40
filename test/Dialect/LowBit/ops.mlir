// RUN: lowbit-opt %s | FileCheck %s
// RUN: lowbit-opt %s | lowbit-opt | FileCheck %s
// RUN: lowbit-opt %s --mlir-print-op-generic | lowbit-opt | FileCheck %s

// CHECK-LABEL: func @weights
func.func @weights() -> (!lowbit.ternary<64x32, hf_packed>, !lowbit.ternary<8x32, int8>,
                         !lowbit.ternary<8x32, tiles2>) {
  // CHECK: lowbit.weight(#lowbit.param<"l0.q.weight" : tensor<16x32xui8>>) scale(#lowbit.param<"l0.q.weight_scale" : tensor<1xbf16>>) : !lowbit.ternary<64x32, hf_packed>
  %0 = lowbit.weight(#lowbit.param<"l0.q.weight" : tensor<16x32xui8>>)
         scale(#lowbit.param<"l0.q.weight_scale" : tensor<1xbf16>>) : !lowbit.ternary<64x32, hf_packed>
  // CHECK: lowbit.weight(#lowbit.param<"l0.k.weight" : tensor<8x32xbf16>>) : !lowbit.ternary<8x32, int8>
  %1 = lowbit.weight(#lowbit.param<"l0.k.weight" : tensor<8x32xbf16>>) : !lowbit.ternary<8x32, int8>
  // CHECK: lowbit.weight(#lowbit.param<"codes" : tensor<8x32xi8>>) scale(#lowbit.param<"s" : tensor<f32>>) : !lowbit.ternary<8x32, tiles2>
  %2 = lowbit.weight(#lowbit.param<"codes" : tensor<8x32xi8>>) scale(#lowbit.param<"s" : tensor<f32>>) : !lowbit.ternary<8x32, tiles2>
  return %0, %1, %2 : !lowbit.ternary<64x32, hf_packed>, !lowbit.ternary<8x32, int8>, !lowbit.ternary<8x32, tiles2>
}

// CHECK-LABEL: func @matmuls
func.func @matmuls(%x: tensor<?x32xf32>, %w: !lowbit.ternary<64x32, tiles2>,
                   %ws: !lowbit.ternary<64x32, cols2>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  // CHECK: lowbit.topk_mask %{{.*}} k = 16 : tensor<?x32xf32>
  %m = lowbit.topk_mask %x k = 16 : tensor<?x32xf32>
  // CHECK: lowbit.quantize %{{.*}} absmax : tensor<?x32xf32> -> !lowbit.qact<?x32, i8>
  %q8 = lowbit.quantize %m absmax : tensor<?x32xf32> -> !lowbit.qact<?x32, i8>
  // CHECK: lowbit.quantize %{{.*}} absmax norm(#lowbit.param<"n" : tensor<32xbf16>>) {eps = 9.99999974E-6 : f32} : tensor<?x32xf32> -> !lowbit.qact<?x32, i8>
  %qn = lowbit.quantize %x absmax norm(#lowbit.param<"n" : tensor<32xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x32xf32> -> !lowbit.qact<?x32, i8>
  // CHECK: lowbit.weight(#lowbit.param<"a" : tensor<64x32xbf16>>) {alpha = 6.250000e-02 : f32} : !lowbit.ternary<64x32, tiles2>
  %wa = lowbit.weight(#lowbit.param<"a" : tensor<64x32xbf16>>) {alpha = 0.0625 : f32} : !lowbit.ternary<64x32, tiles2>
  // CHECK: lowbit.quantize %{{.*}} absmean : tensor<?x32xf32> -> !lowbit.qact<?x32, i4>
  %q4 = lowbit.quantize %x absmean : tensor<?x32xf32> -> !lowbit.qact<?x32, i4>
  // CHECK: lowbit.ternary_matmul %{{.*}}, %{{.*}} {path = #lowbit.path<int8_topk>} : !lowbit.qact<?x32, i8>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  %y0 = lowbit.ternary_matmul %q8, %w {path = #lowbit.path<int8_topk>} : !lowbit.qact<?x32, i8>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  // CHECK: lowbit.ternary_matmul %{{.*}}, %{{.*}} gated by %{{.*}} : tensor<?x64xf32> : !lowbit.qact<?x32, i4>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  %yg = lowbit.ternary_matmul %q4, %w gated by %y0 : tensor<?x64xf32> : !lowbit.qact<?x32, i4>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  // CHECK: lowbit.ternary_matmul %{{.*}}, %{{.*}} : !lowbit.qact<?x32, i4>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  %y1 = lowbit.ternary_matmul %q4, %w : !lowbit.qact<?x32, i4>, !lowbit.ternary<64x32, tiles2> -> tensor<?x64xf32>
  // CHECK: lowbit.ternary_matmul_sparse %{{.*}}, %{{.*}} {path = #lowbit.path<int8_sparse>} : !lowbit.qact<?x32, i8>, !lowbit.ternary<64x32, cols2> -> tensor<?x64xf32>
  %y2 = lowbit.ternary_matmul_sparse %q8, %ws {path = #lowbit.path<int8_sparse>} : !lowbit.qact<?x32, i8>, !lowbit.ternary<64x32, cols2> -> tensor<?x64xf32>
  return %y0, %y1, %y2 : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func @kv
func.func @kv(%k: tensor<?x32xf32>, %c: !lowbit.kv_cache<64x2x16, 3>, %pos: index, %len: index)
    -> (tensor<?x32xf32>, !lowbit.kv_cache<64x2x16, 3>, !lowbit.ternary<10x10, lut3>) {
  // CHECK: lowbit.kv_store %{{.*}} into %{{.*}}[%{{.*}}] : tensor<?x32xf32> into !lowbit.kv_cache<64x2x16, 3>
  %c1 = lowbit.kv_store %k into %c[%pos] : tensor<?x32xf32> into !lowbit.kv_cache<64x2x16, 3>
  // CHECK: lowbit.kv_load %{{.*}}[%{{.*}}] : !lowbit.kv_cache<64x2x16, 3> -> tensor<?x32xf32>
  %r = lowbit.kv_load %c1[%len] : !lowbit.kv_cache<64x2x16, 3> -> tensor<?x32xf32>
  %w = lowbit.weight(#lowbit.param<"w" : tensor<10x10xf16>>) : !lowbit.ternary<10x10, lut3>
  return %r, %c1, %w : tensor<?x32xf32>, !lowbit.kv_cache<64x2x16, 3>, !lowbit.ternary<10x10, lut3>
}
