// run.h: a training run's set-up: the command line, the configuration (the cfg file, or the
// run's own saved one when resuming), the run directory and the files in it.
#ifndef TZ_RUN_H
#define TZ_RUN_H

#include <stdio.h>

#include "checkpoint.h"
#include "setup.h"

typedef struct tz_run {
    const char *cfg_path; // the cfg file, or the run's config.cfg when resuming
    const char *resume; // the run directory resumed, or NULL
    int json, profile, force; // force: replace the run already in the run directory
    int allreduce_bench; // --allreduce-bench N: time N allreduces of the model's gradients, no training
    char **over; // section.key=value overrides, n_over of them
    int n_over;
    cfg c;
    const tz_model_def *def;
    tz_ckpt_meta meta; // resuming: the checkpoint's metadata
    char dir[512]; // the run directory and its files
    char last[1100], best[1100], cfg_copy[1100], log_path[1100];
    char *cfg_text; // the resolved cfg as config.cfg and the checkpoints hold it
    FILE *out; // the human-readable print-out: stdout, or stderr with --json
    FILE *js; // JSON lines (stdout), or NULL
} tz_run;

// Exit statuses (documented in the README): 1 bad input or a failed write, 3 the numbers went
// bad (a non-finite or diverged loss), 128 + the signal for SIGINT (130) and SIGTERM (143).
enum { TZ_EXIT_ERROR = 1, TZ_EXIT_NUMBERS = 3 };

// Parses the command line. Returns -1 to go on, else the status to exit with (usage, --help).
int tz_run_args(tz_run *r, int argc, char **argv);
// Reads the configuration (and, resuming, the checkpoint's metadata) and names the run's files.
void tz_run_open(tz_run *r);
// Once the task has resolved what it records in the cfg: creates the run directory and writes
// config.cfg; sets r->cfg_text.
void tz_run_start(tz_run *r);
void tz_run_free(tz_run *r);

// The trainer, from its command line to its exit status: train/main.c is this call. o may be NULL
// (as the command); tests use it to swap in a model definition (def), send the print-out
// elsewhere (out) or fix the thread count (threads, 0: the cfg's).
typedef struct tz_run_opts {
    const tz_model_def *def;
    FILE *out;
    int threads;
} tz_run_opts;
int tz_run_main(int argc, char **argv, const tz_run_opts *o);

// Files to remove if the run fails (tz_fail) before they are complete (temporary files), and a
// note added to the failure's one line (what was kept). NULL clears.
void tz_run_on_fail(const char *remove_path, const char *note);

#endif
