// sample: text from a trained run.
//   sample RUN_DIR [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--greedy]
//                  [--seed S] [--checkpoint best|last]
// Rebuilds the model from the checkpoint's own cfg and vocabulary (no data needed).
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "sampler.h"
#include "setup.h"

static void usage(FILE *f) {
    fprintf(f, "usage: sample RUN_DIR [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--greedy]\n"
               "                      [--seed S] [--checkpoint best|last]\n"
               "  defaults: the run's [sample] prompt, tokens 500, temperature 0.8, top-k 0 (all), seed 1,\n"
               "  checkpoint best (last if the run has no best yet)\n");
}

// Option values: one line naming the option and what it accepts, then exit status 2.
static double number(const char *opt, const char *v, double lo, double hi) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        fprintf(stderr, "sample: %s wants a number in [%g, %g], got '%s'\n", opt, lo, hi, v), exit(2);
    return x;
}
static long whole(const char *opt, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) || *end || errno || x < lo || x > hi)
        fprintf(stderr, "sample: %s wants a whole number in [%ld, %ld], got '%s'\n", opt, lo, hi, v), exit(2);
    return x;
}

int main(int argc, char **argv) {
    const char *run = NULL, *prompt = NULL, *which = "best";
    tz_sample_opts o = {.tokens = 500, .temperature = 0.8, .top_k = 0};
    unsigned long long seed = 1;
    static const char *const with_value[] = {"--prompt", "--tokens", "--temperature",
                                             "--top-k",  "--seed",   "--checkpoint"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        for (size_t k = 0; !v && k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(a, with_value[k])) return fprintf(stderr, "sample: %s needs a value\n", a), usage(stderr), 2;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        else if (!strcmp(a, "--greedy")) o.temperature = 0;
        else if (v && !strcmp(a, "--prompt")) prompt = v, i++;
        else if (v && !strcmp(a, "--tokens")) o.tokens = (int)whole(a, v, 0, TZ_SAMPLE_MAX_TOKENS), i++;
        else if (v && !strcmp(a, "--temperature")) o.temperature = number(a, v, 0, 1000), i++;
        else if (v && !strcmp(a, "--top-k")) o.top_k = (int)whole(a, v, 0, INT_MAX), i++;
        else if (v && !strcmp(a, "--seed")) seed = (unsigned long long)whole(a, v, 0, LONG_MAX), i++;
        else if (v && !strcmp(a, "--checkpoint")) which = v, i++;
        else if (a[0] == '-') return fprintf(stderr, "sample: unknown option '%s'\n", a), usage(stderr), 2;
        else if (!run) run = a;
        else return fprintf(stderr, "sample: one run directory only ('%s' and '%s')\n", run, a), usage(stderr), 2;
    }
    if (!run) return fprintf(stderr, "sample: which run? (a run directory of ./train)\n"), usage(stderr), 2;
    if (strcmp(which, "best") && strcmp(which, "last"))
        return fprintf(stderr, "sample: --checkpoint wants best or last, got '%s'\n", which), 2;
    char path[1100];
    if (snprintf(path, sizeof path, "%s/%s.safetensors", run, which) >= (int)sizeof path)
        tz_fail("sample: run directory path too long");
    if (!strcmp(which, "best") && access(path, F_OK)) snprintf(path, sizeof path, "%s/last.safetensors", run);
    if (access(path, F_OK)) tz_fail("%s: no checkpoint (is %s a run directory of ./train?)", path, run);
    tz_ckpt_meta meta;
    tz_ckpt_read_meta(path, &meta);
    // The run's own configuration, from the checkpoint (errors name it as "<path> (saved cfg):line").
    char name[1200];
    snprintf(name, sizeof name, "%s (saved cfg)", path);
    static cfg c;
    const tz_model_def *def = tz_cfg_load_text(&c, meta.cfg_text, strlen(meta.cfg_text), name, NULL, 0);
    if (strcmp(def->name, meta.model))
        tz_fail("%s: a checkpoint of '%s' whose cfg builds '%s'", path, meta.model, def->name);
    if (def->pairs) tz_fail("%s: a translation model ('%s'): use ./translate", path, def->name);
    tz_vocab v;
    if (!tz_vocab_load_text(&v, meta.vocab_text))
        tz_fail("%s: the saved vocabulary is malformed (%s)", path, tz_vocab_error());
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_params P;
    tz_params_init(&P);
    long block = cfg_int(&c, "train", "block");
    if (block < 1 || block > INT_MAX) tz_fail("%s: its cfg has [train] block = %ld (want >= 1)", path, block);
    o.block = (int)block;
    void *m = def->create(&c, v.size, o.block, &P, &r);
    tz_ckpt_load(path, &P, NULL);
    tz_rng_seed(&r, seed);
    tz_sample(def, m, &v, prompt ? prompt : cfg_str(&c, "sample", "prompt"), &o, &r, stdout);
    fputc('\n', stdout);
    fprintf(stderr, "sample: %s, %s step %ld\n", def->name, path, meta.step);
    def->free(m);
    tz_params_free(&P);
    tz_vocab_free(&v);
    tz_ckpt_meta_free(&meta);
    return 0;
}
