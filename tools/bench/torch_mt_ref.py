#!/usr/bin/python3
"""torch_mt_ref.py: the PyTorch reference of the translation configs, for tools/bench/run.

    /usr/bin/python3 tools/bench/torch_mt_ref.py CFG --split RUN_DIR [section.key=value ...] [-v]
    /usr/bin/python3 tools/bench/torch_mt_ref.py CFG [overrides] --check RUN_DIR/last.safetensors [--bleu]
    /usr/bin/python3 tools/bench/torch_mt_ref.py --bleu-selftest

Reads the same cfg as build/train (torch_ref.py's reader: same format, defaults and overrides)
and trains the same function as models/seq2seq.c ([model] type = rnnsearch) or
models/seq2seq_rnnenc.c (type = rnnenc), written with plain torch.nn modules, on the split a
tapezoo run wrote (`[data] write_split = true`: RUN_DIR/train.src .ref, val.src .ref, test.src
.ref). Prints ONE JSON line with the field names of the trainer's `--json` summary
(tokens_per_s = real target tokens per second after 20 warm-up steps, ms_per_step, peak_rss_mb,
final_train_loss, final_val_loss, and at the end test_loss and test_bleu, greedy).

The function (models/seq2seq_common.c, seq2seq.c, seq2seq_rnnenc.c):
    rnnsearch  nn.Embedding -> bidirectional nn.GRU on the packed batch (the backward direction
               reads each sentence from its last real word, as ours reverses each within its
               length) -> annotations h_j = [fwd; bwd]; s_0 = tanh(W_s bwd_1); per target step
               e_j = v^T tanh(W_a s_{i-1} + U_a h_j) (U_a h once per batch; padded j masked),
               c_i = softmax(e) h, s_i = nn.GRUCell([E y_{i-1}; c_i], s_{i-1}); then ONE readout
               Linear([s_i; c_i; E y_{i-1}]) over the real target positions of all steps, and the
               cross-entropy (mean per real target token). score = dot / general: Luong's.
    rnnenc     nn.GRU encoder on the packed batch, c = its state at each sentence's last word,
               s_0 = tanh(V c); decoder nn.GRU over [E y_{i-1}; c] (one call); readout as above.
    readout = maxout: Linear(F, 2L) -> max of units k and k + L -> Linear(L, V). Dropout (if set) on
    the embeddings and on the readout's input, as ours. GRUs in PyTorch's (cuDNN) form only:
    form = cho is refused.

Data and training as train/pairs.c, train/pair_batcher.c and train/loop.c: vocabularies built
from RUN_DIR/train.* (<pad> <bos> <eos> <unk>, then the words seen min_count (2) times, most
frequent first, ties in order of first appearance); batches of [train] batch pairs, each epoch a
permutation of the pairs cut into pools of [data] bucket batches, each pool sorted by (source
length, target length), the epoch's batches shuffled (Python's random, not our generator: the
same scheme, other draws); decoder input <bos> y1..yn, targets y1..yn <eos>, padding ignored.
Adam (torch.optim.Adam = nn/optim.c's), gradient clipping by global norm ([train] clip).
Validation: the first val pairs holding [train] eval_tokens target tokens, B at a time, in order.
Test: greedy decoding (argmax over <eos> and the words, at most floor(2 |src| + 10) tokens, as
train/translate.c), corpus BLEU as train/bleu.c (sacreBLEU, tokenize none).

--check CKPT loads a tapezoo checkpoint (its PyTorch-style names map onto these modules; the
vocabularies come from the checkpoint and must equal the ones built from train.*) and prints the
validation loss: it must be the trainer's final_val_loss (the same function); with --bleu also
the test BLEU of greedy decoding, which must be the trainer's test_bleu.
"""
import json
import math
import os
import random
import resource
import sys
import time
from collections import Counter

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import Cfg, CfgError, MT_MODELS, StepTimes, blas_info, read_safetensors, rss_mb  # noqa: E402

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
IGNORE = -100  # F.cross_entropy's ignore_index


# ---------------------------------------------------------------------------------------------
# BLEU: train/bleu.c (sacreBLEU 2.x compute_bleu, tokenize none, smooth exp, one reference).

class Bleu:
    def __init__(self):
        self.hyp_len = self.ref_len = 0
        self.correct, self.total = [0] * 4, [0] * 4

    def add(self, hyp, ref):  # token lists
        self.hyp_len += len(hyp)
        self.ref_len += len(ref)
        for n in range(1, 5):
            h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            self.total[n - 1] += sum(h.values())
            self.correct[n - 1] += sum(min(c, r[g]) for g, c in h.items())

    def score(self):
        bp = 1.0
        if self.hyp_len < self.ref_len:
            bp = math.exp(1 - self.ref_len / self.hyp_len) if self.hyp_len > 0 else 0.0
        if not any(self.correct):
            return 0.0
        smooth, logsum, n = 1.0, 0.0, 0
        while n < 4 and self.total[n] > 0:
            if self.correct[n] == 0:
                smooth *= 2
                p = 100.0 / (smooth * self.total[n])
            else:
                p = 100.0 * self.correct[n] / self.total[n]
            logsum += math.log(p)
            n += 1
        return 0.0 if n < 4 else bp * math.exp(logsum / 4)


def bleu_selftest():
    """tests/test_bleu.c's values: the issue's example and the brevity penalty."""
    b = Bleu()
    b.hyp_len, b.ref_len, b.correct, b.total = 11, 11, [9, 7, 5, 3], [10, 8, 6, 4]
    s1 = b.score()
    b.hyp_len = 9
    s2 = b.score()
    e = Bleu()
    e.add([], "a b c".split())
    ok = abs(s1 - 83.759224) < 1e-6 and abs(s2 - 67.069143) < 1e-6 and e.score() == 0.0
    print(json.dumps({"event": "bleu_selftest", "issue_example": round(s1, 6), "short": round(s2, 6),
                      "empty": e.score(), "ok": ok}))
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------
# Data: the split files of a tapezoo run (one preprocessed sentence a line, tokens joined by
# single spaces), vocabularies and batches as train/pairs.c and train/pair_batcher.c.

def read_split(d, name):
    """([source lines], [reference lines]) of RUN_DIR/name.src and name.ref, or None if absent
    (lines, not token lists: a str object per token would add ~100 MB to the peak RSS)."""
    a, b = os.path.join(d, name + ".src"), os.path.join(d, name + ".ref")
    if not os.path.exists(a) or not os.path.exists(b):
        return None
    with open(a, encoding="utf-8") as f:
        src = f.read().split("\n")
    with open(b, encoding="utf-8") as f:
        ref = f.read().split("\n")
    if src and src[-1] == "":
        src.pop()
    if ref and ref[-1] == "":
        ref.pop()
    if len(src) != len(ref):
        raise CfgError(f"{a} has {len(src)} lines but {b} has {len(ref)}")
    return src, ref


def build_vocab(lines, min_count):
    """train/pairs.c build_words: specials, then words seen >= min_count times, most frequent
    first, ties in order of first appearance."""
    count = Counter()
    for line in lines:
        count.update(line.split(" "))  # Counter keeps first-appearance order; sorted() below is stable
    words = sorted(count, key=lambda w: -count[w])
    vocab = list(SPECIALS)
    vocab += [w for w in words if count[w] >= min_count and w not in SPECIALS]
    return vocab


def vocab_of_checkpoint(text):
    """The token list of a checkpoint's saved vocabulary (train/vocab.c tz_vocab_save)."""
    lines = text.split("\n")
    head = lines[0].split()
    if len(head) < 4 or head[0] != "tapezoo-vocab" or head[2] != "word":
        raise CfgError(f"the checkpoint's vocabulary is not a word vocabulary ('{lines[0]}')")
    n = int(head[3])
    esc = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\0": "\0"}
    out = []
    for tok in lines[1:1 + n]:
        for a, b in esc.items():
            tok = tok.replace(a, b) if "\\" in tok else tok
        out.append(tok)
    return out


class PairBatcher:
    """train/pair_batcher.c: each epoch a permutation of the pairs; pools of `bucket` batches,
    each sorted by (source length, target length, place); the epoch's batches shuffled."""

    def __init__(self, pairs, B, bucket, seed):
        self.pairs, self.B, self.bucket = pairs, B, max(1, bucket)
        self.rng = random.Random(seed)
        self.per_epoch = len(pairs) // B
        if self.per_epoch < 1:
            raise CfgError(f"the training split has {len(pairs)} pairs, fewer than one batch of {B}")
        self.k, self.plan = 0, []

    def _plan(self):
        n, B = len(self.pairs), self.B
        perm = list(range(n))
        self.rng.shuffle(perm)
        used, pool = self.per_epoch * B, self.bucket * B
        order = []
        for p0 in range(0, used, pool):
            chunk = perm[p0:min(used, p0 + pool)]
            if self.bucket > 1:
                chunk = [i for _, _, _, i in sorted((len(self.pairs[i][0]), len(self.pairs[i][1]), j, i)
                                                    for j, i in enumerate(chunk))]
            order += chunk
        batches = [order[j * B:(j + 1) * B] for j in range(self.per_epoch)]
        self.rng.shuffle(batches)
        self.plan = batches

    def next(self):
        j = self.k % self.per_epoch
        if j == 0:
            self._plan()
        self.k += 1
        return [self.pairs[i] for i in self.plan[j]]


def make_batch(torch, rows):
    """rows [(src ids, tgt ids)] -> src (B,S), lengths (B), x (B,T) = <bos> y, y (B,T) = y <eos>."""
    S = max(len(s) for s, _ in rows)
    T = max(len(t) for _, t in rows) + 1
    src = [s + (PAD,) * (S - len(s)) for s, _ in rows]
    x = [(BOS,) + t + (PAD,) * (T - 1 - len(t)) for _, t in rows]
    y = [t + (EOS,) + (IGNORE,) * (T - 1 - len(t)) for _, t in rows]
    return (torch.tensor(src), torch.tensor([len(s) for s, _ in rows]), torch.tensor(x), torch.tensor(y))


# ---------------------------------------------------------------------------------------------

def main(argv):
    if "--bleu-selftest" in argv:
        return bleu_selftest()
    opts = {}
    for flag in ("--check", "--split"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv):
                raise CfgError(f"{flag} needs an argument")
            opts[flag] = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
    if "--bleu" in argv:
        opts["--bleu"] = True
        argv = [a for a in argv if a != "--bleu"]
    verbose = "-v" in argv
    foreach = "--foreach" in argv
    args = [a for a in argv if a not in ("--json", "-v", "--foreach")]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    for a in args[1:]:
        if "=" not in a:
            raise CfgError(f"'{a}' is not section.key=value")
    c = Cfg(args[0], args[1:])
    if c.type not in MT_MODELS:
        raise CfgError(f"[model] type = {c.type} is a language model: its reference is tools/bench/torch_ref.py")
    check = opts.get("--check")
    split_dir = opts.get("--split") or (os.path.dirname(os.path.abspath(check)) if check else None)
    if not split_dir:
        raise CfgError("--split RUN_DIR is required (a tapezoo run with data.write_split=true)")
    if c.str("data", "kind") != "pairs":
        raise CfgError(f"[data] kind = {c.str('data', 'kind')}: the reference reads pairs (a run's split files)")
    tok = c.str("data", "tokenizer") if ("data", "tokenizer") in c.set_keys else "word"
    if tok != "word":
        raise CfgError(f"[data] tokenizer = {tok}: the reference does word vocabularies only")
    min_count = c.int("data", "min_count") if ("data", "min_count") in c.set_keys else 2
    t_start = time.perf_counter()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    baseline_rss = rss_mb()
    threads = c.int("train", "threads") or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    seed = c.int("train", "seed")
    torch.manual_seed(seed)

    # ----- data --------------------------------------------------------------------------------
    split = {k: read_split(split_dir, k) for k in ("train", "val", "test")}
    for k in ("train", "val"):
        if split[k] is None:
            raise CfgError(f"{split_dir}: no {k}.src / {k}.ref (train ours with data.write_split=true)")
    src_vocab = build_vocab(split["train"][0], min_count)
    tgt_vocab = build_vocab(split["train"][1], min_count)
    ckpt = None
    if check:
        ckpt_meta = {}
        ckpt = read_safetensors(torch, check, ckpt_meta)
        for side, built, key in (("source", src_vocab, "src_vocab"), ("target", tgt_vocab, "vocab")):
            saved = vocab_of_checkpoint(ckpt_meta.get(key, ""))
            if saved != built:
                diff = next((i for i, (a, b) in enumerate(zip(saved, built)) if a != b), min(len(saved), len(built)))
                raise CfgError(f"{check}: the {side} vocabulary ({len(saved)} words) differs from the one built from "
                               f"{split_dir}/train.* ({len(built)} words) at id {diff}")

    def encode(vocab, lines):  # the ints are the dict's own objects: a tuple costs 8 bytes a token
        ids = {w: i for i, w in enumerate(vocab)}
        return [tuple(ids.get(w, UNK) for w in line.split(" ")) for line in lines]

    def encode_pairs(sides):
        return None if sides is None else list(zip(encode(src_vocab, sides[0]), encode(tgt_vocab, sides[1])))

    data = {k: encode_pairs(v) for k, v in split.items()}
    test_refs = [r.split(" ") for r in split["test"][1]] if split["test"] else None
    del split  # only the ids are kept
    Vs, Vt = len(src_vocab), len(tgt_vocab)
    steps, B = c.int("train", "steps"), c.int("train", "batch")
    eval_every, log_every = c.int("train", "eval_every"), c.int("train", "log_every")
    eval_tokens = c.int("train", "eval_tokens")
    val = []
    val_tokens = 0
    for p in data["val"]:  # train/task_pairs.c: the first pairs holding eval_tokens target tokens
        if eval_tokens > 0 and val_tokens >= eval_tokens:
            break
        val.append(p)
        val_tokens += len(p[1]) + 1

    # ----- the model ---------------------------------------------------------------------------
    def mi(k):
        return c.int("model", k)

    attention = c.type == "rnnsearch"
    if c.str("model", "form") != "cudnn":
        raise CfgError(f"[model] form = {c.str('model', 'form')}: PyTorch's GRU is the cudnn form (run both with model.form=cudnn)")
    readout = c.str("model", "readout")
    if readout not in ("linear", "maxout"):
        raise CfgError(f"[model] readout = '{readout}' (linear or maxout)")
    score = c.str("model", "score") if attention else None
    if attention and score not in ("additive", "dot", "general"):
        raise CfgError(f"[model] score = '{score}' (additive, dot or general)")

    class Seq2Seq(nn.Module):
        """models/seq2seq.c (attention) and models/seq2seq_rnnenc.c; parameter names as ours."""

        def __init__(self):
            super().__init__()
            E, H, D = mi("embed"), mi("hidden"), mi("dec_hidden")
            C = 2 * H if attention else H
            self.E, self.D, self.C = E, D, C
            self.src_embed, self.tgt_embed = nn.Embedding(Vs, E), nn.Embedding(Vt, E)
            self.encoder = nn.GRU(E, H, bidirectional=attention)
            # RNNsearch steps the decoder by hand (attention needs s_{i-1}); RNNenc runs it whole.
            self.decoder = nn.GRUCell(E + C, D) if attention else nn.GRU(E + C, D)
            self.init_state = nn.Linear(H, D)
            self.drop = nn.Dropout(c.float("model", "dropout"))
            Fdim = D + C + E
            self.L = mi("maxout_units") if readout == "maxout" else 0
            if self.L:
                self.readout = nn.Linear(Fdim, 2 * self.L)
            self.out = nn.Linear(self.L or Fdim, Vt)
            if attention:
                self.attention = nn.Module()
                if score == "additive":
                    A = mi("attn_dim")
                    self.attention.W = nn.Linear(D, A, bias=False)
                    self.attention.U = nn.Linear(C, A)
                    self.attention.v = nn.Linear(A, 1, bias=False)
                elif score == "general":
                    self.attention.W = nn.Linear(D, C, bias=False)
                elif D != C:
                    raise CfgError(f"score = dot needs dec_hidden ({D}) = 2 * hidden ({C})")

        def encode(self, src, lens):  # src (B,S), lens (B) -> ann (B,S,C) or None, c (B,H) or None, s0 (B,D)
            x = self.drop(self.src_embed(src.t()))  # (S,B,E)
            out, h_n = self.encoder(pack_padded_sequence(x, lens, enforce_sorted=False))
            if not attention:  # the state after each sentence's last real word
                return None, h_n[0], torch.tanh(self.init_state(h_n[0]))
            ann = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0]
            return ann, None, torch.tanh(self.init_state(h_n[1]))  # h_n[1]: backward, at the first word

        def keys(self, ann):  # U_a h_j once per batch (additive scores)
            return self.attention.U(ann) if score == "additive" else None

        def attend(self, s, ann, keys, mask):  # s (B,D), ann (B,S,C), mask (B,S) True at padding -> (B,C)
            if score == "additive":
                e = self.attention.v(torch.tanh(keys + self.attention.W(s).unsqueeze(1))).squeeze(2)
            else:
                q = self.attention.W(s) if score == "general" else s
                e = torch.bmm(ann, q.unsqueeze(2)).squeeze(2)
            a = torch.softmax(e.masked_fill(mask, float("-inf")), dim=1)
            return torch.bmm(a.unsqueeze(1), ann).squeeze(1)

        def logits(self, feat):  # (N, D+C+E) -> (N, Vt)
            feat = self.drop(feat)
            if not self.L:
                return self.out(feat)
            z = self.readout(feat)
            return self.out(torch.max(z[:, :self.L], z[:, self.L:]))

        def forward(self, src, lens, x, y):  # -> mean cross-entropy over the real targets, their count
            ann, summ, s = self.encode(src, lens)
            ey = self.drop(self.tgt_embed(x.t()))  # (T,B,E)
            T = ey.shape[0]
            if attention:
                keys = self.keys(ann)
                mask = torch.arange(src.shape[1])[None, :] >= lens[:, None]
                ss, cs = [], []
                for t in range(T):
                    ctx = self.attend(s, ann, keys, mask)
                    s = self.decoder(torch.cat([ey[t], ctx], 1), s)
                    ss.append(s)
                    cs.append(ctx)
                feat = torch.cat([torch.stack(ss), torch.stack(cs), ey], 2)  # (T,B,F)
            else:
                cT = summ.unsqueeze(0).expand(T, -1, -1)
                h = self.decoder(torch.cat([ey, cT], 2), s.unsqueeze(0))[0]  # (T,B,D)
                feat = torch.cat([h, cT, ey], 2)
            yt = y.t()
            real = yt != IGNORE
            # The readout over every step at once, on the real target positions only.
            return F.cross_entropy(self.logits(feat[real]), yt[real]), int(real.sum())

        @torch.no_grad()
        def greedy(self, src, lens):  # -> [token ids] per row (train/translate.c, beam 1)
            Bn = src.shape[0]
            ann, summ, s = self.encode(src, lens)
            lmax = [math.floor(2 * int(n) + 10) for n in lens]
            keys = self.keys(ann) if attention else None
            mask = torch.arange(src.shape[1])[None, :] >= lens[:, None] if attention else None
            prev = torch.full((Bn,), BOS, dtype=torch.long)
            out, done = [[] for _ in range(Bn)], [False] * Bn
            h = s.unsqueeze(0)
            for t in range(max(lmax) + 1):
                e = self.tgt_embed(prev)
                if attention:
                    ctx = self.attend(s, ann, keys, mask)
                    s = self.decoder(torch.cat([e, ctx], 1), s)
                else:
                    ctx = summ
                    h = self.decoder(torch.cat([e, ctx], 1).unsqueeze(0), h)[1]
                    s = h[0]
                lg = self.logits(torch.cat([s, ctx, e], 1))
                w = (lg[:, EOS:].argmax(1) + EOS).tolist()  # never <pad> or <bos>
                for b in range(Bn):
                    if done[b]:
                        continue
                    if t >= lmax[b] or w[b] == EOS:
                        done[b], w[b] = True, EOS
                    else:
                        out[b].append(w[b])
                if all(done):
                    break
                prev = torch.tensor(w)
            return out

    model = Seq2Seq()
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)

    def to_state_dict(w):
        sd = {}
        for k, v in w.items():
            if k.startswith("optim."):
                continue
            if attention and k.startswith("decoder."):
                k = k.replace("_l0", "")  # nn.GRUCell's names
            sd[k] = v
        return sd

    def evaluate(pairs):  # summed cross-entropy / real targets, B pairs at a time in order
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(pairs), B):
                loss, n = model(*make_batch(torch, pairs[i:i + B]))
                total += loss.item() * n
                count += n
        model.train()
        return total / count if count else float("nan")

    def test_bleu(pairs, texts):
        model.eval()
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))  # batches of similar length
        hyps = [None] * len(pairs)
        for i in range(0, len(order), B):
            idx = order[i:i + B]
            src, lens = make_batch(torch, [pairs[j] for j in idx])[:2]
            for j, h in zip(idx, model.greedy(src, lens)):
                hyps[j] = [tgt_vocab[t] for t in h]
        model.train()
        b = Bleu()
        for h, ref in zip(hyps, texts):
            b.add(h, ref)  # words, <unk> included (never matches), against the reference text
        return b.score()

    if check:
        model.load_state_dict(to_state_dict(ckpt), strict=True)
        ev = {"event": "check", "model": c.type, "checkpoint": check, "val_loss": round(evaluate(val), 6),
              "val_pairs": len(val), "val_tokens": val_tokens, "vocab": Vt, "src_vocab": Vs}
        if "--bleu" in opts and data["test"]:  # the trainer's test_bleu (greedy) of these weights
            ev["test_bleu"] = round(test_bleu(data["test"], test_refs), 4)
        print(json.dumps(ev), flush=True)
        return 0

    # ----- optimiser and loop (train/loop.c) ---------------------------------------------------
    oname = c.str("optim", "name")
    if oname != "adam" or c.float("optim", "weight_decay") != 0 or c.str("schedule", "kind") != "constant":
        raise CfgError("the translation reference does [optim] name = adam without weight decay, constant schedule")
    eps = c.float("optim", "eps") or 1e-8
    opt = torch.optim.Adam(params, lr=c.float("optim", "lr"), betas=(c.float("optim", "beta1"), c.float("optim", "beta2")),
                           eps=eps, **({"foreach": True} if foreach else {}))
    if c.int("train", "patience") or c.str("train", "final") != "last":
        raise CfgError("the translation reference trains a fixed number of steps (no patience, final = last)")
    clip = c.float("train", "clip")
    data_seed = c.int("data", "seed") or seed
    batcher = PairBatcher(data["train"], B, c.int("data", "bucket"), data_seed + 1)

    times = StepTimes(20)
    sum_loss, n_loss = 0.0, 0
    last_train = last_val = float("nan")
    best_val, best_step = float("inf"), -1
    status, step = 0, 0
    model.train()
    while step < steps:
        batch = make_batch(torch, batcher.next())
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, n_tok = model(*batch)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if clip > 0 else 0.0
        lval = loss.item()
        if not math.isfinite(lval) or not math.isfinite(grad_norm):
            print(f"torch_mt_ref: step {step}: the loss is {lval} (gradient norm {grad_norm}): stopping", file=sys.stderr)
            status = 1
            break
        opt.step()
        t3 = time.perf_counter()
        step += 1
        times.add(step, t0, t1, t2, t3, n_tok)
        sum_loss += lval
        n_loss += 1
        do_eval = step % eval_every == 0 or step == steps
        if step % log_every == 0 or do_eval:
            last_train = sum_loss / n_loss
            sum_loss, n_loss = 0.0, 0
            if do_eval:
                last_val = evaluate(val)
                if last_val < best_val:
                    best_val, best_step = last_val, step
            if verbose:
                print(f"step {step}/{steps} train {last_train:.4f} val {last_val:.4f} "
                      f"{times.tokens_per_s():.0f} target tok/s", file=sys.stderr, flush=True)
    peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"event": "summary", "model": c.type, "impl": "torch", "params": n_params, "steps": step,
           **times.summary(),
           "final_train_loss": round(last_train, 6), "final_val_loss": round(last_val, 6),
           "best_val_loss": round(best_val, 6), "best_step": best_step}
    if data["test"] and status == 0:
        out["test_loss"] = round(evaluate(data["test"]), 6)
        out["test_bleu"] = round(test_bleu(data["test"], test_refs), 4)
        out["test_pairs"] = len(data["test"])
    out.update({"wall_s": round(time.perf_counter() - t_start, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
                "peak_rss_train_mb": round(peak_train, 1), "baseline_rss_mb": round(baseline_rss, 1),
                "threads": torch.get_num_threads(), "status": status, "torch": torch.__version__, "foreach": foreach,
                "vocab": Vt, "src_vocab": Vs, "train_pairs": len(data["train"]), "val_pairs": len(val),
                "val_tokens": val_tokens})
    out.update(blas_info(torch))
    print(json.dumps(out), flush=True)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CfgError as e:
        print(f"torch_mt_ref: {e}", file=sys.stderr)
        sys.exit(2)
