// rng.c: xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
// 2018) seeded by splitmix64. Same seed, same stream, on every machine and build.
#include "tz.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tz_rng_seed(tz_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tz_rng_u64(tz_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tz_rng_uniform(tz_rng *r) { return (double)(tz_rng_u64(r) >> 11) * 0x1.0p-53; }

double tz_rng_normal(tz_rng *r) {
    // Box-Muller with the cosine branch only: one normal per call keeps the stream simple.
    double u1 = 1.0 - tz_rng_uniform(r); // (0, 1]: log(u1) is finite
    double u2 = tz_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t tz_rng_below(tz_rng *r, uint32_t n) {
    // Lemire's multiply-shift with rejection: unbiased for every n.
    uint64_t m = (uint64_t)(uint32_t)(tz_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(tz_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
