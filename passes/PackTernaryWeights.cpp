//===- PackTernaryWeights.cpp - checkpoint tensors -> one packed blob -----===//

#include "lowbit/Transforms/Passes.h"

#include "lowbit/Importer/GGUF.h"
#include "lowbit_abi.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

namespace mlir::lowbit {
#define GEN_PASS_DEF_PACKTERNARYWEIGHTSPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// Codes per tiles2 / cols2 block, and its bytes; rows per tiles2 tile.
constexpr int64_t kBlockCodes = 256, kBlockBytes = 64, kAlign = 64,
                  kTileRows = 16;

/// The row (of 32) whose code byte j of a cols2 block quarter holds: bytes
/// 8..15 and 16..23 swap, as vpunpck{l,h}bw pick bytes 0..7 and 16..23
/// (low) and 8..15 and 24..31 (high) of a 256-bit register.
int64_t cols2Row(int64_t j) {
  return j < 8 || j >= 24 ? j : j < 16 ? j + 8 : j - 8;
}

/// Writes the blob, keeping lowbit_abi.h's checksum as it goes.
class BlobWriter {
public:
  explicit BlobWriter(llvm::raw_ostream &os) : os(os) {}
  void write(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      word |= uint64_t(p[i]) << (8 * (offset % 8));
      if (++offset % 8 == 0) {
        hash = lowbit_checksum_step(hash, word);
        word = 0;
      }
    }
    os.write(reinterpret_cast<const char *>(p), n);
  }
  void align() {
    static const uint8_t zeros[kAlign] = {};
    write(zeros, (kAlign - offset % kAlign) % kAlign);
  }
  uint64_t size() const { return offset; }
  uint64_t checksum() const {
    uint64_t h = hash;
    for (uint64_t i = 0; i < offset % 8; ++i)
      h = lowbit_checksum_step(h, (word >> (8 * i)) & 0xff);
    return h;
  }

private:
  llvm::raw_ostream &os;
  uint64_t offset = 0, word = 0, hash = LOWBIT_CHECKSUM_INIT;
};

/// Writes codes [n, k] (-1, 0, 1) in the lut3 layout (LowBitAttrs.td):
/// per block of 32 rows and octet of 8 groups of 3 codes along K, 4 x 32
/// nibble-pair bytes and 32 sign bytes. A group's index c = 9 (w0+1) +
/// 3 (w1+1) + (w2+1) is stored as m = |c - 13| and sign(c - 13); codes past
/// n or k are zero.
void packLut3(const std::vector<int8_t> &codes, int64_t n, int64_t k,
              BlobWriter &blob) {
  int64_t octets = llvm::divideCeil(k, 24);
  std::vector<uint8_t> block(size_t(octets * 160));
  for (int64_t r0 = 0; r0 < n; r0 += 32) {
    std::fill(block.begin(), block.end(), 0);
    for (int64_t r = 0; r < 32 && r0 + r < n; ++r) {
      const int8_t *row = &codes[size_t((r0 + r) * k)];
      for (int64_t g = 0; g < octets * 8; ++g) {
        int c = 0;
        for (int64_t i = 0; i < 3; ++i)
          c = 3 * c + (3 * g + i < k ? row[3 * g + i] : 0) + 1;
        int m = c >= 13 ? c - 13 : 13 - c;
        uint8_t *at = &block[size_t(g / 8 * 160)];
        int64_t j = g % 8;
        at[32 * (j / 2) + r] |= uint8_t(m << (4 * (j % 2)));
        if (c < 13)
          at[128 + r] |= uint8_t(1 << j);
      }
    }
    blob.write(block.data(), block.size());
  }
}

struct PackTernaryWeightsPass
    : lowbit::impl::PackTernaryWeightsPassBase<PackTernaryWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (module->hasAttr("lowbit.blob"))
      return; // already packed (IR resumed after the pack phase)
    auto dirAttr = module->getAttrOfType<StringAttr>("lowbit.model_dir");
    if (!dirAttr) {
      module.emitError("lowbit-pack-ternary-weights: the module has no "
                       "'lowbit.model_dir' (import a model directory first)");
      return signalPassFailure();
    }
    if (blobPath.empty()) {
      module.emitError("lowbit-pack-ternary-weights: the blob-path option is "
                       "required");
      return signalPassFailure();
    }
    auto source = WeightSource::open(dirAttr.getValue());
    if (!source) {
      module.emitError(llvm::toString(source.takeError()));
      return signalPassFailure();
    }
    std::error_code ec;
    llvm::raw_fd_ostream os(blobPath, ec, llvm::sys::fs::OF_None);
    if (ec) {
      module.emitError() << blobPath << ": cannot write: " << ec.message();
      return signalPassFailure();
    }
    BlobWriter blob(os);
    Builder b(module.getContext());

    // Progress, on a terminal only: percent of the referenced tensor bytes.
    bool showProgress = llvm::sys::Process::StandardErrIsDisplayed();
    uint64_t totalBytes = 0, doneBytes = 0;
    int shownPercent = -1;
    if (showProgress) {
      llvm::StringSet<> seen;
      module.walk([&](Operation *op) {
        for (NamedAttribute attr : op->getAttrs())
          if (auto p = dyn_cast<ParamAttr>(attr.getValue()))
            if (seen.insert(p.getName()).second)
              if (const TensorInfo *t = (*source)->lookup(p.getName()))
                totalBytes += t->bytes.size();
      });
    }
    auto progress = [&](const TensorInfo &t) {
      doneBytes += t.bytes.size();
      if (!showProgress || totalBytes == 0)
        return;
      int percent = int(100 * doneBytes / totalBytes);
      if (percent != shownPercent) {
        llvm::errs() << "\rlowbitc: packing weights " << percent << "%";
        if (percent == 100)
          llvm::errs() << "\n";
        shownPercent = percent;
      }
    };
    llvm::StringMap<Attribute> entries;
    bool failedAny = false;

    auto lookup = [&](Operation *op, ParamAttr p) -> const TensorInfo * {
      const TensorInfo *t = (*source)->lookup(p.getName());
      if (!t)
        op->emitError() << "tensor '" << p.getName() << "' is not in "
                        << dirAttr.getValue();
      else if (t->numElements() != p.getNumElements())
        op->emitError() << "tensor '" << p.getName()
                        << "' changed since import";
      else
        return t;
      failedAny = true;
      return nullptr;
    };
    auto record = [&](StringRef name, uint64_t offset, StringRef kind) {
      entries[name] = b.getArrayAttr(
          {b.getI64IntegerAttr(offset), b.getStringAttr(kind)});
    };

    // Ternary weights first, in program order.
    module.walk([&](WeightOp op) {
      ParamAttr src = op.getSource();
      if (entries.count(src.getName()))
        return;
      const TensorInfo *t = lookup(op, src);
      if (!t)
        return;
      TernaryType ty = op.getType();
      int64_t n = ty.getRows(), k = ty.getCols();
      std::vector<int8_t> codes(size_t(n * k));
      float alpha;
      if (t->dtype == DType::U8) {
        assert(!t->transposed && "packed U8 is read as stored");
        int64_t r = n / 4;
        for (int64_t i = 0; i < 4; ++i)
          for (int64_t row = 0; row < r; ++row)
            for (int64_t c = 0; c < k; ++c)
              codes[(i * r + row) * k + c] =
                  int8_t((t->bytes[row * k + c] >> (2 * i)) & 3) - 1;
        const TensorInfo *s = lookup(op, *op.getScale());
        if (!s)
          return;
        alpha = floatAt(*s, 0);
      } else if (src.getType().getElementType().isSignlessInteger(8)) {
        // Codes with their own scale (I8: 1; GGUF: the tensor's), times
        // the weight_scale tensor when there is one.
        llvm::Expected<float> own =
            decodeTernary(*t, (*source)->filePath(*t), codes.data());
        if (!own) {
          op.emitError(llvm::toString(own.takeError()));
          failedAny = true;
          return;
        }
        alpha = *own;
        if (op.getScale()) {
          const TensorInfo *s = lookup(op, *op.getScale());
          if (!s)
            return;
          alpha *= floatAt(*s, 0);
        }
      } else {
        // Per-tensor absmean, summed in double and kept in float32.
        double sum = 0.0;
        for (int64_t i = 0; i < n * k; ++i)
          sum += std::fabs(double(floatAt(*t, i)));
        alpha = std::max(float(sum / double(n * k)), 1e-5f);
        for (int64_t i = 0; i < n * k; ++i) {
          double q = std::nearbyint(double(floatAt(*t, i)) / double(alpha));
          codes[i] = int8_t(std::clamp(q, -1.0, 1.0));
        }
      }
      blob.align();
      uint64_t offset = blob.size();
      if (ty.getLayout() == TernaryLayout::lut3) {
        packLut3(codes, n, k, blob);
        record(src.getName(), offset, "lut3");
        (*source)->release(*t);
        progress(*t);
        op.setAlphaAttr(b.getF32FloatAttr(alpha));
        return;
      }
      // tiles2: rows in tiles of kTileRows; per tile and block of 256 codes
      // along K, each row's 64-byte block in turn (rows past N are zero
      // codes). Byte j of a block holds codes j, j+64, j+128, j+192 in its
      // bit pairs, as code + 1 (0 = -1, 1 = 0, 2 = +1). cols2: per column,
      // its blocks along N (a non-zero input's column streams through
      // memory in order; a zero input's is skipped whole), each block two
      // 32-byte halves of 128 rows; bit pair i
      // of byte j of half h holds row 128 h + 32 i + cols2Row(j), so that
      // interleaving the bytes of two columns (unpack low / high per 128-bit
      // lane) yields rows in order (GenerateKernels, lowerSparseMatmul).
      bool cols = ty.getLayout() == TernaryLayout::cols2;
      int64_t lines = cols ? k : n, along = cols ? n : k;
      int64_t blocks = llvm::divideCeil(along, kBlockCodes);
      int64_t group = cols ? 1 : kTileRows;
      // One group of lines, block-major: block bl of line l at
      // (bl * group + l) * kBlockBytes.
      std::vector<uint8_t> chunk(size_t(group * blocks * kBlockBytes));
      for (int64_t l0 = 0; l0 < lines; l0 += group) {
        for (int64_t r = 0; r < group; ++r) {
          int64_t l = l0 + r;
          for (int64_t bl = 0; bl < blocks; ++bl)
            for (int64_t j = 0; j < kBlockBytes; ++j) {
              uint8_t byte = 0;
              for (int64_t i = 0; i < 4; ++i) {
                int64_t c = bl * kBlockCodes +
                            (cols ? j / 32 * 128 + i * 32 + cols2Row(j % 32)
                                  : i * kBlockBytes + j);
                int code = c >= along || l >= lines ? 0
                           : cols                   ? codes[c * k + l]
                                                    : codes[l * k + c];
                byte |= uint8_t(code + 1) << (2 * i);
              }
              chunk[(bl * group + r) * kBlockBytes + j] = byte;
            }
        }
        blob.write(chunk.data(), chunk.size());
      }
      record(src.getName(), offset, cols ? "cols2" : "tiles2");
      (*source)->release(*t);
      progress(*t);
      op.setAlphaAttr(b.getF32FloatAttr(alpha));
      op.getResult().setType(TernaryType::get(
          op.getContext(), n, k,
          cols ? TernaryLayout::cols2 : TernaryLayout::tiles2));
    });

    // Then every float tensor another op reads.
    module.walk([&](Operation *op) {
      if (isa<WeightOp>(op))
        return;
      for (NamedAttribute attr : op->getAttrs()) {
        auto p = dyn_cast<ParamAttr>(attr.getValue());
        if (!p || entries.count(p.getName()))
          continue;
        const TensorInfo *t = lookup(op, p);
        if (!t)
          continue;
        if (!isFloatLike(t->dtype)) {
          op->emitError() << "tensor '" << p.getName()
                          << "' must be a float tensor";
          failedAny = true;
          continue;
        }
        blob.align();
        uint64_t offset = blob.size();
        // 2-D 16-bit tables (embedding, head) stay as stored; kernels widen
        // them as they read.
        bool keep16 = (t->dtype == DType::BF16 || t->dtype == DType::F16) &&
                      t->shape.size() == 2;
        if (keep16 && !t->transposed) {
          blob.write(t->bytes.data(), t->bytes.size());
        } else if (keep16) {
          // Stored [cols, rows] (an ONNX MatMul's head): a row at a time.
          int64_t rows = t->shape[0], cols = t->shape[1];
          std::vector<uint8_t> row(size_t(2 * cols));
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
              int64_t at = 2 * t->storedIndex(r * cols + c);
              row[2 * c] = t->bytes[at];
              row[2 * c + 1] = t->bytes[at + 1];
            }
            blob.write(row.data(), row.size());
          }
        } else {
          for (int64_t i = 0, e = t->numElements(); i < e; ++i) {
            uint8_t le[4];
            float f = floatAt(*t, i);
            uint32_t u;
            std::memcpy(&u, &f, 4);
            llvm::support::endian::write32le(le, u);
            blob.write(le, 4);
          }
        }
        record(p.getName(), offset,
               !keep16                  ? "f32"
               : t->dtype == DType::F16 ? "f16"
                                        : "bf16");
        (*source)->release(*t);
        progress(*t);
      }
    });
    // A quantized copy of the lm_head (--lm-head=int8|int4). Rounding is
    // half to even.
    // Rows in tiles of kTileRows (zero rows past V): per tile and 64 bytes
    // of a row, the tile's rows in turn, so a tile streams through memory in
    // order.
    // int8: per row s = max|w| / 127, codes q = round(w / s) stored as
    //   q + 128, columns padded to a multiple of 64; then the f32 scales
    //   [V rounded up to 16].
    // int4: per row and block of 64 columns s = max|w| / 7, q = round(w / s)
    //   stored as q + 8 in nibbles, columns padded to a multiple of 128; the
    //   64 bytes of a pair of blocks hold column j of the first block in the
    //   low nibble of byte j and of the second in the high one. Then the f32
    //   scales [V / 16, H / 64, 16].
    if (lmHead == "int8" || lmHead == "int4")
      module.walk([&](bitnet::LMHeadOp op) {
        ParamAttr p = op.getWeight();
        bool int4 = lmHead == "int4";
        std::string key = (p.getName() + "#" + lmHead).str();
        if (entries.count(key))
          return;
        const TensorInfo *t = lookup(op, p);
        if (!t)
          return;
        int64_t v = t->shape[0], h = t->shape[1];
        int64_t hp = int4 ? (h + 127) / 128 * 128 : (h + 63) / 64 * 64;
        int64_t blk = int4 ? 64 : hp, nb = hp / blk;
        int64_t tile = kTileRows, vt = (v + tile - 1) / tile * tile;
        float qmax = int4 ? 7.0f : 127.0f, off = int4 ? 8.0f : 128.0f;
        blob.align();
        uint64_t offset = blob.size();
        // Scales in file order: [vt] (int8) or [vt / 16, nb, 16] (int4).
        std::vector<float> scales(size_t(vt * nb), 1.0f);
        // Codes + off of the tile's rows, [tile, hp].
        std::vector<uint8_t> codes(static_cast<size_t>(tile * hp));
        std::vector<uint8_t> out(static_cast<size_t>(int4 ? tile * hp / 2 : tile * hp));
        for (int64_t r0 = 0; r0 < vt; r0 += tile) {
          for (int64_t ri = 0; ri < tile; ++ri) {
            int64_t r = r0 + ri;
            for (int64_t bi = 0; bi < nb; ++bi) {
              float mx = 0.0f;
              for (int64_t c = bi * blk; r < v && c < std::min(h, (bi + 1) * blk); ++c)
                mx = std::max(mx, std::fabs(floatAt(*t, r * h + c)));
              float sc = mx > 0.0f ? mx / qmax : 1.0f;
              scales[size_t(int4 ? (r0 / tile * nb + bi) * tile + ri
                                 : r * nb + bi)] = sc;
              for (int64_t c = bi * blk; c < (bi + 1) * blk; ++c) {
                float q = r < v && c < h
                              ? std::clamp(std::nearbyint(floatAt(*t, r * h + c) / sc),
                                           -qmax, qmax)
                              : 0.0f;
                codes[size_t(ri * hp + c)] = uint8_t(q + off);
              }
            }
          }
          if (int4) {
            for (int64_t pr = 0; pr < hp / 128; ++pr)
              for (int64_t ri = 0; ri < tile; ++ri)
                for (int64_t j = 0; j < 64; ++j)
                  out[size_t((pr * tile + ri) * 64 + j)] = uint8_t(
                      codes[size_t(ri * hp + pr * 128 + j)] |
                      (codes[size_t(ri * hp + pr * 128 + 64 + j)] << 4));
          } else {
            for (int64_t bl = 0; bl < hp / 64; ++bl)
              for (int64_t ri = 0; ri < tile; ++ri)
                std::memcpy(&out[size_t((bl * tile + ri) * 64)],
                            &codes[size_t(ri * hp + bl * 64)], 64);
          }
          blob.write(out.data(), out.size());
        }
        blob.align();
        for (float sc : scales) {
          uint8_t le[4];
          uint32_t u;
          std::memcpy(&u, &sc, 4);
          llvm::support::endian::write32le(le, u);
          blob.write(le, 4);
        }
        record(key, offset, int4 ? "int4head" : "int8head");
        (*source)->release(*t);
      });
    else if (lmHead != "auto" && lmHead != "bf16" && lmHead != "f16") {
      module.emitError() << "lowbit-pack-ternary-weights: unknown lm-head '"
                         << lmHead << "'; expected auto, f16, int8 or int4";
      failedAny = true;
    }
    blob.align();
    os.close();
    if (showProgress && shownPercent != 100)
      llvm::errs() << "\rlowbitc: packing weights 100%\n";
    if (failedAny || os.has_error()) {
      if (os.has_error())
        module.emitError() << blobPath << ": write failed";
      os.clear_error();
      llvm::sys::fs::remove(blobPath);
      return signalPassFailure();
    }
    SmallVector<NamedAttribute> dict;
    for (auto &e : entries)
      dict.push_back(b.getNamedAttr(e.getKey(), e.getValue()));
    module->setAttr("lowbit.blob", b.getDictionaryAttr(dict));
    module->setAttr("lowbit.blob_size", b.getI64IntegerAttr(blob.size()));
    module->setAttr("lowbit.blob_path", b.getStringAttr(blobPath));
    module->setAttr("lowbit.blob_checksum",
                    b.getI64IntegerAttr(int64_t(blob.checksum())));
  }
};

} // namespace
