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
//           macs = density*N*K at the sparse kernel's rate (pairs of
//           non-zero columns interleaved byte by byte, one vpmaddubsw per
//           16 rows x 2 columns, plus the column lists and shuffles).
//   time = max(bytes / bandwidth, macs / rate); sparse wins when faster.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
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
  /// INT4 inputs take the lookup-table kernel over lut3 weights (AVX2:
  /// pshufb on per-token tables of 3-code sums): 1.67 instead of 2 bits per
  /// weight, and fewer instructions per weight than pmaddubsw on 2-bit
  /// codes. Measured on Zen 3, 2B4T a4.8 with the 4-bit head, alternating
  /// runs: decode 19.5-23.5 -> 22.3-26.6 tok/s on 1 thread, 33.6-38.0 ->
  /// 37.9-40.9 on 2 (bandwidth-bound: the bytes), prefill not slower. INT8
  /// inputs would need two tables (x = 16 h + l): compute-bound, no gain.
  bool lut4 = false;
};

/// Rates per thread. Dense: measured on a Zen 4 core (2B4T layer shapes,
/// decode), the VNNI kernel is bandwidth-bound (~163 G MAC/s on 2 threads).
/// Zero-skipping on AVX2 (Zen 3, 1 thread, 2B4T down_proj at density 0.33):
/// ~34 G MAC/s with its scattered columns' memory stalls (~45 with every
/// column in L1), so it beats the dense kernel below density ~0.5; the
/// same 256-bit kernel runs on AVX-512 hosts (assumed the same rate, not
/// measured there: it wins there below density ~0.3) and the generic one
/// in plain vector ops (assumed a third).
Target targetFor(StringRef isa, double bandwidthGBs) {
  constexpr double ghz = 3.0e9;
  double bw = bandwidthGBs * 1e9;
  if (isa == "avx512vnni") // 4 vpdpbusd (256 MACs) per 64 weight bytes
    return {ghz * 64, ghz * 12, bw};
  if (isa == "avx2") // vpmaddubsw + vpmaddwd per 32 MACs
    return {ghz * 24, ghz * 12, bw, /*lut4=*/true};
  if (isa == "neondot") // sdot: 16 MACs, two a cycle on Neoverse cores
    return {ghz * 24, ghz * 4, bw};
  return {ghz * 8, ghz * 4, bw};
}

/// Expected non-zero fraction at a ReLU^2-GLU output (down_proj's input)
/// without calibration: ReLU zeroes half, and INT8 absmax rounds the small
/// squares to zero as well. Measured: 0.33 on random 2B4T- and 700M-shaped
/// weights, 0.10-0.17 on the shipped trained models (a4.8 paper: > 80 %
/// zeros); 0.35 errs toward dense.
constexpr double kReLU2Density = 0.35;

struct Choice {
  ActPath path;
  double density, bytes, macs;
  std::string why;
  /// The weight goes in the lut3 layout (else tiles2, or cols2 when sparse).
  bool lut3 = false;
};

class Selector {
public:
  Selector(Target target, const llvm::json::Object *stats)
      : target(target), stats(stats) {}

  Choice choose(bitnet::BitLinearOp op) {
    int64_t n = op.getOutFeatures(), k = op.getInFeatures();
    double weights = double(n) * double(k);
    if (op.getAct() == bitnet::ActQuant::int4_absmean) {
      if (target.lut4)
        return {ActPath::int4_dense, 0.88,
                double(TernaryType::get(op.getContext(), n, k,
                                        TernaryLayout::lut3)
                           .getPackedBytes()),
                weights,
                "INT4 absmean input (scheme); dense, lookup tables over lut3 "
                "weights (1.67 bits per weight)",
                /*lut3=*/true};
      return {ActPath::int4_dense, 0.88, weights / 4, weights,
              "INT4 absmean input (scheme); dense"};
    }
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
      return {kReLU2Density, "ReLU^2-GLU default"};
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
  TernaryLayout layout = sparse        ? TernaryLayout::cols2
                         : choice.lut3 ? TernaryLayout::lut3
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
                                       /*gate=*/Value(), pathAttr)
                   .getOperation();
  mm->setAttr("lowbit.density", b.getF32FloatAttr(choice.density));
  mm->setAttr("lowbit.bytes", b.getI64IntegerAttr(int64_t(choice.bytes)));
  mm->setAttr("lowbit.macs", b.getI64IntegerAttr(int64_t(choice.macs)));
  mm->setAttr("lowbit.why", b.getStringAttr(choice.why));
  op.getResult().replaceAllUsesWith(mm->getResult(0));
  op.erase();
}

/// The calibrated zero fraction at the input of the down_proj that reads
/// `glu` (through ffn_sub_norm and the quantizer), if the statistics have it.
std::optional<double> downInputZeros(bitnet::ReLU2GLUOp glu,
                                     const llvm::json::Object *stats) {
  if (!stats)
    return std::nullopt;
  for (Operation *norm : glu.getResult().getUsers())
    for (Value r : norm->getResults())
      for (Operation *quant : r.getUsers())
        for (Value qr : quant->getResults())
          for (Operation *mm : qr.getUsers())
            if (mm->getNumOperands() > 1)
              if (auto w = mm->getOperand(1).getDefiningOp<WeightOp>())
                if (auto z = stats->getNumber(w.getSource().getName()))
                  return z;
  return std::nullopt;
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
    SmallVector<bitnet::BitLinearOp> ops;
    module.walk([&](bitnet::BitLinearOp op) { ops.push_back(op); });
    if (statsJson) {
      // Each entry: a linear layer's weight name and a zero fraction in
      // [0, 1]; names of no linear layer here (another model's statistics)
      // are reported once.
      llvm::StringSet<> names;
      for (bitnet::BitLinearOp op : ops)
        names.insert(op.getWeight().getName());
      unsigned unknown = 0;
      std::string firstUnknown;
      for (const auto &kv : *statsJson->getAsObject()) {
        std::optional<double> z = kv.second.getAsNumber();
        if (!z || !(*z >= 0.0 && *z <= 1.0)) {
          module.emitError() << statsFile << ": '" << kv.first.str()
                             << "': the zero fraction must be a number in "
                                "[0, 1]";
          return signalPassFailure();
        }
        if (!names.contains(kv.first.str()) && unknown++ == 0)
          firstUnknown = kv.first.str();
      }
      if (unknown)
        module.emitWarning() << statsFile << ": " << unknown
                             << " of its entries name no linear layer of this "
                                "model (first: '"
                             << firstUnknown << "'); they are ignored";
    }
    Selector selector(targetFor(isa, bandwidthGBs),
                      statsJson ? statsJson->getAsObject() : nullptr);
    for (bitnet::BitLinearOp op : ops)
      lowerBitLinear(op, selector.choose(op));

    // The exact ReLU^2-GLU shortcut: up_proj rows whose gate is <= 0 are
    // multiplied by relu(gate)^2 = 0, so they need not be computed. Skipping
    // rows saves their bytes at decode but breaks the weight stream; measured
    // on Zen 4 with 50 % non-positive gates it is neutral on 2 threads and
    // slower on 1, so it is chosen only when the expected share of skipped
    // rows exceeds kGateThreshold. The share is estimated by the zero fraction
    // at down_proj's input (calibration; ReLU^2 zeros dominate it), else 0.5.
    constexpr double kGateThreshold = 0.7;
    const llvm::json::Object *stats =
        statsJson ? statsJson->getAsObject() : nullptr;
    module.walk([&](bitnet::ReLU2GLUOp glu) {
      auto up = glu.getUp().getDefiningOp<TernaryMatmulOp>();
      if (!up || up.getGate() || !glu.getUp().hasOneUse() ||
          cast<TernaryType>(up.getWeight().getType()).getLayout() ==
              TernaryLayout::lut3)
        return;
      double skip = 0.5;
      std::string source = "default";
      if (std::optional<double> z = downInputZeros(glu, stats)) {
        skip = *z;
        source = "calibration";
      }
      if (skip <= kGateThreshold)
        return;
      Value gate = glu.getGate();
      if (Operation *def = gate.getDefiningOp())
        if (!def->isBeforeInBlock(up))
          return;
      up.getGateMutable().assign(gate);
      if (auto why = up->getAttrOfType<StringAttr>("lowbit.why"))
        up->setAttr("lowbit.why",
                    StringAttr::get(up.getContext(),
                                    why.getValue() +
                                        llvm::formatv("; rows gated by "
                                                      "relu(gate) > 0, ~{0:f2} "
                                                      "skipped ({1})",
                                                      skip, source)
                                            .str()));
    });
  }
};

} // namespace
