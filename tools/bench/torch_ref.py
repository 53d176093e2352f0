#!/usr/bin/python3
"""torch_ref.py: the PyTorch reference of the zoo configs, for tools/bench/run.

    /usr/bin/python3 tools/bench/torch_ref.py CFG [section.key=value ...]

Reads the same cfg file as build/train (same `[section] key = value` format, `#`/`;` comments,
same command-line overrides), builds the same model from plain torch.nn modules, trains it on the
same data with the same batching, optimiser, schedule and clipping (float32), and prints ONE JSON
line with the field names of the trainer's `--json` summary event:

    tokens_per_s, ms_per_step, ms_forward, ms_backward, ms_optimizer   (after 20 warm-up steps)
    final_train_loss (mean since the last log_every boundary), final_val_loss (first eval_tokens
    validation tokens), peak_rss_mb (ru_maxrss), wall_s, params, steps, threads
    + blas, blas_core, blas_threading, blas_config, torch, baseline_rss_mb (RSS after `import torch`)

    /usr/bin/python3 tools/bench/torch_ref.py CFG [overrides] --start CKPT
        starts from the trainer's initial weights (its train.steps=0 run's last.safetensors, same
        cfg and seed) and draws the trainer's random windows (its xoshiro256** stream): the same
        computation as the trainer's up to float rounding, so the losses after the same steps are
        directly comparable (tools/bench/run does this by default)

Models (the trainer's [model] type):
    mlp          Bengio 2003: concat of `context` embeddings -> Linear -> tanh -> Linear
    rnn/lstm/gru nn.Embedding -> nn.RNN/LSTM/GRU (time-major, state carried and detached) -> nn.Linear
    transformer  nanoGPT-style decoder-only, pre-LN, GELU, learned positions, tied weights,
                 hand-written causal attention (torch 1.13 has no F.scaled_dot_product_attention)
    hybrid       nn.Embedding -> nn.GRU/LSTM -> nn.MultiheadAttention (causal) + residual
                 -> nn.LayerNorm -> nn.Linear

What PyTorch cannot express with its own modules is refused, not approximated: LSTM peepholes
(run the trainer and this with model.peephole=false) and the Cho-form GRU (model.form=cudnn).

Defaults are the trainer's (train/setup.c, train/corpus.c, models/*.c), hard-coded below for the
keys this reference uses; keep them in step if those change.
"""
import json
import math
import os
import resource
import sys
import time

# ---------------------------------------------------------------------------------------------
# The cfg: defaults, file, overrides (no torch needed: tools/bench/run imports this part).

DEFAULTS = {
    "train": {"steps": "2000", "batch": "64", "block": "64", "seed": "1337", "threads": "0", "clip": "0",
              "clip_value": "0", "eval_every": "250", "eval_tokens": "0", "patience": "0", "log_every": "10",
              "sample_every": "0", "out_dir": "", "select": "loss", "final": "last", "on_nonfinite": "stop"},
    "optim": {"name": "adam", "lr": "1e-3", "beta1": "0.9", "beta2": "0.999", "eps": "0", "weight_decay": "0",
              "no_decay_embeddings": "false", "momentum": "0", "nesterov": "false", "alpha": "0.99"},
    "schedule": {"kind": "constant", "warmup": "0", "decay_iters": "0", "min_lr": "0", "gamma": "0.5",
                 "every": "1000", "start": "0", "d_model": "0"},
    "data": {"path": None, "valid": "", "test": "", "split": "0.9", "tokenizer": "char", "min_count": "1",
             "bpe_merges": "256",
             # paired data (train/pairs.c tz_pair_keys), read by torch_mt_ref.py
             "kind": "text", "lowercase": "true", "split_punct": "true", "min_len": "1", "max_len": "10",
             "val_split": "0.05", "seed": "0", "bucket": "50", "write_split": "false", "train_size": "0",
             "eval_size": "1000", "test_min_len": "0", "test_max_len": "0"},
    "sample": {"prompt": "\n", "tokens": "200", "temperature": "0.8", "top_k": "0"},
}

_S2S = {"embed": "128", "hidden": "256", "dec_hidden": "256", "form": "cudnn", "readout": "linear",
        "maxout_units": "256", "dropout": "0", "skip_padding": "false"}
_RECURRENT = {"dropout": "0", "residual": "false", "init": "default", "init_scale": "0"}
MODEL_DEFAULTS = {
    "mlp": {"context": "16", "embed": "32", "hidden": "512", "direct": "false", "batchnorm": "false", "dropout": "0",
            "shared_pairs": "auto"},
    "rnn": {"embed": "64", "hidden": "256", "layers": "1", **_RECURRENT},
    "lstm": {"embed": "64", "hidden": "256", "layers": "2", **_RECURRENT, "peephole": "true", "forget_bias": "1"},
    "gru": {"embed": "64", "hidden": "256", "layers": "2", **_RECURRENT, "form": "cho"},
    "transformer": {"layers": "4", "heads": "4", "d_model": "128", "d_ff": "512", "ffn": "gelu", "pre_ln": "true",
                    "positions": "learned", "dropout": "0", "bias": "true", "tie": "true", "init_std": "0.02"},
    "hybrid": {"embed": "64", "hidden": "256", "layers": "1", **_RECURRENT, "cell": "gru", "heads": "4"},
    # translation (models/seq2seq.h S2S_KEYS; the reference is torch_mt_ref.py)
    "rnnsearch": {**_S2S, "score": "additive", "attn_dim": "256"},
    "rnnenc": dict(_S2S),
}
MT_MODELS = {"rnnsearch", "rnnenc"}  # paired data: tools/bench/torch_mt_ref.py
STREAM_MODELS = {"rnn", "lstm", "gru", "hybrid"}  # contiguous streams, state carried (model.h: stream = 1)


class CfgError(Exception):
    pass


def _parse_file(path):
    """[(section, key, value, where)] of a cfg file."""
    out, section = [], ""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            where = f"{path}:{n}"
            for c in "#;":
                if c in line:
                    line = line[: line.index(c)]
            s = line.strip()
            if not s:
                continue
            if s.startswith("["):
                if not s.endswith("]"):
                    raise CfgError(f"{where}: malformed section header '{s}'")
                section = s[1:-1].strip()
                continue
            if "=" not in s:
                raise CfgError(f"{where}: missing '=' in '{s}' (want key = value)")
            k, v = s.split("=", 1)
            if not section:
                raise CfgError(f"{where}: key '{k.strip()}' before any [section]")
            out.append((section, k.strip(), v.strip(), where))
    return out


def _parse_override(arg, i):
    where = f"command line override {i}"
    if "=" not in arg or "." not in arg.split("=", 1)[0]:
        raise CfgError(f"{where}: '{arg}' is not section.key=value")
    lhs, v = arg.split("=", 1)
    s, k = lhs.split(".", 1)
    return s.strip(), k.strip(), v.strip(), where


class Cfg:
    """The resolved configuration: cfg.get(section, key) -> str; typed helpers below."""

    def __init__(self, path, overrides=()):
        self.path = path
        lines = _parse_file(path)
        ovs = [_parse_override(a, i + 1) for i, a in enumerate(overrides)]
        mtype = None
        for s, k, v, _ in lines + ovs:
            if (s, k) == ("model", "type"):
                mtype = v
        if not mtype:
            raise CfgError(f"{path}: [model] type is required")
        if mtype not in MODEL_DEFAULTS:
            raise CfgError(f"{path}: [model] type = '{mtype}' has no PyTorch reference ({', '.join(MODEL_DEFAULTS)})")
        self.type = mtype
        self.v = {s: dict(d) for s, d in DEFAULTS.items()}
        self.v["model"] = {"type": mtype, **MODEL_DEFAULTS[mtype]}
        self.set_keys = set()
        for s, k, val, where in lines + ovs:
            if s not in self.v:
                raise CfgError(f"{where}: unknown section [{s}]")
            if k not in self.v[s]:
                raise CfgError(f"{where}: unknown key '{k}' in [{s}] (for model type {mtype})")
            self.v[s][k] = val
            self.set_keys.add((s, k))
        if self.v["data"]["path"] is None:
            raise CfgError(f"{path}: [data] path is required")

    def str(self, s, k):
        return self.v[s][k]

    def int(self, s, k):
        return int(self.v[s][k])

    def float(self, s, k):
        return float(self.v[s][k])

    def bool(self, s, k):
        t = self.v[s][k]
        if t in ("true", "1", "yes"):
            return True
        if t in ("false", "0", "no"):
            return False
        raise CfgError(f"{self.path}: [{s}] {k} = '{t}' is not true or false")

    def data_path(self, key="path"):
        p = self.v["data"][key]
        return p if os.path.isabs(p) else os.path.join(os.path.dirname(self.path), p)


# ---------------------------------------------------------------------------------------------
# Data: the trainer's char tokenizer (train/vocab.c): byte-level, ids in byte order, built from
# the training split; bytes of the validation text it lacks become <unk> (the last id).

def load_corpus(c):
    tok = c.str("data", "tokenizer")
    if tok == "word":
        return load_words(c)
    if tok != "char":
        raise CfgError(f"{c.path}: [data] tokenizer = '{tok}': the reference does char and word only")
    with open(c.data_path(), "rb") as f:
        text = f.read()
    if c.str("data", "valid"):
        with open(c.data_path("valid"), "rb") as f:
            val = f.read()
        train = text
    else:
        cut = int(len(text) * c.float("data", "split"))
        train, val = text[:cut], text[cut:]
    chars = sorted(set(train))
    lut = [-1] * 256
    for i, ch in enumerate(chars):
        lut[ch] = i
    V = len(chars)
    if any(lut[b] < 0 for b in set(val)):
        V += 1
        lut = [V - 1 if x < 0 else x for x in lut]
    return train, val, lut, V


def encode(torch, data, lut):
    if lut is None:  # words: already ids
        return torch.tensor(data, dtype=torch.long)
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return torch.tensor(lut, dtype=torch.long)[t]


def words_of(text):
    """The trainer's word tokens (train/vocab.c each_word): runs of bytes other than space, tab,
    CR and LF; every LF is the token <eos>."""
    import re
    out = []
    for line in text.split(b"\n"):
        out.extend(w for w in re.split(b"[ \t\r]+", line) if w)
        out.append(b"<eos>")
    out.pop()  # no LF after the last line
    return out


def load_words(c):
    """The trainer's word vocabulary (train/vocab.c build_words): the words of the training split
    seen at least min_count times, most frequent first, ties in order of first appearance
    (<unk> kept whatever its count); <unk> appended when a word was dropped, or when the
    validation or test text has a word the vocabulary lacks. -> (train ids, val ids, None, V)."""
    texts = {}
    for key in ("path", "valid", "test"):
        if c.str("data", key):
            with open(c.data_path(key), "rb") as f:
                texts[key] = f.read()
    if "valid" not in texts:
        cut = int(len(texts["path"]) * c.float("data", "split"))
        texts["path"], texts["valid"] = texts["path"][:cut], texts["path"][cut:]
    train = words_of(texts["path"])
    count, first = {}, {}
    for i, w in enumerate(train):
        count[w] = count.get(w, 0) + 1
        first.setdefault(w, i)
    mc = max(1, c.int("data", "min_count"))
    order = sorted(count, key=lambda w: (-count[w], first[w]))
    vocab = [w for w in order if count[w] >= mc or w == b"<unk>"]
    ids = {w: i for i, w in enumerate(vocab)}
    if len(vocab) < len(order) and b"<unk>" not in ids:
        ids[b"<unk>"] = len(vocab)
    splits = {k: words_of(t) for k, t in texts.items() if k != "path"}
    if b"<unk>" not in ids and any(w not in ids for ws in splits.values() for w in ws):
        ids[b"<unk>"] = len(ids)
    unk = ids.get(b"<unk>", -1)
    return [ids.get(w, unk) for w in train], [ids.get(w, unk) for w in splits["valid"]], None, len(ids)


# ---------------------------------------------------------------------------------------------
# The trainer's checkpoints (safetensors, PyTorch-style names) as this reference's state_dict:
# `--check CKPT` evaluates our trained weights with the PyTorch model, which must give the
# trainer's val loss (the two implement the same function).

def read_safetensors(torch, path, meta=None):
    """{name: float32 tensor}; the header's __metadata__ strings go into `meta` if given."""
    import struct
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    base, out = 8 + n, {}
    for name, t in header.items():
        if name == "__metadata__" and meta is not None:
            meta.update(t)
        if name == "__metadata__" or t.get("dtype") != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(blob[base + a:base + b]), dtype=torch.float32).reshape(t["shape"])
    return out


def load_weights(torch, model, mtype, path):
    """A trainer's checkpoint into model (--check, --start); a file that is not one, or one of
    another model or size, is a one-line CfgError naming it."""
    import struct
    try:
        model.load_state_dict(to_state_dict(torch, mtype, read_safetensors(torch, path)), strict=True)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as e:
        raise CfgError(f"{path}: not a {mtype} checkpoint of this cfg ({str(e).splitlines()[0].strip()})")
    except RuntimeError as e:  # load_state_dict: missing, unexpected or mis-shaped tensors
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        raise CfgError(f"{path}: not a checkpoint of this cfg's {mtype} ({lines[1] if len(lines) > 1 else lines[0]})")


def to_state_dict(torch, mtype, w):
    """Our parameter names -> this reference's state_dict keys."""
    sd = {}
    if mtype == "mlp":
        ren = {"C.": "C.", "H.": "hid.", "U.": "out.", "W.": "direct.", "bn.": "bn."}
        for k, v in w.items():
            for a, b in ren.items():
                if k.startswith(a):
                    sd[b + k[len(a):]] = v
        return sd
    if mtype == "transformer":
        L = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("h."))
        for k in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"):
            if k in w:
                sd[k.replace("lm_head", "head")] = w[k]
        for l in range(L):
            p, q = f"h.{l}.", f"blocks.{l}."
            for part in ("weight", "bias"):
                if p + "self_attn.q." + part in w:
                    sd[q + "attn.qkv." + part] = torch.cat([w[p + f"self_attn.{x}." + part] for x in "qkv"])
                for a, b in (("self_attn.o.", "attn.o."), ("ffn.w1.", "w1."), ("ffn.w2.", "w2."), ("ln1.", "ln1."),
                             ("ln3.", "ln3.")):
                    if p + a + part in w:
                        sd[q + b + part] = w[p + a + part]
        return sd
    # rnn, lstm, gru, hybrid
    for k, v in w.items():
        if k.startswith("embed."):
            sd["body.emb." + k[6:]] = v
        elif k.startswith("rnn."):
            sd["body." + k] = v
        elif k.startswith(("out.", "ln.")):
            sd[k] = v
    if mtype == "hybrid":
        sd["attn.in_proj_weight"] = torch.cat([w[f"attn.{x}.weight"] for x in "qkv"])
        sd["attn.in_proj_bias"] = torch.cat([w[f"attn.{x}.bias"] for x in "qkv"])
        sd["attn.out_proj.weight"], sd["attn.out_proj.bias"] = w["attn.o.weight"], w["attn.o.bias"]
    return sd


# ---------------------------------------------------------------------------------------------
# The trainer's random stream (--start draws the trainer's batches).

class TrainerRng:
    """autograd/rng.c: xoshiro256** seeded by splitmix64, and tz_rng_uniform. With --start, the
    random windows of train/batcher.c (its stream is seeded with train.seed + 1) are drawn from
    this, so both sides see the same batches in the same order."""
    M = (1 << 64) - 1

    def __init__(self, seed):
        x, self.s = seed & self.M, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & self.M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
            self.s.append(z ^ (z >> 31))

    @classmethod
    def _rotl(cls, x, k):
        return ((x << k) | (x >> (64 - k))) & cls.M

    def u64(self):
        s, M = self.s, self.M
        result = (self._rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53


# ---------------------------------------------------------------------------------------------
# The BLAS this process actually loaded.

def blas_info(torch):
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(p)
                if ("blas" in base or "lapack" in base or "mkl" in base) and p not in paths:
                    paths.append(p)
    except OSError:
        pass
    real = []
    for p in paths:
        r = os.path.realpath(p)
        if r not in real:
            real.append(r)
    core = threading = None
    for p in real:
        if "openblas" in os.path.basename(p):
            try:
                import ctypes
                lib = ctypes.CDLL(p)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                core = lib.openblas_get_corename().decode()
                par = {0: "sequential", 1: "pthreads", 2: "openmp"}.get(lib.openblas_get_parallel(), "?")
                threading = f"{par}, {lib.openblas_get_num_threads()} threads ({lib.openblas_get_config().decode()})"
            except (OSError, AttributeError):
                pass
            break
    cfg_line, capability = "", None
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:  # ATen's own vectorised kernels (ATEN_CPU_CAPABILITY)
            capability = line.split(":", 1)[1].strip()
        for part in line.replace(",", " ").split():
            if part.startswith("BLAS_INFO=") or part.startswith("LAPACK_INFO="):
                cfg_line += part + " "
    return {"blas": ", ".join(real) or "none found in /proc/self/maps", "blas_core": core,
            "blas_threading": threading, "blas_config": cfg_line.strip(), "cpu_capability": capability}


class StepTimes:
    """The loop's clocks, as train/loop.c keeps them: forward, backward and optimiser seconds and
    tokens of the steps after the first `warmup`; when no step got past it, all steps count."""

    def __init__(self, warmup):
        self.warmup = warmup
        self.fwd = self.bwd = self.opt = self.train = self.all = 0.0
        self.steps = self.tokens = self.tokens_all = self.steps_all = 0

    def add(self, step, t0, t1, t2, t3, n_tok):  # step: 1-based, after the optimiser step
        self.all += t3 - t0
        self.tokens_all += n_tok
        self.steps_all += 1
        if step > self.warmup:
            self.fwd += t1 - t0
            self.bwd += t2 - t1
            self.opt += t3 - t2
            self.train += t3 - t0
            self.steps += 1
            self.tokens += n_tok

    def tokens_per_s(self):
        return self.tokens / self.train if self.train > 0 else 0.0

    def summary(self):
        """tokens_per_s and ms_per_step / forward / backward / optimizer for the summary line."""
        timed = self.steps > 0
        steps, train, tokens = (self.steps, self.train, self.tokens) if timed else \
            (self.steps_all, self.all, self.tokens_all)
        ms = lambda t: round(1e3 * t / steps, 3) if steps else 0.0  # noqa: E731
        return {"tokens_per_s": round(tokens / train, 1) if train > 0 else 0.0, "ms_per_step": ms(train),
                "ms_forward": ms(self.fwd), "ms_backward": ms(self.bwd), "ms_optimizer": ms(self.opt)}


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


# ---------------------------------------------------------------------------------------------

def main(argv):
    def take(flag, what):  # FLAG PATH out of argv: PATH, or None without FLAG
        nonlocal argv
        if flag not in argv:
            return None
        i = argv.index(flag)
        if i + 1 >= len(argv):
            raise CfgError(f"{flag} needs a checkpoint ({what})")
        path, argv = argv[i + 1], argv[:i] + argv[i + 2:]
        return path

    check = take("--check", "e.g. <run dir>/last.safetensors")
    start = take("--start", "the trainer's train.steps=0 run: <run dir>/last.safetensors")
    args = [a for a in argv if a not in ("--json", "-v", "--foreach")]
    verbose = "-v" in argv
    foreach = "--foreach" in argv  # torch.optim's multi-tensor path (1.13's default on CPU: off)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    cfg_path, overrides = args[0], args[1:]
    for a in overrides:
        if "=" not in a:
            raise CfgError(f"'{a}' is not section.key=value")
    c = Cfg(cfg_path, overrides)
    if c.type in MT_MODELS:
        raise CfgError(f"[model] type = {c.type} translates: its reference is tools/bench/torch_mt_ref.py")
    t_start = time.perf_counter()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    baseline_rss = rss_mb()
    threads = c.int("train", "threads") or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    seed = c.int("train", "seed")
    torch.manual_seed(seed)
    mtype = c.type
    stream = mtype in STREAM_MODELS

    train_b, val_b, lut, V = load_corpus(c)
    train_ids, val_ids = encode(torch, train_b, lut), encode(torch, val_b, lut)
    steps, B, T = c.int("train", "steps"), c.int("train", "batch"), c.int("train", "block")
    eval_every, log_every = c.int("train", "eval_every"), c.int("train", "log_every")
    eval_tokens = c.int("train", "eval_tokens")
    n_val = len(val_ids)
    eval_n = eval_tokens if 0 < eval_tokens < n_val else n_val

    # ----- models ---------------------------------------------------------------------------
    def mb(k):
        return c.bool("model", k)

    def mi(k):
        return c.int("model", k)

    def mf(k):
        return c.float("model", k)

    class WindowLinear(torch.autograd.Function):
        """y_r = b + sum_p C(w_{r,p}) W_p^T with C(w) W_p^T computed once per distinct pair (p, w)
        of the batch, as nn/window_linear.c does: PyTorch's best form of the pairs' way that we
        found (autograd through W's per-position column slices zero-fills a whole W-sized
        gradient per slice). Used only with TZ_TORCH_PAIRS=1: it is slower for PyTorch than the
        plain product (see MLP). pairs: the sorted distinct p * V + w; inv (R, n): their index."""

        @staticmethod
        def forward(ctx, C, W, b, pairs, inv):
            R, n = inv.shape
            E, H = C.shape[1], W.shape[0]
            counts = torch.bincount(torch.div(pairs, V, rounding_mode="floor"), minlength=n).tolist()
            X = C.index_select(0, pairs % V)  # (U, E), position by position
            Z = torch.empty(pairs.numel(), H)
            u0 = 0
            for p, k in enumerate(counts):
                torch.mm(X[u0:u0 + k], W[:, p * E:(p + 1) * E].t(), out=Z[u0:u0 + k])
                u0 += k
            y = b.expand(R, H).clone()
            for p in range(n):
                y += Z.index_select(0, inv[:, p])
            ctx.save_for_backward(W, X, pairs, inv)
            ctx.counts, ctx.V = counts, C.shape[0]
            return y

        @staticmethod
        def backward(ctx, dy):
            W, X, pairs, inv = ctx.saved_tensors
            n, E = inv.shape[1], X.shape[1]
            S = torch.zeros(pairs.numel(), dy.shape[1])  # each pair's sum of dy
            for p in range(n):
                S.index_add_(0, inv[:, p], dy)
            dW, dX = torch.empty_like(W), torch.empty_like(X)
            u0 = 0
            for p, k in enumerate(ctx.counts):
                dW[:, p * E:(p + 1) * E] = S[u0:u0 + k].t() @ X[u0:u0 + k]
                torch.mm(S[u0:u0 + k], W[:, p * E:(p + 1) * E], out=dX[u0:u0 + k])
                u0 += k
            dC = torch.zeros(ctx.V, E).index_add_(0, pairs % V, dX)
            return dC, dW, dy.sum(0), None, None

    class MLP(nn.Module):  # models/mlp.c
        def __init__(self):
            super().__init__()
            self.n, self.E, self.H = mi("context"), mi("embed"), mi("hidden")
            self.C = nn.Embedding(V, self.E)
            self.hid = nn.Linear(self.n * self.E, self.H)
            self.bn = nn.BatchNorm1d(self.H, eps=1e-5, momentum=0.1) if mb("batchnorm") else None
            self.drop = nn.Dropout(mf("dropout"))
            self.out = nn.Linear(self.H, V)
            self.direct = nn.Linear(self.n * self.E, V, bias=False) if mb("direct") else None
            if self.direct is not None:
                nn.init.zeros_(self.direct.weight)
            # shared_pairs (nn/window_linear.c: H x once per distinct (position, word) of a batch)
            # is the same function; PyTorch's fastest form of it is the plain product, which this
            # computes whatever the key says. With TZ_TORCH_PAIRS=1 it takes the pairs' way
            # (WindowLinear) on every batch: 2026-12-03, `TZ_TORCH_PAIRS=1 tools/bench/run --scale
            # --models mlp --repeat 3` (docs/bench/2026-12-03-scale-mlp-torch-pairs.jsonl), h512-h4096
            # ran 38,724 / 17,020 / 8,308 / 2,470 tok/s, against 64,468 / 24,184 / 9,857 / 2,550
            # plain in the run before (docs/bench/2026-12-03-scale-mlp-long.jsonl).
            self.pairs = os.environ.get("TZ_TORCH_PAIRS") == "1" and self.direct is None
            sp = c.str("model", "shared_pairs")
            if sp not in ("auto", "always", "never"):
                raise CfgError(f"mlp: [model] shared_pairs = '{sp}' (want auto, always or never)")

        def context(self):
            return self.n - 1

        def forward(self, x, y):
            n = self.n
            if x.shape[1] < n:
                raise CfgError(f"mlp: [train] block = {x.shape[1]} is shorter than the context {n}")
            ids = x.unfold(1, n, 1).reshape(-1, n)  # (B*(T-n+1), n): rows in (b, t) order
            targets = y[:, n - 1:].reshape(-1)
            if self.pairs:
                pairs, inv = torch.unique(ids + torch.arange(n) * V, return_inverse=True)
                h = WindowLinear.apply(self.C.weight, self.hid.weight, self.hid.bias, pairs, inv)
            else:
                e = self.C(ids).view(ids.shape[0], n * self.E)
                h = self.hid(e)
            if self.bn is not None:
                h = self.bn(h)
            out = self.out(self.drop(torch.tanh(h)))
            if self.direct is not None:
                out = out + self.direct(e)
            return out, targets

    def uniform_range():
        """a of model.init = uniform's U(-a, a) (the trainer's default 1), or None for the default
        init; another init has no reference."""
        init = c.str("model", "init")
        if init == "uniform" and mtype != "hybrid":
            return c.float("model", "init_scale") or 1.0
        if init not in ("default", "pytorch") or c.float("model", "init_scale") != 0:
            raise CfgError("recurrent: only the default (PyTorch) and the uniform init have a reference")
        return None

    class RecurrentBody(nn.Module):  # models/recurrent_lm.c: embedding -> stacked recurrent layer
        def __init__(self, cell):
            super().__init__()
            uniform = uniform_range()
            if mb("residual"):
                raise CfgError("recurrent: model.residual has no torch.nn equivalent")
            E, H, L, p = mi("embed"), mi("hidden"), mi("layers"), mf("dropout")
            self.cell, self.H, self.L = cell, H, L
            self.emb = nn.Embedding(V, E)
            self.drop = nn.Dropout(p)
            klass = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
            self.rnn = klass(E, H, num_layers=L, dropout=p if L > 1 else 0.0)  # time-major (T,B,*)
            if uniform:  # models/recurrent_lm.c: U(-a, a) on every weight and bias (Zaremba's)
                with torch.no_grad():
                    for w in list(self.emb.parameters()) + list(self.rnn.parameters()):
                        w.uniform_(-uniform, uniform)
            if cell == "lstm":  # nn/recurrent.c: forget_bias added to b_ih's forget block (gates i,f,g,o)
                fb = mf("forget_bias") if mtype == "lstm" else 1.0  # the hybrid's LSTM uses 1
                with torch.no_grad():
                    for l in range(L):
                        getattr(self.rnn, f"bias_ih_l{l}")[H:2 * H] += fb
            self.state = None

        def reset(self, Bn):
            z = torch.zeros(self.L, Bn, self.H)
            self.state = (z, z.clone()) if self.cell == "lstm" else z

        def states(self, x):  # x (B,T) -> (T,B,H); the state carried on, detached
            e = self.drop(self.emb(x.t()))
            out, st = self.rnn(e, self.state)
            self.state = tuple(s.detach() for s in st) if self.cell == "lstm" else st.detach()
            return out

    class RecurrentLM(nn.Module):  # models/rnn.c, lstm.c, gru.c
        def __init__(self):
            super().__init__()
            if mtype == "lstm" and mb("peephole"):
                raise CfgError("lstm: PyTorch's nn.LSTM has no peepholes: run both sides with model.peephole=false")
            if mtype == "gru" and c.str("model", "form") != "cudnn":
                raise CfgError("gru: PyTorch's nn.GRU is the cudnn form: run both sides with model.form=cudnn")
            self.body = RecurrentBody(mtype)
            self.drop = nn.Dropout(mf("dropout"))
            self.out = nn.Linear(mi("hidden"), V)
            a = uniform_range()
            if a:  # the output weight too; its bias keeps PyTorch's
                with torch.no_grad():
                    self.out.weight.uniform_(-a, a)

        def reset(self, Bn):
            self.body.reset(Bn)

        def forward(self, x, y):  # logits in time-major order, targets to match
            h = self.body.states(x)
            Tn, Bn, H = h.shape
            return self.out(self.drop(h.reshape(Tn * Bn, H))), y.t().reshape(-1)

    class Hybrid(nn.Module):  # models/hybrid.c
        def __init__(self):
            super().__init__()
            cell = c.str("model", "cell")
            if cell not in ("gru", "lstm"):
                raise CfgError(f"hybrid: [model] cell = '{cell}' (want gru or lstm)")
            self.body = RecurrentBody(cell)  # nn_recurrent_defaults: GRU in the cudnn form
            H = mi("hidden")
            self.attn = nn.MultiheadAttention(H, mi("heads"))  # (T,B,H) in and out
            # nn/attention.c: Xavier-uniform q, k, v each as its own (H,H) block (not the stacked
            # (3H,H)), zero biases.
            with torch.no_grad():
                for i in range(3):
                    nn.init.xavier_uniform_(self.attn.in_proj_weight[i * H:(i + 1) * H])
                nn.init.xavier_uniform_(self.attn.out_proj.weight)
            self.drop = nn.Dropout(mf("dropout"))
            self.ln = nn.LayerNorm(H, eps=1e-5)
            self.out = nn.Linear(H, V)
            self.mask = {}

        def reset(self, Bn):
            self.body.reset(Bn)

        def forward(self, x, y):
            h = self.body.states(x)  # (T,B,H)
            Tn, Bn, H = h.shape
            if Tn not in self.mask:
                self.mask[Tn] = torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), 1)
            a = self.attn(h, h, h, attn_mask=self.mask[Tn], need_weights=False)[0]
            h = self.ln(h + self.drop(a))
            return self.out(h.reshape(Tn * Bn, H)), y.t().reshape(-1)

    class CausalSelfAttention(nn.Module):  # nanoGPT's, hand-written (no SDPA in torch 1.13)
        def __init__(self, C, heads, bias, p, Tmax):
            super().__init__()
            self.h, self.d = heads, C // heads
            self.qkv = nn.Linear(C, 3 * C, bias=bias)
            self.o = nn.Linear(C, C, bias=bias)
            self.attn_drop, self.resid_drop = nn.Dropout(p), nn.Dropout(p)
            self.register_buffer("mask", torch.tril(torch.ones(Tmax, Tmax, dtype=torch.bool)), persistent=False)

        def forward(self, x):
            Bn, Tn, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q = q.view(Bn, Tn, self.h, self.d).transpose(1, 2)
            k = k.view(Bn, Tn, self.h, self.d).transpose(1, 2)
            v = v.view(Bn, Tn, self.h, self.d).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d))
            att = att.masked_fill(~self.mask[:Tn, :Tn], float("-inf"))
            att = self.attn_drop(F.softmax(att, dim=-1))
            y = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
            return self.resid_drop(self.o(y))

    class Block(nn.Module):  # nn/transformer.c: decoder block without cross-attention
        def __init__(self, C, heads, dff, ffn, pre_ln, bias, p, Tmax):
            super().__init__()
            self.pre_ln = pre_ln
            self.ln1, self.ln3 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
            self.attn = CausalSelfAttention(C, heads, bias, p, Tmax)
            self.w1, self.w2 = nn.Linear(C, dff, bias=bias), nn.Linear(dff, C, bias=bias)
            self.act = nn.GELU() if ffn == "gelu" else nn.ReLU()  # exact (erf) GELU, as tz_gelu
            self.drop = nn.Dropout(p)

        def forward(self, x):
            if self.pre_ln:
                x = x + self.attn(self.ln1(x))
                return x + self.drop(self.w2(self.act(self.w1(self.ln3(x)))))
            x = self.ln1(x + self.attn(x))
            return self.ln3(x + self.drop(self.w2(self.act(self.w1(x)))))

    class Transformer(nn.Module):  # models/transformer.c
        def __init__(self):
            super().__init__()
            C, L, ffn = mi("d_model"), mi("layers"), c.str("model", "ffn")
            if ffn not in ("gelu", "relu"):
                raise CfgError(f"transformer: [model] ffn = '{ffn}': the reference does gelu and relu")
            if c.str("model", "positions") != "learned":
                raise CfgError("transformer: the reference does learned positions only")
            p, bias, std = mf("dropout"), mb("bias"), mf("init_std")
            self.tie, self.pre_ln = mb("tie"), mb("pre_ln")
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
            self.drop = nn.Dropout(p)
            self.blocks = nn.ModuleList(Block(C, mi("heads"), mi("d_ff"), ffn, self.pre_ln, bias, p, T) for _ in range(L))
            self.ln_f = nn.LayerNorm(C, eps=1e-5) if self.pre_ln else None
            self.head = None if self.tie else nn.Linear(C, V, bias=False)
            # The trainer's init: every weight N(0, init_std); attention biases 0; feed-forward
            # biases PyTorch's U(+-1/sqrt(fan_in)) (nn_linear_init); LayerNorms 1 and 0.
            with torch.no_grad():
                for name, prm in self.named_parameters():
                    if prm.dim() >= 2:
                        nn.init.normal_(prm, 0.0, std)
                for b in self.blocks:
                    for lin in (b.attn.qkv, b.attn.o):
                        if lin.bias is not None:
                            lin.bias.zero_()

        def forward(self, x, y):
            Bn, Tn = x.shape
            h = self.drop(self.wte(x) + self.wpe.weight[:Tn])
            for b in self.blocks:
                h = b(h)
            if self.ln_f is not None:
                h = self.ln_f(h)
            h = h.reshape(Bn * Tn, -1)
            logits = F.linear(h, self.wte.weight) if self.tie else self.head(h)
            return logits, y.reshape(-1)

    model = {"mlp": MLP, "rnn": RecurrentLM, "lstm": RecurrentLM, "gru": RecurrentLM, "transformer": Transformer,
             "hybrid": Hybrid}[mtype]()
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    context = model.context() if hasattr(model, "context") else 0

    # ----- optimiser (nn/optim.c: PyTorch's semantics; decay on tensors of >= 2 dims) ----------
    oname = c.str("optim", "name")
    emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    no_decay_emb = c.bool("optim", "no_decay_embeddings")
    wd = c.float("optim", "weight_decay")
    if oname == "adamw" and ("optim", "weight_decay") not in c.set_keys:
        wd = 0.01
    decay = [p for p in params if p.dim() >= 2 and not (no_decay_emb and id(p) in emb_ids)]
    dset = {id(p) for p in decay}
    rest = [p for p in params if id(p) not in dset]
    groups = [g for g in ({"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}) if g["params"]]
    lr0, eps = c.float("optim", "lr"), c.float("optim", "eps")
    betas = (c.float("optim", "beta1"), c.float("optim", "beta2"))
    fe = {"foreach": True} if foreach else {}
    if oname == "adam":
        opt = torch.optim.Adam(groups, lr=lr0, betas=betas, eps=eps or 1e-8, **fe)
    elif oname == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr0, betas=betas, eps=eps or 1e-8, **fe)
    elif oname == "sgd":
        opt = torch.optim.SGD(groups, lr=lr0, momentum=c.float("optim", "momentum"),
                              nesterov=c.bool("optim", "nesterov"), **fe)
    elif oname == "adagrad":
        opt = torch.optim.Adagrad(groups, lr=lr0, eps=eps or 1e-10, **fe)
    elif oname == "rmsprop":
        opt = torch.optim.RMSprop(groups, lr=lr0, alpha=c.float("optim", "alpha"), eps=eps or 1e-8,
                                  momentum=c.float("optim", "momentum"), **fe)
    else:
        raise CfgError(f"[optim] name = '{oname}' (sgd, adagrad, rmsprop, adam, adamw)")

    # ----- schedule (nn/schedule.c) ---------------------------------------------------------
    kind = c.str("schedule", "kind")
    warm, min_lr = c.int("schedule", "warmup"), c.float("schedule", "min_lr")
    decay_iters = c.int("schedule", "decay_iters") or steps

    def lr_at(it):
        if kind == "constant":
            return lr0
        if kind == "step":
            every, gamma = c.int("schedule", "every"), c.float("schedule", "gamma")
            start = c.int("schedule", "start") or every
            return lr0 * gamma ** (0 if it < start else 1 + (it - start) // every)
        if kind in ("cosine", "linear"):
            if it < warm:
                return lr0 * (it + 1) / (warm + 1)
            if it > decay_iters:
                return min_lr
            r = (it - warm) / (decay_iters - warm)
            coeff = 0.5 * (1 + math.cos(math.pi * r)) if kind == "cosine" else 1 - r
            return min_lr + coeff * (lr0 - min_lr)
        if kind == "noam":
            s, d = it + 1.0, c.int("schedule", "d_model")
            return lr0 / math.sqrt(d) * min(1 / math.sqrt(s), s * warm ** -1.5)
        raise CfgError(f"[schedule] kind = '{kind}'")

    clip, clip_value = c.float("train", "clip"), c.float("train", "clip_value")

    # ----- batching (train/batcher.c) -----------------------------------------------------------
    n_train = len(train_ids)
    ar_T = torch.arange(T)
    gen = torch.Generator().manual_seed(seed + 1)
    trainer_rng = TrainerRng(seed + 1) if start else None
    if stream:
        stream_len = (n_train - 1) // B
        if stream_len < T:
            raise CfgError(f"{n_train} tokens make {B} streams of {stream_len}, shorter than the block {T}")
        row_starts = torch.arange(B) * stream_len
    pos = 0

    def next_batch():  # -> x, y, wrapped
        nonlocal pos
        wrapped = False
        if stream:
            if pos + T > stream_len:
                pos, wrapped = 0, True
            idx = (row_starts + pos)[:, None] + ar_T
            pos += T
        else:
            if trainer_rng:  # train/batcher.c: (long)(tz_rng_uniform * (n - T)) per row
                idx = torch.tensor([int(trainer_rng.uniform() * (n_train - T)) for _ in range(B)])[:, None] + ar_T
            else:
                idx = torch.randint(0, n_train - T, (B,), generator=gen)[:, None] + ar_T
        return train_ids[idx], train_ids[idx + 1], wrapped

    def evaluate():  # train/task_lm.c lm_evaluate + train/batcher.c's evaluation batches
        """Mean cross-entropy over the first eval_n validation tokens, every position predicted
        once with its full left context: streams of ceil((n-1)/B) positions (fewer streams when
        the text is short), the last stream ending early (its tail's targets ignored); windows
        overlapping by the context, the last one ending at the split's end."""
        ids = val_ids[:eval_n]
        n = len(ids)
        Be = B
        if stream and (n - 1) // B < T:
            Be = (n - 1) // T
        if n - 1 < T and not stream:
            raise CfgError(f"validation: {n} tokens are fewer than one block of {T} + 1")
        model.eval()
        total, count = 0.0, 0

        def add(x, y):
            nonlocal total, count
            logits, tg = model(x, y)
            total += F.cross_entropy(logits, tg, ignore_index=-100, reduction="sum").item()
            count += int((tg != -100).sum())

        with torch.no_grad():
            if stream:
                model.reset(Be)
                slen = (n - 1 + Be - 1) // Be
                p = 0
                while p < slen:
                    Tc = min(T, slen - p)
                    i = (torch.arange(Be) * slen + p)[:, None] + torch.arange(Tc)
                    inside = i + 1 < n
                    x = torch.where(inside, ids[i.clamp(max=n - 1)], ids[n - 1])
                    y = torch.where(inside, ids[(i + 1).clamp(max=n - 1)], torch.full_like(i, -100))
                    add(x, y)
                    p += Tc
                model.reset(B)  # the training streams start over from a fresh state
            else:
                ctx = context if context < T else T - 1
                stride = T - ctx
                starts = list(range(0, n - T, stride))  # every start with start + T + 1 <= n
                covered = starts[-1] + T if starts else 0
                for i in range(0, len(starts), B):
                    idx = torch.tensor(starts[i:i + B])[:, None] + ar_T
                    add(ids[idx], ids[idx + 1])
                if covered < n - 1:  # the tail: one window ending at the split's end
                    start = n - 1 - T
                    idx = start + ar_T[None, :]
                    y = ids[idx + 1].clone()
                    y[0, :max(0, covered - start)] = -100  # predicted already
                    add(ids[idx], y)
        model.train()
        return total / count if count else float("nan")

    if check:  # our weights in the PyTorch model: the val loss must be the trainer's
        load_weights(torch, model, mtype, check)
        if stream:
            model.reset(B)
        print(json.dumps({"event": "check", "model": mtype, "checkpoint": check, "val_loss": round(evaluate(), 6),
                          "val_tokens": eval_n}), flush=True)
        return 0

    if start:  # the trainer's initial weights (train.steps=0): both sides start from one point
        load_weights(torch, model, mtype, start)

    # ----- the loop (train/main.c) ------------------------------------------------------------
    times = StepTimes(20)
    sum_loss, n_loss = 0.0, 0
    last_train = last_val = float("nan")
    best_val, best_step = float("inf"), -1
    status = 0
    model.train()
    if stream:
        model.reset(B)
    step = 0
    while step < steps:
        x, y, wrapped = next_batch()
        if wrapped and stream:
            model.reset(B)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits, targets = model(x, y)
        loss = F.cross_entropy(logits, targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        if clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        if clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        else:
            grad_norm = 0.0
        lval = loss.item()
        if not math.isfinite(lval) or not math.isfinite(grad_norm):
            print(f"torch_ref: step {step}: the loss is {lval} (gradient norm {grad_norm}): stopping", file=sys.stderr)
            status = 1
            break
        opt.step()
        t3 = time.perf_counter()
        step += 1
        times.add(step, t0, t1, t2, t3, targets.numel())
        sum_loss += lval
        n_loss += 1
        do_eval = step % eval_every == 0 or step == steps
        if step % log_every == 0 or do_eval:
            last_train = sum_loss / n_loss
            sum_loss, n_loss = 0.0, 0
            if do_eval:
                last_val = evaluate()
                if last_val < best_val:
                    best_val, best_step = last_val, step
            if verbose:
                print(f"step {step}/{steps} train {last_train:.4f} val {last_val:.4f} "
                      f"{times.tokens_per_s():.0f} tok/s", file=sys.stderr)
    out = {"event": "summary", "model": mtype, "impl": "torch", "params": n_params, "steps": step,
           **times.summary(),
           "final_train_loss": round(last_train, 6), "final_val_loss": round(last_val, 6),
           "best_val_loss": round(best_val, 6), "best_step": best_step,
           "wall_s": round(time.perf_counter() - t_start, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
           "baseline_rss_mb": round(baseline_rss, 1), "threads": torch.get_num_threads(), "status": status,
           "torch": torch.__version__, "foreach": foreach, "vocab": V, "val_tokens": eval_n,
           "same_start": bool(start)}
    out.update(blas_info(torch))
    print(json.dumps(out), flush=True)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CfgError as e:
        print(f"torch_ref: {e}", file=sys.stderr)
        sys.exit(2)
