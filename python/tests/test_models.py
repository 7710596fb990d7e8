"""attn.models.DateTranslator (train, translate, maps, checkpoints the program
reads), attn.viz heatmaps and the errors of attn.text and attn.models.MiniLM.
MiniLM's numbers are test_minilm.py's; the tokenizer's test_tokenizer.py's."""
import struct
import subprocess

import numpy as np
import pytest

import attn
import attn.viz
from attn.models import DateTranslator, MiniLM
from attn.text import WordPiece
from test_cli import _binary

TINY = dict(d_model=16, heads=2, ff=16, layers=1, threads=1)


def _png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model after 60 steps, its progress, report and checkpoint."""
    t = DateTranslator(d_model=32, heads=2, ff=64, layers=1, threads=2)
    seen = []
    report = t.train(steps=60, batch=16, warmup=10, eval_every=30, eval_n=20, target=0,
                     progress=seen.append)
    path = tmp_path_factory.mktemp("dates") / "model.safetensors"
    t.save(path)
    return t, seen, report, path


def test_training_reports_progress_and_learns(trained):
    t, seen, report, _ = trained
    assert [p.step for p in seen] == list(range(1, 61)) and all(p.steps == 60 for p in seen)
    assert [p.step for p in seen if p.heldout_acc is not None] == [30, 60]
    assert seen[-1].loss < seen[0].loss - 1.0  # character-level cross-entropy drops
    assert report.steps_run == 60 and report.last_step == 60 and t.steps_taken == 60
    assert report.final_loss == seen[-1].loss and report.heldout_acc == seen[-1].heldout_acc


def test_training_is_deterministic(trained):
    t, seen, _, _ = trained
    again = DateTranslator(d_model=32, heads=2, ff=64, layers=1, threads=1)
    losses = []
    again.train(steps=60, batch=16, warmup=10, eval_every=0, target=0,
                progress=lambda p: losses.append(p.loss))
    assert losses == [p.loss for p in seen]
    assert again.translate("12.11.1987") == t.translate("12.11.1987")


def test_translate_attention_and_maps(trained, tmp_path):
    t, _, _, _ = trained
    text = "Sunday, March 17th 2024"
    out, w = t.attention(text)
    assert out == t.translate(text) and 1 <= len(out) <= 11  # 10 and EOS, at most
    assert w.shape == (len(out), len(text)) and w.dtype == np.float32
    assert np.allclose(w.sum(1), 1.0, atol=1e-5)  # each output row: a distribution over source
    assert isinstance(t.translate(text, beam=3), str)
    png = tmp_path / "map.png"
    assert t.map_png(text, png) == out
    width, height = _png_size(png)
    img = attn.viz.heatmap_rgb(w, row_labels=list(out), col_labels=list(text),
                               title="%s -> %s" % (text, out), row_axis="output",
                               col_axis="source")
    assert img.shape == (height, width, 3)
    acc = t.evaluate(10)
    assert 0.0 <= acc <= 1.0


def test_checkpoint_round_trip_and_the_program(trained):
    t, _, _, path = trained
    back = DateTranslator.load(path)
    dates = ["3/4/05", "the twenty-first of June, 1999", "1 JAN 1900"]
    assert [back.translate(d) for d in dates] == [t.translate(d) for d in dates]
    assert back.steps_taken == 60 and back.param_count == t.param_count
    assert back.config.d_model == 32 and back.config.n_enc_layers == 1
    p = subprocess.run([_binary(), "translate", "--model", str(path), "--threads", "1", *dates],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert [line.split(" -> ")[1] for line in p.stdout.splitlines()[:3]] == \
        [t.translate(d) for d in dates]


def test_progress_exceptions_are_raised_after_training():
    t = DateTranslator(**TINY)

    def stop(p):
        raise KeyboardInterrupt("stop at %d" % p.step)
    with pytest.raises(KeyboardInterrupt, match="stop at 1"):
        t.train(steps=2, batch=2, eval_every=0, progress=stop)


@pytest.mark.parametrize("call,error,needle", [
    (lambda t: t.translate(""), attn.BadDimError, "1 to 48 characters"),
    (lambda t: t.translate("x" * 49), attn.BadDimError, "not 49"),
    (lambda t: t.evaluate(0), attn.BadParamError, "'n' must be >= 1"),
    (lambda t: t.train(steps=1, batch=0), attn.BadParamError, "'batch'"),
    (lambda t: t.train(steps=1, lr=-1.0), attn.BadParamError, "'base_lr' is -1"),
    (lambda t: t.train(schedule="linear"), attn.BadParamError, "'linear'"),
    (lambda t: DateTranslator(arch="lstm"), attn.BadParamError, "arch is 'lstm'"),
    (lambda t: DateTranslator(heads=3, d_model=16), attn.BadDimError, "multiple of 'n_heads'"),
    (lambda t: DateTranslator.load("/nonexistent/model.safetensors"), attn.AttnIOError, ""),
])
def test_date_translator_errors(call, error, needle):
    t = DateTranslator(**TINY)
    with pytest.raises(error) as ei:
        call(t)
    assert needle in ei.value.message


def test_heatmap_png_and_errors(tmp_path):
    w = np.array([[0.1, 0.9, 0.0], [0.5, 0.25, 0.25]])
    path = tmp_path / "w.png"
    attn.viz.heatmap_png(path, w, row_labels=["a", "b"], col_labels=["x", "y", "z"],
                         title="t", cell=20)
    width, height = _png_size(path)
    img = attn.viz.heatmap_rgb(w, row_labels=["a", "b"], col_labels=["x", "y", "z"],
                               title="t", cell=20)
    assert img.shape == (height, width, 3) and img.dtype == np.uint8
    assert not np.array_equal(img, attn.viz.heatmap_rgb(w[::-1], row_labels=["a", "b"],
                                                        col_labels=["x", "y", "z"],
                                                        title="t", cell=20))
    with pytest.raises(attn.ShapeMismatchError, match="row_labels has 3 labels"):
        attn.viz.heatmap_png(path, w, row_labels=["a", "b", "c"])
    with pytest.raises(attn.ShapeMismatchError, match="must be \\[rows, cols\\]"):
        attn.viz.heatmap_rgb(np.zeros(3))
    with pytest.raises(attn.AttnIOError):
        attn.viz.heatmap_png(tmp_path / "no" / "such" / "dir.png", w)
    with pytest.raises(attn.BadDimError):
        attn.viz.heatmap_rgb(np.zeros((0, 3)))


def test_wordpiece_errors(tmp_path):
    vocab = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n"
    tok = WordPiece.from_bytes(vocab)
    assert tok.encode("Hello worlds") == [2, 4, 5, 6, 3]
    assert tok.encode_offsets("hello")[1] == [(-1, -1), (0, 5), (-1, -1)]
    with pytest.raises(attn.BadParamError, match="at byte 3 "):
        tok.encode(b"abc\xff")
    with pytest.raises(attn.BadParamError):
        tok.encode("hello", max_len=1)
    with pytest.raises(attn.BadFileError):
        WordPiece.from_bytes(b"hello\n")
    with pytest.raises(attn.AttnIOError):
        WordPiece(tmp_path / "missing.txt")
    tok.close()
    tok.close()


def test_minilm_errors(tmp_path):
    with pytest.raises(attn.AttnError):
        MiniLM(tmp_path)
    with pytest.raises(attn.BadParamError, match="threads"):
        MiniLM(threads=-2)
