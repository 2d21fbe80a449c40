// RUN: lowbit-opt %s -split-input-file -lowbit-lower-parallel-calls -verify-diagnostics | FileCheck %s

// Tests that a task marker call becomes a thread-pool call: arguments stored
// in 8-byte slots, a task function reloading them and calling the kernel, and
// the marker declaration removed.
// CHECK: llvm.func @lowbit_rt_parallel_for(!llvm.ptr, !llvm.ptr, i64)
// CHECK-LABEL: llvm.func @k(
// CHECK-LABEL: llvm.func internal @k__task(%arg0: !llvm.ptr, %arg1: i64, %arg2: i64)
// CHECK: %[[A:.*]] = llvm.load %{{.*}} : !llvm.ptr -> !llvm.ptr
// CHECK: %[[B:.*]] = llvm.load %{{.*}} : !llvm.ptr -> i64
// CHECK: %[[C:.*]] = llvm.load %{{.*}} : !llvm.ptr -> f32
// CHECK: llvm.call @k(%[[A]], %[[B]], %[[C]], %arg1, %arg2)
// CHECK-NOT: __lowbit_par_k
// CHECK-LABEL: llvm.func @f(
// CHECK: %[[BLOCK:.*]] = llvm.alloca %{{.*}} x i64
// CHECK-COUNT-3: llvm.store
// CHECK: %[[FN:.*]] = llvm.mlir.addressof @k__task : !llvm.ptr
// CHECK: llvm.call @lowbit_rt_parallel_for(%[[FN]], %[[BLOCK]], %{{.*}}) : (!llvm.ptr, !llvm.ptr, i64) -> ()
// CHECK-NOT: __lowbit_par_k
module {
  llvm.func @k(%a: !llvm.ptr, %b: i64, %x: f32, %begin: i64, %end: i64) {
    llvm.return
  }
  llvm.func @__lowbit_par_k(!llvm.ptr, i64, f32, i64)
  llvm.func @f(%p: !llvm.ptr, %n: i64, %x: f32) {
    %c = llvm.mlir.constant(4 : i64) : i64
    llvm.call @__lowbit_par_k(%p, %n, %x, %c) : (!llvm.ptr, i64, f32, i64) -> ()
    llvm.return
  }
}

// -----

// Tests that a marker without its kernel is reported.
module {
  llvm.func @__lowbit_par_missing(i64)
  llvm.func @f() {
    %c = llvm.mlir.constant(4 : i64) : i64
    // expected-error @+1 {{no kernel 'missing' for the parallel call}}
    llvm.call @__lowbit_par_missing(%c) : (i64) -> ()
    llvm.return
  }
}

// -----

// Tests that a marker whose arguments do not match the kernel is reported.
module {
  llvm.func @k(%a: i64, %begin: i64, %end: i64) {
    llvm.return
  }
  llvm.func @__lowbit_par_k(i64, i64, i64)
  llvm.func @f(%a: i64) {
    %c = llvm.mlir.constant(4 : i64) : i64
    // expected-error @+1 {{kernel 'k' takes 3 arguments, the parallel call passes 2 + (begin, end)}}
    llvm.call @__lowbit_par_k(%a, %a, %c) : (i64, i64, i64) -> ()
    llvm.return
  }
}
