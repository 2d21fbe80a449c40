func.func @f(%q: !lowbit.qact<?x64, i8>, %w: !lowbit.ternary<64x64, int8>) -> tensor<?x64xf32> {
  %0 = lowbit.ternary_matmul %q, %w {path = #lowbit.path<int8_sparce>} : !lowbit.qact<?x64, i8>, !lowbit.ternary<64x64, int8> -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
