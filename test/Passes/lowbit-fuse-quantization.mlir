// RUN: lowbit-opt %s -split-input-file -lowbit-fuse-quantization | FileCheck %s

// Tests that a norm read only by quantizers becomes their `norm`, and that
// the identical quantizers it leaves (q/k/v) are merged into one.
// CHECK-LABEL: func @qkv
// CHECK-NOT: bitnet.rms_norm
// CHECK: %[[Q:.*]] = lowbit.quantize %arg0 absmax norm(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 9.99999974E-6 : f32} : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
// CHECK-NOT: lowbit.quantize
// CHECK: lowbit.ternary_matmul %[[Q]], %arg1
// CHECK: lowbit.ternary_matmul %[[Q]], %arg2
func.func @qkv(%x: tensor<?x8xf32>, %w0: !lowbit.ternary<16x8, tiles2>, %w1: !lowbit.ternary<4x8, tiles2>)
    -> (tensor<?x16xf32>, tensor<?x4xf32>) {
  %n = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32>
  %q0 = lowbit.quantize %n absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  %q1 = lowbit.quantize %n absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  %y0 = lowbit.ternary_matmul %q0, %w0 : !lowbit.qact<?x8, i8>, !lowbit.ternary<16x8, tiles2> -> tensor<?x16xf32>
  %y1 = lowbit.ternary_matmul %q1, %w1 : !lowbit.qact<?x8, i8>, !lowbit.ternary<4x8, tiles2> -> tensor<?x4xf32>
  return %y0, %y1 : tensor<?x16xf32>, tensor<?x4xf32>
}

// -----

// Tests that a norm with another user (the final norm before lm_head) stays.
// CHECK-LABEL: func @shared
// CHECK: %[[N:.*]] = bitnet.rms_norm
// CHECK: lowbit.quantize %[[N]] absmax :
// CHECK: bitnet.lm_head %[[N]]
func.func @shared(%x: tensor<?x8xf32>) -> (!lowbit.qact<?x8, i8>, tensor<?x16xf32>) {
  %n = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32>
  %q = lowbit.quantize %n absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  %l = bitnet.lm_head %n weight(#lowbit.param<"e" : tensor<16x8xbf16>>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %q, %l : !lowbit.qact<?x8, i8>, tensor<?x16xf32>
}

// -----

// Tests that quantizers of different methods are not merged.
// CHECK-LABEL: func @methods
// CHECK: lowbit.quantize %arg0 absmax norm
// CHECK: lowbit.quantize %arg0 absmean norm
func.func @methods(%x: tensor<?x8xf32>) -> (!lowbit.qact<?x8, i8>, !lowbit.qact<?x8, i4>) {
  %n = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32>
  %a = lowbit.quantize %n absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  %b = lowbit.quantize %n absmean : tensor<?x8xf32> -> !lowbit.qact<?x8, i4>
  return %a, %b : !lowbit.qact<?x8, i8>, !lowbit.qact<?x8, i4>
}
