// clock.c: the one clock of the engine, the trainer and the tools (see tz.h).
#include "tz.h"

#include <time.h>

double tz_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
