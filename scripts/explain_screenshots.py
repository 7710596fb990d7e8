#!/usr/bin/env python3
"""Screenshots of the attention explorer for the documentation (docs/img/explain_*.png),
from real model runs: all-MiniLM-L6-v2 on two sentences and the trained date
translator. Runs `attn explain`, opens each page in headless chromium (selenium,
as the browser tests do) and saves one PNG per view.

    .venv/bin/python scripts/explain_screenshots.py --checkpoint run/dates.safetensors

Needs what `scripts/setup.sh --python` installs and a translator checkpoint
(`make run` trains one).
"""
import argparse
import os
import shutil
import subprocess
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A = "A man is eating food."
B = "A man is eating a piece of bread."
DATE = "the twenty-first of June, 1999"


def explain(attn, out, *args):
    p = subprocess.run([attn, "explain", "--out", out, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"attn explain {' '.join(args)}: {p.stderr}")
    print(p.stdout.strip())


def browser(width, height):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def save(d, out_dir, name):
    path = os.path.join(out_dir, f"explain_{name}.png")
    d.save_screenshot(path)
    print("wrote", path)


def pick(d, id_, value):
    Select(d.find_element(By.ID, id_)).select_by_value(str(value))


def minilm_views(d, page, out_dir):
    d.get("file://" + page)
    pick(d, "sel-group", 1)
    pick(d, "sel-layer", 0)
    pick(d, "sel-head", 2)
    tok = d.find_element(By.CSS_SELECTOR, "text.tok-q[data-i='4']")
    ActionChains(d).move_to_element(tok).perform()
    save(d, out_dir, "head")
    ActionChains(d).move_to_element(d.find_element(By.ID, "title")).perform()
    pick(d, "sel-head", "all")
    save(d, out_dir, "head_all")
    d.find_element(By.ID, "tab-model").click()
    save(d, out_dir, "model")
    d.find_element(By.ID, "tab-matrix").click()
    pick(d, "sel-layer", 5)
    pick(d, "sel-head", "all")
    canvas = d.find_element(By.ID, "matrix-canvas")
    left, top, cell = (float(canvas.get_attribute(a)) for a in ("data-left", "data-top", "data-cell"))
    x, y = left + 8.5 * cell, top + 4.5 * cell  # query "eating", key "bread"
    ActionChains(d).move_to_element_with_offset(
        canvas, int(x - canvas.size["width"] / 2), int(y - canvas.size["height"] / 2)).perform()
    save(d, out_dir, "matrix")
    d.find_element(By.ID, "tab-head").click()
    d.find_element(By.ID, "mode-rollout").click()
    save(d, out_dir, "rollout")
    d.find_element(By.ID, "mode-relevance").click()
    save(d, out_dir, "relevance")


def translator_view(d, page, out_dir):
    d.get("file://" + page)
    d.find_element(By.ID, "tab-matrix").click()
    d.find_element(By.ID, "mode-relevance").click()
    targets = Select(d.find_element(By.ID, "sel-target"))
    targets.select_by_index(len(targets.options) - 1)  # every output, row by row
    save(d, out_dir, "translator")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attn", default=os.path.join(ROOT, "build", "attn"))
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "run", "dates.safetensors"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "img"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="explain-shots-")
    minilm, dates = os.path.join(tmp, "minilm.html"), os.path.join(tmp, "dates.html")
    explain(a.attn, minilm, "--threads", "2", A, B)
    explain(a.attn, dates, "--model", "dates", "--checkpoint", a.checkpoint, DATE)
    d = browser(1180, 900)
    try:
        minilm_views(d, minilm, a.out_dir)
        translator_view(d, dates, a.out_dir)
    finally:
        d.quit()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
