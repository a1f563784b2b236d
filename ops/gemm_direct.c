/* ops/gemm_direct.c — products of small matrices without packing.
 *
 * At batch 32 the products of a training step are small ([32x784]x[784x300]
 * down to [32x100]x[100x10]) and packing both operands, as BLIS's kernels
 * need, costs as much as a fifth of the product. These kernels read B in
 * place, a row of 16 or 32 columns per step of the inner dimension (B must
 * be contiguous along its rows: nabla's weights and row-major activations),
 * and A one element at a time, broadcast to a vector, through any strides
 * (X by rows in Y = X·W, X by columns in dW = X^T·dY). An 8 x 32 tile of C
 * stays in 16 AVX-512 registers while the inner dimension runs, in blocks
 * of KC so that B's panel stays in the L1 cache.
 *
 * Each element of C is one chain of fused multiply-adds over the inner
 * dimension in order, whatever columns a thread is given, so results do
 * not depend on how the columns are split among threads. */
#include <stdbool.h>
#include <stddef.h>

#include "ops/gemm.h"

#define KC 128 /* 128 x 32 floats of B: 16 KB, half of the L1 cache */

#if defined(__x86_64__)
#include <immintrin.h>

typedef void tile_fn(size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,
                     __mmask16 m0, __mmask16 m1, bool load_c, float *c, ptrdiff_t ldc);

/* C(MR x 16·NV) (+)= A(MR x k)·B(k x 16·NV); m0 and m1 mask the columns of
 * the two vectors (the last tile of a row is partial). */
#define TILE(MR, NV)                                                                                      \
    __attribute__((target("avx512f"))) static void tile_##MR##_##NV(                                      \
        size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,           \
        __mmask16 m0, __mmask16 m1, bool load_c, float *c, ptrdiff_t ldc) {                             \
        __m512 acc[MR][NV];                                                                               \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                            \
            acc[r][0] = load_c ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();            \
            if (NV > 1) acc[r][NV - 1] = load_c ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16)           \
                                                : _mm512_setzero_ps();                                    \
        }                                                                                                 \
        for (size_t p = 0; p < k; p++) {                                                                  \
            const float *bp = b + (ptrdiff_t)p * ldb, *ap = a + (ptrdiff_t)p * csa;                      \
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);                                              \
            const __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(m1, bp + 16) : b0;                          \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                        \
                const __m512 ar = _mm512_set1_ps(ap[r * rsa]);                                            \
                acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);                                           \
                if (NV > 1) acc[r][NV - 1] = _mm512_fmadd_ps(ar, b1, acc[r][NV - 1]);                   \
            }                                                                                             \
        }                                                                                                 \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                            \
            _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);                                            \
            if (NV > 1) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][NV - 1]);                     \
        }                                                                                                 \
    }

TILE(1, 1) TILE(2, 1) TILE(3, 1) TILE(4, 1) TILE(5, 1) TILE(6, 1) TILE(7, 1) TILE(8, 1)
TILE(1, 2) TILE(2, 2) TILE(3, 2) TILE(4, 2) TILE(5, 2) TILE(6, 2) TILE(7, 2) TILE(8, 2)

static tile_fn *const tiles[2][8] = {
    {tile_1_1, tile_2_1, tile_3_1, tile_4_1, tile_5_1, tile_6_1, tile_7_1, tile_8_1},
    {tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2, tile_7_2, tile_8_2},
};

static __mmask16 mask_of(size_t cols) { return cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1); }

bool nb__gemm_direct_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void nb__sgemm_direct(size_t m, size_t j0, size_t j1, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                      const float *b, ptrdiff_t ldb, bool add, float *c, ptrdiff_t ldc) {
    if (k == 0) { /* C = 0, or unchanged */
        if (!add)
            for (size_t i = 0; i < m; i++)
                for (size_t j = j0; j < j1; j++) c[(ptrdiff_t)i * ldc + (ptrdiff_t)j] = 0.0f;
        return;
    }
    for (size_t pc = 0; pc < k; pc += KC) {
        const size_t kc = k - pc < KC ? k - pc : KC;
        const bool load_c = add || pc > 0;
        for (size_t j = j0; j < j1; j += 32) {
            const size_t w = j1 - j < 32 ? j1 - j : 32;
            const int nv = w > 16 ? 2 : 1;
            const __mmask16 m0 = mask_of(w), m1 = nv > 1 ? mask_of(w - 16) : 0;
            for (size_t i = 0; i < m; i += 8) {
                const size_t mr = m - i < 8 ? m - i : 8;
                tiles[nv - 1][mr - 1](kc, a + (ptrdiff_t)i * rsa + (ptrdiff_t)pc * csa, rsa, csa,
                                      b + (ptrdiff_t)pc * ldb + (ptrdiff_t)j, ldb, m0, m1, load_c,
                                      c + (ptrdiff_t)i * ldc + (ptrdiff_t)j, ldc);
            }
        }
    }
}

#else

bool nb__gemm_direct_available(void) { return false; }

void nb__sgemm_direct(size_t m, size_t j0, size_t j1, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                      const float *b, ptrdiff_t ldb, bool add, float *c, ptrdiff_t ldc) {
    (void)m, (void)j0, (void)j1, (void)k, (void)a, (void)rsa, (void)csa, (void)b, (void)ldb, (void)add, (void)c,
        (void)ldc;
}

#endif
