// ffn.h: (being written)
#ifndef NN_FFN_H
#define NN_FFN_H
#include "tz.h"
#endif
