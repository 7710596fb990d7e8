"""The `attn` program: --help on every command, clear messages and exit status 2
on bad usage, 1 (never a crash) on missing or corrupt files, `attn info`
without a model (the CPU and the kernels, ATTN_KERNEL), a small
train -> info -> translate (with maps) -> resume round trip, and the file
rules: outputs that are not regular files refused and left untouched,
symbolic links followed, inputs that are not regular files refused without
hanging, bounded --file lines, read errors and path limits."""
import glob
import os
import socket
import stat
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


# The attention slots are listed per dtype combination (the mixed ones: forward only).
SDPA_SLOTS = ["sdpa.forward", "sdpa.decode", "sdpa.weights", "sdpa.delta", "sdpa.dkdv", "sdpa.dq",
              "sdpa.fused_bwd"]
SLOTS = [f"{s}.{d}" for s in SDPA_SLOTS
         for d in ["f32", "bf16", "f16"] + (["f32+bf16kv", "f32+f16kv"] if s in SDPA_SLOTS[:2] else [])]
SLOTS += ["score.additive", "score.proj", "nn.gemm", "nn.gemm_bf16", "nn.layernorm_row", "nn.gelu_row", "nn.softmax_row", "nn.swiglu_row", "quant.matmul"]


def test_info_without_model_describes_cpu_and_kernels():
    p = run("info", env={"ATTN_KERNEL": ""})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and lines[1].startswith("features:"), p.stdout
    for slot in SLOTS:
        assert sum(line.startswith(f"slot {slot}: ") for line in lines) == 1, (slot, p.stdout)
    assert sum(line.startswith("slot ") for line in lines) == len(SLOTS), p.stdout
    assert "kernel: auto: " in p.stdout
    isa = {line.split()[1]: "): available" in line for line in lines if line.startswith("isa ")}
    assert set(isa) == {"portable", "avx2", "avx512", "avx512bf16", "amx"} and isa["portable"], p.stdout
    # Every choice through the environment: forced, or refused naming what is missing.
    for name, key in (("tiled", "portable"), ("avx2", "avx2"), ("avx512", "avx512"), ("avx512bf16", "avx512bf16"),
                      ("amx", "amx")):
        q = run("info", env={"ATTN_KERNEL": name})
        if isa[key]:
            assert q.returncode == 0 and f"kernel: {name} (forced)" in q.stdout, (name, q.stderr)
            assert f"slot sdpa.forward.bf16: {key} (forced" in q.stdout, q.stdout
        else:
            assert q.returncode == 1 and "ATTN_UNSUPPORTED" in q.stderr, (name, q.stderr)
            assert f"ATTN_KERNEL={name} is not available" in q.stderr, q.stderr
    q = run("info", env={"ATTN_KERNEL": "ref"})
    assert q.returncode == 0 and "slot sdpa.forward.f16: ref (forced" in q.stdout, q.stderr
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


# ---- files: what the program reads and writes (docs/cli.md, "Files") ----

def run_bytes(*args, stdin=None, input=None, timeout=60):
    p = subprocess.run([_binary(), *args], stdin=stdin, input=input, capture_output=True,
                       timeout=timeout)
    assert p.returncode >= 0, f"attn {args} died with signal {-p.returncode}"
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def _make_special(kind, path):
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()
    else:
        os.mkdir(path)
    return stat.S_IFMT(os.lstat(path).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
def test_outputs_that_are_not_files_are_refused(tmp_path, ckpt, kind):
    """--out naming a FIFO, socket or directory (or a link to one) fails at
    once with exit 1 and leaves it as it was; --steps is huge, so training
    first would time out."""
    node = tmp_path / kind
    fmt = _make_special(kind, node)
    link = tmp_path / "link"
    link.symlink_to(node)
    for out in (node, link):
        p = run("train", "--steps", "1000000", "--out", str(out), *TINY, timeout=60)
        assert p.returncode == 1, (out, p.stdout, p.stderr)
        assert "not a regular file; it is left untouched (ATTN_IO)" in p.stderr, p.stderr
        assert "trained" not in p.stdout
        assert stat.S_IFMT(os.lstat(node).st_mode) == fmt and link.is_symlink()
    maps = tmp_path / "maps"
    maps.mkdir()
    _make_special(kind, maps / "01.png")
    p = run("translate", "--model", str(ckpt), "--maps", str(maps), "1/2/2003", timeout=60)
    assert p.returncode == 1 and "not a regular file" in p.stderr, p.stderr
    assert stat.S_IFMT(os.lstat(maps / "01.png").st_mode) == fmt
    assert not (maps / "01.png.tmp").exists()


def test_output_symlink_is_followed(tmp_path):
    """A link is kept; the file it names is replaced (mode kept), and no
    temporary file is left in either directory."""
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "model.safetensors"
    real.write_bytes(b"old")
    os.chmod(real, 0o600)
    link = tmp_path / "link.safetensors"
    link.symlink_to(os.path.join("real", "model.safetensors"))
    p = run("train", "--steps", "2", "--out", str(link), *TINY)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "model.safetensors")
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
    p = run("info", "--model", str(real))
    assert p.returncode == 0 and "optimiser steps: 2" in p.stdout, p.stderr
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
def test_inputs_that_are_not_files_do_not_hang(tmp_path, kind):
    """A FIFO without a writer (or a socket, a directory) as any input: exit
    1 at once, naming what it is."""
    node = tmp_path / kind
    _make_special(kind, node)
    what = {"fifo": "a FIFO", "socket": "a socket", "directory": "a directory"}[kind]
    for args in (["info", "--model", node], ["eval", "--model", node, "--n", "1"],
                 ["translate", "--model", node, "1/2/2003"], ["train", "--resume", node, *TINY],
                 ["embed", "--file", node], ["similarity", "--query", "q", "--file", node]):
        rc, out, err = run_bytes(*map(str, args), timeout=30)
        assert rc == 1, (args, out, err)
        assert f"it is {what}, not a regular file (ATTN_IO)" in err, (args, err)


def test_line_reader_limits_and_errors(tmp_path):
    """--file lines: at most 1 MiB, no NUL byte, and a read error is an error
    (exit 1, naming the file and the line), from a file or standard input."""
    long = tmp_path / "long.txt"
    long.write_bytes(b"short\n" + b"x" * ((1 << 20) + 1) + b"\n")
    rc, out, err = run_bytes("embed", "--file", str(long))
    assert rc == 1 and f"'{long}' line 2 is longer than 1048576 bytes (ATTN_BAD_FILE)" in err, err
    assert out == ""
    rc, out, err = run_bytes("similarity", "--query", "q", "--file", "-",
                             input=b"y" * (3 << 20))
    assert rc == 1 and "'(standard input)' line 1 is longer than 1048576 bytes" in err, err
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"one\ntw\x00o\n")
    rc, out, err = run_bytes("embed", "--file", str(nul))
    assert rc == 1 and "line 2 contains a NUL byte" in err, err
    fd = os.open(tmp_path, os.O_RDONLY)  # reading a directory fails: EISDIR
    try:
        rc, out, err = run_bytes("embed", "--file", "-", stdin=fd)
    finally:
        os.close(fd)
    assert rc == 1 and "cannot read '(standard input)' at line 1: Is a directory (ATTN_IO)" in err, err


def test_path_limits(tmp_path, ckpt):
    """Over-long paths are refused before anything is created; a long path
    within the limit is created whole (not cut at 1023 bytes)."""
    deep = tmp_path / "deep"
    too_long = str(deep) + "/abcdefghij" * 420 + "/m.safetensors"
    long_name = str(deep / ("n" * 256) / "m.safetensors")
    for out, needle in ((too_long, "at most 4095 are accepted"), (long_name, "at most 255 are accepted")):
        p = run("train", "--steps", "1000000", "--out", out, *TINY, timeout=60)
        assert p.returncode == 1 and needle in p.stderr and "(ATTN_BAD_PARAM)" in p.stderr, p.stderr
        assert not deep.exists()
    p = run("translate", "--model", str(ckpt), "--maps", too_long, "1/2/2003")
    assert p.returncode == 1 and "--maps: the path is" in p.stderr, p.stderr
    assert not deep.exists()
    fits = str(deep) + "/abcdefghij" * 200 + "/m.safetensors"
    assert 1023 < len(fits) < 4095
    p = run("train", "--steps", "1", "--out", fits, *TINY)
    assert p.returncode == 0, p.stderr
    assert os.path.isfile(fits)
