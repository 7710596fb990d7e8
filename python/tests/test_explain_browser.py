"""The attention explorer page of `attn explain` in a real browser: Debian's
chromium, headless, driven by selenium through chromium-driver.

Each page is loaded from disk (file://), then driven as a person would: the
layer and head selectors, the mode radios, the view tabs, hovering tokens
and matrix cells, clicking the model view's small multiples, and the
keyboard alone. What the browser drew is read back from the DOM (the head
view's SVG lines, the tooltip of the matrix view) and compared with the
weights and maps embedded in the page, decoded here in Python from its JSON
(1e-3 on opacities, which are written with 4 decimals; exact values in the
tooltip). The browser's log must hold no error. A page made from text with
<script>, quotes, </script> and <!-- must run none of it and show the text
as typed. A screenshot of each view is saved under build/explain-screenshots
(or $ATTN_EXPLAIN_SHOTS), printed at the end.
"""
import os
import shutil

import numpy as np
import pytest

from test_explain import checkpoints, page_data  # noqa: F401 (a fixture, shared)
from test_minilm import ROOT, run

try:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError:  # the driver fixture fails with the reason
    webdriver = None

A = "A man is eating food."
B = "A man is eating a piece of bread."
LINE_MIN = 0.01
NASTY = ('He wrote "</script><script>window.__pwned=1</script>" & <!-- '
         "<img src=x onerror='window.__pwned=2'> it's done")


@pytest.fixture(scope="module")
def shots(request):
    d = os.environ.get("ATTN_EXPLAIN_SHOTS") or os.path.join(ROOT, "build", "explain-screenshots")
    os.makedirs(d, exist_ok=True)
    yield d
    names = sorted(f for f in os.listdir(d) if f.endswith(".png"))
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\nexplorer screenshots ({len(names)}): {d}")


@pytest.fixture(scope="module")
def driver():
    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if webdriver is None or not chromium or not chromedriver:
        pytest.fail("the browser tests need selenium (in .venv), chromium and chromium-driver: "
                    "run scripts/setup.sh --python")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(chromedriver), options=opts)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def minilm_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("pages") / "minilm.html"
    p = run("explain", "--out", str(out), "--threads", "2", "--layer", "2", "--head", "5", A, B)
    assert p.returncode == 0, p.stderr
    return out, page_data(out)[0]


@pytest.fixture(scope="module")
def dates_page(tmp_path_factory, checkpoints):  # noqa: F811
    out = tmp_path_factory.mktemp("pages") / "dates.html"
    p = run("explain", "--model", "dates", "--checkpoint", str(checkpoints[0]), "--out", str(out),
            "--threads", "1", "March 3, 2001")
    assert p.returncode == 0, p.stderr
    return out, page_data(out)[0]


# ---- reading the page back ----------------------------------------------------------------

def load(driver, path):
    driver.get("file://" + str(path))
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.find_element(By.ID, "head-svg")


def no_console_errors(driver):
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors


def lines(driver):
    """The head view's lines: (i, j, head, opacity, hidden) each."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#edges line')).map(function (l) {"
        " return [+l.getAttribute('data-i'), +l.getAttribute('data-j'), +l.getAttribute('data-h'),"
        " +l.getAttribute('stroke-opacity'), l.classList.contains('hidden')]; });")


def check_lines(driver, values, scale=1.0, head=None):
    """The drawn lines are exactly the entries of values [nq, nk] with
    value/scale >= LINE_MIN, each with that opacity (to 1e-3)."""
    want = {(i, j): v / scale for (i, j), v in np.ndenumerate(values) if v / scale >= LINE_MIN}
    got = [l for l in lines(driver) if head is None or l[2] == head]
    assert len(got) == len(want), (len(got), len(want))
    worst = 0.0
    for i, j, h, o, hidden in got:
        assert (i, j) in want and not hidden
        worst = max(worst, abs(o - want[(i, j)]))
    assert worst <= 1e-3, worst
    return len(got)


def select(driver, id_, value):
    Select(driver.find_element(By.ID, id_)).select_by_value(str(value))


def caption(driver):
    return driver.find_element(By.ID, "caption").text


def shot(driver, shots, name):
    path = os.path.join(shots, name + ".png")
    driver.save_screenshot(path)
    assert os.path.getsize(path) > 1000


# ---- the views -------------------------------------------------------------------------------

def test_head_view_draws_the_weights(driver, minilm_page, shots):
    path, d = minilm_page
    load(driver, path)
    W = d["groups"][0]["W"]
    # the page opens on --layer 2 --head 5
    assert "layer 2, head 5" in caption(driver)
    check_lines(driver, W[2, 5])
    shot(driver, shots, "head_view")
    for layer, head in ((0, 0), (3, 7), (5, 11)):
        select(driver, "sel-layer", layer)
        select(driver, "sel-head", head)
        assert f"layer {layer}, head {head}" in caption(driver)
        n = check_lines(driver, W[layer, head])
        assert n > 0
    select(driver, "sel-group", 1)  # sentence B, another shape
    WB = d["groups"][1]["W"]
    assert WB.shape[2] != W.shape[2]
    check_lines(driver, WB[5, 11])
    no_console_errors(driver)


def test_all_heads_and_hovering_a_token(driver, minilm_page, shots):
    path, d = minilm_page
    load(driver, path)
    W = d["groups"][0]["W"]
    select(driver, "sel-head", "all")
    total = sum(check_lines(driver, W[2, h], head=h) for h in range(12))
    assert len(lines(driver)) == total
    colours = driver.execute_script(
        "var c = {}; document.querySelectorAll('#edges line').forEach(function (l) {"
        " c[l.getAttribute('data-h')] = l.getAttribute('stroke'); }); return c;")
    assert len(set(colours.values())) == 12
    shot(driver, shots, "head_view_all_heads")
    for side, idx in (("q", 3), ("k", 1)):
        tok = driver.find_element(By.CSS_SELECTOR, f"text.tok-{side}[data-{'i' if side == 'q' else 'j'}='{idx}']")
        ActionChains(driver).move_to_element(tok).perform()
        got = lines(driver)
        col = 0 if side == "q" else 1
        shown = [l for l in got if not l[4]]
        assert shown and all(l[col] == idx for l in shown)
        assert len(shown) == sum(1 for l in got if l[col] == idx)
        if side == "q":
            shot(driver, shots, "head_view_hover")
        ActionChains(driver).move_to_element(driver.find_element(By.ID, "title")).perform()
        assert not any(l[4] for l in lines(driver))
    no_console_errors(driver)


def test_model_view_small_multiples_open_the_head_view(driver, minilm_page, shots):
    path, d = minilm_page
    load(driver, path)
    W = d["groups"][0]["W"]
    driver.find_element(By.ID, "tab-model").click()
    thumbs = driver.find_elements(By.CSS_SELECTOR, "button.thumb")
    assert len(thumbs) == 6 * 12
    assert driver.find_element(By.ID, "view-head").get_attribute("hidden") is not None
    shot(driver, shots, "model_view")
    driver.find_element(By.CSS_SELECTOR, "button.thumb[data-layer='4'][data-head='9']").click()
    assert driver.find_element(By.ID, "tab-head").get_attribute("aria-selected") == "true"
    assert "layer 4, head 9" in caption(driver)
    check_lines(driver, W[4, 9])
    no_console_errors(driver)


def hover_cell(driver, i, j):
    canvas = driver.find_element(By.ID, "matrix-canvas")
    left, top, cell = (float(canvas.get_attribute(a)) for a in ("data-left", "data-top", "data-cell"))
    w, h = canvas.size["width"], canvas.size["height"]
    x, y = left + (j + 0.5) * cell, top + (i + 0.5) * cell
    ActionChains(driver).move_to_element_with_offset(canvas, int(x - w / 2), int(y - h / 2)).perform()
    tip = driver.find_element(By.ID, "tooltip")
    assert tip.is_displayed()
    return (int(tip.get_attribute("data-i")), int(tip.get_attribute("data-j")),
            float(tip.get_attribute("data-value")), tip.text)


def test_matrix_view_shows_exact_values(driver, minilm_page, shots):
    path, d = minilm_page
    load(driver, path)
    W = d["groups"][0]["W"]
    tokens = d["seqs"][0]["tokens"]
    driver.find_element(By.ID, "tab-matrix").click()
    n = W.shape[2]
    for i, j in ((0, 0), (n - 1, n - 2), (3, 4)):
        gi, gj, v, text = hover_cell(driver, i, j)
        assert (gi, gj) == (i, j)
        assert abs(v - float(W[2, 5, i, j])) <= 1e-7
        assert tokens[i] in text and tokens[j] in text
    shot(driver, shots, "matrix_view")
    no_console_errors(driver)


def test_rollout_and_relevance_modes(driver, minilm_page, shots):
    path, d = minilm_page
    load(driver, path)
    maps = {(m["group"], m["kind"]): m for m in d["maps"]}
    for kind in ("rollout", "relevance"):
        driver.find_element(By.ID, "mode-" + kind).click()
        m = maps[(0, kind)]
        check_lines(driver, m["M"], scale=float(m["M"].max()))
        assert driver.find_element(By.ID, "sel-layer").get_attribute("disabled") is not None
        attrs = driver.execute_script(
            "return Array.from(document.querySelectorAll('rect.attr')).map(function (r) {"
            " return +r.getAttribute('fill-opacity'); });")
        want = np.abs(m["A"]) / np.abs(m["A"]).max()
        assert len(attrs) == len(want) and np.abs(np.array(attrs) - want).max() <= 1e-3
        shot(driver, shots, f"head_view_{kind}")
        driver.find_element(By.ID, "tab-matrix").click()
        gi, gj, v, _ = hover_cell(driver, 2, 1)
        assert abs(v - float(m["M"][2, 1])) <= 1e-7
        shot(driver, shots, f"matrix_view_{kind}")
        driver.find_element(By.ID, "tab-head").click()
    assert "cosine similarity" in driver.find_element(By.ID, "sel-target").text
    driver.find_element(By.ID, "mode-raw").click()
    assert driver.find_element(By.ID, "sel-layer").get_attribute("disabled") is None
    no_console_errors(driver)


def test_keyboard_navigation(driver, minilm_page):
    path, d = minilm_page
    load(driver, path)
    W = d["groups"][0]["W"]
    active = lambda: driver.switch_to.active_element.get_attribute("id")  # noqa: E731
    driver.find_element(By.ID, "tab-head").send_keys(Keys.ARROW_RIGHT)
    assert active() == "tab-model"
    assert driver.find_element(By.ID, "tab-model").get_attribute("aria-selected") == "true"
    driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert active() == "tab-matrix" and driver.find_element(By.ID, "view-matrix").is_displayed()
    driver.switch_to.active_element.send_keys(Keys.HOME)
    assert active() == "tab-head" and driver.find_element(By.ID, "view-head").is_displayed()
    # Tab moves through the controls in order; arrows change a selector
    order = []
    for _ in range(8):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        order.append(active())
    assert order[:2] == ["mode-raw", "sel-group"] and "sel-layer" in order and "sel-head" in order
    driver.find_element(By.ID, "sel-layer").send_keys(Keys.ARROW_DOWN)
    assert Select(driver.find_element(By.ID, "sel-layer")).first_selected_option.text == "3"
    assert "layer 3, head 5" in caption(driver)
    check_lines(driver, W[3, 5])
    driver.find_element(By.ID, "sel-head").send_keys(Keys.ARROW_UP)
    assert "layer 3, head 4" in caption(driver)
    check_lines(driver, W[3, 4])
    # the mode radios: arrows move the choice
    driver.find_element(By.ID, "mode-raw").send_keys(Keys.ARROW_RIGHT)
    assert driver.find_element(By.ID, "mode-rollout").is_selected() and "rollout" in caption(driver)
    driver.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    assert driver.find_element(By.ID, "mode-raw").is_selected()
    # a token takes the focus and keeps only its lines
    tok = driver.find_element(By.CSS_SELECTOR, "text.tok-q[data-i='2']")
    driver.execute_script("arguments[0].focus();", tok)
    shown = [l for l in lines(driver) if not l[4]]
    assert shown and all(l[0] == 2 for l in shown)
    # the model view's small multiples open with Enter
    driver.find_element(By.ID, "tab-model").click()
    driver.find_element(By.CSS_SELECTOR, "button.thumb[data-layer='1'][data-head='2']").send_keys(Keys.ENTER)
    assert active() == "tab-head" and "layer 1, head 2" in caption(driver)
    # the matrix view's cursor moves with the arrows and shows the value
    driver.find_element(By.ID, "tab-matrix").click()
    canvas = driver.find_element(By.ID, "matrix-canvas")
    driver.execute_script("arguments[0].focus();", canvas)
    for k in (Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_RIGHT):
        canvas.send_keys(k)
    tip = driver.find_element(By.ID, "tooltip")
    assert (tip.get_attribute("data-i"), tip.get_attribute("data-j")) == ("2", "1")
    assert abs(float(tip.get_attribute("data-value")) - float(W[1, 2, 2, 1])) <= 1e-7
    no_console_errors(driver)


def test_translator_page(driver, dates_page, shots):
    path, d = dates_page
    load(driver, path)
    names = [o.text for o in Select(driver.find_element(By.ID, "sel-group")).options]
    assert names == ["encoder self-attention", "decoder self-attention", "cross-attention"]
    assert Select(driver.find_element(By.ID, "sel-group")).first_selected_option.text == "cross-attention"
    G = d["groups"][2]
    check_lines(driver, G["W"][0, 0])
    left = driver.execute_script("return Array.from(document.querySelectorAll('text.tok-q'))"
                                 ".map(function (t) { return t.textContent; });")
    right = driver.execute_script("return Array.from(document.querySelectorAll('text.tok-k'))"
                                  ".map(function (t) { return t.textContent; });")
    assert left == d["seqs"][2]["tokens"]
    assert right == [t if t != " " else "\u2423" for t in "March 3, 2001"]
    driver.find_element(By.ID, "mode-relevance").click()
    targets = Select(driver.find_element(By.ID, "sel-target"))
    assert len(targets.options) == len(d["seqs"][2]["tokens"]) + 1
    rel = {m["target"]: m for m in d["maps"] if m["group"] == 2 and m["kind"] == "relevance"}
    for t in (0, len(targets.options) - 1):
        targets.select_by_index(t)
        target = int(targets.first_selected_option.get_attribute("value"))
        m = rel[target]["M"]
        check_lines(driver, m, scale=float(m.max()))
    shot(driver, shots, "translator_relevance")
    select(driver, "sel-group", 0)  # the encoder has no per-output attribution shading
    assert not driver.find_elements(By.CSS_SELECTOR, "rect.attr")
    no_console_errors(driver)


def test_markup_in_the_input_is_text(driver, tmp_path, checkpoints):  # noqa: F811
    out = tmp_path / "nasty.html"
    p = run("explain", "--out", str(out), "--threads", "2", NASTY, "\u2028 & <b>bold</b>")
    assert p.returncode == 0, p.stderr
    load(driver, out)
    assert driver.execute_script("return window.__pwned") is None
    assert driver.execute_script("return document.querySelectorAll('img, b, script').length") == 2
    notes = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#notes li")]
    assert "sentence A: " + NASTY in notes
    toks = driver.execute_script("return Array.from(document.querySelectorAll('text.tok-q'))"
                                 ".map(function (t) { return t.textContent; });")
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert "".join(toks[1:-1]) == NASTY.replace(" ", "")
    assert driver.title == "attn explain: all-MiniLM-L6-v2"
    # the date translator, character by character
    out = tmp_path / "nasty_dates.html"
    p = run("explain", "--model", "dates", "--checkpoint", str(checkpoints[0]), "--out", str(out),
            NASTY)
    assert p.returncode == 0, p.stderr
    load(driver, out)
    assert driver.execute_script("return window.__pwned") is None
    select(driver, "sel-group", 0)
    toks = driver.execute_script("return Array.from(document.querySelectorAll('text.tok-q'))"
                                 ".map(function (t) { return t.textContent; });")
    assert toks == [c if c != " " else "\u2423" for c in NASTY[:48]]
    no_console_errors(driver)
