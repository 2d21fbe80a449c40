//===- CPU.cpp - CPU targets: machine, object emission, linking -----------===//

#include "lowbit/Target/CPU.h"

#include "lowbit_abi.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <fstream>

using namespace mlir;
using namespace mlir::lowbit;
using llvm::Error;
using llvm::StringRef;

static Error err(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// Whether `triple` is for the architecture lowbitc runs on.
static bool isHostArch(const llvm::Triple &triple) {
  return triple.getArch() ==
         llvm::Triple(llvm::sys::getDefaultTargetTriple()).getArch();
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
mlir::lowbit::createTargetMachine(StringRef tripleStr, StringRef cpu,
                                  StringRef features) {
  std::string host = llvm::sys::getDefaultTargetTriple();
  llvm::Triple triple(tripleStr.empty() ? host
                                        : llvm::Triple::normalize(tripleStr));
  std::string msg;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, msg);
  if (!target)
    return err("unknown target '" + tripleStr + "': " + msg);
  // The kernels are CPU code (vector ops, a thread pool); a GPU would need
  // kernels of its own and a launch runtime, which lowbit does not have.
  if (triple.isGPU())
    return err("target '" + tripleStr +
               "' is a GPU: lowbit generates CPU code only (x86_64 and "
               "aarch64 executables; other CPU targets with --emit=obj)");
  bool isHost = isHostArch(triple);
  std::string cpuName = cpu.str();
  llvm::SubtargetFeatures feats;
  if (cpu.empty() || cpu == "native") {
    if (!isHost && cpu == "native")
      return err("--mcpu=native needs the host's architecture, not " +
                 triple.str());
    if (isHost) {
      cpuName = llvm::sys::getHostCPUName().str();
      for (auto &f : llvm::sys::getHostCPUFeatures())
        feats.AddFeature(f.first(), f.second);
    } else {
      cpuName = "generic";
    }
  }
  std::unique_ptr<llvm::MCSubtargetInfo> sti(
      target->createMCSubtargetInfo(triple, cpuName, ""));
  if (!sti || (cpuName != "generic" && !sti->isCPUStringValid(cpuName)))
    return err("unknown --mcpu='" + cpu + "' for target " + triple.str());
  // Each --mattr entry is +name or -name of a feature of the target (LLVM
  // would warn and ignore anything else).
  for (StringRef f : llvm::split(features, ',')) {
    if (f.empty())
      continue;
    StringRef name = f.drop_front();
    if ((!f.starts_with("+") && !f.starts_with("-")) || name.empty())
      return err("--mattr: '" + f + "' is not +feature or -feature");
    if (llvm::none_of(
            sti->getAllProcessorFeatures(),
            [&](const llvm::SubtargetFeatureKV &kv) { return name == kv.Key; }))
      return err("--mattr: unknown feature '" + name + "' for target " +
                 triple.str());
    feats.AddFeature(f);
  }
  llvm::TargetOptions opts;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpuName, feats.getString(), opts, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    return err("cannot create a target machine for " + triple.str());
  return std::move(tm);
}

std::string mlir::lowbit::kernelISA(const llvm::TargetMachine &tm) {
  if (tm.getTargetTriple().getArch() == llvm::Triple::aarch64)
    return tm.getMCSubtargetInfo()->checkFeatures("+dotprod") ? "neondot"
                                                              : "generic";
  if (tm.getTargetTriple().getArch() != llvm::Triple::x86_64)
    return "generic";
  const llvm::MCSubtargetInfo *sti = tm.getMCSubtargetInfo();
  if (sti->checkFeatures("+avx512vnni,+avx512bw,+avx512f"))
    return "avx512vnni";
  if (sti->checkFeatures("+avx2"))
    return "avx2";
  return "generic";
}

bool mlir::lowbit::hasGFNI(const llvm::TargetMachine &tm) {
  return tm.getTargetTriple().getArch() == llvm::Triple::x86_64 &&
         tm.getMCSubtargetInfo()->checkFeatures("+gfni");
}

Error mlir::lowbit::emitObject(ModuleOp module, llvm::TargetMachine &tm,
                               StringRef path) {
  registerBuiltinDialectTranslation(*module.getContext());
  registerLLVMDialectTranslation(*module.getContext());
  llvm::LLVMContext llvmCtx;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmCtx, "lowbit-model");
  if (!llvmModule)
    return err("cannot translate the model to LLVM IR");
  llvmModule->setTargetTriple(tm.getTargetTriple());
  llvmModule->setDataLayout(tm.createDataLayout());
  // x86 and aarch64: the CPU and features the code may use, for the runtime
  // to check (lowbit_abi.h) before any of it runs.
#define LOWBIT_FEATURE_NAME(name, ...) name,
  static const char *const x86Features[] = {
      LOWBIT_X86_FEATURES(LOWBIT_FEATURE_NAME)};
  static const char *const aarch64Features[] = {
      LOWBIT_AARCH64_FEATURES(LOWBIT_FEATURE_NAME)};
#undef LOWBIT_FEATURE_NAME
  llvm::Triple::ArchType arch = tm.getTargetTriple().getArch();
  if (arch == llvm::Triple::x86_64 || arch == llvm::Triple::aarch64) {
    const llvm::MCSubtargetInfo *sti = tm.getMCSubtargetInfo();
    std::string used;
    for (const char *f : arch == llvm::Triple::x86_64
                             ? llvm::ArrayRef<const char *>(x86Features)
                             : llvm::ArrayRef<const char *>(aarch64Features))
      if (sti->checkFeatures(std::string("+") + f))
        used += (used.empty() ? "" : ",") + std::string(f);
    auto addString = [&](StringRef name, StringRef value) {
      llvm::Constant *init = llvm::ConstantDataArray::getString(llvmCtx, value);
      new llvm::GlobalVariable(*llvmModule, init->getType(),
                               /*isConstant=*/true,
                               llvm::GlobalValue::ExternalLinkage, init, name);
    };
    addString("lowbit_cpu_target", tm.getTargetCPU());
    addString("lowbit_cpu_features", used);
  }
  // Every function may use the machine's features (intrinsics need them).
  for (llvm::Function &f : *llvmModule) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", tm.getTargetCPU());
    if (!tm.getTargetFeatureString().empty())
      f.addFnAttr("target-features", tm.getTargetFeatureString());
  }

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3)
      .run(*llvmModule, mam);

  std::error_code ec;
  auto out = std::make_unique<llvm::ToolOutputFile>(path, ec,
                                                    llvm::sys::fs::OF_None);
  if (ec)
    return err(path + ": cannot write: " + ec.message());
  llvm::legacy::PassManager codegen;
  if (tm.addPassesToEmitFile(codegen, out->os(), nullptr,
                             llvm::CodeGenFileType::ObjectFile))
    return err("the target cannot emit object files");
  codegen.run(*llvmModule);
  out->os().flush();
  if (std::error_code ec = out->os().error()) {
    out->os().clear_error(); // else its destructor aborts the process
    return err(path + ": cannot write: " + ec.message());
  }
  out->keep();
  return Error::success();
}

/// Runs a tool (the linker driver, llvm-objcopy); its diagnostics go to a
/// temporary file, and a failure is one line quoting its first error.
static Error run(StringRef program, llvm::ArrayRef<std::string> args) {
  auto path = llvm::sys::findProgramByName(program);
  if (!path)
    return err("cannot find '" + program + "' (run tools/setup.sh)");
  std::vector<StringRef> argv{*path};
  for (const std::string &a : args)
    argv.push_back(a);
  llvm::SmallString<128> log;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("lowbitc-tool", "log", log))
    return err("cannot create a temporary file: " + ec.message());
  llvm::scope_exit removeLog([&] { llvm::sys::fs::remove(log); });
  std::string msg;
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  int rc = llvm::sys::ExecuteAndWait(*path, argv, std::nullopt, redirects, 0,
                                     0, &msg);
  if (rc == 0)
    return Error::success();
  std::string first;
  if (auto buf = llvm::MemoryBuffer::getFile(log)) {
    StringRef text = (*buf)->getBuffer();
    for (StringRef line : llvm::split(text, '\n'))
      if (line.contains("error:")) {
        first = line.trim().str();
        break;
      }
    if (first.empty())
      first = text.trim().split('\n').first.str();
  }
  if (first.empty())
    first = msg;
  return err("'" + llvm::sys::path::filename(program) + "' failed" +
             (first.empty() ? "" : ": " + first));
}

/// The tools directory of the LLVM the project was built with.
static std::string toolPath(StringRef name) {
  llvm::SmallString<256> p(LOWBIT_LLVM_TOOLS_DIR);
  llvm::sys::path::append(p, name);
  return llvm::sys::fs::exists(p) ? std::string(p) : name.str();
}

/// The runtime archive `name` built for `triple`: lib/ for the host's
/// architecture, lib/<arch>-linux-gnu/ for a cross target (built when
/// Debian's libc6-dev-<arch>-cross was installed).
static std::string runtimeLibrary(StringRef name, const llvm::Triple &triple) {
  std::string exe = llvm::sys::fs::getMainExecutable(nullptr, nullptr);
  llvm::SmallString<256> p(llvm::sys::path::parent_path(
      llvm::sys::path::parent_path(exe)));
  llvm::sys::path::append(p, "lib");
  if (!isHostArch(triple))
    llvm::sys::path::append(p, triple.getArchName() + "-linux-gnu");
  llvm::sys::path::append(p, name);
  return std::string(p);
}

static const char *objcopyFormat(const llvm::Triple &t) {
  switch (t.getArch()) {
  case llvm::Triple::aarch64: return "elf64-littleaarch64";
  default: return "elf64-x86-64";
  }
}

Error mlir::lowbit::checkRuntimeFor(const llvm::TargetMachine &tm) {
  const llvm::Triple &triple = tm.getTargetTriple();
  for (StringRef name : {"liblowbit_rt.a", "liblowbit_main.a"}) {
    std::string lib = runtimeLibrary(name, triple);
    if (llvm::sys::fs::exists(lib))
      continue;
    if (isHostArch(triple))
      return err("runtime library '" + lib + "' is missing (build lowbit)");
    return err("no lowbit runtime for " + triple.getArchName() +
               ": it is built for the cross targets in LOWBIT_CROSS_TARGETS "
               "whose C library is installed (Debian's libc6-dev-<arch>-cross "
               "and libgcc-12-dev-<arch>-cross; tools/setup.sh installs "
               "arm64's) when lowbit is built; --emit=obj needs none");
  }
  return Error::success();
}

Error mlir::lowbit::linkExecutable(const LinkOptions &o,
                                   const llvm::TargetMachine &tm) {
  if (Error e = checkRuntimeFor(tm))
    return e;
  const llvm::Triple &triple = tm.getTargetTriple();
  std::string rt = runtimeLibrary("liblowbit_rt.a", triple),
              rtMain = runtimeLibrary("liblowbit_main.a", triple);
  llvm::SmallString<256> dir(o.objectPath);
  llvm::sys::path::remove_filename(dir);
  std::vector<std::string> inputs{o.objectPath};

  // A file as a page-aligned read-only section the loader maps lazily, with
  // symbols <name>_start and <name>_end.
  auto embed = [&](StringRef file, StringRef name) -> Error {
    llvm::SmallString<256> obj(dir);
    llvm::sys::path::append(obj, (name + ".o").str());
    // llvm-objcopy names the symbols after the input path as given.
    std::string sym = "_binary_";
    for (char c : file)
      sym += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (Error e = run(toolPath("llvm-objcopy"),
                      {"-I", "binary", "-O", objcopyFormat(tm.getTargetTriple()),
                       ("--rename-section=.data=." + name +
                        ",alloc,load,readonly,data,contents")
                           .str(),
                       "--set-section-alignment=.data=4096",
                       ("--redefine-sym=" + sym + "_start=" + name + "_start").str(),
                       ("--redefine-sym=" + sym + "_end=" + name + "_end").str(),
                       "--strip-symbol=" + sym + "_size", file.str(),
                       std::string(obj)}))
      return e;
    inputs.push_back(std::string(obj));
    return Error::success();
  };
  // Executables carry the weights appended after the linked image (written
  // by streaming, so no tool holds them in memory); shared libraries, which
  // cannot find their own file portably, get them as a section.
  bool append = o.embedWeights && !o.shared;
  if (o.embedWeights && o.shared)
    if (Error e = embed(o.blobPath, "lowbit_weights"))
      return e;
  if (!o.tokenizerPath.empty())
    if (Error e = embed(o.tokenizerPath, "lowbit_tokenizer"))
      return e;

  std::string tmpOut = o.outputPath + ".tmp-link";
  std::vector<std::string> args{"--target=" + tm.getTargetTriple().str(),
                                "-fuse-ld=lld", "-o", tmpOut};
  args.insert(args.end(), inputs.begin(), inputs.end());
  if (o.shared)
    // Every lowbit_* entry point, referenced or not; the library's own
    // references bound to its own definitions (-Bsymbolic): every model
    // library defines the same symbols, and with two loaded RTLD_GLOBAL the
    // second one's code read the first one's lowbit_model_meta and kernels.
    args.insert(args.end(), {"-shared", "-Wl,-Bsymbolic", "-Wl,--whole-archive",
                             rt, "-Wl,--no-whole-archive"});
  else
    args.insert(args.end(), {rtMain, rt});
  args.insert(args.end(), {"-lm", "-lpthread"});
  if (Error e = run(toolPath("clang"), args)) {
    llvm::sys::fs::remove(tmpOut);
    return e;
  }

  // header (magic, version, sizes, checksum) + blob: the side file, or
  // appended to the executable at a 4096-aligned offset + a footer.
  auto writeImage = [&](std::ostream &out) {
    char header[LOWBIT_SIDECAR_HEADER] = {};
    lowbit_sidecar_header h = {};
    std::memcpy(h.magic, LOWBIT_SIDECAR_MAGIC, sizeof h.magic);
    h.version = LOWBIT_SIDECAR_VERSION;
    h.abi_version = LOWBIT_ABI_VERSION;
    h.weight_bytes = o.blobSize;
    h.checksum = o.blobChecksum;
    std::memcpy(header, &h, sizeof h);
    out.write(header, sizeof header);
    std::ifstream in(o.blobPath, std::ios::binary);
    out << in.rdbuf();
    return bool(in);
  };
  if (append) {
    std::fstream out(tmpOut, std::ios::binary | std::ios::in | std::ios::out |
                                 std::ios::ate);
    uint64_t end = uint64_t(out.tellp()), at = (end + 4095) / 4096 * 4096;
    std::string pad(size_t(at - end), '\0');
    out.write(pad.data(), std::streamsize(pad.size()));
    bool ok = writeImage(out);
    lowbit_appended_footer f = {};
    std::memcpy(f.magic, LOWBIT_APPENDED_MAGIC, sizeof f.magic);
    f.image_offset = at;
    out.write(reinterpret_cast<const char *>(&f), sizeof f);
    out.close();
    if (!ok || !out) {
      llvm::sys::fs::remove(tmpOut);
      return err(o.outputPath + ": cannot append the weights");
    }
  }
  if (!o.embedWeights) {
    std::string side = o.outputPath + ".weights", tmpSide = side + ".tmp";
    std::ofstream out(tmpSide, std::ios::binary);
    bool ok = writeImage(out);
    out.close();
    if (!out || !ok) {
      llvm::sys::fs::remove(tmpSide);
      llvm::sys::fs::remove(tmpOut);
      return err(side + ": cannot write the weight file");
    }
    if (std::error_code ec = llvm::sys::fs::rename(tmpSide, side))
      return err(side + ": " + ec.message());
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmpOut, o.outputPath))
    return err(o.outputPath + ": " + ec.message());
  return Error::success();
}
