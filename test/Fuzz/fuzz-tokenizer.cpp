//===- fuzz-tokenizer.cpp - libFuzzer target: tokenizer.json --------------===//
//
// Any bytes as tokenizer.json: compileTokenizer() accepts or returns an
// error; a table it writes loads in the runtime, and text encodes to ids
// whose pieces exist.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"
#include "lowbit/Importer/Tokenizer.h"

extern "C" {
#include "lowbit_tok.h"
}

#include <cstring>

using namespace mlir::lowbit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto table = lowbit_fuzz::parseInput(
      "tokenizer.json", data, size,
      [](const std::string &path) { return compileTokenizer(path); });
  if (!table)
    return 0;
  lowbit_tokenizer tok;
  if (lowbit_tok_load(&tok, table->data(), table->size()) != 0)
    abort(); // the compiler wrote a table its runtime refuses
  static const char kText[] = "In the beginning, 1234 caf\xc3\xa9s  \n\t!";
  lowbit_tok_ids ids = {nullptr, 0, 0};
  if (lowbit_tok_encode(&tok, kText, sizeof kText - 1, &ids) != 0)
    abort();
  // Every id names a non-empty piece (bytes absent from a fuzzed vocab are
  // dropped, so the pieces need not spell the whole text).
  for (size_t i = 0; i < ids.n; ++i) {
    size_t len = 0;
    if (!lowbit_tok_piece(&tok, ids.ids[i], &len) || len == 0)
      abort();
  }
  free(ids.ids);
  lowbit_tok_free(&tok);
  return 0;
}
