/* graph/rng.c — Philox4x32-10 and a sequential stream over it. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "graph/rng_internal.h"
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

/* Block `block` of the stream with counter words 2 and 3 and the key fixed:
 * the portable path, and the vector paths' tail. */
static inline void philox_one(const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t block,
                              uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), c2, c3};
    nb_philox4x32(ctr, key, out);
}

/* The vector paths keep each of a block's four words (a, b, c, d) in the low
 * half of a 64-bit lane, where the unsigned 32x32->64 multiply (vpmuludq)
 * reads it and leaves the whole product: a round is
 *   p = a·M0, q = c·M1;  a' = (q >> 32) ^ b ^ k0, b' = q, c' = (p >> 32) ^ d ^ k1, d' = p
 * six instructions for 8 (AVX-512) or 4 (AVX2) blocks, three with a
 * three-way xor. b' and d' keep the product's high half above the word: it
 * reaches only the high halves of a and c, which the multiply ignores, so
 * no instruction clears it. GROUP vectors are in flight at once to hide the
 * multiply's latency; the words are packed and interleaved at the end. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PHILOX_VECTOR 1
enum { GROUP = 4 };

__attribute__((target("avx512f"))) static void philox_avx512(const uint32_t key[2], uint32_t c2,
                                                             uint32_t c3, uint64_t first, size_t count,
                                                             uint32_t *restrict out) {
    enum { W = 8 }; /* blocks per vector */
    const __m512i iota = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __m512i cv2 = _mm512_set1_epi64(c2), cv3 = _mm512_set1_epi64(c3);
    /* the low words of two vectors, alternately: (a, b) -> a0 b0 a1 b1 ... */
    const __m512i pack = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    const __m512i i0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i i1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    uint32_t tmp[4 * W * GROUP];
    for (size_t base = 0; base < count; base += (size_t)W * GROUP) {
        /* a last, partial group is computed whole into tmp */
        const bool whole = count - base >= (size_t)W * GROUP;
        uint32_t *dst = whole ? out + 4 * base : tmp;
        __m512i a[GROUP], b[GROUP], c[GROUP], d[GROUP];
        for (int g = 0; g < GROUP; g++) {
            const __m512i ctr = _mm512_add_epi64(_mm512_set1_epi64((long long)(first + base + (size_t)W * g)), iota);
            a[g] = ctr, b[g] = _mm512_srli_epi64(ctr, 32), c[g] = cv2, d[g] = cv3;
        }
        uint32_t k0 = key[0], k1 = key[1];
        for (int r = 0; r < 10; r++) {
            const __m512i kv0 = _mm512_set1_epi64(k0), kv1 = _mm512_set1_epi64(k1);
            for (int g = 0; g < GROUP; g++) {
                const __m512i p = _mm512_mul_epu32(a[g], m0), q = _mm512_mul_epu32(c[g], m1);
                /* 0x96: the three-way xor */
                a[g] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(q, 32), b[g], kv0, 0x96);
                c[g] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p, 32), d[g], kv1, 0x96);
                b[g] = q, d[g] = p;
            }
            k0 += PHILOX_W0, k1 += PHILOX_W1;
        }
        for (int g = 0; g < GROUP; g++) {
            const __m512i x = _mm512_permutex2var_epi32(a[g], pack, b[g]);
            const __m512i y = _mm512_permutex2var_epi32(c[g], pack, d[g]);
            /* 128-bit lane L of lo holds block 2L, of hi block 2L+1 */
            const __m512i lo = _mm512_unpacklo_epi64(x, y), hi = _mm512_unpackhi_epi64(x, y);
            uint32_t *o = dst + 4 * (size_t)W * g;
            _mm512_storeu_si512(o, _mm512_permutex2var_epi64(lo, i0, hi));
            _mm512_storeu_si512(o + 16, _mm512_permutex2var_epi64(lo, i1, hi));
        }
        if (!whole) memcpy(out + 4 * base, tmp, 4 * sizeof *tmp * (count - base));
    }
}

__attribute__((target("avx2"))) static void philox_avx2(const uint32_t key[2], uint32_t c2, uint32_t c3,
                                                        uint64_t first, size_t count,
                                                        uint32_t *restrict out) {
    enum { W = 4 };
    const __m256i iota = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    const __m256i cv2 = _mm256_set1_epi64x(c2), cv3 = _mm256_set1_epi64x(c3);
    uint32_t tmp[4 * W * GROUP];
    for (size_t base = 0; base < count; base += (size_t)W * GROUP) {
        const bool whole = count - base >= (size_t)W * GROUP;
        uint32_t *dst = whole ? out + 4 * base : tmp;
        __m256i a[GROUP], b[GROUP], c[GROUP], d[GROUP];
        for (int g = 0; g < GROUP; g++) {
            const __m256i ctr = _mm256_add_epi64(_mm256_set1_epi64x((long long)(first + base + (size_t)W * g)), iota);
            a[g] = ctr, b[g] = _mm256_srli_epi64(ctr, 32), c[g] = cv2, d[g] = cv3;
        }
        uint32_t k0 = key[0], k1 = key[1];
        for (int r = 0; r < 10; r++) {
            const __m256i kv0 = _mm256_set1_epi64x(k0), kv1 = _mm256_set1_epi64x(k1);
            for (int g = 0; g < GROUP; g++) {
                const __m256i p = _mm256_mul_epu32(a[g], m0), q = _mm256_mul_epu32(c[g], m1);
                a[g] = _mm256_xor_si256(_mm256_srli_epi64(q, 32), _mm256_xor_si256(b[g], kv0));
                c[g] = _mm256_xor_si256(_mm256_srli_epi64(p, 32), _mm256_xor_si256(d[g], kv1));
                b[g] = q, d[g] = p;
            }
            k0 += PHILOX_W0, k1 += PHILOX_W1;
        }
        for (int g = 0; g < GROUP; g++) {
            /* 0xAA: the high word of each lane from the shifted operand */
            const __m256i x = _mm256_blend_epi32(a[g], _mm256_slli_epi64(b[g], 32), 0xAA);
            const __m256i y = _mm256_blend_epi32(c[g], _mm256_slli_epi64(d[g], 32), 0xAA);
            /* 128-bit lane L of lo holds block 2L, of hi block 2L+1 */
            const __m256i lo = _mm256_unpacklo_epi64(x, y), hi = _mm256_unpackhi_epi64(x, y);
            uint32_t *o = dst + 4 * (size_t)W * g;
            _mm256_storeu_si256((__m256i *)o, _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(o + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        if (!whole) memcpy(out + 4 * base, tmp, 4 * sizeof *tmp * (count - base));
    }
}
#endif

bool nb__philox_blocks_isa(int isa, const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first,
                           size_t count, uint32_t *restrict out) {
    switch (isa) {
    case NB_PHILOX_PORTABLE:
        for (size_t b = 0; b < count; b++) philox_one(key, c2, c3, first + b, out + 4 * b);
        return true;
#ifdef PHILOX_VECTOR
    case NB_PHILOX_AVX2:
        if (!__builtin_cpu_supports("avx2")) return false;
        philox_avx2(key, c2, c3, first, count, out);
        return true;
    case NB_PHILOX_AVX512:
        if (!__builtin_cpu_supports("avx512f")) return false;
        philox_avx512(key, c2, c3, first, count, out);
        return true;
#endif
    default:
        return false;
    }
}

/* Blocks first .. first+count-1 of the stream (counter words 2 and 3 and
 * the key fixed): the words nb_philox4x32 gives, many blocks at once, with
 * the widest vectors the CPU has (checked at each call: a load and a test). */
void nb__philox_blocks(const uint32_t key[2], uint32_t c2, uint32_t c3, uint64_t first, size_t count,
                       uint32_t *restrict out) {
    if (nb__philox_blocks_isa(NB_PHILOX_AVX512, key, c2, c3, first, count, out)) return;
    if (nb__philox_blocks_isa(NB_PHILOX_AVX2, key, c2, c3, first, count, out)) return;
    nb__philox_blocks_isa(NB_PHILOX_PORTABLE, key, c2, c3, first, count, out);
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
