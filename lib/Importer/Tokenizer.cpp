//===- Tokenizer.cpp - tokenizer.json -> the runtime's binary table -------===//

#include "lowbit/Importer/Tokenizer.h"
#include "lowbit/Importer/GGUF.h"

#include "lowbit_abi.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstring>

using namespace mlir::lowbit;
using llvm::StringRef;

/// The pre-tokenizer split the runtime implements (Llama 3).
static constexpr StringRef kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// GPT-2's bytes_to_unicode, inverted: code point -> byte.
static llvm::DenseMap<uint32_t, uint8_t> unicodeToBytes() {
  llvm::DenseMap<uint32_t, uint8_t> map;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                     (b >= 0xAE && b <= 0xFF);
    map[printable ? uint32_t(b) : uint32_t(256 + extra++)] = uint8_t(b);
  }
  return map;
}

/// A byte-level vocabulary entry's bytes; false when `s` is not UTF-8 or
/// has a code point outside GPT-2's byte alphabet.
static bool byteLevelDecode(StringRef s,
                            const llvm::DenseMap<uint32_t, uint8_t> &u2b,
                            std::string &bytes) {
  const llvm::UTF8 *p = reinterpret_cast<const llvm::UTF8 *>(s.data());
  const llvm::UTF8 *end = p + s.size();
  while (p < end) {
    llvm::UTF32 cp;
    if (llvm::convertUTF8Sequence(&p, end, &cp, llvm::strictConversion) !=
        llvm::conversionOK)
      return false;
    auto it = u2b.find(cp);
    if (it == u2b.end())
      return false;
    bytes.push_back(char(it->second));
  }
  return true;
}

/// The binary table of lowbit_abi.h: token bytes by id, merges as
/// (left, right, result) id triples in rank order, the added tokens' ids.
static std::vector<uint8_t> buildTable(const std::vector<std::string> &tokens,
                                       const std::vector<uint32_t> &mergeTable,
                                       const std::vector<uint32_t> &added,
                                       uint32_t flags) {
  lowbit_tokenizer_header h = {};
  std::memcpy(h.magic, LOWBIT_TOKENIZER_MAGIC, 8);
  h.n_tokens = uint32_t(tokens.size());
  h.n_merges = uint32_t(mergeTable.size() / 3);
  h.n_added = uint32_t(added.size());
  h.flags = flags;
  std::vector<uint32_t> offsets{0};
  std::string bytes;
  for (const std::string &t : tokens) {
    bytes += t;
    offsets.push_back(uint32_t(bytes.size()));
  }
  std::vector<uint8_t> out(sizeof h);
  std::memcpy(out.data(), &h, sizeof h);
  auto append = [&](const void *p, size_t n) {
    const auto *c = static_cast<const uint8_t *>(p);
    out.insert(out.end(), c, c + n);
  };
  append(offsets.data(), offsets.size() * 4);
  append(mergeTable.data(), mergeTable.size() * 4);
  append(added.data(), added.size() * 4);
  append(bytes.data(), bytes.size());
  return out;
}

llvm::Expected<std::vector<uint8_t>>
mlir::lowbit::compileTokenizer(StringRef path) {
  auto err = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   path + ": " + msg);
  };
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return err("cannot open: " + buf.getError().message());
  auto parsed = llvm::json::parse((*buf)->getBuffer());
  if (!parsed)
    return err("malformed JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  const llvm::json::Object *model = root ? root->getObject("model") : nullptr;
  if (!model || model->getString("type") != StringRef("BPE"))
    return err("'model.type' must be \"BPE\" (byte-level BPE tokenizers only)");
  const llvm::json::Object *vocab = model->getObject("vocab");
  const llvm::json::Array *merges = model->getArray("merges");
  if (!vocab || !merges)
    return err("'model' needs 'vocab' and 'merges'");

  // Pre-tokenizer: the Llama-3 split then byte-level (no second regex).
  const llvm::json::Object *pre = root->getObject("pre_tokenizer");
  bool ok = false;
  if (pre && pre->getString("type") == StringRef("Sequence"))
    if (const llvm::json::Array *seq = pre->getArray("pretokenizers"))
      if (seq->size() == 2) {
        const llvm::json::Object *split = (*seq)[0].getAsObject();
        const llvm::json::Object *bl = (*seq)[1].getAsObject();
        const llvm::json::Object *pat =
            split ? split->getObject("pattern") : nullptr;
        ok = split && bl && pat &&
             split->getString("type") == StringRef("Split") &&
             pat->getString("Regex") == kLlama3Split &&
             bl->getString("type") == StringRef("ByteLevel") &&
             bl->getBoolean("use_regex") == false;
      }
  if (!ok)
    return err("unsupported 'pre_tokenizer': lowbit implements the Llama-3 "
               "split followed by byte-level encoding");
  const llvm::json::Object *dec = root->getObject("decoder");
  if (!dec || dec->getString("type") != StringRef("ByteLevel"))
    return err("unsupported 'decoder': expected ByteLevel");

  auto u2b = unicodeToBytes();
  // Token id -> raw bytes.
  std::vector<std::string> tokens;
  llvm::StringMap<uint32_t> ids;
  auto setToken = [&](uint32_t id, std::string bytes) {
    if (id >= tokens.size())
      tokens.resize(id + 1);
    tokens[id] = std::move(bytes);
  };
  for (const auto &kv : *vocab) {
    std::optional<int64_t> id = kv.second.getAsInteger();
    if (!id || *id < 0 || *id > (1 << 24))
      return err("vocab entry '" + kv.first.str() + "' has no valid id");
    std::string bytes;
    if (!byteLevelDecode(kv.first, u2b, bytes))
      return err("vocab entry '" + kv.first.str() +
                 "' is not byte-level encoded UTF-8");
    ids[kv.first] = uint32_t(*id);
    setToken(uint32_t(*id), std::move(bytes));
  }
  std::vector<uint32_t> mergeTable;
  for (const llvm::json::Value &m : *merges) {
    std::string left, right;
    if (std::optional<StringRef> s = m.getAsString()) {
      auto [l, r] = s->split(' ');
      left = l.str();
      right = r.str();
    } else if (const llvm::json::Array *pair = m.getAsArray();
               pair && pair->size() == 2 && (*pair)[0].getAsString() &&
               (*pair)[1].getAsString()) {
      left = (*pair)[0].getAsString()->str();
      right = (*pair)[1].getAsString()->str();
    } else {
      return err("'model.merges' entries must be \"left right\" strings");
    }
    auto l = ids.find(left), r = ids.find(right), c = ids.find(left + right);
    if (l == ids.end() || r == ids.end() || c == ids.end())
      return err("merge '" + left + " " + right + "' names tokens not in "
                 "the vocab");
    mergeTable.insert(mergeTable.end(), {l->second, r->second, c->second});
  }
  std::vector<uint32_t> added;
  if (const llvm::json::Array *at = root->getArray("added_tokens"))
    for (const llvm::json::Value &v : *at) {
      const llvm::json::Object *o = v.getAsObject();
      std::optional<int64_t> id = o ? o->getInteger("id") : std::nullopt;
      std::optional<StringRef> content = o ? o->getString("content") : std::nullopt;
      if (!id || *id < 0 || *id > (1 << 24) || !content || content->empty())
        return err("'added_tokens' entries need an 'id' and a 'content'");
      setToken(uint32_t(*id), content->str());
      added.push_back(uint32_t(*id));
    }

  return buildTable(tokens, mergeTable, added,
                    model->getBoolean("ignore_merges").value_or(false)
                        ? LOWBIT_TOKENIZER_IGNORE_MERGES
                        : 0);
}

llvm::Expected<std::vector<uint8_t>>
mlir::lowbit::compileTokenizer(const GGUFFile &gguf) {
  auto err = [&](const llvm::Twine &msg) { return gguf.error(msg); };
  auto model = gguf.getString("tokenizer.ggml.model");
  if (!model)
    return model.takeError();
  if (!*model)
    return err("no tokenizer in the file (metadata 'tokenizer.ggml.model'); "
               "--tokenizer=FILE embeds a tokenizer.json");
  if (**model != "gpt2")
    return err("tokenizer.ggml.model '" + **model +
               "' is not supported: lowbit implements byte-level BPE "
               "(\"gpt2\"); --tokenizer=FILE embeds a tokenizer.json");
  // llama.cpp's names for the Llama-3 pre-tokenizer, whose merges it skips
  // for a pre-token that is a whole vocabulary entry (ignore_merges).
  auto pre = gguf.getString("tokenizer.ggml.pre");
  if (!pre)
    return pre.takeError();
  if (!*pre ||
      (**pre != "llama-bpe" && **pre != "llama3" && **pre != "llama-v3"))
    return err("tokenizer.ggml.pre '" + (*pre ? **pre : StringRef("")) +
               "' is not supported: lowbit implements the Llama-3 "
               "pre-tokenizer (\"llama-bpe\"); --tokenizer=FILE embeds a "
               "tokenizer.json");
  auto toks = gguf.getArray("tokenizer.ggml.tokens", GGUFValue::String);
  if (!toks)
    return toks.takeError();
  auto merges = gguf.getArray("tokenizer.ggml.merges", GGUFValue::String);
  if (!merges)
    return merges.takeError();
  if (!*toks || !*merges)
    return err("byte-level BPE needs metadata 'tokenizer.ggml.tokens' and "
               "'tokenizer.ggml.merges'");
  auto types = gguf.getArray("tokenizer.ggml.token_type", GGUFValue::I32);
  if (!types)
    return types.takeError();
  const std::vector<StringRef> &vocab = (*toks)->strings;
  if (vocab.size() > (1u << 24))
    return err("tokenizer.ggml.tokens has " + llvm::Twine(vocab.size()) +
               " tokens, more than lowbit's 2^24");
  if (*types && (*types)->count != vocab.size())
    return err("tokenizer.ggml.token_type has " + llvm::Twine((*types)->count) +
               " entries for " + llvm::Twine(vocab.size()) + " tokens");

  // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user
  // defined, 5 unused, 6 byte. Control and user-defined tokens are matched
  // as written (added tokens); unused ones never appear.
  auto u2b = unicodeToBytes();
  std::vector<std::string> tokens(vocab.size());
  std::vector<uint32_t> added;
  llvm::StringMap<uint32_t> ids;
  for (auto [id, s] : llvm::enumerate(vocab)) {
    int64_t type = *types ? GGUFFile::intAt(**types, id) : 1;
    if (type == 5)
      continue;
    if (type == 3 || type == 4) {
      if (s.empty())
        return err("tokenizer.ggml.tokens: special token " + llvm::Twine(id) +
                   " is empty");
      tokens[id] = s.str();
      added.push_back(uint32_t(id));
      continue;
    }
    if (!byteLevelDecode(s, u2b, tokens[id]))
      return err("tokenizer.ggml.tokens: token " + llvm::Twine(id) + " '" + s +
                 "' is not byte-level encoded UTF-8");
    ids.try_emplace(s, uint32_t(id));
  }
  std::vector<uint32_t> mergeTable;
  for (StringRef m : (*merges)->strings) {
    auto [left, right] = m.split(' ');
    auto l = ids.find(left), r = ids.find(right),
         c = ids.find((left + right).str());
    if (right.empty() || l == ids.end() || r == ids.end() || c == ids.end())
      return err("tokenizer.ggml.merges: merge '" + m +
                 "' names tokens not in the vocabulary");
    mergeTable.insert(mergeTable.end(), {l->second, r->second, c->second});
  }
  return buildTable(tokens, mergeTable, added, LOWBIT_TOKENIZER_IGNORE_MERGES);
}
