// optim.h: (being written)
#ifndef NN_OPTIM_H
#define NN_OPTIM_H
#include "tz.h"
#endif
