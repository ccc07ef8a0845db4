#!/usr/bin/env python3
"""Reference fixture for PostTrain.Data's HfBpeTokenizer, made with Hugging Face `tokenizers`.

Trains two tiny byte-level BPE tokenizers on an embedded sample and records the ids `tokenizers` gives for
a fixed list of texts plus seeded random mixes (English, math, code, CJK, kana, Hangul, emoji, digits,
whitespace runs, special tokens):

  OUT_DIR/tokenizer.json, tokenizer_config.json, expected.json
      DeepSeek-V3 structure: no normalizer; pre-tokenizer Sequence of Split(\\p{N}{1,3}), Split(CJK/kana),
      Split(DeepSeek-V3 word regex), ByteLevel(add_prefix_space=False, use_regex=False); BOS/EOS/pad special
      tokens; <｜User｜>, <｜Assistant｜>, <think>, </think> as non-special added tokens; <mask> (lstrip) and a
      single_word token.
  OUT_DIR/qwen2_style/tokenizer.json, expected.json
      Qwen2 structure: NFC normalizer; Split(Qwen2 regex) + ByteLevel(use_regex=False); ignore_merges=True.

expected.json: [{"text": ..., "ids": [...], "decoded": ...}] with ids = encode(text, add_special_tokens=False)
and decoded = decode(ids, skip_special_tokens=False).

Usage (needs only `tokenizers`, e.g. the one transformers installs):
    python scripts/gpu/bpe/make_bpe_fixture.py tests/PostTrain.Data.Tests/Fixtures/bpe
"""
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"

DS3_NUMBERS = r"\p{N}{1,3}"
DS3_CJK = "[一-龥\u3040-ゟ゠-ヿ]+"
DS3_WORDS = (r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"""
             r""" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
         r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

SAMPLE = """The quick brown fox jumps over the lazy dog. It's a dog's life; they're sure we'll see.
Tom has 12 apples. He buys 7 more. How many apples does he have now? 12 + 7 = 19, so the answer is \\boxed{19}.
Solve for x: 3x + 5 = 20, so x = 5. Then x^2 = 25 and \\frac{1}{2} + \\frac{3}{4} = \\frac{5}{4} = 1.25.
The year 2024 had 366 days; 1234567890 is a long number, and 3.14159 is close to pi.
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)

for (int i = 0; i < 10; i++) { total += values[i] * 2; }
    indented    with    many    spaces\t\ttabs\r\nand windows line ends
Grüße aus München! Ça va très bien, merci. Niño, façade, naïve café.
日本語のテキストと漢字、カタカナもあります。中文文本也在这里。한국어 문장도 있습니다.
Emoji: 😀 😃 🎉 👍🏽 👩‍👩‍👧 🇫🇷 ❤️ and math letters 𝑥 + 𝑦 = 𝟙𝟚.
Русский текст, ελληνικά, العربية, हिन्दी.
<think>Let me think step by step. 5 * 4 = 20, 20 - 6 = 14.</think> The answer is 14.
"""

FIXED = [
    "", " ", "  ", "\n", "\r\n", "\t", "hello", " hello", "hello world", "Hello, World!",
    "It's they're we'll I'M YOU'RE", "1", "12", "123", "1234", "12345678901", "3.14159", "x=1,y=22,z=333",
    "\\boxed{42}", "def f(x):\n    return x * 2\n", "a  b   c    d", "trailing   ", "   leading",
    "line1\n\nline2\r\n\r\nline3", "日本語", "カタカナ", "漢字とかな", "한국어", "中文", "😀", "👩‍👩‍👧", "🇫🇷🇩🇪",
    "👍🏽👍", "𝑥𝑦𝑧", "𝟙𝟚𝟛", "x 𝑥y", "😀abc", "ab😀", "é", "e\u0301", "Ω ж ß ﬁ", "\u00a0nbsp\u3000ideo",
    BOS + "system" + "<｜User｜>question<｜Assistant｜><think>\nreason\n</think>answer" + EOS,
    "a <mask> b", "a<mask>b", "  <mask>  ", "cat concat cat's", PAD + PAD, SAMPLE,
]

POOLS = [
    ["the", "The", "quick", "dog", "apples", "answer", "München", "naïve", "Ça", "fox", "zebra", "Quixotic"],
    ["0", "7", "42", "123", "2024", "99999", "1234567", "3.5", "-8", "1e10", "٣٤٥"],
    [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\u3000", "\u00a0", "\u2028"],
    [",", ".", "!", "?", "'s", "'T", "'ll", "(", ")", "{", "}", "\\frac", "\\boxed{", "+", "=", "->", "...", "--"],
    ["日本", "語", "カタ", "ひらがな", "漢字", "中文", "한국", "Русский", "ελληνικά", "العربية", "हिन्दी"],
    ["😀", "🎉", "👍🏽", "👩‍👩‍👧", "🇫🇷", "❤️", "𝑥", "𝟙", "🀄", "\U0001F9EA"],
    [BOS, EOS, PAD, "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", "<mask>", "cat", "concat"],
    ["e\u0301", "a\u0308", "Å", "\u212b", "ﬁ", "ｆｕｌｌ", "①", "x²", "ǅ"],
]


def random_texts(count, seed=1234):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(rng.choice(POOLS)) for _ in range(rng.randint(1, 12))]
        texts.append("".join(parts))
    return texts


def train(pre_tokenizer, normalizer, special_tokens, ignore_merges, vocab_size=800):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([SAMPLE] * 3 + SAMPLE.splitlines(), trainer)
    return tok


def write(out_dir, tok, texts):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    reloaded = Tokenizer.from_file(path)
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert reloaded.encode(text, add_special_tokens=False).ids == ids, text
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=True, indent=1)
    print(f"{out_dir}: vocab {tok.get_vocab_size()}, {len(cases)} cases")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    texts = FIXED + random_texts(200)

    def split(pattern):
        return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)

    ds = train(pre_tokenizers.Sequence([split(DS3_NUMBERS), split(DS3_CJK), split(DS3_WORDS),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
               None, [BOS, EOS, PAD], ignore_merges=False)
    ds.add_tokens([AddedToken(t, special=False, normalized=True) for t in ["<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"]])
    ds.add_tokens([AddedToken("cat", single_word=True, special=False, normalized=True)])
    ds.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    bos_id = ds.token_to_id(BOS)
    ds.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                      special_tokens=[(BOS, bos_id)])
    write(out, ds, texts)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "add_bos_token": True}, f, ensure_ascii=False, indent=1)

    qwen = train(pre_tokenizers.Sequence([split(QWEN2), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                 normalizers.NFC(), ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], ignore_merges=True)
    write(os.path.join(out, "qwen2_style"), qwen, texts)


if __name__ == "__main__":
    main()
