"""scale.py: the size presets of `tools/bench/run --scale`, their FLOP count, the machine's peak,
a run-time estimate and the plot's data (imported by tools/bench/run; no torch needed).

Each family grows in 4 sizes to ~10-15M parameters (issue 12). A preset is the family's zoo cfg
plus overrides; the steps shrink as the models grow so that every row takes a comparable time
(FAMILY_STEPS where a family's steps are too short for that)
(the first 20 steps of each run are warm-up and not timed, as for the zoo rows).

FLOPs (the "model FLOPs" of PaLM / nanoGPT's MFU, stated in every row as `flops_formula`):
    per predicted token = 6 x dense parameters (2 forward + 4 backward per weight)
                          + attention: 12 x layers x T x d (QK^T and AV, forward and backward,
                            over the full T x T, as PaLM counts it; the causal half is not
                            subtracted, so both sides are credited with the same work)
    dense parameters    = all parameters minus the tables that are only gathered, never
                          multiplied: the input embedding V x embed (mlp, rnn, lstm, gru, hybrid,
                          wordlstm) and the transformer's positions block x d_model (its token
                          embedding is the tied output layer, a product).
achieved GFLOP/s = FLOPs per token x tokens/s; fraction of peak = that / the FMA peak that
`bench-gemm --peak-only --threads K` measures at the start of the run (K = --threads).
"""
import json
import math
import os
import subprocess
import sys

# Ours as PyTorch computes it (see run's FAIRNESS): no peepholes, the cuDNN GRU.
_LSTM = ["model.peephole=false"]
_GRU = ["model.form=cudnn"]
# Word-level Penn Treebank (data/fetch ptb): 10,000 words with <unk> and <eos>, the PTB softmax.
_PTB = ["data.path=../data/ptb/ptb.train.txt", "data.valid=../data/ptb/ptb.valid.txt", "data.tokenizer=word"]


def _h(cfg, extra, key, values, fmt=None):
    return [(f"{cfg}-{key[0]}{v}", extra + (fmt(v) if fmt else [f"model.{key}={v}"])) for v in values]


# family -> (zoo cfg, [(label, overrides)] x 4, smallest first)
FAMILIES = {
    # Bengio's MLP: hidden 512 -> 4096; the embedding grows too (context 16 x embed is the
    # input width), or the largest would stay at 2.4M parameters.
    "mlp": ("mlp", [("mlp-h512", ["model.hidden=512", "model.embed=32"]),
                    ("mlp-h1024", ["model.hidden=1024", "model.embed=64"]),
                    ("mlp-h2048", ["model.hidden=2048", "model.embed=96"]),
                    ("mlp-h4096", ["model.hidden=4096", "model.embed=192"])]),
    "rnn": ("rnn", _h("rnn", [], "hidden", [256, 512, 1024, 2048])),
    "lstm": ("lstm", _h("lstm", _LSTM, "hidden", [256, 512, 768, 1024])),
    "gru": ("gru", _h("gru", _GRU, "hidden", [256, 512, 768, 1024])),
    # d_model 128 -> 512, block 64 -> 256; the third is the 10.8M row.
    "transformer": ("transformer", [
        ("transformer-d128", []),  # transformer.cfg: 4 layers, 4 heads, d_ff 512, block 64, batch 12
        ("transformer-d256", ["model.d_model=256", "model.d_ff=1024", "model.heads=4", "model.layers=4",
                              "train.block=128", "train.batch=16"]),
        ("transformer-d384", ["model.d_model=384", "model.d_ff=1536", "model.heads=6", "model.layers=6",
                              "train.block=256", "train.batch=8"]),
        ("transformer-d512", ["model.d_model=512", "model.d_ff=2048", "model.heads=8", "model.layers=4",
                              "train.block=256", "train.batch=8"])]),
    # GRU states + causal self-attention over them: heads of 64.
    "hybrid": ("hybrid", [(f"hybrid-h{h}", [f"model.hidden={h}", f"model.heads={h // 64}"])
                          for h in (256, 512, 1024, 1280)]),
    # The word-level LSTM (Zaremba et al. 2014's setting): 2 layers, embed = hidden, 10k softmax.
    "wordlstm": ("lstm", [(f"wordlstm-h{h}", _LSTM + _PTB + [f"model.hidden={h}", f"model.embed={h}"])
                          for h in (128, 256, 384, 512)]),
}
STEPS = [200, 100, 60, 40]  # per size index: 180, 80, 40, 20 timed steps
# The MLP's steps take 2-33 ms: at the default steps its rows timed 0.3-0.7 s, short enough for
# one busy moment of the VM to move a ratio from 2.0 to 1.0 (mlp-h512 in 2026-12-03-scale.jsonl,
# pairs 0.38 / 3.28 / 1.01). These give every MLP row about 2 s or more of timed steps.
FAMILY_STEPS = {"mlp": [1000, 600, 300, 120]}
EVAL_TOKENS = 8192  # validation at the end on this many tokens (a loss check, not the benchmark)


def presets(families, sizes):
    """[(family, size 1-4, label, zoo cfg name, overrides, default steps)] in run order."""
    out = []
    for f in families:
        cfg, ps = FAMILIES[f]
        for s in sizes:
            label, over = ps[s - 1]
            out.append((f, s, label, cfg, list(over), FAMILY_STEPS.get(f, STEPS)[s - 1]))
    return out


def flops_per_token(family, conf):
    """(dense params, FLOPs per predicted token, formula) from ours' config event
    (params, vocab and the resolved cfg)."""
    c, P, V = conf.get("cfg", {}), conf.get("params"), conf.get("vocab")
    if P is None or V is None:
        return None, None, None
    mtype = c.get("model.type", family)
    if mtype == "transformer":
        L, d, T = c["model.layers"], c["model.d_model"], c["train.block"]
        emb = T * d + (0 if c.get("model.tie", True) else V * d)
        dense = P - emb
        return dense, 6 * dense + 12 * L * T * d, f"6 x (params - block x d_model) + 12 x layers x block x d_model"
    dense = P - V * c["model.embed"]
    if mtype == "hybrid":
        T, H = c["train.block"], c["model.hidden"]
        return dense, 6 * dense + 12 * T * H, "6 x (params - vocab x embed) + 12 x block x hidden"
    return dense, 6 * dense, "6 x (params - vocab x embed)"


def product_shapes(family, conf):
    """The dense products of one training step as [((M, N, K), count)], each the forward
    (M x K) (K x N) whose dX and dW forms bench-gemm --shape runs beside it; None for the
    families whose products are not the step's (the recurrent ones' go one timestep at a time).
    The transformer: per layer the packed q k v projection, the output projection and the GELU
    block's two, then the tied output layer; M = batch x block tokens."""
    c, V = conf.get("cfg", {}), conf.get("vocab")
    if c.get("model.type", family) != "transformer" or V is None:
        return None
    L, d, ff = c["model.layers"], c["model.d_model"], c["model.d_ff"]
    M = c["train.batch"] * c["train.block"]
    return [((M, 3 * d, d), L), ((M, d, d), L), ((M, ff, d), L), ((M, d, ff), L), ((M, V, d), 1)]


def measure_products(build, threads, shapes):
    """ms per step of the step's dense products alone (bench-gemm --shape: each shape's forward,
    dX and dW forms, best of its batches, 2 x M x N x K / GFLOP/s each), or None without
    bench-gemm. What the step would take if nothing else cost time and every product ran as it
    does alone, warm: the floor under our ms/step."""
    if not shapes:
        return None
    args = ["--threads", str(threads)]
    for (m, n, k), _ in shapes:
        args += ["--shape", f"{m},{n},{k}"]
    cases = [x for x in run_bench_gemm(build, args) or [] if "m" in x]
    if len(cases) != 3 * len(shapes):
        return None
    ms = 0.0
    for i, (_, count) in enumerate(shapes):
        for c in cases[3 * i:3 * i + 3]:
            ms += count * 2e-6 * c["m"] * c["n"] * c["k"] / c["gflops"]
    return round(ms, 2)


def run_bench_gemm(build, args):
    """The JSON lines build/tools/bench-gemm ARGS prints, or None when it is not built or fails
    (its stderr then goes to ours)."""
    exe = os.path.join(build, "tools", "bench-gemm")
    if not os.access(exe, os.X_OK):
        return None
    p = subprocess.run([exe] + args, capture_output=True, text=True)
    if p.returncode or p.stderr.strip():
        print(f"bench: bench-gemm {' '.join(args)}: {p.stderr.strip()[-300:] or f'exit {p.returncode}'}",
              file=sys.stderr)
    return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")] if p.returncode == 0 else None


def measure_peak(build, threads):
    """The FMA peak from bench-gemm --peak-only: {"isa", "gflops_1", "threads", "gflops"} or None."""
    lines = run_bench_gemm(build, ["--peak-only", "--threads", str(threads)])
    return next((x for x in lines or [] if x.get("peak")), None)


def estimate_seconds(rows, peak_gflops, repeat, torch):
    """A rough wall time of the sweep: every step at 40% (ours) and 25% (torch) of the peak, the
    validation at a third of a training token's cost, plus each run's fixed cost (start-up, data,
    validation set-up: ~3 s ours, ~10 s torch's with `import torch`; the quick sweep took 2.5 min
    where its compute alone is ~30 s). The order of magnitude, not a promise."""
    total = 0.0
    for r in rows:
        fpt, tokens_step, steps = r["flops_per_token"], r["tokens_per_step"], r["steps"]
        if not fpt:
            continue
        work = fpt * (tokens_step * steps + EVAL_TOKENS / 3)
        total += repeat * (work / (0.40 * peak_gflops * 1e9) + 3)
        if torch:
            total += repeat * (work / (0.25 * peak_gflops * 1e9) + 10)
    return total


def param_estimate(family, over, base):
    """Parameters and FLOPs per token of a preset from its cfg values alone (before any run): for the
    estimate. base: the zoo cfg's [model]/[train] values as a dict of 'section.key' -> str."""
    v = dict(base)
    for o in over:
        k, x = o.split("=", 1)
        v[k] = x
    g = lambda k, d=0: int(float(v.get(k, d)))
    V = 10000 if v.get("data.tokenizer") == "word" else 65
    B, T = g("train.batch", 64), g("train.block", 64)
    mtype = v.get("model.type", family)
    if mtype == "mlp":
        n, E, H = g("model.context", 16), g("model.embed", 32), g("model.hidden", 512)
        dense = n * E * H + H + H * V + V
        return dense + V * E, 6 * dense, B * (T - n + 1)
    if mtype == "transformer":
        L, d, ff = g("model.layers", 4), g("model.d_model", 128), g("model.d_ff", 512)
        dense = L * (4 * d * d + 4 * d + 2 * d * ff + d + ff + 4 * d) + V * d + 2 * d
        return dense + T * d, 6 * dense + 12 * L * T * d, B * T
    E, H, L = g("model.embed", 64), g("model.hidden", 256), g("model.layers", 1)
    gates = {"rnn": 1, "lstm": 4, "gru": 3, "hybrid": 3}[mtype]
    dense = sum(gates * ((E if l == 0 else H) * H + H * H + 2 * H) for l in range(L)) + H * V + V
    extra = 0
    if mtype == "hybrid":
        dense += 4 * H * H + 4 * H + 2 * H
        extra = 12 * T * H
    return dense + V * E, 6 * dense + extra, B * T


def cfg_values(path):
    """'section.key' -> value of a cfg file (comments stripped), for param_estimate."""
    out, sec = {}, ""
    with open(path) as f:
        for line in f:
            line = line.split("#")[0].split(";")[0].strip()
            if line.startswith("["):
                sec = line.strip("[]").strip()
            elif "=" in line:
                k, x = line.split("=", 1)
                out[f"{sec}.{k.strip()}"] = x.strip()
    return out


# ---- the plot's data ------------------------------------------------------------------------

def write_plot_data(jsonl, out):
    """From the scale rows of a bench jsonl: one block per family (gnuplot `index`), each
    starting with a title line, then `params ratio tapezoo_peak_frac torch_peak_frac` per size.
    The last row of each preset label wins (a later run of the same preset replaces it).
    Returns the families written and whether any of their rows has a ratio (a reference ran)."""
    rows = {}
    with open(jsonl) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("family") in FAMILIES and r.get("preset") and r.get("tapezoo", {}).get("tokens_per_s"):
                rows[r["preset"]] = r
    fams = []
    with open(out, "w") as f:
        for fam in FAMILIES:
            rs = sorted((r for r in rows.values() if r["family"] == fam), key=lambda r: r["params"])
            if not rs:
                continue
            if fams:
                f.write("\n\n")
            fams.append(fam)
            f.write(f'"{fam}" "ratio" "tapezoo" "torch"\n')
            for r in rs:
                pf = r.get("peak_frac", {})
                cells = [r["params"], r.get("ratio"), pf.get("tapezoo"), pf.get("torch")]
                f.write(" ".join("NaN" if x is None else str(x) for x in cells) + "\n")
    return fams, any(r.get("ratio") for r in rows.values())
