//===- LowBitTypes.td - lowbit types -----------------------*- tablegen -*-===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBITTYPES_TD
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBITTYPES_TD

include "lowbit/Dialect/LowBit/IR/LowBitAttrs.td"

class LowBit_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<LowBit_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def LowBit_TernaryType : LowBit_Type<"Ternary", "ternary"> {
  let summary = "a ternary weight matrix [N x K] in a packed layout";
  let description = [{
    N output rows, K input columns, codes in {-1, 0, +1} with one per-tensor
    float scale. The layout says how the codes are stored.

    ```mlir
    !lowbit.ternary<2560x6912, tiles2>
    ```
  }];
  let parameters = (ins "int64_t":$rows, "int64_t":$cols,
                        "::mlir::lowbit::TernaryLayout":$layout);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Bytes the packed codes take in this layout.
    int64_t getPackedBytes() const;
  }];
}

def LowBit_QActType : LowBit_Type<"QAct", "qact"> {
  let summary = "activations quantized per token to i4 or i8";
  let description = [{
    A tensor of integer codes with one float scale per token (per row of the
    last dimension). The leading dimensions may be dynamic (tokens); the last
    one (features) is static.

    ```mlir
    !lowbit.qact<?x2560, i4>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape,
                        "::mlir::IntegerType":$elementType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getFeatures() const { return getShape().back(); }
    unsigned getBits() const { return getElementType().getWidth(); }
  }];
}

def LowBit_KVCacheType : LowBit_Type<"KVCache", "kv_cache"> {
  let summary = "a per-layer K or V cache [context x kv_heads x head_dim]";
  let description = [{
    Stores one vector per position and KV head, quantized to `bits` bits per
    element with one fp32 scale per position and head (spec §7.3 option A;
    16 means unquantized float32).

    ```mlir
    !lowbit.kv_cache<4096x5x128, 3>
    ```
  }];
  let parameters = (ins "int64_t":$contextLength, "int64_t":$heads,
                        "int64_t":$headDim, "unsigned":$bits);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBITTYPES_TD
