// RUN: lowbit-opt %s -split-input-file -verify-diagnostics

// Tests that an embedding table holds floats.
func.func @f(%i: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.embedding' op table "e" must be bf16, f16 or f32, got 'ui8'}}
  %0 = bitnet.embedding %i table(#lowbit.param<"e" : tensor<16x8xui8>>) : tensor<?xi32> -> tensor<?x8xf32>
  return
}

// -----

// Tests that an embedding table is a matrix.
func.func @f(%i: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.embedding' op table "e" must be 2-D, got shape 128}}
  %0 = bitnet.embedding %i table(#lowbit.param<"e" : tensor<128xbf16>>) : tensor<?xi32> -> tensor<?x8xf32>
  return
}

// -----

// Tests that embedding ids are 1-D.
func.func @f(%i: tensor<2x3xi32>) {
  // expected-error @+1 {{'bitnet.embedding' op ids must be 1-D, got 2x3}}
  %0 = bitnet.embedding %i table(#lowbit.param<"e" : tensor<16x8xbf16>>) : tensor<2x3xi32> -> tensor<?x8xf32>
  return
}

// -----

// Tests that an embedding result has the table's hidden size.
func.func @f(%i: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.embedding' op result must be [tokens, 8] (the table's hidden size), got ?x9}}
  %0 = bitnet.embedding %i table(#lowbit.param<"e" : tensor<16x8xbf16>>) : tensor<?xi32> -> tensor<?x9xf32>
  return
}

// -----

// Tests that an embedding result has one row per id.
func.func @f(%i: tensor<3xi32>) {
  // expected-error @+1 {{'bitnet.embedding' op result has 4 rows for 3 ids}}
  %0 = bitnet.embedding %i table(#lowbit.param<"e" : tensor<16x8xbf16>>) : tensor<3xi32> -> tensor<4x8xf32>
  return
}

// -----

// Tests that the norm weight matches the feature count.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.rms_norm' op weight "n" has 7 elements but the input is ?x8}}
  %0 = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<7xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32>
  return
}

// -----

// Tests that the norm weight is a vector.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.rms_norm' op weight "n" must be 1-D, got shape 1x8}}
  %0 = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<1x8xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x8xf32>
  return
}

// -----

// Tests that eps is positive.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.rms_norm' op eps must be positive, got 0}}
  %0 = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 0.0 : f32} : tensor<?x8xf32>
  return
}

// -----

// Tests that a BitLinear weight is a matrix.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op weight "w" must be 2-D, got 128}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<128xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that a packed weight needs its scale.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op packed weight "w" needs a 'scale' (weight_scale) tensor}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<4x8xui8>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that a packed weight's scale is one float.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op weight_scale "s" must be one float element, got 'tensor<1xui8>'}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<4x8xui8>>) scale(#lowbit.param<"s" : tensor<1xui8>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that float master weights take no scale.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op float master weight "w" takes no 'scale' (its absmean is the scale)}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the weight_scale of i8 ternary codes is one float.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op weight_scale "s" must be one float element, got 'tensor<2xf32>'}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xi8>>) scale(#lowbit.param<"s" : tensor<2xf32>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the input features match the weight.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op input ?x8 does not end in 9 features of weight "w"}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x9xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the result features match the weight.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op result ?x16 does not end in 12 output features of weight "w"}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<3x8xui8>>) scale(#lowbit.param<"s" : tensor<1xbf16>>) act int8_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that BitLinear keeps the token dimensions.
func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op input and result must have the same token dimensions, got 2x8 and 3x16}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int8_absmax : tensor<2x8xf32> -> tensor<3x16xf32>
  return
}

// -----

// Tests that topk goes with INT8 inputs only.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op topk is only defined with int8_absmax activations}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int4_absmean {topk = 4 : i64} : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that topk is within the feature count.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.bitlinear' op topk = 0 must be in [1, 8]}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int8_absmax {topk = 0 : i64} : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that an unknown activation quantizer is rejected.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{unknown activation quantizer 'int2_absmax'; expected int8_absmax or int4_absmean}}
  %0 = bitnet.bitlinear %x weight(#lowbit.param<"w" : tensor<16x8xbf16>>) act int2_absmax : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the RoPE head dimension is even.
func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.rope' op head_dim must be positive and even, got 3}}
  %0 = bitnet.rope %x, %p {head_dim = 3 : i64, theta = 1.0e+04 : f32} : tensor<?x8xf32>, tensor<?xi32>
  return
}

// -----

// Tests that RoPE input is whole heads.
func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.rope' op input must be [tokens, heads * 16], got ?x8}}
  %0 = bitnet.rope %x, %p {head_dim = 16 : i64, theta = 1.0e+04 : f32} : tensor<?x8xf32>, tensor<?xi32>
  return
}

// -----

// Tests that RoPE positions are 1-D.
func.func @f(%x: tensor<?x8xf32>, %p: tensor<2x2xi32>) {
  // expected-error @+1 {{'bitnet.rope' op positions must be 1-D, got 2x2}}
  %0 = bitnet.rope %x, %p {head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<?x8xf32>, tensor<2x2xi32>
  return
}

// -----

// Tests that there is one position per token.
func.func @f(%x: tensor<2x8xf32>, %p: tensor<3xi32>) {
  // expected-error @+1 {{'bitnet.rope' op 3 positions for 2 tokens}}
  %0 = bitnet.rope %x, %p {head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<2x8xf32>, tensor<3xi32>
  return
}

// -----

// Tests that theta is positive.
func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{'bitnet.rope' op theta must be positive, got -1}}
  %0 = bitnet.rope %x, %p {head_dim = 4 : i64, theta = -1.0 : f32} : tensor<?x8xf32>, tensor<?xi32>
  return
}

// -----

// Tests that attention sizes are positive.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op num_heads, num_kv_heads and head_dim must be positive, got 4, 0, 4}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 0 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that query heads are a multiple of KV heads.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op num_heads (4) must be a multiple of num_kv_heads (3)}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 3 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that the KV cache bit width is supported.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op kv_bits must be 3, 4, 8 or 16, got 2}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 2 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that a half-precision cache is a 16-bit one.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op kv_f16 needs kv_bits = 16, got 8}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 8 : i64, kv_f16} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that q is num_heads x head_dim wide.
func.func @f(%q: tensor<?x12xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op q must be [tokens, 16], got ?x12}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x12xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that k is num_kv_heads x head_dim wide.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x4xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op k must be [tokens, 8], got ?x4}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x4xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that v is num_kv_heads x head_dim wide.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x4xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op v must be [tokens, 8], got ?x4}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x4xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that the K cache is num_kv_heads x head_dim wide.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x4xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op k_cache must be [tokens, 8], got 32x4}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x4xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that the V cache is num_kv_heads x head_dim wide.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x4xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op v_cache must be [tokens, 8], got 32x4}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x4xf32>
  return
}

// -----

// Tests that caches have a static context length.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<?x8xf32>, %vc: tensor<?x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op KV caches must have a static context length}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
  return
}

// -----

// Tests that both caches have one type.
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<16x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op k_cache and v_cache must have the same type}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<16x8xf32>
  return
}

// -----

// Tests that q and k have the same tokens.
func.func @f(%q: tensor<2x16xf32>, %k: tensor<3x8xf32>, %v: tensor<?x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op q and k must have the same token dimensions, got 2x16 and 3x8}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<2x16xf32>, tensor<3x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that k and v have the same tokens.
func.func @f(%q: tensor<2x16xf32>, %k: tensor<2x8xf32>, %v: tensor<3x8xf32>, %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) {
  // expected-error @+1 {{'bitnet.attention' op k and v must have the same token dimensions, got 2x8 and 3x8}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64} : tensor<2x16xf32>, tensor<2x8xf32>, tensor<3x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return
}

// -----

// Tests that the lm_head input has the weight's hidden size.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.lm_head' op input ?x8 does not end in the weight's hidden size 4}}
  %0 = bitnet.lm_head %x weight(#lowbit.param<"e" : tensor<16x4xbf16>>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that the lm_head result is vocabulary wide.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.lm_head' op result ?x15 does not end in the vocabulary size 16}}
  %0 = bitnet.lm_head %x weight(#lowbit.param<"e" : tensor<16x8xbf16>>) : tensor<?x8xf32> -> tensor<?x15xf32>
  return
}

// -----

// Tests that the lm_head weight is a float matrix.
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'bitnet.lm_head' op weight "e" must be bf16, f16 or f32, got 'i8'}}
  %0 = bitnet.lm_head %x weight(#lowbit.param<"e" : tensor<16x8xi8>>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}
