// task_pairs.c: the translation task: a paired corpus or a synthetic pair task (pairs.h,
// synth.h), length-bucketed batches of padded pairs, validation cross-entropy per real target
// token (padding skipped), checkpoints with both vocabularies, the test split kept in the run
// directory (test.src, test.ref; with [data] write_split also train.* and val.*). Each validation also decodes the validation pairs greedily and
// reports corpus BLEU and exact match (metrics "bleu", "exact"); the end of a run reports the
// test loss, test BLEU greedy and with beam [train] test_beam (5), BLEU by source length (1-4,
// 5-7, 8-10 words) and exact match. BLEU compares the decoded words (<unk> included) with the
// preprocessed references, so an <unk> never matches.
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bleu.h"
#include "dist.h"
#include "pairs.h"
#include "task.h"
#include "translate.h"

typedef struct pairs_task {
    const cfg *c;
    tz_pairs data;
    tz_pairset val; // the validation pairs used (the first ones, [train] eval_tokens)
    long val_tokens; // their real target tokens (each target and its <eos>)
    tz_pair_batcher tb;
    int B;
    char *src_vtext, *tgt_vtext; // the vocabularies as checkpoints hold them
    int decodes; // the model has mt_encode and mt_step: BLEU and exact match
} pairs_task;

static void load_vocab(tz_vocab *v, const char *text, const char *what, const char *ckpt) {
    if (!text) tz_fail("%s: the saved %s vocabulary is missing (not a translation run's checkpoint)", ckpt, what);
    if (!tz_vocab_load_text(v, text))
        tz_fail("%s: the saved %s vocabulary is malformed: %s", ckpt, what, tz_vocab_error());
}

static void pairs_resume(tz_task *t, const tz_ckpt_meta *m, const char *ckpt, FILE *out) {
    (void)ckpt, (void)out;
    pairs_task *s = t->self;
    tz_pair_batcher_seek(&s->tb, m->step); // batch k depends on (seed, k) only: one batch a step
}

static void pairs_next(tz_task *t, tz_batch *b) {
    pairs_task *s = t->self;
    tz_pair_batcher_next(&s->tb, b);
    dist_batch_rows(b); // every rank draws the global batch and keeps its rows
}

// Real targets (y1..yn and <eos>) of a batch: the padding (TZ_IGNORE) does not count.
static long real_targets(const tz_batch *b) {
    long n = 0;
    for (long i = 0; i < (long)b->B * b->T; i++) n += b->y[i] != TZ_IGNORE;
    return n;
}

static long pairs_n_targets(tz_task *t, const tz_batch *b) {
    (void)t;
    return real_targets(b);
}

// Cross-entropy summed over every real target of a set, without gradients; returns the count.
static long set_loss(tz_task *t, tz_graph *g, const tz_pairset *set, double *sum) {
    pairs_task *s = t->self;
    tz_pair_batcher eb;
    tz_pair_batcher_init_eval(&eb, set, s->B);
    int was_training = g->training;
    g->training = 0;
    tz_no_grad_begin(g);
    double total = 0;
    long count = 0;
    tz_batch b;
    while (tz_pair_batcher_next(&eb, &b)) {
        if (!dist_batch_rows(&b)) continue; // several ranks: each its rows of every batch
        tz_graph_reset(g);
        tz_tensor *logits = t->def->forward(g, t->model, &b);
        tz_tensor *loss = tz_cross_entropy(g, logits, b.targets, TZ_IGNORE); // mean over the real targets
        long n = real_targets(&b);
        total += (double)loss->data[0] * n;
        count += n;
    }
    tz_no_grad_end(g);
    g->training = was_training;
    tz_pair_batcher_free(&eb);
    double sums[2] = {total, (double)count};
    dist_sum(sums, 2); // over the ranks
    *sum = sums[0];
    return (long)sums[1];
}

// The text of a hypothesis: word tokens joined by spaces, BPE tokens concatenated (malloc'd).
static char *hyp_text(const tz_vocab *v, const int *ids, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(v->tok[ids[i]]) + 1;
    char *text = malloc(len), *p = text;
    if (!text) tz_fail("train: out of memory for a translation");
    for (int i = 0; i < n; i++) p += sprintf(p, "%s%s", i && v->kind == TOK_WORD ? " " : "", v->tok[ids[i]]);
    *p = 0;
    return text;
}

// Words of a preprocessed sentence.
static int words(const char *s) {
    int n = *s != 0;
    for (; *s; s++) n += *s == ' ';
    return n;
}

enum { N_BUCKETS = 3 };
static const int bucket_upper[N_BUCKETS] = TZ_BLEU_BUCKETS;

typedef struct set_scores {
    double bleu, exact; // corpus BLEU (0-100), exact matches (percent)
    double bucket_bleu[N_BUCKETS]; // by source length in words: 1-4, 5-7, 8-10 (and longer)
    int bucket_n[N_BUCKETS];
} set_scores;

// BLEU's sufficient statistics, exact matches and sentence counts summed over the ranks.
static void sum_scores(tz_bleu_stats *all, tz_bleu_stats *bucket, long *exact, int *bucket_n) {
    enum { PER = 2 + 2 * TZ_BLEU_N, N = (1 + N_BUCKETS) * PER + 1 + N_BUCKETS };
    double v[N];
    int k = 0;
    for (int b = 0; b <= N_BUCKETS; b++) {
        tz_bleu_stats *st = b ? &bucket[b - 1] : all;
        v[k++] = (double)st->hyp_len, v[k++] = (double)st->ref_len;
        for (int i = 0; i < TZ_BLEU_N; i++) v[k++] = (double)st->correct[i], v[k++] = (double)st->total[i];
    }
    v[k++] = (double)*exact;
    for (int b = 0; b < N_BUCKETS; b++) v[k++] = bucket_n[b];
    dist_sum(v, N); // counts below 2^53: exact in doubles
    k = 0;
    for (int b = 0; b <= N_BUCKETS; b++) {
        tz_bleu_stats *st = b ? &bucket[b - 1] : all;
        st->hyp_len = (long)v[k++], st->ref_len = (long)v[k++];
        for (int i = 0; i < TZ_BLEU_N; i++) st->correct[i] = (long)v[k++], st->total[i] = (long)v[k++];
    }
    *exact = (long)v[k++];
    for (int b = 0; b < N_BUCKETS; b++) bucket_n[b] = (int)v[k++];
}

// Decodes every source of set (beam 1: greedy) and scores the translations against its references.
// Several ranks: each decodes its share of the sources, and the statistics are summed.
static set_scores set_translate(tz_task *t, tz_graph *g, const tz_pairset *set, int beam) {
    pairs_task *s = t->self;
    set_scores r = {0};
    if (set->n == 0) return r;
    long first, mine;
    dist_rows(set->n, &first, &mine);
    int n = (int)mine;
    const int **src = malloc(sizeof *src * (n ? n : 1));
    int *len = malloc(sizeof *len * (n ? n : 1));
    tz_hyp *h = calloc(n ? n : 1, sizeof *h);
    if (!src || !len || !h) tz_fail("train: out of memory for %d translations", n);
    for (int i = 0; i < n; i++) src[i] = set->src + set->src_off[first + i], len[i] = tz_pair_src_len(set, first + i);
    tz_decode_opts o = tz_decode_defaults();
    o.beam = beam, o.n_best = 1, o.graph = g; // the trainer's arena: no second one beside it
    if (o.batch > s->B) o.batch = s->B;
    if (n) tz_translate(t->def, t->model, &o, src, len, n, h);
    tz_bleu_stats all = {0}, bucket[N_BUCKETS] = {{0}};
    long exact = 0;
    for (int i = 0; i < n; i++) {
        char *hyp = h[i].len >= 0 ? hyp_text(&s->data.tgt_vocab, h[i].ids, h[i].len) : NULL;
        const char *ref = tz_sent(&set->tgt_text, first + i);
        int k = 0, w = words(tz_sent(&set->src_text, first + i));
        while (k < N_BUCKETS - 1 && w > bucket_upper[k]) k++;
        tz_bleu_add_text(&all, hyp ? hyp : "", ref);
        tz_bleu_add_text(&bucket[k], hyp ? hyp : "", ref);
        r.bucket_n[k]++;
        exact += hyp && !strcmp(hyp, ref);
        free(hyp);
    }
    sum_scores(&all, bucket, &exact, r.bucket_n);
    r.bleu = tz_bleu_score(&all, NULL, NULL);
    r.exact = 100.0 * exact / set->n;
    for (int k = 0; k < N_BUCKETS; k++) r.bucket_bleu[k] = r.bucket_n[k] ? tz_bleu_score(&bucket[k], NULL, NULL) : 0;
    tz_hyps_free(h, n);
    free(h);
    free(len);
    free(src);
    return r;
}

static void pairs_evaluate(tz_task *t, tz_graph *g, tz_eval *e) {
    pairs_task *s = t->self;
    e->count = set_loss(t, g, &s->val, &e->sum_loss);
    if (!s->decodes) return;
    set_scores v = set_translate(t, g, &s->val, 1);
    e->metric[0] = v.bleu, e->metric[1] = v.exact;
}

static void pairs_save_state(tz_task *t, tz_ckpt_meta *m) {
    pairs_task *s = t->self;
    m->vocab_text = s->tgt_vtext;
    m->src_vocab_text = s->src_vtext;
    m->rng[0] = (uint64_t)tz_pair_batcher_tell(&s->tb); // for the record: resuming seeks to the step
}

static void pairs_describe(tz_task *t, FILE *text, FILE *json) {
    pairs_task *s = t->self;
    const tz_pairs *d = &s->data;
    fprintf(text, "vocab %d source / %d target (%s), %ld train / %ld val pairs (%ld val target tokens), %ld test pairs",
            d->src_vocab.size, d->tgt_vocab.size, tz_tok_name(d->src_vocab.kind), d->set[SPLIT_TRAIN].n, s->val.n,
            s->val_tokens, d->set[SPLIT_TEST].n);
    if (!d->set[SPLIT_TRAIN].n) fprintf(text, " (training strings drawn fresh every batch)");
    fprintf(
        json,
        ",\"vocab\":%d,\"src_vocab\":%d,\"train_pairs\":%ld,\"val_pairs\":%ld,\"val_tokens\":%ld,\"test_pairs\":%ld",
        d->tgt_vocab.size, d->src_vocab.size, d->set[SPLIT_TRAIN].n, s->val.n, s->val_tokens, d->set[SPLIT_TEST].n);
}

// The test loss (nats per target token), BLEU greedy and with [train] test_beam (0 or 1: greedy
// only: a synthetic task's length experiment needs no beam), by source length, exact match.
static void pairs_finish(tz_task *t, tz_graph *g, FILE *out, FILE *json) {
    pairs_task *s = t->self;
    const tz_pairset *test = &s->data.set[SPLIT_TEST];
    if (!test->n) return;
    double sum;
    long n = set_loss(t, g, test, &sum);
    if (!s->decodes) {
        fprintf(out, "test: %ld pairs, loss %.4f per target token\n", test->n, sum / n);
        if (json) fprintf(json, ",\"test_loss\":%.6f", sum / n);
        return;
    }
    int beam_width = (int)cfg_int(s->c, "train", "test_beam");
    set_scores greedy = set_translate(t, g, test, 1), beam = {0};
    if (beam_width > 1) beam = set_translate(t, g, test, beam_width);
    fprintf(out, "test: %ld pairs, loss %.4f per target token, BLEU %.2f greedy", test->n, sum / n, greedy.bleu);
    if (beam_width > 1) fprintf(out, ", %.2f beam %d", beam.bleu, beam_width);
    fprintf(out, "; exact %.2f%% greedy\n", greedy.exact);
    fprintf(out, "test BLEU (greedy) by source length:");
    for (int k = 0, lo = 1; k < N_BUCKETS; lo = bucket_upper[k++] + 1)
        fprintf(out, " %d-%d words %.2f (%d)%s", lo, bucket_upper[k], greedy.bucket_bleu[k], greedy.bucket_n[k],
                k + 1 < N_BUCKETS ? "," : "\n");
    if (!json) return;
    fprintf(json, ",\"test_loss\":%.6f,\"test_bleu\":%.4f", sum / n, greedy.bleu);
    if (beam_width > 1) fprintf(json, ",\"test_bleu_beam\":%.4f", beam.bleu);
    fprintf(json, ",\"test_exact\":%.4f,\"test_bleu_by_len\":{", greedy.exact);
    for (int k = 0, lo = 1; k < N_BUCKETS; lo = bucket_upper[k++] + 1)
        fprintf(json, "%s\"%d-%d\":%.4f", k ? "," : "", lo, bucket_upper[k], greedy.bucket_bleu[k]);
    fputc('}', json);
}

static void pairs_free(tz_task *t) {
    pairs_task *s = t->self;
    free(s->src_vtext);
    free(s->tgt_vtext);
    tz_pair_batcher_free(&s->tb);
    t->def->free(t->model);
    tz_pairs_free(&s->data);
    free(s);
}

int tz_task_metrics(const tz_model_def *def, const char *names[TZ_TASK_MAX_METRICS]) {
    if (!def->pairs || !def->mt_encode || !def->mt_step) return 0;
    names[0] = "bleu", names[1] = "exact"; // pairs_evaluate fills metric[0] and [1] in this order
    return 2;
}

void tz_task_pairs_open(tz_task *t, const tz_task_args *a) {
    cfg *c = a->c;
    const tz_model_def *def = a->def;
    if (!def->mt_create) tz_fail("%s: [model] type = %s is not a translation model", c->path, def->name);
    tz_data_kind kind = tz_data_kind_of(c);
    if (kind == TZ_DATA_TEXT)
        tz_fail("%s: [model] type = %s translates: it needs [data] kind = pairs, reverse or copy (not text)", c->path,
                def->name);
    if (kind == TZ_DATA_PAIRS) tz_pairs_cfg_resolve(c);
    pairs_task *s = calloc(1, sizeof *s);
    if (!s) tz_fail("train: out of memory");
    s->c = c;
    tz_vocab sv, tv;
    if (a->resume) {
        load_vocab(&sv, a->resume->src_vocab_text, "source", a->resume_path);
        load_vocab(&tv, a->resume->vocab_text, "target", a->resume_path);
    }
    tz_pairs_load(&s->data, c, a->resume ? &sv : NULL, a->resume ? &tv : NULL,
                  dist_rank() ? NULL
                  : a->json   ? stderr
                              : stdout); // rank 0 alone prints
    if (a->resume) tz_vocab_free(&sv), tz_vocab_free(&tv);
    if (!s->data.set[SPLIT_VAL].n) tz_fail("%s: no validation pairs ([data] val_split, or valid)", c->path);
    // The saved configuration names the data by absolute paths: it must work from the run dir.
    if (kind == TZ_DATA_PAIRS)
        for (int k = 0; k < N_SPLITS; k++) {
            const char *key = k == SPLIT_TRAIN ? "path" : k == SPLIT_VAL ? "valid" : "test";
            char abs[PATH_MAX];
            if (cfg_str(c, "data", key)[0] && realpath(s->data.path[k], abs)) cfg_set(c, "data", key, abs, "resolved");
        }
    s->B = (int)cfg_int(c, "train", "batch");
    if (s->B < dist_size())
        tz_fail("%s: [train] batch = %d is the global batch: %d ranks need at least one pair each", c->path, s->B,
                dist_size());
    uint64_t seed = (uint64_t)cfg_int(c, "train", "seed");
    long bucket = cfg_int(c, "data", "bucket");
    *t = (tz_task){.self = s,
                   .def = def,
                   .resume = pairs_resume,
                   .next = pairs_next,
                   .n_targets = pairs_n_targets,
                   .evaluate = pairs_evaluate,
                   .save_state = pairs_save_state,
                   .describe = pairs_describe,
                   .finish = pairs_finish,
                   .free = pairs_free};
    t->n_metrics = tz_task_metrics(def, t->metric_names);
    s->decodes = t->n_metrics > 0; // else loss only (a model without the decoding calls)
    t->model = def->mt_create(c, s->data.src_vocab.size, s->data.tgt_vocab.size, a->P, a->rng);
    tz_pairs_train_batcher(&s->tb, &s->data, s->B, bucket < 1 ? 1 : bucket > INT_MAX ? INT_MAX : (int)bucket, seed + 1);
    // Validation on the first pairs whose targets hold eval_tokens tokens (0: all of them).
    long eval_tokens = cfg_int(c, "train", "eval_tokens");
    s->val = s->data.set[SPLIT_VAL]; // a view of a prefix: the offsets of the first n pairs
    long n = 0, tokens = 0;
    while (n < s->val.n && (eval_tokens <= 0 || tokens < eval_tokens)) tokens += tz_pair_tgt_len(&s->val, n++) + 1;
    s->val.n = n, s->val_tokens = tokens;
    s->src_vtext = tz_vocab_text(&s->data.src_vocab);
    s->tgt_vtext = tz_vocab_text(&s->data.tgt_vocab);
}

void tz_task_pairs_keep_split(tz_task *t, const char *dir) {
    pairs_task *s = t->self;
    if (s->data.set[SPLIT_TEST].n) tz_pairs_write_test(&s->data, dir);
    // [data] write_split: the training and validation pairs too, so that another implementation
    // (tools/bench/torch_mt_ref.py) trains and validates on exactly this split.
    if (s->data.kind != TZ_DATA_PAIRS || !cfg_bool(s->c, "data", "write_split")) return;
    static const char *names[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        char a[PATH_MAX + 16], b[PATH_MAX + 16];
        snprintf(a, sizeof a, "%s/%s.src", dir, names[k]);
        snprintf(b, sizeof b, "%s/%s.ref", dir, names[k]);
        tz_pairset_write(&s->data.set[k == 0 ? SPLIT_TRAIN : SPLIT_VAL], a, b);
    }
}
