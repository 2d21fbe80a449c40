//===- LowBitAttrs.td - lowbit attributes and enums --------*- tablegen -*-===//

#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBITATTRS_TD
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBITATTRS_TD

include "lowbit/Dialect/LowBit/IR/LowBitBase.td"
include "mlir/IR/BuiltinTypes.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def LowBit_TernaryLayout : I32EnumAttr<"TernaryLayout",
    "how the codes of a ternary weight matrix are stored", [
      I32EnumAttrCase<"hf_packed", 0>,
      I32EnumAttrCase<"int8", 1>,
      I32EnumAttrCase<"tiles2", 2>,
      I32EnumAttrCase<"cols2", 3>,
      I32EnumAttrCase<"lut3", 4>
    ]> {
  let cppNamespace = "::mlir::lowbit";
  let genSpecializedAttr = 0;
  let description = [{
    - `hf_packed`: the published Hugging Face layout, U8 `[N/4, K]`; bit pair
      i of byte (r, c) holds row i*N/4 + r (spec §2.4).
    - `int8`: one signed byte per code, `[N, K]`, unpacked.
    - `tiles2`: 2 bits per code, rows in tiles of 16: per tile and block of
      256 K codes, the 16 rows' 64-byte blocks in turn (byte j: codes j,
      j+64, j+128, j+192 of the block); rows padded to a multiple of 16 and
      K to a multiple of 256 with zero codes.
    - `cols2`: 2 bits per code, column-major, so a zero activation skips its
      weight column (zero-skipping kernels): per column, blocks of 256 rows
      in 64 bytes, each two 32-byte halves of 128 rows; bit pair i of byte
      j of a half holds row 32 i + j, except that bytes 8..15 and 16..23
      hold rows 16..23 and 8..15 (the order vpunpck{l,h}bw of two columns
      leaves rows in); rows padded to a multiple of 256 with zero codes.
    - `lut3`: 5 bits per 3 codes (1.67 bits per weight), for lookup-table
      kernels (T-MAC / TL2 style): codes in groups of 3 along K, each group
      c = 9 (w0+1) + 3 (w1+1) + (w2+1) stored as its distance m = |c - 13|
      from the all-zero group (a nibble) and the sign of c - 13 (a bit).
      Rows in blocks of 32, K in octets of 8 groups (24 codes); per row
      block and octet 160 bytes: 4 x 32 bytes of nibbles (byte r of the
      j-th: row r, group 2j in the low nibble, 2j+1 in the high one), then
      32 sign bytes (bit j of byte r: group j of row r negative). Rows are
      padded to a multiple of 32 and K to a multiple of 24 with zero codes.
  }];
}

def LowBit_ActPath : I32EnumAttr<"ActPath",
    "the activation path chosen for one linear layer", [
      I32EnumAttrCase<"int4_dense", 0>,
      I32EnumAttrCase<"int8_dense", 1>,
      I32EnumAttrCase<"int8_topk", 2>,
      I32EnumAttrCase<"int8_sparse", 3>
    ]> {
  let cppNamespace = "::mlir::lowbit";
  let genSpecializedAttr = 0;
}

def LowBit_QuantMethod : I32EnumAttr<"QuantMethod",
    "per-token statistic an activation quantizer divides by", [
      I32EnumAttrCase<"absmax", 0>,
      I32EnumAttrCase<"absmean", 1>
    ]> {
  let cppNamespace = "::mlir::lowbit";
  let genSpecializedAttr = 0;
}

def LowBit_TernaryLayoutAttr
    : EnumAttr<LowBit_Dialect, LowBit_TernaryLayout, "layout"> {
  let assemblyFormat = "`<` $value `>`";
}
def LowBit_ActPathAttr : EnumAttr<LowBit_Dialect, LowBit_ActPath, "path"> {
  let assemblyFormat = "`<` $value `>`";
}
def LowBit_QuantMethodAttr
    : EnumAttr<LowBit_Dialect, LowBit_QuantMethod, "method">;

//===----------------------------------------------------------------------===//
// #lowbit.param
//===----------------------------------------------------------------------===//

def LowBit_ParamAttr : AttrDef<LowBit_Dialect, "Param"> {
  let mnemonic = "param";
  let summary = "a reference to a named tensor of the model's weight files";
  let description = [{
    Names one tensor of the checkpoint by its key and states its stored type
    (shape and dtype as they are in the file). The tensor's bytes stay in the
    memory-mapped file; passes that need them read them through the compiler's
    weight source. Stored dtypes: bf16, f16, f32, ui8 (U8), i8 (I8).

    ```mlir
    #lowbit.param<"model.layers.0.self_attn.q_proj.weight" : tensor<640x2560xui8>>
    ```
  }];
  let parameters = (ins StringRefParameter<"tensor key">:$name,
                        "::mlir::RankedTensorType":$type);
  let assemblyFormat = "`<` $name `:` $type `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of elements of the stored tensor.
    int64_t getNumElements() const { return getType().getNumElements(); }
    /// True for bf16/f16/f32 storage (master weights, norms, embeddings).
    bool isFloat() const { return ::llvm::isa<::mlir::FloatType>(getType().getElementType()); }
  }];
}

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBITATTRS_TD
