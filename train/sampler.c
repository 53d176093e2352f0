// sampler.c: see sampler.h.
#include "sampler.h"

#include <limits.h>
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
        real *sorted = malloc(sizeof(real) * (size_t)V);
        if (!sorted) tz_fail("sample: out of memory");
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

const real *tz_sample_next(tz_graph *g, const tz_model_def *def, void *m, const int *ids, int n, int *fed, int block,
                           int *V) {
    tz_tensor *logits = NULL;
    int ctx = def->context ? def->context(m) : 0;
    if (def->decode) { // a cache: feed only what is new; when full, start over on the last half
        logits = def->decode(g, m, ids + *fed, n - *fed, *fed == 0);
        if (!logits) {
            *fed = n - (block / 2 > 0 ? block / 2 : 1);
            logits = def->decode(g, m, ids + *fed, n - *fed, 1);
            if (!logits) tz_fail("sample: %s cannot decode %d tokens after a reset", def->name, n - *fed);
        }
        *fed = n;
    } else if (def->stream) { // the state carries the past: feed what is new
        if (*fed == 0) def->reset(m, 1);
        int *ys = tz_arena_calloc(&g->arena, sizeof(int) * (size_t)(n - *fed));
        tz_batch b = {.B = 1, .T = n - *fed, .x = ids + *fed, .y = ys};
        logits = def->forward(g, m, &b);
        *fed = n;
    } else { // the last `block` tokens (at least the model's context, padded at the left)
        int T = n < block ? n : block, pad = T < ctx + 1 ? ctx + 1 - T : 0;
        int *x = tz_arena_alloc(&g->arena, sizeof(int) * (size_t)(T + pad));
        int *ys = tz_arena_calloc(&g->arena, sizeof(int) * (size_t)(T + pad));
        for (int i = 0; i < pad; i++) x[i] = ids[0];
        memcpy(x + pad, ids + n - T, sizeof(int) * (size_t)T);
        tz_batch b = {.B = 1, .T = T + pad, .x = x, .y = ys};
        logits = def->forward(g, m, &b);
    }
    *V = tz_cols(logits);
    return logits->data + (size_t)(tz_rows(logits) - 1) * *V;
}

void tz_sample_check(const tz_sample_opts *o) {
    if (o->tokens < 0 || o->tokens > TZ_SAMPLE_MAX_TOKENS)
        tz_fail("sample: tokens = %d is out of range (0 to %d)", o->tokens, TZ_SAMPLE_MAX_TOKENS);
    if (!(o->temperature >= 0 && o->temperature <= 1000))
        tz_fail("sample: temperature = %g is out of range (0 to 1000; 0: always the most likely token)",
                o->temperature);
    if (o->top_k < 0) tz_fail("sample: top_k = %d is out of range (0: the whole vocabulary, or k >= 1)", o->top_k);
    if (o->block < 1) tz_fail("sample: block = %d is out of range (>= 1)", o->block);
}

int tz_sample(const tz_model_def *def, void *m, const tz_vocab *v, const char *prompt, const tz_sample_opts *o,
              tz_rng *r, FILE *out) {
    tz_sample_check(o);
    long n_prompt, unk;
    int *prompt_ids = tz_vocab_encode(v, prompt, strlen(prompt), &n_prompt, &unk);
    if (!prompt_ids && n_prompt > 0) tz_fail("sample: out of memory for the prompt");
    if (unk && v->unk < 0) free(prompt_ids), tz_fail("sample: the prompt has %ld tokens outside the vocabulary", unk);
    // n_prompt is below the prompt's length in bytes, tokens below 10^7: no overflow in long.
    long cap = n_prompt + o->tokens + 1;
    if (cap > INT_MAX) free(prompt_ids), tz_fail("sample: a prompt of %ld tokens is too long", n_prompt);
    int *ids = malloc(sizeof(int) * (size_t)cap);
    if (!ids) free(prompt_ids), tz_fail("sample: out of memory for %ld tokens", cap);
    int n = 0;
    if (n_prompt == 0) ids[n++] = v->eos >= 0 ? v->eos : 0; // something to condition on
    for (long i = 0; i < n_prompt; i++) ids[n++] = prompt_ids[i];
    free(prompt_ids);
    fputs(prompt, out);
    tz_graph g;
    tz_graph_init(&g, 1 << 20);
    g.training = 0;
    tz_no_grad_begin(&g);
    int fed = 0; // stream and decode models: tokens already consumed
    for (int k = 0; k < o->tokens; k++) {
        tz_graph_reset(&g);
        int V;
        const real *logits = tz_sample_next(&g, def, m, ids, n, &fed, o->block, &V);
        int next = tz_pick(logits, V, o->temperature, o->top_k, r);
        ids[n++] = next;
        if (v->kind == TOK_WORD) fprintf(out, next == v->eos ? "\n" : "%s ", v->tok[next]);
        else tz_vocab_decode(v, &next, 1, out);
        fflush(out);
    }
    tz_graph_free(&g);
    free(ids);
    return o->tokens;
}
