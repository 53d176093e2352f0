// run.c: the command line, the configuration and the run directory (see run.h).
#include "run.h"

#include "dist.h"
#include "gemm.h"
#include "loop.h"
#include "pairs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: train CFG [section.key=value ...] [--json] [--force]\n"
               "       train --resume RUN_DIR [section.key=value ...] [--json]\n"
               "  CFG            a model's cfg, e.g. models/transformer.cfg\n"
               "  section.key=v  override any cfg key, e.g. train.steps=200 optim.lr=3e-4\n"
               "  --resume DIR   continue the run in DIR from its last checkpoint\n"
               "  --force        start over in a run directory that already holds a run (its files are replaced)\n"
               "  --json         JSON lines on stdout (events config, train, val, summary), nothing else\n"
               "  --profile      at the end, ms per step of each op's forward and backward (after the warm-up)\n"
               "  --allreduce-bench N  (under mpirun) time N allreduces of the model's gradients, then exit\n"
               "exit status: 0 done, 1 bad input or a failed write, 3 non-finite or diverged loss,\n"
               "             130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM (both save a checkpoint first)\n");
}

// What a failure removes and adds to its line (see tz_run_on_fail).
static char fail_remove[1100], fail_note[1200];

// With several ranks every rank stops (dist_abort), so none is left waiting for the failed one
// in a reduction. Another rank's line says which rank failed; it waits a moment first, so that
// an error every rank meets (a bad cfg) is said once, by rank 0, whose abort ends the others.
static void on_fail(const char *msg) {
    if (fail_remove[0]) unlink(fail_remove);
    if (dist_rank()) {
        usleep(300 * 1000);
        fprintf(stderr, "tapezoo: rank %d: %s%s\n", dist_rank(), msg, fail_note);
    } else fprintf(stderr, "tapezoo: %s%s\n", msg, fail_note);
    dist_abort(TZ_EXIT_ERROR);
}

void tz_run_on_fail(const char *remove_path, const char *note) {
    snprintf(fail_remove, sizeof fail_remove, "%s", remove_path ? remove_path : "");
    snprintf(fail_note, sizeof fail_note, "%s%s", note ? ": " : "", note ? note : "");
    tz_set_error_handler(on_fail);
}

int tz_run_args(tz_run *r, int argc, char **argv) {
    r->over = calloc(argc, sizeof *r->over);
    if (!r->over) tz_fail("train: out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) r->json = 1;
        else if (!strcmp(argv[i], "--profile")) r->profile = 1;
        else if (!strcmp(argv[i], "--force")) r->force = 1;
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) r->resume = argv[++i];
        else if (!strcmp(argv[i], "--allreduce-bench") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            r->allreduce_bench = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--allreduce-bench"))
            return fprintf(stderr, "train: --allreduce-bench needs a count >= 1\n"), usage(stderr), 2;
        else if (!strcmp(argv[i], "--resume"))
            return fprintf(stderr, "train: --resume needs a run directory\n"), usage(stderr), 2;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (argv[i][0] == '-') return fprintf(stderr, "train: unknown option '%s'\n", argv[i]), usage(stderr), 2;
        else if (strchr(argv[i], '=')) r->over[r->n_over++] = argv[i];
        else if (!r->cfg_path && !r->resume) r->cfg_path = argv[i];
        else if (r->resume)
            return fprintf(stderr, "train: --resume %s takes no cfg ('%s'): the run's own is used\n", r->resume,
                           argv[i]),
                   2;
        else return fprintf(stderr, "train: more than one cfg ('%s' and '%s')\n", r->cfg_path, argv[i]), 2;
    }
    if (!r->cfg_path == !r->resume) return usage(stderr), 2;
    if (r->resume && r->force)
        return fprintf(stderr, "train: --force starts a new run; it does not go with --resume\n"), 2;
    r->out = r->json ? stderr : stdout; // with --json, stdout carries only JSON lines
    r->js = r->json ? stdout : NULL;
    return -1;
}

static const char *const run_files[] = {"last.safetensors", "best.safetensors", "log.csv", "config.cfg"};

// A new run must not silently take over a directory that holds another run: its log would be
// truncated and an early failure would name the old run's checkpoint as this run's.
static void check_run_dir(tz_run *r) {
    struct stat st;
    if (stat(r->dir, &st)) return; // made later
    if (!S_ISDIR(st.st_mode))
        tz_fail("train.out_dir: %s is not a directory (choose another with train.out_dir=DIR)", r->dir);
    if (access(r->dir, W_OK | X_OK))
        tz_fail("train.out_dir: cannot write into the run directory %s (%s)", r->dir, strerror(errno));
    // Rank 0 makes the run (the others would find it); --allreduce-bench makes none.
    if (r->resume || r->force || dist_rank() || r->allreduce_bench) return;
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", r->dir, run_files[i]);
        if (!access(path, F_OK))
            tz_fail("%s already holds a run (%s): continue it with --resume %s, choose another directory with "
                    "train.out_dir=DIR, or replace it with --force",
                    r->dir, run_files[i], r->dir);
    }
}

void tz_run_open(tz_run *r) {
    if (r->resume) {
        for (int i = 0; i < r->n_over; i++)
            if (!strncmp(r->over[i], "train.out_dir=", 14))
                tz_fail(
                    "--resume %s continues the run in %s: %s cannot move it (copy the directory and resume the copy)",
                    r->resume, r->resume, r->over[i]);
        snprintf(r->last, sizeof r->last, "%s/last.safetensors", r->resume);
        tz_ckpt_read_meta(r->last, &r->meta);
        // The checkpoint's own cfg, read from memory: config.cfg is rewritten only once the whole
        // configuration has been checked, and an error in it names the checkpoint.
        char name[1200];
        snprintf(name, sizeof name, "%s (saved cfg)", r->last);
        r->def = tz_cfg_load_text(&r->c, r->meta.cfg_text, strlen(r->meta.cfg_text), name, r->over, r->n_over);
        r->cfg_path = r->c.path;
    } else {
        r->def = tz_cfg_load(&r->c, r->cfg_path, r->over, r->n_over);
    }
    if (r->resume && strcmp(r->meta.model, r->def->name))
        tz_fail("%s: a checkpoint of '%s', the cfg is for '%s'", r->last, r->meta.model, r->def->name);
    const cfg *c = &r->c;
    long steps = cfg_int(c, "train", "steps"), eval_every = cfg_int(c, "train", "eval_every");
    long log_every = cfg_int(c, "train", "log_every");
    int B = (int)cfg_int(c, "train", "batch"), T = (int)cfg_int(c, "train", "block");
    if (steps < 0 || B < 1 || T < 1 || eval_every < 1 || log_every < 1)
        tz_fail("%s: [train] steps >= 0, batch, block, eval_every and log_every >= 1 (got %ld, %d, %d, %ld, %ld)",
                r->cfg_path, steps, B, T, eval_every, log_every);
    tz_train_select(c, r->def); // a typo here must not cost the data's loading
    if (snprintf(r->dir, sizeof r->dir, "%s", r->resume ? r->resume : cfg_str(c, "train", "out_dir")) >=
        (int)sizeof r->dir)
        tz_fail("train.out_dir: the path is longer than %zu bytes", sizeof r->dir - 1);
    if (!r->dir[0]) snprintf(r->dir, sizeof r->dir, "runs/%s", r->def->name);
    check_run_dir(r);
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
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode)) tz_fail("train.out_dir: %s is not a directory", path);
}

void tz_run_start(tz_run *r) {
    if (!dist_rank()) mkdir_p(r->dir); // rank 0 alone writes the run's files
    if (!dist_rank() && access(r->dir, W_OK | X_OK))
        tz_fail("train.out_dir: cannot write into the run directory %s (%s)", r->dir, strerror(errno));
    snprintf(r->last, sizeof r->last, "%s/last.safetensors", r->dir);
    snprintf(r->best, sizeof r->best, "%s/best.safetensors", r->dir);
    snprintf(r->cfg_copy, sizeof r->cfg_copy, "%s/config.cfg", r->dir);
    snprintf(r->log_path, sizeof r->log_path, "%s/log.csv", r->dir);
    if (r->force && !dist_rank()) // a new run replaces the old one: none of its files may pass for this run's
        for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
            char path[1100];
            snprintf(path, sizeof path, "%s/%s", r->dir, run_files[i]);
            if (unlink(path) && errno != ENOENT) tz_fail("--force: cannot remove %s (%s)", path, strerror(errno));
        }
    size_t len;
    FILE *cm = open_memstream(&r->cfg_text, &len);
    if (!cm) tz_fail("train: out of memory for the cfg text");
    cfg_write(&r->c, cm);
    if (fclose(cm)) tz_fail("train: out of memory for the cfg text");
    if (dist_rank()) return;
    FILE *cf = fopen(r->cfg_copy, "w");
    if (!cf || fputs(r->cfg_text, cf) < 0 || fclose(cf)) tz_fail("cannot write %s (%s)", r->cfg_copy, strerror(errno));
}

void tz_run_free(tz_run *r) {
    free(r->cfg_text);
    free(r->over);
    if (r->resume) tz_ckpt_meta_free(&r->meta);
}

// Threads of the matrix products: the cfg's, or with 0 all cores shared by the ranks on this
// machine (2 ranks on 2 cores: one each; more threads than cores only wait for each other).
static int thread_count(const tz_run *r, const tz_run_opts *o) {
    if (o && o->threads) return o->threads;
    int n = (int)cfg_int(&r->c, "train", "threads");
    if (n || dist_local_size() == 1) return n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > dist_local_size() ? (int)(cores / dist_local_size()) : 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// --allreduce-bench N: what one step's gradient sum costs this model on these ranks (the
// README's scaling model starts from it): N in-place allreduces of the whole gradient block.
static void allreduce_bench(const tz_params *P, int reps, FILE *out) {
    double *ms = malloc(sizeof(double) * reps);
    if (!ms) tz_fail("train: out of memory");
    for (int i = 0; i < 3; i++) dist_sum_real(P->grad, P->n); // warm-up: connections, buffers
    for (int i = 0; i < reps; i++) {
        dist_barrier(); // each sum timed from a common start
        double t0 = tz_now();
        dist_sum_real(P->grad, P->n);
        ms[i] = 1e3 * (tz_now() - t0);
    }
    double all[1] = {0};
    for (int i = 0; i < reps; i++) all[0] += ms[i];
    dist_sum(all, 1); // the mean over ranks and reps
    qsort(ms, reps, sizeof *ms, cmp_double);
    double mb = (double)P->n * sizeof(real) / 1e6, mean = all[0] / reps / dist_size(), n = dist_size();
    fprintf(out,
            "allreduce of %zu gradients (%.2f MB) over %d ranks: %.3f ms mean, %.3f median, %.3f min (rank 0, %d "
            "reps); bus bandwidth 2(N-1)/N x bytes / time = %.2f GB/s\n",
            P->n, mb, dist_size(), mean, ms[reps / 2], ms[0], reps, n > 1 ? 2 * (n - 1) / n * mb / ms[reps / 2] : 0);
    free(ms);
}

int tz_run_main(int argc, char **argv, const tz_run_opts *o) {
    static tz_run r; // a cfg is large: not on the stack
    memset(&r, 0, sizeof r);
    dist_init(&argc, &argv);
    if (dist_size() > 1) tz_run_on_fail(NULL, NULL); // a failure on one rank stops them all
    int st = tz_run_args(&r, argc, argv);
    if (st >= 0) return free(r.over), dist_finalize(), st;
    tz_run_open(&r);
    if (o && o->def) r.def = o->def;
    if (o && o->out) r.out = o->out;
    FILE *quiet = NULL; // ranks other than 0 print nothing (errors aside)
    if (dist_rank()) {
        if (!(quiet = fopen("/dev/null", "w"))) tz_fail("rank %d: cannot open /dev/null", dist_rank());
        r.out = quiet, r.js = NULL;
    }
    tz_set_threads(thread_count(&r, o));
    tz_rng rng;
    tz_rng_seed(&rng, (uint64_t)cfg_int(&r.c, "train", "seed"));
    tz_params P;
    tz_params_init(&P);
    tz_task t;
    tz_task_args a = {&r.c, r.def, r.resume ? &r.meta : NULL, r.last, r.json, &P, &rng};
    if (r.def->pairs) tz_task_pairs_open(&t, &a);
    else if (tz_data_kind_of(&r.c) != TZ_DATA_TEXT)
        tz_fail("%s: [data] kind = %s is for translation models; %s is a language model (kind = text)", r.cfg_path,
                cfg_str(&r.c, "data", "kind"), r.def->name);
    else tz_task_lm_open(&t, &a);
    if (r.allreduce_bench) { // no run: nothing is written
        allreduce_bench(&P, r.allreduce_bench, r.out);
        t.free(&t);
        tz_params_free(&P);
        tz_run_free(&r);
        if (quiet) fclose(quiet);
        dist_finalize();
        return 0;
    }
    tz_run_start(&r);
    if (r.def->pairs && !dist_rank()) tz_task_pairs_keep_split(&t, r.dir);
    int status = tz_train(&r, &t, &P);
    t.free(&t);
    tz_params_free(&P);
    tz_run_free(&r);
    if (quiet) fclose(quiet);
    dist_finalize();
    return status;
}
