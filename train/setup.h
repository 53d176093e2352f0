// setup.h: from a cfg file to a ready model: the trainer's schema, reading and checking the
// cfg (with the model's own keys), and the optimiser and schedule it asks for.
#ifndef TZ_SETUP_H
#define TZ_SETUP_H

#include "cfg.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"

extern const cfg_key tz_train_keys[];

// The whole schema of a run of def: the trainer's keys, the data keys (streams and pairs), the
// keys of the model's family (def->family_keys) and the model's own, in that order. Returns
// how many tables it put in schemas[TZ_SCHEMAS].
enum { TZ_SCHEMAS = 5 };
int tz_schemas(const tz_model_def *def, const cfg_key **schemas);
// cfg_init(c) with that schema: the defaults of every key a run of def has.
void tz_cfg_init(cfg *c, const tz_model_def *def);

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
