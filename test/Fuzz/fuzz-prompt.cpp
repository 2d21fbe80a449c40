//===- fuzz-prompt.cpp - libFuzzer target: prompt text --------------------===//
//
// Any bytes as a prompt (invalid UTF-8, NULs, long runs) for the shipped
// model's tokenizer (LOWBIT_FUZZ_TOKENIZER, compiled once): encoding never
// fails and the ids' pieces spell the bytes back.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Importer/Tokenizer.h"

extern "C" {
#include "lowbit_tok.h"
}

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace mlir::lowbit;

static const lowbit_tokenizer &tokenizer() {
  static std::vector<uint8_t> table;
  static lowbit_tokenizer tok;
  static bool loaded = [] {
    auto t = compileTokenizer(LOWBIT_FUZZ_TOKENIZER);
    if (!t) {
      llvm::errs() << llvm::toString(t.takeError()) << "\n";
      abort();
    }
    table = std::move(*t);
    if (lowbit_tok_load(&tok, table.data(), table.size()) != 0)
      abort();
    return true;
  }();
  (void)loaded;
  return tok;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const lowbit_tokenizer &tok = tokenizer();
  lowbit_tok_ids ids = {nullptr, 0, 0};
  if (lowbit_tok_encode(&tok, reinterpret_cast<const char *>(data), size,
                        &ids) != 0)
    abort();
  std::string back;
  for (size_t i = 0; i < ids.n; ++i) {
    size_t len = 0;
    const uint8_t *piece = lowbit_tok_piece(&tok, ids.ids[i], &len);
    if (!piece)
      abort();
    back.append(reinterpret_cast<const char *>(piece), len);
  }
  free(ids.ids);
  if (back.size() != size || memcmp(back.data(), data, size) != 0)
    abort();
  return 0;
}
