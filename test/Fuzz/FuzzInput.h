//===- FuzzInput.h - fuzz inputs as files the parsers open -----*- C++ -*-===//
//
// The parsers under fuzz take paths (they map files), so each input is
// written to one scratch file per process, under a directory of its own so
// that a parser that looks for sibling files (shards) finds none.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TEST_FUZZ_FUZZINPUT_H
#define LOWBIT_TEST_FUZZ_FUZZINPUT_H

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace lowbit_fuzz {

/// This process's scratch directory, removed when the process exits.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    llvm::SmallString<128> d;
    if (llvm::sys::fs::createUniqueDirectory("lowbit-fuzz", d))
      abort();
    path = std::string(d);
  }
  ~ScratchDir() { llvm::sys::fs::remove_directories(path); }
};

/// The path `name` in this process's scratch directory, holding `data`.
inline std::string writeInput(const char *name, const uint8_t *data,
                              size_t size) {
  static ScratchDir dir;
  llvm::SmallString<128> path(dir.path);
  llvm::sys::path::append(path, name);
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    abort();
  os.write(reinterpret_cast<const char *>(data), size);
  os.close();
  if (os.has_error())
    abort();
  return std::string(path);
}

/// Drops a parser's error; prints it when LOWBIT_FUZZ_VERBOSE is set (to
/// see why a seed or a reproducer is refused).
inline void dropError(llvm::Error e) {
  if (getenv("LOWBIT_FUZZ_VERBOSE"))
    llvm::errs() << llvm::toString(std::move(e)) << "\n";
  else
    llvm::consumeError(std::move(e));
}

/// `parse(path)` of the input written as `name`: its value, or nullopt
/// (the error dropped).
template <typename Parse>
auto parseInput(const char *name, const uint8_t *data, size_t size,
                Parse parse) {
  auto parsed = parse(writeInput(name, data, size));
  using T = typename decltype(parsed)::value_type;
  std::optional<T> out;
  if (parsed)
    out = std::move(*parsed);
  else
    dropError(parsed.takeError());
  return out;
}

} // namespace lowbit_fuzz

#endif // LOWBIT_TEST_FUZZ_FUZZINPUT_H
