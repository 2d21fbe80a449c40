//===- BitNet.td - bitnet dialect: the model as published --*- tablegen -*-===//
//
// The `bitnet` dialect describes a BitNet b1.58 / a4.8 model the way its
// authors do: embedding, RMSNorm, BitLinear, RoPE, GQA attention over a KV
// cache, ReLU²-GLU and the lm_head. Importers produce it; the select phase
// lowers it to `lowbit`. All ops work on f32 tensors whose leading dimension
// is the (dynamic) number of tokens. Weights are `#lowbit.param` references.
//
//===----------------------------------------------------------------------===//

#ifndef LOWBIT_DIALECT_BITNET_IR_BITNET_TD
#define LOWBIT_DIALECT_BITNET_IR_BITNET_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "lowbit/Dialect/LowBit/IR/LowBitAttrs.td"
include "lowbit/Dialect/BitNet/IR/BitNetEnums.td"

def BitNet_Dialect : Dialect {
  let name = "bitnet";
  let cppNamespace = "::mlir::bitnet";
  let summary = "BitNet b1.58 / a4.8 model-level operations";
  let dependentDialects = ["::mlir::lowbit::LowBitDialect"];
  let useDefaultAttributePrinterParser = 1;
}

class BitNet_Op<string mnemonic, list<Trait> traits = []>
    : Op<BitNet_Dialect, mnemonic, traits>;

def BitNet_ActQuantAttr : EnumAttr<BitNet_Dialect, BitNet_ActQuant, "act">;

def F32Tokens : RankedTensorOf<[F32]>;

//===----------------------------------------------------------------------===//
// bitnet.embedding
//===----------------------------------------------------------------------===//

def BitNet_EmbeddingOp : BitNet_Op<"embedding", [Pure]> {
  let summary = "looks up token ids in the embedding table";
  let description = [{
    ```mlir
    %h = bitnet.embedding %ids table(#lowbit.param<"model.embed_tokens.weight"
           : tensor<256x64xbf16>>) : tensor<?xi32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$ids, LowBit_ParamAttr:$table);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$ids `table` `(` custom<ParamRef>($table) `)` attr-dict `:` type($ids) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// bitnet.rms_norm
//===----------------------------------------------------------------------===//

def BitNet_RMSNormOp : BitNet_Op<"rms_norm", [Pure, SameOperandsAndResultType]> {
  let summary = "RMSNorm over the last dimension: w * x * rsqrt(mean(x^2) + eps)";
  let description = [{
    Computed in fp32. Used for input_layernorm, post_attention_layernorm, the
    sub-norms (attn_sub_norm, ffn_sub_norm) and the final norm.

    ```mlir
    %y = bitnet.rms_norm %x weight(#lowbit.param<"model.norm.weight"
           : tensor<64xbf16>>) {eps = 1.0e-05 : f32} : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins F32Tokens:$input, LowBit_ParamAttr:$weight,
                       F32Attr:$eps);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$input `weight` `(` custom<ParamRef>($weight) `)` attr-dict `:` "
                       "type($input)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// bitnet.bitlinear
//===----------------------------------------------------------------------===//

def BitNet_BitLinearOp : BitNet_Op<"bitlinear", [Pure]> {
  let summary = "ternary-weight linear layer with per-token activation quantization";
  let description = [{
    `y = (quant(x) @ ternary(W)^T) * act_scale * weight_scale`.

    `weight` is either float master weights `[N, K]` (ternarized with
    per-tensor absmean) or the published packed layout `ui8 [N/4, K]`, in
    which case `weight_scale` names its one-element multiplier. `act` is the
    activation quantizer; `topk`, only with `int8_absmax`, keeps the `topk`
    largest magnitudes of each token before quantizing (a4.8 o_proj input).

    ```mlir
    %y = bitnet.bitlinear %x weight(#lowbit.param<"q.weight" : tensor<64x64xbf16>>)
           act int4_absmean : tensor<?x64xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins F32Tokens:$input, LowBit_ParamAttr:$weight,
                       OptionalAttr<LowBit_ParamAttr>:$weight_scale,
                       BitNet_ActQuantAttr:$act,
                       OptionalAttr<I64Attr>:$topk);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$input `weight` `(` custom<ParamRef>($weight) `)` "
                       "(`scale` `(` custom<ParamRef>($weight_scale)^ `)`)? "
                       "`act` custom<ActQuant>($act) attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// True when the weight is stored in the published packed layout.
    bool isPackedWeight();
    /// Output features N.
    int64_t getOutFeatures();
    /// Input features K.
    int64_t getInFeatures();
  }];
}

//===----------------------------------------------------------------------===//
// bitnet.rope
//===----------------------------------------------------------------------===//

def BitNet_RoPEOp : BitNet_Op<"rope",
    [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding, rotate-half layout";
  let description = [{
    Within each head of `head_dim` features, element i pairs with
    i + head_dim/2 and the pair is rotated by angle p * theta^(-2i/head_dim),
    p being the token's position.

    ```mlir
    %y = bitnet.rope %x, %pos {head_dim = 16 : i64, theta = 5.0e+05 : f32}
           : tensor<?x64xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins F32Tokens:$input, RankedTensorOf<[I32]>:$positions,
                       I64Attr:$head_dim, F32Attr:$theta);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` type($input) `,` "
                       "type($positions)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// bitnet.attention
//===----------------------------------------------------------------------===//

def BitNet_AttentionOp : BitNet_Op<"attention", [Pure,
    AllTypesMatch<["q", "result"]>, AllTypesMatch<["k_cache", "new_k_cache"]>,
    AllTypesMatch<["v_cache", "new_v_cache"]>]> {
  let summary = "causal grouped-query attention over a KV cache";
  let description = [{
    Appends the rows of `k` and `v` to the caches at positions
    `start`, `start + 1`, ... and computes, for each query token t and head j,
    softmax(q_j · K_{j/group}^T / sqrt(head_dim) + causal mask) · V_{j/group}
    over positions [0, start + t]. Caches are `[context, num_kv_heads *
    head_dim]`; `kv_bits` is the cache precision (16 = float32, or IEEE half
    with `kv_f16`; else 3, 4 or 8 bits with the BOS position kept at 8).
    Returns the attention output and the updated caches.

    ```mlir
    %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %start
        {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64,
         kv_bits = 16 : i64}
        : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>,
          tensor<128x32xf32>, tensor<128x32xf32>
    ```
  }];
  let arguments = (ins F32Tokens:$q, F32Tokens:$k, F32Tokens:$v,
                       F32Tokens:$k_cache, F32Tokens:$v_cache, Index:$start,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads,
                       I64Attr:$head_dim, I64Attr:$kv_bits, UnitAttr:$kv_f16);
  let results = (outs F32Tokens:$result, F32Tokens:$new_k_cache,
                      F32Tokens:$new_v_cache);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $k_cache `,` $v_cache `,` $start attr-dict `:`
    type($q) `,` type($k) `,` type($v) `,` type($k_cache) `,` type($v_cache)
  }];
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "::mlir::Value":$q, "::mlir::Value":$k, "::mlir::Value":$v,
                   "::mlir::Value":$kCache, "::mlir::Value":$vCache,
                   "::mlir::Value":$start, "int64_t":$numHeads,
                   "int64_t":$numKVHeads, "int64_t":$headDim,
                   "int64_t":$kvBits, CArg<"bool", "false">:$kvF16)>
  ];
}

//===----------------------------------------------------------------------===//
// bitnet.relu2_glu
//===----------------------------------------------------------------------===//

def BitNet_ReLU2GLUOp : BitNet_Op<"relu2_glu",
    [Pure, SameOperandsAndResultType]> {
  let summary = "ReLU²-GLU: relu(gate)^2 * up";
  let description = [{
    ```mlir
    %m = bitnet.relu2_glu %gate, %up : tensor<?x160xf32>
    ```
  }];
  let arguments = (ins F32Tokens:$gate, F32Tokens:$up);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// bitnet.lm_head
//===----------------------------------------------------------------------===//

def BitNet_LMHeadOp : BitNet_Op<"lm_head", [Pure]> {
  let summary = "full-precision output projection to vocabulary logits";
  let description = [{
    `logits = x @ W^T` with W `[vocab, hidden]`; with tied embeddings W is
    the embedding table.

    ```mlir
    %l = bitnet.lm_head %x weight(#lowbit.param<"model.embed_tokens.weight"
           : tensor<256x64xbf16>>) : tensor<?x64xf32> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins F32Tokens:$input, LowBit_ParamAttr:$weight);
  let results = (outs F32Tokens:$result);
  let assemblyFormat = "$input `weight` `(` custom<ParamRef>($weight) `)` attr-dict `:` "
                       "type($input) `->` type($result)";
  let hasVerifier = 1;
}

#endif // LOWBIT_DIALECT_BITNET_IR_BITNET_TD
