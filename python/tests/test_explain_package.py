"""attn.explain: the explorer page for any model's attention weights, through
libattn_explain.

  * the arithmetic (rollout, head_mean, self_rule, cross_rule) against the
    formulas of include/attn/explain.h evaluated in numpy in float64;
  * pages built with attn.explain.Page and self_attention_page, read back
    from the JSON the page embeds (test_explain.page_data): tokens, notes,
    targets, every weight, every map and attribution, the opening view, and
    html() equal to the file written;
  * the attentions of a PyTorch encoder (output of need_weights) on a page,
    bit for bit;
  * bad input: typed exceptions naming the argument, and a page unchanged
    by a failed call.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import attn
import attn.explain as ex
from test_explain import page_data, relevance, rollout as rollout_ref


def softmax_rows(rng, *shape):
    x = rng.standard_normal(shape)
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def rownorm_bar(r):
    """Rbar = rownorm(R - I) + I; a row of R - I summing to 0 stays 0."""
    d = r - np.eye(r.shape[0])
    s = d.sum(1, keepdims=True)
    return np.divide(d, s, out=np.zeros_like(d), where=s != 0) + np.eye(r.shape[0])


def test_rollout_and_head_mean_equal_numpy():
    rng = np.random.default_rng(1)
    a = softmax_rows(rng, 4, 3, 9, 9)
    g = rng.standard_normal(a.shape).astype(np.float32)
    r = ex.rollout(a)
    assert r.shape == (9, 9) and r.dtype == np.float32
    assert np.abs(r - rollout_ref(list(a))).max() <= 1e-6
    assert np.abs(r.sum(1) - 1).max() <= 1e-6
    assert np.abs(ex.head_mean(a[0]) - a[0].astype(np.float64).mean(0)).max() <= 1e-7
    want = np.clip(a[1].astype(np.float64) * g[1], 0, None).mean(0)
    assert np.abs(ex.head_mean(a[1], g[1]) - want).max() <= 1e-7


def test_self_rule_over_layers_equals_relevance():
    """self_rule applied layer by layer to R = I is test_explain's relevance."""
    rng = np.random.default_rng(2)
    a = softmax_rows(rng, 3, 2, 7, 7)
    g = rng.standard_normal(a.shape).astype(np.float32)
    r = np.eye(7, dtype=np.float32)
    r_xy = rng.standard_normal((7, 5)).astype(np.float32)
    xy = r_xy.astype(np.float64)
    for layer in range(3):
        abar = ex.head_mean(a[layer], g[layer])
        xy = xy + abar.astype(np.float64) @ xy
        ex.self_rule(abar, r, r_xy)
    assert np.abs(r - relevance(list(a), list(g))).max() <= 1e-6
    assert np.abs(r_xy - xy).max() <= 1e-5 * np.abs(xy).max()


def test_cross_rule_equals_numpy():
    rng = np.random.default_rng(3)
    t, s = 5, 8
    abar = rng.random((t, s)).astype(np.float32)
    r_tt = (np.eye(t) + rng.random((t, t)) * 0.3).astype(np.float32)
    r_ss = (np.eye(s) + rng.random((s, s)) * 0.3).astype(np.float32)
    r_ss[2] = np.eye(s)[2]  # a row of R - I that sums to 0 stays 0
    r_ts = rng.random((t, s)).astype(np.float32)
    want = r_ts + rownorm_bar(r_tt.astype(np.float64)).T @ abar @ rownorm_bar(
        r_ss.astype(np.float64))
    ex.cross_rule(abar, r_tt, r_ss, r_ts)
    assert np.abs(r_ts - want).max() <= 1e-5 * np.abs(want).max()


def test_page_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    src, tgt = ["le", "chat", "<script>", "\u2028"], ["the", "cat", "</script>"]
    w_src = softmax_rows(rng, 2, 3, 4, 4)
    w_cross = softmax_rows(rng, 2, 3, 3, 4)
    with ex.Page("a <b>page</b>") as page:
        page.note("note one")
        s = page.tokens("source", src)
        t = page.tokens("target", tgt)
        g0 = page.group("encoder", s, s, w_src)
        g1 = page.group("cross", t, s, w_cross)
        out = page.target("output 1: 'cat'")
        m_roll = ex.rollout(w_src)
        m_rel = rng.random((3, 4)).astype(np.float32)
        page.add_map(g0, "rollout", m_roll, m_roll.mean(0))
        page.add_map(g1, ex.Kind.RELEVANCE, m_rel, target=out)
        page.select(g1, 1, 2)
        path = tmp_path / "page.html"
        size = page.write(path)
        html = page.html()
    assert size == path.stat().st_size and path.read_text(encoding="utf-8") == html
    d, _ = page_data(path)
    assert d["title"] == "a <b>page</b>" and d["notes"] == ["note one"]
    assert [x["tokens"] for x in d["seqs"]] == [src, tgt]
    assert d["targets"] == ["output 1: 'cat'"]
    assert d["start"] == {"group": 1, "layer": 1, "head": 2}
    assert np.array_equal(d["groups"][0]["W"], w_src)
    assert np.array_equal(d["groups"][1]["W"], w_cross)
    (roll, rel) = d["maps"]
    assert (roll["kind"], roll["target"], rel["kind"], rel["target"]) == \
        ("rollout", -1, "relevance", out)
    assert np.array_equal(roll["M"], m_roll) and np.array_equal(roll["A"], m_roll.mean(0))
    assert np.array_equal(rel["M"], m_rel) and rel["A"] is None
    assert "<script>" not in html.split('id="attn-data">')[1].split("</script>")[0]


def test_torch_encoder_attentions_on_a_page(tmp_path):
    """The per-head weights of torch.nn.MultiheadAttention layers, stacked
    [layers, heads, n, n], through self_attention_page."""
    torch.manual_seed(0)
    n, e, h = 6, 16, 4
    layers = [torch.nn.MultiheadAttention(e, h, batch_first=True) for _ in range(3)]
    x = torch.randn(1, n, e)
    ws = []
    with torch.no_grad():
        for mha in layers:
            x, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
            ws.append(w[0])
    w = torch.stack(ws).numpy()
    tokens = ["tok%d" % i for i in range(n)]
    path = tmp_path / "torch.html"
    size = ex.self_attention_page(path, tokens, w, title="torch", notes=["three layers"])
    assert size == path.stat().st_size
    d, _ = page_data(path)
    assert d["seqs"][0]["tokens"] == tokens and d["notes"] == ["three layers"]
    assert np.array_equal(d["groups"][0]["W"], w)
    (m,) = d["maps"]
    assert m["kind"] == "rollout"
    assert np.abs(m["M"] - rollout_ref(list(w))).max() <= 1e-6
    assert np.array_equal(m["A"], m["M"].mean(0))


def test_bad_input_raises_typed_errors_and_leaves_the_page(tmp_path):
    rng = np.random.default_rng(5)
    page = ex.Page("p")
    s = page.tokens("s", ["a", "b", "c"])
    w = softmax_rows(rng, 1, 1, 3, 3)
    g = page.group("g", s, s, w)
    before = page.html()
    with pytest.raises(attn.ShapeMismatchError, match="'weights'"):
        page.group("h", s, s, softmax_rows(rng, 1, 1, 3, 4))
    with pytest.raises(attn.ShapeMismatchError, match="'weights'"):
        page.group("h", s, s, w[0])
    with pytest.raises(attn.BadDimError, match="'n' is 513"):
        page.tokens("long", ["x"] * (ex.MAX_TOKENS + 1))
    with pytest.raises(attn.BadParamError, match="'q_seq' is 7"):
        page.group("h", 7, s, w)
    bad = w.copy()
    bad[0, 0, 1, 1] = np.nan
    with pytest.raises(attn.BadParamError, match="not finite"):
        page.group("h", s, s, bad)
    with pytest.raises(attn.BadParamError, match="'kind'"):
        page.add_map(g, "attention", w[0, 0])
    with pytest.raises(attn.ShapeMismatchError, match="'m'"):
        page.add_map(g, "rollout", np.ones((2, 3)))
    with pytest.raises(attn.ShapeMismatchError, match="'attr'"):
        page.add_map(g, "rollout", w[0, 0], np.ones(2))
    assert page.html() == before
    page.add_map(g, "rollout", w[0, 0])
    with pytest.raises(attn.BadParamError):
        page.add_map(g, "rollout", w[0, 0])  # one map per (group, kind, target)
    with pytest.raises(attn.AttnIOError):
        page.write(tmp_path)
    assert not list(tmp_path.iterdir())
    page.close()
    with pytest.raises(attn.ShapeMismatchError, match="'r_xx'"):
        ex.self_rule(np.eye(3, dtype=np.float32), np.eye(3))  # float64: not updatable
    with pytest.raises(attn.ShapeMismatchError, match="'weights'"):
        ex.rollout(np.ones((2, 2, 2)))


def test_docs_example_writes_a_page(tmp_path):
    """The explorer example of docs/python.md runs as printed."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "python.md"), encoding="utf-8") as f:
        doc = f.read()
    code = doc.split("The explorer on the attentions of a PyTorch model:\n\n```python\n")[1]
    code = code.split("```")[0]
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    d, _ = page_data(tmp_path / "page.html")
    assert d["groups"][0]["W"].shape == (3, 4, 6, 6)
    assert [m["kind"] for m in d["maps"]] == ["rollout"]
