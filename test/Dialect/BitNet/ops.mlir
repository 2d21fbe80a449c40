// RUN: lowbit-opt %s | FileCheck %s
// RUN: lowbit-opt %s | lowbit-opt | FileCheck %s
// RUN: lowbit-opt %s --mlir-print-op-generic | lowbit-opt | FileCheck %s

// CHECK-LABEL: func @layer
func.func @layer(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %start: index,
                 %kc: tensor<128x32xf32>, %vc: tensor<128x32xf32>)
    -> (tensor<?x256xf32>, tensor<128x32xf32>, tensor<128x32xf32>) {
  // CHECK: bitnet.embedding %{{.*}} table(#lowbit.param<"model.embed_tokens.weight" : tensor<256x64xbf16>>) : tensor<?xi32> -> tensor<?x64xf32>
  %h = bitnet.embedding %ids table(#lowbit.param<"model.embed_tokens.weight" : tensor<256x64xbf16>>) : tensor<?xi32> -> tensor<?x64xf32>
  // CHECK: bitnet.rms_norm %{{.*}} weight(#lowbit.param<"n.weight" : tensor<64xbf16>>) {eps = 9.99999974E-6 : f32} : tensor<?x64xf32>
  %x = bitnet.rms_norm %h weight(#lowbit.param<"n.weight" : tensor<64xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x64xf32>
  // CHECK: bitnet.bitlinear %{{.*}} weight(#lowbit.param<"q.weight" : tensor<64x64xbf16>>) act int4_absmean : tensor<?x64xf32> -> tensor<?x64xf32>
  %q = bitnet.bitlinear %x weight(#lowbit.param<"q.weight" : tensor<64x64xbf16>>) act int4_absmean : tensor<?x64xf32> -> tensor<?x64xf32>
  // CHECK: bitnet.bitlinear %{{.*}} weight(#lowbit.param<"k.weight" : tensor<8x64xui8>>) scale(#lowbit.param<"k.weight_scale" : tensor<1xbf16>>) act int8_absmax : tensor<?x64xf32> -> tensor<?x32xf32>
  %k = bitnet.bitlinear %x weight(#lowbit.param<"k.weight" : tensor<8x64xui8>>) scale(#lowbit.param<"k.weight_scale" : tensor<1xbf16>>) act int8_absmax : tensor<?x64xf32> -> tensor<?x32xf32>
  %v = bitnet.bitlinear %x weight(#lowbit.param<"v.weight" : tensor<32x64xf32>>) act int8_absmax : tensor<?x64xf32> -> tensor<?x32xf32>
  // CHECK: bitnet.rope %{{.*}}, %{{.*}} {head_dim = 16 : i64, theta = 5.000000e+05 : f32} : tensor<?x64xf32>, tensor<?xi32>
  %qr = bitnet.rope %q, %pos {head_dim = 16 : i64, theta = 5.0e+05 : f32} : tensor<?x64xf32>, tensor<?xi32>
  %kr = bitnet.rope %k, %pos {head_dim = 16 : i64, theta = 5.0e+05 : f32} : tensor<?x32xf32>, tensor<?xi32>
  // CHECK: bitnet.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {head_dim = 16 : i64, kv_bits = 3 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<128x32xf32>, tensor<128x32xf32>
  %o, %kc1, %vc1 = bitnet.attention %qr, %kr, %v, %kc, %vc, %start {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, kv_bits = 3 : i64} : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<128x32xf32>, tensor<128x32xf32>
  // CHECK: bitnet.bitlinear %{{.*}} weight(#lowbit.param<"o.weight" : tensor<64x64xbf16>>) act int8_absmax {topk = 32 : i64} : tensor<?x64xf32> -> tensor<?x64xf32>
  %op = bitnet.bitlinear %o weight(#lowbit.param<"o.weight" : tensor<64x64xbf16>>) act int8_absmax {topk = 32 : i64} : tensor<?x64xf32> -> tensor<?x64xf32>
  %g = bitnet.bitlinear %x weight(#lowbit.param<"g.weight" : tensor<160x64xbf16>>) act int8_absmax : tensor<?x64xf32> -> tensor<?x160xf32>
  %u = bitnet.bitlinear %x weight(#lowbit.param<"u.weight" : tensor<160x64xbf16>>) act int8_absmax : tensor<?x64xf32> -> tensor<?x160xf32>
  // CHECK: bitnet.relu2_glu %{{.*}}, %{{.*}} : tensor<?x160xf32>
  %m = bitnet.relu2_glu %g, %u : tensor<?x160xf32>
  %d = bitnet.bitlinear %m weight(#lowbit.param<"d.weight" : tensor<64x160xbf16>>) act int8_absmax : tensor<?x160xf32> -> tensor<?x64xf32>
  %h1 = arith.addf %op, %d : tensor<?x64xf32>
  // CHECK: bitnet.lm_head %{{.*}} weight(#lowbit.param<"model.embed_tokens.weight" : tensor<256x64xbf16>>) : tensor<?x64xf32> -> tensor<?x256xf32>
  %l = bitnet.lm_head %h1 weight(#lowbit.param<"model.embed_tokens.weight" : tensor<256x64xbf16>>) : tensor<?x64xf32> -> tensor<?x256xf32>
  return %l, %kc1, %vc1 : tensor<?x256xf32>, tensor<128x32xf32>, tensor<128x32xf32>
}

// CHECK-LABEL: func @half_cache
func.func @half_cache(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>,
                      %kc: tensor<32x8xf32>, %vc: tensor<32x8xf32>, %s: index) -> tensor<?x16xf32> {
  // CHECK: bitnet.attention {{.*}} {head_dim = 4 : i64, kv_bits = 16 : i64, kv_f16, num_heads = 4 : i64, num_kv_heads = 2 : i64}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %s {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, kv_bits = 16 : i64, kv_f16} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<32x8xf32>, tensor<32x8xf32>
  return %o : tensor<?x16xf32>
}
