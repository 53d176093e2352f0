// layers.h: (being written)
#ifndef NN_LAYERS_H
#define NN_LAYERS_H
#include "tz.h"
#endif
