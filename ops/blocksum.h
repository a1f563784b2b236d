/* ops/blocksum.h — sums of many floats, fast and the same on any number of
 * threads. Internal to ops/ (reduce.c, lpnorm.c, arith.c).
 *
 * A whole-tensor sum is cut into blocks of NB_SUM_BLOCK elements, fixed by
 * the element index, never by the thread count. A block is summed in 32
 * float lanes, each lane adding 8 terms before it is flushed into a double
 * lane (so a float partial holds at most 8 terms: relative error below
 * 8·2^-24 before it reaches double), and its 32 double lanes are added in a
 * fixed order. Blocks are summed in parallel into per-block doubles, which
 * are then added in block order, serially. Per-block doubles live in the
 * op's scratch (NB_SUM_SCRATCH floats), so no heap is touched. */
#ifndef NABLA_OPS_BLOCKSUM_H
#define NABLA_OPS_BLOCKSUM_H

#include <math.h>

#include "graph/internal.h"

#define NB_SUM_BLOCK 4096
enum { NB_SUM_PLAIN, NB_SUM_ABS, NB_SUM_SQUARES };

static inline size_t nb__sum_blocks(size_t n) { return (n + NB_SUM_BLOCK - 1) / NB_SUM_BLOCK; }
/* Scratch floats for a sum of n elements: one double per block. */
#define NB_SUM_SCRATCH(n) (2 * nb__sum_blocks(n) + 2)

/* One block's sum of TERMF(x[i]) (TERMD in double for the tail) for i in [0, n), n <= NB_SUM_BLOCK. */
#define NB__BLOCK_SUM(NAME, TERMF, TERMD)                                                      \
    NB_KERNEL_CLONES __attribute__((unused)) static double NAME(const float *restrict x, size_t n) { \
        double acc[32] = {0};                                                          \
        size_t i = 0;                                                                  \
        for (; i + 256 <= n; i += 256) {                                               \
            float s[32] = {0};                                                         \
            for (size_t k = 0; k < 256; k += 32)                                       \
                for (int j = 0; j < 32; j++) {                                         \
                    const float v = x[i + k + (size_t)j];                              \
                    s[j] += (TERMF);                                                   \
                }                                                                      \
            for (int j = 0; j < 32; j++) acc[j] += (double)s[j];                       \
        }                                                                              \
        double tail = 0.0;                                                             \
        for (; i < n; i++) {                                                           \
            const double v = (double)x[i];                                             \
            tail += (TERMD);                                                           \
        }                                                                              \
        for (int w = 16; w >= 1; w /= 2) /* pairwise, in a fixed order */             \
            for (int j = 0; j < w; j++) acc[j] += acc[j + w];                          \
        return acc[0] + tail;                                                          \
    }

NB__BLOCK_SUM(nb__block_sum_plain, v, v)
NB__BLOCK_SUM(nb__block_sum_abs, fabsf(v), fabs(v))
NB__BLOCK_SUM(nb__block_sum_squares, v * v, v * v)

static inline double nb__block_sum(int kind, const float *x, size_t n) {
    return kind == NB_SUM_ABS       ? nb__block_sum_abs(x, n)
         : kind == NB_SUM_SQUARES ? nb__block_sum_squares(x, n)
                                    : nb__block_sum_plain(x, n);
}

// the sums of blocks [lo, hi) of x[0, n) into part[lo, hi)
static inline void nb__sum_block_range(int kind, const float *x, size_t n, size_t lo, size_t hi, double *part) {
    for (size_t b = lo; b < hi; b++) {
        const size_t e0 = b * NB_SUM_BLOCK, m = n - e0 < NB_SUM_BLOCK ? n - e0 : NB_SUM_BLOCK;
        part[b] = nb__block_sum(kind, x + e0, m);
    }
}

/* The sum of TERM(x[i]) over x[0, n), kind one of NB_SUM_*; scratch holds
 * NB_SUM_SCRATCH(n) floats (any alignment of a float). */
static inline double nb__sum_all(int kind, const float *x, size_t n, float *scratch) {
    const size_t blocks = nb__sum_blocks(n);
    /* doubles need 8-byte alignment; a float pointer may be off by 4 */
    double *part = (double *)(void *)((uintptr_t)(scratch + 1) & ~(uintptr_t)7);
    NB_PARALLEL_RANGE_IF(n >= NB_PAR_MIN, lo, hi, blocks, nb__sum_block_range(kind, x, n, lo, hi, part));
    double total = 0.0;
    for (size_t b = 0; b < blocks; b++) total += part[b];
    return total;
}

/* Column sums: acc[j] = sum over r < rows of x[r·stride + j] (times
 * y[r·stride + j] when y is given), for j < w <= NB_COL_CHUNK. Rows go in
 * runs of 8 summed in float, each run flushed into the double acc: the
 * order depends on the row index only. Vectorized across columns. */
#define NB_COL_CHUNK 64
#define NB__COL_SUMS(NAME, TERM)                                                             \
    NB_KERNEL_CLONES __attribute__((unused)) static void NAME(                               \
        size_t rows, size_t stride, size_t w, const float *restrict x, const float *restrict y, \
        double *restrict acc) {                                                              \
        (void)y;                                                                             \
        for (size_t j = 0; j < w; j++) acc[j] = 0.0;                                         \
        size_t r = 0;                                                                        \
        for (; r + 8 <= rows; r += 8) {                                                      \
            float s[NB_COL_CHUNK];                                                           \
            for (size_t j = 0; j < w; j++) s[j] = 0.0f;                                      \
            for (size_t k = r; k < r + 8; k++)                                               \
                for (size_t j = 0; j < w; j++) {                                             \
                    const size_t e = k * stride + j;                                         \
                    s[j] += (TERM);                                                          \
                }                                                                            \
            for (size_t j = 0; j < w; j++) acc[j] += (double)s[j];                           \
        }                                                                                    \
        for (; r < rows; r++)                                                                \
            for (size_t j = 0; j < w; j++) {                                                 \
                const size_t e = r * stride + j;                                             \
                acc[j] += (double)(TERM);                                                    \
            }                                                                                \
    }

NB__COL_SUMS(nb__col_sums, x[e])
NB__COL_SUMS(nb__col_sums_prod, x[e] * y[e])

#endif
