//===- GGUF.cpp - validated, memory-mapped GGUF model files ---------------===//

#include "lowbit/Importer/GGUF.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <cstring>

using namespace mlir::lowbit;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

namespace {

/// GGML tensor types: the id, llama.cpp's name, values per block and bytes
/// per block, and the dtype lowbit reads them as (none: refused when used).
struct GGMLType {
  uint32_t id;
  const char *name;
  int64_t block, bytes;
  std::optional<DType> dtype;
};
constexpr uint32_t kI2S = 36;
const GGMLType kTypes[] = {
    {0, "F32", 1, 4, DType::F32},
    {1, "F16", 1, 2, DType::F16},
    {2, "Q4_0", 32, 18, DType::Q4_0},
    {3, "Q4_1", 32, 20, DType::Q4_1},
    {6, "Q5_0", 32, 22, DType::Q5_0},
    {7, "Q5_1", 32, 24, DType::Q5_1},
    {8, "Q8_0", 32, 34, DType::Q8_0},
    {9, "Q8_1", 32, 36, {}},
    {10, "Q2_K", 256, 84, {}},
    {11, "Q3_K", 256, 110, {}},
    {12, "Q4_K", 256, 144, DType::Q4_K},
    {13, "Q5_K", 256, 176, DType::Q5_K},
    {14, "Q6_K", 256, 210, DType::Q6_K},
    {15, "Q8_K", 256, 292, {}},
    {16, "IQ2_XXS", 256, 66, {}},
    {17, "IQ2_XS", 256, 74, {}},
    {18, "IQ3_XXS", 256, 98, {}},
    {19, "IQ1_S", 256, 50, {}},
    {20, "IQ4_NL", 32, 18, {}},
    {21, "IQ3_S", 256, 110, {}},
    {22, "IQ2_S", 256, 82, {}},
    {23, "IQ4_XS", 256, 136, {}},
    {24, "I8", 1, 1, {}},
    {25, "I16", 1, 2, {}},
    {26, "I32", 1, 4, {}},
    {27, "I64", 1, 8, {}},
    {28, "F64", 1, 8, {}},
    {29, "IQ1_M", 256, 56, {}},
    {30, "BF16", 1, 2, DType::BF16},
    {34, "TQ1_0", 256, 54, DType::TQ1_0},
    {35, "TQ2_0", 256, 66, DType::TQ2_0},
    {kI2S, "I2_S", 128, 32, DType::I2_S},
    {39, "MXFP4", 32, 17, {}},
};

const GGMLType *findType(uint32_t id) {
  for (const GGMLType &t : kTypes)
    if (t.id == id)
      return &t;
  return nullptr;
}

/// A bounds-checked little-endian cursor over the file's header.
class Cursor {
public:
  Cursor(const uint8_t *begin, const uint8_t *end) : p(begin), end(end) {}
  uint64_t left() const { return uint64_t(end - p); }
  size_t offset(const uint8_t *base) const { return size_t(p - base); }
  bool take(uint64_t n, const uint8_t *&out) {
    if (n > left())
      return false;
    out = p;
    p += n;
    return true;
  }
  template <typename T> bool read(T &v) {
    const uint8_t *q;
    if (!take(sizeof(T), q))
      return false;
    v = llvm::support::endian::read<T, llvm::endianness::little>(q);
    return true;
  }
  bool str(StringRef &s) {
    uint64_t n;
    const uint8_t *q;
    if (!read(n) || !take(n, q))
      return false;
    s = StringRef(reinterpret_cast<const char *>(q), n);
    return true;
  }

private:
  const uint8_t *p, *end;
};

unsigned scalarSize(GGUFValue::Type t) {
  switch (t) {
  case GGUFValue::U8:
  case GGUFValue::I8:
  case GGUFValue::Bool:
    return 1;
  case GGUFValue::U16:
  case GGUFValue::I16:
    return 2;
  case GGUFValue::U32:
  case GGUFValue::I32:
  case GGUFValue::F32:
    return 4;
  case GGUFValue::U64:
  case GGUFValue::I64:
  case GGUFValue::F64:
    return 8;
  default:
    return 0;
  }
}

/// Reads the scalar of type `t` at `q` into `v`.
void decodeScalar(GGUFValue::Type t, const uint8_t *q, GGUFValue &v) {
  using namespace llvm::support::endian;
  switch (t) {
  case GGUFValue::U8:
    v.u = q[0];
    v.i = int64_t(v.u);
    break;
  case GGUFValue::I8:
    v.i = int8_t(q[0]);
    break;
  case GGUFValue::Bool:
    v.u = q[0] != 0;
    v.i = int64_t(v.u);
    break;
  case GGUFValue::U16:
    v.u = read16le(q);
    v.i = int64_t(v.u);
    break;
  case GGUFValue::I16:
    v.i = int16_t(read16le(q));
    break;
  case GGUFValue::U32:
    v.u = read32le(q);
    v.i = int64_t(v.u);
    break;
  case GGUFValue::I32:
    v.i = int32_t(read32le(q));
    break;
  case GGUFValue::U64:
    v.u = read64le(q);
    v.i = int64_t(v.u);
    break;
  case GGUFValue::I64:
    v.i = int64_t(read64le(q));
    break;
  case GGUFValue::F32: {
    uint32_t u = read32le(q);
    float f;
    std::memcpy(&f, &u, 4);
    v.f = f;
    break;
  }
  case GGUFValue::F64: {
    uint64_t u = read64le(q);
    std::memcpy(&v.f, &u, 8);
    break;
  }
  default:
    break;
  }
  if (t == GGUFValue::I8 || t == GGUFValue::I16 || t == GGUFValue::I32 ||
      t == GGUFValue::I64)
    v.u = uint64_t(v.i);
}

std::string num(float f) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", double(f));
  return buf;
}

float bf16ToF32(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16ToF32(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f,
           man = h & 0x3ff, u;
  if (exp == 0) {
    float f = float(man) * 0x1p-24f; // exact: a subnormal half, or zero
    return sign ? -f : f;
  }
  if (exp == 31)
    u = sign | 0x7f800000u | (man << 13);
  else
    u = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

} // namespace

StringRef mlir::lowbit::ggufTypeName(GGUFValue::Type t) {
  static const char *names[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                "i32", "f32", "bool", "string", "array",
                                "u64", "i64", "f64"};
  return t <= GGUFValue::F64 ? names[t] : "unknown";
}

Error GGUFFile::error(const Twine &msg) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 filePath + ": " + msg);
}

bool GGUFFile::hasMagic(StringRef path) {
  auto buf = llvm::MemoryBuffer::getFileSlice(path, 4, 0);
  return buf && (*buf)->getBuffer() == "GGUF";
}

Expected<std::unique_ptr<GGUFFile>> GGUFFile::open(StringRef path) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  auto file = std::unique_ptr<GGUFFile>(new GGUFFile());
  file->filePath = path.str();
  if (!bufOr)
    return file->error("cannot open: " + bufOr.getError().message());
  file->buffer = std::move(*bufOr);
  StringRef all = file->buffer->getBuffer();
  const auto *base = reinterpret_cast<const uint8_t *>(all.data());
  Cursor c(base, base + all.size());
  auto truncated = [&](const Twine &what) {
    return file->error("truncated: the file ends inside " + what);
  };

  const uint8_t *magic;
  if (!c.take(4, magic) || std::memcmp(magic, "GGUF", 4) != 0)
    return file->error("not a GGUF file (no 'GGUF' magic)");
  uint32_t version;
  uint64_t nTensors, nKV;
  if (!c.read(version))
    return truncated("the header");
  if (llvm::byteswap(version) == 2 || llvm::byteswap(version) == 3)
    return file->error("a big-endian GGUF file (lowbit reads little-endian "
                       "GGUF)");
  if (version != 2 && version != 3)
    return file->error("GGUF version " + Twine(version) +
                       " is not supported (versions 2 and 3, little-endian)");
  file->fileVersion = version;
  if (!c.read(nTensors) || !c.read(nKV))
    return truncated("the header");
  // Each key/value takes at least 13 bytes, each tensor info 24.
  if (nKV > c.left() / 13)
    return file->error("metadata count " + Twine(nKV) +
                       " is more than the file can hold");

  for (uint64_t k = 0; k < nKV; ++k) {
    StringRef key;
    uint32_t type;
    if (!c.str(key) || !c.read(type))
      return truncated("metadata entry " + Twine(k));
    if (key.empty())
      return file->error("metadata entry " + Twine(k) + " has an empty key");
    auto bad = [&](const Twine &msg) {
      return file->error("metadata '" + key + "': " + msg);
    };
    GGUFValue v;
    if (type > GGUFValue::F64)
      return bad("unknown value type " + Twine(type));
    v.type = GGUFValue::Type(type);
    if (v.type == GGUFValue::String) {
      if (!c.str(v.str))
        return truncated("metadata '" + key + "'");
    } else if (v.type == GGUFValue::Array) {
      uint32_t elem;
      if (!c.read(elem) || !c.read(v.count))
        return truncated("metadata '" + key + "'");
      if (elem > GGUFValue::F64 || elem == GGUFValue::Array)
        return bad(elem == GGUFValue::Array
                       ? Twine("arrays of arrays are not supported")
                       : "unknown array element type " + Twine(elem));
      v.elemType = GGUFValue::Type(elem);
      if (v.elemType == GGUFValue::String) {
        if (v.count > c.left() / 8)
          return bad("array of " + Twine(v.count) +
                     " strings is more than the file can hold");
        v.strings.resize(v.count);
        for (StringRef &s : v.strings)
          if (!c.str(s))
            return truncated("metadata '" + key + "'");
      } else {
        unsigned size = scalarSize(v.elemType);
        const uint8_t *q;
        if (v.count > c.left() / size || !c.take(v.count * size, q))
          return truncated("metadata '" + key + "'");
        v.raw = llvm::ArrayRef<uint8_t>(q, v.count * size);
      }
    } else {
      const uint8_t *q;
      if (!c.take(scalarSize(v.type), q))
        return truncated("metadata '" + key + "'");
      decodeScalar(v.type, q, v);
    }
    if (!file->meta.try_emplace(key, std::move(v)).second)
      return bad("the key appears twice");
  }

  uint64_t alignment = 32;
  if (const GGUFValue *a = file->get("general.alignment")) {
    if (a->type != GGUFValue::U32 || a->u == 0 || !llvm::isPowerOf2_64(a->u))
      return file->error("metadata 'general.alignment' must be a u32 power "
                         "of two");
    alignment = a->u;
  }

  if (nTensors > c.left() / 24)
    return file->error("tensor count " + Twine(nTensors) +
                       " is more than the file can hold");
  struct Pending {
    TensorInfo info;
    uint64_t offset, size;
  };
  std::vector<Pending> pending;
  for (uint64_t t = 0; t < nTensors; ++t) {
    StringRef name;
    uint32_t nDims;
    if (!c.str(name) || !c.read(nDims))
      return truncated("tensor info " + Twine(t));
    auto bad = [&](const Twine &msg) {
      return file->error("tensor '" + name + "': " + msg);
    };
    if (name.empty())
      return file->error("tensor info " + Twine(t) + " has an empty name");
    if (nDims == 0 || nDims > 4)
      return bad(Twine(nDims) + " dimensions (GGUF tensors have 1 to 4)");
    llvm::SmallVector<int64_t, 4> ne(nDims);
    uint64_t elems = 1;
    for (int64_t &d : ne) {
      uint64_t v;
      if (!c.read(v))
        return truncated("tensor info '" + name + "'");
      if (v != 0 && elems > (uint64_t(1) << 62) / v)
        return bad("shape overflows");
      elems *= v;
      d = int64_t(v);
    }
    uint32_t typeId;
    uint64_t offset;
    if (!c.read(typeId) || !c.read(offset))
      return truncated("tensor info '" + name + "'");
    const GGMLType *ty = findType(typeId);
    if (!ty)
      return bad("unknown GGML type " + Twine(typeId));
    if (ne[0] % ty->block != 0)
      return bad("a row of " + Twine(ne[0]) +
                 " values is not a whole number "
                 "of " +
                 ty->name + " blocks of " + Twine(ty->block));
    if (offset % alignment != 0)
      return bad("data offset " + Twine(offset) +
                 " is not a multiple of the alignment " + Twine(alignment));
    uint64_t size = elems / ty->block * ty->bytes;
    if (typeId == kI2S)
      size = elems / 4 + 32; // the codes, then one f32 scale (+ padding)
    Pending p{{}, offset, size};
    p.info.name = name.str();
    p.info.shape.assign(ne.rbegin(), ne.rend());
    if (ty->dtype) {
      p.info.dtype = *ty->dtype;
    } else {
      file->unsupported[name] = ty->name;
      continue;
    }
    pending.push_back(std::move(p));
  }
  uint64_t dataStart = llvm::alignTo(c.offset(base), alignment);
  if (dataStart > all.size())
    return truncated("the padding before the tensor data");
  uint64_t dataSize = all.size() - dataStart;
  for (Pending &p : pending) {
    if (p.offset > dataSize || p.size > dataSize - p.offset)
      return file->error("tensor '" + p.info.name + "': data [" +
                         Twine(p.offset) + ", " + Twine(p.offset + p.size) +
                         ") runs past the " + Twine(dataSize) +
                         "-byte data section");
    p.info.bytes =
        llvm::ArrayRef<uint8_t>(base + dataStart + p.offset, size_t(p.size));
    if (file->index.count(p.info.name) || file->unsupported.count(p.info.name))
      return file->error("tensor '" + p.info.name + "' appears twice");
    file->index[p.info.name] = file->infos.size();
    file->infos.push_back(std::move(p.info));
  }
  return std::move(file);
}

const GGUFValue *GGUFFile::get(StringRef key) const {
  auto it = meta.find(key);
  return it == meta.end() ? nullptr : &it->second;
}

const TensorInfo *GGUFFile::lookup(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &infos[it->second];
}

std::optional<StringRef> GGUFFile::unsupportedType(StringRef name) const {
  auto it = unsupported.find(name);
  if (it == unsupported.end())
    return std::nullopt;
  return StringRef(it->second);
}

Expected<std::optional<uint64_t>> GGUFFile::getUInt(StringRef key) const {
  const GGUFValue *v = get(key);
  if (!v)
    return std::nullopt;
  if (!v->isInteger() || (v->i < 0 && v->type != GGUFValue::U64))
    return error("metadata '" + key + "' must be a non-negative integer, got " +
                 ggufTypeName(v->type) +
                 (v->isInteger() ? " " + Twine(v->i) : Twine()));
  return v->u;
}

Expected<std::optional<double>> GGUFFile::getFloat(StringRef key) const {
  const GGUFValue *v = get(key);
  if (!v)
    return std::nullopt;
  if (v->isFloat())
    return v->f;
  if (v->isInteger())
    return double(v->i);
  return error("metadata '" + key + "' must be a number, got " +
               ggufTypeName(v->type));
}

Expected<std::optional<StringRef>> GGUFFile::getString(StringRef key) const {
  const GGUFValue *v = get(key);
  if (!v)
    return std::nullopt;
  if (v->type != GGUFValue::String)
    return error("metadata '" + key + "' must be a string, got " +
                 ggufTypeName(v->type));
  return v->str;
}

Expected<const GGUFValue *> GGUFFile::getArray(StringRef key,
                                               GGUFValue::Type elem) const {
  const GGUFValue *v = get(key);
  if (!v)
    return nullptr;
  bool ok = v->type == GGUFValue::Array &&
            (elem == GGUFValue::String ? v->elemType == GGUFValue::String
                                       : v->elemType != GGUFValue::String &&
                                             v->elemType != GGUFValue::F32 &&
                                             v->elemType != GGUFValue::F64);
  if (!ok)
    return error("metadata '" + key + "' must be an array of " +
                 (elem == GGUFValue::String ? "strings" : "integers") +
                 ", got " + ggufTypeName(v->type) +
                 (v->type == GGUFValue::Array
                      ? " of " + ggufTypeName(v->elemType)
                      : Twine()));
  return v;
}

int64_t GGUFFile::intAt(const GGUFValue &v, uint64_t i) {
  GGUFValue x;
  decodeScalar(v.elemType, v.raw.data() + i * scalarSize(v.elemType), x);
  return x.i;
}

float mlir::lowbit::floatAt(const TensorInfo &t, int64_t i) {
  return storedFloatAt(t, t.storedIndex(i));
}

float mlir::lowbit::storedFloatAt(const TensorInfo &t, int64_t i) {
  using namespace llvm::support::endian;
  const uint8_t *p = t.bytes.data();
  switch (t.dtype) {
  case DType::BF16:
    return bf16ToF32(read16le(p + 2 * i));
  case DType::F16:
    return f16ToF32(read16le(p + 2 * i));
  case DType::F32: {
    uint32_t u = read32le(p + 4 * i);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  case DType::Q8_0: {
    const uint8_t *blk = p + i / 32 * 34;
    return f16ToF32(read16le(blk)) * float(int8_t(blk[2 + i % 32]));
  }
  case DType::Q4_0:
  case DType::Q4_1: {
    // Blocks of 32: f16 d (Q4_1: and f16 m), then byte j holds values j
    // (low nibble) and j + 16 (high).
    bool q41 = t.dtype == DType::Q4_1;
    const uint8_t *blk = p + i / 32 * (q41 ? 20 : 18);
    int64_t j = i % 32;
    uint8_t byte = blk[(q41 ? 4 : 2) + j % 16];
    int q = j < 16 ? byte & 0xF : byte >> 4;
    float d = f16ToF32(read16le(blk));
    return q41 ? float(q) * d + f16ToF32(read16le(blk + 2)) : float(q - 8) * d;
  }
  case DType::Q5_0:
  case DType::Q5_1: {
    // Blocks of 32: f16 d (Q5_1: and f16 m), 4 bytes of fifth bits (bit j
    // for value j), then byte j holds the low bits of values j (low nibble)
    // and j + 16 (high).
    bool q51 = t.dtype == DType::Q5_1;
    const uint8_t *blk = p + i / 32 * (q51 ? 24 : 22);
    const uint8_t *qh = blk + (q51 ? 4 : 2);
    int64_t j = i % 32;
    uint8_t byte = qh[4 + j % 16];
    int q =
        (j < 16 ? byte & 0xF : byte >> 4) | (((read32le(qh) >> j) & 1) << 4);
    float d = f16ToF32(read16le(blk));
    return q51 ? float(q) * d + f16ToF32(read16le(blk + 2)) : float(q - 16) * d;
  }
  case DType::Q4_K:
  case DType::Q5_K: {
    // Blocks of 256: f16 d, f16 dmin, 12 bytes of eight 6-bit (scale, min)
    // pairs, (Q5_K: 32 bytes of fifth bits, bit 2c + h of byte l for value
    // 64c + 32h + l,) then 128 bytes: per 64 values, byte l holds value l
    // (low nibble) and l + 32 (high).
    bool q5 = t.dtype == DType::Q5_K;
    const uint8_t *blk = p + i / 256 * (q5 ? 176 : 144), *sc = blk + 4;
    int64_t j = i % 256, chunk = j / 64, hi = j % 64 / 32, l = j % 32;
    int64_t s = 2 * chunk + hi;
    uint8_t scale, min;
    if (s < 4) {
      scale = sc[s] & 63;
      min = sc[s + 4] & 63;
    } else {
      scale = (sc[s + 4] & 0xF) | ((sc[s - 4] >> 6) << 4);
      min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
    }
    uint8_t byte = blk[(q5 ? 48 : 16) + chunk * 32 + l];
    int q = hi ? byte >> 4 : byte & 0xF;
    if (q5 && (blk[16 + l] >> s) & 1)
      q += 16;
    float d1 = f16ToF32(read16le(blk)) * float(scale);
    float m1 = f16ToF32(read16le(blk + 2)) * float(min);
    return d1 * float(q) - m1;
  }
  case DType::Q6_K: {
    // Blocks of 256: 128 bytes of low nibbles, 64 of high bit pairs, 16
    // int8 scales (one per 16 values), f16 d; per half of 128 values,
    // quarter k of 32 takes nibble k / 2 of byte l + 32 (k % 2) and bits
    // 2k of high byte l.
    const uint8_t *blk = p + i / 256 * 210;
    int64_t j = i % 256, half = j / 128, k = j % 128 / 32, l = j % 32;
    const uint8_t *ql = blk + half * 64, *qh = blk + 128 + half * 32;
    const int8_t *sc = reinterpret_cast<const int8_t *>(blk + 192) + half * 8;
    uint8_t low = ql[l + 32 * (k % 2)];
    int q =
        ((k < 2 ? low & 0xF : low >> 4) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
    return f16ToF32(read16le(blk + 208)) * float(sc[l / 16 + 2 * k]) * float(q);
  }
  default:
    llvm_unreachable("not a float tensor");
  }
}

Expected<float> mlir::lowbit::decodeTernary(const TensorInfo &t, StringRef file,
                                            int8_t *codes) {
  auto bad = [&](const Twine &msg) -> Error {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   file + ": " + t.describe() + ": " + msg);
  };
  int64_t n = t.numElements();
  int64_t cols = t.shape.empty() ? 1 : t.shape.back();
  auto where = [&](int64_t i) {
    return ("[" + Twine(i / cols) + ", " + Twine(i % cols) + "]").str();
  };
  // Calls fn(s, i) for each stored element s (logical index i) in stored
  // order, so that reads stay sequential, until fn returns false.
  auto forEachStored = [&](auto fn) {
    if (!t.transposed) {
      for (int64_t s = 0; s < n; ++s)
        if (!fn(s, s))
          return;
      return;
    }
    // Tiles of 64 stored rows x 256 of their elements: each tile writes
    // 256 whole cache lines of codes (row by row, a 2B model's codes
    // matrix does not stay in cache).
    int64_t rows = t.shape[0];
    for (int64_t c0 = 0; c0 < cols; c0 += 64)
      for (int64_t r0 = 0; r0 < rows; r0 += 256)
        for (int64_t c = c0; c < std::min(cols, c0 + 64); ++c)
          for (int64_t r = r0; r < std::min(rows, r0 + 256); ++r)
            if (!fn(c * rows + r, r * cols + c))
              return;
  };
  auto code = [&](int64_t i, unsigned v) -> Error {
    if (v > 2)
      return bad("code " + Twine(v) + " at " + where(i) +
                 " is not ternary (0, 1, 2 = -1, 0, +1)");
    codes[i] = int8_t(v) - 1;
    return Error::success();
  };
  switch (t.dtype) {
  case DType::I8: {
    int64_t badI = -1;
    int8_t badV = 0;
    forEachStored([&](int64_t s, int64_t i) {
      int8_t v = int8_t(t.bytes[s]);
      if (v < -1 || v > 1) {
        badI = i;
        badV = v;
        return false;
      }
      codes[i] = v;
      return true;
    });
    if (badI >= 0)
      return bad("code " + Twine(int(badV)) + " at " + where(badI) +
                 " is not -1, 0 or +1");
    return 1.0f;
  }
  case DType::TQ1_0:
  case DType::TQ2_0: {
    bool tq1 = t.dtype == DType::TQ1_0;
    int64_t blockBytes = tq1 ? 54 : 66;
    static const unsigned pow3[5] = {1, 3, 9, 27, 81};
    std::optional<uint16_t> d;
    float firstD = 1.0f;
    for (int64_t bl = 0; bl < n / 256; ++bl) {
      const uint8_t *blk = t.bytes.data() + bl * blockBytes;
      bool any = false;
      for (int64_t j = 0; j < 256; ++j) {
        unsigned v;
        if (!tq1) {
          v = (blk[j / 128 * 32 + j % 32] >> (j % 128 / 32 * 2)) & 3;
        } else {
          // Five trits per byte, the first the most significant: byte q
          // holds ceil(value * 256 / 243); multiplying by 3^k (mod 256)
          // brings trit k to the top, and (x * 3) >> 8 reads it.
          unsigned q, k;
          if (j < 160)
            q = blk[j % 32], k = unsigned(j / 32);
          else if (j < 240)
            q = blk[32 + (j - 160) % 16], k = unsigned((j - 160) / 16);
          else
            q = blk[48 + (j - 240) % 4], k = unsigned((j - 240) / 4);
          v = (((q * pow3[k]) & 255) * 3) >> 8;
        }
        if (Error e = code(bl * 256 + j, v))
          return std::move(e);
        any |= v != 1;
      }
      uint16_t bits = llvm::support::endian::read16le(blk + blockBytes - 2);
      if (!any)
        continue;
      if (!d) {
        d = bits;
        firstD = f16ToF32(bits);
      } else if (*d != bits) {
        return bad("its " + Twine(dtypeName(t.dtype)) +
                   " blocks have different scales (" + num(firstD) + " and " +
                   num(f16ToF32(bits)) + " in block " + Twine(bl) +
                   "); BitNet weights have one scale per tensor");
      }
    }
    if (!(std::isfinite(firstD) && firstD > 0.0f))
      return bad("scale " + num(firstD) + " is not a positive number");
    return firstD;
  }
  case DType::I2_S: {
    // bitnet.cpp's x86 layout: per block of 128 codes, 32 bytes; code j at
    // byte j % 32, bits 6 - 2 (j / 32).
    for (int64_t i = 0; i < n; ++i) {
      int64_t j = i % 128;
      unsigned v = (t.bytes[i / 128 * 32 + j % 32] >> (6 - 2 * (j / 32))) & 3;
      if (Error e = code(i, v))
        return std::move(e);
    }
    uint32_t u = llvm::support::endian::read32le(t.bytes.data() + n / 4);
    float s;
    std::memcpy(&s, &u, 4);
    if (!(std::isfinite(s) && s > 0.0f))
      return bad("scale " + num(s) + " is not a positive number");
    return s;
  }
  case DType::F32:
  case DType::F16:
  case DType::BF16: {
    // One loop per element type, the load inlined (2B-parameter models go
    // through here).
    auto run = [&](auto load) -> Expected<float> {
      float alpha = 0.0f;
      int64_t nonFinite = -1;
      forEachStored([&](int64_t s, int64_t i) {
        float w = load(s);
        if (!std::isfinite(w)) {
          nonFinite = i;
          return false;
        }
        alpha = std::max(alpha, std::fabs(w));
        return true;
      });
      if (nonFinite >= 0)
        return bad("value at " + where(nonFinite) + " is not finite");
      float tol = alpha * 1e-3f;
      int64_t badI = -1;
      float badW = 0.0f;
      forEachStored([&](int64_t s, int64_t i) {
        float w = load(s), a = std::fabs(w);
        if (a <= tol) {
          codes[i] = 0;
        } else if (std::fabs(a - alpha) <= tol) {
          codes[i] = w > 0 ? 1 : -1;
        } else {
          badI = i;
          badW = w;
          return false;
        }
        return true;
      });
      if (badI >= 0) {
        std::string msg;
        llvm::raw_string_ostream os(msg);
        os << "value " << llvm::format("%g", badW) << " at " << where(badI)
           << " is neither 0 nor +-" << llvm::format("%g", alpha)
           << ": not a ternary (BitNet b1.58) weight";
        return bad(msg);
      }
      return alpha > 0.0f ? alpha : 1.0f;
    };
    using namespace llvm::support::endian;
    const uint8_t *p = t.bytes.data();
    if (t.dtype == DType::F16) {
      // Every half's float, built once (256 KiB).
      static const std::vector<float> table = [] {
        std::vector<float> v(65536);
        for (uint32_t h = 0; h < 65536; ++h)
          v[h] = f16ToF32(uint16_t(h));
        return v;
      }();
      return run([&](int64_t s) { return table[read16le(p + 2 * s)]; });
    }
    if (t.dtype == DType::BF16)
      return run([&](int64_t s) { return bf16ToF32(read16le(p + 2 * s)); });
    return run([&](int64_t s) {
      uint32_t u = read32le(p + 4 * s);
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    });
  }
  default:
    return bad("dtype " + dtypeName(t.dtype) + " holds no ternary weights");
  }
}
