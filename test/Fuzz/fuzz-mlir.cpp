//===- fuzz-mlir.cpp - libFuzzer target: .mlir input ----------------------===//
//
// Any bytes as a .mlir file (lowbitc and lowbit-opt read them from users):
// parsing with the bitnet and lowbit dialects (their custom types,
// attributes and op syntax, compiled into this target with coverage) either
// fails or gives a module that verifies, prints, and parses back from its
// printed form to the same printed form.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Dialect/BitNet/IR/BitNetDialect.h"
#include "lowbit/Dialect/LowBit/IR/LowBitDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cstdlib>
#include <string>

using namespace mlir;

// LLVM's allocators poison and unpoison their memory by hand when compiled
// with AddressSanitizer; here that happens in this target's inlined copies
// but not in libMLIR.so's, whose memmove then reads memory marked poisoned.
// Manual poisoning is switched off; heap errors are still reported.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

static MLIRContext &context() {
  static MLIRContext *ctx = [] {
    DialectRegistry registry;
    registry
        .insert<bitnet::BitNetDialect, lowbit::LowBitDialect, func::FuncDialect,
                arith::ArithDialect, tensor::TensorDialect>();
    auto *c = new MLIRContext(registry, MLIRContext::Threading::DISABLED);
    c->loadAllAvailableDialects();
    // Parse errors are expected; they need not be printed.
    c->getDiagEngine().registerHandler([](Diagnostic &) { return success(); });
    return c;
  }();
  return *ctx;
}

static std::string print(ModuleOp m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  m.print(os);
  return s;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  // MLIR's lexer reads the byte after the text, as files give it (a NUL).
  std::string text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &ctx);
  if (!module)
    return 0;
  if (failed(verify(*module)))
    abort(); // the parser returned a module that does not verify
  std::string printed = print(*module);
  OwningOpRef<ModuleOp> again = parseSourceString<ModuleOp>(printed, &ctx);
  if (!again || print(*again) != printed)
    abort(); // the printed form does not parse back to itself
  return 0;
}
