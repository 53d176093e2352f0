// run.c: the command line, the configuration and the run directory (see run.h).
#include "run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: train CFG [section.key=value ...] [--json]\n"
               "       train --resume RUN_DIR [section.key=value ...] [--json]\n"
               "  CFG            a model's cfg, e.g. models/transformer.cfg\n"
               "  section.key=v  override any cfg key, e.g. train.steps=200 optim.lr=3e-4\n"
               "  --resume DIR   continue the run in DIR from its last checkpoint\n"
               "  --json         JSON lines on stdout (events config, train, val, summary), nothing else\n"
               "  --profile      at the end, ms per step of each op's forward and backward (after the warm-up)\n");
}

int tz_run_args(tz_run *r, int argc, char **argv) {
    r->over = calloc(argc, sizeof *r->over);
    if (!r->over) tz_fail("train: out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) r->json = 1;
        else if (!strcmp(argv[i], "--profile")) r->profile = 1;
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) r->resume = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (argv[i][0] == '-') return fprintf(stderr, "train: unknown option '%s'\n", argv[i]), usage(stderr), 2;
        else if (strchr(argv[i], '=')) r->over[r->n_over++] = argv[i];
        else if (!r->cfg_path) r->cfg_path = argv[i];
        else return fprintf(stderr, "train: more than one cfg ('%s' and '%s')\n", r->cfg_path, argv[i]), 2;
    }
    if (!r->cfg_path == !r->resume) return usage(stderr), 2;
    r->out = r->json ? stderr : stdout; // with --json, stdout carries only JSON lines
    r->js = r->json ? stdout : NULL;
    return -1;
}

void tz_run_open(tz_run *r) {
    static char resume_cfg[1100];
    if (r->resume) {
        snprintf(r->last, sizeof r->last, "%s/last.safetensors", r->resume);
        tz_ckpt_read_meta(r->last, &r->meta);
        snprintf(resume_cfg, sizeof resume_cfg, "%s/config.cfg", r->resume);
        FILE *f = fopen(resume_cfg, "w");
        if (!f || fputs(r->meta.cfg_text, f) < 0 || fclose(f)) tz_fail("cannot write %s", resume_cfg);
        r->cfg_path = resume_cfg;
    }
    r->def = tz_cfg_load(&r->c, r->cfg_path, r->over, r->n_over);
    if (r->resume && strcmp(r->meta.model, r->def->name))
        tz_fail("%s: a checkpoint of '%s', the cfg is for '%s'", r->last, r->meta.model, r->def->name);
    const cfg *c = &r->c;
    long steps = cfg_int(c, "train", "steps"), eval_every = cfg_int(c, "train", "eval_every");
    long log_every = cfg_int(c, "train", "log_every");
    int B = (int)cfg_int(c, "train", "batch"), T = (int)cfg_int(c, "train", "block");
    if (steps < 0 || B < 1 || T < 1 || eval_every < 1 || log_every < 1)
        tz_fail("%s: [train] steps >= 0, batch, block, eval_every and log_every >= 1 (got %ld, %d, %d, %ld, %ld)", r->cfg_path,
                steps, B, T, eval_every, log_every);
    snprintf(r->dir, sizeof r->dir, "%s", r->resume ? r->resume : cfg_str(c, "train", "out_dir"));
    if (!r->dir[0]) snprintf(r->dir, sizeof r->dir, "runs/%s", r->def->name);
}

static void mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) tz_fail("cannot create the run directory %s (%s)", path, strerror(errno));
}

void tz_run_start(tz_run *r) {
    mkdir_p(r->dir);
    snprintf(r->last, sizeof r->last, "%s/last.safetensors", r->dir);
    snprintf(r->best, sizeof r->best, "%s/best.safetensors", r->dir);
    snprintf(r->cfg_copy, sizeof r->cfg_copy, "%s/config.cfg", r->dir);
    snprintf(r->log_path, sizeof r->log_path, "%s/log.csv", r->dir);
    size_t len;
    FILE *cm = open_memstream(&r->cfg_text, &len);
    if (!cm) tz_fail("train: out of memory for the cfg text");
    cfg_write(&r->c, cm);
    if (fclose(cm)) tz_fail("train: out of memory for the cfg text");
    FILE *cf = fopen(r->cfg_copy, "w");
    if (!cf || fputs(r->cfg_text, cf) < 0 || fclose(cf)) tz_fail("cannot write %s", r->cfg_copy);
}

void tz_run_free(tz_run *r) {
    free(r->cfg_text);
    free(r->over);
    if (r->resume) tz_ckpt_meta_free(&r->meta);
}
