//===- LowBitOps.td - lowbit operations --------------------*- tablegen -*-===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBITOPS_TD
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBITOPS_TD

include "lowbit/Dialect/LowBit/IR/LowBitTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def LowBit_AnyTernary : Type<CPred<"::llvm::isa<::mlir::lowbit::TernaryType>($_self)">,
                             "lowbit ternary weight", "::mlir::lowbit::TernaryType">;
def LowBit_AnyQAct : Type<CPred<"::llvm::isa<::mlir::lowbit::QActType>($_self)">,
                          "lowbit quantized activation", "::mlir::lowbit::QActType">;
def LowBit_AnyKVCache : Type<CPred<"::llvm::isa<::mlir::lowbit::KVCacheType>($_self)">,
                             "lowbit KV cache", "::mlir::lowbit::KVCacheType">;

//===----------------------------------------------------------------------===//
// lowbit.weight
//===----------------------------------------------------------------------===//

def LowBit_WeightOp : LowBit_Op<"weight", [Pure]> {
  let summary = "materializes a ternary weight matrix from a checkpoint tensor";
  let description = [{
    `source` names the stored tensor: float master weights `[N, K]`
    (quantized with per-tensor absmean when packed), the published packed
    layout `ui8 [N/4, K]`, or unpacked `i8 [N, K]` codes. `scale` names the
    per-tensor multiplier (`weight_scale`, one element) that the packed and
    unpacked forms need. The result type gives the layout kernels read.
    `alpha`, set by `lowbit-pack-ternary-weights`, is the per-tensor scale the
    packed codes are multiplied by.

    ```mlir
    %w = lowbit.weight(#lowbit.param<"l0.q.weight" : tensor<16x64xui8>>)
           scale(#lowbit.param<"l0.q.weight_scale" : tensor<1xbf16>>)
           : !lowbit.ternary<64x64, tiles2>
    ```
  }];
  let arguments = (ins LowBit_ParamAttr:$source,
                       OptionalAttr<LowBit_ParamAttr>:$scale,
                       OptionalAttr<F32Attr>:$alpha);
  let results = (outs LowBit_AnyTernary:$result);
  let assemblyFormat = "`(` custom<ParamRef>($source) `)` "
      "(`scale` `(` custom<ParamRef>($scale)^ `)`)? attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// lowbit.quantize
//===----------------------------------------------------------------------===//

def LowBit_QuantizeOp : LowBit_Op<"quantize", [Pure]> {
  let summary = "per-token activation quantizer (absmax or absmean, 4 or 8 bits)";
  let description = [{
    For each token row x: `absmax` uses s = Q / max(max|x|, 1e-5) with Q = 127
    (8 bits) or 7 (4 bits); `absmean` uses s = sqrt(7) / max(mean|x|, 1e-5)
    (4 bits). Codes are round-half-to-even(x * s) clamped to the signed range
    of the result's element type; 1/s is kept as the token's scale.

    With `norm`, the op first applies RMSNorm with that weight and `eps`
    (`lowbit-fuse-quantization` folds a `bitnet.rms_norm` into it).

    ```mlir
    %q = lowbit.quantize %x absmean : tensor<?x64xf32> -> !lowbit.qact<?x64, i4>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input,
                       LowBit_QuantMethodAttr:$method,
                       OptionalAttr<LowBit_ParamAttr>:$norm,
                       OptionalAttr<F32Attr>:$eps);
  let results = (outs LowBit_AnyQAct:$result);
  let assemblyFormat =
      "$input custom<QuantMethod>($method) "
      "(`norm` `(` custom<ParamRef>($norm)^ `)`)? attr-dict `:` type($input) "
      "`->` qualified(type($result))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// lowbit.topk_mask
//===----------------------------------------------------------------------===//

def LowBit_TopKMaskOp : LowBit_Op<"topk_mask",
    [Pure, SameOperandsAndResultType]> {
  let summary = "keeps the k largest magnitudes of each token row, zeroes the rest";
  let description = [{
    Exactly `k` entries are kept per row; among equal magnitudes the lower
    index wins. The row's absmax is always kept, so a following absmax
    quantizer sees the same scale as on the unmasked row.

    ```mlir
    %y = lowbit.topk_mask %x k = 32 : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, I64Attr:$k);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input `k` `=` $k attr-dict `:` type($input)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// lowbit.ternary_matmul / lowbit.ternary_matmul_sparse
//===----------------------------------------------------------------------===//

def LowBit_TernaryMatmulOp : LowBit_Op<"ternary_matmul", [Pure]> {
  let summary = "dense quantized-activation x ternary-weight matmul";
  let description = [{
    `result[t, n] = (sum_k input[t, k] * W[n, k]) * act_scale[t] * w_scale`,
    with integer accumulation. `path` records the activation path the
    selection pass chose.

    With `gated by %g`, `result[t, n]` is computed only where `g[t, n] > 0`
    and is 0 elsewhere: the exact ReLU²-GLU shortcut for up_proj (its value
    is multiplied by relu(gate)² = 0 there), which skips reading those rows.

    ```mlir
    %y = lowbit.ternary_matmul %q, %w : !lowbit.qact<?x64, i8>,
           !lowbit.ternary<128x64, tiles2> -> tensor<?x128xf32>
    %u = lowbit.ternary_matmul %q, %w gated by %g : tensor<?x128xf32>
           : !lowbit.qact<?x64, i8>, !lowbit.ternary<128x64, tiles2>
           -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins LowBit_AnyQAct:$input, LowBit_AnyTernary:$weight,
                       Optional<RankedTensorOf<[F32]>>:$gate,
                       OptionalAttr<LowBit_ActPathAttr>:$path);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input `,` $weight (`gated` `by` $gate^ `:` type($gate))? "
                       "attr-dict `:` qualified(type($input)) `,` "
                       "qualified(type($weight)) `->` type($result)";
  let hasVerifier = 1;
}

def LowBit_TernaryMatmulSparseOp : LowBit_Op<"ternary_matmul_sparse", [Pure]> {
  let arguments = (ins LowBit_AnyQAct:$input, LowBit_AnyTernary:$weight,
                       OptionalAttr<LowBit_ActPathAttr>:$path);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` qualified(type($input)) `,` "
                       "qualified(type($weight)) `->` type($result)";
  let hasVerifier = 1;
  let summary = "zero-skipping matmul: zero activations skip their weight columns";
  let description = [{
    Same result as `lowbit.ternary_matmul`; the weight must be stored
    column-major (`cols2`) and the activation in i8, so a zero code skips
    reading its column of weights.
  }];
}

//===----------------------------------------------------------------------===//
// lowbit.kv_store / lowbit.kv_load
//===----------------------------------------------------------------------===//

def LowBit_KVStoreOp : LowBit_Op<"kv_store",
    [Pure, AllTypesMatch<["cache", "result"]>]> {
  let summary = "quantizes token rows into a KV cache starting at a position";
  let description = [{
    Writes the rows of `input` ([tokens, heads * head_dim]) at positions
    `position`, `position + 1`, ... of the cache and returns the new cache.

    ```mlir
    %c1 = lowbit.kv_store %k into %c0[%pos]
            : tensor<?x32xf32> into !lowbit.kv_cache<64x2x16, 4>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, LowBit_AnyKVCache:$cache,
                       Index:$position);
  let results = (outs LowBit_AnyKVCache:$result);
  let assemblyFormat = "$input `into` $cache `[` $position `]` attr-dict `:` "
                       "type($input) `into` qualified(type($cache))";
  let hasVerifier = 1;
}

def LowBit_KVLoadOp : LowBit_Op<"kv_load", [Pure]> {
  let summary = "dequantizes positions [0, length) of a KV cache";
  let description = [{
    ```mlir
    %k = lowbit.kv_load %c[%len] : !lowbit.kv_cache<64x2x16, 4> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins LowBit_AnyKVCache:$cache, Index:$length);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$cache `[` $length `]` attr-dict `:` qualified(type($cache)) "
                       "`->` type($result)";
  let hasVerifier = 1;
}

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBITOPS_TD
