// RUN: lowbit-opt %s -split-input-file -verify-diagnostics

// Tests that a parameter needs a name.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{#lowbit.param needs a non-empty tensor name}}
  %0 = lowbit.weight(#lowbit.param<"" : tensor<8x8xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that a parameter's shape is static.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{#lowbit.param "w" must have a static shape, got ?x8}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<?x8xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that a parameter's dtype is one the safetensors reader stores.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{#lowbit.param "w" has element type 'i32'; stored dtypes are bf16, f16, f32, ui8, i8}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<8x8xi32>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that a ternary type has two dimensions.
// expected-error @+1 {{!lowbit.ternary takes 2 dimensions (rows x cols), got 3}}
func.func @f(%w: !lowbit.ternary<8x8x8, int8>)

// -----

// Tests that a ternary layout must be known.
// expected-error @+1 {{unknown ternary layout 'rows3'; expected hf_packed, int8, tiles2, cols2 or lut3}}
func.func @f(%w: !lowbit.ternary<8x8, rows3>)

// -----

// Tests that ternary dimensions are positive.
// expected-error @+1 {{!lowbit.ternary dimensions must be positive, got 0x8}}
func.func @f(%w: !lowbit.ternary<0x8, int8>)

// -----

// Tests that the published packed layout needs rows divisible by 4.
// expected-error @+1 {{!lowbit.ternary with layout hf_packed needs rows divisible by 4, got 6}}
func.func @f(%w: !lowbit.ternary<6x8, hf_packed>)

// -----

// Tests that a quantized activation has a feature dimension.
// expected-error @+1 {{!lowbit.qact needs at least one dimension}}
func.func @f(%q: !lowbit.qact<, i8>)

// -----

// Tests that the feature dimension of a quantized activation is static.
// expected-error @+1 {{!lowbit.qact feature (last) dimension must be static and positive, got 4x?}}
func.func @f(%q: !lowbit.qact<4x?, i8>)

// -----

// Tests that a quantized activation holds integers.
// expected-error @+1 {{!lowbit.qact element type must be i4 or i8, got 'f32'}}
func.func @f(%q: !lowbit.qact<?x8, f32>)

// -----

// Tests that a quantized activation holds i4 or i8 only.
// expected-error @+1 {{!lowbit.qact element type must be i4 or i8, got 'i16'}}
func.func @f(%q: !lowbit.qact<?x8, i16>)

// -----

// Tests that a KV cache has three dimensions.
// expected-error @+1 {{!lowbit.kv_cache takes 3 dimensions (context x heads x head_dim), got 2}}
func.func @f(%c: !lowbit.kv_cache<64x16, 4>)

// -----

// Tests that KV cache dimensions are positive.
// expected-error @+1 {{!lowbit.kv_cache dimensions must be positive, got 64x0x16}}
func.func @f(%c: !lowbit.kv_cache<64x0x16, 4>)

// -----

// Tests that the KV cache bit width is one of 3, 4, 8, 16.
// expected-error @+1 {{!lowbit.kv_cache bits must be 3, 4, 8 or 16, got 5}}
func.func @f(%c: !lowbit.kv_cache<64x2x16, 5>)

// -----

// Tests that a weight source is a matrix.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{'lowbit.weight' op source "w" must be a 2-D tensor, got shape 64}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<64xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that float master weights have the result's shape.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{'lowbit.weight' op float source "w" is 8x4 but the result is 8x8}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<8x4xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that float master weights take no scale tensor.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{'lowbit.weight' op float master weights "w" take no 'scale' (their absmean is the scale)}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<8x8xbf16>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that a packed source holds a quarter of the rows.
func.func @f() -> !lowbit.ternary<8x8, hf_packed> {
  // expected-error @+1 {{'lowbit.weight' op packed source "w" is 8x8 (ui8 [N/4, K]) but the result is 8x8}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<8x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<8x8, hf_packed>
  return %0 : !lowbit.ternary<8x8, hf_packed>
}

// -----

// Tests that unpacked i8 codes have the result's shape.
func.func @f() -> !lowbit.ternary<8x8, int8> {
  // expected-error @+1 {{'lowbit.weight' op i8 code source "w" is 4x8 but the result is 8x8}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<4x8xi8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) : !lowbit.ternary<8x8, int8>
  return %0 : !lowbit.ternary<8x8, int8>
}

// -----

// Tests that packed sources need their scale tensor.
func.func @f() -> !lowbit.ternary<8x8, hf_packed> {
  // expected-error @+1 {{'lowbit.weight' op packed source "w" needs a 'scale' tensor}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<2x8xui8>>) : !lowbit.ternary<8x8, hf_packed>
  return %0 : !lowbit.ternary<8x8, hf_packed>
}

// -----

// Tests that the scale tensor is one float.
func.func @f() -> !lowbit.ternary<8x8, hf_packed> {
  // expected-error @+1 {{'lowbit.weight' op scale "s" must be one float element, got 'tensor<2xbf16>'}}
  %0 = lowbit.weight(#lowbit.param<"w" : tensor<2x8xui8>>) scale(#lowbit.param<"s" : tensor<2xbf16>>) : !lowbit.ternary<8x8, hf_packed>
  return %0 : !lowbit.ternary<8x8, hf_packed>
}

// -----

// Tests that quantize keeps the feature count.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op input features (?x8) do not match the result's 16}}
  %0 = lowbit.quantize %x absmax : tensor<?x8xf32> -> !lowbit.qact<?x16, i8>
  return
}

// -----

// Tests that quantize keeps the token dimensions.
func.func @f(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op input and result must have the same token dimensions, got 4x8 and 5x8}}
  %0 = lowbit.quantize %x absmax : tensor<4x8xf32> -> !lowbit.qact<5x8, i8>
  return
}

// -----

// Tests that quantize keeps the rank.
func.func @f(%x: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op input and result must have the same rank, got 3 and 2}}
  %0 = lowbit.quantize %x absmax : tensor<2x4x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that absmean is the INT4 quantizer only.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op absmean quantization is defined for i4 results only, got i8}}
  %0 = lowbit.quantize %x absmean : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that an unknown quantization method is rejected.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown quantization method 'absmin'; expected absmax or absmean}}
  %0 = lowbit.quantize %x absmin : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that topk_mask needs a static row length.
func.func @f(%x: tensor<?x?xf32>) {
  // expected-error @+1 {{'lowbit.topk_mask' op input needs a static last dimension, got ?x?}}
  %0 = lowbit.topk_mask %x k = 4 : tensor<?x?xf32>
  return
}

// -----

// Tests that topk_mask keeps between 1 and all entries.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.topk_mask' op k = 9 must be in [1, 8]}}
  %0 = lowbit.topk_mask %x k = 9 : tensor<?x8xf32>
  return
}

// -----

// Tests that the matmul's input features match the weight columns.
func.func @f(%q: !lowbit.qact<?x8, i8>, %w: !lowbit.ternary<16x12, tiles2>) {
  // expected-error @+1 {{'lowbit.ternary_matmul' op input has 8 features but the weight has 12 columns}}
  %0 = lowbit.ternary_matmul %q, %w : !lowbit.qact<?x8, i8>, !lowbit.ternary<16x12, tiles2> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the matmul's result ends in the weight rows.
func.func @f(%q: !lowbit.qact<?x8, i8>, %w: !lowbit.ternary<16x8, tiles2>) {
  // expected-error @+1 {{'lowbit.ternary_matmul' op result (?x15) must end in the weight's 16 rows}}
  %0 = lowbit.ternary_matmul %q, %w : !lowbit.qact<?x8, i8>, !lowbit.ternary<16x8, tiles2> -> tensor<?x15xf32>
  return
}

// -----

// Tests that the matmul keeps the token dimensions.
func.func @f(%q: !lowbit.qact<3x8, i8>, %w: !lowbit.ternary<16x8, tiles2>) {
  // expected-error @+1 {{'lowbit.ternary_matmul' op input and result must have the same token dimensions, got 3x8 and 2x16}}
  %0 = lowbit.ternary_matmul %q, %w : !lowbit.qact<3x8, i8>, !lowbit.ternary<16x8, tiles2> -> tensor<2x16xf32>
  return
}

// -----

// Tests that zero-skipping needs a column-major weight.
func.func @f(%q: !lowbit.qact<?x8, i8>, %w: !lowbit.ternary<16x8, tiles2>) {
  // expected-error @+1 {{'lowbit.ternary_matmul_sparse' op zero-skipping needs a column-major (cols2) weight, got tiles2}}
  %0 = lowbit.ternary_matmul_sparse %q, %w : !lowbit.qact<?x8, i8>, !lowbit.ternary<16x8, tiles2> -> tensor<?x16xf32>
  return
}

// -----

// Tests that zero-skipping takes i8 activations.
func.func @f(%q: !lowbit.qact<?x8, i4>, %w: !lowbit.ternary<16x8, cols2>) {
  // expected-error @+1 {{'lowbit.ternary_matmul_sparse' op zero-skipping is implemented for i8 activations, got i4}}
  %0 = lowbit.ternary_matmul_sparse %q, %w : !lowbit.qact<?x8, i4>, !lowbit.ternary<16x8, cols2> -> tensor<?x16xf32>
  return
}

// -----

// Tests that kv_store rows are heads x head_dim wide.
func.func @f(%k: tensor<?x16xf32>, %c: !lowbit.kv_cache<64x2x16, 4>, %p: index) {
  // expected-error @+1 {{'lowbit.kv_store' op input must be [tokens, 32] (heads x head_dim of the cache), got ?x16}}
  %0 = lowbit.kv_store %k into %c[%p] : tensor<?x16xf32> into !lowbit.kv_cache<64x2x16, 4>
  return
}

// -----

// Tests that kv_load rows are heads x head_dim wide.
func.func @f(%c: !lowbit.kv_cache<64x2x16, 4>, %n: index) {
  // expected-error @+1 {{'lowbit.kv_load' op result must be [tokens, 32] (heads x head_dim of the cache), got ?x2x16}}
  %0 = lowbit.kv_load %c[%n] : !lowbit.kv_cache<64x2x16, 4> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that a fused norm weight matches the features.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op norm weight "n" must be a float vector of 8 elements, got 'tensor<4xbf16>'}}
  %0 = lowbit.quantize %x absmax norm(#lowbit.param<"n" : tensor<4xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that a fused norm needs eps.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op a fused norm needs a positive 'eps'}}
  %0 = lowbit.quantize %x absmax norm(#lowbit.param<"n" : tensor<8xbf16>>) : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that eps without a norm is rejected.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.quantize' op 'eps' is only meaningful with a fused norm}}
  %0 = lowbit.quantize %x absmax {eps = 1.0e-05 : f32} : tensor<?x8xf32> -> !lowbit.qact<?x8, i8>
  return
}

// -----

// Tests that a gate has the matmul result's shape.
func.func @f(%q: !lowbit.qact<?x8, i8>, %w: !lowbit.ternary<16x8, tiles2>, %g: tensor<?x8xf32>) {
  // expected-error @+1 {{'lowbit.ternary_matmul' op gate 'tensor<?x8xf32>' must have the result's type 'tensor<?x16xf32>'}}
  %0 = lowbit.ternary_matmul %q, %w gated by %g : tensor<?x8xf32> : !lowbit.qact<?x8, i8>, !lowbit.ternary<16x8, tiles2> -> tensor<?x16xf32>
  return
}
