// fastmath.h: exp, tanh and sigmoid for the elementwise hot loops (recurrent gates, GELU).
// In the float32 build they are branch-free polynomial versions that the compiler vectorises
// (libm's scalar expf/tanhf were a third of an LSTM step); in the float64 build they are libm's,
// so the gradient check compares against the exact functions. Also libm's log and sqrt in the
// build's precision (tz_real_log, tz_real_sqrt): every `real` math function of the engine and its
// layers is here, so no file picks logf or log by itself.
#ifndef TZ_FASTMATH_H
#define TZ_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tz.h"

#ifdef TZ_DOUBLE
static inline real tz_real_log(real x) { return log(x); }
static inline real tz_real_sqrt(real x) { return sqrt(x); }
#else
static inline real tz_real_log(real x) { return logf(x); }
static inline real tz_real_sqrt(real x) { return sqrtf(x); }
#endif

#ifdef TZ_DOUBLE
static inline real tz_fexp(real x) { return exp(x); }
static inline real tz_ftanh(real x) { return tanh(x); }
#else
// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2 (Cody-Waite split of ln 2), and a
// degree-6 Taylor polynomial for exp(r): max relative error ~2e-7 over [-87, 88]; 0 below -87
// (masked attention scores must weigh exactly nothing), exp(88) above 88.
static inline float tz_fexp(float xin) {
    float under = xin < -87.0f ? 0.0f : 1.0f;
    float x = xin > -87.0f ? xin : -87.0f; // NaN fails the test and becomes -87: no undefined
    x = x < 88.0f ? x : 88.0f; // conversion below
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; // round to nearest: 1.5 * 2^23 trick
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p =
        1.0f +
        r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f + r * 0.00138888892f)))));
    uint32_t bits = (uint32_t)(int32_t)(n + 127.0f) << 23; // n + 127 is in [1, 254]
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale * under;
    return xin != xin ? xin : y; // NaN stays NaN, so a diverging run is still caught
}
// tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); near 0 the odd series keeps the relative error small.
static inline float tz_ftanh(float x) {
    float a = fabsf(x);
    float e = tz_fexp(2.0f * a);
    float big = 1.0f - 2.0f / (e + 1.0f);
    float x2 = x * x;
    float small = a * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.0539682540f)));
    float t = a < 0.125f ? small : big;
    return x < 0 ? -t : t;
}
#endif

// The standard normal's cdf Phi(x) and pdf phi(x) together (GELU and its derivative): erf's
// exp(-x^2/2) is the pdf's, so the float version computes one exp for both. erf by Abramowitz &
// Stegun 7.1.26: erf(a) = 1 - t (a1 + t (a2 + ...)) exp(-a^2), t = 1 / (1 + p a), a >= 0;
// absolute error <= 1.5e-7, below float's resolution of 1 + erf (what GELU uses).
static inline void tz_fnormal(real x, real *Phi, real *phi) {
#ifdef TZ_DOUBLE
    *Phi = 0.5 * (1 + erf(x * M_SQRT1_2));
    *phi = 0.5 * M_2_SQRTPI * M_SQRT1_2 * exp(-0.5 * x * x);
#else
    float a = fabsf(x) * (float)M_SQRT1_2, t = 1.0f / (1.0f + 0.3275911f * a), e = tz_fexp(-a * a);
    float y =
        1.0f -
        t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) * e;
    *Phi = 0.5f * (1.0f + (x < 0 ? -y : y));
    *phi = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2) * e;
#endif
}

// 1 / (1 + exp(-x)), with exp's argument clamped: no overflow at either end.
static inline real tz_fsigmoid(real x) { return 1 / (1 + tz_fexp(-x)); }

#endif
