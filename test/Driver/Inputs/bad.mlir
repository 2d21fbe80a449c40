func.func @f(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = bitnet.rms_norm %x weight(#lowbit.param<"n" : tensor<8xbf16>>) {eps = 0.0 : f32} : tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
