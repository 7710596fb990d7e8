"""`attn explain` and the gradients behind its relevance maps, against PyTorch.

  * attn_bert_attention_probe (C, through ctypes): for the cosine similarity of
    two sentences' all-MiniLM-L6-v2 embeddings, every layer's attention
    probabilities and the gradient of the cosine with respect to them, against
    transformers' eager BertModel with autograd (attentions retained);
  * the page's maps end to end: the rollout and relevance that `attn explain`
    embeds, against the same formulas evaluated in numpy on PyTorch's
    attentions and gradients;
  * the command's errors: a model file of the wrong kind (exit 1), an output
    path that is not a regular file (exit 1), a layer or head out of range
    (exit 2), text past the token cap (truncated, with a message on stderr and
    in the page).

The browser tests of the page are in test_explain_browser.py.
"""
import base64
import json
import os
import re
import stat

import numpy as np
import pytest

from attn._lib.core import check, context
from attn._lib.nn import Hook, lib
from attn.models import MiniLM
from test_cli import TINY
from test_minilm import _model_dir, run

A = "A man is eating food."
B = "A man is eating a piece of bread."


@pytest.fixture(scope="module")
def bert():
    m = MiniLM(_model_dir(), threads=2)
    yield m
    m.close()


def probe(bert, ids, d_emb):
    """Per layer (w, dw) [heads, n, n] from the C probe, and the embedding."""
    got = {}

    def hook(ctx, p, user):
        pr = p.contents
        H, n = pr.q.dim[2], pr.q.dim[1]
        w = np.zeros((H, n, n), np.float32)
        dw = np.zeros((H, n, n), np.float32)
        st = lib.attn_nn_attn_probe_weights(ctx, p, w.ctypes.data, dw.ctypes.data)
        got[pr.layer] = (w, dw)
        return st

    cb = Hook(hook)
    a = np.array(ids, np.int32)
    d = np.ascontiguousarray(d_emb, np.float32)
    emb = np.zeros(384, np.float32)
    check(lib.attn_bert_attention_probe(context(2), bert._m, a.ctypes.data, len(ids),
                                        d.ctypes.data, cb, None, emb.ctypes.data))
    return got, emb


@pytest.fixture(scope="module")
def torch_grads(bert):
    """PyTorch: attentions and d cos / d attentions for A and B."""
    import torch
    from transformers import AutoModel
    model = AutoModel.from_pretrained(_model_dir(), attn_implementation="eager")
    model.eval()
    out = {}
    embs = []
    for name, text in (("A", A), ("B", B)):
        ids = bert.tokenize(text)[0]
        res = model(input_ids=torch.tensor([ids]), output_attentions=True)
        for a in res.attentions:
            a.retain_grad()
        mean = res.last_hidden_state[0].mean(0)
        embs.append(mean / mean.norm())
        out[name] = (ids, res.attentions)
    cos = (embs[0] * embs[1]).sum()
    cos.backward()
    result = {}
    for name in ("A", "B"):
        ids, atts = out[name]
        result[name] = (ids, [a[0].detach().numpy() for a in atts],
                        [a.grad[0].numpy() for a in atts])
    e = [x.detach().numpy() for x in embs]
    return result, e, float(cos.detach())


def test_probe_gradients_equal_pytorch(bert, torch_grads, capsys):
    result, embs, cos = torch_grads
    worst_w = worst_g = 0.0
    for k, name in enumerate(("A", "B")):
        ids, w_ref, g_ref = result[name]
        got, emb = probe(bert, ids, embs[1 - k])
        assert sorted(got) == list(range(6))
        assert np.abs(emb - embs[k]).max() <= 1e-5
        for layer in range(6):
            w, dw = got[layer]
            worst_w = max(worst_w, float(np.abs(w - w_ref[layer]).max()))
            scale = float(np.abs(g_ref[layer]).max())
            assert scale > 1e-4, "the gradient of this layer should not vanish"
            worst_g = max(worst_g, float(np.abs(dw - g_ref[layer]).max()) / scale)
    with capsys.disabled():
        print(f"\nprobe vs PyTorch: max |w - torch| {worst_w:.3g}, "
              f"max |dL/dA - torch| / max |torch| {worst_g:.3g} (cos {cos:.6f})")
    assert worst_w <= 1e-5
    assert worst_g <= 1e-3


# ---- the page's data ---------------------------------------------------------------------

def page_data(path):
    """The JSON of the page at path, with the base64 floats decoded."""
    html = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="attn-data">(.*?)</script>', html, re.S)
    assert m, "no data element"
    d = json.loads(m.group(1))

    def f32(s):
        return None if s is None else np.frombuffer(base64.b64decode(s), "<f4")

    for g in d["groups"]:
        nq, nk = len(d["seqs"][g["q"]]["tokens"]), len(d["seqs"][g["k"]]["tokens"])
        g["W"] = f32(g["w"]).reshape(g["layers"], g["heads"], nq, nk)
    for mp in d["maps"]:
        g = d["groups"][mp["group"]]
        mp["M"] = f32(mp["m"]).reshape(g["W"].shape[2:])
        mp["A"] = f32(mp["attr"])
    return d, html


def rollout(atts):
    n = atts[0].shape[-1]
    r = np.eye(n)
    for a in atts:
        m = 0.5 * a.astype(np.float64).mean(0) + 0.5 * np.eye(n)
        m /= m.sum(1, keepdims=True)
        r = m @ r
    return r


def relevance(atts, grads):
    n = atts[0].shape[-1]
    r = np.eye(n)
    for a, g in zip(atts, grads):
        abar = np.clip(a.astype(np.float64) * g, 0, None).mean(0)
        r = r + abar @ r
    return r


def test_page_maps_equal_numpy_on_pytorch(tmp_path, torch_grads, capsys):
    result, _, cos = torch_grads
    out = tmp_path / "minilm.html"
    p = run("explain", "--out", str(out), "--threads", "2", A, B)
    assert p.returncode == 0, p.stderr
    assert f"{cos:.6f}"[:6] in p.stdout and "wrote" in p.stdout
    d, _ = page_data(out)
    assert [g["name"] for g in d["groups"]] == ["sentence A: self-attention",
                                                "sentence B: self-attention"]
    worst = {"weights": 0.0, "rollout": 0.0, "relevance": 0.0}
    for gi, name in enumerate(("A", "B")):
        ids, atts, grads = result[name]
        g = d["groups"][gi]
        assert g["W"].shape == (6, 12, len(ids), len(ids))
        worst["weights"] = max(worst["weights"],
                               max(float(np.abs(g["W"][l] - atts[l]).max()) for l in range(6)))
        maps = {m["kind"]: m for m in d["maps"] if m["group"] == gi}
        ro = rollout(atts)
        worst["rollout"] = max(worst["rollout"], float(np.abs(maps["rollout"]["M"] - ro).max()))
        assert np.abs(maps["rollout"]["A"] - ro.mean(0)).max() <= 1e-5
        # R - I: the page's R is float32, so entries near 1 carry ~6e-8 each
        rel = relevance(atts, grads) - np.eye(len(ids))
        assert np.abs(rel).max() > 1e-4
        worst["relevance"] = max(worst["relevance"], float(np.abs(maps["relevance"]["M"] - rel).max()))
        assert np.abs(maps["relevance"]["A"] - rel.mean(0)).max() <= 2e-6
        tokens = d["seqs"][g["q"]]["tokens"]
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "eating" in tokens
    with capsys.disabled():
        print("\npage vs numpy on PyTorch: " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    assert worst["weights"] <= 1e-5 and worst["rollout"] <= 1e-5 and worst["relevance"] <= 2e-6


# ---- the command's errors ----------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny translator and a GRU checkpoint, a few steps each."""
    d = tmp_path_factory.mktemp("explain")
    tr, gru = d / "dates.safetensors", d / "gru.safetensors"
    p = run("train", "--steps", "3", "--out", str(tr), *TINY)
    assert p.returncode == 0, p.stderr
    p = run("train", "--arch", "gru", "--steps", "2", "--batch", "4", "--eval-n", "5",
            "--eval-every", "0", "--quiet", "--threads", "1", "--out", str(gru))
    assert p.returncode == 0, p.stderr
    return tr, gru


def test_translator_and_gru_pages(tmp_path, checkpoints):
    tr, gru = checkpoints
    out = tmp_path / "dates.html"
    p = run("explain", "--model", "dates", "--checkpoint", str(tr), "--out", str(out),
            "--threads", "1", "3/4/05")
    assert p.returncode == 0, p.stderr
    d, _ = page_data(out)
    assert [g["name"] for g in d["groups"]] == ["encoder self-attention", "decoder self-attention",
                                                "cross-attention"]
    assert d["seqs"][0]["tokens"] == list("3/4/05")
    n_out = len(d["seqs"][2]["tokens"])
    assert d["seqs"][1]["tokens"][0] == "<s>" and len(d["seqs"][1]["tokens"]) == n_out
    kinds = [(m["group"], m["kind"]) for m in d["maps"]]
    assert kinds.count((2, "relevance")) == n_out + 1  # one per output, and "every output"
    assert all((g, "rollout") in kinds for g in range(3))
    assert d["start"]["group"] == 2
    for m in d["maps"]:  # rollout rows are distributions
        if m["kind"] == "rollout":
            assert np.allclose(m["M"].sum(1), 1, atol=1e-5)
    out = tmp_path / "gru.html"
    p = run("explain", "--model", "gru", "--checkpoint", str(gru), "--out", str(out), "1 JAN 1900")
    assert p.returncode == 0, p.stderr
    d, _ = page_data(out)
    g = d["groups"][0]
    assert len(d["groups"]) == 1 and g["W"].shape[:2] == (1, 1)
    n_out = g["W"].shape[2]
    kinds = [m["kind"] for m in d["maps"]]
    assert kinds == ["rollout"] + ["relevance"] * (n_out + 1)
    assert np.array_equal(d["maps"][0]["M"], g["W"][0, 0])  # one layer: rollout is the layer
    for m in d["maps"][1:]:
        assert (m["M"] >= 0).all()
        if m["target"] < n_out:  # causal: steps after the output do not explain it
            assert not m["M"][m["target"] + 1:].any()
            assert np.array_equal(m["A"], m["M"][m["target"]])
    every = d["maps"][-1]["M"]
    for t in range(n_out):
        assert np.array_equal(every[t], d["maps"][1 + t]["M"][t])


@pytest.mark.parametrize("what", ["gru-as-dates", "dates-as-gru", "minilm-as-dates", "garbage"])
def test_model_file_of_the_wrong_kind(tmp_path, checkpoints, what):
    tr, gru = checkpoints
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(300))
    model, path, needle = {
        "gru-as-dates": ("dates", gru, "is a GRU checkpoint"),
        "dates-as-gru": ("gru", tr, "use --model dates"),
        "minilm-as-dates": ("dates", os.path.join(_model_dir(), "model.safetensors"),
                            "cannot load"),
        "garbage": ("dates", garbage, "cannot load"),
    }[what]
    out = tmp_path / "x.html"
    p = run("explain", "--model", model, "--checkpoint", str(path), "--out", str(out), "3/4/05")
    assert p.returncode == 1, (what, p.stderr)
    assert needle in p.stderr and str(path) in p.stderr, p.stderr
    assert not out.exists()


def test_output_path_not_a_regular_file(tmp_path):
    p = run("explain", "--out", str(tmp_path), A)
    assert p.returncode == 1 and "is a directory, not a regular file" in p.stderr, p.stderr
    fifo = tmp_path / "page.fifo"
    os.mkfifo(fifo)
    p = run("explain", "--out", str(fifo), A)
    assert p.returncode == 1 and "is a FIFO, not a regular file" in p.stderr, p.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("args,needle", [
    (["--layer", "6", A], "layers 0..5"),
    (["--head", "12", A], "heads 0..11"),
    (["--model", "gru", "--checkpoint", "x", "--layer", "1", "3/4/05"], None),
    (["--model", "dates", "3/4/05"], "needs --checkpoint"),
    (["--checkpoint", "x", A], "--checkpoint is for"),
    (["--model", "dates", "--checkpoint", "x", "a", "b"], "takes 1 to 1 inputs"),
    ([A, B, "third"], "unexpected argument"),
    ([], "takes 1 to 2 inputs"),
    (["--model", "bart", A], "--model 'bart' is not one of"),
])
def test_usage_errors_exit_2(tmp_path, checkpoints, args, needle):
    tr, gru = checkpoints
    args = [str(gru) if a == "x" and "gru" in args else str(tr) if a == "x" else a for a in args]
    out = tmp_path / "x.html"
    p = run("explain", "--out", str(out), *args)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert needle is None or needle in p.stderr, p.stderr
    if needle is None:
        assert "layers 0..0" in p.stderr
    assert not out.exists()
    p = run("explain", A)
    assert p.returncode == 2 and "--out F.html is required" in p.stderr


def test_long_text_is_truncated_with_a_message(tmp_path, checkpoints):
    out = tmp_path / "long.html"
    p = run("explain", "--out", str(out), "--threads", "2", "word " * 300)
    assert p.returncode == 0, p.stderr
    assert "has 302 tokens" in p.stderr and "first 256 (truncated)" in p.stderr
    d, _ = page_data(out)
    assert len(d["seqs"][0]["tokens"]) == 256
    assert any("first 256 (truncated)" in n for n in d["notes"])
    tr, _ = checkpoints
    p = run("explain", "--model", "dates", "--checkpoint", str(tr), "--out", str(out),
            "x" * 60)
    assert p.returncode == 0, p.stderr
    assert "has 60 tokens" in p.stderr
    d, _ = page_data(out)
    assert d["seqs"][0]["tokens"] == ["x"] * 48
