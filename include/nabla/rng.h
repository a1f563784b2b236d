/* nabla/rng.h — counter-based random numbers (Philox4x32-10).
 *
 * Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11) maps a 128-bit counter and a 64-bit key to 128 random bits. The
 * same (counter, key) always gives the same bits, so a random op can draw
 * element i's number directly, on any thread, with no shared state: results
 * do not depend on the number of threads.
 */
#ifndef NABLA_RNG_H
#define NABLA_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw generator: out = Philox4x32-10(ctr, key). */
void nb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A sequential stream over Philox, for initializers and shuffles. Plain
 * data: copy it to fork a stream, no need to free. */
typedef struct nb_rng {
    uint32_t key[2];
    uint32_t stream_lo, stream_hi;
    uint64_t counter;
    uint32_t buf[4];
    int left;
} nb_rng;

/* Starts stream `stream` of seed `seed`; different streams never overlap. */
void nb_rng_seed(nb_rng *r, uint64_t seed, uint64_t stream);
uint32_t nb_rng_u32(nb_rng *r);
/* Uniform in [0, 1), 24 random bits. */
float nb_rng_uniform(nb_rng *r);
/* Standard normal (Box-Muller, in double). */
float nb_rng_normal(nb_rng *r);
/* Uniform integer in [0, n), unbiased; n >= 1. */
uint32_t nb_rng_below(nb_rng *r, uint32_t n);

/* Maps 32 random bits to a float uniform in [0, 1). */
static inline float nb_u32_to_unit(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

#ifdef __cplusplus
}
#endif
#endif
