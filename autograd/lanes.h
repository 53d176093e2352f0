// lanes.h: row reductions (sums, dot products) the compiler can vectorise and that still give
// the same bits on every run and thread count.
//
// A plain `s += x[j]` is one dependency chain the compiler may not reorder (no -ffast-math):
// 4 cycles per element. TZ_LANE_SUM keeps TZ_LANES independent partial sums, lane l taking the
// elements j with j % TZ_LANES == l, then adds the lanes in a fixed tree: a SIMD add per 16
// elements, and the order of additions depends only on the row length.
#ifndef TZ_LANES_H
#define TZ_LANES_H

#include "tz.h"

#define TZ_LANES 16

// out = sum of EXPR over the int J in [0, N) (EXPR reads J): whole blocks of TZ_LANES in the
// lanes, the last N % TZ_LANES elements in one scalar chain added at the end, then the lanes
// pairwise in a fixed order. (Indexing a lane by a run-time value would keep the lanes in
// memory instead of a register.) TYPE is the accumulator's type: real, or double for long sums.
#define TZ_LANE_SUM_AS(TYPE, out, N, J, EXPR) \
    do { \
        TYPE lane_[TZ_LANES] = {0}, tail_ = 0; \
        const long n_ = (N), full_ = n_ - n_ % TZ_LANES; \
        for (long b_ = 0; b_ < full_; b_ += TZ_LANES) \
            for (int l_ = 0; l_ < TZ_LANES; l_++) { \
                const long J = b_ + l_; \
                lane_[l_] += (EXPR); \
            } \
        for (long J = full_; J < n_; J++) tail_ += (EXPR); \
        for (int w_ = TZ_LANES / 2; w_ >= 1; w_ /= 2) \
            for (int l_ = 0; l_ < w_; l_++) lane_[l_] += lane_[l_ + w_]; \
        (out) = lane_[0] + tail_; \
    } while (0)
#define TZ_LANE_SUM(out, N, J, EXPR) TZ_LANE_SUM_AS(real, out, N, J, EXPR)

// out = max of EXPR over J in [0, N), N >= 1 (max is exact, so lanes change nothing but speed:
// a compare chain per element otherwise, which the compiler does not vectorise without
// -ffast-math). A NaN may or may not win; softmax's callers still end up with NaN, through exp.
#define TZ_LANE_MAX(out, N, J, EXPR) \
    do { \
        const int n_ = (N), full_ = n_ - n_ % TZ_LANES; \
        real lane_[TZ_LANES], m_; \
        { \
            const int J = 0; \
            m_ = (EXPR); \
        } \
        for (int l_ = 0; l_ < TZ_LANES; l_++) lane_[l_] = m_; \
        for (int b_ = 0; b_ < full_; b_ += TZ_LANES) \
            for (int l_ = 0; l_ < TZ_LANES; l_++) { \
                const int J = b_ + l_; \
                const real v_ = (EXPR); \
                lane_[l_] = v_ > lane_[l_] ? v_ : lane_[l_]; \
            } \
        for (int w_ = TZ_LANES / 2; w_ >= 1; w_ /= 2) \
            for (int l_ = 0; l_ < w_; l_++) lane_[l_] = lane_[l_ + w_] > lane_[l_] ? lane_[l_ + w_] : lane_[l_]; \
        m_ = lane_[0]; \
        for (int J = full_; J < n_; J++) { \
            const real v_ = (EXPR); \
            m_ = v_ > m_ ? v_ : m_; \
        } \
        (out) = m_; \
    } while (0)

// Column sums: out[J] += sum over the int R in [0, ROWS) of EXPR (reads R and the long J), for
// J in [LO, HI). Blocks of TZ_COLS columns are summed in registers down all the rows before one
// store: accumulating in out row by row is a store and a reload per element (store forwarding
// made that 4x slower). Each column still adds its rows in order, so the bits do not depend on
// how columns are split over threads. 128 columns (512 bytes of each row) rather than 32: with
// rows 4 KB apart (d_ff 1024) a 128-byte block per row defeats the prefetchers, which do not
// cross pages; tz_column_sums_add over 2048 x 1024 (the d256 FFN's db1) 0.383 -> 0.073 ms,
// 2048 x 2048 0.763 -> 0.170 ms (a throwaway harness calling it, best of 20, 2 threads; 64:
// 0.119 / 0.340, 256: 0.055 / 0.162).
#define TZ_COLS 128
#define TZ_COLUMN_SUMS(out, LO, HI, ROWS, R, J, EXPR) \
    do { \
        const long hi_ = (HI); \
        const int rows_ = (ROWS); \
        for (long j0_ = (LO); j0_ < hi_; j0_ += TZ_COLS) { \
            real col_[TZ_COLS] = {0}; \
            const int w_ = hi_ - j0_ < TZ_COLS ? (int)(hi_ - j0_) : TZ_COLS; \
            if (w_ == TZ_COLS) \
                for (int R = 0; R < rows_; R++) \
                    for (int c_ = 0; c_ < TZ_COLS; c_++) { \
                        const long J = j0_ + c_; \
                        col_[c_] += (EXPR); \
                    } \
            else \
                for (int R = 0; R < rows_; R++) \
                    for (int c_ = 0; c_ < w_; c_++) { \
                        const long J = j0_ + c_; \
                        col_[c_] += (EXPR); \
                    } \
            for (int c_ = 0; c_ < w_; c_++) (out)[j0_ + c_] += col_[c_]; \
        } \
    } while (0)

#endif
