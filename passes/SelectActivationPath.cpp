//===- SelectActivationPath.cpp - bitnet.bitlinear -> lowbit --------------===//
//
// Chooses, per linear layer, the activation path and lowers bitnet.bitlinear
// to the lowbit ops of that path. This version decides from the quantizer the
// model's scheme gives each layer; the cost model and calibration statistics
// refine it (int8 zero-skipping) in a later version.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_SELECTACTIVATIONPATHPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// The path a layer takes from its quantizer alone.
ActPath pathFromScheme(bitnet::BitLinearOp op) {
  if (op.getAct() == bitnet::ActQuant::int4_absmean)
    return ActPath::int4_dense;
  return op.getTopk() ? ActPath::int8_topk : ActPath::int8_dense;
}

void lowerBitLinear(bitnet::BitLinearOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();

  TernaryLayout layout =
      op.isPackedWeight() ? TernaryLayout::hf_packed : TernaryLayout::int8;
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
  Value y = TernaryMatmulOp::create(b, loc, op.getResult().getType(), q, w,
                                    ActPathAttr::get(ctx, pathFromScheme(op)));
  op.getResult().replaceAllUsesWith(y);
  op.erase();
}

struct SelectActivationPathPass
    : lowbit::impl::SelectActivationPathPassBase<SelectActivationPathPass> {
  void runOnOperation() override {
    SmallVector<bitnet::BitLinearOp> ops;
    getOperation().walk([&](bitnet::BitLinearOp op) { ops.push_back(op); });
    for (bitnet::BitLinearOp op : ops)
      lowerBitLinear(op);
  }
};

} // namespace
