"""The `attn` program: --help on every command, clear messages and exit status 2
on bad usage, 1 (never a crash) on missing or corrupt files, `attn info`
without a model (the CPU and the kernels, ATTN_KERNEL), and a small
train -> info -> translate (with maps) -> resume round trip."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _binary():
    env = os.environ.get("ATTN_CLI")
    cands = ([env] if env else []) + [os.path.join(ROOT, "build", "attn")] + \
        sorted(glob.glob(os.path.join(ROOT, "build-*", "attn")))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.fail("the attn program is not built (build it first: make build)")


def run(*args, timeout=300, env=None):
    full_env = None if env is None else {**os.environ, **env}
    p = subprocess.run([_binary(), *args], capture_output=True, text=True, timeout=timeout, env=full_env)
    assert p.returncode >= 0, f"attn {args} died with signal {-p.returncode}: {p.stderr}"
    return p


TINY = ["--d-model", "16", "--heads", "2", "--ff", "16", "--layers", "1", "--batch", "4",
        "--eval-n", "5", "--eval-every", "0", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.safetensors"
    p = run("train", "--steps", "3", "--out", str(path), *TINY)
    assert p.returncode == 0, p.stderr
    assert "trained 3 steps" in p.stdout
    return path


def test_help_everywhere():
    for cmd in ([], ["train"], ["translate"], ["eval"], ["info"]):
        p = run(*cmd, "--help")
        assert p.returncode == 0 and "usage: attn" in p.stdout, (cmd, p.stderr)
    p = run()
    assert p.returncode == 2 and "usage: attn" in p.stderr


@pytest.mark.parametrize("args,needle", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["train", "--steps", "abc"], "'--steps' needs a number"),
    (["train", "--steps", "0"], "--steps must be in"),
    (["train", "--steps", "2.5"], "whole number"),
    (["train", "--lr"], "'--lr' needs a value"),
    (["train", "--frobnicate", "1"], "unknown option '--frobnicate'"),
    (["train", "--arch", "lstm"], "--arch 'lstm' is not one of"),
    (["train", "stray"], "unexpected argument 'stray'"),
    (["translate", "March 3, 2001"], "--model is required"),
    (["translate", "--model", "x.safetensors"], "give at least one date"),
    (["translate", "--model", "x", "--beam", "99", "a"], "--beam must be in"),
    (["eval", "--n", "-1", "--model", "x"], "--n must be in"),
])
def test_bad_usage_exits_2(args, needle):
    p = run(*args)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert needle in p.stderr, p.stderr


SLOTS = ["sdpa.forward", "sdpa.decode", "sdpa.weights", "sdpa.delta", "sdpa.dkdv", "sdpa.dq",
         "sdpa.fused_bwd", "sdpa.dbias_row", "score.additive", "score.proj", "nn.gemm",
         "nn.layernorm_row", "nn.gelu_row", "nn.softmax_row"]


def test_info_without_model_describes_cpu_and_kernels():
    p = run("info", env={"ATTN_KERNEL": ""})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and lines[1].startswith("features:"), p.stdout
    for slot in SLOTS:
        assert sum(line.startswith(f"slot {slot}: ") for line in lines) == 1, (slot, p.stdout)
    assert "kernel: auto: " in p.stdout
    isa = {line.split()[1]: "): available" in line for line in lines if line.startswith("isa ")}
    assert set(isa) == {"portable", "avx2", "avx512", "amx"} and isa["portable"], p.stdout
    # Every choice through the environment: forced, or refused naming what is missing.
    for name, key in (("tiled", "portable"), ("avx2", "avx2"), ("avx512", "avx512"), ("amx", "amx")):
        q = run("info", env={"ATTN_KERNEL": name})
        if isa[key]:
            assert q.returncode == 0 and f"kernel: {name} (forced)" in q.stdout, (name, q.stderr)
            assert f"slot sdpa.forward: {key} (forced" in q.stdout, q.stdout
        else:
            assert q.returncode == 1 and "ATTN_UNSUPPORTED" in q.stderr, (name, q.stderr)
            assert f"ATTN_KERNEL={name} is not available" in q.stderr, q.stderr
    q = run("info", env={"ATTN_KERNEL": "ref"})
    assert q.returncode == 0 and "slot sdpa.forward: ref (forced" in q.stdout, q.stderr
    q = run("info", env={"ATTN_KERNEL": "fastest"})
    assert q.returncode == 1 and "ATTN_BAD_PARAM" in q.stderr and "'fastest'" in q.stderr, q.stderr


def test_missing_and_corrupt_files_exit_1(tmp_path, ckpt):
    data = ckpt.read_bytes()
    files = {"missing": tmp_path / "nope.safetensors", "empty": tmp_path / "empty",
             "directory": tmp_path, "garbage": tmp_path / "garbage",
             "header-too-long": tmp_path / "long", "flipped": tmp_path / "flipped"}
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(os.urandom(5000))
    files["header-too-long"].write_bytes((10**12).to_bytes(8, "little") + data[8:])
    flipped = bytearray(data)
    flipped[20] ^= 0x40
    files["flipped"].write_bytes(bytes(flipped))
    for cut in range(0, len(data), max(1, len(data) // 40)):
        f = tmp_path / f"cut{cut}"
        f.write_bytes(data[:cut])
        files[f"truncated at {cut}"] = f
    for what, f in files.items():
        for cmd in (["info"], ["eval", "--n", "1"], ["translate", "1/2/2003"]):
            p = run(cmd[0], "--model", str(f), *cmd[1:])
            assert p.returncode == 1, (what, cmd, p.returncode, p.stdout, p.stderr)
            assert "cannot load" in p.stderr and "ATTN_" in p.stderr, (what, p.stderr)


def test_unwritable_outputs_fail_before_work(tmp_path, ckpt):
    """An output under a file (not a directory) is refused at once, exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    p = run("train", "--steps", "1000000", "--out", str(blocker / "m.safetensors"), *TINY)
    assert p.returncode == 1 and "cannot write to directory" in p.stderr, p.stderr
    assert "trained" not in p.stdout
    p = run("translate", "--model", str(ckpt), "--maps", str(blocker / "maps"), "1/2/2003")
    assert p.returncode == 1, p.stderr


def test_train_info_translate_resume(tmp_path, ckpt):
    p = run("info", "--model", str(ckpt))
    assert p.returncode == 0 and '"d_model": 16' in p.stdout and "optimiser steps: 3" in p.stdout
    maps = tmp_path / "maps"
    p = run("translate", "--model", str(ckpt), "--maps", str(maps), "--beam", "3",
            "March 3, 2001", "the 1st of May 1999")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(" -> ") == 2
    for png in sorted(maps.glob("*.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = run("translate", "--model", str(ckpt), "x" * 49)
    assert p.returncode == 1 and "1 to 48 characters" in p.stderr
    out = tmp_path / "resumed.safetensors"
    p = run("train", "--resume", str(ckpt), "--steps", "5", "--out", str(out), "--quiet",
            "--eval-n", "3", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert "trained 2 steps" in p.stdout
    p = run("info", "--model", str(out))
    assert "optimiser steps: 5" in p.stdout
