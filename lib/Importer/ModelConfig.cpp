//===- ModelConfig.cpp - BitNetForCausalLM config.json --------------------===//

#include "lowbit/Importer/ModelConfig.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir::lowbit;
using llvm::Expected;
using llvm::StringRef;

std::optional<Scheme> mlir::lowbit::parseScheme(StringRef s) {
  if (s == "b1.58")
    return Scheme::B158;
  if (s == "a4.8")
    return Scheme::A48;
  return std::nullopt;
}

StringRef mlir::lowbit::schemeName(Scheme s) {
  return s == Scheme::B158 ? "b1.58" : "a4.8";
}

Expected<ModelConfig> ModelConfig::read(StringRef path) {
  auto err = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   path + ": " + msg);
  };
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!bufOr)
    return err("cannot open: " + bufOr.getError().message());
  Expected<llvm::json::Value> parsed = llvm::json::parse((*bufOr)->getBuffer());
  if (!parsed)
    return err("malformed JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *o = parsed->getAsObject();
  if (!o)
    return err("not a JSON object");

  ModelConfig c;
  // Reads a positive integer field; `required` fields must be present.
  auto intField = [&](StringRef key, int64_t &out,
                      bool required) -> llvm::Error {
    const llvm::json::Value *v = o->get(key);
    if (!v) {
      if (required)
        return err("missing field '" + key + "'");
      return llvm::Error::success();
    }
    std::optional<int64_t> i = v->getAsInteger();
    if (!i || *i <= 0)
      return err("field '" + key + "' must be a positive integer");
    out = *i;
    return llvm::Error::success();
  };
  auto numField = [&](StringRef key, double &out) -> llvm::Error {
    const llvm::json::Value *v = o->get(key);
    if (!v)
      return llvm::Error::success();
    std::optional<double> d = v->getAsNumber();
    if (!d || !(*d > 0.0))
      return err("field '" + key + "' must be a positive number");
    out = *d;
    return llvm::Error::success();
  };

  if (const llvm::json::Value *archV = o->get("architectures")) {
    const llvm::json::Array *archs = archV->getAsArray();
    if (!archs)
      return err("field 'architectures' must be a list of strings");
    bool found = false;
    for (const llvm::json::Value &a : *archs)
      found |= a.getAsString() == StringRef("BitNetForCausalLM");
    if (!found)
      return err("'architectures' does not name BitNetForCausalLM");
  }
  if (llvm::Error e = intField("hidden_size", c.hiddenSize, true))
    return std::move(e);
  if (llvm::Error e = intField("intermediate_size", c.intermediateSize, true))
    return std::move(e);
  if (llvm::Error e = intField("num_hidden_layers", c.numLayers, true))
    return std::move(e);
  if (llvm::Error e = intField("num_attention_heads", c.numHeads, true))
    return std::move(e);
  if (llvm::Error e = intField("vocab_size", c.vocabSize, true))
    return std::move(e);
  c.numKVHeads = c.numHeads;
  if (llvm::Error e = intField("num_key_value_heads", c.numKVHeads, false))
    return std::move(e);
  c.maxPositions = 2048;
  if (llvm::Error e = intField("max_position_embeddings", c.maxPositions, false))
    return std::move(e);
  if (llvm::Error e = numField("rope_theta", c.ropeTheta))
    return std::move(e);
  if (llvm::Error e = numField("rms_norm_eps", c.rmsNormEps))
    return std::move(e);

  if (o->get("head_dim")) {
    if (llvm::Error e = intField("head_dim", c.headDim, true))
      return std::move(e);
  } else {
    if (c.hiddenSize % c.numHeads != 0)
      return err("hidden_size (" + llvm::Twine(c.hiddenSize) +
                 ") is not divisible by num_attention_heads (" +
                 llvm::Twine(c.numHeads) + ")");
    c.headDim = c.hiddenSize / c.numHeads;
  }
  if (c.headDim % 2 != 0)
    return err("head dimension " + llvm::Twine(c.headDim) +
               " must be even for rotary embeddings");
  if (c.numHeads % c.numKVHeads != 0)
    return err("num_attention_heads (" + llvm::Twine(c.numHeads) +
               ") is not divisible by num_key_value_heads (" +
               llvm::Twine(c.numKVHeads) + ")");

  if (const llvm::json::Value *act = o->get("hidden_act")) {
    std::optional<StringRef> s = act->getAsString();
    if (!s || *s != "relu2")
      return err("unknown hidden_act '" +
                 (s ? *s : StringRef("<not a string>")) +
                 "'; BitNet uses relu2");
  }
  if (const llvm::json::Value *tie = o->get("tie_word_embeddings")) {
    std::optional<bool> b = tie->getAsBoolean();
    if (!b)
      return err("field 'tie_word_embeddings' must be true or false");
    c.tieWordEmbeddings = *b;
  }
  if (const llvm::json::Value *sch = o->get("activation_scheme")) {
    std::optional<StringRef> s = sch->getAsString();
    std::optional<Scheme> parsedScheme = s ? parseScheme(*s) : std::nullopt;
    if (!parsedScheme)
      return err("unknown activation_scheme; expected \"b1.58\" or \"a4.8\"");
    c.scheme = *parsedScheme;
  }
  // RoPE: the plain rotation only (BitNet's checkpoints have no scaling).
  if (const llvm::json::Value *v = o->get("rope_scaling"))
    if (v->kind() != llvm::json::Value::Null)
      return err("field 'rope_scaling' is set: RoPE scaling is not supported "
                 "(BitNet models use plain rotary embeddings)");
  // quantization_config (transformers' BitNet integration): AutoBitLinear
  // multiplies by a packed tensor's weight_scale, the older BitLinear divides
  // by it (the importer refuses packed tensors then, rather than read them
  // with the wrong scale).
  if (const llvm::json::Value *v = o->get("quantization_config")) {
    const llvm::json::Object *q = v->getAsObject();
    if (!q)
      return err("field 'quantization_config' must be an object");
    if (const llvm::json::Value *m = q->get("quant_method"))
      if (m->getAsString() != std::optional<StringRef>("bitnet"))
        return err("quantization_config.quant_method must be \"bitnet\"");
    if (const llvm::json::Value *lc = q->get("linear_class")) {
      std::optional<StringRef> cls = lc->getAsString();
      if (!cls || (*cls != "autobitlinear" && *cls != "bitlinear"))
        return err("unknown quantization_config.linear_class; expected "
                   "\"autobitlinear\" or \"bitlinear\"");
      c.weightScaleDivides = *cls == "bitlinear";
    }
  }
  // Biases: BitNet's linear layers have none, and none is read.
  for (StringRef key : {"attention_bias", "mlp_bias"})
    if (const llvm::json::Value *v = o->get(key)) {
      std::optional<bool> on = v->getAsBoolean();
      if (!on)
        return err("field '" + key + "' must be true or false");
      if (*on)
        return err("field '" + key +
                   "' is true: biases are not supported (BitNet's linear "
                   "layers have none)");
    }
  // Special tokens: null or absent (none), an integer, or a non-empty list
  // of them (as Llama-3 instruct configs write eos_token_id), of which the
  // first in the vocabulary is kept: the executable stops at that and at
  // <|eot_id|>. An id outside the vocabulary is dropped with a warning (the
  // model could never embed or produce it).
  auto tokenField = [&](StringRef key,
                        std::optional<int64_t> &out) -> llvm::Error {
    const llvm::json::Value *v = o->get(key);
    if (!v || v->kind() == llvm::json::Value::Null)
      return llvm::Error::success();
    llvm::SmallVector<const llvm::json::Value *> ids;
    if (const llvm::json::Array *list = v->getAsArray()) {
      if (list->empty())
        return err("field '" + key + "' is an empty list");
      for (const llvm::json::Value &x : *list)
        ids.push_back(&x);
    } else {
      ids.push_back(v);
    }
    for (const llvm::json::Value *id : ids) {
      std::optional<int64_t> i = id->getAsInteger();
      if (!i)
        return err("field '" + key +
                   "' must be a token id (an integer) or a list of them");
      if (*i >= 0 && *i < c.vocabSize) {
        out = out.value_or(*i);
        continue;
      }
      c.warnings.push_back(("'" + key + "': " + llvm::Twine(*i) +
                            " is not a token id below vocab_size (" +
                            llvm::Twine(c.vocabSize) + "); dropped")
                               .str());
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = tokenField("bos_token_id", c.bosTokenId))
    return std::move(e);
  if (llvm::Error e = tokenField("eos_token_id", c.eosTokenId))
    return std::move(e);
  return c;
}
