// schedule.h: learning-rate schedules as pure functions of the step, so a resumed run needs
// nothing but the step count. `it` is the 0-based index of the optimiser step about to be taken.
#ifndef NN_SCHEDULE_H
#define NN_SCHEDULE_H

#include "tz.h"

typedef enum {
    NN_SCHED_CONSTANT, // lr
    NN_SCHED_STEP, // lr * gamma^k, k = 0 before `start`, then 1 + (it - start) / every
    NN_SCHED_COSINE, // nanoGPT: linear warmup, cosine from lr to min_lr at decay_iters, then min_lr
    NN_SCHED_LINEAR, // the same warmup, then linear from lr to min_lr at decay_iters, then min_lr
    NN_SCHED_NOAM, // Vaswani 2017: lr * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), s = it + 1
} nn_schedule_kind;

typedef struct nn_schedule {
    nn_schedule_kind kind;
    double lr; // base / peak LR (Noam: the factor in front, 1 in the paper)
    double min_lr; // COSINE, LINEAR: the floor
    long warmup; // COSINE, LINEAR: lr (it+1)/(warmup+1) for it < warmup (0: none); NOAM: > 0
    long decay_iters; // COSINE, LINEAR: the step where min_lr is reached (> warmup)
    double gamma; // STEP: factor per decay (Zaremba 2014: 0.5)
    long every; // STEP: steps between decays (> 0)
    long start; // STEP: step of the first decay; 0 means `every` (PyTorch's StepLR).
        // Zaremba 2014 in epochs: lr 1, gamma 0.5, every 1, start 4
    int d_model; // NOAM
} nn_schedule;

// The LR for step it (>= 0). A bad schedule (e.g. every <= 0) is a tz_fail naming the values.
double nn_schedule_lr(const nn_schedule *s, long it);
// "constant", "step", "cosine", "linear", "noam"; anything else is a tz_fail naming the choices.
nn_schedule_kind nn_schedule_parse(const char *name);
const char *nn_schedule_name(nn_schedule_kind kind);

#endif
