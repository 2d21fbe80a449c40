//===- HFImporter.cpp - Hugging Face BitNet checkpoint -> bitnet IR -------===//

#include "lowbit/Importer/HFImporter.h"
#include "lowbit/Dialect/BitNet/IR/BitNetDialect.h"
#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/ONNX.h"
#include "lowbit/Importer/Safetensors.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::lowbit;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

namespace {

std::string shapeStr(llvm::ArrayRef<int64_t> s) {
  return "[" + llvm::join(llvm::map_range(s, [](int64_t d) {
                            return std::to_string(d);
                          }),
                          ", ") +
         "]";
}

class Importer {
public:
  Importer(MLIRContext &ctx, StringRef dir, const ModelConfig &cfg,
           const WeightSource &weights, int64_t kvBits, bool kvF16)
      : ctx(ctx), b(&ctx), dir(dir), cfg(cfg), weights(weights), kvBits(kvBits),
        kvF16(kvF16) {}

  Expected<OwningOpRef<ModuleOp>> run();

private:
  llvm::Error error(const TensorInfo *t, const Twine &msg) {
    StringRef where = t ? weights.filePath(*t) : dir;
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   where + ": " + msg);
  }

  /// The element type MLIR uses for a stored dtype: GGUF's quantized floats
  /// as f32 (the pack phase widens them), its ternary blocks as i8 codes.
  Type elementType(DType d) {
    if (isQuantizedFloat(d))
      return b.getF32Type();
    if (isTernaryBlock(d))
      return b.getIntegerType(8);
    switch (d) {
    case DType::BF16: return b.getBF16Type();
    case DType::F16: return b.getF16Type();
    case DType::F32: return b.getF32Type();
    case DType::U8: return b.getIntegerType(8, /*isSigned=*/false);
    case DType::I8: return b.getIntegerType(8);
    default: llvm_unreachable("bad dtype");
    }
  }

  ParamAttr paramAttr(const TensorInfo &t) {
    auto ty = RankedTensorType::get(t.shape, elementType(t.dtype));
    return ParamAttr::get(&ctx, t.name, ty);
  }

  /// The file's name for the tensor Hugging Face calls `hfName`.
  std::string name(const Twine &hfName) {
    std::string n = hfName.str();
    return weights.gguf() ? ggufTensorName(n) : n;
  }

  /// Tensor `n` (a file's own name), or an error saying why it cannot be
  /// read.
  Expected<const TensorInfo *> find(StringRef n) {
    if (const TensorInfo *t = weights.lookup(n))
      return t;
    if (const ONNXModel *m = weights.onnx()) {
      if (std::optional<std::string> why = m->problem(n))
        return error(nullptr, "weight '" + n + "': " + *why);
      // torch.onnx.export's scope: `/model/layers.0/self_attn/q_proj/`
      // (a ModuleList index stays joined to its list's name).
      std::string scope;
      for (StringRef part : llvm::split(n.rsplit('.').first, '.'))
        scope +=
            (!part.empty() && llvm::all_of(part, llvm::isDigit) ? "." : "/") +
            part.str();
      return error(nullptr, "missing weight '" + n +
                                "' (no initializer of that name, and no "
                                "MatMul, Gemm, Gather or norm Mul node under "
                                "the module path " +
                                scope + "/)");
    }
    if (const GGUFFile *g = weights.gguf())
      if (std::optional<StringRef> ty = g->unsupportedType(n))
        return error(nullptr, "tensor '" + n + "' has GGML type " + *ty +
                                  ", which lowbit does not read (F32, F16, "
                                  "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, "
                                  "Q5_K, Q6_K, TQ1_0, TQ2_0, I2_S)");
    return error(nullptr, "missing tensor '" + n + "'");
  }

  /// A float tensor `name` of exactly `shape`; `what` explains the shape.
  Expected<ParamAttr>
  floatParam(StringRef hfName, llvm::ArrayRef<int64_t> shape, StringRef what) {
    std::string name = this->name(hfName);
    Expected<const TensorInfo *> found = find(name);
    if (!found)
      return found.takeError();
    const TensorInfo *t = *found;
    if (!isFloatLike(t->dtype) ||
        (isQuantizedFloat(t->dtype) && shape.size() < 2))
      return error(
          t, t->describe() + " has dtype " + dtypeName(t->dtype) +
                 ", expected BF16, F16 or F32" +
                 (weights.gguf() && shape.size() == 2
                      ? " (or Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)"
                      : ""));
    if (llvm::ArrayRef<int64_t>(t->shape) != shape)
      return error(t, t->describe() + " has shape " + shapeStr(t->shape) +
                          ", expected " + shapeStr(shape) + " (" + what + ")");
    return paramAttr(*t);
  }

  /// A ternary projection `prefix.weight` of logical shape [out, in]: float
  /// master weights, or packed U8 [out/4, in] with `prefix.weight_scale`.
  struct Projection {
    ParamAttr weight;
    ParamAttr scale; // null for master weights
  };
  Expected<Projection> projection(StringRef prefix, int64_t out, int64_t in,
                                  StringRef what) {
    std::string name = this->name(prefix + ".weight");
    Expected<const TensorInfo *> found = find(name);
    if (!found)
      return found.takeError();
    const TensorInfo *t = *found;
    // Not reading a bias would change every logit without a word.
    std::string bias = this->name(prefix + ".bias");
    if (const TensorInfo *bt = weights.lookup(bias))
      return error(bt, bt->describe() +
                           ": biases are not supported (BitNet's linear "
                           "layers have none)");
    if (weights.gguf() || t->ternaryValues)
      return codesProjection(t, out, in, what, prefix);
    Projection p;
    if (t->dtype == DType::U8) {
      if (out % 4 != 0)
        return error(t, "tensor '" + name + "' is packed U8 but its " +
                            Twine(out) +
                            " output rows are not a multiple of 4");
      llvm::SmallVector<int64_t, 2> want{out / 4, in};
      if (llvm::ArrayRef<int64_t>(t->shape) != llvm::ArrayRef<int64_t>(want))
        return error(t, "tensor '" + name + "' has shape " +
                            shapeStr(t->shape) + ", expected packed " +
                            shapeStr(want) + " (" + what + ", rows / 4)");
      std::string scaleName = (prefix + ".weight_scale").str();
      const TensorInfo *s = weights.lookup(scaleName);
      if (!s)
        return error(t, "packed tensor '" + name + "' has no '" + scaleName +
                            "'");
      if (cfg.weightScaleDivides)
        return error(s, "tensor '" + scaleName +
                            "': quantization_config.linear_class "
                            "\"bitlinear\" divides by weight_scale; lowbit "
                            "reads packed \"autobitlinear\" checkpoints "
                            "(weight_scale a multiplier) only");
      if (s->numElements() != 1 || s->dtype == DType::U8 ||
          s->dtype == DType::I8)
        return error(s, "tensor '" + scaleName +
                            "' must hold one float, got " +
                            dtypeName(s->dtype) + " " + shapeStr(s->shape));
      p.weight = paramAttr(*t);
      p.scale = paramAttr(*s);
      return p;
    }
    Expected<ParamAttr> w = floatParam(name, {out, in}, what);
    if (!w)
      return w.takeError();
    p.weight = *w;
    return p;
  }

  /// A projection stored as the values the model multiplies by: ternary
  /// codes, block-quantized (GGUF's TQ1_0, TQ2_0, I2_S) or int8 (an ONNX
  /// DequantizeLinear's), or floats 0 and +-scale (GGUF's F32, an ONNX
  /// MatMul's own initializer), each with its own scale, which an optional
  /// weight scale tensor multiplies (llama.cpp's `.scale`, the
  /// DequantizeLinear's scale).
  Expected<Projection> codesProjection(const TensorInfo *t, int64_t out,
                                       int64_t in, StringRef what,
                                       StringRef prefix) {
    if (!isTernaryBlock(t->dtype) && t->dtype != DType::F32 &&
        t->dtype != DType::F16 && t->dtype != DType::BF16 &&
        t->dtype != DType::I8)
      return error(t, t->describe() + " has dtype " + dtypeName(t->dtype) +
                          ", expected ternary TQ1_0, TQ2_0, I2_S or I8 codes "
                          "(or F32, F16, BF16 holding 0 and +-scale)");
    llvm::SmallVector<int64_t, 2> want{out, in};
    if (llvm::ArrayRef<int64_t>(t->shape) != llvm::ArrayRef<int64_t>(want))
      return error(t, t->describe() + " has shape " + shapeStr(t->shape) +
                          ", expected " + shapeStr(want) + " (" + what + ")");
    Projection p;
    p.weight = ParamAttr::get(&ctx, t->name,
                              RankedTensorType::get(want, b.getIntegerType(8)));
    std::string scaleName = name(prefix + ".weight_scale");
    if (const TensorInfo *s = weights.lookup(scaleName)) {
      if (s->numElements() != 1 || !isFloatLike(s->dtype) ||
          isQuantizedFloat(s->dtype))
        return error(s, "tensor '" + scaleName + "' must hold one float, got " +
                            dtypeName(s->dtype) + " " + shapeStr(s->shape));
      p.scale = paramAttr(*s);
    }
    return p;
  }

  Location loc(const Twine &name) {
    return NameLoc::get(StringAttr::get(&ctx, name));
  }

  RankedTensorType tokens(int64_t n) {
    return RankedTensorType::get({ShapedType::kDynamic, n}, b.getF32Type());
  }

  Expected<Value> bitlinear(Value x, StringRef prefix, int64_t out, int64_t in,
                            StringRef what, bitnet::ActQuant act,
                            std::optional<int64_t> topk = std::nullopt) {
    Expected<Projection> p = projection(prefix, out, in, what);
    if (!p)
      return p.takeError();
    auto op = bitnet::BitLinearOp::create(
        b, loc(prefix + ".weight"), tokens(out), x, p->weight, p->scale,
        bitnet::ActQuantAttr::get(&ctx, act),
        topk ? b.getI64IntegerAttr(*topk) : IntegerAttr());
    return op.getResult();
  }

  Expected<Value> rmsNorm(Value x, StringRef name, int64_t n) {
    Expected<ParamAttr> w = floatParam(name, {n}, "norm weight");
    if (!w)
      return w.takeError();
    return bitnet::RMSNormOp::create(b, loc(name), x.getType(), x, *w,
                                     b.getF32FloatAttr(cfg.rmsNormEps))
        .getResult();
  }

  MLIRContext &ctx;
  OpBuilder b;
  std::string dir;
  const ModelConfig &cfg;
  const WeightSource &weights;
  int64_t kvBits;
  bool kvF16;
};

Expected<OwningOpRef<ModuleOp>> Importer::run() {
  const int64_t H = cfg.hiddenSize, F = cfg.intermediateSize,
                V = cfg.vocabSize, nh = cfg.numHeads, nkv = cfg.numKVHeads,
                hd = cfg.headDim, C = cfg.maxPositions;
  const int64_t qWidth = nh * hd, kvWidth = nkv * hd;
  const bool a48 = cfg.scheme == Scheme::A48;
  const auto act4 = a48 ? bitnet::ActQuant::int4_absmean
                        : bitnet::ActQuant::int8_absmax;
  const auto act8 = bitnet::ActQuant::int8_absmax;

  OwningOpRef<ModuleOp> module = ModuleOp::create(loc(dir));
  (*module)->setAttr("lowbit.scheme", b.getStringAttr(schemeName(cfg.scheme)));
  llvm::SmallString<256> absDir(dir);
  llvm::sys::fs::make_absolute(absDir);
  (*module)->setAttr("lowbit.model_dir", b.getStringAttr(absDir));
  llvm::SmallVector<NamedAttribute> info{
      b.getNamedAttr("vocab_size", b.getI64IntegerAttr(V)),
      b.getNamedAttr("hidden_size", b.getI64IntegerAttr(H)),
      b.getNamedAttr("num_layers", b.getI64IntegerAttr(cfg.numLayers)),
      b.getNamedAttr("context", b.getI64IntegerAttr(C))};
  if (cfg.bosTokenId)
    info.push_back(b.getNamedAttr("bos_token_id",
                                  b.getI64IntegerAttr(*cfg.bosTokenId)));
  if (cfg.eosTokenId)
    info.push_back(b.getNamedAttr("eos_token_id",
                                  b.getI64IntegerAttr(*cfg.eosTokenId)));
  (*module)->setAttr("lowbit.model", b.getDictionaryAttr(info));

  auto cacheTy = RankedTensorType::get({C, kvWidth}, b.getF32Type());
  llvm::SmallVector<Type> args{
      RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type()),
      b.getIndexType()};
  llvm::SmallVector<Type> results{tokens(V)};
  for (int64_t i = 0; i < 2 * cfg.numLayers; ++i) {
    args.push_back(cacheTy);
    results.push_back(cacheTy);
  }
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc("model"), "forward",
                                   b.getFunctionType(args, results));
  Block *body = func.addEntryBlock();
  b.setInsertionPointToEnd(body);
  Value ids = body->getArgument(0), start = body->getArgument(1);

  // Positions start, start + 1, ... of the tokens of this call.
  Value n = tensor::DimOp::create(b, loc("model.positions"), ids, 0);
  auto positions = tensor::GenerateOp::create(
      b, loc("model.positions"), ids.getType(), ValueRange{n},
      [&](OpBuilder &nb, Location l, ValueRange idx) {
        Value p = arith::AddIOp::create(nb, l, idx[0], start);
        Value c = arith::IndexCastOp::create(nb, l, nb.getI32Type(), p);
        tensor::YieldOp::create(nb, l, c);
      });

  Expected<ParamAttr> embed = floatParam(
      "model.embed_tokens.weight", {V, H}, "vocab_size, hidden_size");
  if (!embed)
    return embed.takeError();
  Value h = bitnet::EmbeddingOp::create(b, loc("model.embed_tokens.weight"),
                                        tokens(H), ids, *embed);

  llvm::SmallVector<Value> newCaches;
  for (int64_t i = 0; i < cfg.numLayers; ++i) {
    std::string L = "model.layers." + std::to_string(i);
    std::string at = L + ".self_attn", mlp = L + ".mlp";
    Expected<Value> x = rmsNorm(h, L + ".input_layernorm.weight", H);
    if (!x)
      return x.takeError();
    Expected<Value> q = bitlinear(*x, at + ".q_proj", qWidth, H,
                                  "num_attention_heads x head_dim, hidden_size",
                                  act4);
    if (!q)
      return q.takeError();
    Expected<Value> k = bitlinear(
        *x, at + ".k_proj", kvWidth, H,
        "num_key_value_heads x head_dim, hidden_size", act4);
    if (!k)
      return k.takeError();
    Expected<Value> v = bitlinear(
        *x, at + ".v_proj", kvWidth, H,
        "num_key_value_heads x head_dim, hidden_size", act4);
    if (!v)
      return v.takeError();
    auto rope = [&](Value t, StringRef name) {
      return bitnet::RoPEOp::create(b, loc(at + "." + name), t.getType(), t,
                                    positions, b.getI64IntegerAttr(hd),
                                    b.getF32FloatAttr(cfg.ropeTheta))
          .getResult();
    };
    Value qr = rope(*q, "q_rope"), kr = rope(*k, "k_rope");
    auto attn = bitnet::AttentionOp::create(
        b, loc(at), qr, kr, *v, body->getArgument(2 + 2 * i),
        body->getArgument(3 + 2 * i), start, nh, nkv, hd, kvBits, kvF16);
    newCaches.push_back(attn.getNewKCache());
    newCaches.push_back(attn.getNewVCache());
    Expected<Value> o = rmsNorm(attn.getResult(),
                                at + ".attn_sub_norm.weight", qWidth);
    if (!o)
      return o.takeError();
    // a4.8 keeps the top 50 % of the o_proj input per token (spec §4.1).
    std::optional<int64_t> topk;
    if (a48)
      topk = (qWidth + 1) / 2;
    Expected<Value> oProj = bitlinear(*o, at + ".o_proj", H, qWidth,
                                      "hidden_size, num_attention_heads x "
                                      "head_dim",
                                      act8, topk);
    if (!oProj)
      return oProj.takeError();
    h = arith::AddFOp::create(b, loc(L + ".attn_residual"), h, *oProj);

    x = rmsNorm(h, L + ".post_attention_layernorm.weight", H);
    if (!x)
      return x.takeError();
    Expected<Value> g = bitlinear(*x, mlp + ".gate_proj", F, H,
                                  "intermediate_size, hidden_size", act4);
    if (!g)
      return g.takeError();
    Expected<Value> u = bitlinear(*x, mlp + ".up_proj", F, H,
                                  "intermediate_size, hidden_size", act4);
    if (!u)
      return u.takeError();
    Value m = bitnet::ReLU2GLUOp::create(b, loc(mlp + ".act_fn"), *g, *u);
    Expected<Value> mn = rmsNorm(m, mlp + ".ffn_sub_norm.weight", F);
    if (!mn)
      return mn.takeError();
    Expected<Value> d = bitlinear(*mn, mlp + ".down_proj", H, F,
                                  "hidden_size, intermediate_size", act8);
    if (!d)
      return d.takeError();
    h = arith::AddFOp::create(b, loc(L + ".mlp_residual"), h, *d);
  }

  Expected<Value> xf = rmsNorm(h, "model.norm.weight", H);
  if (!xf)
    return xf.takeError();
  // Tied unless config.json says otherwise; when it is silent, an
  // lm_head.weight tensor in the checkpoint unties it.
  bool tied = cfg.tieWordEmbeddings.value_or(!weights.lookup("lm_head.weight"));
  ParamAttr head = *embed;
  if (!tied) {
    Expected<ParamAttr> w =
        floatParam("lm_head.weight", {V, H}, "vocab_size, hidden_size");
    if (!w)
      return w.takeError();
    head = *w;
  }
  Value logits = bitnet::LMHeadOp::create(
      b, loc(tied ? "model.embed_tokens.weight" : "lm_head.weight"), tokens(V),
      *xf, head);
  llvm::SmallVector<Value> rets{logits};
  rets.append(newCaches);
  func::ReturnOp::create(b, loc("model"), rets);

  if (failed(mlir::verify(*module)))
    return error(nullptr, "internal error: imported IR does not verify");
  return std::move(module);
}

} // namespace

/// Applies the options to `cfg` (read from `cfgPath`) and imports.
static Expected<OwningOpRef<ModuleOp>>
importWith(StringRef path, StringRef cfgPath, StringRef contextKey,
           ModelConfig &cfg, std::unique_ptr<WeightSource> weights,
           MLIRContext &ctx, const ImportOptions &options) {
  for (const std::string &w : cfg.warnings)
    mlir::emitWarning(NameLoc::get(StringAttr::get(&ctx, cfgPath)), w);
  if (options.scheme)
    cfg.scheme = *options.scheme;
  if (options.context > cfg.maxPositions)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "--context=" + llvm::Twine(options.context) + " exceeds the model's " +
            contextKey + " (" + llvm::Twine(cfg.maxPositions) + ")");
  if (options.context)
    cfg.maxPositions = options.context;
  if (cfg.maxPositions > kMaxContext)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        cfgPath + ": " + contextKey + " (" + llvm::Twine(cfg.maxPositions) +
            ") exceeds lowbit's limit of " + llvm::Twine(kMaxContext) +
            " positions; --context=N compiles a shorter context");
  ctx.loadDialect<bitnet::BitNetDialect, LowBitDialect,
                  func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect>();
  return Importer(ctx, path, cfg, *weights, options.kvBits, options.kvF16)
      .run();
}

Expected<OwningOpRef<ModuleOp>>
mlir::lowbit::importHFModel(StringRef dir, MLIRContext &ctx,
                            const ImportOptions &options) {
  llvm::SmallString<256> cfgPath(dir);
  llvm::sys::path::append(cfgPath, "config.json");
  Expected<ModelConfig> cfg = ModelConfig::read(cfgPath);
  if (!cfg)
    return cfg.takeError();
  Expected<std::unique_ptr<WeightSource>> weights =
      WeightSource::openDirectory(dir);
  if (!weights)
    return weights.takeError();
  return importWith(dir, cfgPath, "max_position_embeddings", *cfg,
                    std::move(*weights), ctx, options);
}

Expected<OwningOpRef<ModuleOp>>
mlir::lowbit::importONNXModel(StringRef path, MLIRContext &ctx,
                              const ImportOptions &options) {
  std::string onnxPath = ONNXModel::modelFile(path);
  if (onnxPath.empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        path + ": not an ONNX model (a .onnx file, or a directory with "
               "model.onnx or onnx/model.onnx)");
  std::string cfgPath = ONNXModel::companionFile(onnxPath, "config.json");
  if (cfgPath.empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        onnxPath + ": no config.json beside the ONNX model or in its parent "
                   "directory (the Hugging Face configuration says what the "
                   "graph computes)");
  Expected<ModelConfig> cfg = ModelConfig::read(cfgPath);
  if (!cfg)
    return cfg.takeError();
  Expected<std::unique_ptr<WeightSource>> weights =
      WeightSource::open(onnxPath);
  if (!weights)
    return weights.takeError();
  if (Error e = (*weights)->onnx()->checkArchitecture())
    return std::move(e);
  return importWith(onnxPath, cfgPath, "max_position_embeddings", *cfg,
                    std::move(*weights), ctx, options);
}

Expected<OwningOpRef<ModuleOp>>
mlir::lowbit::importGGUFModel(StringRef path, MLIRContext &ctx,
                              const ImportOptions &options) {
  Expected<std::unique_ptr<WeightSource>> weights = WeightSource::open(path);
  if (!weights)
    return weights.takeError();
  if (!(*weights)->gguf())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   path + ": not a GGUF file");
  Expected<ModelConfig> cfg = readGGUFConfig(*(*weights)->gguf());
  if (!cfg)
    return cfg.takeError();
  auto arch = (*weights)->gguf()->getString("general.architecture");
  std::string contextKey =
      (arch && *arch ? **arch : StringRef("bitnet")).str() + ".context_length";
  if (!arch)
    llvm::consumeError(arch.takeError());
  return importWith(path, path, contextKey, *cfg, std::move(*weights), ctx,
                    options);
}
