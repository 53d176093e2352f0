// position.h: (being written)
#ifndef NN_POSITION_H
#define NN_POSITION_H
#include "tz.h"
#endif
