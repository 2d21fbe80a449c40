//===- Tokenizer.h - tokenizer.json -> the runtime's binary table -*- C++ -*-//

#ifndef LOWBIT_IMPORTER_TOKENIZER_H
#define LOWBIT_IMPORTER_TOKENIZER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <vector>

namespace mlir::lowbit {

/// Reads a Hugging Face tokenizer.json (BPE, Llama-3 split regex, byte-level)
/// and returns the binary table of runtime/include/lowbit_abi.h. Errors name
/// the file and the field.
llvm::Expected<std::vector<uint8_t>> compileTokenizer(llvm::StringRef path);

class GGUFFile;
/// The same from a GGUF file's tokenizer.ggml.* metadata (llama.cpp's "gpt2"
/// model with the Llama-3 pre-tokenizer).
llvm::Expected<std::vector<uint8_t>> compileTokenizer(const GGUFFile &gguf);

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORTER_TOKENIZER_H
