// train: the one trainer of the zoo.
//   train CFG [section.key=value ...] [--json]
//   train --resume RUN_DIR [section.key=value ...] [--json]
// run.c reads the command line and the configuration, the task (task_lm.c for language
// models, task_pairs.c for translation) the data and the model, loop.c trains.
#include <stdlib.h>

#include "gemm.h"
#include "loop.h"
#include "pairs.h"

int main(int argc, char **argv) {
    static tz_run r; // a cfg is large: not on the stack
    int st = tz_run_args(&r, argc, argv);
    if (st >= 0) return free(r.over), st;
    tz_run_open(&r);
    tz_set_threads((int)cfg_int(&r.c, "train", "threads"));
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
    tz_run_start(&r);
    if (r.def->pairs) tz_task_pairs_keep_split(&t, r.dir);
    int status = tz_train(&r, &t, &P);
    t.free(&t);
    tz_params_free(&P);
    tz_run_free(&r);
    return status;
}
