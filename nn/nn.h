// nn.h: the layers, initialisers, optimisers and schedules the model zoo is built from.
//
// Conventions of every layer:
// - A layer is a plain struct of parameter pointers and sizes. `nn_X_init(layer, P, name, ...)`
//   declares its parameters in P under PyTorch-style names ("<name>.weight", "<name>.bias") and
//   initialises them from the given tz_rng; `nn_X_forward(g, layer, ...)` builds on the tape.
// - Sequences for recurrent layers are time-major: (T, B, features).
// - Bad configuration (size 0, unknown init, mismatched shapes) fails with one line naming the
//   layer and the values.
#ifndef NN_H
#define NN_H

#include "attention.h"
#include "context_linear.h"
#include "ffn.h"
#include "init.h"
#include "layers.h"
#include "optim.h"
#include "position.h"
#include "recurrent.h"
#include "schedule.h"
#include "transformer.h"
#include "window_linear.h"

#endif
