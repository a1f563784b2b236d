/* ops/gemm.c — the five loops of a BLIS-style gemm around BLIS's micro-kernel.
 *
 * Loop order (Goto/van de Geijn): jc over NC columns of C, pc over KC of the
 * inner dimension (pack a KC x NC block of B), ic over MC rows (pack an
 * MC x KC block of A), then jr/ir over NR x MR micro-tiles, each one call
 * of the micro-kernel over the packed panels. Panels are zero-padded to
 * whole micro-tiles, and the kernel is told the real edge sizes. */
#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "graph/internal.h"
#include "graph/barrier.h"
#include "ops/gemm.h"

static struct {
    sgemm_ukr_ft ukr;
    cntx_t *cntx;
    size_t mr, nr, packmr, packnr, mc, kc, nc;
    bool prefers_rows;
    bool direct; /* ops/gemm_direct.c runs here */
} K;
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

/* dst[p*stride + i] = src[i*ld + p] for i < rows, p < kc: the packing of an
 * operand whose contiguous axis is the inner dimension (W in dX = dY·W^T,
 * X in Y = X·W), which a panel wants across it. */
typedef void transpose_fn(float *dst, size_t stride, const float *src, ptrdiff_t ld, size_t rows, size_t kc);

static void transpose_scalar(float *dst, size_t stride, const float *src, ptrdiff_t ld, size_t rows, size_t kc) {
    for (size_t i = 0; i < rows; i++) {
        const float *row = src + (ptrdiff_t)i * ld;
        for (size_t p = 0; p < kc; p++) dst[p * stride + i] = row[p];
    }
}

#if defined(__x86_64__)
/* 8 x 8 blocks through registers (unpack, shuffle, swap of 128-bit
 * halves), the rest as above: several times the scalar loop's speed, whose
 * stores go one float at a time to a new line. */
__attribute__((target("avx2"))) static void transpose_avx2(float *dst, size_t stride, const float *src, ptrdiff_t ld,
                                                           size_t rows, size_t kc) {
    size_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        const float *s = src + (ptrdiff_t)i * ld;
        size_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 r0 = _mm256_loadu_ps(s + p), r1 = _mm256_loadu_ps(s + ld + p);
            __m256 r2 = _mm256_loadu_ps(s + 2 * ld + p), r3 = _mm256_loadu_ps(s + 3 * ld + p);
            __m256 r4 = _mm256_loadu_ps(s + 4 * ld + p), r5 = _mm256_loadu_ps(s + 5 * ld + p);
            __m256 r6 = _mm256_loadu_ps(s + 6 * ld + p), r7 = _mm256_loadu_ps(s + 7 * ld + p);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + p * stride + i;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(d + stride, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(d + 2 * stride, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(d + 3 * stride, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(d + 4 * stride, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(d + 5 * stride, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(d + 6 * stride, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(d + 7 * stride, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
        if (p < kc) transpose_scalar(dst + p * stride + i, stride, s + p, ld, 8, kc - p);
    }
    if (i < rows) transpose_scalar(dst + i, stride, src + (ptrdiff_t)i * ld, ld, rows - i, kc);
}
#endif

static transpose_fn *transpose = transpose_scalar;

static void k_init(void) {
    nb__runtime_init();
    cntx_t *c = bli_gks_query_cntx();
    K.cntx = c;
    K.ukr = (sgemm_ukr_ft)bli_cntx_get_l3_nat_ukr_dt(BLIS_FLOAT, BLIS_GEMM_UKR, c);
    K.mr = (size_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, c);
    K.nr = (size_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, c);
    K.packmr = (size_t)bli_cntx_get_blksz_max_dt(BLIS_FLOAT, BLIS_MR, c);
    K.packnr = (size_t)bli_cntx_get_blksz_max_dt(BLIS_FLOAT, BLIS_NR, c);
    K.mc = (size_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MC, c);
    K.kc = (size_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_KC, c);
    K.nc = (size_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NC, c);
    K.prefers_rows = bli_cntx_l3_nat_ukr_prefers_rows_dt(BLIS_FLOAT, BLIS_GEMM_UKR, c);
    /* keep MC and NC whole numbers of micro-tiles */
    K.mc -= K.mc % K.mr;
    K.nc -= K.nc % K.nr;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) transpose = transpose_avx2;
#endif
    K.direct = nb__gemm_direct_available() && !getenv("NABLA_NO_DIRECT_GEMM");
}

static void k_ready(void) { pthread_once(&k_once, k_init); }

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Which products take the direct kernels of ops/gemm_direct.c. Measured
 * with benchmarks/nabla-bench on Zen 4 against this file's packed path, the
 * direct kernels are 1.1-3x faster on every layer of the book's models at
 * batch 32 and 256, and as fast or faster at batch 1024 (the largest,
 * [1024,784]x[784,300], 5.0 ms vs 5.1 ms); products larger than these in
 * every dimension, which nabla never measured, keep the packed path. */
static bool direct_shape(size_t m, size_t n, size_t k) { return min_sz(min_sz(m, n), k) <= 512; }

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Both orientations (see nb__sgemm) swap m and n, so size for either. */
size_t nb__gemm_workspace(size_t m, size_t n, size_t k) {
    k_ready();
    size_t big = m > n ? m : n, kc = min_sz(k, K.kc);
    size_t a = ceil_div(min_sz(big, K.mc), K.mr) * K.packmr * kc;
    size_t b = ceil_div(min_sz(big, K.nc), K.nr) * K.packnr * kc;
    size_t packed = ((a + 15) & ~(size_t)15) + b + 16;
    /* the direct kernels' copy of a transposed B, k x n */
    size_t direct = K.direct && direct_shape(m, n, k) ? k * n + 16 : 0;
    return packed > direct ? packed : direct;
}

/* Packs rows [0, mc) x cols [0, kc) of A into MR-row panels: panel q holds,
 * for each p, PACKMR consecutive values A(q·MR + i, p), zero past mc. */
NB_KERNEL_CLONES static void pack_a_panel(size_t q, size_t mc, size_t kc, const float *a, ptrdiff_t rsa,
                         ptrdiff_t csa, float *ap) {
    const size_t i0 = q * K.mr, rows = min_sz(K.mr, mc - i0);
    float *dst = ap + q * K.packmr * kc;
    const float *src = a + (ptrdiff_t)i0 * rsa;
    if (rsa == 1) { /* columns contiguous (a transposed operand): a copy per column */
        for (size_t p = 0; p < kc; p++) { /* an inline loop: memcpy's call costs more than 32 floats */
            const float *restrict from = src + (ptrdiff_t)p * csa;
            float *restrict to = dst + p * K.packmr;
            for (size_t i = 0; i < rows; i++) to[i] = from[i];
        }
    } else if (csa == 1) { /* rows contiguous */
        transpose(dst, K.packmr, src, rsa, rows, kc);
    } else {
        for (size_t p = 0; p < kc; p++)
            for (size_t i = 0; i < rows; i++)
                dst[p * K.packmr + i] = src[(ptrdiff_t)i * rsa + (ptrdiff_t)p * csa];
    }
    if (rows < K.packmr)
        for (size_t p = 0; p < kc; p++)
            for (size_t i = rows; i < K.packmr; i++) dst[p * K.packmr + i] = 0.0f;
}

/* Packs B into NR-column panels: panel q holds, for each p, PACKNR
 * consecutive values B(p, q·NR + j), zero past nc. */
NB_KERNEL_CLONES static void pack_b_panel(size_t q, size_t nc, size_t kc, const float *b, ptrdiff_t rsb,
                         ptrdiff_t csb, float *bp) {
    const size_t j0 = q * K.nr, cols = min_sz(K.nr, nc - j0);
    float *dst = bp + q * K.packnr * kc;
    const float *src = b + (ptrdiff_t)j0 * csb;
    if (csb == 1) {
        for (size_t p = 0; p < kc; p++) {
            const float *row = src + (ptrdiff_t)p * rsb;
            float *d = dst + p * K.packnr;
            size_t j = 0;
            for (; j < cols; j++) d[j] = row[j];
            for (; j < K.packnr; j++) d[j] = 0.0f;
        }
    } else {
        if (rsb == 1) { /* columns contiguous */
            transpose(dst, K.packnr, src, csb, cols, kc);
        } else {
            for (size_t j = 0; j < cols; j++) {
                const float *col = src + (ptrdiff_t)j * csb;
                for (size_t p = 0; p < kc; p++) dst[p * K.packnr + j] = col[(ptrdiff_t)p * rsb];
            }
        }
        if (cols < K.packnr)
            for (size_t p = 0; p < kc; p++)
                for (size_t j = cols; j < K.packnr; j++) dst[p * K.packnr + j] = 0.0f;
    }
}

typedef struct {
    size_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    ptrdiff_t rsa, csa, rsb, csb, rsc, csc;
    float *c, *ap, *bp;
} problem;

/* One thread's share (tid of nt) of the five loops; with nt > 1 it runs
 * inside a parallel region and meets the others at the barriers. */
static void run(const problem *P, int tid, int nt) {
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    for (size_t jc = 0; jc < P->n; jc += K.nc) {
        const size_t nc = min_sz(K.nc, P->n - jc), nb_panels = ceil_div(nc, K.nr);
        for (size_t pc = 0; pc < P->k; pc += K.kc) {
            const size_t kc = min_sz(K.kc, P->k - pc);
            float beta = pc == 0 ? P->beta : 1.0f, alpha = P->alpha;
            const float *bsrc = P->b + (ptrdiff_t)pc * P->rsb + (ptrdiff_t)jc * P->csb;
            for (size_t q = (size_t)tid; q < nb_panels; q += (size_t)nt)
                pack_b_panel(q, nc, kc, bsrc, P->rsb, P->csb, P->bp);
            if (nt > 1)
                nb__team_sync();
            for (size_t ic = 0; ic < P->m; ic += K.mc) {
                const size_t mc = min_sz(K.mc, P->m - ic), na_panels = ceil_div(mc, K.mr);
                const float *asrc = P->a + (ptrdiff_t)ic * P->rsa + (ptrdiff_t)pc * P->csa;
                for (size_t q = (size_t)tid; q < na_panels; q += (size_t)nt)
                    pack_a_panel(q, mc, kc, asrc, P->rsa, P->csa, P->ap);
                if (nt > 1)
                    nb__team_sync();
                /* tiles in column-panel-major order, dealt round robin */
                const size_t tiles = na_panels * nb_panels;
                for (size_t t = (size_t)tid; t < tiles; t += (size_t)nt) {
                    const size_t jr = t / na_panels, ir = t % na_panels;
                    const size_t i0 = ir * K.mr, j0 = jr * K.nr;
                    float *ap = P->ap + ir * K.packmr * kc, *bp = P->bp + jr * K.packnr * kc;
                    float *c = P->c + (ptrdiff_t)(ic + i0) * P->rsc + (ptrdiff_t)(jc + j0) * P->csc;
                    bli_auxinfo_set_next_ab(ap, bp, &aux);
                    K.ukr((dim_t)min_sz(K.mr, mc - i0), (dim_t)min_sz(K.nr, nc - j0), (dim_t)kc,
                          &alpha, ap, bp, &beta, c, P->rsc, P->csc, &aux, K.cntx);
                }
                if (nt > 1) /* A's buffer is rewritten next */
                    nb__team_sync();
            }
        }
    }
}

/* Sets up P for C = alpha·A·B + beta·C; false when there is nothing to
 * multiply (k = 0 or alpha = 0), after scaling C by beta on the caller's
 * thread (tid 0). */
static bool setup(problem *P, size_t m, size_t n, size_t k, float alpha, const float *a, ptrdiff_t rsa,
                  ptrdiff_t csa, const float *b, ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c,
                  ptrdiff_t rsc, ptrdiff_t csc, float *work, int tid) {
    if (m == 0 || n == 0) return false;
    k_ready();
    if (k == 0 || alpha == 0.0f) {
        if (tid == 0)
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    float *cij = c + (ptrdiff_t)i * rsc + (ptrdiff_t)j * csc;
                    *cij = beta == 0.0f ? 0.0f : beta * *cij;
                }
        return false;
    }
    *P = (problem){m, n, k, alpha, beta, a, b, rsa, csa, rsb, csb, rsc, csc, c, NULL, NULL};
    /* Give the kernel C in the orientation it prefers: C^T = B^T·A^T turns
     * a row-major C into a column-major one. */
    bool c_rows = (csc == 1);
    if (c_rows != K.prefers_rows) {
        *P = (problem){n, m, k, alpha, beta, b, a, csb, rsb, csa, rsa, csc, rsc, c, NULL, NULL};
    }
    size_t kc = min_sz(k, K.kc);
    size_t a_floats = ceil_div(min_sz(P->m, K.mc), K.mr) * K.packmr * kc;
    P->ap = work;
    P->bp = work + ((a_floats + 15) & ~(size_t)15);
    return true;
}

/* The direct kernels take C by rows, B contiguous along its rows or its
 * columns (then copied transposed into work), alpha 1 and beta 0 or 1. */
static bool direct_fits(size_t m, size_t n, size_t k, float alpha, float beta, ptrdiff_t rsb, ptrdiff_t csb, ptrdiff_t csc) {
    return K.direct && alpha == 1.0f && (beta == 0.0f || beta == 1.0f) && csc == 1 && (csb == 1 || rsb == 1) &&
           direct_shape(m, n, k);
}

/* [lo, hi) of tid's share of `blocks` blocks of `unit`, capped at `limit`. */
static void share(size_t blocks, size_t unit, size_t limit, int tid, int nt, size_t *lo, size_t *hi) {
    *lo = min_sz(limit, blocks * (size_t)tid / (size_t)nt * unit);
    *hi = min_sz(limit, blocks * (size_t)(tid + 1) / (size_t)nt * unit);
}

/* How much longer the busiest thread works than the average when `blocks`
 * are dealt to nt threads. */
static double imbalance(size_t blocks, int nt) { return (double)ceil_div(blocks, (size_t)nt) * nt / (double)blocks; }

/* This thread's share of a direct product: columns of C in blocks of 16
 * (each thread then reads only its part of B, the weights), or rows in
 * blocks of 8 when columns would split unevenly (100 columns are 7
 * blocks). A transposed B is copied by columns, each thread its share,
 * and the team waits for the whole copy when it splits by rows. */
static void direct(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                   ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c, ptrdiff_t rsc, float *work, int tid, int nt) {
    size_t i0 = 0, i1 = m, j0 = 0, j1 = n;
    const size_t col_blocks = ceil_div(n, 16), row_blocks = ceil_div(m, 8);
    bool by_rows = false;
    if (nt > 1) {
        const double ic = imbalance(col_blocks, nt), ir = imbalance(row_blocks, nt);
        by_rows = ic > 1.10 && ir < ic;
        if (by_rows)
            share(row_blocks, 8, m, tid, nt, &i0, &i1);
        else
            share(col_blocks, 16, n, tid, nt, &j0, &j1);
    }
    ptrdiff_t ldb = rsb;
    if (csb != 1) { /* B(p,j) = b[j*csb + p]: columns as rows of work */
        size_t t0 = j0, t1 = j1;
        if (by_rows) share(col_blocks, 16, n, tid, nt, &t0, &t1);
        if (t0 < t1) transpose(work + t0, n, b + (ptrdiff_t)t0 * csb, csb, t1 - t0, k);
        if (by_rows)
            nb__team_sync();
        b = work, ldb = (ptrdiff_t)n;
    }
    if (i0 < i1 && j0 < j1)
        nb__sgemm_direct(i1 - i0, j0, j1, k, a + (ptrdiff_t)i0 * rsa, rsa, csa, b, ldb, beta != 0.0f,
                         c + (ptrdiff_t)i0 * rsc, rsc);
}

void nb__sgemm(size_t m, size_t n, size_t k, float alpha, const float *a, ptrdiff_t rsa,
               ptrdiff_t csa, const float *b, ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c,
               ptrdiff_t rsc, ptrdiff_t csc, float *work) {
    if (m == 0 || n == 0) return;
    k_ready();
    int nt = nb__threads();
    const bool par = nt > 1 && !omp_in_parallel() && (double)m * (double)n * (double)k >= NB_GEMM_PAR_MIN;
    if (direct_fits(m, n, k, alpha, beta, rsb, csb, csc)) {
        if (par) {
            nb_barrier bar;
            nb__barrier_init(&bar);
#pragma omp parallel num_threads(nt)
            {
                nb__team_join(&bar, omp_get_num_threads());
                direct(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc, work, omp_get_thread_num(),
                       omp_get_num_threads());
                nb__team_join(NULL, 0);
            }
        } else {
            direct(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc, work, 0, 1);
        }
        return;
    }
    problem P;
    if (!setup(&P, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, work, 0)) return;
    if (par) {
        nb_barrier bar;
        nb__barrier_init(&bar);
#pragma omp parallel num_threads(nt)
        {
            nb__team_join(&bar, omp_get_num_threads());
            run(&P, omp_get_thread_num(), omp_get_num_threads());
            nb__team_join(NULL, 0);
        }
    } else {
        run(&P, 0, 1);
    }
}

void nb__sgemm_team(size_t m, size_t n, size_t k, float alpha, const float *a, ptrdiff_t rsa,
                    ptrdiff_t csa, const float *b, ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c,
                    ptrdiff_t rsc, ptrdiff_t csc, float *work, int tid, int nt) {
    if (m == 0 || n == 0) return;
    k_ready();
    if (direct_fits(m, n, k, alpha, beta, rsb, csb, csc)) {
        direct(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc, work, tid, nt);
        return;
    }
    problem P;
    if (!setup(&P, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, work, tid)) return;
    run(&P, tid, nt);
}
