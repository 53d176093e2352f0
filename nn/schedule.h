// schedule.h: (being written)
#ifndef NN_SCHEDULE_H
#define NN_SCHEDULE_H
#include "tz.h"
#endif
