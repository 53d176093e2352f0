// attention.h: (being written)
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H
#include "tz.h"
#endif
