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
const tz_model_def *tz_cfg_load(cfg *c, const char *path, char *const *overrides, int n_overrides);
nn_optim_config tz_optim_config(const cfg *c);
nn_schedule tz_schedule_config(const cfg *c);

#endif
