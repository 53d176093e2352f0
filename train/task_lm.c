// task_lm.c: the language-model task: one corpus of tokens (corpus.c), batches of windows or
// streams (batcher.c), validation on the whole (or first eval_tokens of the) validation split,
// samples (sampler.c).
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "corpus.h"
#include "dist.h"
#include "sampler.h"
#include "task.h"

typedef struct lm_task {
    const cfg *c;
    tz_corpus corpus;
    tz_vocab saved_vocab; // resuming: the checkpoint's vocabulary
    int has_saved_vocab;
    tz_batcher tb;
    int B, T; // B: the global batch, which every rank draws
    long lo, nb; // this rank's rows of it (dist_rows): the streams whose state it carries
    real *full; // several ranks: rank 0's room for every rank's carried state (checkpoints)
    long eval_n; // validation tokens used
    tz_rng sample_rng; // samples draw from their own generator: they never move the dropout masks
    real *kept; // the carried state, kept while a sample or validation runs (NULL: none)
    size_t n_carried;
    char *vtext; // the vocabulary as saved in checkpoints
} lm_task;

// The carried state is (K, nb, D) on each rank, (K, B, D) in a checkpoint whatever the ranks.
static size_t carried_width(const lm_task *s, const tz_task *t, size_t *K) {
    *K = t->def->carried_blocks ? (size_t)t->def->carried_blocks(t->model) : 1;
    return s->nb ? s->n_carried / (*K * (size_t)s->nb) : 0;
}

static void lm_resume(tz_task *t, const tz_ckpt_meta *m, const char *ckpt, FILE *out) {
    lm_task *s = t->self;
    // The batcher picks up where it was: same RNG draws, same stream position.
    memcpy(s->tb.rng.s, m->rng, sizeof s->tb.rng.s);
    tz_batcher_skip(&s->tb, m->step);
    real *carried = t->def->carried ? t->def->carried(t->model, &s->n_carried) : NULL;
    if (!carried) return;
    size_t K, D = carried_width(s, t, &K), n = K * (size_t)s->B * D;
    real *all = s->nb == s->B ? carried : malloc(sizeof(real) * n); // every stream's state, this rank's rows taken
    if (!all) tz_fail("train: out of memory for the carried state");
    int got = tz_ckpt_load_carried(ckpt, all, n); // the state it stopped with
    if (got < 0)
        fprintf(out, "note: %s was saved with another batch size: the carried state starts from zeros\n", ckpt);
    for (size_t k = 0; got > 0 && all != carried && k < K; k++)
        memcpy(carried + k * s->nb * D, all + (k * s->B + s->lo) * D, sizeof(real) * s->nb * D);
    if (all != carried) free(all);
}

static void lm_next(tz_task *t, tz_batch *b) {
    lm_task *s = t->self;
    if (tz_batcher_next(&s->tb, b) && t->def->stream) t->def->reset(t->model, (int)s->nb);
    dist_batch_rows(b); // every rank draws the global batch and keeps its rows
}

// Cross-entropy summed over the validation split's first eval_n tokens (all of them unless
// [train] eval_tokens cuts the split) and the number of targets, without gradients or dropout:
// each position is predicted once, with the model's full left context (tz_batcher_init_eval). A
// streaming model runs fewer streams when the text is too short for B full-length ones. The
// training state is kept: the carried recurrent state is copied aside and put back and the
// training batch size restored, so training continues mid-stream as if no validation had run.
// One pass over the first n tokens of ids (a split) without gradients, as B streams (or windows).
static void eval_tokens(tz_task *t, tz_graph *g, const int *ids, long n, tz_eval *e) {
    lm_task *s = t->self;
    const tz_model_def *def = t->def;
    void *m = t->model;
    int B = s->B, T = s->T;
    if (def->stream && (n - 1) / B < T) B = (int)((n - 1) / T); // fewer, full-length streams
    if (s->kept) memcpy(s->kept, def->carried(m, &s->n_carried), sizeof(real) * s->n_carried);
    tz_batcher eb;
    tz_batcher_init_eval(&eb, ids, n, B, T, def->stream, def->context ? def->context(m) : 0);
    int was_training = g->training;
    g->training = 0;
    tz_no_grad_begin(g);
    long lo, mine; // several ranks: each predicts its rows (streams) of every batch
    dist_rows(B, &lo, &mine);
    if (def->stream && mine) def->reset(m, (int)mine);
    double total = 0;
    long count = 0;
    tz_batch b;
    while (tz_batcher_next(&eb, &b)) {
        if (!dist_batch_rows(&b)) continue;
        tz_graph_reset(g);
        tz_tensor *logits = def->forward(g, m, &b);
        tz_tensor *loss = tz_cross_entropy(g, logits, b.targets, TZ_IGNORE);
        long real_targets = 0; // the mean is over these: the tail's repeats and padding are ignored
        for (int i = 0; i < b.n_targets; i++) real_targets += b.targets[i] != TZ_IGNORE;
        total += loss->data[0] * real_targets;
        count += real_targets;
    }
    tz_no_grad_end(g);
    g->training = was_training;
    if (def->stream) def->reset(m, (int)s->nb); // back to the training batch size ...
    if (s->kept) memcpy(def->carried(m, &s->n_carried), s->kept, sizeof(real) * s->n_carried); // ... and state
    tz_batcher_free(&eb);
    double sums[2] = {total, (double)count};
    dist_sum(sums, 2); // over the ranks' rows
    e->sum_loss = sums[0], e->count = (long)sums[1];
}

static void lm_evaluate(tz_task *t, tz_graph *g, tz_eval *e) {
    lm_task *s = t->self;
    eval_tokens(t, g, s->corpus.ids[SPLIT_VAL], s->eval_n, e);
}

static void lm_save_state(tz_task *t, tz_ckpt_meta *m) {
    lm_task *s = t->self;
    memcpy(m->rng, s->tb.rng.s, sizeof m->rng);
    if (t->def->carried) m->carried = t->def->carried(t->model, &m->carried_n);
    if (m->carried && dist_size() > 1) { // every rank's streams, in rank 0's checkpoint (K, B, D)
        size_t K, D = carried_width(s, t, &K);
        dist_gather_rows(m->carried, s->full, (long)K, s->B, (long)D);
        m->carried = s->full, m->carried_n = K * (size_t)s->B * D;
    }
    m->vocab_text = s->vtext;
}

static void lm_describe(tz_task *t, FILE *text, FILE *json) {
    lm_task *s = t->self;
    fprintf(text, "vocab %d (%s), %ld train / %ld val tokens", s->corpus.vocab.size, tz_tok_name(s->corpus.vocab.kind),
            s->corpus.n[SPLIT_TRAIN], s->eval_n);
    fprintf(json, ",\"vocab\":%d,\"train_tokens\":%ld,\"val_tokens\":%ld", s->corpus.vocab.size,
            s->corpus.n[SPLIT_TRAIN], s->eval_n);
}

static void print_sample(lm_task *s, const tz_task *t, FILE *out) {
    tz_sample_opts so = {(int)cfg_int(s->c, "sample", "tokens"), cfg_float(s->c, "sample", "temperature"),
                         (int)cfg_int(s->c, "sample", "top_k"), s->T};
    tz_sample(t->def, t->model, &s->corpus.vocab, cfg_str(s->c, "sample", "prompt"), &so, &s->sample_rng, out);
}

// Samples must not change training: they draw from sample_rng, and the carried state is kept
// while they run.
static void lm_sample(tz_task *t, long step, FILE *out) {
    lm_task *s = t->self;
    fprintf(out, "--- sample at step %ld\n", step);
    if (s->kept) memcpy(s->kept, t->def->carried(t->model, &s->n_carried), sizeof(real) * s->n_carried);
    print_sample(s, t, out);
    fprintf(out, "\n---\n");
    if (t->def->stream) t->def->reset(t->model, (int)s->nb); // the sampler ran one stream
    if (s->kept) memcpy(t->def->carried(t->model, &s->n_carried), s->kept, sizeof(real) * s->n_carried);
}

// The test split (when [data] test names one), all of it, with the final weights: the figure to
// hold against a paper's table (perplexity = e^loss).
static void lm_finish(tz_task *t, tz_graph *g, FILE *out, FILE *json) {
    lm_task *s = t->self;
    long n_test = s->corpus.n[SPLIT_TEST];
    if (n_test) { // every rank takes part: the sums are over the ranks' rows
        tz_eval e = {0};
        eval_tokens(t, g, s->corpus.ids[SPLIT_TEST], n_test, &e);
        double loss = tz_eval_loss(&e);
        if (json) fprintf(json, ",\"test_loss\":%.6f,\"test_ppl\":%.4f,\"test_tokens\":%ld", loss, exp(loss), e.count);
        else if (!dist_rank()) fprintf(out, "test: %ld tokens, loss %.4f, perplexity %.2f\n", e.count, loss, exp(loss));
    }
    if (json || dist_rank()) return; // --json: nothing but JSON lines, no sample; rank 0 alone prints
    fprintf(out, "--- sample\n");
    print_sample(s, t, out);
    fprintf(out, "\n---\n");
}

static void lm_free(tz_task *t) {
    lm_task *s = t->self;
    free(s->kept);
    free(s->full);
    free(s->vtext);
    tz_batcher_free(&s->tb);
    t->def->free(t->model);
    tz_corpus_free(&s->corpus);
    if (s->has_saved_vocab) tz_vocab_free(&s->saved_vocab);
    free(s);
}

// An evaluated split must hold one block and its next token: checked before training, not at
// the evaluation (which uses fewer streams if need be), so a run never fails after its work.
static void holds_a_block(const cfg *c, const char *split, long n, int T, const char *keys) {
    if (n - 1 < T) tz_fail("%s: %s: %ld tokens are fewer than one block of %d + 1 (%s)", c->path, split, n, T, keys);
}

void tz_task_lm_open(tz_task *t, const tz_task_args *a) {
    cfg *c = a->c;
    const tz_model_def *def = a->def;
    const tz_ckpt_meta *resume = a->resume;
    lm_task *s = calloc(1, sizeof *s);
    if (!s) tz_fail("train: out of memory");
    s->c = c;
    if (resume) {
        if (!tz_vocab_load_text(&s->saved_vocab, resume->vocab_text))
            tz_fail("%s: the saved vocabulary is malformed (%s)", a->resume_path, tz_vocab_error());
        s->has_saved_vocab = 1;
    }
    tz_corpus_load(&s->corpus, c, resume ? &s->saved_vocab : NULL);
    if (!s->corpus.n[SPLIT_VAL]) tz_fail("%s: no validation text ([data] valid, or split < 1)", c->path);
    s->B = (int)cfg_int(c, "train", "batch"), s->T = (int)cfg_int(c, "train", "block");
    if (s->B < dist_size())
        tz_fail("%s: [train] batch = %d is the global batch: %d ranks need at least one row each", c->path, s->B,
                dist_size());
    dist_rows(s->B, &s->lo, &s->nb);
    uint64_t seed = (uint64_t)cfg_int(c, "train", "seed");
    *t = (tz_task){.self = s,
                   .def = def,
                   .resume = lm_resume,
                   .next = lm_next,
                   .evaluate = lm_evaluate,
                   .save_state = lm_save_state,
                   .describe = lm_describe,
                   .finish = lm_finish,
                   .free = lm_free};
    t->model = def->create(c, s->corpus.vocab.size, s->T, a->P, a->rng);
    // A window must hold at least one position with its full left context (Bengio's MLP).
    int context = def->context ? def->context(t->model) : 0;
    if (s->T <= context)
        tz_fail("%s: [train] block = %d is shorter than the model's context %d (a window must hold one)", c->path, s->T,
                context + 1);
    tz_batcher_init(&s->tb, s->corpus.ids[SPLIT_TRAIN], s->corpus.n[SPLIT_TRAIN], s->B, s->T, def->stream, seed + 1);
    long eval_tokens = cfg_int(c, "train", "eval_tokens");
    s->eval_n = eval_tokens > 0 && eval_tokens < s->corpus.n[SPLIT_VAL] ? eval_tokens : s->corpus.n[SPLIT_VAL];
    holds_a_block(c, "validation", s->eval_n, s->T, "[train] eval_tokens, block");
    if (s->corpus.n[SPLIT_TEST]) holds_a_block(c, "[data] test", s->corpus.n[SPLIT_TEST], s->T, "[train] block");
    // The saved configuration names the data by absolute paths: it must work from the run dir.
    for (int k = 0; k < N_SPLITS; k++) {
        const char *key = k == SPLIT_TRAIN ? "path" : k == SPLIT_VAL ? "valid" : "test";
        char abs[PATH_MAX];
        if (cfg_str(c, "data", key)[0] && realpath(s->corpus.path[k], abs)) cfg_set(c, "data", key, abs, "resolved");
    }
    s->vtext = tz_vocab_text(&s->corpus.vocab);
    tz_rng_seed(&s->sample_rng, seed + 3);
    if (def->stream) def->reset(t->model, (int)s->nb);
    if (def->carried) def->carried(t->model, &s->n_carried);
    // made once: the batch size, and so the state's size, is fixed
    if (s->n_carried && !(s->kept = malloc(sizeof(real) * s->n_carried)))
        tz_fail("train: out of memory for the carried state");
    if (s->n_carried && dist_size() > 1) {
        if (!def->carried_blocks)
            tz_fail("%s: [model] type = %s carries a state of no known layout: it trains on one rank only", c->path,
                    def->name);
        size_t K, D = carried_width(s, t, &K);
        if (!dist_rank() && !(s->full = malloc(sizeof(real) * K * (size_t)s->B * D)))
            tz_fail("train: out of memory for the carried state");
    }
    if (!a->json) { // samples will be printed: the prompt must encode before any step is spent
        const char *prompt = cfg_str(c, "sample", "prompt");
        long n_ids, unk;
        int *ids = tz_vocab_encode(&s->corpus.vocab, prompt, strlen(prompt), &n_ids, &unk);
        free(ids);
        if (unk && s->corpus.vocab.unk < 0)
            tz_fail("%s: [sample] prompt has %ld token%s outside the vocabulary (%d %s tokens of the training text); "
                    "change it or pass --json (no samples)",
                    c->path, unk, unk > 1 ? "s" : "", s->corpus.vocab.size, tz_tok_name(s->corpus.vocab.kind));
        if (cfg_int(c, "train", "sample_every") > 0 && !dist_rank()) t->sample = lm_sample; // rank 0 prints
    }
}
