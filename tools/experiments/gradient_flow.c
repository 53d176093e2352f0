// gradient_flow.c: how far back a character-level recurrent LM's gradient reaches, during training.
//
//   gradient-flow CORPUS --cell rnn|lstm|gru [--init uniform|orthogonal] [--clip C] [--steps N]
//                 [--probe S,S,..] [--out FILE] [--hidden H] [--embed E] [--batch B] [--block T]
//                 [--lr LR] [--kmax K] [--windows W] [--seed S] [--selftest]
//
// Trains embedding -> one recurrent layer (tanh RNN, LSTM or GRU) -> linear on random windows
// of CORPUS's first 90 % (plain SGD on the mean cross-entropy, the gradient's global norm
// clipped to C when C > 0), and at each probe step S measures ||dL/dh_{T-k}|| for k = 0..K,
// where L is the loss of the LAST step T only of a window of K+1 characters from the last 10 %
// (the classic setting of Bengio et al. 1994 and Pascanu et al. 2013). The figure for each k is
// the geometric mean over W windows of the per-window norm (the loss is per window, not the
// batch mean), so a few exploding windows do not hide the typical one. A norm below float's
// range (an underflow: e.g. every tanh saturated) counts as 1e-45.
//
// The recurrent ops of nn/ are fused over the whole sequence, so their per-step hidden-state
// gradients never leave the backward. The probe builds the window one step at a time instead:
// each step is the same fused op over a sequence of length 1 whose initial state is the
// previous step's output, so after tz_backward each step's output holds dL/dh_t (for the LSTM,
// rows [h_t; c_t]; we report h_t). Nothing in nn/ changes. --selftest checks the construction:
// the chained steps' gradient with respect to the embedded inputs must equal the fused
// sequence's, and the loss must be the same.
//
// The recurrent weights W_hh start U(-1/sqrt(H), 1/sqrt(H)) (uniform: PyTorch's default) or
// orthogonal, one orthogonal block per gate (Saxe et al. 2014); every other weight keeps
// PyTorch's default.
//
// Output: --out FILE gets "k norm_at_S1 norm_at_S2 ..." lines after '#' comment lines; stdout
// gets one JSON line: the settings, the training curve (mean loss every 50 steps), the largest
// gradient norm before clipping, how many steps were clipped, the step the run diverged at (the
// loss or a gradient not finite: training stops there; probes after it are left out), and the
// probe losses.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "gemm.h"
#include "nn.h"

#define MAX_PROBES 16

typedef struct {
    const char *corpus, *out, *init;
    nn_cell_kind cell;
    double clip, lr;
    int steps, hidden, embed, batch, block, kmax, windows, seed, selftest;
    int probe[MAX_PROBES], n_probe;
} opts;

typedef struct {
    nn_embedding emb;
    nn_recurrent rnn;
    nn_linear out;
    int V, E, H;
} model;

static void usage(void) {
    fprintf(stderr,
            "usage: gradient-flow CORPUS --cell rnn|lstm|gru [--init uniform|orthogonal] [--clip C] [--steps N]\n"
            "                     [--probe S,S,..] [--out FILE] [--hidden H] [--embed E] [--batch B] [--block T]\n"
            "                     [--lr LR] [--kmax K] [--windows W] [--seed S] [--selftest]\n");
    exit(2);
}

static long num(const char *flag, const char *s, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        tz_fail("gradient-flow: %s %s: want an integer in [%ld, %ld]", flag, s, lo, hi);
    return v;
}

static double real_arg(const char *flag, const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0) || !isfinite(v)) tz_fail("gradient-flow: %s %s: want a number >= 0", flag, s);
    return v;
}

static opts parse(int argc, char **argv) {
    opts o = {.init = "uniform",
              .lr = 1,
              .steps = 1000,
              .hidden = 128,
              .embed = 32,
              .batch = 32,
              .block = 64,
              .kmax = 100,
              .windows = 64,
              .seed = 1};
    int have_cell = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--selftest")) {
            o.selftest = 1;
            continue;
        }
        if (a[0] != '-') {
            if (o.corpus) usage();
            o.corpus = a;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--cell")) {
            if (!nn_cell_parse(v, &o.cell)) tz_fail("gradient-flow: --cell %s: want rnn, lstm or gru", v);
            have_cell = 1;
        } else if (!strcmp(a, "--init")) {
            if (strcmp(v, "uniform") && strcmp(v, "orthogonal"))
                tz_fail("gradient-flow: --init %s: want uniform or orthogonal", v);
            o.init = v;
        } else if (!strcmp(a, "--clip")) o.clip = real_arg(a, v);
        else if (!strcmp(a, "--lr")) o.lr = real_arg(a, v);
        else if (!strcmp(a, "--steps")) o.steps = (int)num(a, v, 0, 10000000);
        else if (!strcmp(a, "--hidden")) o.hidden = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--embed")) o.embed = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--batch")) o.batch = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--block")) o.block = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--kmax")) o.kmax = (int)num(a, v, 0, 4096);
        else if (!strcmp(a, "--windows")) o.windows = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--seed")) o.seed = (int)num(a, v, 0, 1 << 30);
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--probe")) {
            char *s = strdup(v), *save = NULL;
            if (!s) tz_fail("gradient-flow: out of memory");
            for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o.n_probe == MAX_PROBES) tz_fail("gradient-flow: --probe: at most %d steps", MAX_PROBES);
                o.probe[o.n_probe++] = (int)num(a, tok, 0, 10000000);
            }
            free(s);
        } else usage();
    }
    if (!o.corpus || !have_cell) usage();
    if (!o.n_probe) o.probe[o.n_probe++] = o.steps;
    for (int i = 1; i < o.n_probe; i++)
        if (o.probe[i] <= o.probe[i - 1]) tz_fail("gradient-flow: --probe: the steps must increase");
    return o;
}

// The corpus as the trainer's char tokens, *n of them; *V the vocabulary size: its distinct bytes
// in byte order, learned on the whole text ([data] split = 1: the probe's held-out 10 % is cut
// from these ids in main, and its characters are in the vocabulary).
static int *read_corpus(const char *path, long *n, int *V) {
    static cfg c; // a cfg is large: not on the stack
    const cfg_key *const schema[] = {tz_data_keys};
    cfg_init(&c, schema, 1);
    snprintf(c.path, sizeof c.path, "gradient-flow");
    cfg_set(&c, "data", "path", path, "command line");
    cfg_set(&c, "data", "split", "1", "gradient-flow");
    tz_corpus corpus;
    tz_corpus_load(&corpus, &c, NULL);
    int *ids = corpus.ids[SPLIT_TRAIN];
    corpus.ids[SPLIT_TRAIN] = NULL; // kept: the caller frees it
    *n = corpus.n[SPLIT_TRAIN], *V = corpus.vocab.size;
    tz_corpus_free(&corpus);
    return ids;
}

static void model_init(model *m, tz_params *P, const opts *o, int V, tz_rng *r) {
    m->V = V, m->E = o->embed, m->H = o->hidden;
    nn_embedding_init(&m->emb, P, "embed", V, o->embed, (nn_init){0}, r);
    nn_recurrent_config rc = nn_recurrent_defaults(o->cell, o->embed, o->hidden);
    if (!strcmp(o->init, "orthogonal")) rc.recurrent_init = (nn_init){NN_INIT_ORTHOGONAL, 1};
    nn_recurrent_init(&m->rnn, P, "rnn", &rc, r);
    nn_linear_init(&m->out, P, "out", o->hidden, V, 1, (nn_init){0}, r);
}

// ids (T+1 per window, B windows, window-major) -> x (T*B) time-major inputs and y (T*B) targets.
static void time_major(const int *const *win, int B, int T, int *x, int *y) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) x[t * B + b] = win[b][t], y[t * B + b] = win[b][t + 1];
}

// Training loss of B windows of T+1 ids: mean cross-entropy over all T*B predictions.
static tz_tensor *train_loss(tz_graph *g, const model *m, const int *x, const int *y, int B, int T) {
    tz_tensor *e = tz_reshape(g, nn_embedding_forward(g, &m->emb, x, T * B), 3, (const int[]){T, B, m->E});
    tz_tensor *h = nn_recurrent_forward(g, &m->rnn, e, NULL, NULL, NULL, NULL);
    tz_tensor *logits = nn_linear_forward(g, &m->out, tz_reshape(g, h, 2, (const int[]){T * B, m->H}));
    return tz_cross_entropy(g, logits, y, -1);
}

// The probe's loss, built one step at a time: e (T,B,E) embedded inputs; steps[t] receives step
// t's output (its gradient, after backward, is dL/dh_t; an LSTM's is (2,B,H) = [h_t; c_t]).
// Loss: cross-entropy of the last step's prediction of y (B), summed over the windows.
static tz_tensor *probe_loss_steps(tz_graph *g, const model *m, tz_tensor *e, const int *y, tz_tensor **steps) {
    int T = e->shape[0], B = e->shape[1], H = m->H;
    const nn_recurrent_weights *p = &m->rnn.p[0][0];
    tz_tensor *h = NULL, *c = NULL;
    for (int t = 0; t < T; t++) {
        tz_tensor *xt = tz_slice(g, e, 0, t, 1); // (1,B,E), a view
        tz_tensor *s;
        if (m->rnn.c.cell == NN_CELL_LSTM) {
            s = tz_lstm_seq(g, xt, h, c, p->w_ih, p->w_hh, p->b_ih, p->b_hh, p->peep, 0); // (2,B,H)
            c = tz_reshape(g, tz_slice(g, s, 0, 1, 1), 2, (const int[]){B, H});
        } else if (m->rnn.c.cell == NN_CELL_GRU) {
            s = tz_gru_seq(g, xt, h, p->w_ih, p->w_hh, p->b_ih, p->b_hh, m->rnn.c.gru_cho, 0);
        } else {
            s = tz_rnn_seq(g, xt, h, p->w_ih, p->w_hh, p->b_ih, p->b_hh, 0);
        }
        h = tz_reshape(g, tz_slice(g, s, 0, 0, 1), 2, (const int[]){B, H});
        steps[t] = s;
    }
    tz_tensor *logits = nn_linear_forward(g, &m->out, h);
    return tz_scale(g, tz_cross_entropy(g, logits, y, -1), (real)B); // per window, not the batch mean
}

// The same loss through the fused sequence op (for --selftest).
static tz_tensor *probe_loss_fused(tz_graph *g, const model *m, tz_tensor *e, const int *y) {
    int T = e->shape[0], B = e->shape[1];
    tz_tensor *hs = nn_recurrent_forward(g, &m->rnn, e, NULL, NULL, NULL, NULL);
    tz_tensor *last = tz_reshape(g, tz_slice(g, hs, 0, T - 1, 1), 2, (const int[]){B, m->H});
    return tz_scale(g, tz_cross_entropy(g, nn_linear_forward(g, &m->out, last), y, -1), (real)B);
}

// A leaf (T,B,E) holding the embedded inputs, with a gradient buffer.
static tz_tensor *embedded(tz_graph *g, const model *m, const int *x, int T, int B) {
    tz_tensor *e;
    tz_no_grad_begin(g);
    e = nn_embedding_forward(g, &m->emb, x, T * B);
    tz_no_grad_end(g);
    real *grad = tz_arena_calloc(&g->arena, sizeof(real) * (size_t)e->n);
    tz_tensor *leaf = tz_wrap(g, e->data, grad, 3, (const int[]){T, B, m->E});
    leaf->requires_grad = 1;
    return leaf;
}

// norms[k] (k = 0..T-1): geometric mean over the B windows of ||dL/dh_{T-1-k}||; returns the
// mean loss per window.
static double probe(tz_graph *g, tz_params *P, const model *m, const int *x, const int *y, int B, int T,
                    double *norms) {
    tz_params_zero_grad(P);
    tz_graph_reset(g);
    tz_tensor **steps = tz_arena_alloc(&g->arena, sizeof *steps * (size_t)T);
    tz_tensor *loss = probe_loss_steps(g, m, embedded(g, m, x, T, B), y, steps);
    tz_backward(g, loss);
    int H = m->H;
    for (int t = 0; t < T; t++) {
        double sum_log = 0;
        for (int b = 0; b < B; b++) {
            const real *d = steps[t]->grad + (size_t)b * H; // row 0 of an LSTM's [h; c]: h
            double s = 0;
            for (int j = 0; j < H; j++) s += (double)d[j] * d[j];
            sum_log += 0.5 * log(s > 1e-90 ? s : 1e-90); // below float's range (1.4e-45): 0 counts as 1e-45
        }
        norms[T - 1 - t] = exp(sum_log / B);
    }
    double l = loss->data[0] / B;
    tz_params_zero_grad(P);
    return l;
}

// --selftest: the chained steps against the fused op on the probe windows; fails on a mismatch.
static void selftest(tz_graph *g, tz_params *P, const model *m, const int *x, const int *y, int B, int T) {
    real *dx[2], loss[2];
    for (int way = 0; way < 2; way++) {
        tz_params_zero_grad(P);
        tz_graph_reset(g);
        tz_tensor *e = embedded(g, m, x, T, B);
        tz_tensor **steps = tz_arena_alloc(&g->arena, sizeof *steps * (size_t)T);
        tz_tensor *l = way ? probe_loss_fused(g, m, e, y) : probe_loss_steps(g, m, e, y, steps);
        tz_backward(g, l);
        loss[way] = l->data[0];
        dx[way] = tz_malloc(sizeof(real) * (size_t)e->n, "gradient-flow");
        memcpy(dx[way], e->grad, sizeof(real) * (size_t)e->n);
    }
    size_t n = (size_t)T * B * m->E;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += ((double)dx[0][i] - dx[1][i]) * ((double)dx[0][i] - dx[1][i]), den += (double)dx[1][i] * dx[1][i];
    double rel = sqrt(num / (den > 0 ? den : 1)), lrel = fabs((double)loss[0] - loss[1]) / fabs((double)loss[1]);
    free(dx[0]);
    free(dx[1]);
    tz_params_zero_grad(P);
    fprintf(stderr, "gradient-flow: selftest %s: loss %.6g vs %.6g (fused), input gradient relative error %.2e\n",
            nn_cell_name(m->rnn.c.cell), (double)loss[0], (double)loss[1], rel);
    if (!(den > 0 && rel < 1e-4 && lrel < 1e-5))
        tz_fail("gradient-flow: selftest %s: the step-by-step probe differs from the fused op (relative error %.2e, "
                "loss %.2e)",
                nn_cell_name(m->rnn.c.cell), rel, lrel);
}

int main(int argc, char **argv) {
    opts o = parse(argc, argv);
    tz_set_threads(1); // the driver runs several of these side by side
    long n;
    int V;
    int *ids = read_corpus(o.corpus, &n, &V);
    long cut = (long)(0.9 * n), T = o.block, K = o.kmax + 1;
    if (cut <= T + 1 || n - cut <= K + 1)
        tz_fail("gradient-flow: %s: %ld characters are too few for windows of %ld and probes of %ld", o.corpus, n,
                T + 1, K + 1);
    tz_rng rng;
    tz_rng_seed(&rng, (uint64_t)o.seed);
    tz_params P;
    tz_params_init(&P);
    model m;
    model_init(&m, &P, &o, V, &rng);
    nn_optim_config oc = nn_optim_defaults(NN_OPTIM_SGD);
    nn_optim opt;
    nn_optim_init(&opt, &P, &oc);
    tz_graph g;
    tz_graph_init(&g, 1 << 22);

    // The probe windows: W fixed windows of K+1 characters from the held-out 10 %, evenly spaced.
    int W = o.windows;
    const int **pw = tz_malloc(sizeof *pw * (size_t)(W > o.batch ? W : o.batch), "gradient-flow");
    int *px = tz_malloc(sizeof(int) * (size_t)(K * W), "gradient-flow"),
        *py = tz_malloc(sizeof(int) * (size_t)W, "gradient-flow");
    for (int w = 0; w < W; w++) pw[w] = ids + cut + (long)w * (n - cut - K - 1) / W;
    for (int w = 0; w < W; w++) {
        for (int t = 0; t < K; t++) px[t * W + w] = pw[w][t];
        py[w] = pw[w][K];
    }
    if (o.selftest) selftest(&g, &P, &m, px, py, W, (int)K);

    double *norms = tz_malloc(sizeof(double) * (size_t)(K * o.n_probe), "gradient-flow"), probe_loss[MAX_PROBES];
    int done_probes = 0;
    int *x = tz_malloc(sizeof(int) * (size_t)(T * o.batch), "gradient-flow"),
        *y = tz_malloc(sizeof(int) * (size_t)(T * o.batch), "gradient-flow");
    double max_norm = 0, sum = 0, curve[4096];
    int n_curve = 0, clipped = 0, diverged = -1, in_sum = 0;
    // Every 50 steps (short runs: 20 points; long ones: at most 4000).
    int curve_every = o.steps > 50 * 4000 ? o.steps / 4000 : o.steps >= 1000 ? 50 : o.steps / 20 > 0 ? o.steps / 20 : 1;
    for (int step = 0; step <= o.steps; step++) {
        if (done_probes < o.n_probe && o.probe[done_probes] == step) {
            probe_loss[done_probes] = probe(&g, &P, &m, px, py, W, (int)K, norms + (size_t)done_probes * K);
            done_probes++;
        }
        if (step == o.steps) break;
        for (int b = 0; b < o.batch; b++) pw[b] = ids + tz_rng_below(&rng, (uint32_t)(cut - T - 1));
        time_major(pw, o.batch, (int)T, x, y);
        tz_params_zero_grad(&P);
        tz_graph_reset(&g);
        tz_tensor *loss = train_loss(&g, &m, x, y, o.batch, (int)T);
        tz_backward(&g, loss);
        double gn = nn_clip_grad_norm(&P, o.clip > 0 ? o.clip : INFINITY), l = loss->data[0];
        if (!isfinite(l) || !isfinite(gn)) {
            diverged = step + 1;
            break;
        }
        if (gn > max_norm) max_norm = gn;
        if (o.clip > 0 && gn > o.clip) clipped++;
        nn_optim_step(&opt, &P, o.lr);
        sum += l, in_sum++;
        if (in_sum == curve_every && n_curve < 4096) curve[n_curve++] = sum / in_sum, sum = 0, in_sum = 0;
    }
    if (in_sum && n_curve < 4096) curve[n_curve++] = sum / in_sum; // the last, shorter stretch

    if (o.out) {
        FILE *f = fopen(o.out, "w");
        if (!f) tz_fail("gradient-flow: cannot write %s", o.out);
        fprintf(f,
                "# gradient-flow: cell %s, recurrent init %s, clip %g, SGD lr %g, hidden %d, embed %d, batch %d, "
                "block %ld\n",
                nn_cell_name(o.cell), o.init, o.clip, o.lr, o.hidden, o.embed, o.batch, T);
        fprintf(f, "# ||dL/dh_{T-k}||, L the loss of step T only, geometric mean over %d held-out windows\n# k", W);
        for (int p = 0; p < done_probes; p++) fprintf(f, " step_%d", o.probe[p]);
        fputc('\n', f);
        for (long k = 0; k < K; k++) {
            fprintf(f, "%ld", k);
            for (int p = 0; p < done_probes; p++) fprintf(f, " %.6e", norms[(size_t)p * K + k]);
            fputc('\n', f);
        }
        if (fclose(f)) tz_fail("gradient-flow: cannot write %s", o.out);
    }
    printf("{\"cell\":\"%s\",\"init\":\"%s\",\"clip\":%g,\"lr\":%g,\"steps\":%d,\"hidden\":%d,\"params\":%zu,"
           "\"max_grad_norm\":%.6g,\"clipped_steps\":%d,\"diverged_at\":%d,\"curve_every\":%d,\"curve\":[",
           nn_cell_name(o.cell), o.init, o.clip, o.lr, o.steps, o.hidden, P.n, max_norm, clipped, diverged,
           curve_every);
    for (int i = 0; i < n_curve; i++) printf("%s%.5f", i ? "," : "", curve[i]);
    printf("],\"probe_steps\":[");
    for (int p = 0; p < done_probes; p++) printf("%s%d", p ? "," : "", o.probe[p]);
    printf("],\"probe_loss\":[");
    for (int p = 0; p < done_probes; p++) printf("%s%.5f", p ? "," : "", probe_loss[p]);
    printf("],\"norm_k0\":[");
    for (int p = 0; p < done_probes; p++) printf("%s%.6e", p ? "," : "", norms[(size_t)p * K]);
    printf("],\"norm_kmax\":[");
    for (int p = 0; p < done_probes; p++) printf("%s%.6e", p ? "," : "", norms[(size_t)p * K + K - 1]);
    printf("]}\n");

    free(norms), free(x), free(y), free(px), free(py), free(pw), free(ids);
    tz_graph_free(&g);
    nn_optim_free(&opt);
    tz_params_free(&P);
    return 0;
}
