//===- GGUFImporter.cpp - a BitNet GGUF file's configuration and names ----===//
//
// What lowbit needs from a GGUF file besides its tensors: the model's
// hyperparameters (llama.cpp's `<arch>.*` keys) and the tensor names, which
// the importer asks for in Hugging Face's spelling.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/ModelConfig.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>

using namespace mlir::lowbit;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

Expected<ModelConfig> mlir::lowbit::readGGUFConfig(const GGUFFile &gguf) {
  ModelConfig c;
  auto archOr = gguf.getString("general.architecture");
  if (!archOr)
    return archOr.takeError();
  if (!*archOr)
    return gguf.error("no metadata 'general.architecture'");
  StringRef arch = **archOr;
  if (arch != "bitnet" && arch != "bitnet-b1.58" && arch != "bitnet-25")
    return gguf.error("architecture '" + arch +
                      "' is not BitNet (lowbit compiles bitnet, bitnet-b1.58 "
                      "and bitnet-25)");
  auto key = [&](StringRef k) { return (arch + "." + k).str(); };
  auto intKey = [&](StringRef k, int64_t &out, bool required) -> llvm::Error {
    auto v = gguf.getUInt(key(k));
    if (!v)
      return v.takeError();
    if (!*v) {
      if (required)
        return gguf.error("missing metadata '" + key(k) + "'");
      return llvm::Error::success();
    }
    if (**v == 0 || **v > (uint64_t(1) << 31))
      return gguf.error("metadata '" + key(k) + "' must be in [1, 2^31], got " +
                        Twine(**v));
    out = int64_t(**v);
    return llvm::Error::success();
  };
  auto floatKey = [&](StringRef k, double &out) -> llvm::Error {
    auto v = gguf.getFloat(key(k));
    if (!v)
      return v.takeError();
    if (*v) {
      if (!(**v > 0.0) || !std::isfinite(**v))
        return gguf.error("metadata '" + key(k) +
                          "' must be a positive number");
      out = **v;
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = intKey("embedding_length", c.hiddenSize, true))
    return std::move(e);
  if (llvm::Error e = intKey("feed_forward_length", c.intermediateSize, true))
    return std::move(e);
  if (llvm::Error e = intKey("block_count", c.numLayers, true))
    return std::move(e);
  if (llvm::Error e = intKey("attention.head_count", c.numHeads, true))
    return std::move(e);
  c.numKVHeads = c.numHeads;
  if (llvm::Error e = intKey("attention.head_count_kv", c.numKVHeads, false))
    return std::move(e);
  // llama.cpp's defaults where a key is absent.
  c.maxPositions = 2048;
  if (llvm::Error e = intKey("context_length", c.maxPositions, false))
    return std::move(e);
  c.ropeTheta = 10000.0;
  if (llvm::Error e = floatKey("rope.freq_base", c.ropeTheta))
    return std::move(e);
  if (llvm::Error e =
          floatKey("attention.layer_norm_rms_epsilon", c.rmsNormEps))
    return std::move(e);

  if (c.hiddenSize % c.numHeads != 0 && !gguf.get(key("attention.key_length")))
    return gguf.error(key("embedding_length") + " (" + Twine(c.hiddenSize) +
                      ") is not divisible by " + key("attention.head_count") +
                      " (" + Twine(c.numHeads) + ")");
  c.headDim = c.hiddenSize / c.numHeads;
  if (llvm::Error e = intKey("attention.key_length", c.headDim, false))
    return std::move(e);
  int64_t valueLength = c.headDim, ropeDims = c.headDim;
  if (llvm::Error e = intKey("attention.value_length", valueLength, false))
    return std::move(e);
  if (llvm::Error e = intKey("rope.dimension_count", ropeDims, false))
    return std::move(e);
  if (valueLength != c.headDim)
    return gguf.error(key("attention.value_length") + " (" +
                      Twine(valueLength) + ") differs from the key length (" +
                      Twine(c.headDim) + ")");
  if (ropeDims != c.headDim)
    return gguf.error(key("rope.dimension_count") + " (" + Twine(ropeDims) +
                      ") differs from the head dimension (" + Twine(c.headDim) +
                      "): partial rotary embeddings are not supported");
  if (c.headDim % 2 != 0)
    return gguf.error("head dimension " + Twine(c.headDim) +
                      " must be even for rotary embeddings");
  if (c.numHeads % c.numKVHeads != 0)
    return gguf.error(key("attention.head_count") + " (" + Twine(c.numHeads) +
                      ") is not divisible by " +
                      key("attention.head_count_kv") + " (" +
                      Twine(c.numKVHeads) + ")");
  for (StringRef k : {"rope.scaling.type", "rope.scaling.factor"})
    if (const GGUFValue *v = gguf.get(key(k)))
      if (!(v->type == GGUFValue::String && v->str == "none") &&
          !(v->isFloat() && (v->f == 0.0 || v->f == 1.0)))
        return gguf.error("metadata '" + key(k) +
                          "' is set: RoPE scaling is not supported (BitNet "
                          "models use plain rotary embeddings)");
  // BitNet b1.58's FFN is ReLU^2-gated. llama.cpp's `bitnet` graph assumed
  // SiLU until files said otherwise; lowbit compiles the model's own
  // ReLU^2, and refuses a file that asks for anything else.
  for (StringRef k : {"hidden_activation", "hidden_act"}) {
    auto act = gguf.getString(key(k));
    if (!act)
      return act.takeError();
    if (*act && **act != "relu2" && **act != "relu_sqr")
      return gguf.error("metadata '" + key(k) + "' is '" + **act +
                        "'; BitNet uses relu2");
  }

  // The vocabulary: <arch>.vocab_size, else the tokenizer's token count,
  // else the embedding's rows (checked against the embedding on import).
  if (llvm::Error e = intKey("vocab_size", c.vocabSize, false))
    return std::move(e);
  if (!c.vocabSize) {
    if (const GGUFValue *t = gguf.get("tokenizer.ggml.tokens");
        t && t->type == GGUFValue::Array && t->count > 0 &&
        t->count <= (uint64_t(1) << 31))
      c.vocabSize = int64_t(t->count);
    else if (const TensorInfo *e = gguf.lookup("token_embd.weight");
             e && e->shape.size() == 2 && e->shape[0] > 0 &&
             e->shape[0] <= (int64_t(1) << 31))
      c.vocabSize = e->shape[0];
    else
      return gguf.error("cannot tell the vocabulary size: no '" +
                        key("vocab_size") +
                        "', tokenizer.ggml.tokens or token_embd.weight");
  }
  auto tokenKey = [&](StringRef k, std::optional<int64_t> &out) -> llvm::Error {
    auto v = gguf.getUInt(k);
    if (!v)
      return v.takeError();
    if (!*v)
      return llvm::Error::success();
    if (int64_t(**v) < c.vocabSize)
      out = int64_t(**v);
    else
      c.warnings.push_back(("'" + k + "': " + Twine(**v) +
                            " is not a token id below the vocabulary size (" +
                            Twine(c.vocabSize) + "); dropped")
                               .str());
    return llvm::Error::success();
  };
  if (llvm::Error e = tokenKey("tokenizer.ggml.bos_token_id", c.bosTokenId))
    return std::move(e);
  if (llvm::Error e = tokenKey("tokenizer.ggml.eos_token_id", c.eosTokenId))
    return std::move(e);
  // A tokenizer that adds no BOS (llama.cpp's add_bos_token false): the
  // executable then prepends none.
  if (const GGUFValue *v = gguf.get("tokenizer.ggml.add_bos_token")) {
    if (v->type != GGUFValue::Bool)
      return gguf.error("metadata 'tokenizer.ggml.add_bos_token' must be a "
                        "bool, got " +
                        ggufTypeName(v->type));
    if (!v->u)
      c.bosTokenId.reset();
  }
  // Untied when the file has an output.weight (llama.cpp's rule).
  c.tieWordEmbeddings =
      !gguf.lookup("output.weight") && !gguf.unsupportedType("output.weight");
  return c;
}

std::string mlir::lowbit::ggufTensorName(StringRef hf) {
  if (hf == "model.embed_tokens.weight")
    return "token_embd.weight";
  if (hf == "model.norm.weight")
    return "output_norm.weight";
  if (hf == "lm_head.weight")
    return "output.weight";
  StringRef rest = hf;
  unsigned layer;
  if (!rest.consume_front("model.layers."))
    return hf.str();
  auto [num, path] = rest.split('.');
  if (num.getAsInteger(10, layer))
    return hf.str();
  static const std::pair<StringRef, StringRef> modules[] = {
      {"input_layernorm", "attn_norm"},
      {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},
      {"self_attn.attn_sub_norm", "attn_sub_norm"},
      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
      {"mlp.ffn_sub_norm", "ffn_sub_norm"}};
  static const std::pair<StringRef, StringRef> leaves[] = {
      {"weight", "weight"}, {"weight_scale", "scale"}, {"bias", "bias"}};
  size_t dot = path.rfind('.');
  if (dot == StringRef::npos)
    return hf.str();
  StringRef module = path.take_front(dot), leaf = path.drop_front(dot + 1);
  for (auto [hm, gm] : modules)
    if (module == hm)
      for (auto [hl, gl] : leaves)
        if (leaf == hl)
          return ("blk." + Twine(layer) + "." + gm + "." + gl).str();
  return hf.str();
}
