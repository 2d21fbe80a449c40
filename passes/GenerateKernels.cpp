//===- GenerateKernels.cpp - the model as vector kernels over memrefs -----===//
//
// Replaces the tensor-level @forward (after select, fuse and pack) with
// @lowbit_forward over memrefs, calling one shape-specialised kernel per op:
//
//   embed       token rows of the embedding table (bf16, f16 or f32) -> f32
//   rmsquant    [RMSNorm +] per-token absmax/absmean quantizer -> i8 codes,
//               scale d = 1/s, code sum (tasks over tokens)
//   tmatmul     codes x tiles2 ternary weights: vpdpbusd (VNNI) / vpmaddubsw
//               (AVX2) / generic, y = (acc - sum q) * d * alpha (tasks over
//               blocks of rows)
//   luttab      per token, 16-entry tables of 3-code sums of INT4 codes
//   lutmatmul   tables x lut3 weights (AVX2): pshufb + psignb, exact sums,
//               y = acc * d * alpha (tasks over 4 blocks of 32 rows)
//   rope        rotate-half, angles and cos/sin in f64
//   attention   appends K/V rows to the cache, causal GQA softmax attention
//               (tasks over heads)
//   rmsnorm, relu2glu, add      row-wise / element-wise vector code
//   lmhead      f32 x bf16/f16/f32 rows -> logits (tasks over blocks of rows)
//
// Every dimension but the token count is a constant. Numerics follow
// reference/bitnet_ref.py: round half to even, eps clamps, f64 sums for the
// RMS and absmean statistics, integer accumulation of quantized products.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Transforms/Passes.h"

#include "lowbit_abi.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <functional>

namespace mlir::lowbit {
#define GEN_PASS_DEF_GENERATEKERNELSPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;
/// Rows of a ternary matmul / lm_head task.
constexpr int64_t kRowBlock = 16;
/// Tokens a ternary matmul kernel takes at once (prefill); AVX2 first takes
/// twice as many (lowerMatmul).
constexpr int64_t kTokenBlock = 4;
/// AVX2 prompt tiles: blocks of 256 codes summed in i16 lanes before
/// widening (see emitTernaryDot).
constexpr int64_t kAvx2Chunk = 8;

int64_t padTo(int64_t v, int64_t m) { return llvm::divideCeil(v, m) * m; }

/// Rows per tile of the tiles2 weight layout (PackTernaryWeights).
constexpr int64_t kTileRows = 16;
static_assert(kRowBlock == kTileRows,
              "a matmul or int4 lm_head task is one tile of weight rows");
/// How far ahead a tile's stream is prefetched, in 1 KiB tile blocks
/// (16 rows x 64 bytes), in the bandwidth-bound tile loops (one token): the
/// hardware prefetchers restart on every call and every chunk a thread
/// takes. 4 KiB ahead measured +5-13 % decode on 2B4T in alternating runs
/// (3 and 6 less, 8 slower than none).
constexpr int64_t kPrefetchBlocks = 4;
/// The same distance in bytes, for streams that are not tiles.
constexpr int64_t kPrefetchBytes = kPrefetchBlocks * kTileRows * 64;

/// Attention prefetches K and V rows this many positions ahead of the ones
/// it loads (V rows also while their scores are computed). 16 measured -10 %
/// attention time per call on 2B4T at 600 positions with the earlier
/// position-major f32 cache (8 and 32: -3 to -5 %); with the head-major
/// cache and chunked tasks, 32 and 64 measured slower than 16. The
/// quantized caches' code rows (a KV head's few bytes of each position's
/// row) were not prefetched before: 2B4T at 1000 positions, 2 threads, an
/// 8-bit cache decoded 54-57 tok/s without, 72-78 with (4-bit 62-68 ->
/// 70-72; a4.8 with 3 bits 50-56 -> 54-56).
constexpr int64_t kAttnPrefetch = 16;

/// Attention splits each token's positions [0, len) into this many chunks
/// of ceil(len / chunks) (split-K / flash-decoding), computed apart and
/// merged; a decoded token runs as num_kv_heads x chunks tasks. Fixed, so a
/// token's result depends neither on the thread count nor on whether it
/// came in a prompt or alone. 8 measured no faster than 4 on 2B4T.
constexpr int64_t kAttnChunks = 4;

/// Zero-skipping matmul (lowerSparseMatmul): pairs of non-zero columns
/// whose products a lane sums in i16 before widening (each pair adds at most
/// 2 x 2 x 128 = 512, and 63 x 512 < 2^15). One token's runs as
/// kSparseGroups tasks (shares of its pairs) taking kSparseRegPairs pairs at
/// a time (summed in registers per 128-row half) and prefetching the columns
/// kSparsePrefetchPairs pairs ahead (2B4T down_proj at density 0.33, 1
/// thread: 4 at a time 8 ahead, 8 at a time 8 or 16 ahead measured alike).
constexpr int64_t kSparseChunk = 63;
constexpr int64_t kSparseGroups = 8, kSparseRegPairs = 4,
                  kSparsePrefetchPairs = 8;

/// The largest scratch buffer a kernel keeps on its thread's stack
/// (Emit::scratch).
constexpr int64_t kMaxStackBuffer = 32 << 10;

/// Small builder helpers shared by every kernel body.
struct Emit {
  OpBuilder &b;
  Location loc;
  /// The kernel's scratch buffers on the heap, freed when it returns.
  SmallVector<Value> heapScratch = {};

  /// A scratch buffer of a kernel body's entry block: on the stack up to
  /// kMaxStackBuffer bytes, else on the heap (a long context's score rows
  /// would overflow a thread's stack: 4 MiB per query head at 2^20
  /// positions).
  Value scratch(MemRefType t) {
    if (t.getNumElements() * t.getElementTypeBitWidth() / 8 <= kMaxStackBuffer)
      return memref::AllocaOp::create(b, loc, t);
    Value m = memref::AllocOp::create(b, loc, t, ValueRange{},
                                      b.getI64IntegerAttr(64));
    heapScratch.push_back(m);
    return m;
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value f64(double v) {
    return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v));
  }
  Value i32(int32_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }
  Value splat(VectorType t, Value scalar) {
    return vector::BroadcastOp::create(b, loc, t, scalar);
  }
  /// A constant integer vector of type t, every lane v.
  Value splatInt(VectorType t, int64_t v) {
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(t, b.getIntegerAttr(t.getElementType(), v)));
  }
  /// for (iv = lb; iv < ub; iv += step) body(iv)
  void loop(Value lb, Value ub, int64_t step,
            function_ref<void(Value)> body) {
    scf::ForOp::create(b, loc, lb, ub, idx(step), ValueRange{},
                       [&](OpBuilder &nb, Location, Value iv, ValueRange) {
                         OpBuilder::InsertionGuard g(b);
                         b.setInsertionPoint(nb.getInsertionBlock(),
                                             nb.getInsertionPoint());
                         body(iv);
                         scf::YieldOp::create(b, loc);
                       });
  }
  /// A loop carrying values: body(iv, carried) returns the next values.
  SmallVector<Value> fold(Value lb, Value ub, int64_t step, ValueRange init,
                          function_ref<SmallVector<Value>(Value, ValueRange)>
                              body) {
    auto op = scf::ForOp::create(
        b, loc, lb, ub, idx(step), init,
        [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          SmallVector<Value> next = body(iv, args);
          scf::YieldOp::create(b, loc, next);
        });
    return SmallVector<Value>(op.getResults());
  }
  Value add(Value a, Value c) {
    return isa<FloatType>(getElementTypeOrSelf(a))
               ? Value(arith::AddFOp::create(b, loc, a, c))
               : Value(arith::AddIOp::create(b, loc, a, c));
  }
  Value mul(Value a, Value c) {
    return isa<FloatType>(getElementTypeOrSelf(a))
               ? Value(arith::MulFOp::create(b, loc, a, c))
               : Value(arith::MulIOp::create(b, loc, a, c));
  }
  Value reduce(vector::CombiningKind kind, Value v) {
    return vector::ReductionOp::create(b, loc, kind, v);
  }
};

/// Builds @lowbit_forward and its kernels from the tensor-level @forward.
class KernelGenerator {
public:
  KernelGenerator(ModuleOp module, StringRef isa, bool gfni, bool embedded)
      : module(module), isaName(isa), gfni(gfni && isa == "avx512vnni"),
        embedded(embedded),
        vw(isa == "avx512vnni" ? 16 : 8), b(module.getContext()) {}

  LogicalResult run();

private:
  /// Creates (once) `name` with `args` + (begin, end) when `task`.
  func::FuncOp kernel(StringRef name, TypeRange args, bool task,
                      function_ref<void(Emit &, ValueRange)> body);
  /// Calls a task kernel through the parallel marker over `n` tasks.
  void callTasks(func::FuncOp k, ValueRange args, Value n);
  void call(func::FuncOp k, ValueRange args) {
    func::CallOp::create(b, loc, k, args);
  }

  /// A view of the blob entry for `p` as a memref of `shape` x `elt`.
  FailureOr<Value> param(Operation *op, ParamAttr p, ArrayRef<int64_t> shape,
                         Type *elt = nullptr);

  /// The buffer `v` was lowered to; null, after an error on `op`, if none.
  Value lowered(Operation *op, Value v) {
    if (Value m = buffers.lookup(v))
      return m;
    op->emitError("an operand of this op was not lowered (its producer is not "
                  "supported by the CPU code generator)");
    return Value();
  }

  Value alloc(ArrayRef<int64_t> shape, Type elt) {
    auto ty = MemRefType::get(shape, elt);
    SmallVector<Value> dyn;
    for (int64_t d : shape)
      if (d == kDyn)
        dyn.push_back(tokens);
    Value m = memref::AllocOp::create(b, loc, ty, dyn,
                                      b.getI64IntegerAttr(64));
    allocs.push_back(m);
    return m;
  }
  MemRefType rows(int64_t n, Type elt) {
    return MemRefType::get({kDyn, n}, elt);
  }

  // Per-op lowering; each returns failure after emitting an error.
  LogicalResult lowerEmbedding(bitnet::EmbeddingOp op);
  LogicalResult lowerQuantize(QuantizeOp op);
  LogicalResult lowerMatmul(TernaryMatmulOp op);
  LogicalResult lowerSparseMatmul(TernaryMatmulSparseOp op);
  LogicalResult lowerRoPE(bitnet::RoPEOp op);
  LogicalResult lowerAttention(bitnet::AttentionOp op);
  LogicalResult lowerRMSNorm(bitnet::RMSNormOp op);
  LogicalResult lowerLMHead(bitnet::LMHeadOp op);
  LogicalResult lowerQuantizedHead(bitnet::LMHeadOp op, Value x, int64_t offset,
                                   bool int4);
  LogicalResult lowerElementwise(Operation *op);
  LogicalResult lowerTopK(TopKMaskOp op);
  /// Adds a quantizer's zero counts to its stats slot (when stats are on).
  void recordStats(QuantizeOp op, Value zeros, int64_t k);
  /// Merges runs of adjacent, independent parallel calls with constant task
  /// counts (q/k/v, gate/up) into one call over the concatenated ranges.
  void groupParallelCalls();

  /// Dot products of codes (row `n` of W, tiles2) with i8 rows `ts` of q;
  /// each 64-byte chunk of the row is unpacked once for all of them.
  SmallVector<Value> emitTernaryDot(Emit &e, Value w, Value n, Value q,
                                    ArrayRef<Value> ts, int64_t kp);
  /// VNNI only: the 16 dot products of rows `ns` x tokens `ts` (4 x 4 or
  /// 16 x 1), as one vector (lane j * |ns| + i: row i, token j), reduced by
  /// one shuffle tree.
  Value emitTernaryDotTile(Emit &e, Value w, ArrayRef<Value> ns, Value q,
                           ArrayRef<Value> ts, int64_t kp);
  /// AVX2 only: the 8 dot products of rows n0 .. n0 + 7 (half a tile) with
  /// token `t`, as one vector<8xi32>, the rows read block by block as one
  /// stream.
  Value emitTernaryDotRows8(Emit &e, Value w, Value n0, Value q, Value t,
                            int64_t kp);

  ModuleOp module;
  std::string isaName;
  /// GFNI's affine byte transform unpacks ternary codes (avx512vnni only).
  bool gfni;
  bool embedded;
  int64_t vw;
  OpBuilder b;
  Location loc = UnknownLoc::get(module.getContext());
  func::FuncOp oldFunc, newFunc;
  DictionaryAttr blob;
  /// The decode attention's per-chunk partial results, one per shape.
  llvm::DenseMap<Type, Value> decodeParts;
  Value tokens, startArg, logitsFromArg, logitsArg, kCacheArg, vCacheArg,
      blobArg, tokenIds;
  /// i64 [2 * slots]: zero codes and all codes seen by each quantizer, when
  /// the runtime passes a non-empty buffer (--stats); `statNames` lists the
  /// weights each slot feeds.
  Value statsArg;
  SmallVector<std::string> statNames;
  /// Weight bytes one decoded token reads (bench/run.sh's bandwidth share).
  int64_t bytesPerToken = 0;
  /// Views of the cache buffers: f32 [L, kv_heads, C, head_dim] at 16 bits
  /// (head-major; f16 with kvF16); otherwise i8 codes and f32 steps
  /// [L, C, kv_heads].
  /// Quantized: `kCache` holds the bit-packed codes [L, C, rowBytes] of
  /// positions > 0, `kBos` the 8-bit codes [L, W] of position 0.
  Value kCache, vCache, kSteps, vSteps, kBos, vBos;
  int64_t kvBits = 16, kvHeads = 1, headDim = 1, cacheBytes = 0;
  /// The unquantized cache holds IEEE half instead of float32
  /// (--kv-bits=f16): rounded to nearest when stored, widened when read.
  bool kvF16 = false;
  /// Packing of quantized codes: `groupCodes` codes of `storeBits` bits in
  /// `groupBytes` bytes (8 bits: 1 in 1; 4 bits: 2 in 1; 3 bits: 8 in 3).
  int64_t storeBits = 8, groupCodes = 1, groupBytes = 1, rowBytes = 0;
  DenseMap<Value, Value> accs;           // matmul result -> its i32 sums
  /// matmul result -> (per-token scale d buffer, alpha) of its sums.
  DenseMap<Value, std::pair<Value, Value>> accScales;
  DenseMap<Value, Value> buffers;        // f32 tensor -> memref<?xDxf32>
  /// A quantized activation's buffers; a zero-skipping matmul's input also
  /// has, per token, its non-zero columns and their codes in order (nzCols,
  /// nzCodes) and how many pairs of them there are (nzPairs).
  struct QBuf {
    Value codes, scale, sum, zeros;
    int64_t kp;
    Value nzCols = {}, nzCodes = {}, nzPairs = {};
  };
  DenseMap<Value, QBuf> qbufs;           // qact -> its buffers
  DenseMap<Value, Value> lutTableBufs;   // INT4 codes -> their lut3 tables
  /// Per token, the 16-entry tables of a lut3 matmul's INT4 input [tokens,
  /// groups * 16] (built once per quantized activation).
  Value lutTables(const QBuf &q, int64_t k);
  void listNonZeros(QBuf &q, int64_t k);
  /// A ternary matmul's quantized input, sizes, f32 output buffer, weight
  /// view and alpha constant.
  struct MatmulParts {
    QBuf q;
    int64_t n, k;
    Value out, w, alpha;
  };
  FailureOr<MatmulParts> matmulParts(Operation *op, Value input, Value weight);
  /// lowerMatmul's path for lut3 weights (INT4 inputs, AVX2): per-token
  /// tables of 3-code sums looked up with pshufb.
  LogicalResult lowerLutMatmul(TernaryMatmulOp op, const MatmulParts &parts,
                               Value accOut, Value resid,
                               arith::AddFOp residAdd);
  /// The residual stream x and the add x + y when that add is the only use
  /// of matmul `op`'s result y and x is already lowered (else nulls).
  std::pair<Value, arith::AddFOp> residualAdd(Operation *op);
  DenseMap<Value, std::pair<Value, float>> weights; // ternary -> view, alpha
  SmallVector<Value> allocs;
  llvm::StringMap<func::FuncOp> kernels;
  /// RoPE cos/sin tables [tokens, 2, head_dim / 2] per head size and theta.
  llvm::StringMap<Value> ropeTables;
  int64_t numLayers = 0, vocab = 0, hidden = 0, context = 0, kvWidth = 0;
};

func::FuncOp KernelGenerator::kernel(StringRef name, TypeRange args, bool task,
                                     function_ref<void(Emit &, ValueRange)> body) {
  auto it = kernels.find(name);
  if (it != kernels.end())
    return it->second;
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPoint(newFunc);
  SmallVector<Type> types(args);
  if (task)
    types.append({b.getIndexType(), b.getIndexType()});
  auto f = func::FuncOp::create(b, loc, name, b.getFunctionType(types, {}));
  f.setPrivate();
  if (task)
    f->setAttr("lowbit.task", b.getUnitAttr());
  Block *entry = f.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Emit e{b, loc};
  body(e, entry->getArguments());
  for (Value m : e.heapScratch)
    memref::DeallocOp::create(b, loc, m);
  func::ReturnOp::create(b, loc);
  kernels[name] = f;
  return f;
}

/// A call to `@__lowbit_par_K(args..., n)` runs @K over the tasks [0, n)
/// (lowbit-lower-parallel-calls).
static constexpr StringLiteral kParMarker = "__lowbit_par_";

void KernelGenerator::callTasks(func::FuncOp k, ValueRange args, Value n) {
  std::string marker = (kParMarker + k.getSymName()).str();
  auto decl = module.lookupSymbol<func::FuncOp>(marker);
  if (!decl) {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(newFunc);
    SmallVector<Type> types(args.getTypes());
    types.push_back(b.getIndexType());
    decl = func::FuncOp::create(b, loc, marker, b.getFunctionType(types, {}));
    decl.setPrivate();
  }
  SmallVector<Value> operands(args);
  operands.push_back(n);
  func::CallOp::create(b, loc, decl, operands);
}

//===----------------------------------------------------------------------===//
// Grouped parallel calls
//===----------------------------------------------------------------------===//

/// The buffer a memref value views.
static Value rootBuffer(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
    v = view.getViewSource();
  return v;
}

/// Arguments of kernel `k` it writes (or might: any use that is not a pure
/// read or a prefetch counts as a write).
static llvm::BitVector writtenArgs(func::FuncOp k) {
  llvm::BitVector written(k.getNumArguments());
  for (BlockArgument a : k.getArguments()) {
    if (!isa<MemRefType>(a.getType()))
      continue;
    for (Operation *user : a.getUsers()) {
      if (isa<memref::PrefetchOp>(user))
        continue;
      auto mem = dyn_cast<MemoryEffectOpInterface>(user);
      SmallVector<MemoryEffects::EffectInstance> effects;
      if (mem)
        mem.getEffectsOnValue(a, effects);
      if (!mem || llvm::any_of(effects, [](auto &effect) {
            return !isa<MemoryEffects::Read>(effect.getEffect());
          })) {
        written.set(a.getArgNumber());
        break;
      }
    }
  }
  return written;
}

void KernelGenerator::groupParallelCalls() {
  Block &body = newFunc.getBody().front();
  // A call's kernel, its constant task count and the buffers it writes
  // and reads.
  struct Par {
    func::CallOp call;
    func::FuncOp kernel;
    int64_t n;
    SmallVector<Value> writes, reads;
  };
  auto asPar = [&](Operation &op) -> std::optional<Par> {
    auto call = dyn_cast<func::CallOp>(op);
    if (!call || !call.getCallee().starts_with(kParMarker))
      return std::nullopt;
    auto kernel = module.lookupSymbol<func::FuncOp>(
        call.getCallee().drop_front(kParMarker.size()));
    std::optional<int64_t> n =
        getConstantIntValue(call.getArgOperands().back());
    if (!kernel || !n || kernel.getNumArguments() != call.getNumOperands() + 1)
      return std::nullopt;
    Par par{call, kernel, *n, {}, {}};
    llvm::BitVector written = writtenArgs(kernel);
    for (auto [i, v] : llvm::enumerate(call.getArgOperands().drop_back()))
      if (isa<MemRefType>(v.getType()))
        (written.test(i) ? par.writes : par.reads).push_back(rootBuffer(v));
    return par;
  };
  // Two calls may run as one when neither writes a buffer the other uses.
  auto independent = [](const Par &x, const Par &y) {
    auto touches = [](const Par &p, Value buf) {
      return llvm::is_contained(p.writes, buf) ||
             llvm::is_contained(p.reads, buf);
    };
    return llvm::none_of(x.writes, [&](Value v) { return touches(y, v); }) &&
           llvm::none_of(y.writes, [&](Value v) { return touches(x, v); });
  };
  // Runs of calls with only allocations and views (moved up) in between.
  SmallVector<SmallVector<Par>> runs(1);
  for (Operation &op : body) {
    if (std::optional<Par> par = asPar(op)) {
      if (!llvm::all_of(runs.back(), [&](const Par &p) {
            return independent(p, *par);
          }))
        runs.emplace_back();
      runs.back().push_back(std::move(*par));
    } else if (!isa<memref::AllocOp, memref::ViewOp, arith::ConstantOp>(op)) {
      if (!runs.back().empty())
        runs.emplace_back();
    }
  }
  for (SmallVector<Par> &run : runs) {
    if (run.size() < 2)
      continue;
    Operation *first = run.front().call;
    for (Operation *op = first->getNextNode(); op != run.back().call;) {
      Operation *next = op->getNextNode();
      if (!isa<func::CallOp>(op))
        op->moveBefore(first);
      op = next;
    }
    // One kernel over the concatenated task ranges; each part calls its own
    // kernel on the overlap of [begin, end) with its range. The name (the
    // kernels cache key) holds each part's kernel, task count and arguments.
    SmallVector<Value> args;
    SmallVector<SmallVector<unsigned>> slots;
    std::string name = "group";
    int64_t total = 0;
    for (Par &p : run) {
      name += "_" + p.kernel.getSymName().str() + ".n" + std::to_string(p.n);
      total += p.n;
      slots.emplace_back();
      for (Value v : p.call.getArgOperands().drop_back()) {
        auto *it = llvm::find(args, v);
        slots.back().push_back(unsigned(it - args.begin()));
        if (it == args.end())
          args.push_back(v);
        name += "." + std::to_string(slots.back().back());
      }
    }
    SmallVector<Type> types(ValueRange(args).getTypes());
    b.setInsertionPoint(first);
    loc = first->getLoc();
    auto group = kernel(name, types, true, [&](Emit &e, ValueRange a) {
      Value begin = a[args.size()], end = a[args.size() + 1];
      int64_t offset = 0;
      for (auto [p, slot] : llvm::zip(run, slots)) {
        Value lo = arith::MaxUIOp::create(b, loc, begin, e.idx(offset));
        Value hi = arith::MinUIOp::create(b, loc, end, e.idx(offset + p.n));
        Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          lo, hi);
        auto ifOp = scf::IfOp::create(b, loc, any, /*withElse=*/false);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        SmallVector<Value> operands;
        for (unsigned i : slot)
          operands.push_back(a[i]);
        operands.push_back(arith::SubIOp::create(b, loc, lo, e.idx(offset)));
        operands.push_back(arith::SubIOp::create(b, loc, hi, e.idx(offset)));
        func::CallOp::create(b, loc, p.kernel, operands);
        offset += p.n;
      }
    });
    callTasks(group, args, arith::ConstantIndexOp::create(b, loc, total));
    for (Par &p : run)
      p.call.erase();
  }
}

FailureOr<Value> KernelGenerator::param(Operation *op, ParamAttr p,
                                        ArrayRef<int64_t> shape, Type *elt) {
  auto entry = blob ? dyn_cast_or_null<ArrayAttr>(blob.get(p.getName()))
                    : ArrayAttr();
  if (!entry || entry.size() != 2)
    return op->emitError() << "tensor '" << p.getName()
                           << "' is not in the packed blob (run the pack "
                              "phase first)";
  int64_t offset = cast<IntegerAttr>(entry[0]).getInt();
  StringRef kind = cast<StringAttr>(entry[1]).getValue();
  Type t = kind == "f32"    ? Type(b.getF32Type())
           : kind == "bf16" ? Type(b.getI16Type())
           : kind == "f16"  ? Type(b.getF16Type())
                            : Type(b.getI8Type());
  if (elt)
    *elt = t;
  auto ty = MemRefType::get(shape, t);
  return Value(memref::ViewOp::create(
      b, loc, ty, blobArg, arith::ConstantIndexOp::create(b, loc, offset),
      ValueRange{}));
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

/// Loads `n` elements of a bf16 (as i16), f16 or f32 row as f32.
static Value loadAsF32(Emit &e, Value m, ValueRange at, int64_t n) {
  auto elt = cast<MemRefType>(m.getType()).getElementType();
  auto f32v = VectorType::get({n}, e.b.getF32Type());
  if (elt.isF32())
    return vector::LoadOp::create(e.b, e.loc, f32v, m, at);
  if (elt.isF16()) {
    Value half =
        vector::LoadOp::create(e.b, e.loc, VectorType::get({n}, elt), m, at);
    return arith::ExtFOp::create(e.b, e.loc, f32v, half);
  }
  auto i16v = VectorType::get({n}, e.b.getI16Type());
  auto i32v = VectorType::get({n}, e.b.getI32Type());
  Value raw = vector::LoadOp::create(e.b, e.loc, i16v, m, at);
  Value wide = arith::ExtUIOp::create(e.b, e.loc, i32v, raw);
  Value sh = arith::ShLIOp::create(e.b, e.loc, wide,
                                   e.splat(i32v, e.i32(16)));
  return vector::BitCastOp::create(e.b, e.loc, f32v, sh);
}

static Value loadScalarAsF32(Emit &e, Value m, ValueRange at) {
  auto elt = cast<MemRefType>(m.getType()).getElementType();
  Value v = memref::LoadOp::create(e.b, e.loc, m, at);
  if (elt.isF32())
    return v;
  if (elt.isF16())
    return arith::ExtFOp::create(e.b, e.loc, e.b.getF32Type(), v);
  Value wide = arith::ExtUIOp::create(e.b, e.loc, e.b.getI32Type(), v);
  Value sh = arith::ShLIOp::create(e.b, e.loc, wide, e.i32(16));
  return arith::BitcastOp::create(e.b, e.loc, e.b.getF32Type(), sh);
}

/// for k in [0, n): vector part of width vw, then a scalar tail.
static void rowLoop(Emit &e, int64_t n, int64_t vw,
                    function_ref<void(Value, int64_t)> body) {
  int64_t main = n / vw * vw;
  if (main > 0)
    e.loop(e.idx(0), e.idx(main), vw, [&](Value k) { body(k, vw); });
  if (main < n)
    e.loop(e.idx(main), e.idx(n), 1, [&](Value k) { body(k, 1); });
}

static Value load(Emit &e, Value m, ValueRange at, int64_t width) {
  if (width == 1)
    return memref::LoadOp::create(e.b, e.loc, m, at);
  auto elt = cast<MemRefType>(m.getType()).getElementType();
  return vector::LoadOp::create(e.b, e.loc, VectorType::get({width}, elt), m,
                                at);
}

static void store(Emit &e, Value v, Value m, ValueRange at) {
  if (isa<VectorType>(v.getType()))
    vector::StoreOp::create(e.b, e.loc, v, m, at);
  else
    memref::StoreOp::create(e.b, e.loc, v, m, at);
}

static Value loadF32(Emit &e, Value m, ValueRange at, int64_t width) {
  return width == 1 ? loadScalarAsF32(e, m, at) : loadAsF32(e, m, at, width);
}

/// Stores f32 lanes (or a scalar) into an f32 or f16 memref, rounding to
/// nearest (ties to even) for f16.
static void storeF32(Emit &e, Value v, Value m, ValueRange at) {
  auto elt = cast<MemRefType>(m.getType()).getElementType();
  if (elt.isF16()) {
    Type t = elt;
    if (auto vt = dyn_cast<VectorType>(v.getType()))
      t = VectorType::get(vt.getShape(), elt);
    v = arith::TruncFOp::create(e.b, e.loc, t, v);
  }
  store(e, v, m, at);
}

/// A constant of `width` lanes (scalar when width is 1).
static Value lanes(Emit &e, Value scalar, int64_t width) {
  if (width == 1)
    return scalar;
  return e.splat(VectorType::get({width}, scalar.getType()), scalar);
}

LogicalResult KernelGenerator::lowerEmbedding(bitnet::EmbeddingOp op) {
  ArrayRef<int64_t> ts = op.getTable().getType().getShape();
  int64_t v = ts[0], h = ts[1];
  Type elt;
  FailureOr<Value> table = param(op, op.getTable(), {v, h}, &elt);
  if (failed(table))
    return failure();
  Value out = alloc({kDyn, h}, b.getF32Type());
  std::string name = "embed_" + std::to_string(v) + "x" + std::to_string(h) +
                     (elt.isF32()   ? "_f32"
                      : elt.isF16() ? "_f16"
                                    : "_bf16");
  auto k = kernel(
      name, {tokenIds.getType(), table->getType(), out.getType()}, false,
      [&](Emit &e, ValueRange a) {
        Value n = memref::DimOp::create(b, loc, a[0], 0);
        e.loop(e.idx(0), n, 1, [&](Value t) {
          Value id = memref::LoadOp::create(b, loc, a[0], ValueRange{t});
          Value row = arith::IndexCastOp::create(b, loc, b.getIndexType(), id);
          rowLoop(e, h, vw, [&](Value c, int64_t w) {
            store(e, loadF32(e, a[1], {row, c}, w), a[2], {t, c});
          });
        });
      });
  call(k, {tokenIds, *table, out});
  buffers[op.getResult()] = out;
  bytesPerToken += h * (elt.isF32() ? 4 : 2); // one row per token
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNorm + quantizer
//===----------------------------------------------------------------------===//

/// Reduces term(k, width) over k in [0, n): lanes of width vw, then a scalar
/// tail. `zero` is the scalar identity; `combine` merges accumulators and
/// terms of the same shape; `kind` reduces the lanes at the end.
static Value reduceRow(Emit &e, int64_t n, int64_t vw, TypedAttr zero,
                       vector::CombiningKind kind,
                       function_ref<Value(Value, int64_t)> term,
                       function_ref<Value(Value, Value)> combine) {
  Value total = arith::ConstantOp::create(e.b, e.loc, zero);
  int64_t main = n / vw * vw;
  if (main > 0) {
    auto vt = VectorType::get({vw}, zero.getType());
    Value acc = e.fold(e.idx(0), e.idx(main), vw, {e.splat(vt, total)},
                       [&](Value k, ValueRange cur) -> SmallVector<Value> {
                         return {combine(cur[0], term(k, vw))};
                       })[0];
    total = e.reduce(kind, acc);
  }
  if (main < n)
    total = e.fold(e.idx(main), e.idx(n), 1, {total},
                   [&](Value k, ValueRange cur) -> SmallVector<Value> {
                     return {combine(cur[0], term(k, 1))};
                   })[0];
  return total;
}

/// sum over a row of f32 terms, accumulated in f64.
static Value sumRowF64(Emit &e, int64_t n, int64_t vw,
                       function_ref<Value(Value, int64_t)> term) {
  return reduceRow(
      e, n, vw, e.b.getF64FloatAttr(0.0), vector::CombiningKind::ADD,
      [&](Value k, int64_t w) -> Value {
        Type t = w == 1 ? Type(e.b.getF64Type())
                        : Type(VectorType::get({w}, e.b.getF64Type()));
        return arith::ExtFOp::create(e.b, e.loc, t, term(k, w));
      },
      [&](Value a, Value c) { return e.add(a, c); });
}

/// max over a row of |term| (f32): on the bit patterns as i32, which order
/// as the values do for non-negative floats (a NaN still comes out a NaN),
/// so the loop-carried max is one integer op instead of IEEE maximumf's
/// NaN/sign-aware sequence (about 7 dependent ops per 16 lanes).
static Value absMaxRow(Emit &e, int64_t n, int64_t vw,
                       function_ref<Value(Value, int64_t)> term) {
  Type i32 = e.b.getI32Type();
  Value bits = reduceRow(
      e, n, vw, e.b.getI32IntegerAttr(0), vector::CombiningKind::MAXSI,
      [&](Value k, int64_t w) -> Value {
        Type t = w == 1 ? i32 : Type(VectorType::get({w}, i32));
        return arith::BitcastOp::create(
            e.b, e.loc, t, math::AbsFOp::create(e.b, e.loc, term(k, w)));
      },
      [&](Value a, Value c) -> Value {
        return arith::MaxSIOp::create(e.b, e.loc, a, c);
      });
  return arith::BitcastOp::create(e.b, e.loc, e.b.getF32Type(), bits);
}

LogicalResult KernelGenerator::lowerQuantize(QuantizeOp op) {
  QActType qt = op.getType();
  int64_t k = qt.getFeatures(), kp = padTo(k, 256);
  bool absmean = op.getMethod() == QuantMethod::absmean;
  int bits = qt.getBits();
  float qmax = bits == 8 ? 127.0f : 7.0f, qlo = bits == 8 ? -128.0f : -8.0f;
  Value x = lowered(op, op.getInput());
  if (!x)
    return failure();
  std::optional<ParamAttr> normP = op.getNorm();
  Value normW;
  float eps = op.getEps() ? op.getEps()->convertToFloat() : 0.0f;
  if (normP) {
    FailureOr<Value> w = param(op, *normP, {k});
    if (failed(w))
      return failure();
    normW = *w;
  }
  QBuf q{alloc({kDyn, kp}, b.getI8Type()), alloc({kDyn}, b.getF32Type()),
         alloc({kDyn}, b.getI32Type()), alloc({kDyn}, b.getI32Type()), kp};
  std::string name = "rmsquant_" + std::to_string(k) +
                     (absmean ? "_absmean" : "_absmax") +
                     std::to_string(bits) + (normP ? "_norm" : "");
  if (normP) {
    // eps is a constant of the kernel: name it in.
    name += "_eps" + std::to_string(llvm::bit_cast<uint32_t>(eps));
  }
  SmallVector<Type> types{x.getType(), q.codes.getType(), q.scale.getType(),
                          q.sum.getType(), q.zeros.getType()};
  if (normP)
    types.push_back(normW.getType());
  auto kern = kernel(name, types, true, [&](Emit &e, ValueRange a) {
    Value xs = a[0], codes = a[1], scales = a[2], sums = a[3], zeros = a[4];
    Value w = normP ? a[5] : Value();
    Value begin = a[normP ? 6 : 5], end = a[normP ? 7 : 6];
    auto f32 = b.getF32Type();
    e.loop(begin, end, 1, [&](Value t) {
      // r = 1 / sqrt(mean(x^2) + eps), mean summed in f64.
      Value r;
      if (normP) {
        Value ss = sumRowF64(e, k, vw, [&](Value c, int64_t wd) {
          Value v = load(e, xs, {t, c}, wd);
          return e.mul(v, v);
        });
        Value ms = arith::TruncFOp::create(
            b, loc, f32, arith::DivFOp::create(b, loc, ss, e.f64(double(k))));
        Value den = math::SqrtOp::create(b, loc, e.add(ms, e.f32(eps)));
        r = arith::DivFOp::create(b, loc, e.f32(1.0f), den);
      }
      auto y = [&](Value c, int64_t wd) -> Value {
        Value v = load(e, xs, {t, c}, wd);
        if (!normP)
          return v;
        return e.mul(e.mul(v, lanes(e, r, wd)), load(e, w, {c}, wd));
      };
      Value s;
      if (absmean) {
        Value sa = sumRowF64(e, k, vw, [&](Value c, int64_t wd) {
          return math::AbsFOp::create(b, loc, y(c, wd));
        });
        Value beta = arith::TruncFOp::create(
            b, loc, f32, arith::DivFOp::create(b, loc, sa, e.f64(double(k))));
        beta = arith::MaximumFOp::create(b, loc, beta, e.f32(1e-5f));
        s = arith::DivFOp::create(b, loc, e.f32(float(std::sqrt(7.0))), beta);
      } else {
        Value gamma = absMaxRow(e, k, vw, y);
        gamma = arith::MaximumFOp::create(b, loc, gamma, e.f32(1e-5f));
        s = arith::DivFOp::create(b, loc, e.f32(qmax), gamma);
      }
      // codes = clamp(roundeven(y * s)), and their sum.
      auto quant = [&](Value c, int64_t wd) -> Value {
        Value v = e.mul(y(c, wd), lanes(e, s, wd));
        v = math::RoundEvenOp::create(b, loc, v);
        v = arith::MaximumFOp::create(b, loc, v, lanes(e, e.f32(qlo), wd));
        v = arith::MinimumFOp::create(b, loc, v, lanes(e, e.f32(qmax), wd));
        Type i32 = wd == 1 ? Type(b.getI32Type())
                           : Type(VectorType::get({wd}, b.getI32Type()));
        Type i8 = wd == 1 ? Type(b.getI8Type())
                          : Type(VectorType::get({wd}, b.getI8Type()));
        Value iv = arith::FPToSIOp::create(b, loc, i32, v);
        store(e, arith::TruncIOp::create(b, loc, i8, iv), codes, {t, c});
        return iv;
      };
      Value total = reduceRow(e, k, vw, b.getI32IntegerAttr(0),
                              vector::CombiningKind::ADD, quant,
                              [&](Value a, Value c) { return e.add(a, c); });
      Value zero8 = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
      if (k < kp)
        e.loop(e.idx(k), e.idx(kp), 1, [&](Value c) {
          memref::StoreOp::create(b, loc, zero8, codes, ValueRange{t, c});
        });
      memref::StoreOp::create(
          b, loc, arith::DivFOp::create(b, loc, e.f32(1.0f), s), scales,
          ValueRange{t});
      memref::StoreOp::create(b, loc, total, sums, ValueRange{t});
      // Zero codes of the row: what a zero-skipping kernel would skip.
      Value nz = reduceRow(
          e, k, vw, b.getI32IntegerAttr(0), vector::CombiningKind::ADD,
          [&](Value c, int64_t wd) -> Value {
            Value v = load(e, codes, {t, c}, wd);
            Value zero = lanes(
                e, arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0)), wd);
            Value eq = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                             v, zero);
            Type it = wd == 1 ? Type(b.getI32Type())
                              : Type(VectorType::get({wd}, b.getI32Type()));
            return arith::ExtUIOp::create(b, loc, it, eq);
          },
          [&](Value p, Value r) { return e.add(p, r); });
      memref::StoreOp::create(b, loc, nz, zeros, ValueRange{t});
    });
  });
  SmallVector<Value> args{x, q.codes, q.scale, q.sum, q.zeros};
  if (normP)
    args.push_back(normW);
  callTasks(kern, args, tokens);
  if (llvm::any_of(op.getResult().getUsers(),
                   llvm::IsaPred<TernaryMatmulSparseOp>))
    listNonZeros(q, k);
  qbufs[op.getResult()] = q;
  recordStats(op, q.zeros, k);
  return success();
}

/// Per token, the columns of its non-zero codes and those codes, in order,
/// padded with column 0 and code 0 to an even count plus the prefetch
/// distance of lowerSparseMatmul, and the number of pairs. A task per
/// token, after the quantizer (its codes are complete).
void KernelGenerator::listNonZeros(QBuf &q, int64_t k) {
  int64_t pad = 2 + 2 * (kSparsePrefetchPairs + kSparseRegPairs);
  int64_t len = q.kp + pad;
  q.nzCols = alloc({kDyn, len}, b.getI32Type());
  q.nzCodes = alloc({kDyn, len}, b.getI8Type());
  q.nzPairs = alloc({kDyn}, b.getI32Type());
  auto kern = kernel(
      "nonzeros_" + std::to_string(k),
      {q.codes.getType(), q.nzCols.getType(), q.nzCodes.getType(),
       q.nzPairs.getType()},
      true, [&](Emit &e, ValueRange a) {
        Value codes = a[0], cols = a[1], nzc = a[2], pairs = a[3];
        Value zero8 = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
        e.loop(a[4], a[5], 1, [&](Value t) {
          // Branch-free: every code is written at the next free slot, which
          // only a non-zero code keeps.
          Value m = e.fold(
              e.idx(0), e.idx(k), 1, {e.idx(0)},
              [&](Value c, ValueRange cur) -> SmallVector<Value> {
                Value v =
                    memref::LoadOp::create(b, loc, codes, ValueRange{t, c});
                memref::StoreOp::create(
                    b, loc,
                    arith::IndexCastOp::create(b, loc, b.getI32Type(), c), cols,
                    ValueRange{t, cur[0]});
                memref::StoreOp::create(b, loc, v, nzc, ValueRange{t, cur[0]});
                Value nz = arith::CmpIOp::create(
                    b, loc, arith::CmpIPredicate::ne, v, zero8);
                return {e.add(cur[0], arith::IndexCastOp::create(
                                          b, loc, b.getIndexType(),
                                          arith::ExtUIOp::create(
                                              b, loc, b.getI32Type(), nz)))};
              })[0];
          e.loop(m, e.add(m, e.idx(pad)), 1, [&](Value c) {
            memref::StoreOp::create(b, loc, e.i32(0), cols, ValueRange{t, c});
            memref::StoreOp::create(b, loc, zero8, nzc, ValueRange{t, c});
          });
          Value np =
              arith::DivUIOp::create(b, loc, e.add(m, e.idx(1)), e.idx(2));
          memref::StoreOp::create(
              b, loc, arith::IndexCastOp::create(b, loc, b.getI32Type(), np),
              pairs, ValueRange{t});
        });
      });
  callTasks(kern, {q.codes, q.nzCols, q.nzCodes, q.nzPairs}, tokens);
}

void KernelGenerator::recordStats(QuantizeOp op, Value zeros, int64_t k) {
  std::string names;
  for (Operation *user : op.getResult().getUsers())
    if (auto w = user->getOperand(1).getDefiningOp<WeightOp>())
      names += (names.empty() ? "" : ",") + w.getSource().getName().str();
  int64_t slot = statNames.size();
  statNames.push_back(names.empty() ? "quantizer" + std::to_string(slot)
                                    : names);
  Emit e{b, loc};
  Value on = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::sgt,
      memref::DimOp::create(b, loc, statsArg, 0), e.idx(0));
  scf::IfOp::create(b, loc, on, [&](OpBuilder &nb, Location) {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
    auto i64 = b.getI64Type();
    Value z = e.fold(e.idx(0), tokens, 1,
                     {arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(0))},
                     [&](Value t, ValueRange cur) -> SmallVector<Value> {
                       Value c = memref::LoadOp::create(b, loc, zeros,
                                                        ValueRange{t});
                       return {e.add(cur[0],
                                     arith::ExtUIOp::create(b, loc, i64, c))};
                     })[0];
    Value all = arith::MulIOp::create(
        b, loc, arith::IndexCastOp::create(b, loc, i64, tokens),
        arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(k)));
    for (auto [i, v] : llvm::enumerate(SmallVector<Value>{z, all})) {
      Value at = e.idx(2 * slot + int64_t(i));
      Value old = memref::LoadOp::create(b, loc, statsArg, ValueRange{at});
      memref::StoreOp::create(b, loc, e.add(old, v), statsArg, ValueRange{at});
    }
    scf::YieldOp::create(b, loc);
  });
}

//===----------------------------------------------------------------------===//
// Ternary matmul
//===----------------------------------------------------------------------===//

/// Indices of byte `byte` of block `c` of row `row` in a tiles2 weight view
/// [tiles, blocks, kTileRows, 64].
static SmallVector<Value> tileIndices(Emit &e, Value row, Value c, Value byte) {
  return {arith::DivUIOp::create(e.b, e.loc, row, e.idx(kTileRows)), c,
          arith::RemUIOp::create(e.b, e.loc, row, e.idx(kTileRows)), byte};
}

/// Prefetches the line of `m` at `at` for a read that comes soon and only
/// once per token (weights, KV rows): non-temporal (prefetchnta, locality
/// 0), which asks the core to keep the line out of the outer caches. On 2B4T
/// (Zen 5, 2 threads, 4-bit head) the weight streams decoded 10 % faster
/// than with prefetcht0 (67.1 vs 60.6 tok/s, 5 alternating runs each; AVX2
/// and 1 thread +5 %), the KV rows another 8 % (73.4 vs 67.9 at 128
/// positions, 56.5 vs 53.6 at 1000; prefill the same).
static void prefetchStream(Emit &e, Value m, ValueRange at) {
  memref::PrefetchOp::create(e.b, e.loc, m, at, /*isWrite=*/false,
                             /*localityHint=*/0, /*isDataCache=*/true);
}

/// Prefetches row `r` of the tile block kPrefetchBlocks ahead of block `c`
/// of tile `tile` in a [tiles, blocks, kTileRows, 64] view. Past the tile's
/// last block that is the next tile's first blocks (the index runs over
/// dimension 1 on purpose), and up to 4 KiB past the view after its last
/// tile: a prefetch never faults and the lowering's address arithmetic has
/// no inbounds flag. (Clamping the index to the view measured 10 % slower.)
/// Callers issue one row's prefetch next to each row's load.
static void prefetchAhead(Emit &e, Value w, Value tile, Value c, Value r) {
  prefetchStream(e, w, {tile, e.add(c, e.idx(kPrefetchBlocks)), r, e.idx(0)});
}
static void prefetchAhead(Emit &e, Value w, Value tile, Value c, int64_t r) {
  prefetchAhead(e, w, tile, c, e.idx(r));
}

/// Bit pair `i` of every byte of packed ternary codes held as i32 lanes
/// (codes 64 i .. 64 i + 63 of a 64-byte block, code + 1), as bytes. With
/// GFNI (and 64 bytes) one affine byte transform moves bits 2i, 2i+1 to bits
/// 0, 1 and clears the rest: one instruction for the shift and the mask
/// (+3 % decode on 2B4T, identical codes).
static Value codePlane(Emit &e, Value packed, int i, bool gfni) {
  auto t = cast<VectorType>(packed.getType());
  if (gfni && i && t.getNumElements() * t.getElementTypeBitWidth() == 512) {
    // Result bit j of a byte is the parity of (byte AND matrix byte 7 - j).
    auto v64 = VectorType::get({64}, e.b.getI8Type());
    uint64_t select = (uint64_t(1) << (2 * i)) << 56 |
                      (uint64_t(1) << (2 * i + 1)) << 48;
    Value matrix = vector::BitCastOp::create(
        e.b, e.loc, v64,
        e.splat(VectorType::get({8}, e.b.getI64Type()),
                arith::ConstantOp::create(e.b, e.loc,
                                          e.b.getI64IntegerAttr(int64_t(select)))));
    Value noXor = LLVM::ConstantOp::create(e.b, e.loc, e.b.getI8Type(),
                                           e.b.getI8IntegerAttr(0));
    return LLVM::CallIntrinsicOp::create(
               e.b, e.loc, v64, e.b.getStringAttr("llvm.x86.vgf2p8affineqb.512"),
               ValueRange{vector::BitCastOp::create(e.b, e.loc, v64, packed),
                          matrix, noXor})
        .getResult(0);
  }
  Value s = packed;
  if (i)
    s = arith::ShRUIOp::create(e.b, e.loc, s, e.splat(t, e.i32(2 * i)));
  s = arith::AndIOp::create(e.b, e.loc, s, e.splat(t, e.i32(0x03030303)));
  return vector::BitCastOp::create(
      e.b, e.loc, VectorType::get({4 * t.getNumElements()}, e.b.getI8Type()),
      s);
}

/// AVX2: pmaddubsw, the products of 32 unsigned bytes `u` and signed bytes
/// `s` summed in pairs into 16 i16 lanes (saturating: the caller keeps each
/// pair, and any sum of these it adds up, within 2^15).
static Value maddubs16(Emit &e, Value u, Value s) {
  return LLVM::CallIntrinsicOp::create(
             e.b, e.loc, VectorType::get({16}, e.b.getI16Type()),
             e.b.getStringAttr("llvm.x86.avx2.pmadd.ub.sw"), ValueRange{u, s})
      .getResult(0);
}

/// AVX2: 16 i16 lanes summed in pairs into 8 i32 lanes (pmaddwd with ones).
static Value widen16(Emit &e, Value p16) {
  Value ones = e.splatInt(cast<VectorType>(p16.getType()), 1);
  return LLVM::CallIntrinsicOp::create(
             e.b, e.loc, VectorType::get({8}, e.b.getI32Type()),
             e.b.getStringAttr("llvm.x86.avx2.pmadd.wd"), ValueRange{p16, ones})
      .getResult(0);
}

/// AVX2: the dot products of 32 unsigned bytes `u` and signed bytes `s` in
/// 8 i32 lanes of 4.
static Value maddubs32(Emit &e, Value u, Value s) {
  return widen16(e, maddubs16(e, u, s));
}

/// AVX2: `s16` plus the pmaddubsw products of the 4 code planes of a 32-byte
/// half block (codes 0..2) with their activations, in 16 i16 lanes (each
/// plane adds at most 2 x 2 x 127 to a lane; null `s16`: from zero).
static Value ternaryHalf16(Emit &e, Value s16, Value p32,
                           function_ref<Value(int)> act) {
  for (int i = 0; i < 4; ++i) {
    Value part = maddubs16(e, codePlane(e, p32, i, false), act(i));
    s16 = s16 ? e.add(s16, part) : part;
  }
  return s16;
}

/// acc + the VNNI dot products of unsigned bytes `u` and signed bytes `s`.
static Value vpdpbusd(Emit &e, Value acc, Value u, Value s) {
  return LLVM::CallIntrinsicOp::create(
             e.b, e.loc, acc.getType(),
             e.b.getStringAttr("llvm.x86.avx512.vpdpbusd.512"),
             ValueRange{acc, u, s})
      .getResult(0);
}

/// acc (16 x i32) + the dot products of bytes `u` and signed bytes `s` (64
/// each), 4 per lane: one VNNI vpdpbusd (u unsigned), or on aarch64 with the
/// dot-product extension four sdot over 16-byte quarters, the same lanes
/// (u read as signed: exact for ternary codes 0..2).
static Value dot4(Emit &e, StringRef isa, Value acc, Value u, Value s) {
  if (isa == "avx512vnni")
    return vpdpbusd(e, acc, u, s);
  assert(isa == "neondot" && "dot4 needs VNNI or the dot-product extension");
  auto v4 = VectorType::get({4}, e.b.getI32Type());
  auto quarter = [&](Value v, int64_t j, int64_t width) -> Value {
    return vector::ExtractStridedSliceOp::create(
        e.b, e.loc, v, ArrayRef<int64_t>{j * width}, ArrayRef<int64_t>{width},
        ArrayRef<int64_t>{1});
  };
  Value out = acc;
  for (int64_t j = 0; j < 4; ++j) {
    Value part = LLVM::CallIntrinsicOp::create(
                     e.b, e.loc, v4,
                     e.b.getStringAttr("llvm.aarch64.neon.sdot.v4i32.v16i8"),
                     ValueRange{quarter(acc, j, 4), quarter(u, j, 16),
                                quarter(s, j, 16)})
                     .getResult(0);
    out = vector::InsertStridedSliceOp::create(
        e.b, e.loc, part, out, ArrayRef<int64_t>{j * 4}, ArrayRef<int64_t>{1});
  }
  return out;
}

SmallVector<Value> KernelGenerator::emitTernaryDot(Emit &e, Value w, Value n,
                                                  Value q, ArrayRef<Value> ts,
                                                  int64_t kp) {
  int64_t blocks = kp / 256;
  size_t nt = ts.size();
  auto i32 = b.getI32Type(), i8 = b.getI8Type();
  auto zeros = [&](VectorType t) {
    Value z = e.splatInt(t, 0);
    return SmallVector<Value>(nt, z);
  };
  auto reduceAll = [&](ValueRange accs) {
    SmallVector<Value> out;
    for (Value a : accs)
      out.push_back(e.reduce(vector::CombiningKind::ADD, a));
    return out;
  };
  // Block c of row n (tiles2: 256 codes in 64 bytes) as 16 x i32, and the
  // column of its first code.
  auto packedBlock = [&](Value c) -> std::pair<Value, Value> {
    Value p8 = vector::LoadOp::create(b, loc, VectorType::get({64}, i8), w,
                                      tileIndices(e, n, c, e.idx(0)));
    return {vector::BitCastOp::create(b, loc, VectorType::get({16}, i32), p8),
            arith::MulIOp::create(b, loc, c, e.idx(256))};
  };
  if (isaName == "avx512vnni" || isaName == "neondot") {
    auto v16 = VectorType::get({16}, i32), v64 = VectorType::get({64}, i8);
    return reduceAll(e.fold(
        e.idx(0), e.idx(blocks), 1, zeros(v16),
        [&](Value c, ValueRange cur) -> SmallVector<Value> {
          auto [p32, base] = packedBlock(c);
          SmallVector<Value> acc(cur);
          for (int i = 0; i < 4; ++i) {
            Value codes = codePlane(e, p32, i, gfni);
            Value at = e.add(base, e.idx(64 * i));
            for (size_t k = 0; k < nt; ++k)
              acc[k] = dot4(e, isaName, acc[k], codes,
                            vector::LoadOp::create(b, loc, v64, q,
                                                   ValueRange{ts[k], at}));
          }
          return acc;
        }));
  }
  if (isaName == "avx2") {
    // Per token (a prompt tile's several, or the gated and row-by-row
    // paths' one), the planes' pmaddubsw results of a chunk of up to
    // kAvx2Chunk blocks are summed in i16 lanes and widened to i32 once per
    // chunk. A lane takes 2 halves x 4 planes x 2 products (code 0..2 x
    // activation -128..127) per block: within [-4096, 4064], so a chunk of 8
    // within [-32768, 32512]; the adds wrap, and the lane ends exact. Per 8 tokens and 32 weight bytes: 32
    // pmaddubsw, 32 adds, 7 to unpack (2.7 -> 2.3 vector instructions per
    // pmaddubsw): 2B4T prefill +15-18 % (Zen 3, 1 and 2 threads).
    auto v8 = VectorType::get({8}, i32), v32 = VectorType::get({32}, i8);
    auto v16s = VectorType::get({16}, b.getI16Type());
    Value zero16 = e.splatInt(v16s, 0);
    return reduceAll(e.fold(
        e.idx(0), e.idx(blocks), kAvx2Chunk, zeros(v8),
        [&](Value c0, ValueRange cur32) -> SmallVector<Value> {
          Value c1 = arith::MinUIOp::create(
              b, loc, e.add(c0, e.idx(kAvx2Chunk)), e.idx(blocks));
          SmallVector<Value> sums16 = e.fold(
              c0, c1, 1, SmallVector<Value>(nt, zero16),
              [&](Value blk, ValueRange cur) -> SmallVector<Value> {
                SmallVector<Value> acc(cur);
                for (int64_t half = 0; half < 2; ++half) {
                  // 32-byte half `half` of the block holds codes j + 64 i
                  // for j in [32 half, 32 half + 32).
                  Value p8 = vector::LoadOp::create(
                      b, loc, v32, w, tileIndices(e, n, blk, e.idx(32 * half)));
                  Value p32 = vector::BitCastOp::create(b, loc, v8, p8);
                  Value base =
                      e.add(arith::MulIOp::create(b, loc, blk, e.idx(256)),
                            e.idx(32 * half));
                  SmallVector<Value> planes;
                  for (int i = 0; i < 4; ++i)
                    planes.push_back(codePlane(e, p32, i, false));
                  for (size_t k = 0; k < nt; ++k)
                    for (int i = 0; i < 4; ++i)
                      acc[k] = e.add(
                          acc[k],
                          maddubs16(
                              e, planes[i],
                              vector::LoadOp::create(
                                  b, loc, v32, q,
                                  ValueRange{ts[k],
                                             e.add(base, e.idx(64 * i))})));
                }
                return acc;
              });
          SmallVector<Value> acc(cur32);
          for (size_t k = 0; k < nt; ++k)
            acc[k] = e.add(acc[k], widen16(e, sums16[k]));
          return acc;
        }));
  }
  // Generic vector code for other targets.
  auto v64 = VectorType::get({64}, i8);
  auto v64i32 = VectorType::get({64}, i32);
  return reduceAll(e.fold(
      e.idx(0), e.idx(blocks), 1, zeros(v64i32),
      [&](Value c, ValueRange cur) -> SmallVector<Value> {
        auto [p32, base] = packedBlock(c);
        SmallVector<Value> acc(cur);
        for (int i = 0; i < 4; ++i) {
          Value codes = arith::ExtUIOp::create(
              b, loc, v64i32,
              codePlane(e, p32, i, gfni));
          for (size_t k = 0; k < nt; ++k) {
            Value act = vector::LoadOp::create(
                b, loc, v64, q, ValueRange{ts[k], e.add(base, e.idx(64 * i))});
            acc[k] = e.add(acc[k],
                           e.mul(codes, arith::ExtSIOp::create(b, loc, v64i32, act)));
          }
        }
        return acc;
      }));
}

/// Sums each of N vector<Nxi32> (N a power of two) into lane i of one
/// vector: log2 N levels of pairwise shuffles and adds (N - 1 adds instead of
/// N separate reductions).
static Value transposeReduce(Emit &e, SmallVector<Value> sources) {
  int64_t n = static_cast<int64_t>(sources.size());
  assert(llvm::isPowerOf2_64(n) &&
         cast<VectorType>(sources[0].getType()).getNumElements() == n &&
         "N vectors of N lanes");
  unsigned bits = llvm::Log2_64(n);
  // The tree leaves source p in lane bit-reverse(p): feed them reversed.
  SmallVector<Value> v;
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = 0;
    for (unsigned b = 0; b < bits; ++b)
      r |= ((i >> b) & 1) << (bits - 1 - b);
    v.push_back(sources[r]);
  }
  for (int64_t width = n / 2; width >= 1; width /= 2) {
    // Pairs (a, b): lanes of each width-block of a, then of b, summed with
    // the next width-block: the partial sums per source halve each level.
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < v.size(); i += 2) {
      SmallVector<int64_t> lo, hi;
      for (int64_t blk = 0; blk < n / (2 * width); ++blk)
        for (int64_t src = 0; src < 2; ++src)
          for (int64_t l = 0; l < width; ++l) {
            int64_t base = src * n + blk * 2 * width;
            lo.push_back(base + l);
            hi.push_back(base + width + l);
          }
      Value a = vector::ShuffleOp::create(e.b, e.loc, v[i], v[i + 1], lo);
      Value c = vector::ShuffleOp::create(e.b, e.loc, v[i], v[i + 1], hi);
      next.push_back(e.add(a, c));
    }
    v = std::move(next);
  }
  return v[0];
}

Value KernelGenerator::emitTernaryDotRows8(Emit &e, Value w, Value n0, Value q,
                                           Value t, int64_t kp) {
  int64_t blocks = kp / 256;
  auto i32 = b.getI32Type(), i8 = b.getI8Type();
  auto v8 = VectorType::get({8}, i32), v32 = VectorType::get({32}, i8);
  Value zero = e.splatInt(v8, 0);
  Value tile = arith::DivUIOp::create(b, loc, n0, e.idx(kTileRows));
  Value sub = arith::RemUIOp::create(b, loc, n0, e.idx(kTileRows));
  SmallVector<Value> accs = e.fold(
      e.idx(0), e.idx(blocks), 1, SmallVector<Value>(8, zero),
      [&](Value c, ValueRange cur) -> SmallVector<Value> {
        Value base = arith::MulIOp::create(b, loc, c, e.idx(256));
        SmallVector<Value> acc(cur);
        for (int64_t r = 0; r < 8; ++r) {
          Value row = e.add(sub, e.idx(r));
          // Bandwidth-bound with one token: the 8 rows are 512 contiguous
          // bytes of each 1 KiB tile block, prefetched 4 blocks ahead.
          prefetchAhead(e, w, tile, c, row);
          // Both halves' products summed in i16 lanes (8 x 2 x 2 x 127 <
          // 2^15) and widened once per block: one pmaddwd and add fewer
          // per 64 bytes.
          Value s16;
          for (int64_t h = 0; h < 2; ++h) {
            // Half h of the row's block: codes j + 64 i, j in [32 h, 32 h + 32).
            Value p32 = vector::BitCastOp::create(
                b, loc, v8,
                vector::LoadOp::create(b, loc, v32, w,
                                       ValueRange{tile, c, row, e.idx(32 * h)}));
            s16 = ternaryHalf16(e, s16, p32, [&](int i) -> Value {
              return vector::LoadOp::create(
                  b, loc, v32, q,
                  ValueRange{t, e.add(base, e.idx(64 * i + 32 * h))});
            });
          }
          acc[r] = e.add(acc[r], widen16(e, s16));
        }
        return acc;
      });
  return transposeReduce(e, accs);
}

Value KernelGenerator::emitTernaryDotTile(Emit &e, Value w, ArrayRef<Value> ns,
                                          Value q, ArrayRef<Value> ts,
                                          int64_t kp) {
  int64_t blocks = kp / 256;
  size_t nr = ns.size(), nt = ts.size();
  assert(nr * nt == 16 && "a tile has 16 dot products");
  auto i32 = b.getI32Type(), i8 = b.getI8Type();
  auto v16 = VectorType::get({16}, i32), v64 = VectorType::get({64}, i8);
  Value zero = e.splatInt(v16, 0);
  // acc[k * nr + r]: row r, token k (the lane order of the result).
  SmallVector<Value> init(16, zero);
  SmallVector<Value> accs = e.fold(
      e.idx(0), e.idx(blocks), 1, init,
      [&](Value c, ValueRange cur) -> SmallVector<Value> {
        Value base = arith::MulIOp::create(b, loc, c, e.idx(256));
        SmallVector<Value> acc(cur);
        auto loadRow = [&](Value n) {
          return vector::BitCastOp::create(
              b, loc, v16,
              vector::LoadOp::create(b, loc, v64, w,
                                     tileIndices(e, n, c, e.idx(0))));
        };
        auto actAt = [&](Value t, int i) {
          return vector::LoadOp::create(b, loc, v64, q,
                                        ValueRange{t, e.add(base, e.idx(64 * i))})
              .getResult();
        };
        if (nt == 1) {
          // Many rows, one token: the token's 256 codes stay in registers,
          // each row is loaded and unpacked once.
          SmallVector<Value> acts;
          for (int i = 0; i < 4; ++i)
            acts.push_back(actAt(ts[0], i));
          // Bandwidth-bound: the rows are one tile (16 consecutive rows).
          Value tile = arith::DivUIOp::create(b, loc, ns[0], e.idx(kTileRows));
          for (size_t r = 0; r < nr; ++r) {
            prefetchAhead(e, w, tile, c, r);
            Value packed = loadRow(ns[r]);
            for (int i = 0; i < 4; ++i)
              acc[r] = dot4(e, isaName, acc[r], codePlane(e, packed, i, gfni),
                            acts[i]);
          }
          return acc;
        }
        SmallVector<Value> packed;
        for (Value n : ns)
          packed.push_back(loadRow(n));
        for (int i = 0; i < 4; ++i) {
          SmallVector<Value> acts;
          for (Value t : ts)
            acts.push_back(actAt(t, i));
          for (size_t r = 0; r < nr; ++r) {
            Value codes = codePlane(e, packed[r], i, gfni);
            for (size_t k = 0; k < nt; ++k)
              acc[k * nr + r] =
                  dot4(e, isaName, acc[k * nr + r], codes, acts[k]);
          }
        }
        return acc;
      });
  return transposeReduce(e, accs);
}

FailureOr<KernelGenerator::MatmulParts>
KernelGenerator::matmulParts(Operation *op, Value input, Value weight) {
  auto it = qbufs.find(input);
  auto wt = weights.find(weight);
  if (it == qbufs.end() || wt == weights.end())
    return op->emitError("matmul operands were not lowered");
  auto ty = cast<TernaryType>(weight.getType());
  int64_t n = ty.getRows();
  return MatmulParts{it->second, n, ty.getCols(),
                     alloc({kDyn, n}, b.getF32Type()), wt->second.first,
                     arith::ConstantOp::create(
                         b, loc, b.getF32FloatAttr(wt->second.second))};
}

std::pair<Value, arith::AddFOp> KernelGenerator::residualAdd(Operation *op) {
  Value y = op->getResult(0);
  if (!y.hasOneUse())
    return {};
  auto add = dyn_cast<arith::AddFOp>(*y.getUsers().begin());
  if (!add)
    return {};
  Value x = add.getLhs() == y ? add.getRhs() : add.getLhs();
  Value resid = buffers.lookup(x);
  if (x.getType() != add.getType() || !resid)
    return {};
  return {resid, add};
}

LogicalResult KernelGenerator::lowerMatmul(TernaryMatmulOp op) {
  FailureOr<MatmulParts> parts = matmulParts(op, op.getInput(), op.getWeight());
  if (failed(parts))
    return failure();
  // Named copies, not structured bindings: the kernel bodies capture them.
  QBuf q = parts->q;
  int64_t n = parts->n, k = parts->k;
  Value out = parts->out, w = parts->w, alpha = parts->alpha;
  // K and V feeding a quantized KV cache also keep their integer sums: the
  // cache codes are computed from them exactly (spec, "Project decisions").
  auto feedsCache = [&](Value v, bool viaRope) {
    for (Operation *user : v.getUsers()) {
      if (auto rope = dyn_cast<bitnet::RoPEOp>(user);
          rope && !viaRope) {
        for (Operation *u : rope.getResult().getUsers())
          if (auto att = dyn_cast<bitnet::AttentionOp>(u))
            if (att.getK() == rope.getResult())
              return true;
      }
      if (auto att = dyn_cast<bitnet::AttentionOp>(user))
        if (att.getV() == v)
          return true;
    }
    return false;
  };
  bool withAcc = kvBits != 16 && feedsCache(op.getResult(), false);
  Value accOut = withAcc ? alloc({kDyn, n}, b.getI32Type()) : Value();
  Value gate;
  if (op.getGate() && !(gate = lowered(op, op.getGate())))
    return failure();
  // A residual add that is the result's only use (x + W q: the block's skip
  // connection) runs in the epilogue: each task adds x to the rows it
  // stores, and no serial pass over both vectors follows the parallel call
  // (on 2B4T that pass mostly pulled the rows the other thread wrote:
  // 1.4-1.8 us per add per decoded token). x + y == y + x exactly.
  Value resid;
  arith::AddFOp residAdd;
  if (!withAcc && !gate)
    std::tie(resid, residAdd) = residualAdd(op);
  if (cast<TernaryType>(op.getWeight().getType()).getLayout() ==
      TernaryLayout::lut3) {
    assert(!gate && "the select pass gates no lut3 matmul");
    return lowerLutMatmul(op, *parts, accOut, resid, residAdd);
  }
  std::string name = "tmatmul_" + std::to_string(n) + "x" +
                     std::to_string(k) + "_" + isaName + (withAcc ? "_acc" : "") +
                     (gate ? "_gated" : "") + (resid ? "_res" : "");
  SmallVector<Type> types{q.codes.getType(), q.scale.getType(),
                          q.sum.getType(),   w.getType(),
                          b.getF32Type(),    out.getType()};
  if (withAcc)
    types.push_back(accOut.getType());
  if (gate)
    types.push_back(gate.getType());
  if (resid)
    types.push_back(resid.getType());
  auto kern = kernel(
      name, types, true, [&](Emit &e, ValueRange a) {
        Value codes = a[0], scales = a[1], sums = a[2], wm = a[3], al = a[4],
              o = a[5];
        size_t next = 6;
        Value accs = withAcc ? a[next++] : Value();
        Value gates = gate ? a[next++] : Value();
        Value xs = resid ? a[next++] : Value();
        Value begin = a[next], end = a[next + 1];
        Value nt = memref::DimOp::create(b, loc, codes, 0);
        e.loop(begin, end, 1, [&](Value blk) {
          Value r0 = arith::MulIOp::create(b, loc, blk, e.idx(kRowBlock));
          Value r1 = arith::MinUIOp::create(
              b, loc, e.add(r0, e.idx(kRowBlock)), e.idx(n));
          // y[t, row] from the integer dot product of token t.
          auto finishAt = [&](Value t, Value row, Value dot) {
            Value s = memref::LoadOp::create(b, loc, sums, ValueRange{t});
            Value acc = arith::SubIOp::create(b, loc, dot, s);
            Value d = memref::LoadOp::create(b, loc, scales, ValueRange{t});
            Value y = e.mul(arith::SIToFPOp::create(b, loc, b.getF32Type(), acc),
                            e.mul(d, al));
            if (xs)
              y = e.add(y, memref::LoadOp::create(b, loc, xs, ValueRange{t, row}));
            memref::StoreOp::create(b, loc, y, o, ValueRange{t, row});
            if (accs)
              memref::StoreOp::create(b, loc, acc, accs, ValueRange{t, row});
          };
          // Stores the tile of rows rr.. x tokens t0.. (lane k * nr + i)
          // of a vector of dot products (16 lanes; AVX2's passes: 8).
          auto finishTile = [&](Value rr, Value t0, int64_t nr, Value dots) {
            int64_t lanes = cast<VectorType>(dots.getType()).getNumElements();
            int64_t ntk = lanes / nr;
            auto vf = VectorType::get({lanes}, b.getF32Type());
            SmallVector<int64_t> spread;
            for (int64_t l = 0; l < lanes; ++l)
              spread.push_back(l / nr);
            auto perLane = [&](Value buf, Type elt) -> Value {
              if (ntk == 1)
                return e.splat(VectorType::get({lanes}, elt),
                               memref::LoadOp::create(b, loc, buf,
                                                      ValueRange{t0}));
              Value v = vector::LoadOp::create(
                  b, loc, VectorType::get({ntk}, elt), buf, ValueRange{t0});
              return vector::ShuffleOp::create(b, loc, v, v, spread);
            };
            Value acc = arith::SubIOp::create(b, loc, dots,
                                              perLane(sums, b.getI32Type()));
            Value y = e.mul(arith::SIToFPOp::create(b, loc, vf, acc),
                            e.mul(perLane(scales, b.getF32Type()),
                                  e.splat(vf, al)));
            for (int64_t k = 0; k < ntk; ++k) {
              Value t = e.add(t0, e.idx(k));
              auto part = [&](Value v) {
                return ntk == 1 ? v
                                : Value(vector::ExtractStridedSliceOp::create(
                                      b, loc, v, ArrayRef<int64_t>{k * nr},
                                      ArrayRef<int64_t>{nr},
                                      ArrayRef<int64_t>{1}));
              };
              Value yk = part(y);
              if (xs)
                yk = e.add(yk, vector::LoadOp::create(
                                   b, loc, cast<VectorType>(yk.getType()), xs,
                                   ValueRange{t, rr}));
              vector::StoreOp::create(b, loc, yk, o, ValueRange{t, rr});
              if (accs)
                vector::StoreOp::create(b, loc, part(acc), accs,
                                        ValueRange{t, rr});
            }
          };
          // VNNI: tiles of 16 dot products, one reduction tree and vector
          // epilogue each: 4 rows x 4 tokens while 4 tokens are left, then
          // 16 rows x 1 token; what is left goes through the loops below.
          // Token quads outside, row groups inside: a quad's activations
          // come from L2 once for the task's 16 rows (whose weights stay in
          // L1), not once per 4 rows (prefill +8-12 % at 128 tokens, +16-22 %
          // at 512, on 2B4T).
          if (isaName == "avx512vnni" && !gates && n % 16 == 0) {
            Value quads = arith::MulIOp::create(
                b, loc, arith::DivUIOp::create(b, loc, nt, e.idx(4)), e.idx(4));
            e.loop(e.idx(0), quads, 4, [&](Value t0) {
              e.loop(r0, r1, 4, [&](Value rr) {
                SmallVector<Value> rows, ts;
                for (int64_t k = 0; k < 4; ++k) {
                  rows.push_back(e.add(rr, e.idx(k)));
                  ts.push_back(e.add(t0, e.idx(k)));
                }
                finishTile(rr, t0, 4,
                           emitTernaryDotTile(e, wm, rows, codes, ts, q.kp));
              });
            });
            e.loop(quads, nt, 1, [&](Value t) {
              SmallVector<Value> rows;
              for (int64_t k = 0; k < 16; ++k)
                rows.push_back(e.add(r0, e.idx(k)));
              finishTile(r0, t, 16,
                         emitTernaryDotTile(e, wm, rows, codes, {t}, q.kp));
            });
            return;
          }
          // Tokens outside, rows inside, as above: a token block's
          // activations are read from L2 once for the task's rows.
          // Without a gate, tokens go a block at a time: each weight chunk
          // is unpacked once for all of them. AVX2 takes 8 while 8 are left
          // (its i16 sums leave room for 8 tokens' accumulators and the 4
          // code planes in 16 registers: 2.3 vector instructions per
          // pmaddubsw instead of 2.7 with 4 tokens), then 4.
          Value single = e.idx(0);
          if (!gates) {
            SmallVector<int64_t> tokenBlocks{kTokenBlock};
            if (isaName == "avx2")
              tokenBlocks = {2 * kTokenBlock, kTokenBlock};
            for (int64_t tb : tokenBlocks) {
              // Whole blocks of tb tokens from `single` on.
              Value end = e.add(
                  single,
                  arith::MulIOp::create(
                      b, loc,
                      arith::DivUIOp::create(
                          b, loc, arith::SubIOp::create(b, loc, nt, single),
                          e.idx(tb)),
                      e.idx(tb)));
              e.loop(single, end, tb, [&](Value t0) {
                e.loop(r0, r1, 1, [&](Value row) {
                  SmallVector<Value> ts;
                  for (int64_t k = 0; k < tb; ++k)
                    ts.push_back(e.add(t0, e.idx(k)));
                  SmallVector<Value> dots =
                      emitTernaryDot(e, wm, row, codes, ts, q.kp);
                  for (int64_t k = 0; k < tb; ++k)
                    finishAt(ts[k], row, dots[k]);
                });
              });
              single = end;
            }
          }
          // AVX2, one token at a time: half a tile (8 rows) per pass, read
          // as one stream (the row-by-row loop below strides 1 KiB per 32
          // bytes and waits on every miss: 2B4T decoded 16 tok/s).
          bool rows8 = isaName == "avx2" && !gates && n % 16 == 0;
          e.loop(single, nt, 1, [&](Value t) {
            if (rows8) {
              for (int64_t g = 0; g < 16; g += 8) {
                Value rr = e.add(r0, e.idx(g));
                finishTile(rr, t, 8,
                           emitTernaryDotRows8(e, wm, rr, codes, t, q.kp));
              }
              return;
            }
            e.loop(r0, r1, 1, [&](Value row) {
              auto compute = [&] {
                finishAt(t, row,
                         emitTernaryDot(e, wm, row, codes, {t}, q.kp)[0]);
              };
              if (!gates)
                return compute();
              // Gated: the row's weights are read only where gate > 0.
              Value g = memref::LoadOp::create(b, loc, gates, ValueRange{t, row});
              Value on = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                               g, e.f32(0.0f));
              scf::IfOp::create(
                  b, loc, on,
                  [&](OpBuilder &nb, Location) {
                    OpBuilder::InsertionGuard guard(b);
                    b.setInsertionPoint(nb.getInsertionBlock(),
                                        nb.getInsertionPoint());
                    compute();
                    scf::YieldOp::create(b, loc);
                  },
                  [&](OpBuilder &nb, Location) {
                    OpBuilder::InsertionGuard guard(b);
                    b.setInsertionPoint(nb.getInsertionBlock(),
                                        nb.getInsertionPoint());
                    memref::StoreOp::create(b, loc, e.f32(0.0f), o,
                                            ValueRange{t, row});
                    scf::YieldOp::create(b, loc);
                  });
            });
          });
        });
      });
  SmallVector<Value> args{q.codes, q.scale, q.sum, w, alpha, out};
  if (withAcc) {
    args.push_back(accOut);
    accs[op.getResult()] = accOut;
    accScales[op.getResult()] = {q.scale, alpha};
  }
  if (gate)
    args.push_back(gate);
  if (resid)
    args.push_back(resid);
  callTasks(kern, args,
            arith::ConstantIndexOp::create(b, loc,
                                           llvm::divideCeil(n, kRowBlock)));
  buffers[op.getResult()] = out;
  if (residAdd)
    buffers[residAdd.getResult()] = out;
  return success();
}

/// AVX2 byte ops on 32 lanes: pshufb (each byte of `idx` picks a byte of
/// its 128-bit lane of `table`) and psignb (`v` negated where `sign` < 0,
/// zeroed where it is 0).
static Value pshufb(Emit &e, Value table, Value idx) {
  return LLVM::CallIntrinsicOp::create(e.b, e.loc, table.getType(),
                                       e.b.getStringAttr("llvm.x86.avx2.pshuf.b"),
                                       ValueRange{table, idx})
      .getResult(0);
}
static Value psignb(Emit &e, Value v, Value sign) {
  return LLVM::CallIntrinsicOp::create(e.b, e.loc, v.getType(),
                                       e.b.getStringAttr("llvm.x86.avx2.psign.b"),
                                       ValueRange{v, sign})
      .getResult(0);
}
/// 32 bytes shifted as 16 i16 lanes (left, or right logically).
static Value shift16(Emit &e, Value v32, int64_t bits, bool left) {
  auto v16 = VectorType::get({16}, e.b.getI16Type());
  Value w = vector::BitCastOp::create(e.b, e.loc, v16, v32);
  Value by = e.splatInt(v16, bits);
  w = left ? Value(arith::ShLIOp::create(e.b, e.loc, w, by))
           : Value(arith::ShRUIOp::create(e.b, e.loc, w, by));
  return vector::BitCastOp::create(e.b, e.loc, v32.getType(), w);
}

/// lut3 geometry (LowBitAttrs.td): rows per block, codes and bytes per
/// octet (8 groups of 3 codes: 4 x 32 nibble-pair bytes, then 32 sign
/// bytes at kLutSignBytes).
constexpr int64_t kLutRows = 32, kLutOctetCodes = 24, kLutOctetBytes = 160,
                  kLutSignBytes = 128;

/// lut3 groups: index c = 9 (w0+1) + 3 (w1+1) + (w2+1) of codes w0..w2,
/// stored as m = |c - 13| and a sign; table entry m holds the sum for
/// c = 13 + m (entries 14, 15 are zero).
static int lutCode(int m, int i) {
  if (m > 13)
    return 0;
  int c = 13 + m;
  return (i == 0 ? c / 9 : i == 1 ? c / 3 % 3 : c % 3) - 1;
}

Value KernelGenerator::lutTables(const QBuf &q, int64_t k) {
  if (Value t = lutTableBufs.lookup(q.codes))
    return t;
  int64_t groups = llvm::divideCeil(k, kLutOctetCodes) * 8;
  Type i8 = b.getI8Type();
  Value tab = alloc({kDyn, groups * 16}, i8);
  auto kern = kernel(
      "luttab_" + std::to_string(k), {q.codes.getType(), tab.getType()}, true,
      [&](Emit &e, ValueRange a) {
        Value codes = a[0], tb = a[1];
        auto v16 = VectorType::get({16}, i8);
        // w_i of each entry, as 16 lanes.
        SmallVector<Value> ws;
        for (int i = 0; i < 3; ++i) {
          SmallVector<int8_t> lanes;
          for (int m = 0; m < 16; ++m)
            lanes.push_back(int8_t(lutCode(m, i)));
          ws.push_back(arith::ConstantOp::create(
              b, loc, DenseElementsAttr::get(v16, ArrayRef<int8_t>(lanes))));
        }
        Value zero = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
        e.loop(a[2], a[3], 1, [&](Value t) {
          // The 16 sums of group g (codes 3g .. 3g+2; those at or past k
          // are zero). INT4 codes: |sum| <= 24 fits the byte.
          auto group = [&](Value g, ArrayRef<Value> x) {
            Value v;
            for (int i = 0; i < 3; ++i) {
              Value term = e.mul(ws[i], e.splat(v16, x[i]));
              v = v ? e.add(v, term) : term;
            }
            vector::StoreOp::create(b, loc, v, tb,
                                    ValueRange{t, e.mul(g, e.idx(16))});
          };
          int64_t full = k / 3;
          e.loop(e.idx(0), e.idx(full), 1, [&](Value g) {
            SmallVector<Value> x;
            for (int i = 0; i < 3; ++i)
              x.push_back(memref::LoadOp::create(
                  b, loc, codes,
                  ValueRange{t, e.add(e.mul(g, e.idx(3)), e.idx(i))}));
            group(g, x);
          });
          for (int64_t g = full; g < groups; ++g) {
            SmallVector<Value> x;
            for (int64_t i = 0; i < 3; ++i)
              x.push_back(3 * g + i < k
                              ? Value(memref::LoadOp::create(
                                    b, loc, codes,
                                    ValueRange{t, e.idx(3 * g + i)}))
                              : zero);
            group(e.idx(g), x);
          }
        });
      });
  callTasks(kern, {q.codes, tab}, tokens);
  lutTableBufs[q.codes] = tab;
  return tab;
}

/// Octets (24 codes) a lut3 matmul sums in i16 lanes before widening: each
/// adds at most 8 x 24 to a lane, and 128 x 192 < 2^15.
constexpr int64_t kLutChunkOctets = 128;
/// Prompt tokens a lut3 task takes at once (each octet unpacked once for
/// them; 4 keeps their byte and i16 sums in registers).
constexpr int64_t kLutTokens = 4;
/// 32-row blocks per lut3 task: 4 blocks (64 KiB of weights at K = 2560)
/// and a token block's tables (55 KiB) stay in L2 together.
constexpr int64_t kLutTaskBlocks = 4;

LogicalResult KernelGenerator::lowerLutMatmul(TernaryMatmulOp op,
                                              const MatmulParts &parts,
                                              Value accOut, Value resid,
                                              arith::AddFOp residAdd) {
  // Named copies: the kernel body captures them.
  QBuf q = parts.q;
  int64_t n = parts.n, k = parts.k,
          octets = llvm::divideCeil(k, kLutOctetCodes),
          rowBlocks = llvm::divideCeil(n, kLutRows);
  Value out = parts.out, w = parts.w, alpha = parts.alpha;
  Value tab = lutTables(q, k);
  std::string name = "lutmatmul_" + std::to_string(n) + "x" +
                     std::to_string(k) + (accOut ? "_acc" : "") +
                     (resid ? "_res" : "");
  SmallVector<Type> types{tab.getType(), q.scale.getType(), w.getType(),
                          b.getF32Type(), out.getType()};
  if (accOut)
    types.push_back(accOut.getType());
  if (resid)
    types.push_back(resid.getType());
  auto kern = kernel(name, types, true, [&](Emit &e, ValueRange a) {
    Value tb = a[0], scales = a[1], wm = a[2], al = a[3], o = a[4];
    size_t next = 5;
    Value accs = accOut ? a[next++] : Value();
    Value xs = resid ? a[next++] : Value();
    Value begin = a[next], end = a[next + 1];
    Type i8 = b.getI8Type(), i16 = b.getI16Type(), i32 = b.getI32Type();
    auto v32i8 = VectorType::get({32}, i8), v16i8 = VectorType::get({16}, i8),
         v16i16 = VectorType::get({16}, i16), v16i32 = VectorType::get({16}, i32);
    Value nibble = e.splatInt(v32i8, 0x0F), one = e.splatInt(v32i8, 1);
    Value zero8 = e.splatInt(v32i8, 0), zero16 = e.splatInt(v16i16, 0),
          zero32 = e.splatInt(v16i32, 0);
    Value sums = e.scratch(MemRefType::get({32}, i32));
    Value nt = memref::DimOp::create(b, loc, tb, 0);
    SmallVector<int64_t> twice;
    for (int64_t i = 0; i < 32; ++i)
      twice.push_back(i % 16);
    auto half = [&](Value v, int64_t at) -> Value {
      return arith::ExtSIOp::create(
          b, loc, v16i16,
          vector::ExtractStridedSliceOp::create(
              b, loc, v, ArrayRef<int64_t>{at}, ArrayRef<int64_t>{16},
              ArrayRef<int64_t>{1}));
    };
    // Tokens ts against the row block rb: each octet's nibbles and signs
    // are unpacked once for all of them.
    auto block = [&](Value rb, ArrayRef<Value> ts) {
      size_t ntk = ts.size();
      // Per token, rows 0..15 and 16..31 of the block in i32 lanes.
      SmallVector<Value> acc32(2 * ntk, zero32);
      for (int64_t c0 = 0; c0 < octets; c0 += kLutChunkOctets) {
        int64_t c1 = std::min(octets, c0 + kLutChunkOctets);
        SmallVector<Value> acc16 = e.fold(
            e.idx(c0), e.idx(c1), 1, SmallVector<Value>(2 * ntk, zero16),
            [&](Value oc, ValueRange cur) -> SmallVector<Value> {
              // One stream per row block: 160 bytes an octet, prefetched
              // ~4 KiB ahead (past the block's end: the next block's).
              for (int64_t l = 0; l < 3; ++l)
                prefetchStream(
                    e, wm,
                    {rb, e.add(oc, e.idx(kPrefetchBytes / kLutOctetBytes)),
                     e.idx(64 * l)});
              Value signs = vector::LoadOp::create(
                  b, loc, v32i8, wm, ValueRange{rb, oc, e.idx(kLutSignBytes)});
              Value g0 = e.mul(oc, e.idx(8));
              SmallVector<Value> a16(cur);
              SmallVector<Value> acc8(ntk, zero8);
              for (int64_t p = 0; p < 4; ++p) {
                Value packed = vector::LoadOp::create(
                    b, loc, v32i8, wm, ValueRange{rb, oc, e.idx(32 * p)});
                Value idx[2] = {
                    arith::AndIOp::create(b, loc, packed, nibble),
                    arith::AndIOp::create(b, loc, shift16(e, packed, 4, false),
                                          nibble)};
                for (int64_t h = 0; h < 2; ++h) {
                  int64_t j = 2 * p + h;
                  // Bit 7 of each byte: group j's sign; never zero.
                  Value sign = arith::OrIOp::create(
                      b, loc, j == 7 ? signs : shift16(e, signs, 7 - j, true),
                      one);
                  Value at = e.mul(e.add(g0, e.idx(j)), e.idx(16));
                  for (size_t k = 0; k < ntk; ++k) {
                    Value t16 = vector::LoadOp::create(b, loc, v16i8, tb,
                                                       ValueRange{ts[k], at});
                    Value table =
                        vector::ShuffleOp::create(b, loc, t16, t16, twice);
                    acc8[k] = e.add(acc8[k],
                                    psignb(e, pshufb(e, table, idx[h]), sign));
                  }
                }
                // 4 groups (|sum| <= 96) per byte, then widened.
                if (p % 2 == 1)
                  for (size_t k = 0; k < ntk; ++k) {
                    a16[2 * k] = e.add(a16[2 * k], half(acc8[k], 0));
                    a16[2 * k + 1] = e.add(a16[2 * k + 1], half(acc8[k], 16));
                    acc8[k] = zero8;
                  }
              }
              return a16;
            });
        for (size_t hh = 0; hh < 2 * ntk; ++hh)
          acc32[hh] = e.add(acc32[hh],
                            arith::ExtSIOp::create(b, loc, v16i32, acc16[hh]));
      }
      Value r0 = e.mul(rb, e.idx(kLutRows));
      Value r1 =
          arith::MinUIOp::create(b, loc, e.add(r0, e.idx(kLutRows)), e.idx(n));
      for (size_t k = 0; k < ntk; ++k) {
        Value t = ts[k];
        vector::StoreOp::create(b, loc, acc32[2 * k], sums,
                                ValueRange{e.idx(0)});
        vector::StoreOp::create(b, loc, acc32[2 * k + 1], sums,
                                ValueRange{e.idx(16)});
        Value d = memref::LoadOp::create(b, loc, scales, ValueRange{t});
        Value scale = e.mul(d, al);
        e.loop(r0, r1, 1, [&](Value row) {
          Value acc = memref::LoadOp::create(
              b, loc, sums, ValueRange{arith::SubIOp::create(b, loc, row, r0)});
          Value y = e.mul(arith::SIToFPOp::create(b, loc, b.getF32Type(), acc),
                          scale);
          if (xs)
            y = e.add(y, memref::LoadOp::create(b, loc, xs, ValueRange{t, row}));
          memref::StoreOp::create(b, loc, y, o, ValueRange{t, row});
          if (accs)
            memref::StoreOp::create(b, loc, acc, accs, ValueRange{t, row});
        });
      }
    };
    // A task's row blocks are one stream (adjacent in the view). Prompts:
    // kLutTokens tokens at a time, then one; tokens outside, row blocks
    // inside, so a token block's tables come from L2 once per task, not
    // once per row block.
    Value whole = e.mul(arith::DivUIOp::create(b, loc, nt, e.idx(kLutTokens)),
                        e.idx(kLutTokens));
    e.loop(begin, end, 1, [&](Value task) {
      Value rb0 = e.mul(task, e.idx(kLutTaskBlocks));
      Value rb1 = arith::MinUIOp::create(
          b, loc, e.add(rb0, e.idx(kLutTaskBlocks)), e.idx(rowBlocks));
      e.loop(e.idx(0), whole, kLutTokens, [&](Value t0) {
        SmallVector<Value> ts;
        for (int64_t k = 0; k < kLutTokens; ++k)
          ts.push_back(e.add(t0, e.idx(k)));
        e.loop(rb0, rb1, 1, [&](Value rb) { block(rb, ts); });
      });
      e.loop(whole, nt, 1, [&](Value t) {
        e.loop(rb0, rb1, 1, [&](Value rb) { block(rb, {t}); });
      });
    });
  });
  SmallVector<Value> args{tab, q.scale, w, alpha, out};
  if (accOut) {
    args.push_back(accOut);
    accs[op.getResult()] = accOut;
    accScales[op.getResult()] = {q.scale, alpha};
  }
  if (resid)
    args.push_back(resid);
  callTasks(kern, args,
            arith::ConstantIndexOp::create(
                b, loc, llvm::divideCeil(rowBlocks, kLutTaskBlocks)));
  buffers[op.getResult()] = out;
  if (residAdd)
    buffers[residAdd.getResult()] = out;
  return success();
}

/// The products of unsigned bytes `u` and signed bytes `s` (32 each) summed
/// in pairs into 16 i16 lanes: pmaddubsw on x86 (saturating, but the
/// callers keep every sum within 2^15), the same sums from plain vector ops
/// elsewhere.
static Value pairMadd16(Emit &e, StringRef isa, Value u, Value s) {
  if (isa == "avx2" || isa == "avx512vnni")
    return maddubs16(e, u, s);
  auto v32 = VectorType::get({32}, e.b.getI16Type());
  Value p = e.mul(arith::ExtUIOp::create(e.b, e.loc, v32, u),
                  arith::ExtSIOp::create(e.b, e.loc, v32, s));
  SmallVector<int64_t> even, odd;
  for (int64_t i = 0; i < 16; ++i) {
    even.push_back(2 * i);
    odd.push_back(2 * i + 1);
  }
  return e.add(vector::ShuffleOp::create(e.b, e.loc, p, p, even),
               vector::ShuffleOp::create(e.b, e.loc, p, p, odd));
}

/// The i16 sums of a pair of cols2 columns' codes times their activations,
/// for one 128-row half block: `ca` and `cb` are the columns' 32-byte
/// halves, `acts` the pair's two codes in every i16 lane. Interleaving the
/// bytes (unpack low / high per 128-bit lane, which the cols2 byte order
/// turns into rows in order) lets each code plane meet both codes in one
/// pmaddubsw, 16 rows x 2 columns; lane l of acc[2 i + x] is row
/// 32 i + 16 x + l of the half.
static void sparsePair(Emit &e, StringRef isa, Value ca, Value cb, Value acts,
                       MutableArrayRef<Value> acc) {
  SmallVector<int64_t> lo, hi;
  for (int64_t lane = 0; lane < 2; ++lane)
    for (int64_t m = 0; m < 8; ++m)
      for (int64_t src : {0, 32}) {
        lo.push_back(src + 16 * lane + m);
        hi.push_back(src + 16 * lane + 8 + m);
      }
  auto v8i32 = VectorType::get({8}, e.b.getI32Type());
  for (auto [x, mask] :
       llvm::enumerate(SmallVector<ArrayRef<int64_t>>{lo, hi})) {
    Value mixed = vector::BitCastOp::create(
        e.b, e.loc, v8i32, vector::ShuffleOp::create(e.b, e.loc, ca, cb, mask));
    for (int i = 0; i < 4; ++i)
      acc[2 * i + x] =
          e.add(acc[2 * i + x],
                pairMadd16(e, isa, codePlane(e, mixed, i, false), acts));
  }
}

/// Zero-skipping matmul over cols2 weights (PackTernaryWeights), from the
/// input's lists of non-zero columns (listNonZeros), taken in pairs
/// (sparsePair). A zero code reads no weights; the integer sums equal the
/// dense kernel's, so the results are bit-identical.
///  - One token (decoding): split-K. kSparseGroups tasks each take a
///    share of the token's pairs and every row, a few pairs at a time
///    (kSparseRegPairs, summed in registers per 128-row half), so each
///    non-zero column is read whole, in order, and a zero one's bytes are
///    never touched (tasks over blocks of 256 rows, reading 64 scattered
///    bytes per column, measured no faster than the dense kernel at density
///    0.33 on 2B4T's down_proj); each task prefetches the columns
///    kSparsePrefetchPairs pairs ahead and leaves its i32 sums in a partial
///    row, which a second kernel adds up.
///  - A prompt: tasks over blocks of 256 rows; per token and 128-row half,
///    all its pairs with the sums in registers; the block's bytes of the
///    columns stay in the core's cache from token to token.
/// i16 sums cover at most kSparseChunk pairs before widening to i32.
LogicalResult KernelGenerator::lowerSparseMatmul(TernaryMatmulSparseOp op) {
  FailureOr<MatmulParts> parts = matmulParts(op, op.getInput(), op.getWeight());
  if (failed(parts))
    return failure();
  // Named copies, not structured bindings: the kernel bodies capture them.
  QBuf q = parts->q;
  int64_t n = parts->n, k = parts->k, np = padTo(n, 256);
  Value out = parts->out, w = parts->w, alpha = parts->alpha;
  assert(q.nzCols && "a zero-skipping matmul's input lists its non-zeros");
  // A decoded token reads the columns of its non-zero inputs: the
  // selector's expected bytes (lowbit.bytes, from the expected density).
  if (auto expected = op->getAttrOfType<IntegerAttr>("lowbit.bytes"))
    bytesPerToken += std::min(expected.getInt(), k * np / 4);
  else
    bytesPerToken += k * np / 4;
  // A residual add that is the result's only use runs in the epilogue, as
  // in lowerMatmul.
  Value resid;
  arith::AddFOp residAdd;
  std::tie(resid, residAdd) = residualAdd(op);
  std::string base =
                  std::to_string(n) + "x" + std::to_string(k) + "_" + isaName,
              shape = base + (resid ? "_res" : "");
  IntegerType i8 = b.getI8Type(), i16 = b.getI16Type(), i32 = b.getI32Type();
  Type f32 = b.getF32Type(), idxT = b.getIndexType();
  auto v32i8 = VectorType::get({32}, i8), v16i16 = VectorType::get({16}, i16),
       v16i32 = VectorType::get({16}, i32), v8i32 = VectorType::get({8}, i32),
       v8f32 = VectorType::get({8}, f32);
  auto column = [&](Value cols, Value t, Value at) -> Value {
    return arith::IndexCastOp::create(
        b, loc, idxT, memref::LoadOp::create(b, loc, cols, ValueRange{t, at}));
  };
  // The pair's two codes as one i16, in every lane.
  auto pairCodes = [&](Emit &e, Value nzc, Value t, Value p2) -> Value {
    Value two = vector::LoadOp::create(b, loc, VectorType::get({2}, i8), nzc,
                                       ValueRange{t, p2});
    Value pr = vector::ExtractOp::create(
        b, loc,
        vector::BitCastOp::create(b, loc, VectorType::get({1}, i16), two),
        ArrayRef<int64_t>{0});
    return vector::BitCastOp::create(b, loc, v32i8, e.splat(v16i16, pr));
  };
  // out[t, r0 + l] = (sums(l) - sum q) * d * alpha (+ xs[t, r0 + l]) for l
  // in [0, rows).
  auto epilogue = [&](Emit &e, Value o, Value xs, Value sums, Value scales,
                      Value al, Value t, Value r0, Value rows,
                      function_ref<Value(Value, int64_t)> sumAt) {
    Value s = memref::LoadOp::create(b, loc, sums, ValueRange{t});
    Value scale =
        e.mul(memref::LoadOp::create(b, loc, scales, ValueRange{t}), al);
    Value full = arith::MulIOp::create(
        b, loc, arith::DivUIOp::create(b, loc, rows, e.idx(8)), e.idx(8));
    e.loop(e.idx(0), full, 8, [&](Value l) {
      Value y = e.mul(
          arith::SIToFPOp::create(
              b, loc, v8f32,
              arith::SubIOp::create(b, loc, sumAt(l, 8), e.splat(v8i32, s))),
          e.splat(v8f32, scale));
      if (xs)
        y = e.add(y, vector::LoadOp::create(b, loc, v8f32, xs,
                                            ValueRange{t, e.add(r0, l)}));
      vector::StoreOp::create(b, loc, y, o, ValueRange{t, e.add(r0, l)});
    });
    e.loop(full, rows, 1, [&](Value l) {
      Value y =
          e.mul(arith::SIToFPOp::create(
                    b, loc, f32, arith::SubIOp::create(b, loc, sumAt(l, 1), s)),
                scale);
      if (xs)
        y = e.add(
            y, memref::LoadOp::create(b, loc, xs, ValueRange{t, e.add(r0, l)}));
      memref::StoreOp::create(b, loc, y, o, ValueRange{t, e.add(r0, l)});
    });
  };
  // acc32[16 j, 16 j + 16) += acc16[j], sign-extended.
  auto widenInto = [&](Value acc32, ArrayRef<Value> acc16) {
    Emit e{b, loc};
    for (auto [j, a] : llvm::enumerate(acc16)) {
      Value at = e.idx(16 * int64_t(j));
      Value cur = vector::LoadOp::create(b, loc, v16i32, acc32, at);
      vector::StoreOp::create(
          b, loc, e.add(cur, arith::ExtSIOp::create(b, loc, v16i32, a)), acc32,
          at);
    }
  };

  Value partial = alloc({kSparseGroups, np}, i32);
  SmallVector<Value> promptArgs{q.nzCols, q.nzCodes, q.nzPairs, q.scale,
                                q.sum,    w,         alpha,     out};
  SmallVector<Value> reduceArgs{partial, q.scale, q.sum, alpha, out};
  if (resid) {
    promptArgs.push_back(resid);
    reduceArgs.push_back(resid);
  }
  // A prompt: tasks over blocks of 256 rows.
  auto prompt = kernel(
      "tmatmul_sparse_" + shape, ValueRange(promptArgs).getTypes(), true,
      [&](Emit &e, ValueRange a) {
        Value cols = a[0], nzc = a[1], pairs = a[2], scales = a[3], sums = a[4],
              wm = a[5], al = a[6], o = a[7];
        Value xs = resid ? a[8] : Value();
        Value acc32 = e.scratch(MemRefType::get({128}, i32));
        Value nt = memref::DimOp::create(b, loc, cols, 0);
        ValueRange range = a.take_back(2);
        e.loop(range[0], range[1], 1, [&](Value blk) {
          e.loop(e.idx(0), nt, 1, [&](Value t) {
            Value npairs = arith::IndexCastOp::create(
                b, loc, idxT,
                memref::LoadOp::create(b, loc, pairs, ValueRange{t}));
            for (int64_t h = 0; h < 2; ++h) {
              Value r0 = e.add(arith::MulIOp::create(b, loc, blk, e.idx(256)),
                               e.idx(128 * h));
              Value live = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::ult, r0, e.idx(n));
              scf::IfOp::create(b, loc, live, [&](OpBuilder &nb, Location) {
                OpBuilder::InsertionGuard g(b);
                b.setInsertionPoint(nb.getInsertionBlock(),
                                    nb.getInsertionPoint());
                Value off = e.add(arith::MulIOp::create(b, loc, blk, e.idx(64)),
                                  e.idx(32 * h));
                for (int64_t i = 0; i < 8; ++i)
                  vector::StoreOp::create(b, loc, e.splatInt(v16i32, 0), acc32,
                                          ValueRange{e.idx(16 * i)});
                e.loop(e.idx(0), npairs, kSparseChunk, [&](Value c0) {
                  Value c1 = arith::MinUIOp::create(
                      b, loc, e.add(c0, e.idx(kSparseChunk)), npairs);
                  SmallVector<Value> acc = e.fold(
                      c0, c1, 1, SmallVector<Value>(8, e.splatInt(v16i16, 0)),
                      [&](Value p, ValueRange cur) -> SmallVector<Value> {
                        Value p2 = arith::MulIOp::create(b, loc, p, e.idx(2));
                        Value p2b = e.add(p2, e.idx(1));
                        Value ca = vector::LoadOp::create(
                            b, loc, v32i8, wm,
                            ValueRange{column(cols, t, p2), off});
                        Value cb = vector::LoadOp::create(
                            b, loc, v32i8, wm,
                            ValueRange{column(cols, t, p2b), off});
                        SmallVector<Value> next(cur);
                        sparsePair(e, isaName, ca, cb, pairCodes(e, nzc, t, p2),
                                   next);
                        return next;
                      });
                  widenInto(acc32, acc);
                });
                Value rows = arith::MinUIOp::create(
                    b, loc, arith::SubIOp::create(b, loc, e.idx(n), r0),
                    e.idx(128));
                epilogue(e, o, xs, sums, scales, al, t, r0, rows,
                         [&](Value l, int64_t wd) -> Value {
                           if (wd == 1)
                             return memref::LoadOp::create(b, loc, acc32,
                                                           ValueRange{l});
                           return vector::LoadOp::create(b, loc, v8i32, acc32,
                                                         ValueRange{l});
                         });
                scf::YieldOp::create(b, loc);
              });
            }
          });
        });
      });

  // One token: split-K into kSparseGroups partial rows of i32 sums.
  auto split = kernel(
      "tmatmul_sparse_splitk_" + base,
      {q.nzCols.getType(), q.nzCodes.getType(), q.nzPairs.getType(),
       w.getType(), partial.getType()},
      true, [&](Emit &e, ValueRange a) {
        Value cols = a[0], nzc = a[1], pairs = a[2], wm = a[3], part = a[4];
        Value acc16 = e.scratch(MemRefType::get({np}, i16));
        Value t = e.idx(0);
        Value npairs = arith::IndexCastOp::create(
            b, loc, idxT, memref::LoadOp::create(b, loc, pairs, ValueRange{t}));
        e.loop(a[5], a[6], 1, [&](Value g) {
          auto bound = [&](Value gi) {
            return arith::DivUIOp::create(
                b, loc, arith::MulIOp::create(b, loc, npairs, gi),
                e.idx(kSparseGroups));
          };
          Value p0 = bound(g), p1 = bound(e.add(g, e.idx(1)));
          Value zero32 = e.splatInt(v16i32, 0);
          e.loop(e.idx(0), e.idx(np), 16, [&](Value r) {
            vector::StoreOp::create(b, loc, zero32, part, ValueRange{g, r});
          });
          e.loop(p0, p1, kSparseChunk, [&](Value s0) {
            Value s1 = arith::MinUIOp::create(
                b, loc, e.add(s0, e.idx(kSparseChunk)), p1);
            Value zero16 = e.splatInt(v16i16, 0);
            e.loop(e.idx(0), e.idx(np), 16, [&](Value r) {
              vector::StoreOp::create(b, loc, zero16, acc16, ValueRange{r});
            });
            e.loop(s0, s1, kSparseRegPairs, [&](Value c0) {
              Value c1 = arith::MinUIOp::create(
                  b, loc, e.add(c0, e.idx(kSparseRegPairs)), s1);
              // The lines of the columns kSparsePrefetchPairs pairs ahead
              // (past the list's end: its column-0 padding), a few per
              // half: line hb / 2 of the first or the second half of those
              // 2 kSparseRegPairs columns. (All of them at once measured
              // 1.8x slower: the burst outruns the core's miss buffers.)
              Value ahead = arith::MulIOp::create(
                  b, loc, e.add(c0, e.idx(kSparsePrefetchPairs)), e.idx(2));
              e.loop(e.idx(0), e.idx(np / 128), 1, [&](Value hb) {
                Value line = arith::MulIOp::create(
                    b, loc, arith::DivUIOp::create(b, loc, hb, e.idx(2)),
                    e.idx(64));
                Value first = e.add(
                    ahead,
                    arith::MulIOp::create(
                        b, loc, arith::RemUIOp::create(b, loc, hb, e.idx(2)),
                        e.idx(kSparseRegPairs)));
                for (int64_t j = 0; j < kSparseRegPairs; ++j)
                  memref::PrefetchOp::create(
                      b, loc, wm,
                      ValueRange{column(cols, t, e.add(first, e.idx(j))), line},
                      /*isWrite=*/false, /*localityHint=*/3,
                      /*isDataCache=*/true);
                Value off = arith::MulIOp::create(b, loc, hb, e.idx(32));
                SmallVector<Value> acc = e.fold(
                    c0, c1, 1, SmallVector<Value>(8, e.splatInt(v16i16, 0)),
                    [&](Value p, ValueRange cur) -> SmallVector<Value> {
                      Value p2 = arith::MulIOp::create(b, loc, p, e.idx(2));
                      Value ca = vector::LoadOp::create(
                          b, loc, v32i8, wm,
                          ValueRange{column(cols, t, p2), off});
                      Value cb = vector::LoadOp::create(
                          b, loc, v32i8, wm,
                          ValueRange{column(cols, t, e.add(p2, e.idx(1))),
                                     off});
                      SmallVector<Value> next(cur);
                      sparsePair(e, isaName, ca, cb, pairCodes(e, nzc, t, p2),
                                 next);
                      return next;
                    });
                Value row = arith::MulIOp::create(b, loc, hb, e.idx(128));
                for (auto [j, v] : llvm::enumerate(acc)) {
                  Value at = e.add(row, e.idx(16 * int64_t(j)));
                  Value cur = vector::LoadOp::create(b, loc, v16i16, acc16,
                                                     ValueRange{at});
                  vector::StoreOp::create(b, loc, e.add(cur, v), acc16,
                                          ValueRange{at});
                }
              });
            });
            e.loop(e.idx(0), e.idx(np), 16, [&](Value r) {
              Value v =
                  vector::LoadOp::create(b, loc, v16i16, acc16, ValueRange{r});
              Value cur = vector::LoadOp::create(b, loc, v16i32, part,
                                                 ValueRange{g, r});
              vector::StoreOp::create(
                  b, loc, e.add(cur, arith::ExtSIOp::create(b, loc, v16i32, v)),
                  part, ValueRange{g, r});
            });
          });
        });
      });
  // The groups' partial sums added up, per block of 256 rows.
  auto reduce = kernel(
      "tmatmul_sparse_reduce_" + shape, ValueRange(reduceArgs).getTypes(), true,
      [&](Emit &e, ValueRange a) {
        Value part = a[0], scales = a[1], sums = a[2], al = a[3], o = a[4];
        Value xs = resid ? a[5] : Value();
        ValueRange range = a.take_back(2);
        e.loop(range[0], range[1], 1, [&](Value blk) {
          Value r0 = arith::MulIOp::create(b, loc, blk, e.idx(256));
          Value rows = arith::MinUIOp::create(
              b, loc, arith::SubIOp::create(b, loc, e.idx(n), r0), e.idx(256));
          epilogue(e, o, xs, sums, scales, al, e.idx(0), r0, rows,
                   [&](Value l, int64_t wd) -> Value {
                     Value r = e.add(r0, l);
                     Value sum;
                     for (int64_t g = 0; g < kSparseGroups; ++g) {
                       Value v =
                           wd == 1 ? Value(memref::LoadOp::create(
                                         b, loc, part, ValueRange{e.idx(g), r}))
                                   : Value(vector::LoadOp::create(
                                         b, loc, v8i32, part,
                                         ValueRange{e.idx(g), r}));
                       sum = sum ? e.add(sum, v) : v;
                     }
                     return sum;
                   });
        });
      });

  Emit e{b, loc};
  Value one =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tokens, e.idx(1));
  Value blocks = e.idx(np / 256);
  scf::IfOp::create(
      b, loc, one,
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        callTasks(split, {q.nzCols, q.nzCodes, q.nzPairs, w, partial},
                  e.idx(kSparseGroups));
        callTasks(reduce, reduceArgs, blocks);
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        callTasks(prompt, promptArgs, blocks);
        scf::YieldOp::create(b, loc);
      });
  buffers[op.getResult()] = out;
  if (residAdd)
    buffers[residAdd.getResult()] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

LogicalResult KernelGenerator::lowerRoPE(bitnet::RoPEOp op) {
  Value x = lowered(op, op.getInput());
  if (!x)
    return failure();
  auto gen = op.getPositions().getDefiningOp<tensor::GenerateOp>();
  if (!gen)
    return op.emitError("rope positions must be the importer's start + index");
  int64_t d = op.getInput().getType().getShape()[1], hd = op.getHeadDim();
  int64_t half = hd / 2, heads = d / hd;
  double theta = op.getTheta().convertToFloat();
  std::string suffix = std::to_string(hd) + "_" +
                       std::to_string(llvm::bit_cast<uint32_t>(float(theta)));
  // cos and sin of the angle p * theta^(-2i/hd) (in f64, rounded to f32) of
  // pair i at the position p of each token: computed once per forward call
  // for every rope of that head size and theta.
  Value &table = ropeTables[suffix];
  if (!table) {
    table = alloc({kDyn, 2, half}, b.getF32Type());
    auto tableKern = kernel("ropetable_" + suffix,
                            {table.getType(), b.getIndexType()}, false,
                            [&](Emit &e, ValueRange a) {
      Value tab = a[0], start = a[1];
      Value n = memref::DimOp::create(b, loc, tab, 0);
      auto f64 = b.getF64Type(), f32 = b.getF32Type();
      e.loop(e.idx(0), n, 1, [&](Value t) {
        Value p = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                             e.add(start, t));
        Value pf = arith::SIToFPOp::create(b, loc, f64, p);
        e.loop(e.idx(0), e.idx(half), 1, [&](Value i) {
          Value ii = arith::SIToFPOp::create(
              b, loc, f64,
              arith::IndexCastOp::create(b, loc, b.getI64Type(), i));
          Value ex = arith::DivFOp::create(
              b, loc, arith::MulFOp::create(b, loc, ii, e.f64(-2.0)),
              e.f64(double(hd)));
          Value inv = math::PowFOp::create(b, loc, e.f64(theta), ex);
          Value ang = arith::MulFOp::create(b, loc, pf, inv);
          memref::StoreOp::create(
              b, loc,
              arith::TruncFOp::create(b, loc, f32,
                                      math::CosOp::create(b, loc, ang)),
              tab, ValueRange{t, e.idx(0), i});
          memref::StoreOp::create(
              b, loc,
              arith::TruncFOp::create(b, loc, f32,
                                      math::SinOp::create(b, loc, ang)),
              tab, ValueRange{t, e.idx(1), i});
        });
      });
    });
    call(tableKern, {table, startArg});
  }
  std::string name = "rope_" + std::to_string(d) + "_" + suffix;
  auto kern = kernel(name, {x.getType(), table.getType()}, false,
                     [&](Emit &e, ValueRange a) {
    Value xs = a[0], tab = a[1];
    Value n = memref::DimOp::create(b, loc, xs, 0);
    e.loop(e.idx(0), n, 1, [&](Value t) {
      e.loop(e.idx(0), e.idx(heads), 1, [&](Value h) {
        Value h0 = arith::MulIOp::create(b, loc, h, e.idx(hd));
        rowLoop(e, half, vw, [&](Value i, int64_t wd) {
          Value i0 = e.add(h0, i), i1 = e.add(i0, e.idx(half));
          Value c = load(e, tab, {t, e.idx(0), i}, wd);
          Value sn = load(e, tab, {t, e.idx(1), i}, wd);
          Value x0 = load(e, xs, {t, i0}, wd), x1 = load(e, xs, {t, i1}, wd);
          Value y0 =
              arith::SubFOp::create(b, loc, e.mul(x0, c), e.mul(x1, sn));
          Value y1 = e.add(e.mul(x1, c), e.mul(x0, sn));
          ::store(e, y0, xs, {t, i0});
          ::store(e, y1, xs, {t, i1});
        });
      });
    });
  });
  // In place: the un-rotated value has no other user in imported models.
  if (!op.getInput().hasOneUse())
    return op.emitError("rope input must have one use");
  call(kern, {x, table});
  buffers[op.getResult()] = x;
  // At position 0 the rotation is the identity: the sums still describe K.
  if (Value acc = accs.lookup(op.getInput())) {
    accs[op.getResult()] = acc;
    accScales[op.getResult()] = accScales.lookup(op.getInput());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult KernelGenerator::lowerAttention(bitnet::AttentionOp op) {
  Value q = lowered(op, op.getQ()), k = lowered(op, op.getK()),
        v = lowered(op, op.getV());
  if (!q || !k || !v)
    return failure();
  auto kArg = dyn_cast<BlockArgument>(op.getKCache());
  auto vArg = dyn_cast<BlockArgument>(op.getVCache());
  if (!kArg || !vArg || kArg.getArgNumber() < 2 ||
      vArg.getArgNumber() != kArg.getArgNumber() + 1 ||
      (kArg.getArgNumber() - 2) % 2 != 0)
    return op.emitError("attention caches must be the forward function's "
                        "per-layer cache arguments");
  if (int64_t(op.getKvBits()) != kvBits || op.getKvF16() != kvF16)
    return op.emitError("all layers must use one KV-cache precision");
  int64_t layer = (kArg.getArgNumber() - 2) / 2;
  int64_t nh = op.getNumHeads(), nkv = op.getNumKvHeads(), hd = op.getHeadDim();
  int64_t group = nh / nkv, qw = nh * hd;
  // Bytes of one KV head's codes in a quantized cache's position row.
  int64_t headBytes = hd / groupCodes * groupBytes;
  int64_t hv = hd % 16 == 0 ? 16 : hd % 8 == 0 ? 8 : hd % 4 == 0 ? 4 : 1;
  float scale = float(1.0 / std::sqrt(double(hd)));
  bool quantized = kvBits != 16;
  Value out = alloc({kDyn, qw}, b.getF32Type());
  Value layerIdx = arith::ConstantIndexOp::create(b, loc, layer);
  Type f32 = b.getF32Type(), f64 = b.getF64Type(), i32 = b.getI32Type();

  // Appends the new K/V rows of an f32 cache (the decode kernel does it in
  // its tasks instead).
  std::function<void()> storeRows = [] {};
  if (!quantized) {
    // Appends the new K/V rows at positions start + t, head by head.
    auto kvStore = kernel("kvstore_" + std::to_string(nkv) + "x" +
                              std::to_string(hd) + (kvF16 ? "_f16" : ""),
                          {k.getType(), v.getType(), kCache.getType(),
                           vCache.getType(), b.getIndexType(),
                           b.getIndexType()},
                          false, [&](Emit &e, ValueRange a) {
      Value n = memref::DimOp::create(b, loc, a[0], 0);
      e.loop(e.idx(0), n, 1, [&](Value t) {
        Value p = e.add(a[5], t);
        for (int64_t h = 0; h < nkv; ++h)
          rowLoop(e, hd, vw, [&](Value c, int64_t wd) {
            Value col = e.add(c, e.idx(h * hd));
            storeF32(e, load(e, a[0], {t, col}, wd), a[2],
                     {a[4], e.idx(h), p, c});
            storeF32(e, load(e, a[1], {t, col}, wd), a[3],
                     {a[4], e.idx(h), p, c});
          });
      });
    });
    storeRows = [&, kvStore] {
      call(kvStore, {k, v, kCache, vCache, layerIdx, startArg});
    };
  } else {
    // Option A per token and KV head (spec §7.3); position 0 keeps 8 bits.
    // Codes of V, and of K at position 0 (RoPE is the identity there), come
    // from the exact integer sums, so ties round half to even exactly.
    Value kAcc = accs.lookup(op.getK()), vAcc = accs.lookup(op.getV());
    auto kScale = accScales.find(op.getK()), vScale = accScales.find(op.getV());
    if (!kAcc || !vAcc || kScale == accScales.end() ||
        vScale == accScales.end())
      return op.emitError("quantized KV caches need K and V straight from "
                          "ternary matmuls");
    auto kvStore = kernel(
        "kvquant_" + std::to_string(nkv) + "x" + std::to_string(hd) + "_b" +
            std::to_string(kvBits) + "_s" + std::to_string(storeBits),
        {k.getType(), v.getType(), kAcc.getType(), vAcc.getType(),
         kScale->second.first.getType(), vScale->second.first.getType(), f32,
         f32, kCache.getType(), kSteps.getType(), kBos.getType(),
         vCache.getType(), vSteps.getType(), vBos.getType(), b.getIndexType(),
         b.getIndexType()},
        false, [&](Emit &e, ValueRange a) {
      Value n = memref::DimOp::create(b, loc, a[0], 0);
      Value lay = a[14], start = a[15];
      Value scratch = e.scratch(MemRefType::get({hd}, i32));
      e.loop(e.idx(0), n, 1, [&](Value t) {
        Value p = e.add(start, t);
        Value atBos = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            p, e.idx(0));
        int64_t nq = (int64_t(1) << (kvBits - 1)) - 1;
        Value levels = arith::SelectOp::create(b, loc, atBos, e.i32(127),
                                               e.i32(int32_t(nq)));
        Value nf32 = arith::SIToFPOp::create(b, loc, f32, levels);
        Value nf64 = arith::SIToFPOp::create(b, loc, f64, levels);
        Value lo = arith::SubIOp::create(
            b, loc, arith::SubIOp::create(b, loc, e.i32(0), levels), e.i32(1));
        // One head of K (which = 0) or V (which = 1).
        auto quantHead = [&](int which, Value h) {
          Value rows = a[which], acc = a[2 + which], ds = a[4 + which],
                alpha = a[6 + which], codes = a[8 + 3 * which],
                steps = a[9 + 3 * which], bos = a[10 + 3 * which];
          Value c0 = arith::MulIOp::create(b, loc, h, e.idx(hd));
          // gamma = max(max |z|, 1e-5) and m = max |acc| over the head.
          auto red = e.fold(
              e.idx(0), e.idx(hd), 1, {e.f32(0.0f), e.i32(0)},
              [&](Value i, ValueRange cur) -> SmallVector<Value> {
                Value c = e.add(c0, i);
                Value z = memref::LoadOp::create(b, loc, rows, ValueRange{t, c});
                Value s = memref::LoadOp::create(b, loc, acc, ValueRange{t, c});
                Value as = math::AbsIOp::create(b, loc, s);
                return {arith::MaximumFOp::create(
                            b, loc, cur[0], math::AbsFOp::create(b, loc, z)),
                        arith::MaxSIOp::create(b, loc, cur[1], as)};
              });
          Value gamma = arith::MaximumFOp::create(b, loc, red[0], e.f32(1e-5f));
          Value m = red[1];
          // The integer path: V always, K only at position 0.
          Value tokScale = e.mul(
              memref::LoadOp::create(b, loc, ds, ValueRange{t}), alpha);
          Value mScaled = e.mul(arith::SIToFPOp::create(b, loc, f64, m),
                                arith::ExtFOp::create(b, loc, f64, tokScale));
          Value useAcc = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGE, mScaled,
              e.f64(double(1e-5f)));
          if (which == 0)
            useAcc = arith::AndIOp::create(b, loc, useAcc, atBos);
          Value gamma64 = arith::ExtFOp::create(b, loc, f64, gamma);
          Value m64 = arith::SIToFPOp::create(b, loc, f64, m);
          e.loop(e.idx(0), e.idx(hd), 1, [&](Value i) {
            Value c = e.add(c0, i);
            Value z = memref::LoadOp::create(b, loc, rows, ValueRange{t, c});
            Value s = memref::LoadOp::create(b, loc, acc, ValueRange{t, c});
            Value viaAcc = arith::DivFOp::create(
                b, loc,
                e.mul(arith::SIToFPOp::create(b, loc, f64, s), nf64), m64);
            Value viaZ = arith::DivFOp::create(
                b, loc, e.mul(arith::ExtFOp::create(b, loc, f64, z), nf64),
                gamma64);
            Value r = math::RoundEvenOp::create(
                b, loc, arith::SelectOp::create(b, loc, useAcc, viaAcc, viaZ));
            Value code = arith::FPToSIOp::create(b, loc, i32, r);
            code = arith::MaxSIOp::create(b, loc, code, lo);
            code = arith::MinSIOp::create(b, loc, code, levels);
            memref::StoreOp::create(b, loc, code, scratch, ValueRange{i});
          });
          // Position 0: one byte per code (code + 128); later positions:
          // `groupCodes` codes (code + 2^(bits-1)) per `groupBytes` bytes.
          auto i8 = b.getI8Type();
          scf::IfOp::create(
              b, loc, atBos,
              [&](OpBuilder &nb, Location) {
                OpBuilder::InsertionGuard guard(b);
                b.setInsertionPoint(nb.getInsertionBlock(),
                                    nb.getInsertionPoint());
                e.loop(e.idx(0), e.idx(hd), 1, [&](Value i) {
                  Value c = memref::LoadOp::create(b, loc, scratch, ValueRange{i});
                  Value u = e.add(c, e.i32(128));
                  memref::StoreOp::create(b, loc,
                                          arith::TruncIOp::create(b, loc, i8, u),
                                          bos, ValueRange{lay, e.add(c0, i)});
                });
                scf::YieldOp::create(b, loc);
              },
              [&](OpBuilder &nb, Location) {
                OpBuilder::InsertionGuard guard(b);
                b.setInsertionPoint(nb.getInsertionBlock(),
                                    nb.getInsertionPoint());
                int32_t offset = 1 << (kvBits - 1), mask = (1 << storeBits) - 1;
                Value headAt = arith::MulIOp::create(b, loc, h, e.idx(headBytes));
                e.loop(e.idx(0), e.idx(hd / groupCodes), 1, [&](Value g) {
                  Value word = e.i32(0);
                  for (int64_t j = 0; j < groupCodes; ++j) {
                    Value at = e.add(arith::MulIOp::create(
                                         b, loc, g, e.idx(groupCodes)),
                                     e.idx(j));
                    Value c = memref::LoadOp::create(b, loc, scratch,
                                                     ValueRange{at});
                    Value u = arith::AndIOp::create(
                        b, loc, e.add(c, e.i32(offset)), e.i32(mask));
                    if (j)
                      u = arith::ShLIOp::create(
                          b, loc, u, e.i32(int32_t(storeBits * j)));
                    word = arith::OrIOp::create(b, loc, word, u);
                  }
                  Value base = e.add(headAt,
                                     arith::MulIOp::create(
                                         b, loc, g, e.idx(groupBytes)));
                  for (int64_t k2 = 0; k2 < groupBytes; ++k2) {
                    Value part = word;
                    if (k2)
                      part = arith::ShRUIOp::create(b, loc, word,
                                                    e.i32(int32_t(8 * k2)));
                    memref::StoreOp::create(
                        b, loc, arith::TruncIOp::create(b, loc, i8, part),
                        codes, ValueRange{lay, p, e.add(base, e.idx(k2))});
                  }
                });
                scf::YieldOp::create(b, loc);
              });
          Value step = arith::DivFOp::create(b, loc, gamma, nf32);
          memref::StoreOp::create(b, loc, step, steps, ValueRange{lay, p, h});
        };
        e.loop(e.idx(0), e.idx(nkv), 1, [&](Value h) {
          quantHead(0, h);
          quantHead(1, h);
        });
      });
    });
    call(kvStore, {k, v, kAcc, vAcc, kScale->second.first,
                   vScale->second.first, kScale->second.second,
                   vScale->second.second, kCache, kSteps, kBos, vCache, vSteps,
                   vBos, layerIdx, startArg});
  }

  // With head_dim a multiple of 16 (up to 256), the blocked kernels: each
  // token's positions in decodeChunks chunks, up to 4 query heads of a KV
  // group at a time (each K and V row loaded, a quantized one dequantized
  // 16 codes at a time in vector registers, once for all of them: the 16
  // lanes of a score block are H heads x 16 / H positions, summed in one
  // pass or, within AVX2's registers, several), the chunks merged
  // by mergeParts. A prompt runs one task per (KV head, token); one token
  // one task per (KV head, chunk), merged after. Otherwise one query head
  // per task, one position at a time.
  bool blocks = hv == 16 && hd <= 256;
  int64_t groupHeads = group % 4 == 0 ? 4 : group % 2 == 0 ? 2 : 1;
  int64_t decodeChunks = kAttnChunks;
  // Which kernel `body` builds: a prompt's (tasks per KV head and token) or
  // a decoded token's (tasks per KV head and chunk, into partials).
  bool decodeMode = false;
  std::string name = "attention_" + std::to_string(nh) + "x" +
                     std::to_string(nkv) + "x" + std::to_string(hd) + "_c" +
                     std::to_string(context) + "_b" + std::to_string(kvBits) +
                     (kvF16 ? "h" : "") +
                     (quantized ? "_s" + std::to_string(storeBits) : "") +
                     (blocks ? "_g" + std::to_string(groupHeads) + "_n" +
                                   std::to_string(decodeChunks)
                             : "");
  // out[t] of every query head of KV head kvh from the chunk partials
  // src[slot0 + c][g] (c < decodeChunks; [0, hd) the sum, hd the max,
  // hd + 1 the exp sum; rows of hd + 16 keep the sums 64-byte aligned):
  // with M the largest chunk max and f_c = exp(max_c - M),
  // out = sum_c f_c acc_c / sum_c f_c sum_c. Chunk 0 always holds position
  // 0; an empty chunk has max -inf, so f_c = 0.
  auto mergeParts = [&](Emit &e, Value src, Value slot0, Value kvh, Value t,
                        Value o) {
    auto v16f = VectorType::get({16}, f32);
    e.loop(e.idx(0), e.idx(group), 1, [&](Value g) {
      auto part = [&](int64_t c, int64_t i) -> Value {
        return memref::LoadOp::create(
            b, loc, src, ValueRange{e.add(slot0, e.idx(c)), g, e.idx(i)});
      };
      SmallVector<Value> mc;
      for (int64_t c = 0; c < decodeChunks; ++c)
        mc.push_back(part(c, hd));
      Value m = mc[0];
      for (int64_t c = 1; c < decodeChunks; ++c)
        m = arith::MaximumFOp::create(b, loc, m, mc[c]);
      Value total = e.f32(0.0f);
      SmallVector<Value> f;
      for (int64_t c = 0; c < decodeChunks; ++c) {
        f.push_back(math::ExpOp::create(
            b, loc, arith::SubFOp::create(b, loc, mc[c], m)));
        total = e.add(total, e.mul(f[c], part(c, hd + 1)));
      }
      Value inv = arith::DivFOp::create(b, loc, e.f32(1.0f), total);
      SmallVector<Value> wc;
      for (int64_t c = 0; c < decodeChunks; ++c)
        wc.push_back(lanes(e, e.mul(f[c], inv), 16));
      Value qo = e.mul(e.add(e.mul(kvh, e.idx(group)), g), e.idx(hd));
      e.loop(e.idx(0), e.idx(hd), 16, [&](Value i) {
        Value acc = e.splat(v16f, e.f32(0.0f));
        for (int64_t c = 0; c < decodeChunks; ++c)
          acc = vector::FMAOp::create(
              b, loc, wc[c], load(e, src, {e.add(slot0, e.idx(c)), g, i}, 16),
              acc);
        ::store(e, acc, o, {t, e.add(qo, i)});
      });
    });
  };

  SmallVector<Type> types{q.getType(), kCache.getType(), vCache.getType()};
  if (quantized)
    types.append({kSteps.getType(), vSteps.getType(), kBos.getType(),
                  vBos.getType()});
  types.append({b.getIndexType(), b.getIndexType(), out.getType()});
  auto body = [&](Emit &e, ValueRange a) {
    Value qs = a[0], kc = a[1], vc = a[2];
    Value ks = quantized ? a[3] : Value(), vs = quantized ? a[4] : Value();
    Value kb = quantized ? a[5] : Value(), vb = quantized ? a[6] : Value();
    size_t base = quantized ? 7 : 3;
    Value lay = a[base], start = a[base + 1], o = a[base + 2],
          begin = a[a.size() - 2], end = a[a.size() - 1];
    // The decode kernel with an f32 cache also gets the new K and V rows.
    bool storesRow = decodeMode && !quantized;
    Value kNew = storesRow ? a[base + 3] : Value(),
          vNew = storesRow ? a[base + 4] : Value();
    Value nt = memref::DimOp::create(b, loc, qs, 0);
    // Quantized caches on the one-position-at-a-time path: one (position,
    // head) row dequantized into `row` (f32[hd], allocated with that path
    // below) per use: the BOS row byte by byte, later rows a group of
    // `groupCodes` codes per `groupBytes` bytes.
    Value row;
    auto dequantRow = [&](Value cache, Value steps, Value bosRows, Value p,
                          Value kvh, Value ko) {
      Value step = memref::LoadOp::create(b, loc, steps, ValueRange{lay, p, kvh});
      Value isBos = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, p,
                                          e.idx(0));
      auto put = [&](Value i, Value code) {
        memref::StoreOp::create(
            b, loc, e.mul(arith::SIToFPOp::create(b, loc, f32, code), step),
            row, ValueRange{i});
      };
      scf::IfOp::create(
          b, loc, isBos,
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            e.loop(e.idx(0), e.idx(hd), 1, [&](Value i) {
              Value u = arith::ExtUIOp::create(
                  b, loc, i32,
                  memref::LoadOp::create(b, loc, bosRows,
                                         ValueRange{lay, e.add(ko, i)}));
              put(i, e.add(u, e.i32(-128)));
            });
            scf::YieldOp::create(b, loc);
          },
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            Value headAt = arith::MulIOp::create(b, loc, kvh, e.idx(headBytes));
            e.loop(e.idx(0), e.idx(hd / groupCodes), 1, [&](Value g) {
              Value at = e.add(headAt,
                               arith::MulIOp::create(b, loc, g, e.idx(groupBytes)));
              Value word = e.i32(0);
              for (int64_t k2 = 0; k2 < groupBytes; ++k2) {
                Value by = arith::ExtUIOp::create(
                    b, loc, i32,
                    memref::LoadOp::create(b, loc, cache,
                                           ValueRange{lay, p, e.add(at, e.idx(k2))}));
                if (k2)
                  by = arith::ShLIOp::create(b, loc, by, e.i32(int32_t(8 * k2)));
                word = arith::OrIOp::create(b, loc, word, by);
              }
              Value first = arith::MulIOp::create(b, loc, g, e.idx(groupCodes));
              for (int64_t j = 0; j < groupCodes; ++j) {
                Value u = word;
                if (j)
                  u = arith::ShRUIOp::create(b, loc, u,
                                             e.i32(int32_t(storeBits * j)));
                u = arith::AndIOp::create(b, loc, u, e.i32((1 << storeBits) - 1));
                put(e.add(first, e.idx(j)), e.add(u, e.i32(-(1 << (kvBits - 1)))));
              }
            });
            scf::YieldOp::create(b, loc);
          });
    };
    auto vt = VectorType::get({hv}, f32);
    auto vzero = [&] { return hv == 1 ? e.f32(0.0f) : e.splat(vt, e.f32(0.0f)); };
    auto v16f = VectorType::get({16}, f32);
    // exp(s - max) over scores [0, len) in place, 16 lanes at a time, the
    // last block masked (math.exp becomes a polynomial, generateKernels'
    // last step); returns the sum (softmaxExp: 1 / sum).
    auto softmaxSum = [&](Value sc, Value mx, Value len) -> Value {
      auto m16 = VectorType::get({16}, b.getI1Type());
      Value zero16 = e.splat(v16f, e.f32(0.0f));
      Value sum16 = e.fold(e.idx(0), len, 16, {zero16},
          [&](Value p, ValueRange cur) -> SmallVector<Value> {
            Value valid = arith::MinUIOp::create(
                b, loc, arith::SubIOp::create(b, loc, len, p), e.idx(16));
            Value mask = vector::CreateMaskOp::create(b, loc, m16,
                                                      ValueRange{valid});
            Value s = vector::MaskedLoadOp::create(b, loc, v16f, sc,
                                                   ValueRange{p}, mask, zero16);
            Value ex = arith::SelectOp::create(
                b, loc, mask,
                math::ExpOp::create(
                    b, loc, arith::SubFOp::create(b, loc, s, e.splat(v16f, mx))),
                zero16);
            vector::MaskedStoreOp::create(b, loc, sc, ValueRange{p}, mask, ex);
            return {e.add(cur[0], ex)};
          })[0];
      return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                         sum16, arith::FastMathFlags::reassoc)
          .getResult();
    };
    auto softmaxExp = [&](Value sc, Value mx, Value len) -> Value {
      return arith::DivFOp::create(b, loc, e.f32(1.0f), softmaxSum(sc, mx, len));
    };
    // Lanes [c, c + 16) of the K or V row at position p of KV head kvh, as
    // f32: straight from an f32 cache; from a quantized one, the codes
    // widened in vector registers and times the row's step (the BOS row's
    // 8-bit codes from its own table), the same values dequantRow puts.
    auto i32 = b.getI32Type();
    auto v16i = VectorType::get({16}, i32);
    auto rowChunk = [&](Value cache, Value steps, Value bosRows, Value p,
                        Value kvh, Value c) -> Value {
      if (!quantized)
        return loadF32(e, cache, {lay, kvh, p, c}, 16);
      Value ko = arith::MulIOp::create(b, loc, kvh, e.idx(hd));
      Value step = e.splat(
          v16f, memref::LoadOp::create(b, loc, steps, ValueRange{lay, p, kvh}));
      Value isBos = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, p,
                                          e.idx(0));
      auto toF32 = [&](Value codes) {
        return e.mul(arith::SIToFPOp::create(b, loc, v16f, codes), step);
      };
      auto ifOp = scf::IfOp::create(
          b, loc, TypeRange{v16f}, isBos, /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(&ifOp.getThenRegion().front());
        Value u = arith::ExtUIOp::create(
            b, loc, v16i,
            vector::LoadOp::create(b, loc, VectorType::get({16}, b.getI8Type()),
                                   bosRows, ValueRange{lay, e.add(ko, c)}));
        scf::YieldOp::create(b, loc,
                             toF32(arith::SubIOp::create(b, loc, u,
                                                         e.splatInt(v16i, 128))));
        b.setInsertionPointToStart(&ifOp.getElseRegion().front());
        Value at = e.add(
            arith::MulIOp::create(b, loc, kvh, e.idx(headBytes)),
            arith::MulIOp::create(
                b, loc, arith::DivUIOp::create(b, loc, c, e.idx(groupCodes)),
                e.idx(groupBytes)));
        int64_t nbytes = 16 / groupCodes * groupBytes;
        auto rawTy = VectorType::get({nbytes}, b.getI8Type());
        Value raw = vector::LoadOp::create(b, loc, rawTy, cache,
                                           ValueRange{lay, p, at});
        if (storeBits == 4) {
          // Nibbles: masked and shifted as bytes, interleaved (lane 2j the
          // low nibble of byte j, 2j + 1 the high one), offset and
          // sign-extended. Through 32-bit words (below), AVX2 spent 18
          // instructions per 16 lanes and a 1024-token 2B4T prompt's
          // attention 0.345 of the matmuls' time on Zen 3; this way 11 and
          // 0.27 (the same values).
          auto v8i = VectorType::get({8}, b.getI8Type());
          auto v16b = VectorType::get({16}, b.getI8Type());
          Value lo = arith::AndIOp::create(b, loc, raw, e.splatInt(v8i, 15));
          Value hi = arith::ShRUIOp::create(b, loc, raw, e.splatInt(v8i, 4));
          SmallVector<int64_t> zip;
          for (int64_t j = 0; j < 8; ++j)
            zip.append({j, j + 8});
          Value codes = arith::SubIOp::create(
              b, loc, vector::ShuffleOp::create(b, loc, lo, hi, zip),
              e.splatInt(v16b, 1 << (kvBits - 1)));
          scf::YieldOp::create(
              b, loc, toF32(arith::ExtSIOp::create(b, loc, v16i, codes)));
          return ifOp.getResult(0);
        }
        if (storeBits == 8) {
          scf::YieldOp::create(
              b, loc,
              toF32(arith::SubIOp::create(
                  b, loc, arith::ExtUIOp::create(b, loc, v16i, raw),
                  e.splatInt(v16i, 1 << (kvBits - 1)))));
          return ifOp.getResult(0);
        }
        // Codes that straddle bytes (3 bits: 8 codes in 3 bytes): each
        // code's byte and the next as one 16-bit word (one byte shuffle),
        // shifted left so the code's top bit is bit 15 (a multiply by a
        // constant per lane), then right by 16 - storeBits. Through 32-bit
        // words (one shuffle, widening and shift per byte, then a variable
        // shift and a mask), AVX2 spent ~50 instructions per 16 lanes and a
        // 1024-token 2B4T prompt's attention 0.49 of the matmuls' time on
        // Zen 3 with a 3-bit cache; this way 13 and 0.31-0.33 (the same
        // values).
        assert(storeBits < 8 && groupCodes * storeBits == groupBytes * 8);
        SmallVector<int64_t> pick;
        SmallVector<int16_t> lift;
        for (int64_t l = 0; l < 16; ++l) {
          int64_t bit = storeBits * (l % groupCodes);
          int64_t byte = l / groupCodes * groupBytes + bit / 8;
          // The next byte matters only when the code straddles into it;
          // the last byte of the load has none.
          pick.append({byte, std::min(byte + 1, nbytes - 1)});
          lift.push_back(int16_t(1 << (16 - storeBits - bit % 8)));
        }
        auto v16s = VectorType::get({16}, b.getI16Type());
        Value words = vector::BitCastOp::create(
            b, loc, v16s, vector::ShuffleOp::create(b, loc, raw, raw, pick));
        Value top = arith::MulIOp::create(
            b, loc, words,
            arith::ConstantOp::create(
                b, loc, DenseElementsAttr::get(v16s, ArrayRef<int16_t>(lift))));
        Value codes = arith::SubIOp::create(
            b, loc,
            arith::ShRUIOp::create(b, loc, top,
                                   e.splatInt(v16s, 16 - storeBits)),
            e.splatInt(v16s, 1 << (kvBits - 1)));
        scf::YieldOp::create(
            b, loc, toF32(arith::ExtSIOp::create(b, loc, v16i, codes)));
      }
      return ifOp.getResult(0);
    };
    // The f32 cache's lanes [c, c + 16) of KV head kvh at position p (a
    // later one than the loads use): past the cache's last position that
    // is the next KV head's or layer's rows, or a little past the view, and
    // a prefetch never faults.
    auto prefetchRow = [&](Value cache, Value p, Value kvh, Value c) {
      prefetchStream(e, cache, {lay, kvh, p, c});
    };
    // A quantized cache's codes of KV head kvh at position p: headBytes
    // bytes of the position's row, one prefetch per line (and one for the
    // last byte when the codes may straddle a line: 3-bit rows are 3/8 of
    // head_dim bytes).
    auto prefetchCodes = [&](Value cache, Value p, Value kvh) {
      Value at = arith::MulIOp::create(b, loc, kvh, e.idx(headBytes));
      for (int64_t off = 0; off < headBytes; off += 64)
        prefetchStream(e, cache, {lay, p, e.add(at, e.idx(off))});
      if (headBytes % 64)
        prefetchStream(e, cache, {lay, p, e.add(at, e.idx(headBytes - 1))});
    };
    if (blocks) {
      // H = groupHeads query heads of one KV head, P = 16 / H positions
      // per block: lane l of a score block is head l / P, position
      // p0 + l % P.
      int64_t H = groupHeads, P = 16 / H, nv = hd / 16;
      // 16-lane accumulators a loop may carry: 16 of AVX-512's 32
      // registers; 4 (8 registers) of AVX2's 16. Carrying 16 there, LLVM
      // stored and reloaded accumulators around the FMAs: on Zen 3, a
      // 1024-token 2B4T prompt spent 0.28-0.30 of the matmuls' time in
      // attention, 0.20-0.24 with 4 (same logits: each sum is computed in
      // the same order).
      int64_t accBudget = vw == 16 ? 16 : 4;
      // Query heads (hs) and positions (ps) per score pass, hs x ps
      // accumulators within the budget: an f32 cache's K rows are reread
      // from L1 once per pass over the same positions (with one head per
      // KV head, AVX2 takes 4 of the 16 positions per pass: the 700M shape
      // (MHA), 1000-token prompt, attention/matmul 0.60-0.65 -> 0.46-0.48);
      // a quantized cache's rows are dequantized once for all H heads
      // (per pass of heads they measured 0.60 of the matmuls' time instead
      // of 0.35 at 4 bits), AVX2 taking fewer positions per pass instead
      // (2B4T, 4 heads x 1 position: 0.27 -> 0.245-0.25). An f16 cache's
      // rows are widened once for all H heads as well (2B4T, AVX2, 1000-token
      // prompt: attention/up-and-gate matmul 0.35-0.37 -> 0.31-0.32, decoded
      // tokens' attention/lm_head 0.73-0.93 -> 0.61-0.87).
      int64_t hs, ps;
      if (quantized || kvF16) {
        hs = H;
        ps = std::clamp<int64_t>(accBudget / H, 1, P);
      } else if (decodeMode) {
        // A decoded token's f32 rows come from memory, not from L1: as
        // many heads per pass as positions (AVX2: 2 x 2 instead of one
        // head x 4 positions), so each row is reread by fewer passes. 2B4T
        // (4 heads per KV head), 1000 positions, 1 thread, attention /
        // lm_head time 1.78-1.79 -> 1.54-1.56; 2 heads per KV head (2 x 2
        // instead of 1 x 4) unchanged, 2.98-3.00 -> 2.88-3.05. A prompt's
        // attention, compute-bound on rows in cache, measured 0.37 of the
        // gate/up matmul's time with 1 x 4 and 0.38-0.42 with 2 x 2 or
        // 4 x 1, so it keeps the rule below. (Same sums in the same order
        // either way: identical logits.)
        hs = 1;
        while (H % (2 * hs) == 0 && 4 * hs * hs <= accBudget)
          hs *= 2;
        ps = std::min(P, accBudget / hs);
      } else if (P <= accBudget) {
        ps = P;
        hs = std::min(H, accBudget / P);
      } else {
        hs = 1;
        ps = accBudget;
      }
      assert(H % hs == 0 && P % ps == 0 && "passes tile the score block");
      // Scores of one chunk per head: at most ceil(context / chunks).
      SmallVector<Value> sc;
      for (int64_t h = 0; h < H; ++h)
        sc.push_back(e.scratch(MemRefType::get(
            {(context + decodeChunks - 1) / decodeChunks}, f32)));
      auto mP = VectorType::get({P}, b.getI1Type());
      SmallVector<int64_t> laneIdx;
      for (int64_t l = 0; l < 16; ++l)
        laneIdx.push_back(l % P);
      Value laneOff = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(VectorType::get({16}, b.getIndexType()),
                                         ArrayRef<int64_t>(laneIdx)));
      auto headLanes = [&](Value v16, int64_t h) -> Value {
        if (H == 1)
          return v16;
        return vector::ExtractStridedSliceOp::create(
            b, loc, v16, ArrayRef<int64_t>{P * h}, ArrayRef<int64_t>{P},
            ArrayRef<int64_t>{1});
      };
      // Scores of positions [pb, pe) for the H query heads h0 .. h0 + H - 1
      // of KV head kvh and token t, 16 independent FMA chains (not one
      // latency-bound chain per position), one shuffle tree for the 16 sums,
      // stored at sc[h][p - pb]. The last block repeats position pe - 1 in
      // its unused lanes and stores only the valid ones, so every score is
      // computed the same way whatever the range is. Returns each head's
      // max.
      auto scoreRange = [&](Value t, Value kvh, ArrayRef<Value> qo, Value pb,
                            Value pe) -> SmallVector<Value> {
        Value last = arith::SubIOp::create(b, loc, pe, e.idx(1));
        Value m16 = e.fold(pb, pe, P,
            {e.splat(v16f, e.f32(-INFINITY))},
            [&](Value p0, ValueRange cur) -> SmallVector<Value> {
              SmallVector<Value> pos;
              for (int64_t i = 0; i < P; ++i)
                pos.push_back(arith::MinUIOp::create(
                    b, loc, e.add(p0, e.idx(i)), last));
              // Quantized: the code rows as the f32 rows below, per position
              // instead of per 16 lanes.
              if (quantized)
                for (int64_t i = 0; i < P; ++i) {
                  prefetchCodes(kc, e.add(pos[i], e.idx(kAttnPrefetch)), kvh);
                  prefetchCodes(vc, pos[i], kvh);
                }
              // hs heads x ps positions at a time (see hs): one pass per
              // group over head_dim, each pass after the first over the
              // same positions rereading their K rows from L1.
              SmallVector<Value> accs(16);
              for (int64_t h0 = 0; h0 < H; h0 += hs)
                for (int64_t i0 = 0; i0 < P; i0 += ps) {
                  SmallVector<Value> part = e.fold(
                      e.idx(0), e.idx(hd), 16,
                      SmallVector<Value>(hs * ps, e.splat(v16f, e.f32(0.0f))),
                      [&](Value c, ValueRange cc) -> SmallVector<Value> {
                        SmallVector<Value> x;
                        for (int64_t h = 0; h < hs; ++h)
                          x.push_back(
                              load(e, qs, {t, e.add(qo[h0 + h], c)}, 16));
                        SmallVector<Value> next(hs * ps);
                        for (int64_t i = 0; i < ps; ++i) {
                          Value at = pos[i0 + i];
                          if (!quantized && h0 == 0) {
                            prefetchRow(kc, e.add(at, e.idx(kAttnPrefetch)),
                                        kvh, c);
                            prefetchRow(vc, at, kvh, c);
                          }
                          Value kr = rowChunk(kc, ks, kb, at, kvh, c);
                          for (int64_t h = 0; h < hs; ++h)
                            next[h * ps + i] = vector::FMAOp::create(
                                b, loc, x[h], kr, cc[h * ps + i]);
                        }
                        return next;
                      });
                  for (int64_t h = 0; h < hs; ++h)
                    for (int64_t i = 0; i < ps; ++i)
                      accs[(h0 + h) * P + i0 + i] = part[h * ps + i];
                }
              Value s16 = e.mul(transposeReduce(e, accs),
                                e.splat(v16f, e.f32(scale)));
              Value valid = arith::MinUIOp::create(
                  b, loc, arith::SubIOp::create(b, loc, pe, p0), e.idx(P));
              Value mask = vector::CreateMaskOp::create(b, loc, mP,
                                                        ValueRange{valid});
              Value at = arith::SubIOp::create(b, loc, p0, pb);
              for (int64_t h = 0; h < H; ++h)
                vector::MaskedStoreOp::create(b, loc, sc[h], ValueRange{at},
                                              mask, headLanes(s16, h));
              Value mask16 = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::ult, laneOff,
                  vector::BroadcastOp::create(
                      b, loc, VectorType::get({16}, b.getIndexType()), valid));
              return {arith::MaximumFOp::create(
                  b, loc, cur[0],
                  arith::SelectOp::create(b, loc, mask16, s16,
                                          e.splat(v16f, e.f32(-INFINITY))))};
            })[0];
        SmallVector<Value> mx;
        for (int64_t h = 0; h < H; ++h)
          mx.push_back(vector::ReductionOp::create(
              b, loc, vector::CombiningKind::MAXIMUMF, headLanes(m16, h)));
        return mx;
      };
      // sum_p sc[h][p - pb] V_p over positions [pb, pe) for the H heads, the
      // V row read in order (prefetched during the scores and again
      // kAttnPrefetch rows ahead: without the second, 3 alternating pairs
      // on 2B4T were all slower), each load feeding every head; at most 16 accumulators at a time, so with
      // H x hd / 16 > 16 the rows are swept once per part of the head.
      // put(h, i, acc) receives chunk i (16 lanes) of head h.
      auto weightedV = [&](Value kvh, Value pb, Value pe,
                           function_ref<void(int64_t, int64_t, Value)> put) {
        int64_t perPart = std::max<int64_t>(1, accBudget / H);
        for (int64_t i0 = 0; i0 < nv; i0 += perPart) {
          int64_t i1 = std::min(nv, i0 + perPart);
          SmallVector<Value> acc = e.fold(pb, pe, 1,
              SmallVector<Value>(H * (i1 - i0), vzero()),
              [&](Value p, ValueRange cc) -> SmallVector<Value> {
                Value at = arith::SubIOp::create(b, loc, p, pb);
                SmallVector<Value> pr;
                for (int64_t h = 0; h < H; ++h) {
                  pr.push_back(lanes(
                      e, memref::LoadOp::create(b, loc, sc[h], ValueRange{at}),
                      16));
                }
                SmallVector<Value> next(H * (i1 - i0));
                for (int64_t i = i0; i < i1; ++i) {
                  if (!quantized)
                    prefetchRow(vc, e.add(p, e.idx(kAttnPrefetch)), kvh,
                                e.idx(i * 16));
                  else if (i == 0)
                    prefetchCodes(vc, e.add(p, e.idx(kAttnPrefetch)), kvh);
                  Value y = rowChunk(vc, vs, vb, p, kvh, e.idx(i * 16));
                  for (int64_t h = 0; h < H; ++h)
                    next[h * (i1 - i0) + i - i0] = vector::FMAOp::create(
                        b, loc, pr[h], y, cc[h * (i1 - i0) + i - i0]);
                }
                return next;
              });
          for (int64_t h = 0; h < H; ++h)
            for (int64_t i = i0; i < i1; ++i)
              put(h, i, acc[h * (i1 - i0) + i - i0]);
        }
      };
      // Chunk ch of the positions [0, len) of token t (decodeChunks equal
      // chunks, the last ones shorter or empty), every query head g of KV
      // head kvh, H at a time: dst[slot][g] = (sum_p e_gp V_p, max, sum_p
      // e_gp) with e_gp = exp(s_gp - max), for mergeParts. The split depends
      // on len only, so a token's attention is computed the same way in a
      // prompt and alone, and whatever the thread count.
      auto chunkSize = [&](Value len) -> Value {
        return arith::DivUIOp::create(
            b, loc, e.add(len, e.idx(decodeChunks - 1)), e.idx(decodeChunks));
      };
      auto chunkPartials = [&](Value t, Value kvh, Value ch, Value len,
                               Value dst, Value slot) {
        Value chunk = chunkSize(len);
        Value pb = arith::MinUIOp::create(b, loc, e.mul(ch, chunk), len);
        Value pe = arith::MinUIOp::create(b, loc, e.add(pb, chunk), len);
        Value n = arith::SubIOp::create(b, loc, pe, pb);
        for (int64_t g0 = 0; g0 < group; g0 += H) {
          Value hq = e.add(e.mul(kvh, e.idx(group)), e.idx(g0));
          SmallVector<Value> qo;
          for (int64_t h = 0; h < H; ++h)
            qo.push_back(e.mul(e.add(hq, e.idx(h)), e.idx(hd)));
          SmallVector<Value> mx = scoreRange(t, kvh, qo, pb, pe);
          for (int64_t h = 0; h < H; ++h) {
            Value sum = softmaxSum(sc[h], mx[h], n);
            memref::StoreOp::create(b, loc, mx[h], dst,
                                    ValueRange{slot, e.idx(g0 + h), e.idx(hd)});
            memref::StoreOp::create(
                b, loc, sum, dst, ValueRange{slot, e.idx(g0 + h), e.idx(hd + 1)});
          }
          weightedV(kvh, pb, pe, [&](int64_t h, int64_t i, Value acc) {
            ::store(e, acc, dst, {slot, e.idx(g0 + h), e.idx(i * 16)});
          });
        }
      };
      if (decodeMode) {
        // One token at position start: task j is chunk j % decodeChunks of
        // KV head j / decodeChunks, into parts[j]; attnmerge merges them.
        Value len = e.add(start, e.idx(1));
        e.loop(begin, end, 1, [&](Value j) {
          Value kvh = arith::DivUIOp::create(b, loc, j, e.idx(decodeChunks));
          Value ch = arith::RemUIOp::create(b, loc, j, e.idx(decodeChunks));
          if (storesRow) {
            // The chunk holding position start appends its KV head's new
            // K and V rows first; no other task reads them.
            Value mine = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::eq, ch,
                arith::DivUIOp::create(b, loc, start, chunkSize(len)));
            scf::IfOp::create(b, loc, mine, [&](OpBuilder &nb, Location) {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPoint(nb.getInsertionBlock(),
                                  nb.getInsertionPoint());
              Value col0 = e.mul(kvh, e.idx(hd));
              for (int64_t c = 0; c < hd; c += 16) {
                Value col = e.add(col0, e.idx(c));
                storeF32(e, load(e, kNew, {e.idx(0), col}, 16), kc,
                         {lay, kvh, start, e.idx(c)});
                storeF32(e, load(e, vNew, {e.idx(0), col}, 16), vc,
                         {lay, kvh, start, e.idx(c)});
              }
              scf::YieldOp::create(b, loc);
            });
          }
          chunkPartials(e.idx(0), kvh, ch, len, o, j);
        });
        return;
      }
      // A prompt: task j is token j % nt of KV head j / nt, its chunks one
      // after the other into a scratch, then merged.
      Value scratch =
          e.scratch(MemRefType::get({decodeChunks, group, hd + 16}, f32));
      e.loop(begin, end, 1, [&](Value j) {
        Value kvh = arith::DivUIOp::create(b, loc, j, nt);
        Value t = arith::RemUIOp::create(b, loc, j, nt);
        Value len = e.add(e.add(start, t), e.idx(1));
        e.loop(e.idx(0), e.idx(decodeChunks), 1, [&](Value ch) {
          chunkPartials(t, kvh, ch, len, scratch, ch);
        });
        mergeParts(e, scratch, e.idx(0), kvh, t, o);
      });
      return;
    }
    Value scores = e.scratch(MemRefType::get({context}, f32));
    if (quantized)
      row = e.scratch(MemRefType::get({hd}, f32));
    e.loop(begin, end, 1, [&](Value j) {
      Value kvh = arith::DivUIOp::create(b, loc, j, e.idx(group));
      Value qo = arith::MulIOp::create(b, loc, j, e.idx(hd));
      Value ko = arith::MulIOp::create(b, loc, kvh, e.idx(hd));
      e.loop(e.idx(0), nt, 1, [&](Value t) {
        Value len = e.add(e.add(start, t), e.idx(1));
        // scores and their max
        // One position at a time (quantized rows are dequantized per use).
        Value mx = e.fold(e.idx(0), len, 1, {e.f32(-INFINITY)},
            [&](Value p, ValueRange cur) -> SmallVector<Value> {
              if (quantized)
                dequantRow(kc, ks, kb, p, kvh, ko);
              Value acc = e.fold(e.idx(0), e.idx(hd), hv, {vzero()},
                  [&](Value c, ValueRange cc) -> SmallVector<Value> {
                    Value x = load(e, qs, {t, e.add(qo, c)}, hv);
                    Value y = quantized ? load(e, row, {c}, hv)
                                        : loadF32(e, kc, {lay, kvh, p, c}, hv);
                    return {e.add(cc[0], e.mul(x, y))};
                  })[0];
              // A shuffle tree, not 16 dependent scalar adds.
              Value sc =
                  hv == 1 ? acc
                          : Value(vector::ReductionOp::create(
                                b, loc, vector::CombiningKind::ADD, acc,
                                arith::FastMathFlags::reassoc));
              sc = e.mul(sc, e.f32(scale));
              memref::StoreOp::create(b, loc, sc, scores, ValueRange{p});
              return {arith::MaximumFOp::create(b, loc, cur[0], sc)};
            })[0];
        Value inv = softmaxExp(scores, mx, len);
        if (!quantized && hd / hv <= 16) {
          // out = sum_p (e_p / sum) V_p: position by position, the head's
          // row of V read in order into hd / hv register accumulators.
          SmallVector<Value> init(hd / hv, vzero());
          SmallVector<Value> acc = e.fold(e.idx(0), len, 1, init,
              [&](Value p, ValueRange cc) -> SmallVector<Value> {
                Value pr = lanes(
                    e,
                    e.mul(memref::LoadOp::create(b, loc, scores, ValueRange{p}),
                          inv),
                    hv);
                SmallVector<Value> next;
                for (int64_t i = 0; i < hd / hv; ++i) {
                  Value y = loadF32(e, vc, {lay, kvh, p, e.idx(i * hv)}, hv);
                  next.push_back(hv == 1 ? e.add(cc[i], e.mul(pr, y))
                                         : Value(vector::FMAOp::create(
                                               b, loc, pr, y, cc[i])));
                }
                return next;
              });
          for (int64_t i = 0; i < hd / hv; ++i)
            ::store(e, acc[i], o, {t, e.add(qo, e.idx(i * hv))});
          return;
        }
        if (!quantized) {
          e.loop(e.idx(0), e.idx(hd), hv, [&](Value c) {
            Value acc = e.fold(e.idx(0), len, 1, {vzero()},
                [&](Value p, ValueRange cc) -> SmallVector<Value> {
                  Value pr = e.mul(memref::LoadOp::create(b, loc, scores,
                                                          ValueRange{p}), inv);
                  Value y = loadF32(e, vc, {lay, kvh, p, c}, hv);
                  return {e.add(cc[0], e.mul(lanes(e, pr, hv), y))};
                })[0];
            ::store(e, acc, o, {t, e.add(qo, c)});
          });
          return;
        }
        // Quantized: position by position, each V row dequantized once,
        // accumulated in the output row.
        e.loop(e.idx(0), e.idx(hd), hv, [&](Value c) {
          ::store(e, vzero(), o, {t, e.add(qo, c)});
        });
        e.loop(e.idx(0), len, 1, [&](Value p) {
          dequantRow(vc, vs, vb, p, kvh, ko);
          Value pr = e.mul(memref::LoadOp::create(b, loc, scores, ValueRange{p}),
                           inv);
          e.loop(e.idx(0), e.idx(hd), hv, [&](Value c) {
            Value cur = load(e, o, {t, e.add(qo, c)}, hv);
            Value y = load(e, row, {c}, hv);
            ::store(e, e.add(cur, e.mul(lanes(e, pr, hv), y)), o,
                    {t, e.add(qo, c)});
          });
        });
      });
    });
  };
  auto kern = kernel(name, types, true, body);
  SmallVector<Value> args{q, kCache, vCache};
  if (quantized)
    args.append({kSteps, vSteps, kBos, vBos});
  args.append({layerIdx, startArg, out});
  if (!blocks) {
    storeRows();
    callTasks(kern, args, arith::ConstantIndexOp::create(b, loc, nh));
    buffers[op.getResult()] = out;
    return success();
  }
  // One token: num_kv_heads x decodeChunks tasks into parts, then the merge
  // (serial: a few KB); a prompt: num_kv_heads x tokens tasks.
  auto partsTy = MemRefType::get({nkv * decodeChunks, group, hd + 16}, f32);
  Value &parts = decodeParts[partsTy];
  if (!parts) {
    parts = memref::AllocOp::create(b, loc, partsTy, ValueRange{},
                                    b.getI64IntegerAttr(64));
    allocs.push_back(parts);
  }
  decodeMode = true;
  types.back() = partsTy;
  if (!quantized)
    types.append({k.getType(), v.getType()});
  auto decodeKern = kernel("attndec_" + name.substr(strlen("attention_")),
                           types, true, body);
  auto merge = kernel(
      "attnmerge_" + std::to_string(nh) + "x" + std::to_string(nkv) + "x" +
          std::to_string(hd) + "_n" + std::to_string(decodeChunks),
      {partsTy, out.getType()}, false, [&](Emit &e, ValueRange a) {
        e.loop(e.idx(0), e.idx(nkv), 1, [&](Value kvh) {
          mergeParts(e, a[0], e.mul(kvh, e.idx(decodeChunks)), kvh, e.idx(0),
                     a[1]);
        });
      });
  Value one = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tokens,
                                    arith::ConstantIndexOp::create(b, loc, 1));
  SmallVector<Value> dargs(args);
  dargs.back() = parts;
  if (!quantized)
    dargs.append({k, v});
  scf::IfOp::create(
      b, loc, one,
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        callTasks(decodeKern, dargs,
                  arith::ConstantIndexOp::create(b, loc, nkv * decodeChunks));
        call(merge, {parts, out});
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        storeRows();
        callTasks(kern, args,
                  arith::MulIOp::create(
                      b, loc, tokens, arith::ConstantIndexOp::create(b, loc, nkv)));
        scf::YieldOp::create(b, loc);
      });
  buffers[op.getResult()] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNorm (unfused), element-wise ops, lm_head
//===----------------------------------------------------------------------===//

LogicalResult KernelGenerator::lowerRMSNorm(bitnet::RMSNormOp op) {
  Value x = lowered(op, op.getInput());
  if (!x)
    return failure();
  int64_t k = op.getInput().getType().getShape()[1];
  FailureOr<Value> w = param(op, op.getWeight(), {k});
  if (failed(w))
    return failure();
  float eps = op.getEps().convertToFloat();
  Value out = alloc({kDyn, k}, b.getF32Type());
  std::string name = "rmsnorm_" + std::to_string(k) + "_eps" +
                     std::to_string(llvm::bit_cast<uint32_t>(eps));
  auto kern = kernel(name, {x.getType(), w->getType(), out.getType()}, false,
                     [&](Emit &e, ValueRange a) {
    Value n = memref::DimOp::create(b, loc, a[0], 0);
    e.loop(e.idx(0), n, 1, [&](Value t) {
      Value ss = sumRowF64(e, k, vw, [&](Value c, int64_t wd) {
        Value v = load(e, a[0], {t, c}, wd);
        return e.mul(v, v);
      });
      Value ms = arith::TruncFOp::create(
          b, loc, b.getF32Type(),
          arith::DivFOp::create(b, loc, ss, e.f64(double(k))));
      Value r = arith::DivFOp::create(
          b, loc, e.f32(1.0f),
          math::SqrtOp::create(b, loc, e.add(ms, e.f32(eps))));
      rowLoop(e, k, vw, [&](Value c, int64_t wd) {
        Value v = e.mul(e.mul(load(e, a[0], {t, c}, wd), lanes(e, r, wd)),
                        load(e, a[1], {c}, wd));
        ::store(e, v, a[2], {t, c});
      });
    });
  });
  call(kern, {x, *w, out});
  buffers[op.getResult()] = out;
  return success();
}

LogicalResult KernelGenerator::lowerElementwise(Operation *op) {
  // Fused into the matmul that produces an operand (lowerMatmul).
  if (buffers.count(op->getResult(0)))
    return success();
  Value a = lowered(op, op->getOperand(0)), c = lowered(op, op->getOperand(1));
  if (!a || !c)
    return failure();
  int64_t n = cast<RankedTensorType>(op->getResult(0).getType()).getShape()[1];
  bool glu = isa<bitnet::ReLU2GLUOp>(op);
  Value out = alloc({kDyn, n}, b.getF32Type());
  std::string name = (glu ? "relu2glu_" : "add_") + std::to_string(n);
  auto kern = kernel(name, {a.getType(), c.getType(), out.getType()}, false,
                     [&](Emit &e, ValueRange m) {
    Value nt = memref::DimOp::create(b, loc, m[0], 0);
    e.loop(e.idx(0), nt, 1, [&](Value t) {
      rowLoop(e, n, vw, [&](Value k, int64_t wd) {
        Value x = load(e, m[0], {t, k}, wd), y = load(e, m[1], {t, k}, wd);
        Value r;
        if (glu) {
          Value g = arith::MaximumFOp::create(b, loc, x,
                                              lanes(e, e.f32(0.0f), wd));
          r = e.mul(e.mul(g, g), y);
        } else {
          r = e.add(x, y);
        }
        ::store(e, r, m[2], {t, k});
      });
    });
  });
  call(kern, {a, c, out});
  buffers[op->getResult(0)] = out;
  return success();
}

/// The lm_head task body's loops: rows [begin, end) x kRowBlock (clipped to
/// v), and for each, the tokens [from, nt) whose logits are used.
static void forHeadRows(Emit &e, Value begin, Value end, Value from, Value nt,
                        int64_t v, function_ref<void(Value, Value)> body) {
  e.loop(begin, end, 1, [&](Value blk) {
    Value r0 = arith::MulIOp::create(e.b, e.loc, blk, e.idx(kRowBlock));
    Value r1 = arith::MinUIOp::create(e.b, e.loc, e.add(r0, e.idx(kRowBlock)),
                                      e.idx(v));
    e.loop(r0, r1, 1, [&](Value row) {
      e.loop(from, nt, 1, [&](Value t) { body(row, t); });
    });
  });
}

LogicalResult KernelGenerator::lowerLMHead(bitnet::LMHeadOp op) {
  Value x = lowered(op, op.getInput());
  if (!x)
    return failure();
  for (StringRef kind : {"int8", "int4"})
    if (auto entry = dyn_cast_or_null<ArrayAttr>(
            blob.get((op.getWeight().getName() + "#" + kind).str())))
      return lowerQuantizedHead(op, x, cast<IntegerAttr>(entry[0]).getInt(),
                                kind == "int4");
  ArrayRef<int64_t> ws = op.getWeight().getType().getShape();
  int64_t v = ws[0], h = ws[1];
  Type elt;
  FailureOr<Value> w = param(op, op.getWeight(), {v, h}, &elt);
  if (failed(w))
    return failure();
  bytesPerToken += v * h * (elt.isF32() ? 4 : 2);
  std::string name = "lmhead_" + std::to_string(v) + "x" + std::to_string(h) +
                     (elt.isF32()   ? "_f32"
                      : elt.isF16() ? "_f16"
                                    : "_bf16");
  SmallVector<Type> types{x.getType(), w->getType(), logitsArg.getType(),
                          b.getIndexType()};
  auto kern = kernel(name, types, true, [&](Emit &e, ValueRange a) {
    Value xs = a[0], wm = a[1], o = a[2], from = a[3];
    Value begin = a[4], end = a[5];
    forHeadRows(e, begin, end, from, memref::DimOp::create(b, loc, xs, 0), v,
                [&](Value row, Value t) {
      Value total = reduceRow(
          e, h, vw, b.getF32FloatAttr(0.0f), vector::CombiningKind::ADD,
          [&](Value c, int64_t wd) {
            // The rows are one stream per task: its bytes kPrefetchBytes
            // ahead (past the row's end: the next rows'; a prefetch never
            // faults).
            if (wd > 1)
              prefetchStream(
                  e, wm,
                  {row, e.add(c, e.idx(kPrefetchBytes / (elt.isF32() ? 4 : 2)))});
            return e.mul(load(e, xs, {t, c}, wd), loadF32(e, wm, {row, c}, wd));
          },
          [&](Value a, Value c) { return e.add(a, c); });
      memref::StoreOp::create(b, loc, total, o, ValueRange{t, row});
    });
  });
  callTasks(kern, {x, *w, logitsArg, logitsFromArg},
            arith::ConstantIndexOp::create(b, loc, llvm::divideCeil(v, kRowBlock)));
  return success();
}

/// --lm-head=int8|int4 (the pack pass's layouts): the final hidden state is
/// quantized per token to INT8 (absmax), then each logit is an integer dot
/// product per block of 64 columns (vpdpbusd on VNNI: unsigned stored codes
/// times signed activations), corrected for the codes' offset and scaled.
LogicalResult KernelGenerator::lowerQuantizedHead(bitnet::LMHeadOp op, Value x,
                                                  int64_t offset, bool int4) {
  ArrayRef<int64_t> ws = op.getWeight().getType().getShape();
  // The pack pass's layouts, rows in tiles of 16: int8 codes
  // [V/16, hp/64, 16, 64] and f32 scales [V/16 * 16]; int4 codes
  // [V/16, hp/128, 16, 64] (pairs of 64-column blocks in the two nibbles)
  // and f32 scales [V/16, hp/64, 16].
  int64_t v = ws[0], h = ws[1], hp = padTo(h, int4 ? 128 : 64),
          nb64 = hp / 64, tiles = llvm::divideCeil(v, kTileRows);
  int32_t off = int4 ? 8 : 128;
  IntegerType i8 = b.getI8Type(), i32 = b.getI32Type();
  FloatType f32 = b.getF32Type();
  int64_t codeBytes = tiles * kTileRows * (int4 ? hp / 2 : hp);
  Value codes = memref::ViewOp::create(
      b, loc,
      MemRefType::get({tiles, int4 ? hp / 128 : hp / 64, kTileRows, 64}, i8),
      blobArg, arith::ConstantIndexOp::create(b, loc, offset), ValueRange{});
  Value scales = memref::ViewOp::create(
      b, loc,
      int4 ? MemRefType::get({tiles, nb64, kTileRows}, f32)
           : MemRefType::get({tiles * kTileRows}, f32),
      blobArg,
      arith::ConstantIndexOp::create(b, loc, offset + padTo(codeBytes, 64)),
      ValueRange{});
  bytesPerToken += codeBytes + 4 * tiles * kTileRows * (int4 ? nb64 : 1);

  // Per token: codes xq [T, hp] (zero padded), d = max|x| / 127, the code
  // sum, and per group of 4 columns -off * (their code sum): the vpdpbusd
  // lanes' offset correction.
  Value xq = alloc({kDyn, hp}, i8), dx = alloc({kDyn}, f32),
        xsum = alloc({kDyn}, i32), corr = alloc({kDyn, hp / 4}, i32);
  std::string qname = "headquant_" + std::to_string(h) + "_off" +
                      std::to_string(off);
  auto qk = kernel(qname, {x.getType(), xq.getType(), dx.getType(),
                           xsum.getType(), corr.getType()}, false,
                   [&](Emit &e, ValueRange a) {
    Value xs = a[0], q = a[1], d = a[2], sums = a[3], cr = a[4];
    Value n = memref::DimOp::create(b, loc, xs, 0);
    e.loop(e.idx(0), n, 1, [&](Value t) {
      Value gamma = absMaxRow(e, h, vw, [&](Value c, int64_t wd) -> Value {
        return load(e, xs, {t, c}, wd);
      });
      gamma = arith::MaximumFOp::create(b, loc, gamma, e.f32(1e-5f));
      Value s = arith::DivFOp::create(b, loc, e.f32(127.0f), gamma);
      rowLoop(e, h, vw, [&](Value c, int64_t wd) {
        Value y = math::RoundEvenOp::create(
            b, loc, e.mul(load(e, xs, {t, c}, wd), lanes(e, s, wd)));
        y = arith::MaximumFOp::create(b, loc, y, lanes(e, e.f32(-127.0f), wd));
        y = arith::MinimumFOp::create(b, loc, y, lanes(e, e.f32(127.0f), wd));
        Type it = wd == 1 ? Type(i32) : Type(VectorType::get({wd}, i32));
        Type bt = wd == 1 ? Type(i8) : Type(VectorType::get({wd}, i8));
        store(e, arith::TruncIOp::create(b, loc, bt,
                                         arith::FPToSIOp::create(b, loc, it, y)),
              q, {t, c});
      });
      Value zero8 = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
      if (h < hp)
        e.loop(e.idx(h), e.idx(hp), 1, [&](Value c) {
          memref::StoreOp::create(b, loc, zero8, q, ValueRange{t, c});
        });
      memref::StoreOp::create(b, loc, arith::DivFOp::create(b, loc, e.f32(1.0f), s),
                              d, ValueRange{t});
      Value total = e.fold(e.idx(0), e.idx(hp / 4), 1, {e.i32(0)},
                           [&](Value g, ValueRange cur) -> SmallVector<Value> {
        Value sum = e.i32(0);
        for (int64_t j = 0; j < 4; ++j) {
          Value c = e.add(arith::MulIOp::create(b, loc, g, e.idx(4)), e.idx(j));
          sum = e.add(sum, arith::ExtSIOp::create(
                               b, loc, i32,
                               memref::LoadOp::create(b, loc, q, ValueRange{t, c})));
        }
        memref::StoreOp::create(b, loc, e.mul(sum, e.i32(-off)), cr,
                                ValueRange{t, g});
        return {e.add(cur[0], sum)};
      })[0];
      memref::StoreOp::create(b, loc, total, sums, ValueRange{t});
    });
  });
  call(qk, {x, xq, dx, xsum, corr});

  std::string name = "lmhead_" + std::to_string(v) + "x" + std::to_string(h) +
                     (int4 ? "_int4" : "_int8");
  SmallVector<Type> types{xq.getType(), dx.getType(), xsum.getType(),
                          corr.getType(), codes.getType(), scales.getType(),
                          logitsArg.getType(), b.getIndexType()};
  bool vnni = isaName == "avx512vnni";
  auto kern = kernel(name, types, true, [&](Emit &e, ValueRange a) {
    Value q = a[0], d = a[1], sums = a[2], cr = a[3], wm = a[4], sc = a[5],
          o = a[6], from = a[7], begin = a[8], end = a[9];
    auto v16 = VectorType::get({16}, i32), v16f = VectorType::get({16}, f32);
    auto v64b = VectorType::get({64}, i8);
    auto v64i = VectorType::get({64}, i32);
    auto byteSplat = [&](VectorType t, int8_t c) {
      return e.splat(t, arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(c)));
    };
    // int4: the codes of the first (half 0) or second block of a pair.
    auto nibbles = [&](Value p, int half) -> Value {
      if (half)
        p = arith::ShRUIOp::create(b, loc, p, byteSplat(v64b, 4));
      return arith::AndIOp::create(b, loc, p, byteSplat(v64b, 15));
    };
    // The 64 stored codes (unsigned, offset `off`) of block c of `row`
    // (int4: block 2 p + half).
    auto blockCodes = [&](Value row, Value c, int half) -> Value {
      if (!int4)
        return vector::LoadOp::create(b, loc, v64b, wm,
                                      tileIndices(e, row, c, e.idx(0)));
      return nibbles(
          vector::LoadOp::create(
              b, loc, v64b, wm,
              tileIndices(e, row, arith::DivUIOp::create(b, loc, c, e.idx(2)),
                          e.idx(0))),
          half);
    };
    // The scale of block c of `row`.
    auto blockScale = [&](Value row, Value c) -> Value {
      if (!int4)
        return memref::LoadOp::create(b, loc, sc, ValueRange{row});
      SmallVector<Value> at = tileIndices(e, row, c, e.idx(0));
      return memref::LoadOp::create(b, loc, sc, ValueRange{at[0], c, at[2]});
    };
    // The 64 activation codes of block c of token t.
    auto blockActs = [&](Value t, Value c) -> Value {
      return vector::LoadOp::create(
          b, loc, v64b, q,
          ValueRange{t, arith::MulIOp::create(b, loc, c, e.idx(64))});
    };
    Value nt = memref::DimOp::create(b, loc, q, 0);
    // VNNI: one task = one tile of 16 rows, its logits stored as one vector.
    auto tileLogits = [&](Value tile, function_ref<Value(Value)> logitsOf) {
      Value r0 = arith::MulIOp::create(b, loc, tile, e.idx(kTileRows));
      Value valid = arith::MinUIOp::create(
          b, loc, arith::SubIOp::create(b, loc, e.idx(v), r0),
          e.idx(kTileRows));
      Value mask = vector::CreateMaskOp::create(
          b, loc, VectorType::get({16}, b.getI1Type()), ValueRange{valid});
      e.loop(from, nt, 1, [&](Value t) {
        Value y = e.mul(logitsOf(t), e.splat(v16f, memref::LoadOp::create(
                                                     b, loc, d, ValueRange{t})));
        vector::MaskedStoreOp::create(b, loc, o, ValueRange{t, r0}, mask, y);
      });
    };
    if (vnni && !int4) {
      // int8: per row, integer dot products over all blocks; one shuffle
      // tree per tile, the offset correction and the 16 row scales.
      e.loop(begin, end, 1, [&](Value tile) {
        tileLogits(tile, [&](Value t) -> Value {
          Value zi = e.splatInt(v16, 0);
          SmallVector<Value> rowAccs = e.fold(
              e.idx(0), e.idx(nb64), 1, SmallVector<Value>(kTileRows, zi),
              [&](Value c, ValueRange cur) -> SmallVector<Value> {
            SmallVector<Value> acc(cur);
            Value act = blockActs(t, c);
            for (int64_t r = 0; r < kTileRows; ++r) {
              prefetchAhead(e, wm, tile, c, r);
              acc[r] = vpdpbusd(e, acc[r],
                                vector::LoadOp::create(
                                    b, loc, v64b, wm,
                                    ValueRange{tile, c, e.idx(r), e.idx(0)}),
                                act);
            }
            return acc;
          });
          Value dots = arith::SubIOp::create(
              b, loc, transposeReduce(e, rowAccs),
              e.splat(v16, e.mul(memref::LoadOp::create(b, loc, sums,
                                                        ValueRange{t}),
                                 e.i32(off))));
          Value s = vector::LoadOp::create(
              b, loc, v16f, sc,
              ValueRange{arith::MulIOp::create(b, loc, tile, e.idx(kTileRows))});
          return e.mul(arith::SIToFPOp::create(b, loc, v16f, dots), s);
        });
      });
      return;
    }
    if (vnni && int4) {
      // One task = one tile of 16 rows. Per row and block: a vector of
      // integer dot products (started from the token's offset correction),
      // converted and multiply-added with the block's scale into the row's
      // f32 lanes; one shuffle tree per tile sums each row's lanes.
      e.loop(begin, end, 1, [&](Value tile) {
        tileLogits(tile, [&](Value t) -> Value {
          Value zf = arith::ConstantOp::create(
              b, loc, DenseElementsAttr::get(v16f, b.getF32FloatAttr(0.0f)));
          SmallVector<Value> rowAccs = e.fold(
              e.idx(0), e.idx(hp / 128), 1, SmallVector<Value>(kTileRows, zf),
              [&](Value pr, ValueRange cur) -> SmallVector<Value> {
            SmallVector<Value> acc(cur), cs, acts, inits;
            for (int half = 0; half < 2; ++half) {
              Value c = e.add(arith::MulIOp::create(b, loc, pr, e.idx(2)),
                              e.idx(half));
              cs.push_back(c);
              acts.push_back(blockActs(t, c));
              inits.push_back(vector::LoadOp::create(
                  b, loc, v16, cr,
                  ValueRange{t, arith::MulIOp::create(b, loc, c, e.idx(16))}));
            }
            for (int64_t r = 0; r < kTileRows; ++r) {
              prefetchAhead(e, wm, tile, pr, r);
              Value p = vector::LoadOp::create(
                  b, loc, v64b, wm, ValueRange{tile, pr, e.idx(r), e.idx(0)});
              for (int half = 0; half < 2; ++half) {
                Value dot =
                    vpdpbusd(e, inits[half], nibbles(p, half), acts[half]);
                Value s = memref::LoadOp::create(
                    b, loc, sc, ValueRange{tile, cs[half], e.idx(r)});
                acc[r] = e.add(acc[r],
                               e.mul(arith::SIToFPOp::create(b, loc, v16f, dot),
                                     e.splat(v16f, s)));
              }
            }
            return acc;
          });
          return transposeReduce(e, rowAccs);
        });
      });
      return;
    }
    if (isaName == "avx2") {
      // One task = one tile, read in one pass over its blocks: all 16 rows'
      // accumulators are carried (LLVM keeps what does not fit AVX2's 16
      // registers on the stack, a few L1 accesses per 1 KiB block), so the
      // tile is one contiguous stream (prefetched 4 blocks ahead). Two
      // passes of 8 rows, each reading every other 512 bytes, left the
      // 8-bit head 12 % slower per byte than the ternary layers (1 thread,
      // Zen 3: lm_head / matmul time 0.72-0.73 -> 0.64 for 0.63 of the
      // bytes; the 4-bit head, 0.32-0.34 either way). Each 8 rows' logits
      // are stored as one vector under the tile's row mask.
      auto v8 = VectorType::get({8}, i32), v8f = VectorType::get({8}, f32);
      auto v32b = VectorType::get({32}, i8);
      // The 32 activation codes of token t from column `col`.
      auto acts32 = [&](Value t, Value col) -> Value {
        return vector::LoadOp::create(b, loc, v32b, q, ValueRange{t, col});
      };
      // The sums of a tile's 16 row accumulators, 8 rows per vector.
      auto sumsPerEight = [&](ArrayRef<Value> rowAccs) {
        SmallVector<Value> out;
        for (int64_t g = 0; g < kTileRows; g += 8)
          out.push_back(
              transposeReduce(e, SmallVector<Value>(rowAccs.slice(g, 8))));
        return out;
      };
      // int8: codes and activations are both signed (|q| <= 127), so
      // pmaddubsw takes |act| and the code with act's sign (pairs stay below
      // 2^15) and no offset correction is needed; i32 lanes accumulate over
      // the row, scaled once at the end.
      auto int8Rows = [&](Value tile, Value t) -> SmallVector<Value> {
        Value flip = byteSplat(v32b, int8_t(-128));
        Value zi = e.splatInt(v8, 0);
        SmallVector<Value> rowAccs = e.fold(
            e.idx(0), e.idx(nb64), 1, SmallVector<Value>(kTileRows, zi),
            [&](Value c, ValueRange cur) -> SmallVector<Value> {
          SmallVector<Value> acc(cur), acts, mags;
          for (int64_t hh = 0; hh < 2; ++hh) {
            acts.push_back(acts32(
                t, e.add(arith::MulIOp::create(b, loc, c, e.idx(64)),
                         e.idx(32 * hh))));
            mags.push_back(math::AbsIOp::create(b, loc, acts[hh]));
          }
          for (int64_t r = 0; r < kTileRows; ++r) {
            prefetchAhead(e, wm, tile, c, r);
            for (int64_t hh = 0; hh < 2; ++hh) {
              Value w8 = arith::XOrIOp::create(
                  b, loc,
                  vector::LoadOp::create(
                      b, loc, v32b, wm,
                      ValueRange{tile, c, e.idx(r), e.idx(32 * hh)}),
                  flip);
              Value signedW = LLVM::CallIntrinsicOp::create(
                                  b, loc, v32b,
                                  b.getStringAttr("llvm.x86.avx2.psign.b"),
                                  ValueRange{w8, acts[hh]})
                                  .getResult(0);
              acc[r] = e.add(acc[r], maddubs32(e, mags[hh], signedW));
            }
          }
          return acc;
        });
        SmallVector<Value> out = sumsPerEight(rowAccs);
        for (int64_t g = 0; g < kTileRows; g += 8) {
          Value rows = e.add(
              arith::MulIOp::create(b, loc, tile, e.idx(kTileRows)), e.idx(g));
          out[g / 8] =
              e.mul(arith::SIToFPOp::create(b, loc, v8f, out[g / 8]),
                    vector::LoadOp::create(b, loc, v8f, sc, ValueRange{rows}));
        }
        return out;
      };
      // int4: per 32-byte half of a block (one nibble of a block pair), the
      // codes (0..15, |code x act| pairs below 2^15) plus the same offset
      // correction as VNNI's lanes, scaled per block into f32 lanes.
      auto int4Rows = [&](Value tile, Value t) -> SmallVector<Value> {
        Value low4 = e.splat(v8, e.i32(0x0F0F0F0F));
        Value zf = arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(v8f, b.getF32FloatAttr(0.0f)));
        SmallVector<Value> rowAccs = e.fold(
            e.idx(0), e.idx(hp / 128), 1, SmallVector<Value>(kTileRows, zf),
            [&](Value pr, ValueRange cur) -> SmallVector<Value> {
          SmallVector<Value> acc(cur);
          for (int64_t r = 0; r < kTileRows; ++r) {
            Value row = e.idx(r);
            prefetchAhead(e, wm, tile, pr, r);
            for (int half = 0; half < 2; ++half) {
              Value c = e.add(arith::MulIOp::create(b, loc, pr, e.idx(2)),
                              e.idx(half));
              Value dot;
              for (int64_t hh = 0; hh < 2; ++hh) {
                Value p = vector::BitCastOp::create(
                    b, loc, v8,
                    vector::LoadOp::create(b, loc, v32b, wm,
                                           ValueRange{tile, pr, row,
                                                      e.idx(32 * hh)}));
                if (half)
                  p = arith::ShRUIOp::create(b, loc, p, e.splat(v8, e.i32(4)));
                Value u = vector::BitCastOp::create(
                    b, loc, v32b, arith::AndIOp::create(b, loc, p, low4));
                Value at = e.add(arith::MulIOp::create(b, loc, c, e.idx(64)),
                                 e.idx(32 * hh));
                Value corr = vector::LoadOp::create(
                    b, loc, v8, cr,
                    ValueRange{t, e.add(arith::MulIOp::create(b, loc, c,
                                                              e.idx(16)),
                                        e.idx(8 * hh))});
                Value part = e.add(maddubs32(e, u, acts32(t, at)), corr);
                dot = hh ? e.add(dot, part) : part;
              }
              Value s = memref::LoadOp::create(b, loc, sc,
                                               ValueRange{tile, c, row});
              acc[r] = e.add(acc[r],
                             e.mul(arith::SIToFPOp::create(b, loc, v8f, dot),
                                   e.splat(v8f, s)));
            }
          }
          return acc;
        });
        return sumsPerEight(rowAccs);
      };
      e.loop(begin, end, 1, [&](Value tile) {
        Value r0 = arith::MulIOp::create(b, loc, tile, e.idx(kTileRows));
        Value valid = arith::MinUIOp::create(
            b, loc, arith::SubIOp::create(b, loc, e.idx(v), r0),
            e.idx(kTileRows));
        e.loop(from, nt, 1, [&](Value t) {
          SmallVector<Value> halves =
              int4 ? int4Rows(tile, t) : int8Rows(tile, t);
          for (int64_t g = 0; g < kTileRows; g += 8) {
            Value y = e.mul(halves[g / 8],
                            e.splat(v8f, memref::LoadOp::create(
                                             b, loc, d, ValueRange{t})));
            Value left = arith::MaxSIOp::create(
                b, loc,
                arith::MinSIOp::create(
                    b, loc, arith::SubIOp::create(b, loc, valid, e.idx(g)),
                    e.idx(8)),
                e.idx(0));
            Value mask = vector::CreateMaskOp::create(
                b, loc, VectorType::get({8}, b.getI1Type()), ValueRange{left});
            vector::MaskedStoreOp::create(b, loc, o,
                                          ValueRange{t, e.add(r0, e.idx(g))},
                                          mask, y);
          }
        });
      });
      return;
    }
    if (isaName == "neondot") {
      // aarch64 dot products: the stored codes made signed (int8: code + 128
      // xor 128; int4: nibble - 8), so sdot needs no offset correction; i32
      // lanes over the row (int8, one scale) or scaled per block into f32
      // lanes (int4), one reduction per row.
      auto signedCodes = [&](Value row, Value c, int half) -> Value {
        Value u = blockCodes(row, c, half);
        if (int4)
          return arith::SubIOp::create(b, loc, u, byteSplat(v64b, 8));
        return arith::XOrIOp::create(b, loc, u, byteSplat(v64b, int8_t(-128)));
      };
      forHeadRows(e, begin, end, from, nt, v, [&](Value row, Value t) {
        Value total;
        if (!int4) {
          Value acc =
              e.fold(e.idx(0), e.idx(nb64), 1, {e.splatInt(v16, 0)},
                     [&](Value c, ValueRange cur) -> SmallVector<Value> {
                       return {dot4(e, isaName, cur[0], signedCodes(row, c, 0),
                                    blockActs(t, c))};
                     })[0];
          total =
              e.mul(arith::SIToFPOp::create(
                        b, loc, f32, e.reduce(vector::CombiningKind::ADD, acc)),
                    blockScale(row, e.idx(0)));
        } else {
          Value zf = arith::ConstantOp::create(
              b, loc, DenseElementsAttr::get(v16f, b.getF32FloatAttr(0.0f)));
          Value acc = e.fold(
              e.idx(0), e.idx(hp / 128), 1, {zf},
              [&](Value pr, ValueRange cur) -> SmallVector<Value> {
                Value a = cur[0];
                for (int half = 0; half < 2; ++half) {
                  Value c = e.add(arith::MulIOp::create(b, loc, pr, e.idx(2)),
                                  e.idx(half));
                  Value dot = dot4(e, isaName, e.splatInt(v16, 0),
                                   signedCodes(row, c, half), blockActs(t, c));
                  a = e.add(a, e.mul(arith::SIToFPOp::create(b, loc, v16f, dot),
                                     e.splat(v16f, blockScale(row, c))));
                }
                return {a};
              })[0];
          total = e.reduce(vector::CombiningKind::ADD, acc);
        }
        total = e.mul(total, memref::LoadOp::create(b, loc, d, ValueRange{t}));
        memref::StoreOp::create(b, loc, total, o, ValueRange{t, row});
      });
      return;
    }
    forHeadRows(e, begin, end, from, nt, v, [&](Value row, Value t) {
          // Other targets: exact block dot products in i32 lanes.
          Value offv = e.splat(v64i, e.i32(off));
          auto blockDot = [&](Value c, int half) -> Value {
            Value u = arith::SubIOp::create(
                b, loc,
                arith::ExtUIOp::create(b, loc, v64i, blockCodes(row, c, half)),
                offv);
            Value act = arith::ExtSIOp::create(b, loc, v64i, blockActs(t, c));
            Value dot = e.reduce(vector::CombiningKind::ADD, e.mul(u, act));
            return e.mul(arith::SIToFPOp::create(b, loc, f32, dot),
                         blockScale(row, int4 ? c : e.idx(0)));
          };
          Value total = e.fold(
              e.idx(0), e.idx(int4 ? hp / 128 : nb64), 1, {e.f32(0.0f)},
              [&](Value c, ValueRange cur) -> SmallVector<Value> {
            if (!int4)
              return {e.add(cur[0], blockDot(c, 0))};
            Value c0 = arith::MulIOp::create(b, loc, c, e.idx(2));
            return {e.add(e.add(cur[0], blockDot(c0, 0)),
                          blockDot(e.add(c0, e.idx(1)), 1))};
          })[0];
          total = e.mul(total, memref::LoadOp::create(b, loc, d, ValueRange{t}));
          memref::StoreOp::create(b, loc, total, o, ValueRange{t, row});
    });
  });
  callTasks(kern, {xq, dx, xsum, corr, codes, scales, logitsArg, logitsFromArg},
            arith::ConstantIndexOp::create(b, loc, llvm::divideCeil(v, kRowBlock)));
  return success();
}

//===----------------------------------------------------------------------===//
// TopK mask
//===----------------------------------------------------------------------===//

/// Keeps exactly k entries of largest magnitude per row; among equal
/// magnitudes the lower index wins. The k-th largest magnitude is found by a
/// bitwise binary search on the f32 bit patterns of |x| (monotonic for
/// non-negative floats): 31 counting passes of vector compares, then one
/// in-order pass keeps the entries above it and the first ties.
LogicalResult KernelGenerator::lowerTopK(TopKMaskOp op) {
  Value x = lowered(op, op.getInput());
  if (!x)
    return failure();
  int64_t d = op.getInput().getType().getShape().back(), k = op.getK();
  Value out = alloc({kDyn, d}, b.getF32Type());
  std::string name = "topk_" + std::to_string(d) + "_" + std::to_string(k);
  auto kern = kernel(name, {x.getType(), out.getType()}, true,
                     [&](Emit &e, ValueRange a) {
    Value xs = a[0], o = a[1], begin = a[2], end = a[3];
    auto i32 = b.getI32Type();
    // bits(|x|) at column c, `w` lanes.
    auto absBits = [&](Value t, Value c, int64_t w) -> Value {
      Value v = math::AbsFOp::create(b, loc, load(e, xs, {t, c}, w));
      Type it = w == 1 ? Type(i32) : Type(VectorType::get({w}, i32));
      return arith::BitcastOp::create(b, loc, it, v);
    };
    // Number of columns whose bits compare `pred` against `bound`.
    auto count = [&](Value t, Value bound, arith::CmpIPredicate pred) {
      return reduceRow(
          e, d, vw, b.getI32IntegerAttr(0), vector::CombiningKind::ADD,
          [&](Value c, int64_t w) -> Value {
            Value bits = absBits(t, c, w);
            Value cmp = arith::CmpIOp::create(b, loc, pred, bits,
                                              lanes(e, bound, w));
            Type it = w == 1 ? Type(i32) : Type(VectorType::get({w}, i32));
            return arith::ExtUIOp::create(b, loc, it, cmp);
          },
          [&](Value p, Value q) { return e.add(p, q); });
    };
    e.loop(begin, end, 1, [&](Value t) {
      Value kk = e.i32(int32_t(k));
      Value thr = e.i32(0);
      for (int bit = 30; bit >= 0; --bit) {
        Value cand = arith::OrIOp::create(b, loc, thr, e.i32(1 << bit));
        Value n = count(t, cand, arith::CmpIPredicate::sge);
        Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, n,
                                         kk);
        thr = arith::SelectOp::create(b, loc, ok, cand, thr);
      }
      Value above = count(t, thr, arith::CmpIPredicate::sgt);
      Value ties = arith::SubIOp::create(b, loc, kk, above);
      // Keep |x| > thr, and the first `ties` columns with |x| == thr: vw
      // lanes at a time, a lane's rank among its block's ties from an
      // inclusive prefix sum (log2(vw) shifts), then the rest one by one.
      int64_t main = d / vw * vw;
      Value taken = e.i32(0);
      if (main > 0) {
        auto vi = VectorType::get({vw}, i32);
        auto vf = VectorType::get({vw}, b.getF32Type());
        Value zeroI = e.splat(vi, e.i32(0));
        taken = e.fold(e.idx(0), e.idx(main), vw, {taken},
            [&](Value c, ValueRange cur) -> SmallVector<Value> {
              Value v = load(e, xs, {t, c}, vw);
              Value bits = arith::BitcastOp::create(
                  b, loc, vi, math::AbsFOp::create(b, loc, v));
              Value gt = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::sgt, bits, e.splat(vi, thr));
              Value eq = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::eq, bits, e.splat(vi, thr));
              Value eqI = arith::ExtUIOp::create(b, loc, vi, eq);
              Value incl = eqI;
              for (int64_t sh = 1; sh < vw; sh *= 2) {
                SmallVector<int64_t> idx;
                for (int64_t l = 0; l < vw; ++l)
                  idx.push_back(l >= sh ? l - sh : vw);
                incl = e.add(incl, vector::ShuffleOp::create(b, loc, incl,
                                                             zeroI, idx));
              }
              Value rank = e.add(arith::SubIOp::create(b, loc, incl, eqI),
                                 e.splat(vi, cur[0]));
              Value room = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::slt, rank, e.splat(vi, ties));
              Value keep = arith::OrIOp::create(
                  b, loc, gt, arith::AndIOp::create(b, loc, eq, room));
              store(e,
                    arith::SelectOp::create(b, loc, keep, v,
                                            e.splat(vf, e.f32(0.0f))),
                    o, {t, c});
              return {e.add(cur[0], vector::ExtractOp::create(
                                        b, loc, incl, ArrayRef<int64_t>{vw - 1}))};
            })[0];
      }
      e.fold(e.idx(main), e.idx(d), 1, {taken},
             [&](Value c, ValueRange cur) -> SmallVector<Value> {
               Value bits = absBits(t, c, 1);
               Value gt = arith::CmpIOp::create(
                   b, loc, arith::CmpIPredicate::sgt, bits, thr);
               Value eq = arith::CmpIOp::create(
                   b, loc, arith::CmpIPredicate::eq, bits, thr);
               Value room = arith::CmpIOp::create(
                   b, loc, arith::CmpIPredicate::slt, cur[0], ties);
               Value tie = arith::AndIOp::create(b, loc, eq, room);
               Value keep = arith::OrIOp::create(b, loc, gt, tie);
               Value v = memref::LoadOp::create(b, loc, xs, ValueRange{t, c});
               memref::StoreOp::create(
                   b, loc, arith::SelectOp::create(b, loc, keep, v, e.f32(0.0f)),
                   o, ValueRange{t, c});
               Value used = arith::ExtUIOp::create(b, loc, i32, tie);
               return {e.add(cur[0], used)};
             });
    });
  });
  callTasks(kern, {x, out}, tokens);
  buffers[op.getResult()] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

LogicalResult KernelGenerator::run() {
  oldFunc = module.lookupSymbol<func::FuncOp>("forward");
  if (!oldFunc)
    return module.emitError("lowbit-generate-kernels: no func.func @forward "
                            "(import a model first)");
  blob = module->getAttrOfType<DictionaryAttr>("lowbit.blob");
  auto blobSize = module->getAttrOfType<IntegerAttr>("lowbit.blob_size");
  auto checksum = module->getAttrOfType<IntegerAttr>("lowbit.blob_checksum");
  auto info = module->getAttrOfType<DictionaryAttr>("lowbit.model");
  if (!blob || !blobSize || !checksum || !info)
    return module.emitError("lowbit-generate-kernels: run the pack phase "
                            "first (no lowbit.blob)");
  auto get = [&](StringRef key, int64_t dflt) {
    auto a = info.getAs<IntegerAttr>(key);
    return a ? a.getInt() : dflt;
  };
  vocab = get("vocab_size", 0);
  hidden = get("hidden_size", 0);
  numLayers = get("num_layers", 0);
  context = get("context", 0);
  auto args = oldFunc.getArgumentTypes();
  if (args.size() != size_t(2 + 2 * numLayers))
    return oldFunc.emitError("@forward does not have the importer's signature");
  if (numLayers > 0)
    kvWidth = cast<RankedTensorType>(args[2]).getShape()[1];
  oldFunc.walk([&](bitnet::AttentionOp a) {
    kvBits = a.getKvBits();
    kvF16 = a.getKvF16();
    kvHeads = a.getNumKvHeads();
    headDim = a.getHeadDim();
  });
  int64_t numL = std::max<int64_t>(numLayers, 1),
          kvW = std::max<int64_t>(kvWidth, 1);
  // 3-bit codes go 8 to 3 bytes when heads split into groups of 8, else
  // into nibbles; 4-bit into nibbles (head_dim is even); 8-bit into bytes.
  storeBits = kvBits == 3 && headDim % 8 != 0 ? 4 : kvBits;
  groupCodes = storeBits == 3 ? 8 : storeBits == 4 ? 2 : 1;
  groupBytes = storeBits == 3 ? 3 : 1;
  rowBytes = kvW / groupCodes * groupBytes;
  int64_t packedOffset = padTo(numL * kvW, 64);
  int64_t stepsOffset = padTo(packedOffset + numL * context * rowBytes, 64);
  cacheBytes = kvBits == 16 ? (kvF16 ? 2 : 4) * numL * context * kvW
                            : stepsOffset + 4 * numL * context * kvHeads;

  // @lowbit_forward(tokens, start, logits_from, logits, k_cache, v_cache,
  //                 blob, stats)
  auto f32 = b.getF32Type();
  SmallVector<Type> types{
      MemRefType::get({kDyn}, b.getI32Type()), b.getIndexType(),
      b.getIndexType(), MemRefType::get({kDyn, vocab}, f32),
      MemRefType::get({kDyn}, b.getI8Type()),
      MemRefType::get({kDyn}, b.getI8Type()),
      MemRefType::get({kDyn}, b.getI8Type()),
      MemRefType::get({kDyn}, b.getI64Type())};
  b.setInsertionPoint(oldFunc);
  newFunc = func::FuncOp::create(b, loc, "lowbit_forward",
                                 b.getFunctionType(types, {}));
  newFunc->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  Block *entry = newFunc.addEntryBlock();
  b.setInsertionPointToStart(entry);
  tokenIds = entry->getArgument(0);
  startArg = entry->getArgument(1);
  logitsFromArg = entry->getArgument(2);
  logitsArg = entry->getArgument(3);
  kCacheArg = entry->getArgument(4);
  vCacheArg = entry->getArgument(5);
  blobArg = entry->getArgument(6);
  statsArg = entry->getArgument(7);
  tokens = memref::DimOp::create(b, loc, tokenIds, 0);
  {
    int64_t l = std::max<int64_t>(numLayers, 1), w = std::max<int64_t>(kvWidth, 1);
    auto view = [&](Value buf, int64_t offset, ArrayRef<int64_t> shape,
                    Type elt) -> Value {
      return memref::ViewOp::create(
          b, loc, MemRefType::get(shape, elt), buf,
          arith::ConstantIndexOp::create(b, loc, offset), ValueRange{});
    };
    if (kvBits == 16) {
      // Head-major [L, kv_heads, C, head_dim]: each KV head's rows are one
      // contiguous stream for the attention tasks that read them.
      int64_t nkv = std::max<int64_t>(kvHeads, 1),
              hd = std::max<int64_t>(headDim, 1);
      Type elt = kvF16 ? Type(b.getF16Type()) : Type(f32);
      kCache = view(kCacheArg, 0, {l, nkv, context, hd}, elt);
      vCache = view(vCacheArg, 0, {l, nkv, context, hd}, elt);
    } else {
      Type i8 = b.getI8Type();
      kBos = view(kCacheArg, 0, {l, w}, i8);
      vBos = view(vCacheArg, 0, {l, w}, i8);
      kCache = view(kCacheArg, packedOffset, {l, context, rowBytes}, i8);
      vCache = view(vCacheArg, packedOffset, {l, context, rowBytes}, i8);
      kSteps = view(kCacheArg, stepsOffset, {l, context, kvHeads}, f32);
      vSteps = view(vCacheArg, stepsOffset, {l, context, kvHeads}, f32);
    }
  }

  for (Operation &opRef : oldFunc.getBody().front()) {
    Operation *op = &opRef;
    loc = op->getLoc();
    LogicalResult r =
        llvm::TypeSwitch<Operation *, LogicalResult>(op)
            .Case([&](bitnet::EmbeddingOp o) { return lowerEmbedding(o); })
            .Case([&](QuantizeOp o) { return lowerQuantize(o); })
            .Case([&](WeightOp o) -> LogicalResult {
              TernaryType t = o.getType();
              bool cols = t.getLayout() == TernaryLayout::cols2;
              bool lut = t.getLayout() == TernaryLayout::lut3;
              if ((!cols && !lut && t.getLayout() != TernaryLayout::tiles2) ||
                  !o.getAlpha())
                return o.emitError("weight is not packed for the CPU kernels "
                                   "(run the pack phase first)");
              if (lut && isaName != "avx2")
                return o.emitError()
                       << "lut3 weights (the select phase's choice for AVX2) "
                          "need the avx2 kernels, not "
                       << isaName << ": run the select phase for this target";
              FailureOr<Value> view =
                  cols ? param(o, o.getSource(),
                               {t.getCols(), padTo(t.getRows(), 256) / 4})
                  : lut
                      ? param(o, o.getSource(),
                              {int64_t(llvm::divideCeil(t.getRows(), kLutRows)),
                               int64_t(llvm::divideCeil(t.getCols(),
                                                        kLutOctetCodes)),
                               kLutOctetBytes})
                      : param(o, o.getSource(),
                              {padTo(t.getRows(), kTileRows) / kTileRows,
                               padTo(t.getCols(), 256) / 256, kTileRows, 64});
              if (failed(view))
                return failure();
              weights[o.getResult()] = {*view, o.getAlpha()->convertToFloat()};
              // A cols2 weight's bytes are counted by its zero-skipping
              // matmul (the non-zero inputs' columns only).
              if (!cols)
                bytesPerToken +=
                    cast<MemRefType>(view->getType()).getNumElements();
              return success();
            })
            .Case([&](TernaryMatmulOp o) { return lowerMatmul(o); })
            .Case([&](TernaryMatmulSparseOp o) { return lowerSparseMatmul(o); })
            .Case([&](bitnet::RoPEOp o) { return lowerRoPE(o); })
            .Case([&](bitnet::AttentionOp o) { return lowerAttention(o); })
            .Case([&](bitnet::RMSNormOp o) { return lowerRMSNorm(o); })
            .Case<bitnet::ReLU2GLUOp, arith::AddFOp>(
                [&](Operation *o) { return lowerElementwise(o); })
            .Case([&](bitnet::LMHeadOp o) { return lowerLMHead(o); })
            .Case([&](TopKMaskOp o) { return lowerTopK(o); })
            .Case<tensor::DimOp, tensor::GenerateOp, arith::ConstantOp,
                  func::ReturnOp>([](Operation *) { return success(); })
            .Default([&](Operation *o) {
              return o->emitError()
                     << "'" << o->getName()
                     << "' is not supported by the CPU code generator yet";
            });
    if (failed(r))
      return failure();
  }
  loc = UnknownLoc::get(module.getContext());
  func::ReturnOp::create(b, loc);
  groupParallelCalls();
  // Buffers are recycled: a buffer whose last use is behind takes the place
  // of a later allocation of the same type (every dynamic size is the token
  // count, every buffer 64-byte aligned), so a forward call allocates a
  // handful of buffers, not a few per layer (2B4T: 16, not 818), and later
  // layers write to lines that are still cached. Each buffer is freed right
  // after its last use, so a 2B4T-shaped prefill of 256 tokens does not
  // touch over a gigabyte.
  Block &body = newFunc.getBody().front();
  auto lastUse = [&](Value m) {
    Operation *last = m.getDefiningOp();
    SmallVector<Value> work{m};
    while (!work.empty()) {
      Value v = work.pop_back_val();
      for (Operation *user : v.getUsers()) {
        if (Operation *top = body.findAncestorOpInBlock(*user);
            top && last->isBeforeInBlock(top))
          last = top;
        if (isa<ViewLikeOpInterface>(user))
          llvm::append_range(work, user->getResults());
      }
    }
    return last;
  };
  // The buffers that die after each op; the dead ones of each type. Only
  // this function's buffers whose sizes are all the token count (or none)
  // are recycled, so equal types mean equal sizes.
  llvm::SmallPtrSet<Operation *, 32> ours;
  DenseMap<Operation *, SmallVector<Value>> diesAfter;
  for (Value m : allocs) {
    auto a = m.getDefiningOp<memref::AllocOp>();
    if (llvm::all_of(a.getDynamicSizes(), [&](Value d) { return d == tokens; }))
      ours.insert(a);
    diesAfter[lastUse(m)].push_back(m);
  }
  DenseMap<Value, Value> replacedBy;
  DenseMap<Type, SmallVector<Value>> dead;
  SmallVector<Operation *> recycled;
  for (Operation &op : body) {
    if (ours.contains(&op)) {
      Value m = op.getResult(0);
      if (SmallVector<Value> &free = dead[m.getType()]; !free.empty()) {
        replacedBy[m] = free.pop_back_val();
        m.replaceAllUsesWith(replacedBy[m]);
        recycled.push_back(&op);
        continue;
      }
    }
    for (Value m : diesAfter.lookup(&op)) {
      Value buf = replacedBy.lookup_or(m, m);
      if (ours.contains(buf.getDefiningOp()))
        dead[buf.getType()].push_back(buf);
    }
  }
  for (Value m : allocs) {
    if (replacedBy.count(m))
      continue;
    b.setInsertionPointAfter(lastUse(m));
    memref::DeallocOp::create(b, loc, m);
  }
  for (Operation *op : recycled)
    op->erase();
  oldFunc.erase();

  // Model constants for the runtime (lowbit_abi.h, LOWBIT_META_*).
  auto getOpt = [&](StringRef key) { return get(key, -1); };
  SmallVector<int64_t> meta(LOWBIT_META_COUNT, 0);
  meta[LOWBIT_META_ABI_VERSION] = LOWBIT_ABI_VERSION;
  meta[LOWBIT_META_VOCAB] = vocab;
  meta[LOWBIT_META_HIDDEN] = hidden;
  meta[LOWBIT_META_LAYERS] = numLayers;
  meta[LOWBIT_META_CONTEXT] = context;
  meta[LOWBIT_META_KV_WIDTH] = kvWidth;
  meta[LOWBIT_META_BOS] = getOpt("bos_token_id");
  meta[LOWBIT_META_EOS] = getOpt("eos_token_id");
  meta[LOWBIT_META_WEIGHT_BYTES] = blobSize.getInt();
  meta[LOWBIT_META_WEIGHT_CHECKSUM] = checksum.getInt();
  meta[LOWBIT_META_EMBEDDED] = embedded ? 1 : 0;
  meta[LOWBIT_META_KV_BITS] = kvBits;
  meta[LOWBIT_META_KV_F16] = kvF16;
  meta[LOWBIT_META_KV_BYTES] = cacheBytes;
  meta[LOWBIT_META_STAT_SLOTS] = int64_t(statNames.size());
  meta[LOWBIT_META_BYTES_PER_TOKEN] = bytesPerToken;
  b.setInsertionPointToEnd(module.getBody());
  auto arrTy = LLVM::LLVMArrayType::get(b.getI64Type(), LOWBIT_META_COUNT);
  LLVM::GlobalOp::create(
      b, loc, arrTy, /*isConstant=*/true, LLVM::Linkage::External,
      "lowbit_model_meta",
      DenseElementsAttr::get(RankedTensorType::get({LOWBIT_META_COUNT},
                                                   b.getI64Type()),
                             ArrayRef<int64_t>(meta)));
  // The weights each stats slot feeds, one line per slot.
  std::string names = llvm::join(statNames, "\n");
  names.push_back('\0');
  LLVM::GlobalOp::create(
      b, loc, LLVM::LLVMArrayType::get(b.getI8Type(), names.size()),
      /*isConstant=*/true, LLVM::Linkage::External, "lowbit_stat_names",
      b.getStringAttr(names));
  return success();
}

struct GenerateKernelsPass
    : lowbit::impl::GenerateKernelsPassBase<GenerateKernelsPass> {
  using Base::Base;
  void runOnOperation() override {
    if (isa != "avx512vnni" && isa != "avx2" && isa != "neondot" &&
        isa != "generic") {
      getOperation().emitError()
          << "lowbit-generate-kernels: unknown isa '" << isa
          << "'; expected avx512vnni, avx2, neondot or generic";
      return signalPassFailure();
    }
    if (failed(KernelGenerator(getOperation(), isa, gfni, embeddedWeights)
                   .run()))
      return signalPassFailure();
    // The softmax's math.exp (16 lanes at a time) becomes upstream's
    // polynomial approximation instead of one libm call per lane.
    SmallVector<Operation *> exps;
    getOperation().walk([&](math::ExpOp op) { exps.push_back(op); });
    if (exps.empty())
      return;
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(
        patterns, [](StringRef name) { return name == "math.exp" || name == "exp"; });
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    config.enableFolding(false);
    if (failed(applyOpPatternsGreedily(exps, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
