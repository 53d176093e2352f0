// loop.h: the one training loop of every task: forward, loss, backward, clip, optimiser step, LR
// schedule; validation every N steps; best and last checkpoints; log.csv, progress, --json
// events and the summary; Ctrl-C.
#ifndef TZ_LOOP_H
#define TZ_LOOP_H

#include "run.h"
#include "task.h"

// What 'best' means (best.safetensors, patience): -1 the validation loss, lowest wins, or the
// index of a task metric such as BLEU in tz_task_metrics(def), highest wins. Fails naming the
// choices if [train] select is neither, or [train] final is not last or best. Needs nothing but
// the cfg and the model, so run.c checks it before any data is loaded; tz_train calls it again.
int tz_train_select(const cfg *c, const tz_model_def *def);

// Trains t's model (parameters P) as r's configuration says. Returns the exit status.
int tz_train(tz_run *r, tz_task *t, tz_params *P);

#endif
