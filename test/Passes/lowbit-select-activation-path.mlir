// RUN: lowbit-opt %s -split-input-file -lowbit-select-activation-path | FileCheck %s
// RUN: lowbit-opt %s -split-input-file -lowbit-select-pipeline | FileCheck %s
// RUN: lowbit-opt %s -split-input-file -lowbit-select-activation-path="isa=avx512vnni stats-file=%S/Inputs/dense-stats.json" | FileCheck %s --check-prefix=DENSE
// RUN: lowbit-opt %s -split-input-file -lowbit-select-activation-path="isa=avx512vnni stats-file=%S/Inputs/sparse-stats.json" | FileCheck %s --check-prefix=SPARSE
// RUN: not lowbit-opt %s -split-input-file -lowbit-select-activation-path="stats-file=%t.missing.json" 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: {{.*}}missing.json: cannot read calibration statistics

// Tests that an INT8 layer with master weights takes the dense int8 path.
// CHECK-LABEL: func @int8_master
// CHECK: %[[W:.*]] = lowbit.weight(#lowbit.param<"w" : tensor<16x8xbf16>>) : !lowbit.ternary<16x8, int8>
// CHECK: %[[Q:.*]] = lowbit.quantize %arg0 absmax : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
// CHECK: %[[Y:.*]] = lowbit.ternary_matmul %[[Q]], %[[W]] {{{.*}}path = #lowbit.path<int8_dense>{{.*}}}
// CHECK-SAME: -> tensor<?x16xf32>
// CHECK: return %[[Y]]
// CHECK-NOT: bitnet.bitlinear
func.func @int8_master(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Tests that INT4 absmean inputs take the int4 path, over lut3 weights on
// AVX2 (lookup-table kernels), else a packed weight keeps its published
// layout; the scale stays either way.
// CHECK-LABEL: func @int4_packed
// CHECK: lowbit.weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<16x8, lut3>
// DENSE-LABEL: func @int4_packed
// DENSE: lowbit.weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<16x8, hf_packed>
// DENSE: lowbit.ternary_matmul {{.*}}path = #lowbit.path<int4_dense>
// CHECK: lowbit.quantize %arg0 absmean : tensor<?x8xf32> -> !lowbit.qact<?x8, i4>
// CHECK: lowbit.ternary_matmul {{.*}}path = #lowbit.path<int4_dense>
func.func @int4_packed(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) act int4_absmean : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Tests that a TopK layer masks before quantizing and takes the int8_topk path.
// CHECK-LABEL: func @topk
// CHECK: %[[M:.*]] = lowbit.topk_mask %arg0 k = 4 : tensor<?x8xf32>
// CHECK: %[[Q:.*]] = lowbit.quantize %[[M]] absmax
// CHECK: lowbit.ternary_matmul %[[Q]], {{.*}}path = #lowbit.path<int8_topk>
func.func @topk(%x: tensor<?x8xf32>) -> tensor<?x16xf32> {
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xf32>>) act int8_absmax {topk = 4 : i64} : tensor<?x8xf32> -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Tests that calibration statistics decide between the dense and the
// zero-skipping path: 10 % zeros keeps down_proj dense, 99 % makes it
// zero-skipping with a column-major weight; without statistics the ReLU^2-GLU
// default (35 % non-zero) makes it zero-skipping.
// CHECK-LABEL: func @calibrated
// CHECK: lowbit.ternary_matmul_sparse {{.*}} {lowbit.bytes = 14336 : i64, lowbit.density = 3.500000e-01 : f32, lowbit.macs = 57344 : i64, lowbit.why = "density 0.350 (ReLU^2-GLU default)
// DENSE-LABEL: func @calibrated
// DENSE: lowbit.weight({{.*}}"down.weight"{{.*}}) : !lowbit.ternary<64x2560, int8>
// DENSE: lowbit.ternary_matmul {{.*}}density 0.900 (calibration){{.*}}path = #lowbit.path<int8_dense>
// SPARSE-LABEL: func @calibrated
// SPARSE: lowbit.weight({{.*}}"down.weight"{{.*}}) : !lowbit.ternary<64x2560, cols2>
// SPARSE: lowbit.ternary_matmul_sparse {{.*}}lowbit.bytes = 409 : i64{{.*}}density 0.010 (calibration){{.*}}path = #lowbit.path<int8_sparse>
func.func @calibrated(%g: tensor<?x2560xf32>, %u: tensor<?x2560xf32>) -> tensor<?x64xf32> {
  %m = bitnet.relu2_glu %g, %u : tensor<?x2560xf32>
  %0 = bitnet.bitlinear %m weight(#lowbit.param<"down.weight" : tensor<64x2560xbf16>>) act int8_absmax : tensor<?x2560xf32> -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
