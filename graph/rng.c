/* graph/rng.c — Philox4x32-10 and a sequential stream over it. */
#include <math.h>

#include "graph/internal.h"
#include "nabla/rng.h"

/* The multipliers and Weyl constants of Salmon et al. (Random123). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void nb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* Blocks first .. first+count-1 of the stream (counter words 2 and 3 and
 * the key fixed), 16 at a time in structure-of-arrays form so that the
 * rounds vectorize; built for AVX-512 and AVX2 as well as the baseline,
 * chosen when the library loads. The same words as nb_philox4x32. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void nb__philox_blocks(const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first, size_t count,
                       uint32_t *restrict out) {
    enum { LANES = 16 };
    for (size_t base = 0; base < count; base += LANES) {
        uint32_t a[LANES], b[LANES], c[LANES], d[LANES];
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            uint64_t block = first + base + (uint64_t)j;
            a[j] = (uint32_t)block, b[j] = (uint32_t)(block >> 32), c[j] = c2, d[j] = c3;
        }
        uint32_t k0 = key[0], k1 = key[1];
        for (int r = 0; r < 10; r++) {
#pragma omp simd
            for (int j = 0; j < LANES; j++) {
                uint64_t p0 = (uint64_t)PHILOX_M0 * a[j], p1 = (uint64_t)PHILOX_M1 * c[j];
                uint32_t na = (uint32_t)(p1 >> 32) ^ b[j] ^ k0, nc = (uint32_t)(p0 >> 32) ^ d[j] ^ k1;
                b[j] = (uint32_t)p1, d[j] = (uint32_t)p0, a[j] = na, c[j] = nc;
            }
            k0 += PHILOX_W0, k1 += PHILOX_W1;
        }
        size_t m = count - base < LANES ? count - base : LANES;
        for (size_t j = 0; j < m; j++) {
            uint32_t *o = out + 4 * (base + j);
            o[0] = a[j], o[1] = b[j], o[2] = c[j], o[3] = d[j];
        }
    }
}

void nb_rng_seed(nb_rng *r, uint64_t seed, uint64_t stream) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    /* the stream takes the counter's high half, the position its low half */
    r->counter = 0;
    r->buf[0] = r->buf[1] = r->buf[2] = r->buf[3] = 0;
    r->left = 0;
    r->stream_lo = (uint32_t)stream;
    r->stream_hi = (uint32_t)(stream >> 32);
}

uint32_t nb_rng_u32(nb_rng *r) {
    if (r->left == 0) {
        const uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32), r->stream_lo,
                                 r->stream_hi};
        nb_philox4x32(ctr, r->key, r->buf);
        r->counter++;
        r->left = 4;
    }
    return r->buf[4 - r->left--];
}

float nb_rng_uniform(nb_rng *r) { return nb_u32_to_unit(nb_rng_u32(r)); }

float nb_rng_normal(nb_rng *r) {
    /* Box-Muller; u1 in (0,1] so the log is finite */
    double u1 = ((double)nb_rng_u32(r) + 1.0) / 4294967296.0;
    double u2 = (double)nb_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t nb_rng_below(nb_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    /* Lemire's method with rejection: unbiased */
    uint64_t m = (uint64_t)nb_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)nb_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
