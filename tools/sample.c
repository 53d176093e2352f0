// sample: text from a trained run.
//   sample RUN_DIR [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--greedy]
//                  [--seed S] [--checkpoint best|last]
// Rebuilds the model from the checkpoint's own cfg and vocabulary (no data needed).
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

static double number(const char *opt, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v) fprintf(stderr, "sample: %s wants a number, got '%s'\n", opt, v), exit(2);
    return x;
}

int main(int argc, char **argv) {
    const char *run = NULL, *prompt = NULL, *which = "best";
    tz_sample_opts o = {.tokens = 500, .temperature = 0.8, .top_k = 0};
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        else if (!strcmp(a, "--greedy")) o.temperature = 0;
        else if (v && !strcmp(a, "--prompt")) prompt = v, i++;
        else if (v && !strcmp(a, "--tokens")) o.tokens = (int)number(a, v), i++;
        else if (v && !strcmp(a, "--temperature")) o.temperature = number(a, v), i++;
        else if (v && !strcmp(a, "--top-k")) o.top_k = (int)number(a, v), i++;
        else if (v && !strcmp(a, "--seed")) seed = (unsigned long long)number(a, v), i++;
        else if (v && !strcmp(a, "--checkpoint")) which = v, i++;
        else if (a[0] == '-') return fprintf(stderr, "sample: unknown option '%s'\n", a), usage(stderr), 2;
        else if (!run) run = a;
        else return usage(stderr), 2;
    }
    if (!run || o.tokens < 0 || o.temperature < 0 || o.top_k < 0) return usage(stderr), 2;
    if (strcmp(which, "best") && strcmp(which, "last")) return fprintf(stderr, "sample: --checkpoint best or last\n"), 2;
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.safetensors", run, which);
    if (!strcmp(which, "best") && access(path, F_OK)) snprintf(path, sizeof path, "%s/last.safetensors", run);
    if (access(path, F_OK)) tz_fail("%s: no checkpoint (is %s a run directory of ./train?)", path, run);
    tz_ckpt_meta meta;
    tz_ckpt_read_meta(path, &meta);
    // The run's own configuration, from the checkpoint, through a temporary file.
    char cfg_path[] = "/tmp/tapezoo-sample-XXXXXX";
    int fd = mkstemp(cfg_path);
    if (fd < 0 || write(fd, meta.cfg_text, strlen(meta.cfg_text)) != (ssize_t)strlen(meta.cfg_text)) tz_fail("sample: cannot write a temporary file");
    close(fd);
    static cfg c;
    const tz_model_def *def = tz_cfg_load(&c, cfg_path, NULL, 0);
    unlink(cfg_path);
    if (def->pairs) tz_fail("%s: %s is a translation model (type %s): use ./translate", path, run, def->name);
    tz_vocab v;
    FILE *vf = fmemopen(meta.vocab_text, strlen(meta.vocab_text), "r");
    if (!vf || !tz_vocab_load(&v, vf)) tz_fail("%s: the saved vocabulary is malformed", path);
    fclose(vf);
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_params P;
    tz_params_init(&P);
    void *m = def->create(&c, v.size, &P, &r);
    tz_ckpt_load(path, &P, NULL);
    o.block = (int)cfg_int(&c, "train", "block");
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
