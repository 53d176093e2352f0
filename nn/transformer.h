// transformer.h: (being written)
#ifndef NN_TRANSFORMER_H
#define NN_TRANSFORMER_H
#include "tz.h"
#endif
