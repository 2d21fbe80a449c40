//===- FuseQuantization.cpp - RMSNorm folded into activation quantizers ---===//

#include "lowbit/Transforms/Passes.h"

#include "llvm/ADT/DenseMap.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_FUSEQUANTIZATIONPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

struct FuseQuantizationPass
    : lowbit::impl::FuseQuantizationPassBase<FuseQuantizationPass> {
  void runOnOperation() override {
    SmallVector<bitnet::RMSNormOp> norms;
    getOperation().walk([&](bitnet::RMSNormOp op) { norms.push_back(op); });
    for (bitnet::RMSNormOp norm : norms) {
      Value out = norm.getResult();
      if (out.use_empty() ||
          !llvm::all_of(out.getUsers(), [](Operation *user) {
            auto q = dyn_cast<QuantizeOp>(user);
            return q && !q.getNorm();
          }))
        continue;
      for (Operation *user : llvm::make_early_inc_range(out.getUsers())) {
        auto q = cast<QuantizeOp>(user);
        q.getInputMutable().assign(norm.getInput());
        q.setNormAttr(norm.getWeight());
        q.setEpsAttr(norm.getEpsAttr());
      }
      norm.erase();
    }

    // Merge quantizers that compute the same thing (q/k/v read one input).
    DenseMap<std::pair<Value, Attribute>, QuantizeOp> seen;
    getOperation().walk([&](QuantizeOp q) {
      auto key = std::make_pair(
          q.getInput(),
          Attribute(DictionaryAttr::get(
              q.getContext(),
              {NamedAttribute(StringAttr::get(q.getContext(), "attrs"),
                              q->getAttrDictionary()),
               NamedAttribute(StringAttr::get(q.getContext(), "type"),
                              TypeAttr::get(q.getType()))})));
      auto [it, inserted] = seen.try_emplace(key, q);
      if (!inserted && it->second->getBlock() == q->getBlock()) {
        q.getResult().replaceAllUsesWith(it->second.getResult());
        q.erase();
      }
    });
  }
};

} // namespace
