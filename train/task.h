// task.h: what the training loop (loop.c) needs from the data side of a run, so that language
// models (task_lm.c: one stream of tokens) and translation (pairs of sentences) share one loop.
//
// A task owns its data, its vocabularies and the model it builds for them. The loop owns the
// parameters, optimiser, schedule, graph, checkpoints, log, signals and the print-out. Order of
// calls: open (data, vocabulary, model) -> [resume] -> next / evaluate / save_state ... ->
// finish -> free.
#ifndef TZ_TASK_H
#define TZ_TASK_H

#include <math.h>
#include <stdio.h>

#include "checkpoint.h"
#include "model.h"

// What one evaluation pass gives: the summed loss and the number of real targets it is over
// (padding excluded), so the loop reports sum / count; plus named extra metrics (e.g. BLEU),
// printed after the loss, logged in their own column of log.csv, and sent in the val event.
#define TZ_TASK_MAX_METRICS 4
typedef struct tz_eval {
    double sum_loss;
    long count;
    double metric[TZ_TASK_MAX_METRICS]; // in the order of tz_task.metric_names
} tz_eval;

// The mean loss per target of an evaluation (NaN when it saw none).
static inline double tz_eval_loss(const tz_eval *e) { return e->count ? e->sum_loss / (double)e->count : NAN; }

typedef struct tz_task tz_task;
struct tz_task {
    void *self; // the task's own state
    const tz_model_def *def;
    void *model; // built by open for the task's vocabularies
    // Names of the extra metrics evaluate fills (log.csv columns "val_<name>"), n_metrics of them.
    const char *metric_names[TZ_TASK_MAX_METRICS];
    int n_metrics;

    // Continues from a checkpoint: the batch position and RNG, the carried state. Called once,
    // after the weights are loaded, before the first next(). ckpt is the file m was read from.
    void (*resume)(tz_task *t, const tz_ckpt_meta *m, const char *ckpt, FILE *out);
    // The next training batch (pointers valid until the next call).
    void (*next)(tz_task *t, tz_batch *b);
    // Real targets of the batch just run through forward (padding excluded). NULL: b->n_targets.
    long (*n_targets)(tz_task *t, const tz_batch *b);
    // One pass over the validation split without gradients; leaves the training state (carried
    // recurrent state, batch position) as it found it.
    void (*evaluate)(tz_task *t, tz_graph *g, tz_eval *e);
    // Fills what a checkpoint needs besides the weights and the loop's fields: vocabulary
    // texts (pointers stay owned by the task), the batch RNG, the carried state.
    void (*save_state)(tz_task *t, tz_ckpt_meta *m);
    // Text for the start-up print-out ("vocab 65 (char), 1003854 train / 111540 val tokens") and
    // JSON fields for the config event (",\"vocab\":65,..."), each written to f.
    void (*describe)(tz_task *t, FILE *text, FILE *json);
    // A periodic sample at `step` (NULL: none); must not change training.
    void (*sample)(tz_task *t, long step, FILE *out);
    // After a finished run (not an interrupted or failed one): the end-of-run extras (an LM's
    // sample, test BLEU); `json` (NULL without --json) receives extra summary fields, each as
    // ",\"name\":value".
    void (*finish)(tz_task *t, tz_graph *g, FILE *out, FILE *json);
    void (*free)(tz_task *t); // the data, the vocabularies and the model (not P)
};

// The names of the extra metrics the task for def reports (tz_task.metric_names, in the order of
// tz_eval.metric) into names; returns how many: bleu and exact for a translation model that
// decodes (mt_encode, mt_step), none for the others. Known before any data is loaded.
int tz_task_metrics(const tz_model_def *def, const char *names[TZ_TASK_MAX_METRICS]);

// The task for a run's cfg: language model (def->pairs == 0) or translation. `c` is the run's
// cfg (the task may record resolved values, e.g. absolute data paths); `resume` is the
// checkpoint's metadata when resuming (its vocabularies are used), read from the file
// resume_path, else NULL; `json`: no output but JSON lines (no samples). Builds the model into
// P with rng. Checks before any training step what would otherwise fail at its end (e.g. that
// the sample prompt can be encoded).
typedef struct tz_task_args {
    cfg *c;
    const tz_model_def *def;
    const tz_ckpt_meta *resume;
    const char *resume_path;
    int json;
    tz_params *P;
    tz_rng *rng;
} tz_task_args;
void tz_task_lm_open(tz_task *t, const tz_task_args *a);
// Translation models (def->pairs): pairs of sentences or a synthetic pair task (task_pairs.c).
void tz_task_pairs_open(tz_task *t, const tz_task_args *a);
// The run directory keeps the test split (test.src, test.ref): called once it exists.
void tz_task_pairs_keep_split(tz_task *t, const char *dir);

#endif
