#!/usr/bin/env python3
"""The mutation check (make mutants; docs/testing.md, 'Mutants').

Reads the list of injected bugs (tests/mutants/mutants.txt), and for each:
applies it to a scratch copy of the tree (build-mutants/tree, never the
working tree), rebuilds, runs the C runner and, if that passes, the pytest
suite, each with a timeout, and records which tests caught it. Then prints
a table and writes build-mutants/report.md and report.json.

The run fails (exit 1) if the unmutated copy does not pass, or if any mutant
survives, does not build, or is stale: its original text is not found
exactly once in its file any more (the list must follow the code).

    .venv/bin/python tests/mutants/run.py [--only NAME ...] [--timeout S]
        [--configs N] [--grid-configs N] [--tests TEST-OR-TIER ...] [--skip TEST ...]
        [--jobs N] [--both] [--skip-baseline]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---- the list ------------------------------------------------------------------------------

FIELDS = ("file", "what", "old", "new")


def unescape(s):
    """The list's old/new text: \\n is a newline, \\\\ a backslash."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def parse_list(path):
    """[name] blocks of 'key: value' lines (file, what, old, new); # comments."""
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line.strip())
            if m:
                cur = {"name": m.group(1), "line": n}
                mutants.append(cur)
                continue
            key, sep, value = line.partition(": ")
            if cur is None or not sep or key not in FIELDS or key in cur:
                sys.exit("%s:%d: expected '[name]' or one of %s as 'key: value'" % (path, n, FIELDS))
            cur[key] = value if key == "what" else unescape(value)
    names = [m["name"] for m in mutants]
    for m in mutants:
        missing = [k for k in FIELDS if k not in m]
        if missing:
            sys.exit("%s:%d: mutant %s lacks %s" % (path, m["line"], m["name"], missing))
        if names.count(m["name"]) > 1:
            sys.exit("%s: mutant name %s is used twice" % (path, m["name"]))
        if m["old"] == m["new"]:
            sys.exit("%s:%d: mutant %s changes nothing" % (path, m["line"], m["name"]))
    return mutants


def locate(tree, m):
    """'ok', or why the mutant cannot be applied to tree."""
    path = os.path.join(tree, m["file"])
    if not os.path.exists(path):
        return "stale: %s does not exist" % m["file"]
    with open(path, encoding="utf-8") as f:
        n = f.read().count(m["old"])
    if n == 0:
        return "stale: the original text is not in %s" % m["file"]
    if n > 1:
        return "ambiguous: the original text occurs %d times in %s" % (n, m["file"])
    return "ok"


# ---- the scratch tree ----------------------------------------------------------------------

def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(ROOT, p))]


def remove_untracked(tree, keep):
    """Deletes the files of tree (outside its build/ and .venv) whose paths
    are not in keep: files the working tree no longer has (the build globs
    its sources, so a deleted file would still be compiled)."""
    removed = 0
    for top, dirs, files in os.walk(tree):
        if top == tree:
            dirs[:] = [d for d in dirs if d not in ("build", ".venv")]
        for name in files:
            path = os.path.join(top, name)
            if os.path.relpath(path, tree) not in keep:
                os.remove(path)
                removed += 1
    return removed


def sync_tree(tree):
    """Copies the working tree's files into tree, touching only those that
    differ (so the scratch build stays incremental between runs), and
    removes those it no longer has. Returns the count of files changed."""
    venv, link = os.path.join(ROOT, ".venv"), os.path.join(tree, ".venv")
    if os.path.isdir(venv) and not os.path.lexists(link):  # the programs find models there
        os.symlink(os.path.realpath(venv), link)
    rels = tracked_files()
    copied = remove_untracked(tree, set(rels))
    for rel in rels:
        src, dst = os.path.join(ROOT, rel), os.path.join(tree, rel)
        with open(src, "rb") as f:
            data = f.read()
        if os.path.exists(dst):
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
        copied += 1
    return copied


def run(cmd, cwd, timeout, env=None, log=None):
    """(returncode or 'timeout', output) of cmd in its own process group."""
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        rc = "timeout"
    out = out.decode(errors="replace")
    if log:
        with open(log, "a") as f:
            f.write("$ %s  (%.0f s, exit %s)\n%s\n" % (" ".join(cmd), time.time() - t0, rc, out))
    return rc, out


# ---- the suites ----------------------------------------------------------------------------

def runner(tree):
    return os.path.join(tree, "build", "tests", "attn_tests")


def c_selection(tree, args):
    """The C runner's arguments: args.tests (tests or tiers; all if empty)
    less the tests named in args.skip, as the runner lists them."""
    if not args.skip:
        return args.tests
    out = subprocess.run([runner(tree), "--list"], check=True, capture_output=True).stdout
    rows = [line.split() for line in out.decode().splitlines() if len(line.split()) == 2]
    unknown = set(args.skip) - {name for _, name in rows}
    if unknown:
        sys.exit("mutants: --skip names no test %s" % sorted(unknown))
    return [name for tier, name in rows if name not in args.skip
            and (not args.tests or tier in args.tests or name in args.tests)]


def c_suite(tree, args, log):
    """Names of the C runner's failed tests ([] if it passed)."""
    rc, out = run([runner(tree), "--configs", str(args.configs)] + args.c_tests, tree,
                  args.timeout, log=log)
    failed = re.findall(r"^FAIL (\S+)", out, re.M)
    if rc == "timeout":
        return failed + ["attn_tests: timeout after %d s" % args.timeout]
    if rc != 0 and not failed:
        last = re.findall(r"^(?:PASS|FAIL) (\S+)", out, re.M)
        return ["attn_tests: exit %s after %s" % (rc, last[-1] if last else "no test")]
    return failed


def py_suite(tree, args, log):
    """Node ids of the failed pytest tests ([] if the suite passed)."""
    env = dict(os.environ, ATTN_GRID_CONFIGS=str(args.grid_configs))
    build = os.path.join(tree, "build")
    env["ATTN_LIB"] = os.path.join(build, "libattn.so")
    env["ATTN_NN_LIB"] = os.path.join(build, "libattn_nn.so")
    rc, out = run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   "python/tests"], tree, args.timeout, env=env, log=log)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    if rc == "timeout":
        return failed + ["pytest: timeout after %d s" % args.timeout]
    if rc != 0 and not failed:
        return ["pytest: exit %s" % rc]
    return failed


def build(tree, args, log):
    bdir = os.path.join(tree, "build")
    if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
        rc, _ = run(["cmake", "-S", tree, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release"], tree,
                    args.timeout, log=log)
        if rc != 0:
            return False
    rc, _ = run(["cmake", "--build", bdir, "-j%d" % args.jobs], tree, 4 * args.timeout, log=log)
    return rc == 0


def test(tree, args, log):
    """(suite, failed names) of the first suite that fails, or (None, [])."""
    caught = []
    failed = c_suite(tree, args, log)
    if failed:
        caught.append(("attn_tests", failed))
        if not args.both:
            return caught
    failed = py_suite(tree, args, log)
    if failed:
        caught.append(("pytest", failed))
    return caught


# ---- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", default=os.path.join(HERE, "mutants.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build-mutants"))
    ap.add_argument("--only", nargs="*", default=None, help="run only these mutants")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per suite and mutant")
    ap.add_argument("--configs", type=int, default=1000, help="attn_tests --configs")
    ap.add_argument("--grid-configs", type=int, default=40, help="ATTN_GRID_CONFIGS for pytest")
    ap.add_argument("--tests", nargs="*", default=[],
                    help="attn_tests' tests or tiers to run (default: all)")
    ap.add_argument("--skip", nargs="*", default=[], help="attn_tests' tests not to run")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--both", action="store_true", help="run pytest even if attn_tests caught it")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="do not check that the unmutated copy passes")
    args = ap.parse_args()

    mutants = parse_list(args.list)
    if args.only is not None:
        unknown = set(args.only) - {m["name"] for m in mutants}
        if unknown:
            sys.exit("no mutants named %s" % sorted(unknown))
        mutants = [m for m in mutants if m["name"] in args.only]
    tree = os.path.join(args.out, "tree")
    os.makedirs(tree, exist_ok=True)
    log = os.path.join(args.out, "log.txt")
    open(log, "w").close()
    print("mutants: %d in %s; scratch tree %s (%d files updated); log %s" % (
        len(mutants), os.path.relpath(args.list, ROOT), tree, sync_tree(tree), log), flush=True)

    results = []
    if not build(tree, args, log):
        sys.exit("mutants: the unmutated copy does not build (see %s)" % log)
    args.c_tests = c_selection(tree, args)
    if not args.skip_baseline:
        base = test(tree, argparse.Namespace(**dict(vars(args), both=True)), log)
        if base:
            sys.exit("mutants: the unmutated copy fails %s (see %s)" % (base, log))
        print("baseline: the unmutated copy passes both suites", flush=True)

    for i, m in enumerate(mutants, 1):
        r = {"name": m["name"], "file": m["file"], "what": m["what"]}
        state = locate(ROOT, m)
        if state == "ok":
            state = locate(tree, m)
        if state != "ok":
            r.update(result="stale", detail=state)
        else:
            path = os.path.join(tree, m["file"])
            with open(path, encoding="utf-8") as f:
                original = f.read()
            t0 = time.time()
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(original.replace(m["old"], m["new"]))
                if not build(tree, args, log):
                    r.update(result="no build", detail="the mutated tree does not build")
                else:
                    caught = test(tree, args, log)
                    if caught:
                        r.update(result="caught", detail="; ".join(
                            "%s: %s" % (suite, ", ".join(names[:6]) + (" ..." if len(names) > 6 else ""))
                            for suite, names in caught))
                    else:
                        r.update(result="SURVIVED", detail="every test passed")
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(original)
            r["seconds"] = round(time.time() - t0)
        results.append(r)
        print("[%d/%d] %-34s %-8s %s" % (i, len(mutants), m["name"], r["result"], r["detail"]),
              flush=True)
    build(tree, args, log)  # leave the scratch build unmutated

    caught = sum(r["result"] == "caught" for r in results)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("| mutant | file | injected bug | result | caught by |\n|---|---|---|---|---|\n")
        for r in results:
            f.write("| %s | %s | %s | %s | %s |\n" % (r["name"], r["file"], r["what"], r["result"],
                                                     r["detail"]))
    print("mutants: %d of %d caught" % (caught, len(results)))
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
