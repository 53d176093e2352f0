// The trainer's parts: strict cfg errors, tokenizers, batchers, checkpoints; and every model of
// the zoo learning on a tiny generated text, with the first losses of a fixed seed pinned.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batcher.h"
#include "checkpoint.h"
#include "corpus.h"
#include "helpers.h"
#include "setup.h"

// Writes text to a fresh temporary file and returns its path (static buffer per call site).
static const char *temp_file(char *path, const char *text) {
    strcpy(path, "/tmp/tapezoo-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char *cfg_error(const char *text, const char *override) {
    char path[64];
    temp_file(path, text);
    static cfg c;
    char *over[1] = {(char *) override};
    int failed = EXPECT_FAIL(tz_cfg_load(&c, path, over, override ? 1 : 0));
    unlink(path);
    if (!failed) return NULL;
    const char *msg = tz_last_error(); // without the temporary file's path
    return strncmp(msg, path, strlen(path)) ? msg : msg + strlen(path) + 1;
}

Test(cfg, strict_errors_name_line_and_key) {
    const char *base = "[model]\ntype = mlp\n[data]\npath = x.txt\n";
    char text[512];
    snprintf(text, sizeof text, "%s[train]\nstesp = 10\n", base);
    cr_assert_str_eq(cfg_error(text, NULL), "6: unknown key 'stesp' in [train] (did you mean 'steps'?)");
    cr_assert_str_eq(cfg_error("steps = 10\n[model]\ntype = mlp\n", NULL), "1: key 'steps' comes before any [section]");
    snprintf(text, sizeof text, "%s[train]\nsteps 10\n", base);
    cr_assert_str_eq(cfg_error(text, NULL), "6: missing '=' in 'steps 10' (want key = value)");
    snprintf(text, sizeof text, "%s[train]\nsteps = 1O\n", base);
    cr_assert_str_eq(cfg_error(text, NULL), "6: [train] steps = '1O' is not an integer (want an integer)");
    snprintf(text, sizeof text, "%s[trian]\n", base);
    cr_assert_str_eq(cfg_error(text, NULL), "5: unknown section [trian] (did you mean 'train'?)");
    snprintf(text, sizeof text, "%s[optim]\nlr = 1\nlr = 2 ; again\n", base);
    cr_assert(strstr(cfg_error(text, NULL), "7: [optim] lr is set twice (first at "));
    cr_assert_str_eq(cfg_error("[model]\ntype = mlp\n", NULL),
                     " [data] path is required (training text (or the one file to split), relative to the cfg file)");
    cr_assert_str_eq(cfg_error("[model]\ntype = mpl\n", NULL),
                     " [model] type = 'mpl' is not a model of the zoo (mlp, rnn, lstm, gru, transformer, hybrid, "
                     "rnnenc, rnnsearch, transformer_mt)");
    cr_assert_str_eq(cfg_error(base, "optim.lrr=3"),
                     "command line override 1: unknown key 'lrr' in [optim] (did you mean 'lr'?)");
    cr_assert_str_eq(cfg_error(base, "hidden=3"), "command line override 1: 'hidden=3' is not section.key=value");
    // A model's keys exist only for that model.
    snprintf(text, sizeof text, "%s[model]\npeephole = true\n", "[data]\npath = x.txt\n[model]\ntype = mlp\n");
    cr_assert(cfg_error(text, NULL) != NULL);
}

Test(cfg, values_comments_and_overrides) {
    char path[64];
    temp_file(path, "# comment\n[model]  \n  type=lstm   # trailing\n[data]\npath = a b.txt ; semicolon comment\n"
                    "[train]\nsteps = 7\nclip = 2.5\n[optim]\nnesterov = yes\n");
    static cfg c;
    char *over[] = {"train.steps=9", "model.hidden=12"};
    const tz_model_def *def = tz_cfg_load(&c, path, over, 2);
    unlink(path);
    cr_assert_str_eq(def->name, "lstm");
    cr_assert_eq(cfg_int(&c, "train", "steps"), 9);
    cr_assert_eq(cfg_int(&c, "model", "hidden"), 12);
    cr_assert_float_eq(cfg_float(&c, "train", "clip"), 2.5, 1e-12);
    cr_assert_str_eq(cfg_str(&c, "data", "path"), "a b.txt");
    cr_assert(cfg_bool(&c, "optim", "nesterov"));
    cr_assert_eq(cfg_int(&c, "model", "layers"), 2, "the model's own default");
    cr_assert(cfg_is_set(&c, "train", "clip") && !cfg_is_set(&c, "train", "batch"));
}

static void roundtrip(tz_tok_kind kind, const char *text, int merges) {
    tz_vocab v;
    tz_vocab_build(&v, kind, text, strlen(text), 1, merges);
    long n, unk;
    int *ids = tz_vocab_encode(&v, text, strlen(text), &n, &unk);
    cr_assert_eq(unk, 0);
    char *back;
    size_t size;
    FILE *f = open_memstream(&back, &size);
    tz_vocab_decode(&v, ids, n, f);
    fclose(f);
    if (kind != TOK_WORD) cr_assert_str_eq(back, text);
    // save -> load gives the same ids
    char *saved;
    f = open_memstream(&saved, &size);
    tz_vocab_save(&v, f);
    fclose(f);
    tz_vocab w;
    f = fmemopen(saved, size, "r");
    cr_assert(tz_vocab_load(&w, f));
    fclose(f);
    long n2;
    int *ids2 = tz_vocab_encode(&w, text, strlen(text), &n2, &unk);
    cr_assert_eq(n2, n);
    cr_assert_arr_eq(ids2, ids, sizeof(int) * n);
    free(ids), free(ids2), free(back), free(saved);
    tz_vocab_free(&v), tz_vocab_free(&w);
}

Test(vocab, char_word_bpe) {
    const char *text = "to be or not to be\nthat is the question\nto be\n";
    roundtrip(TOK_CHAR, text, 0);
    roundtrip(TOK_WORD, text, 0);
    roundtrip(TOK_BPE, text, 20);
    tz_vocab v;
    tz_vocab_build(&v, TOK_BPE, text, strlen(text), 1, 20);
    long n, unk;
    free(tz_vocab_encode(&v, text, strlen(text), &n, &unk));
    cr_assert_lt(n, (long)strlen(text) * 3 / 4, "BPE merges shorten the text: %ld tokens for %zu chars", n,
                 strlen(text));
    cr_assert_geq(tz_vocab_find(&v, "to be"), 0, "the most frequent pairs merge first");
    tz_vocab_free(&v);
    tz_vocab_build(&v, TOK_WORD, text, strlen(text), 2, 0); // words seen once become <unk>
    cr_assert_geq(v.unk, 0);
    cr_assert_geq(v.eos, 0);
    cr_assert_eq(tz_vocab_find(&v, "question"), -1);
    cr_assert_eq(tz_vocab_find(&v, "to"), 0, "the most frequent word has id 0");
    int *ids = tz_vocab_encode(&v, "to question\n", 12, &n, &unk);
    cr_assert_eq(n, 3);
    cr_assert_eq(unk, 1);
    cr_assert_eq(ids[1], v.unk);
    cr_assert_eq(ids[2], v.eos);
    free(ids);
    tz_vocab_free(&v);
}

Test(batcher, windows_streams_and_eval) {
    int ids[100];
    for (int i = 0; i < 100; i++) ids[i] = i;
    tz_batcher b;
    tz_batch x;
    tz_batcher_init(&b, ids, 100, 4, 8, 0, 1);
    tz_batcher_next(&b, &x);
    for (int i = 0; i < 4 * 8; i++) cr_assert_eq(x.y[i], x.x[i] + 1, "targets are the next tokens");
    tz_batcher_free(&b);
    // streams: 4 streams of 24; each batch continues where the last stopped, then wraps
    tz_batcher_init(&b, ids, 100, 4, 8, 1, 1);
    int first = tz_batcher_next(&b, &x);
    cr_assert_eq(first, 0);
    cr_assert_eq(x.x[8], 24, "stream 1 starts a quarter in");
    cr_assert_eq(tz_batcher_next(&b, &x), 0);
    cr_assert_eq(x.x[0], 8);
    tz_batcher_next(&b, &x);
    cr_assert_eq(tz_batcher_next(&b, &x), 1, "the fourth batch starts over: the state must be reset");
    cr_assert_eq(x.x[0], 0);
    // skipping puts a fresh batcher exactly where 11 calls leave this one (across two wraps)
    for (int i = 4; i < 11; i++) tz_batcher_next(&b, &x);
    tz_batcher c;
    tz_batch y;
    tz_batcher_init(&c, ids, 100, 4, 8, 1, 1);
    tz_batcher_skip(&c, 11);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(tz_batcher_next(&b, &x), tz_batcher_next(&c, &y), "wrap flag at call %d", 12 + i);
        cr_assert_arr_eq(x.x, y.x, sizeof(int) * 32, "batch %d after skipping", 12 + i);
    }
    tz_batcher_free(&c);
    tz_batcher_free(&b);
    // evaluation windows overlapping by the context: every position predicted exactly once
    tz_batcher_init_eval(&b, ids, 100, 3, 10, 0, 4);
    int seen[100] = {0}, batches = 0;
    while (tz_batcher_next(&b, &x)) {
        batches++;
        for (int r = 0; r < x.B; r++)
            for (int t = 4; t < 10; t++)
                if (x.y[r * 10 + t] != TZ_IGNORE) seen[x.y[r * 10 + t]]++;
    }
    for (int i = 5; i < 100; i++) cr_assert_eq(seen[i], 1, "position %d seen %d times", i, seen[i]); // the tail too
    cr_assert_gt(batches, 1);
    tz_batcher_free(&b);
    cr_assert(EXPECT_FAIL(tz_batcher_init(&b, ids, 10, 4, 8, 1, 1)));
}

Test(checkpoint, roundtrip_and_errors) {
    tz_params P;
    tz_params_init(&P);
    tz_tensor *w = tz_param(&P, "layer.weight", 2, (const int[]){3, 4}),
              *bias = tz_param(&P, "layer.bias", 1, (const int[]){3});
    for (int i = 0; i < 12; i++) w->data[i] = i * 0.5f - 2;
    for (int i = 0; i < 3; i++) bias->data[i] = -i;
    nn_optim_config oc = nn_optim_defaults(NN_OPTIM_ADAM);
    nn_optim o;
    nn_optim_init(&o, &P, &oc);
    for (size_t i = 0; i < P.n; i++) P.grad[i] = 0.1f * i;
    nn_optim_step(&o, &P, 0.01);
    char path[] = "/tmp/tapezoo-ckpt-XXXXXX";
    close(mkstemp(path));
    tz_ckpt_meta m = {.step = 42,
                      .best_val = 1.5,
                      .best_step = 40,
                      .rng = {1, 2, 3, 0xffffffffffffffffull},
                      .cfg_text = "[model]\ntype = \"mlp\"\t\\\n",
                      .vocab_text = "tapezoo-vocab"};
    strcpy(m.model, "mlp");
    tz_ckpt_save(path, &P, &o, &m);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(access(tmp, F_OK) != 0, "no temporary file is left behind");
    // a second, fresh model of the same shape loads it all back
    tz_params Q;
    tz_params_init(&Q);
    tz_param(&Q, "layer.weight", 2, (const int[]){3, 4});
    tz_param(&Q, "layer.bias", 1, (const int[]){3});
    nn_optim q;
    nn_optim_init(&q, &Q, &oc);
    tz_ckpt_load(path, &Q, &q);
    cr_assert_arr_eq(Q.data, P.data, sizeof(real) * P.n);
    cr_assert_arr_eq(q.state[0], o.state[0], sizeof(real) * P.n);
    cr_assert_arr_eq(q.state[1], o.state[1], sizeof(real) * P.n);
    cr_assert_eq(q.step, 1);
    tz_ckpt_meta r;
    tz_ckpt_read_meta(path, &r);
    cr_assert_eq(r.step, 42);
    cr_assert_eq(r.best_step, 40);
    cr_assert_eq(r.rng[3], 0xffffffffffffffffull);
    cr_assert_str_eq(r.cfg_text, m.cfg_text);
    cr_assert_str_eq(r.model, "mlp");
    tz_ckpt_meta_free(&r);
    // a different model: one line naming the tensor and both shapes
    tz_params W;
    tz_params_init(&W);
    tz_param(&W, "layer.weight", 2, (const int[]){4, 4});
    cr_assert(EXPECT_FAIL(tz_ckpt_load(path, &W, NULL)));
    cr_assert(strstr(tz_last_error(), "tensor 'layer.weight' has shape [3,4], the model wants [4,4]"), "%s",
              tz_last_error());
    tz_params_free(&W);
    tz_params_init(&W);
    tz_param(&W, "other", 1, (const int[]){3});
    cr_assert(EXPECT_FAIL(tz_ckpt_load(path, &W, NULL)));
    cr_assert(strstr(tz_last_error(), "no tensor 'other'"), "%s", tz_last_error());
    // a truncated file is refused
    truncate(path, 40);
    cr_assert(EXPECT_FAIL(tz_ckpt_load(path, &Q, NULL)));
    unlink(path);
    cr_assert(EXPECT_FAIL(tz_ckpt_read_meta(path, &r)));
    tz_params_free(&W), tz_params_free(&P), tz_params_free(&Q);
    nn_optim_free(&o), nn_optim_free(&q);
}

// A few KB of text with structure to learn: sentences from a tiny grammar.
static const char *tiny_text(void) {
    static char text[6000];
    if (text[0]) return text;
    const char *who[] = {"the cat", "a dog", "my friend", "the king"},
               *did[] = {"sat on", "looked at", "ran to", "sang for"};
    const char *what[] = {"the mat", "a tree", "the queen", "my house"};
    tz_rng r;
    tz_rng_seed(&r, 5);
    size_t n = 0;
    while (n < sizeof text - 64)
        n += sprintf(text + n, "%s %s %s.\n", who[tz_rng_below(&r, 4)], did[tz_rng_below(&r, 4)],
                     what[tz_rng_below(&r, 4)]);
    return text;
}

// Trains `type` for `steps` steps (tiny sizes) and returns the losses.
static void train_tiny(const char *type, const char *const *over, int steps, double *losses) {
    char data[64], path[64], text[256];
    temp_file(data, tiny_text());
    snprintf(text, sizeof text,
             "[model]\ntype = %s\n[data]\npath = %s\n[train]\nbatch = 8\nblock = 16\nseed = 3\n[optim]\nlr = 1e-2\n",
             type, data);
    temp_file(path, text);
    static cfg c;
    int n_over = 0;
    while (over[n_over]) n_over++;
    const tz_model_def *def = tz_cfg_load(&c, path, (char *const *)over, n_over);
    tz_corpus corpus;
    tz_corpus_load(&corpus, &c, NULL);
    unlink(data), unlink(path);
    tz_rng rng;
    tz_rng_seed(&rng, (uint64_t)cfg_int(&c, "train", "seed"));
    tz_params P;
    tz_params_init(&P);
    void *m = def->create(&c, corpus.vocab.size, (int)cfg_int(&c, "train", "block"), &P, &rng);
    nn_optim_config oc = tz_optim_config(&c);
    nn_optim o;
    nn_optim_init(&o, &P, &oc);
    tz_batcher b;
    int B = (int)cfg_int(&c, "train", "batch"), T = (int)cfg_int(&c, "train", "block");
    tz_batcher_init(&b, corpus.ids[SPLIT_TRAIN], corpus.n[SPLIT_TRAIN], B, T, def->stream, 9);
    tz_graph g;
    tz_graph_init(&g, 1 << 20);
    tz_rng_seed(&g.rng, 11);
    if (def->stream) def->reset(m, B);
    for (int s = 0; s < steps; s++) {
        tz_batch x;
        if (tz_batcher_next(&b, &x) && def->stream) def->reset(m, B);
        tz_graph_reset(&g);
        tz_params_zero_grad(&P);
        tz_tensor *logits = def->forward(&g, m, &x); // sets x.targets
        tz_tensor *loss = tz_cross_entropy(&g, logits, x.targets, -1);
        tz_backward(&g, loss);
        nn_clip_grad_norm(&P, 5);
        nn_optim_step(&o, &P, cfg_float(&c, "optim", "lr"));
        losses[s] = loss->data[0];
    }
    tz_graph_free(&g);
    tz_batcher_free(&b);
    nn_optim_free(&o);
    def->free(m);
    tz_params_free(&P);
    tz_corpus_free(&corpus);
}

static void learns(const char *type, const char *const *over) {
    double losses[60];
    // Under valgrind (~50x slower) 5 steps run every op's forward and backward for the memory
    // check; whether the model learns is the plain and ASan suites' question.
    if (getenv("TZ_UNDER_VALGRIND")) {
        train_tiny(type, over, 5, losses);
        cr_assert(isfinite(losses[4]), "%s: loss %g after 5 steps", type, losses[4]);
        return;
    }
    train_tiny(type, over, 60, losses);
    double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[57] + losses[58] + losses[59]) / 3;
    cr_assert(isfinite(last));
    cr_assert_lt(last, 0.6 * first, "%s: loss %.3f -> %.3f in 60 steps", type, first, last);
}

#define SMALL "model.hidden=32", "model.embed=16"
Test(models, mlp_learns) { learns("mlp", (const char *const[]){SMALL, "model.context=4", NULL}); }
Test(models, rnn_learns) { learns("rnn", (const char *const[]){SMALL, NULL}); }
Test(models, lstm_learns) { learns("lstm", (const char *const[]){SMALL, NULL}); }
Test(models, gru_learns) { learns("gru", (const char *const[]){SMALL, NULL}); }
Test(models, transformer_learns) {
    learns("transformer",
           (const char *const[]){"model.layers=2", "model.d_model=32", "model.d_ff=64", "model.heads=2", NULL});
}
Test(models, hybrid_learns) { learns("hybrid", (const char *const[]){SMALL, "model.heads=2", NULL}); }

// Regression: the first losses of a fixed-seed run, as this build computed them when the test
// was written. A change to initialisation, batching, RNG streams or any op's forward shows here.
Test(models, first_losses_are_pinned) {
    static const struct {
        const char *type, *extra;
        double want[3];
    } cases[] = {
        {"mlp", "model.context=4", {3.128300, 2.947240, 2.761004}},
        {"lstm", "model.layers=2", {3.112065, 3.021406, 2.876990}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        double got[3];
        train_tiny(cases[k].type, (const char *const[]){SMALL, cases[k].extra, NULL}, 3, got);
        for (int i = 0; i < 3; i++)
            cr_expect(fabs(got[i] - cases[k].want[i]) < 1e-4, "%s step %d: loss %.6f, pinned %.6f", cases[k].type, i,
                      got[i], cases[k].want[i]);
    }
}

// The Transformer LM's sampling path (decode: a KV cache, one call per token or several) gives
// the logits its training forward gives for the same positions, for each kind of positions and
// with embeddings scaled by sqrt(d_model).
Test(models, transformer_decode_equals_forward) {
    static const char *variants[][2] = {{"model.positions=learned", "model.embed_scale=false"},
                                        {"model.positions=sinusoidal", "model.embed_scale=true"},
                                        {"model.positions=rope", "model.embed_scale=true"}};
    enum { V = 11, T = 8 };
    char path[64];
    temp_file(path, "[model]\ntype = transformer\nlayers = 2\nheads = 2\nd_model = 16\nd_ff = 32\n"
                    "[data]\npath = unread.txt\n[train]\nblock = 8\n");
    for (int k = 0; k < 3; k++) {
        static cfg c;
        const tz_model_def *def = tz_cfg_load(&c, path, (char *const *)variants[k], 2);
        tz_rng rng;
        tz_rng_seed(&rng, 7);
        tz_params P;
        tz_params_init(&P);
        void *m = def->create(&c, V, T, &P, &rng);
        int ids[T + 1];
        for (int i = 0; i <= T; i++) ids[i] = (int)tz_rng_below(&rng, V);
        tz_graph g;
        tz_graph_init(&g, 1 << 20);
        g.training = 0;
        tz_batch b = {.B = 1, .T = T, .x = ids, .y = ids + 1};
        tz_tensor *full = def->forward(&g, m, &b);
        real want[T * V];
        memcpy(want, full->data, sizeof want);
        int pos = 0;
        for (int n = 1; pos < T; n++) { // 1, 2, 3 then the last 2 positions: cache and chunks
            if (pos + n > T) n = T - pos;
            tz_graph_reset(&g);
            tz_tensor *got = def->decode(&g, m, ids + pos, n, pos == 0);
            cr_assert(got, "%s: decode refused %d positions at %d", variants[k][0], n, pos);
            for (int i = 0; i < n * V; i++)
                cr_assert_float_eq(got->data[i], want[pos * V + i], 1e-4, "%s %s: position %d, logit %d: %g vs %g",
                                   variants[k][0], variants[k][1], pos + i / V, i % V, got->data[i], want[pos * V + i]);
            pos += n;
        }
        tz_graph_free(&g);
        def->free(m);
        tz_params_free(&P);
    }
    unlink(path);
}
