//===- SelectActivationPath.cpp - per-layer activation path choice --------===//
//
// Chooses, per linear layer, the activation path (int4 dense, int8 dense,
// int8 Top-K, int8 zero-skipping) from the scheme, a cost model of the target
// and optional calibration statistics, and lowers bitnet.bitlinear to the
// lowbit ops of that path.
//
// Cost model, per decoded token (the case where weights dominate):
//   dense:  bytes = N*K/4 (2-bit codes), macs = N*K at the dense kernel's
//           rate (VNNI vpdpbusd, AVX2 vpmaddubsw, or generic vectors);
//   sparse: bytes = density*N*K/4 (column-major codes of non-zero inputs),
//           macs = density*N*K at the sparse kernel's rate (per non-zero
//           input it widens a column to i32 lanes and multiply-adds).
//   time = max(bytes / bandwidth, macs / rate); sparse wins when faster.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

namespace mlir::lowbit {
#define GEN_PASS_DEF_SELECTACTIVATIONPATHPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// Kernel throughput in multiply-accumulates per second, per ISA.
struct Target {
  double denseMacs, sparseMacs, bytesPerSecond;
};

Target targetFor(StringRef isa, double bandwidthGBs) {
  constexpr double ghz = 3.0e9;
  double bw = bandwidthGBs * 1e9;
  if (isa == "avx512vnni") // 4 vpdpbusd (256 MACs) per 64 weight bytes
    return {ghz * 64, ghz * 8, bw};
  if (isa == "avx2") // vpmaddubsw + vpmaddwd per 32 MACs
    return {ghz * 24, ghz * 4, bw};
  return {ghz * 8, ghz * 2, bw};
}

struct Choice {
  ActPath path;
  double density, bytes, macs;
  std::string why;
};

class Selector {
public:
  Selector(Target target, const llvm::json::Object *stats)
      : target(target), stats(stats) {}

  Choice choose(bitnet::BitLinearOp op) {
    int64_t n = op.getOutFeatures(), k = op.getInFeatures();
    double weights = double(n) * double(k);
    if (op.getAct() == bitnet::ActQuant::int4_absmean)
      return {ActPath::int4_dense, 0.88, weights / 4, weights,
              "INT4 absmean input (scheme); dense"};
    auto [density, source] = expectedDensity(op, k);
    double denseT = std::max(weights / 4 / target.bytesPerSecond,
                             weights / target.denseMacs);
    double sparseT = std::max(density * weights / 4 / target.bytesPerSecond,
                              density * weights / target.sparseMacs);
    std::string why;
    llvm::raw_string_ostream os(why);
    os << llvm::format("density %.3f (%s): zero-skipping %.1f us vs dense "
                       "%.1f us per token",
                       density, source.c_str(), sparseT * 1e6, denseT * 1e6);
    if (sparseT < denseT)
      return {ActPath::int8_sparse, density, density * weights / 4,
              density * weights, why};
    return {op.getTopk() ? ActPath::int8_topk : ActPath::int8_dense, density,
            weights / 4, weights, why};
  }

private:
  /// Fraction of non-zero inputs, and where the figure comes from.
  std::pair<double, std::string> expectedDensity(bitnet::BitLinearOp op,
                                                 int64_t k) {
    if (stats)
      if (std::optional<double> zeros = stats->getNumber(op.getWeight().getName()))
        return {std::clamp(1.0 - *zeros, 0.0, 1.0), "calibration"};
    if (std::optional<int64_t> topk = op.getTopk())
      return {double(*topk) / double(k), "Top-K"};
    Value in = op.getInput();
    if (auto norm = in.getDefiningOp<bitnet::RMSNormOp>())
      in = norm.getInput();
    if (in.getDefiningOp<bitnet::ReLU2GLUOp>())
      return {0.5, "ReLU^2-GLU default"};
    return {0.94, "INT8 default"};
  }

  Target target;
  const llvm::json::Object *stats;
};

void lowerBitLinear(bitnet::BitLinearOp op, const Choice &choice) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();

  bool sparse = choice.path == ActPath::int8_sparse;
  TernaryLayout layout = sparse ? TernaryLayout::cols2
                         : op.isPackedWeight() ? TernaryLayout::hf_packed
                                               : TernaryLayout::int8;
  auto wTy = TernaryType::get(ctx, op.getOutFeatures(), op.getInFeatures(),
                              layout);
  Value w = WeightOp::create(b, loc, wTy, op.getWeight(),
                             op.getWeightScaleAttr(), /*alpha=*/FloatAttr());

  Value x = op.getInput();
  if (std::optional<int64_t> k = op.getTopk())
    x = TopKMaskOp::create(b, loc, x.getType(), x, b.getI64IntegerAttr(*k));

  bool int4 = op.getAct() == bitnet::ActQuant::int4_absmean;
  auto qTy = QActType::get(ctx, op.getInput().getType().getShape(),
                           b.getIntegerType(int4 ? 4 : 8));
  auto method = int4 ? QuantMethod::absmean : QuantMethod::absmax;
  Value q = QuantizeOp::create(b, loc, qTy, x,
                               QuantMethodAttr::get(ctx, method),
                               /*norm=*/ParamAttr(), /*eps=*/FloatAttr());
  auto pathAttr = ActPathAttr::get(ctx, choice.path);
  Operation *mm =
      sparse ? TernaryMatmulSparseOp::create(b, loc, op.getResult().getType(),
                                             q, w, pathAttr)
                   .getOperation()
             : TernaryMatmulOp::create(b, loc, op.getResult().getType(), q, w,
                                       pathAttr)
                   .getOperation();
  mm->setAttr("lowbit.density", b.getF32FloatAttr(choice.density));
  mm->setAttr("lowbit.bytes", b.getI64IntegerAttr(int64_t(choice.bytes)));
  mm->setAttr("lowbit.macs", b.getI64IntegerAttr(int64_t(choice.macs)));
  mm->setAttr("lowbit.why", b.getStringAttr(choice.why));
  op.getResult().replaceAllUsesWith(mm->getResult(0));
  op.erase();
}

struct SelectActivationPathPass
    : lowbit::impl::SelectActivationPathPassBase<SelectActivationPathPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<llvm::json::Value> statsJson;
    if (!statsFile.empty()) {
      auto buf = llvm::MemoryBuffer::getFile(statsFile, /*IsText=*/true);
      if (!buf) {
        module.emitError() << statsFile << ": cannot read calibration "
                                           "statistics: "
                           << buf.getError().message();
        return signalPassFailure();
      }
      auto parsed = llvm::json::parse((*buf)->getBuffer());
      if (!parsed || !parsed->getAsObject()) {
        module.emitError() << statsFile
                           << ": calibration statistics must be a JSON "
                              "object {tensor name: zero fraction}"
                           << (parsed ? ""
                                      : ": " + llvm::toString(
                                                   parsed.takeError()));
        return signalPassFailure();
      }
      statsJson = std::move(*parsed);
    }
    Selector selector(targetFor(isa, bandwidthGBs),
                      statsJson ? statsJson->getAsObject() : nullptr);
    SmallVector<bitnet::BitLinearOp> ops;
    module.walk([&](bitnet::BitLinearOp op) { ops.push_back(op); });
    for (bitnet::BitLinearOp op : ops)
      lowerBitLinear(op, selector.choose(op));
  }
};

} // namespace
