// checks_attention.c: gradient checks (being written).
#include "gradcheck.h"

const tz_check tz_attention_checks[] = {{0}};
const int tz_n_attention_checks = 0;
