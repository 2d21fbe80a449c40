//===- Safetensors.cpp - validated, memory-mapped safetensors -------------===//

#include "lowbit/Importer/Safetensors.h"
#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/ONNX.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"

#include <algorithm>

#if defined(__unix__)
#include <sys/mman.h>
#include <unistd.h>
#endif

using namespace mlir::lowbit;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

static Error fileError(StringRef path, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": " + msg);
}

StringRef mlir::lowbit::dtypeName(DType d) {
  switch (d) {
  case DType::BF16: return "BF16";
  case DType::F16: return "F16";
  case DType::F32: return "F32";
  case DType::U8: return "U8";
  case DType::I8: return "I8";
  case DType::Q8_0:
    return "Q8_0";
  case DType::Q4_0:
    return "Q4_0";
  case DType::Q4_1:
    return "Q4_1";
  case DType::Q5_0:
    return "Q5_0";
  case DType::Q5_1:
    return "Q5_1";
  case DType::Q4_K:
    return "Q4_K";
  case DType::Q5_K:
    return "Q5_K";
  case DType::Q6_K:
    return "Q6_K";
  case DType::TQ1_0:
    return "TQ1_0";
  case DType::TQ2_0:
    return "TQ2_0";
  case DType::I2_S:
    return "I2_S";
  }
  llvm_unreachable("bad dtype");
}

unsigned mlir::lowbit::dtypeSize(DType d) {
  switch (d) {
  case DType::BF16:
  case DType::F16: return 2;
  case DType::F32: return 4;
  case DType::U8:
  case DType::I8: return 1;
  default:
    llvm_unreachable("a block format has no element size");
  }
}

std::optional<DType> mlir::lowbit::parseDType(StringRef s) {
  for (DType d : {DType::BF16, DType::F16, DType::F32, DType::U8, DType::I8})
    if (s == dtypeName(d))
      return d;
  return std::nullopt;
}

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The safetensors header may hold at most this much JSON (upstream's limit).
static constexpr uint64_t kMaxHeaderBytes = 100u << 20;

Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::open(StringRef path, unsigned fileIndex) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!bufOr)
    return fileError(path, "cannot open: " + bufOr.getError().message());
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->filePath = path.str();
  file->buffer = std::move(*bufOr);
  StringRef all = file->buffer->getBuffer();
  const auto *base = reinterpret_cast<const uint8_t *>(all.data());

  if (all.size() < 8)
    return fileError(path, "truncated: " + llvm::Twine(all.size()) +
                               " bytes, too short for the 8-byte header "
                               "length");
  uint64_t headerLen =
      llvm::support::endian::read64le(reinterpret_cast<const void *>(base));
  if (headerLen > all.size() - 8)
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " runs past the end of the " +
                               llvm::Twine(all.size()) + "-byte file");
  if (headerLen > kMaxHeaderBytes)
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " exceeds the 100 MiB limit");
  StringRef headerText = all.substr(8, headerLen);
  uint64_t dataStart = 8 + headerLen;
  uint64_t dataSize = all.size() - dataStart;

  Expected<llvm::json::Value> parsed = llvm::json::parse(headerText);
  if (!parsed)
    return fileError(path, "malformed JSON header: " +
                               llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root)
    return fileError(path, "header is not a JSON object");

  for (const auto &kv : *root) {
    StringRef name = kv.first;
    if (name == "__metadata__")
      continue;
    auto bad = [&](const llvm::Twine &msg) {
      return fileError(path, "tensor '" + name + "': " + msg);
    };
    const llvm::json::Object *entry = kv.second.getAsObject();
    if (!entry)
      return bad("entry is not a JSON object");
    std::optional<StringRef> dtypeStr = entry->getString("dtype");
    if (!dtypeStr)
      return bad("missing string field 'dtype'");
    std::optional<DType> dtype = parseDType(*dtypeStr);
    if (!dtype)
      return bad("unsupported dtype '" + *dtypeStr +
                 "' (supported: BF16, F16, F32, U8, I8)");
    const llvm::json::Array *shape = entry->getArray("shape");
    if (!shape)
      return bad("missing array field 'shape'");
    const llvm::json::Array *offsets = entry->getArray("data_offsets");
    if (!offsets || offsets->size() != 2)
      return bad("'data_offsets' must be an array of two integers");

    TensorInfo info;
    info.name = name.str();
    info.dtype = *dtype;
    info.file = fileIndex;
    uint64_t elems = 1;
    for (const llvm::json::Value &d : *shape) {
      std::optional<int64_t> v = d.getAsInteger();
      if (!v || *v < 0)
        return bad("shape entries must be non-negative integers");
      if (*v != 0 && elems > (uint64_t(1) << 62) / uint64_t(*v))
        return bad("shape overflows");
      elems *= uint64_t(*v);
      info.shape.push_back(*v);
    }
    std::optional<int64_t> begin = (*offsets)[0].getAsInteger();
    std::optional<int64_t> end = (*offsets)[1].getAsInteger();
    if (!begin || !end || *begin < 0 || *end < *begin)
      return bad("'data_offsets' must be two integers with 0 <= begin <= end");
    if (uint64_t(*end) > dataSize)
      return bad("data_offsets [" + llvm::Twine(*begin) + ", " +
                 llvm::Twine(*end) + ") out of range: the data section has " +
                 llvm::Twine(dataSize) + " bytes");
    uint64_t expected = elems * dtypeSize(*dtype);
    if (uint64_t(*end - *begin) != expected)
      return bad("byte length " + llvm::Twine(*end - *begin) +
                 " does not match dtype " + dtypeName(*dtype) + " x shape (" +
                 llvm::Twine(expected) + " bytes)");
    info.bytes = llvm::ArrayRef<uint8_t>(base + dataStart + *begin,
                                         size_t(*end - *begin));
    file->infos.push_back(std::move(info));
  }

  // Tensors must not overlap (files from the reference writer are also
  // contiguous, but contiguity is not required by the format). An empty
  // tensor overlaps nothing, wherever its offsets point.
  llvm::sort(file->infos, [](const TensorInfo &a, const TensorInfo &b) {
    return std::make_pair(a.bytes.data(), a.bytes.size()) <
           std::make_pair(b.bytes.data(), b.bytes.size());
  });
  const TensorInfo *prev = nullptr;
  for (const TensorInfo &cur : file->infos) {
    if (cur.bytes.empty())
      continue;
    if (prev && cur.bytes.data() < prev->bytes.data() + prev->bytes.size())
      return fileError(path, "tensors '" + prev->name + "' and '" + cur.name +
                                 "' overlap");
    prev = &cur;
  }
  for (auto [i, info] : llvm::enumerate(file->infos))
    file->index[info.name] = i;
  return std::move(file);
}

const TensorInfo *SafetensorsFile::lookup(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &infos[it->second];
}

WeightSource::WeightSource() = default;
WeightSource::~WeightSource() = default;

Expected<std::unique_ptr<WeightSource>> WeightSource::open(StringRef path) {
  bool isFile = llvm::sys::fs::is_regular_file(path);
  if (!(isFile && GGUFFile::hasMagic(path))) {
    std::string onnxPath = ONNXModel::modelFile(path);
    if (onnxPath.empty()) {
      if (!isFile)
        return openDirectory(path);
      return fileError(path, "neither a GGUF file nor an ONNX model (.onnx)");
    }
    auto model = ONNXModel::open(onnxPath);
    if (!model)
      return model.takeError();
    auto src = std::make_unique<WeightSource>();
    src->onnxModel = std::move(*model);
    for (auto &kv : src->onnxModel->weights())
      src->byName[kv.first()] = kv.second;
    return std::move(src);
  }
  auto file = GGUFFile::open(path);
  if (!file)
    return file.takeError();
  auto src = std::make_unique<WeightSource>();
  src->ggufFile = std::move(*file);
  for (const TensorInfo &t : src->ggufFile->tensors())
    src->byName[t.name] = &t;
  return std::move(src);
}

Expected<std::unique_ptr<WeightSource>>
WeightSource::openDirectory(StringRef dir) {
  auto src = std::make_unique<WeightSource>();
  llvm::SmallString<256> single(dir), indexPath(dir);
  llvm::sys::path::append(single, "model.safetensors");
  llvm::sys::path::append(indexPath, "model.safetensors.index.json");

  if (!llvm::sys::fs::exists(indexPath)) {
    if (!llvm::sys::fs::exists(single))
      return fileError(dir, "no model.safetensors or "
                            "model.safetensors.index.json in the model "
                            "directory (nor an ONNX model.onnx)");
    auto file = SafetensorsFile::open(single);
    if (!file)
      return file.takeError();
    src->files.push_back(std::move(*file));
  } else {
    auto bufOr = llvm::MemoryBuffer::getFile(indexPath, /*IsText=*/true);
    if (!bufOr)
      return fileError(indexPath, "cannot open: " + bufOr.getError().message());
    Expected<llvm::json::Value> parsed =
        llvm::json::parse((*bufOr)->getBuffer());
    if (!parsed)
      return fileError(indexPath, "malformed JSON: " +
                                      llvm::toString(parsed.takeError()));
    const llvm::json::Object *root = parsed->getAsObject();
    const llvm::json::Object *map =
        root ? root->getObject("weight_map") : nullptr;
    if (!map)
      return fileError(indexPath, "missing object field 'weight_map'");
    llvm::StringMap<unsigned> shardIndex;
    for (const auto &kv : *map) {
      std::optional<StringRef> shard = kv.second.getAsString();
      if (!shard)
        return fileError(indexPath, "weight_map entry '" + kv.first.str() +
                                        "' is not a file name");
      // Shard names are plain file names inside the model directory.
      if (shard->empty() || shard->contains('/') || shard->contains('\\') ||
          *shard == "." || *shard == "..")
        return fileError(indexPath, "weight_map entry '" + kv.first.str() +
                                        "' names '" + *shard +
                                        "', not a file in the model directory");
      if (!shardIndex.count(*shard)) {
        llvm::SmallString<256> shardPath(dir);
        llvm::sys::path::append(shardPath, *shard);
        auto file = SafetensorsFile::open(shardPath, src->files.size());
        if (!file)
          return file.takeError();
        shardIndex[*shard] = src->files.size();
        src->files.push_back(std::move(*file));
      }
    }
    // Every tensor the index names must be in the shard it names.
    for (const auto &kv : *map) {
      const SafetensorsFile &f =
          *src->files[shardIndex[*kv.second.getAsString()]];
      if (!f.lookup(kv.first))
        return fileError(f.path(), "tensor '" + kv.first.str() +
                                       "' listed in " +
                                       llvm::sys::path::filename(indexPath) +
                                       " is missing");
    }
  }
  for (const auto &file : src->files) {
    for (const TensorInfo &t : file->tensors()) {
      auto [it, inserted] = src->byName.try_emplace(t.name, &t);
      if (!inserted)
        return fileError(file->path(), "tensor '" + t.name +
                                           "' also appears in " +
                                           src->filePath(*it->second));
    }
  }
  return std::move(src);
}

const TensorInfo *WeightSource::lookup(StringRef name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

void WeightSource::release(const TensorInfo &t) const {
#if defined(__unix__)
  if (onnxModel  ? !onnxModel->isMapped(t)
      : ggufFile ? !ggufFile->isMapped()
                 : !files[t.file]->isMapped())
    return;
  uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t begin = uintptr_t(t.bytes.data()), end = begin + t.bytes.size();
  begin = (begin + page - 1) / page * page; // whole pages inside the tensor
  end = end / page * page;
  if (end > begin)
    madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
#else
  (void)t;
#endif
}

StringRef WeightSource::filePath(const TensorInfo &t) const {
  if (onnxModel)
    return onnxModel->path();
  if (ggufFile)
    return ggufFile->path();
  return files[t.file]->path();
}
