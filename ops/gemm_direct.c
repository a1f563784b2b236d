/* ops/gemm_direct.c — products of small matrices without packing.
 *
 * At batch 32 the products of a training step are small ([32x784]x[784x300]
 * down to [32x100]x[100x10]) and packing both operands, as BLIS's kernels
 * need, costs as much as a fifth of the product. These kernels read B in
 * place, a row of 16 or 32 columns per step of the inner dimension (B must
 * be contiguous along its rows: nabla's weights and row-major activations),
 * and A one element at a time, broadcast to a vector, through any strides
 * (X by rows in Y = X·W, X by columns in dW = X^T·dY). An 8 x 48 tile of C
 * stays in 24 AVX-512 registers while the inner dimension runs, in blocks
 * of KC so that B's panel stays in the L1 cache.
 *
 * Each element of C is one chain of fused multiply-adds over the inner
 * dimension in order, whatever columns a thread is given, so results do
 * not depend on how the columns are split among threads. */
#include <stdbool.h>
#include <stddef.h>

#include "ops/gemm.h"

#define KC 128 /* 128 x 48 floats of B: 24 KB, most of the L1 cache */
#define MC 192 /* rows of A per block: 192 x 128 floats, 96 KB, stay in L2 while B's panels pass */
#define NV_MAX 3 /* vectors of 16 columns per row of a tile */
#define NR (16 * NV_MAX)

#if defined(__x86_64__)
#include <immintrin.h>

typedef void tile_fn(size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,
                     const __mmask16 *mask, bool load_c, float *c, ptrdiff_t ldc);

/* C(MR x 16·NV) (+)= A(MR x k)·B(k x 16·NV); mask[v] masks the columns of
 * vector v. Only the last vector of a tile may be partial: the others load
 * and store unmasked, which Zen 4 runs faster (3-8% on the larger shapes). Three vectors per row
 * make 24 multiply-adds per 8 broadcasts of A, which share the FMA units. */
#define TILE(MR, NV)                                                                                      \
    __attribute__((target("avx512f"))) static void tile_##MR##_##NV(                                      \
        size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,           \
        const __mmask16 *mask, bool load_c, float *c, ptrdiff_t ldc) {                                    \
        __m512 acc[MR][NV], bv[NV];                                                                       \
        __mmask16 mk[NV];                                                                                 \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) mk[v] = mask[v];                            \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                              \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                          \
                acc[r][v] = !load_c       ? _mm512_setzero_ps()                                        \
                            : v + 1 < NV ? _mm512_loadu_ps(c + r * ldc + 16 * v)                         \
                                         : _mm512_maskz_loadu_ps(mk[v], c + r * ldc + 16 * v);           \
        for (size_t p = 0; p < k; p++) {                                                                  \
            const float *bp = b + (ptrdiff_t)p * ldb, *ap = a + (ptrdiff_t)p * csa;                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                           \
                bv[v] = v + 1 < NV ? _mm512_loadu_ps(bp + 16 * v) : _mm512_maskz_loadu_ps(mk[v], bp + 16 * v); \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                        \
                const __m512 ar = _mm512_set1_ps(ap[r * rsa]);                                            \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                      \
                    acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);                                    \
            }                                                                                             \
        }                                                                                                 \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                              \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                          \
                if (v + 1 < NV) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);                        \
                else _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mk[v], acc[r][v]);                       \
    }

#define TILES(NV) TILE(1, NV) TILE(2, NV) TILE(3, NV) TILE(4, NV) TILE(5, NV) TILE(6, NV) TILE(7, NV) TILE(8, NV)
TILES(1)
TILES(2)
TILES(3)
#define ROW(NV) {tile_1_##NV, tile_2_##NV, tile_3_##NV, tile_4_##NV, tile_5_##NV, tile_6_##NV, tile_7_##NV, tile_8_##NV}
static tile_fn *const tiles[NV_MAX][8] = {ROW(1), ROW(2), ROW(3)};

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
        for (size_t ic = 0; ic < m; ic += MC) {
            const size_t me = m - ic < MC ? m : ic + MC;
            for (size_t j = j0; j < j1; j += NR) {
                const size_t w = j1 - j < NR ? j1 - j : NR;
                const int nv = (int)((w + 15) / 16);
                __mmask16 mask[NV_MAX];
                for (int v = 0; v < NV_MAX; v++) mask[v] = w > 16 * (size_t)v ? mask_of(w - 16 * (size_t)v) : 0;
                for (size_t i = ic; i < me; i += 8) {
                    const size_t mr = me - i < 8 ? me - i : 8;
                    tiles[nv - 1][mr - 1](kc, a + (ptrdiff_t)i * rsa + (ptrdiff_t)pc * csa, rsa, csa,
                                          b + (ptrdiff_t)pc * ldb + (ptrdiff_t)j, ldb, mask, load_c,
                                          c + (ptrdiff_t)i * ldc + (ptrdiff_t)j, ldc);
                }
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
