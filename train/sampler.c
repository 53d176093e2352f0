// sampler.c: see sampler.h.
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tz_pick(const real *logits, int V, double temperature, int top_k, tz_rng *r) {
    int best = 0;
    for (int j = 1; j < V; j++)
        if (logits[j] > logits[best]) best = j;
    if (temperature <= 0) return best;
    // The k-th largest logit is the cut (ties may let a few more in; they are as likely).
    double cut = -INFINITY;
    if (top_k > 0 && top_k < V) {
        real *sorted = malloc(sizeof(real) * V);
        memcpy(sorted, logits, sizeof(real) * V);
        for (int i = 0; i < top_k; i++) { // partial selection: k is small
            int m = i;
            for (int j = i + 1; j < V; j++)
                if (sorted[j] > sorted[m]) m = j;
            real t = sorted[i];
            sorted[i] = sorted[m], sorted[m] = t;
        }
        cut = sorted[top_k - 1];
        free(sorted);
    }
    double total = 0, mx = logits[best];
    for (int j = 0; j < V; j++)
        if (logits[j] >= cut) total += exp((logits[j] - mx) / temperature);
    double u = tz_rng_uniform(r) * total;
    for (int j = 0; j < V; j++) {
        if (logits[j] < cut) continue;
        u -= exp((logits[j] - mx) / temperature);
        if (u <= 0) return j;
    }
    return best;
}

int tz_sample(const tz_model_def *def, void *m, const tz_vocab *v, const char *prompt, const tz_sample_opts *o,
              tz_rng *r, FILE *out) {
    long n_prompt, unk;
    int *prompt_ids = tz_vocab_encode(v, prompt, strlen(prompt), &n_prompt, &unk);
    if (unk && v->unk < 0) tz_fail("sample: the prompt has %ld tokens outside the vocabulary", unk);
    int ctx = def->context ? def->context(m) : 0, cap = (int)n_prompt + o->tokens + ctx + 1;
    int *ids = malloc(sizeof(int) * cap), *ys = calloc(cap, sizeof(int));
    int n = 0;
    if (n_prompt == 0) ids[n++] = v->eos >= 0 ? v->eos : 0; // something to condition on
    for (long i = 0; i < n_prompt; i++) ids[n++] = prompt_ids[i];
    fputs(prompt, out);
    tz_graph g;
    tz_graph_init(&g, 1 << 20);
    g.training = 0;
    tz_no_grad_begin(&g);
    if (def->stream) def->reset(m, 1);
    int fed = 0; // stream and decode models: tokens already consumed
    for (int k = 0; k < o->tokens; k++) {
        tz_graph_reset(&g);
        tz_batch b;
        tz_tensor *logits = NULL;
        if (def->decode) { // a cache: feed only what is new; when full, start over on the last half
            logits = def->decode(&g, m, ids + fed, n - fed, fed == 0);
            if (!logits) {
                fed = n - (o->block / 2 > 0 ? o->block / 2 : 1);
                logits = def->decode(&g, m, ids + fed, n - fed, 1);
            }
            fed = n;
        } else if (def->stream) {
            b = (tz_batch){.B = 1, .T = n - fed, .x = ids + fed, .y = ys};
            fed = n;
        } else { // the last `block` tokens (at least the model's context, padded at the left)
            int T = n < o->block ? n : o->block, pad = T < ctx + 1 ? ctx + 1 - T : 0;
            int *x = tz_arena_alloc(&g.arena, sizeof(int) * (T + pad));
            for (int i = 0; i < pad; i++) x[i] = ids[0];
            memcpy(x + pad, ids + n - T, sizeof(int) * T);
            b = (tz_batch){.B = 1, .T = T + pad, .x = x, .y = ys};
        }
        if (!logits) logits = def->forward(&g, m, &b);
        int V = tz_cols(logits), next = tz_pick(logits->data + (long)(tz_rows(logits) - 1) * V, V, o->temperature, o->top_k, r);
        ids[n++] = next;
        if (v->kind == TOK_WORD) fprintf(out, next == v->eos ? "\n" : "%s ", v->tok[next]);
        else tz_vocab_decode(v, &next, 1, out);
        fflush(out);
    }
    tz_graph_free(&g);
    free(prompt_ids);
    free(ids);
    free(ys);
    return o->tokens;
}
