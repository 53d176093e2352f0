// internal.h: what the engine's own files share and users of tz.h need not see.
#ifndef TZ_INTERNAL_H
#define TZ_INTERNAL_H

#include "tz.h"
#include "gemm.h"

// Validates and stores a shape (sizes > 0, at most TZ_MAX_DIMS dims) and the element count.
void tz_tensor_set_shape(tz_tensor *t, int ndim, const int *shape);

// Broadcasting (numpy rules): shapes right-aligned to 4 dims; stride 0 where a dim is 1 in the
// operand but not in the output.
typedef struct tz_bcast {
    int shape[4]; // output shape, left-padded with 1s
    int sa[4], sb[4]; // element strides of a and b in that shape
} tz_bcast;
// Fills *bc for a op b; returns 0 when the shapes do not broadcast. out_ndim gets the rank.
int tz_bcast_init(tz_bcast *bc, const tz_tensor *a, const tz_tensor *b, int *out_ndim);

// Runs BODY once per output element, in order; o is the output offset and ia, ib the offsets
// of the two operands (repeated where they broadcast).
#define TZ_BCAST_FOR(bc, BODY) \
    do { \
        int o = 0; \
        for (int i0 = 0; i0 < (bc)->shape[0]; i0++) \
            for (int i1 = 0; i1 < (bc)->shape[1]; i1++) \
                for (int i2 = 0; i2 < (bc)->shape[2]; i2++) { \
                    int ia = i0 * (bc)->sa[0] + i1 * (bc)->sa[1] + i2 * (bc)->sa[2]; \
                    int ib = i0 * (bc)->sb[0] + i1 * (bc)->sb[1] + i2 * (bc)->sb[2]; \
                    for (int i3 = 0; i3 < (bc)->shape[3]; i3++, o++, ia += (bc)->sa[3], ib += (bc)->sb[3]) { \
                        BODY \
                    } \
                } \
    } while (0)

// Profile hooks of the tape (profile.c); only called when g->prof is set.
void tz_profile_mark(tz_graph *g);
void tz_profile_forward(tz_graph *g, const char *name);
void tz_profile_backward(tz_graph *g, const char *name, double seconds);

// Views share data and gradient with their input; backward skips them.
extern const tz_op tz_op_view;
// A parameter whose gradient is unwritten (tz_params_grad_begin) but may be added to before an
// overwrite (through a view, or by an op that adds): zeroed now.
void tz_grad_settle(tz_tensor *t);

// Limits that keep exp and log finite in the build's precision.
#ifdef TZ_DOUBLE
#define TZ_EXP_MAX 709.0
#define TZ_LOG_MIN 2.2250738585072014e-308
#else
#define TZ_EXP_MAX 88.0f
#define TZ_LOG_MIN 1.17549435e-38f
#endif

// "op: a (2,3) and b (4,5) ..." messages need shape strings; this holds two at once.
typedef struct {
    char a[64], b[64];
} tz_shape_bufs;

#endif
