// gru_rows.h: one batch row of a GRU step - the gates, the new state and their gradients - for
// the sequence op (gru.c) and the step node (gru_step.c), which run them on their slices of the
// batch. Equations in recurrent.h; gates g = [r z n] (3H), a = U_n h + b_hn (cuDNN) or r h (Cho).
// Separate functions with restrict pointers, so the compiler vectorises the loops over j.
#ifndef NN_GRU_ROWS_H
#define NN_GRU_ROWS_H

#include "fastmath.h"
#include "tz.h"

// One row's r and z (in place in g = [r z n]) and what the candidate needs from the recurrence:
// r h (Cho) or U_n h + b_hn (cuDNN) into a.
static inline void gru_gates_row(int H, real *restrict g, const real *restrict hh, const real *restrict hp,
                                 real *restrict a, int cho) {
    for (int j = 0; j < H; j++) g[j] = tz_fsigmoid(g[j] + hh[j]), g[H + j] = tz_fsigmoid(g[H + j] + hh[H + j]);
    if (cho)
        for (int j = 0; j < H; j++) a[j] = g[j] * hp[j];
    else
        for (int j = 0; j < H; j++) a[j] = hh[2 * H + j];
}

// n = tanh(x_n + (Cho: U_n (r h) + b_hn, in hn | cuDNN: r (U_n h + b_hn))), h = (1 - z) n + z h_prev.
static inline void gru_state_row(int H, real *restrict g, const real *restrict hn, const real *restrict hp,
                                 real *restrict h, int cho) {
    for (int j = 0; j < H; j++) {
        real n = tz_ftanh(g[2 * H + j] + (cho ? hn[j] : g[j] * hn[j])), z = g[H + j];
        g[2 * H + j] = n;
        h[j] = (1 - z) * n + z * hp[j];
    }
}

// Backward of one row at one step: dh = dout + dh_next; the gradients of z and n's
// pre-activations into dx = d[x-side r z n] and dhh = d[U h-side r z n]; cuDNN's r too (Cho's r
// waits for d(r h), gru_cho_r_row). a is the saved hn (cuDNN) or r h (Cho).
static inline void gru_grad_row(int H, const real *restrict gates, const real *restrict hp, const real *restrict a,
                                const real *restrict dout, const real *restrict dh_next, real *restrict dh,
                                real *restrict dx, real *restrict dhh, int cho) {
    const real *gr = gates, *gz = gates + H, *gn = gates + 2 * H;
    for (int j = 0; j < H; j++) {
        real r = gr[j], z = gz[j], n = gn[j], d = dout[j] + dh_next[j];
        real dn = d * (1 - z) * (1 - n * n), dz = d * (hp[j] - n) * z * (1 - z);
        dh[j] = d;
        dx[H + j] = dhh[H + j] = dz;
        dx[2 * H + j] = dn;
        if (!cho) { // r scales hn: dr = dn hn, and U_n h + b_hn receives dn r
            real dr = dn * a[j] * r * (1 - r);
            dx[j] = dhh[j] = dr;
            dhh[2 * H + j] = dn * r;
        } else {
            dhh[2 * H + j] = dn;
        }
    }
}

// Cho's r: dr = d(r h) h; dh_{t-1} starts as dh z + d(r h) r (the U_rz part is added by gemm).
static inline void gru_cho_r_row(int H, const real *restrict gates, const real *restrict hp, const real *restrict drh,
                                 const real *restrict dh, real *restrict dx, real *restrict dhh,
                                 real *restrict dh_next) {
    for (int j = 0; j < H; j++) {
        real r = gates[j], z = gates[H + j];
        dx[j] = dhh[j] = drh[j] * hp[j] * r * (1 - r);
        dh_next[j] = dh[j] * z + drh[j] * r;
    }
}

#endif
