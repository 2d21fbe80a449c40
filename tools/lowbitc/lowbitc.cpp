//===- lowbitc.cpp - BitNet ahead-of-time compiler ------------------------===//

#include "lowbit/Compiler/Driver.h"

int main(int argc, char **argv) { return mlir::lowbit::compilerMain(argc, argv); }
