//===- Tokenizer.cpp - tokenizer.json -> the runtime's binary table -------===//

#include "lowbit/Importer/Tokenizer.h"

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
    StringRef s = kv.first;
    const llvm::UTF8 *p = reinterpret_cast<const llvm::UTF8 *>(s.data());
    const llvm::UTF8 *end = p + s.size();
    while (p < end) {
      llvm::UTF32 cp;
      if (llvm::convertUTF8Sequence(&p, end, &cp, llvm::strictConversion) !=
          llvm::conversionOK)
        return err("vocab entry '" + kv.first.str() + "' is not UTF-8");
      auto it = u2b.find(cp);
      if (it == u2b.end())
        return err("vocab entry '" + kv.first.str() +
                   "' is not byte-level encoded");
      bytes.push_back(char(it->second));
    }
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

  lowbit_tokenizer_header h = {};
  std::memcpy(h.magic, LOWBIT_TOKENIZER_MAGIC, 8);
  h.n_tokens = uint32_t(tokens.size());
  h.n_merges = uint32_t(mergeTable.size() / 3);
  h.n_added = uint32_t(added.size());
  h.flags = model->getBoolean("ignore_merges").value_or(false)
                ? LOWBIT_TOKENIZER_IGNORE_MERGES
                : 0;
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
