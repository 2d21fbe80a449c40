//===- Driver.cpp - the lowbitc compiler driver ---------------------------===//
//
// lowbitc MODEL_DIR|FILE.gguf|FILE.onnx|FILE.mlir [--emit=PHASE] [-o OUT]
//         [--scheme=...] [--target=TRIPLE --mcpu=CPU --mattr=FEATURES]
//
// Phases run in the order of design.md; `--emit=` stops after one. `.mlir`
// input may start at any phase: a phase finds nothing to do on IR that is
// already past it. Every user error is one line on stderr and exit code 1.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Compiler/Driver.h"
#include "lowbit/Compiler/Registration.h"
#include "lowbit/Importer/GGUF.h"
#include "lowbit/Importer/HFImporter.h"
#include "lowbit/Importer/ONNX.h"
#include "lowbit/Importer/Tokenizer.h"
#include "lowbit/Target/CPU.h"
#include "lowbit/Transforms/Passes.h"
#include "lowbit_abi.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <cstring>

using namespace mlir;
using namespace mlir::lowbit;
namespace cl = llvm::cl;

namespace {

/// Prints "lowbitc: error: <msg>" and returns the user-error exit code.
int fail(const llvm::Twine &msg) {
  llvm::errs() << "lowbitc: error: " << msg << "\n";
  return 1;
}

/// "file:line:col" for file locations, the tensor name for the importer's
/// name locations, "" when unknown.
std::string formatLocation(Location loc) {
  if (auto f = dyn_cast<FileLineColLoc>(loc))
    return (f.getFilename().getValue() + ":" + llvm::Twine(f.getLine()) + ":" +
            llvm::Twine(f.getColumn()))
        .str();
  if (auto n = dyn_cast<NameLoc>(loc))
    return n.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    return fused.getLocations().empty()
               ? ""
               : formatLocation(fused.getLocations().front());
  if (isa<UnknownLoc>(loc))
    return "";
  std::string s;
  llvm::raw_string_ostream os(s);
  loc.print(os);
  return s;
}

/// Routes MLIR diagnostics to one line each: "lowbitc: error: <loc>: <msg>".
/// While `firstErrorOnly` is set (parsing: some attribute parsers follow
/// their error with a "failed to parse ..." one), errors after the first
/// are dropped.
class OneLineDiagnostics {
public:
  explicit OneLineDiagnostics(MLIRContext &ctx)
      : handler(ctx.getDiagEngine().registerHandler([this](Diagnostic &d) {
          bool error = d.getSeverity() == DiagnosticSeverity::Error;
          if (error && firstErrorOnly && errors > 0)
            return success();
          errors += error;
          llvm::errs() << "lowbitc: "
                       << (error ? "error: "
                           : d.getSeverity() == DiagnosticSeverity::Warning
                               ? "warning: "
                               : "note: ");
          std::string loc = formatLocation(d.getLocation());
          if (!loc.empty())
            llvm::errs() << loc << ": ";
          llvm::errs() << d.str() << "\n";
          return success();
        })),
        ctx(ctx) {}
  ~OneLineDiagnostics() { ctx.getDiagEngine().eraseHandler(handler); }

  bool firstErrorOnly = false;

private:
  DiagnosticEngine::HandlerID handler;
  MLIRContext &ctx;
  unsigned errors = 0;
};

/// Builds the model for the host with dense paths, runs it with --stats over
/// `tokens`, and writes the zero fractions it prints to `statsOut`.
llvm::Error runCalibration(StringRef model, StringRef scheme, StringRef kvBits,
                           int64_t context, StringRef tokens,
                           StringRef statsOut) {
  auto err = [](const llvm::Twine &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
  };
  llvm::SmallString<128> dir;
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("lowbitc-calib", dir))
    return err("cannot create a scratch directory: " + ec.message());
  llvm::scope_exit cleanup([&] { llvm::sys::fs::remove_directories(dir); });
  std::string self = llvm::sys::fs::getMainExecutable(nullptr, nullptr);
  std::string exe = (dir + "/model").str(), errs = (dir + "/stderr").str();
  // Runs a step with its stdout to `out`; a failure is one line: the step's
  // first error line without its program's prefix, or `what` failed.
  auto step = [&](StringRef program, ArrayRef<StringRef> argv,
                  std::optional<StringRef> out,
                  const llvm::Twine &what) -> llvm::Error {
    std::optional<StringRef> redirects[] = {std::nullopt, out, StringRef(errs)};
    if (llvm::sys::ExecuteAndWait(program, argv, std::nullopt, redirects) == 0)
      return llvm::Error::success();
    std::string first;
    if (auto buf = llvm::MemoryBuffer::getFile(errs)) {
      for (StringRef line : llvm::split((*buf)->getBuffer(), '\n'))
        if (size_t at = line.find(": error: "); at != StringRef::npos) {
          first = line.substr(at + strlen(": error: ")).str();
          break;
        }
    }
    return err("--calibrate: " + (first.empty() ? what.str() : first));
  };
  std::vector<std::string> args{self, model.str(), "-o", exe,
                                "--kv-bits=" + kvBits.str()};
  if (!scheme.empty())
    args.push_back("--scheme=" + scheme.str());
  if (context)
    args.push_back("--context=" + std::to_string(context));
  std::vector<StringRef> argv(args.begin(), args.end());
  if (llvm::Error e = step(self, argv, std::nullopt,
                           "building the calibration model failed"))
    return e;
  std::string tmp = (statsOut + ".tmp").str();
  std::vector<StringRef> run{exe, "--stats", "--tokens-file", tokens};
  if (llvm::Error e = step(exe, run, StringRef(tmp),
                           "running the model over '" + tokens + "' failed")) {
    llvm::sys::fs::remove(tmp);
    return e;
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, statsOut))
    return err(statsOut + ": " + ec.message());
  return llvm::Error::success();
}

/// One line per linear layer, from the attributes the select pass records.
void printPaths(ModuleOp module, llvm::raw_ostream &os) {
  module.walk([&](Operation *op) {
    auto path = op->getAttrOfType<ActPathAttr>("path");
    auto why = op->getAttrOfType<StringAttr>("lowbit.why");
    if (!path || !why)
      return;
    auto weight = op->getOperand(1).getDefiningOp<WeightOp>();
    std::string name = weight ? weight.getSource().getName().str()
                              : formatLocation(op->getLoc());
    auto density = op->getAttrOfType<FloatAttr>("lowbit.density");
    auto bytes = op->getAttrOfType<IntegerAttr>("lowbit.bytes");
    auto macs = op->getAttrOfType<IntegerAttr>("lowbit.macs");
    os << name << ": " << stringifyActPath(path.getValue())
       << llvm::format(" density %.3f", density ? density.getValueAsDouble() : 1.0)
       << " bytes " << (bytes ? bytes.getInt() : 0) << " macs "
       << (macs ? macs.getInt() : 0) << " (" << why.getValue() << ")\n";
  });
}

} // namespace

int mlir::lowbit::compilerMain(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  llvm::InitializeAllTargetInfos();
  llvm::InitializeAllTargets();
  llvm::InitializeAllTargetMCs();
  llvm::InitializeAllAsmPrinters();

  cl::OptionCategory cat("lowbitc options");
  cl::opt<std::string> input(
      cl::Positional,
      cl::desc("<model dir | file.gguf | file.onnx | file.mlir>"),
      cl::init("-"), cl::cat(cat));
  cl::opt<std::string> output("o", cl::desc("output file ('-' for stdout)"),
                              cl::value_desc("file"), cl::init(""),
                              cl::cat(cat));
  cl::opt<std::string> emit(
      "emit",
      cl::desc("stop after this phase: import, graph, select, pack, kernels, "
               "llvm, obj, exe (default), shared"),
      cl::init("exe"), cl::cat(cat));
  cl::opt<std::string> scheme(
      "scheme",
      cl::desc("activation scheme, overriding config.json: b1.58 or a4.8"),
      cl::init(""), cl::cat(cat));
  cl::opt<std::string> target("target",
                              cl::desc("target triple (default: the host)"),
                              cl::init(""), cl::cat(cat));
  cl::opt<std::string> mcpu("mcpu", cl::desc("target CPU (default: the host)"),
                            cl::init(""), cl::cat(cat));
  cl::opt<std::string> mattr("mattr", cl::desc("target features (+a,-b)"),
                             cl::init(""), cl::cat(cat));
  cl::opt<std::string> kvBits(
      "kv-bits",
      cl::desc("KV-cache precision: 16 (float32, default), f16 (IEEE half: "
               "half the bytes, each element rounded to nearest), 8, 4 or 3 "
               "bits"),
      cl::init("16"), cl::cat(cat));
  cl::opt<int64_t> context(
      "context",
      cl::desc("positions the executable holds, prompt and generated tokens "
               "together (its KV caches' length; default: config.json's "
               "max_position_embeddings, which it may not exceed)"),
      cl::init(0), cl::cat(cat));
  cl::opt<bool> explainPaths(
      "explain-paths",
      cl::desc("print one line per linear layer: chosen activation path, "
               "expected density, bytes and operations per token, and why"),
      cl::init(false), cl::cat(cat));
  cl::opt<std::string> calibrationStats(
      "calibration-stats",
      cl::desc("JSON {weight tensor name: zero fraction at its input} for "
               "the path selection"),
      cl::init(""), cl::cat(cat));
  cl::opt<std::string> calibrate(
      "calibrate",
      cl::desc("token-id file: build the model, run it over these tokens, "
               "record the zero fraction at each projection input (written "
               "to OUTPUT.calibration.json) and choose paths from them"),
      cl::init(""), cl::cat(cat));
  cl::opt<std::string> lmHead(
      "lm-head",
      cl::desc("lm_head precision: auto or f16 (the checkpoint's 16-bit "
               "table as stored), int8 (per-row absmax: half the bytes per "
               "decoded token) or int4 (per-64-column absmax: a quarter)"),
      cl::init("auto"), cl::cat(cat));
  cl::opt<std::string> tokenizer(
      "tokenizer",
      cl::desc("tokenizer.json to embed (default: the model directory's "
               "tokenizer.json, if any)"),
      cl::init(""), cl::cat(cat));
  cl::opt<std::string> weightsMode(
      "weights",
      cl::desc("embedded (default): weights inside the executable; sidecar: "
               "in OUTPUT.weights"),
      cl::init("embedded"), cl::cat(cat));

  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  // --help shows lowbitc's own options, not every linked LLVM backend's
  // (they stay accepted, and --help-hidden lists them).
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "lowbit: BitNet ahead-of-time compiler\n\n"
      "  MLIR's debugging options (--mlir-print-ir-after-all, ...) are\n"
      "  accepted too; --help-hidden lists every option.\n");

  std::optional<Phase> phase = parsePhase(emit);
  if (!phase)
    return fail("unknown --emit='" + emit + "'; phases are " + allPhaseNames());

  std::optional<Scheme> schemeOverride;
  if (!scheme.empty()) {
    schemeOverride = parseScheme(scheme);
    if (!schemeOverride)
      return fail("unknown --scheme='" + scheme + "'; expected b1.58 or a4.8");
  }
  int64_t kvBitsNum = kvBits == "f16" ? 16 : 0;
  if (!kvBitsNum &&
      (StringRef(kvBits).getAsInteger(10, kvBitsNum) ||
       (kvBitsNum != 16 && kvBitsNum != 8 && kvBitsNum != 4 && kvBitsNum != 3)))
    return fail("--kv-bits=" + kvBits + ": expected 16, f16, 8, 4 or 3");
  if (context < 0 || (context.getNumOccurrences() && context < 1))
    return fail("--context=" + llvm::Twine(context) +
                ": expected a positive number of positions");
  if (lmHead != "auto" && lmHead != "f16" && lmHead != "int8" &&
      lmHead != "int4")
    return fail("unknown --lm-head='" + lmHead +
                "'; expected auto, f16, int8 or int4");
  if (weightsMode != "embedded" && weightsMode != "sidecar")
    return fail("unknown --weights='" + weightsMode +
                "'; expected embedded or sidecar");

  auto tm = createTargetMachine(target, mcpu, mattr);
  if (!tm)
    return fail(llvm::toString(tm.takeError()));
  // An executable or library links lowbit's runtime built for the target:
  // checked before any work.
  if (*phase == Phase::Exe || *phase == Phase::Shared)
    if (llvm::Error e = checkRuntimeFor(**tm))
      return fail(llvm::toString(std::move(e)));

  bool isMLIR = input == "-" || llvm::sys::path::extension(input) == ".mlir";
  if (!isMLIR && !llvm::sys::fs::exists(input))
    return fail("input '" + input + "' does not exist");
  bool isGGUF = !isMLIR && !llvm::sys::fs::is_directory(input) &&
                GGUFFile::hasMagic(input);
  // An ONNX model: a .onnx file, or a directory without safetensors that
  // holds model.onnx or onnx/model.onnx (an Optimum export).
  std::string onnxPath =
      isMLIR || isGGUF ? std::string() : ONNXModel::modelFile(input);
  bool isONNX = !onnxPath.empty();
  if (!isMLIR && !isGGUF && !isONNX && !llvm::sys::fs::is_directory(input))
    return fail("input '" + input +
                "' is neither a model directory, a GGUF file, an ONNX model "
                "(.onnx) nor a .mlir file");

  // Output names: IR phases print to stdout, obj/exe/shared default to the
  // model's name in the current directory: the directory's whole name
  // (bitnet-b1.58-2B-4T), a .mlir, .gguf or .onnx file's without the
  // extension.
  StringRef inputName = llvm::sys::path::filename(StringRef(input).rtrim('/'));
  std::string stem =
      (isMLIR || isGGUF || (isONNX && !llvm::sys::fs::is_directory(input))
           ? llvm::sys::path::stem(inputName)
           : inputName)
          .str();
  if (stem.empty() || stem == "-")
    stem = "model";
  std::string outPath = output;
  if (outPath.empty())
    outPath = *phase == Phase::Obj      ? stem + ".o"
              : *phase == Phase::Exe    ? stem
              : *phase == Phase::Shared ? "lib" + stem + ".so"
                                        : "-";
  // The output's directory must take files before any work starts (a 2B4T
  // build otherwise failed at the final link, 20 s later, in the linker's
  // words).
  // A device, pipe or socket (/dev/null) is written in place, like "-":
  // its side files (a pack phase's blob, calibration statistics) go where
  // stdout's would. Executables and libraries are linked to a new file and
  // renamed over the output, which must not replace such a file.
  bool streamOut = outPath == "-";
  llvm::sys::fs::file_status outStatus;
  if (!streamOut && !llvm::sys::fs::status(outPath, outStatus) &&
      llvm::sys::fs::exists(outStatus) &&
      !llvm::sys::fs::is_directory(outStatus) &&
      !llvm::sys::fs::is_regular_file(outStatus)) {
    if (*phase == Phase::Exe || *phase == Phase::Shared)
      return fail("cannot write '" + outPath +
                  "': not a regular file (an executable or library is "
                  "written as a new file)");
    streamOut = true;
  }
  if (!streamOut) {
    if (llvm::sys::fs::is_directory(outPath))
      return fail("cannot write '" + outPath + "': it is a directory");
    StringRef dir = llvm::sys::path::parent_path(outPath);
    if (dir.empty())
      dir = ".";
    if (!llvm::sys::fs::is_directory(dir))
      return fail("cannot write '" + outPath + "': no directory '" + dir + "'");
    if (std::error_code ec =
            llvm::sys::fs::access(dir, llvm::sys::fs::AccessMode::Write))
      return fail("cannot write '" + outPath + "': " + ec.message());
  }

  DialectRegistry registry;
  registerAllDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  OneLineDiagnostics diagnostics(ctx);

  OwningOpRef<ModuleOp> module;
  if (isMLIR) {
    std::string msg;
    std::unique_ptr<llvm::MemoryBuffer> buf = openInputFile(input, &msg);
    if (!buf)
      return fail(msg);
    llvm::SourceMgr sm;
    sm.AddNewSourceBuffer(std::move(buf), llvm::SMLoc());
    diagnostics.firstErrorOnly = true;
    module = parseSourceFile<ModuleOp>(sm, &ctx);
    diagnostics.firstErrorOnly = false;
    if (!module)
      return 1; // the diagnostic has been printed
  } else {
    ImportOptions opts;
    opts.scheme = schemeOverride;
    opts.kvBits = kvBitsNum;
    opts.kvF16 = kvBits == "f16";
    opts.context = context;
    llvm::Expected<OwningOpRef<ModuleOp>> imported =
        isGGUF   ? importGGUFModel(input, ctx, opts)
        : isONNX ? importONNXModel(onnxPath, ctx, opts)
                 : importHFModel(input, ctx, opts);
    if (!imported)
      return fail(llvm::toString(imported.takeError()));
    module = std::move(*imported);
  }

  // The packed blob: beside the output for IR phases (so a later run can
  // resume from the printed IR), in a scratch directory for obj/exe.
  llvm::SmallString<128> scratch;
  llvm::scope_exit cleanup([&] {
    if (!scratch.empty())
      llvm::sys::fs::remove_directories(scratch);
  });
  bool binary = *phase >= Phase::Obj;
  if (binary) {
    if (std::error_code ec =
            llvm::sys::fs::createUniqueDirectory("lowbitc", scratch))
      return fail("cannot create a scratch directory: " + ec.message());
  }
  if (!calibrate.empty()) {
    if (!calibrationStats.empty())
      return fail("give --calibrate or --calibration-stats, not both");
    if (isMLIR)
      return fail("--calibrate needs a model (a directory, GGUF or ONNX "
                  "file) as input, not IR");
    if (!llvm::sys::fs::exists(calibrate))
      return fail("--calibrate: '" + calibrate + "' does not exist");
    std::string statsOut = (streamOut ? stem : outPath) + ".calibration.json";
    if (llvm::Error e =
            runCalibration(input, scheme, kvBits, context, calibrate, statsOut))
      return fail(llvm::toString(std::move(e)));
    calibrationStats = statsOut;
  }
  PipelineOptions pipelineOptions;
  if (auto existing = (*module)->getAttrOfType<StringAttr>("lowbit.blob_path"))
    pipelineOptions.blobPath = existing.getValue().str();
  else if (binary)
    pipelineOptions.blobPath = (scratch + "/weights.bin").str();
  else
    pipelineOptions.blobPath = (streamOut ? stem : outPath) + ".blob";
  pipelineOptions.isa = kernelISA(**tm);
  pipelineOptions.gfni = hasGFNI(**tm);
  pipelineOptions.statsFile = calibrationStats.getValue();
  pipelineOptions.lmHead = lmHead.getValue();
  pipelineOptions.embeddedWeights = weightsMode == "embedded";

  // Phases up to select, then (after --explain-paths reads the choices the
  // select phase recorded) the rest up to llvm; obj/exe/shared follow below.
  auto runPhases = [&](Phase first, Phase last) -> LogicalResult {
    if (first > last)
      return success();
    PassManager pm(&ctx);
    if (failed(applyPassManagerCLOptions(pm)))
      return failure();
    for (int p = static_cast<int>(first); p <= static_cast<int>(last); ++p)
      buildPhasePipeline(pm, static_cast<Phase>(p), pipelineOptions);
    return pm.run(*module);
  };
  Phase last = std::min(*phase, Phase::LLVM);
  if (failed(runPhases(Phase::Import, std::min(last, Phase::Select))))
    return 1; // the failing pass has emitted its error
  if (explainPaths)
    printPaths(*module, llvm::outs());
  if (failed(runPhases(Phase::Pack, last)))
    return 1;

  if (!binary) {
    std::string msg;
    std::unique_ptr<llvm::ToolOutputFile> out = openOutputFile(outPath, &msg);
    if (!out)
      return fail(msg);
    module->print(out->os());
    out->os() << "\n";
    out->os().flush();
    if (std::error_code ec = out->os().error()) {
      out->os().clear_error(); // else its destructor aborts the process
      return fail("cannot write '" + outPath + "': " + ec.message());
    }
    out->keep();
    return 0;
  }

  std::string objPath =
      *phase == Phase::Obj ? outPath : (scratch + "/model.o").str();
  if (llvm::Error e = emitObject(*module, **tm, objPath))
    return fail(llvm::toString(std::move(e)));
  if (*phase == Phase::Obj)
    return 0;

  // The tokenizer table: --tokenizer, or the model directory's own (a GGUF
  // file's metadata; an ONNX model's tokenizer.json beside it or one
  // directory up).
  std::string tokenizerJson = tokenizer;
  if (tokenizerJson.empty() && isONNX) {
    tokenizerJson = ONNXModel::companionFile(onnxPath, "tokenizer.json");
  } else if (tokenizerJson.empty() && !isMLIR && !isGGUF) {
    llvm::SmallString<256> p(input);
    llvm::sys::path::append(p, "tokenizer.json");
    if (llvm::sys::fs::exists(p))
      tokenizerJson = std::string(p);
  }
  std::string tokenizerTable;
  std::unique_ptr<GGUFFile> gguf;
  if (tokenizerJson.empty() && isGGUF) {
    auto opened = GGUFFile::open(input);
    if (!opened)
      return fail(llvm::toString(opened.takeError()));
    // A file without tokenizer.ggml.* gives an executable that takes
    // token ids only, as a model directory without tokenizer.json does.
    if ((*opened)->get("tokenizer.ggml.model"))
      gguf = std::move(*opened);
  }
  if (!tokenizerJson.empty() || gguf) {
    llvm::Expected<std::vector<uint8_t>> table =
        gguf ? compileTokenizer(*gguf) : compileTokenizer(tokenizerJson);
    if (gguf)
      tokenizerJson = input;
    if (!table)
      return fail(llvm::toString(table.takeError()));
    // Ids past the model's vocabulary: the executable refuses a prompt
    // that produces one (a tokenizer of another model, most likely).
    lowbit_tokenizer_header th;
    std::memcpy(&th, table->data(), sizeof th);
    auto info = (*module)->getAttrOfType<DictionaryAttr>("lowbit.model");
    auto vocab = info ? info.getAs<IntegerAttr>("vocab_size") : IntegerAttr();
    if (vocab && int64_t(th.n_tokens) > vocab.getInt())
      llvm::errs() << "lowbitc: warning: " << tokenizerJson << ": "
                   << th.n_tokens << " tokens, but the model's vocab_size is "
                   << vocab.getInt()
                   << "; prompts that produce the others are refused\n";
    tokenizerTable = (scratch + "/tokenizer.bin").str();
    std::error_code ec;
    llvm::raw_fd_ostream os(tokenizerTable, ec);
    if (ec)
      return fail(tokenizerTable + ": " + ec.message());
    os.write(reinterpret_cast<const char *>(table->data()), table->size());
  }

  LinkOptions link;
  link.tokenizerPath = tokenizerTable;
  link.objectPath = objPath;
  link.blobPath = pipelineOptions.blobPath;
  link.outputPath = outPath;
  link.embedWeights = weightsMode == "embedded";
  link.shared = *phase == Phase::Shared;
  if (auto size = (*module)->getAttrOfType<IntegerAttr>("lowbit.blob_size"))
    link.blobSize = size.getInt();
  if (auto sum = (*module)->getAttrOfType<IntegerAttr>("lowbit.blob_checksum"))
    link.blobChecksum = uint64_t(sum.getInt());
  if (llvm::Error e = linkExecutable(link, **tm))
    return fail(llvm::toString(std::move(e)));
  return 0;
}
