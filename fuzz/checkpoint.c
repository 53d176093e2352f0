// fuzz/checkpoint.c: the whole checkpoint reader (train/checkpoint.c: header length, JSON header,
// tensor entries, __metadata__, the tensors themselves and the carried state) on arbitrary bytes,
// from memory, against the parameters and Adam state of a small GRU language model built here:
// the model fuzz/corpus/checkpoint/gru_*.safetensors were saved from (vocabulary of 11 tokens).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fuzz.h"
#include "setup.h"

#define V 11
static const char cfg_text[] = "[model]\ntype = gru\nembed = 4\nhidden = 8\n[data]\npath = tiny.txt\n"
                               "[train]\nblock = 8\n[optim]\nname = adam\n";
static tz_params P;
static nn_optim opt;
static void *model; // kept for the whole run (its carried state is loaded into)
static real *carried;
static size_t n_carried;

static void build(void) {
    char path[] = "/tmp/tapezoo-fuzz-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, cfg_text, strlen(cfg_text)) != (ssize_t)strlen(cfg_text)) abort();
    close(fd);
    static cfg c;
    const tz_model_def *def = tz_cfg_load(&c, path, NULL, 0);
    unlink(path);
    tz_rng r;
    tz_rng_seed(&r, 1);
    tz_params_init(&P);
    model = def->create(&c, V, cfg_int(&c, "train", "block"), &P, &r);
    nn_optim_config oc = tz_optim_config(&c);
    nn_optim_init(&opt, &P, &oc);
    def->reset(model, 2);
    carried = def->carried(model, &n_carried);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!P.count) build();
    tz_ckpt_meta m = {0};
    FUZZ_TRY {
        tz_ckpt_read_meta_mem(data, size, "fuzz", &m);
        tz_ckpt_meta_free(&m);
        tz_ckpt_load_mem(data, size, "fuzz", &P, &opt);
        tz_ckpt_load_carried_mem(data, size, "fuzz", carried, n_carried);
    }
    tz_set_error_handler(NULL);
    tz_ckpt_meta_free(&m);
    return 0;
}
