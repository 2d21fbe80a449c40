// Times llama.cpp (the prebuilt binaries of the npm package node-llama-cpp)
// on a GGUF: prefill of P prompt tokens, then N greedily decoded tokens, on T
// threads, weights loaded into memory (mmap off), as lowbit's --bench does.
//
//   node bench/llama_cpp.mjs MODEL.gguf P N T [REPEATS]
//
// Prints one JSON line: {"prefill_tok_s": .., "decode_tok_s": .., ...}; the
// best of REPEATS (default 3) runs, each on a fresh sequence.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, P, N, T, R] = process.argv.slice(2);
const prompt = Number(P), gen = Number(N), threads = Number(T);
const repeats = Number(R || 3);
if (!modelPath || !(prompt > 0) || !(gen > 0) || !(threads > 0)) {
  console.error("usage: node llama_cpp.mjs MODEL.gguf PROMPT_LEN GEN_LEN THREADS [REPEATS]");
  process.exit(1);
}
// maxThreads 0: the context uses exactly `threads` (no sharing heuristics).
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                               maxThreads: 0 });
const model = await llama.loadModel({ modelPath, useMmap: false, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: prompt + gen + 16, batchSize: prompt, sequences: 1,
  threads: { ideal: threads, min: threads },
});
// The same kind of prompt as lowbit's -P: token ids spread over the vocab.
const tokens = Array.from({ length: prompt }, (_, i) => 1 + ((i * 7919) % 1000));
let best = { prefill: 0, decode: 0 };
for (let r = 0; r < repeats; ++r) {
  const seq = context.getSequence();
  const t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(tokens);
  const t1 = process.hrtime.bigint();
  let count = 0;
  const t2 = process.hrtime.bigint();
  for await (const _tok of seq.evaluate([tokens[prompt - 1]], { temperature: 0 })) {
    if (++count >= gen) break;
  }
  const t3 = process.hrtime.bigint();
  const pf = prompt / (Number(t1 - t0) / 1e9), dc = count / (Number(t3 - t2) / 1e9);
  best = { prefill: Math.max(best.prefill, pf), decode: Math.max(best.decode, dc) };
  seq.dispose();
}
console.log(JSON.stringify({
  engine: "llama.cpp", threads, prompt, gen,
  prefill_tok_s: Number(best.prefill.toFixed(2)), decode_tok_s: Number(best.decode.toFixed(2)),
}));
await context.dispose();
await model.dispose();
await llama.dispose();
