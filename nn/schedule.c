// schedule.c: learning-rate schedules (see schedule.h), pure functions of the step.
#include "schedule.h"

#include <math.h>
#include <string.h>

static const char *const names[] = {"constant", "step", "cosine", "linear", "noam"};
#define N_KINDS ((int)(sizeof names / sizeof names[0]))

const char *nn_schedule_name(nn_schedule_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? names[kind] : "unknown";
}

nn_schedule_kind nn_schedule_parse(const char *name) {
    for (int k = 0; name && k < N_KINDS; k++)
        if (!strcmp(name, names[k])) return (nn_schedule_kind)k;
    tz_fail("schedule: unknown schedule '%s' (constant, step, cosine, linear, noam)", name ? name : "(null)");
}

// it (>= 0) -> lr. nanoGPT's get_lr (train.py): warmup, then decay_ratio in [0, 1] shapes the fall.
static double warmup_then(const nn_schedule *s, long it, int cosine) {
    if (s->warmup < 0 || s->decay_iters <= s->warmup)
        tz_fail("schedule %s: need 0 <= warmup < decay_iters, got warmup = %ld, decay_iters = %ld", names[s->kind],
                s->warmup, s->decay_iters);
    if (it < s->warmup) return s->lr * (double)(it + 1) / (double)(s->warmup + 1);
    if (it > s->decay_iters) return s->min_lr;
    double ratio = (double)(it - s->warmup) / (double)(s->decay_iters - s->warmup);
    double coeff = cosine ? 0.5 * (1 + cos(M_PI * ratio)) : 1 - ratio;
    return s->min_lr + coeff * (s->lr - s->min_lr);
}

double nn_schedule_lr(const nn_schedule *s, long it) {
    if (it < 0) tz_fail("schedule %s: step %ld must be >= 0", nn_schedule_name(s->kind), it);
    switch (s->kind) {
        case NN_SCHED_CONSTANT: return s->lr;
        case NN_SCHED_STEP: {
            // PyTorch's StepLR is start = every; Zaremba 2014's "halve after epoch 4" is start = 4
            // epochs, every = 1 epoch, gamma = 0.5 (in the caller's unit of steps).
            long start = s->start ? s->start : s->every;
            if (s->every <= 0 || start < 0 || !(s->gamma > 0))
                tz_fail("schedule step: every = %ld, start = %ld must be > 0, >= 0 and gamma = %g > 0", s->every,
                        s->start, s->gamma);
            long k = it < start ? 0 : 1 + (it - start) / s->every;
            return s->lr * pow(s->gamma, (double)k);
        }
        case NN_SCHED_COSINE: return warmup_then(s, it, 1);
        case NN_SCHED_LINEAR: return warmup_then(s, it, 0);
        case NN_SCHED_NOAM: {
            // Vaswani et al. 2017, eq. 3, whose step counts from 1: rises linearly for `warmup`
            // steps, then falls as step^-0.5.
            if (s->warmup <= 0 || s->d_model <= 0)
                tz_fail("schedule noam: warmup = %ld and d_model = %d must be > 0", s->warmup, s->d_model);
            double step = (double)it + 1;
            return s->lr / sqrt((double)s->d_model) * fmin(1 / sqrt(step), step * pow((double)s->warmup, -1.5));
        }
    }
    tz_fail("schedule: unknown kind %d", (int)s->kind);
}
