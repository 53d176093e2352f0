// loop.h: the one training loop of every task: forward, loss, backward, clip, optimiser step, LR
// schedule; validation every N steps; best and last checkpoints; log.csv, progress, --json
// events and the summary; Ctrl-C.
#ifndef TZ_LOOP_H
#define TZ_LOOP_H

#include "run.h"
#include "task.h"

// Trains t's model (parameters P) as r's configuration says. Returns the exit status.
int tz_train(tz_run *r, tz_task *t, tz_params *P);

#endif
