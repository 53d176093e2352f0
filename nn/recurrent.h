// recurrent.h: (being written)
#ifndef NN_RECURRENT_H
#define NN_RECURRENT_H
#include "tz.h"
#endif
