#!/usr/bin/python3
"""Writes a varied test corpus, one text per line: English prose and source
code from files every Debian system has, several languages and scripts,
emoji, digits, runs of spaces and tabs, contractions, special-token look-alikes
and random mixtures. Deterministic: make_corpus.py OUT [LINES]."""
import glob
import random
import sys

rng = random.Random(7)
out, want = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2400
lines = []
for path in sorted(glob.glob("/usr/share/common-licenses/*"))[:6]:
    try:
        lines += [l.rstrip("\n") for l in open(path, encoding="utf-8") if l.strip()][:150]
    except (UnicodeDecodeError, IsADirectoryError):
        pass
for path in sorted(glob.glob("/usr/lib/python3*/json/*.py"))[:4]:
    lines += [l.rstrip("\n") for l in open(path, encoding="utf-8")][:150]
samples = [
    "Hello, my dog is cute", "I'm sure you'll love it; they've said it's fine.",
    "WE'LL SEE, DON'T WE? I'D SAY IT'S 'QUOTED'", "Ünïcödé façade naïve café",
    "Der Straßenverkehr in München ist schön.", "¿Dónde está la biblioteca? ¡Aquí!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Γαζέες καὶ μυρτιὲς δὲν θὰ βρῶ πιὰ στὸ χρυσαφὶ ξέφωτο.",
    "אני יכול לאכול זכוכית וזה לא מזיק לי", "أنا قادر على أكل الزجاج و هذا لا يؤلمني.",
    "我能吞下玻璃而不伤身体。", "私はガラスを食べられます。それは私を傷つけません。",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요", "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.",
    "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ", "Tôi có thể ăn thủy tinh mà không hại gì.",
    "😀 😃 😄 😁 👩‍👩‍👧‍👦 🇫🇷 🏳️‍🌈 ✔️ ❤️", "emoji😀inside words😃and 12345😄",
    "1234567890 3.14159 2,718,281 0x1F 1e-10 ١٢٣ ४५६ Ⅻ ½ ²³",
    "    four spaces", "\ttab\tseparated\tvalues", "trailing spaces   ", "  ",
    "a  b   c    d     e", "def f(x):  return x**2  # comment", "if (a && b) { c++; }",
    "<|begin_of_text|> not special here", "<|eot_id|><|end_of_text|>", "<|begin_of_text",
    "https://example.com/path?q=1&r=2#frag", "user@example.org", "C:\\\\Windows\\\\System32",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE", "ſ 'ſ ﬁ ﬂ", "..., !!! ??? --- ___ *** ###",
]
lines += samples
alphabet = [chr(c) for c in list(range(0x20, 0x7F)) + list(range(0xA0, 0x180)) +
            list(range(0x391, 0x3CA)) + list(range(0x410, 0x450)) + list(range(0x4E00, 0x4E40)) +
            [0x1F600, 0x1F680, 0x2603, 0x20AC, 0x3000, 0x2003, 0xA0, 0x300, 0x301]]
while len(lines) < want:
    kind = rng.random()
    if kind < 0.4:
        words = [rng.choice(samples + lines[:200]) for _ in range(rng.randint(1, 3))]
        lines.append((" " * rng.randint(1, 3)).join(w[: rng.randint(1, 60)] for w in words))
    else:
        lines.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 50))))
lines = [l.replace("\r", "") for l in lines][:want]
open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
