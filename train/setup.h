// setup.h: from a cfg file to a ready model: the trainer's schema, reading and checking the
// cfg (with the model's own keys), and the optimiser and schedule it asks for.
#ifndef TZ_SETUP_H
#define TZ_SETUP_H

#include "cfg.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"

extern const cfg_key tz_train_keys[];

// Reads path (model.type first, to know the model's keys), applies the overrides, checks that
// every required key is set. Returns the model's definition.
// Also fails, before anything is allocated, on sizes that cannot work (activations beyond int,
// a model or activations larger than this machine's memory).
const tz_model_def *tz_cfg_load(cfg *c, const char *path, char *const *overrides, int n_overrides);
// The same from cfg text in memory (e.g. the cfg saved in a checkpoint); errors name
// "name:line", e.g. name = "runs/x/last.safetensors (saved cfg)". Data paths that are relative
// are taken relative to name's folder (saved cfgs hold absolute ones).
const tz_model_def *tz_cfg_load_text(cfg *c, const char *text, size_t len, const char *name, char *const *overrides,
                                     int n_overrides);
nn_optim_config tz_optim_config(const cfg *c);
nn_schedule tz_schedule_config(const cfg *c);

#endif
