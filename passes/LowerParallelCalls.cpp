//===- LowerParallelCalls.cpp - task markers -> thread-pool calls ---------===//
//
// After the LLVM conversion, a call `@__lowbit_par_K(a0, ..., am, n)` stands
// for "run @K(a0, ..., am, begin, end) over the task range [0, n)". Every
// argument is a scalar by then (memref descriptors are expanded), so each is
// stored in an 8-byte slot of a stack block; a generated `@K__task(block,
// begin, end)` reloads them and calls @K. The runtime's
// `lowbit_rt_parallel_for(@K__task, block, n)` splits the range over threads.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWERPARALLELCALLSPASS
#include "lowbit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

constexpr StringLiteral kMarker = "__lowbit_par_";

struct LowerParallelCallsPass
    : lowbit::impl::LowerParallelCallsPassBase<LowerParallelCallsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    OpBuilder b(ctx);
    auto ptrTy = LLVM::LLVMPointerType::get(ctx);
    auto i64 = b.getI64Type();

    SmallVector<LLVM::CallOp> calls;
    module.walk([&](LLVM::CallOp call) {
      if (call.getCallee() && call.getCallee()->starts_with(kMarker))
        calls.push_back(call);
    });
    if (calls.empty())
      return;

    auto runtimeFn = module.lookupSymbol<LLVM::LLVMFuncOp>("lowbit_rt_parallel_for");
    if (!runtimeFn) {
      b.setInsertionPointToStart(module.getBody());
      runtimeFn = LLVM::LLVMFuncOp::create(
          b, module.getLoc(), "lowbit_rt_parallel_for",
          LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx),
                                      {ptrTy, ptrTy, i64}));
    }

    for (LLVM::CallOp call : calls) {
      StringRef kernelName = call.getCallee()->drop_front(kMarker.size());
      auto kernel = module.lookupSymbol<LLVM::LLVMFuncOp>(kernelName);
      if (!kernel) {
        call.emitError() << "no kernel '" << kernelName
                         << "' for the parallel call";
        return signalPassFailure();
      }
      ValueRange operands = call.getArgOperands();
      size_t nargs = operands.size() - 1;
      if (kernel.getNumArguments() != nargs + 2) {
        call.emitError() << "kernel '" << kernelName << "' takes "
                         << kernel.getNumArguments()
                         << " arguments, the parallel call passes " << nargs
                         << " + (begin, end)";
        return signalPassFailure();
      }
      Location loc = call.getLoc();

      // @K__task(block, begin, end), once per kernel.
      std::string taskName = (kernelName + "__task").str();
      auto task = module.lookupSymbol<LLVM::LLVMFuncOp>(taskName);
      if (!task) {
        b.setInsertionPointAfter(kernel);
        task = LLVM::LLVMFuncOp::create(
            b, loc, taskName,
            LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx),
                                        {ptrTy, i64, i64}),
            LLVM::Linkage::Internal);
        Block *entry = task.addEntryBlock(b);
        b.setInsertionPointToStart(entry);
        SmallVector<Value> args;
        for (size_t i = 0; i < nargs; ++i) {
          Value slot = LLVM::GEPOp::create(
              b, loc, ptrTy, i64, entry->getArgument(0),
              ArrayRef<LLVM::GEPArg>{int32_t(i)});
          args.push_back(LLVM::LoadOp::create(
              b, loc, kernel.getArgumentTypes()[i], slot));
        }
        args.push_back(entry->getArgument(1));
        args.push_back(entry->getArgument(2));
        LLVM::CallOp::create(b, loc, kernel, args);
        LLVM::ReturnOp::create(b, loc, ValueRange{});
      }

      // The call site: arguments into a stack block, then the pool.
      b.setInsertionPoint(call);
      Value count = LLVM::ConstantOp::create(b, loc, i64,
                                             b.getI64IntegerAttr(nargs));
      Value block = LLVM::AllocaOp::create(b, loc, ptrTy, i64, count, 8);
      for (size_t i = 0; i < nargs; ++i) {
        Value slot = LLVM::GEPOp::create(b, loc, ptrTy, i64, block,
                                         ArrayRef<LLVM::GEPArg>{int32_t(i)});
        LLVM::StoreOp::create(b, loc, operands[i], slot);
      }
      Value fn = LLVM::AddressOfOp::create(b, loc, ptrTy, task.getSymName());
      LLVM::CallOp::create(b, loc, runtimeFn,
                           ValueRange{fn, block, operands.back()});
      call.erase();
    }
    // The markers are declarations only; drop them.
    for (auto fn : llvm::make_early_inc_range(module.getOps<LLVM::LLVMFuncOp>()))
      if (fn.getSymName().starts_with(kMarker) && fn.isExternal())
        fn.erase();
  }
};

} // namespace
