/* nabla's sgemm (ops/gemm.c): the direct kernels for small products and the
 * packed path over BLIS's micro-kernel, against a naive double product, over
 * edge sizes of both (partial tiles, partial vectors, several KC blocks),
 * every stride arrangement nabla uses, beta 0 and 1, and split among a team
 * of threads by columns or rows with the same bits as on one thread. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"
#include "ops/gemm.h"

static float *floats(size_t n, uint64_t seed) {
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
    return p;
}

typedef struct {
    size_t m, n, k;
    bool ta, tb; /* A stored k x m, B stored n x k */
    float beta;
} product;

/* C = beta·C + op(A)·op(B) through nb__sgemm (tid < 0) or nb__sgemm_team
 * on two threads; checks it against the naive product and returns C. */
static float *run(const product *p, int how) {
    const size_t m = p->m, n = p->n, k = p->k;
    float *a = floats(m * k, 1), *b = floats(k * n, 2), *c = floats(m * n, 3), *c0 = floats(m * n, 3);
    ptrdiff_t rsa = p->ta ? 1 : (ptrdiff_t)k, csa = p->ta ? (ptrdiff_t)m : 1;
    ptrdiff_t rsb = p->tb ? 1 : (ptrdiff_t)n, csb = p->tb ? (ptrdiff_t)k : 1;
    float *work = floats(nb__gemm_workspace(m, n, k), 4);
    if (how == 1) {
        nb__sgemm(m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, p->beta, c, (ptrdiff_t)n, 1, work);
    } else { /* one workspace for the team, as the graph gives it */
#pragma omp parallel num_threads(2)
        nb__sgemm_team(m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, p->beta, c, (ptrdiff_t)n, 1, work,
                       omp_get_thread_num(), omp_get_num_threads());
    }
    float *want = malloc((m * n > 0 ? m * n : 1) * sizeof(float));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = p->beta * (double)c0[i * n + j];
            for (size_t q = 0; q < k; q++) s += (double)a[i * rsa + q * csa] * b[q * rsb + j * csb];
            want[i * n + j] = (float)s;
        }
    nb_assert_near(c, want, m * n, 1e-6 * (double)(k + 8), 1e-5); /* rounding grows with k */
    free(a), free(b), free(c0), free(work), free(want);
    return c;
}

static void sweep(int how) {
    static const size_t ms[] = {1, 7, 8, 9, 32, 33}, ns[] = {1, 10, 16, 17, 31, 32, 33, 100}, ks[] = {1, 100, 129, 300};
    for (size_t x = 0; x < sizeof ms / sizeof *ms; x++)
        for (size_t y = 0; y < sizeof ns / sizeof *ns; y++)
            for (size_t z = 0; z < sizeof ks / sizeof *ks; z++)
                for (int v = 0; v < 8; v++) {
                    product p = {ms[x], ns[y], ks[z], v & 1, v >> 1 & 1, (v >> 2 & 1) ? 1.0f : 0.0f};
                    free(run(&p, how));
                }
}

Test(gemm, small_products_of_every_edge_size_and_layout) { sweep(1); }

Test(gemm, the_same_through_the_packed_path) {
    setenv("NABLA_NO_DIRECT_GEMM", "1", 1); /* read once, at the first product */
    sweep(1);
}

Test(gemm, the_same_shared_by_two_threads) { sweep(2); }

/* Split by columns (many column blocks), by rows (few columns, B by rows),
 * and large enough for the packed path: the same bits as one thread. */
Test(gemm, a_team_gets_the_bits_of_one_thread) {
    static const product ps[] = {
        {32, 300, 784, false, false, 0.0f}, /* columns */
        {784, 10, 32, true, false, 1.0f},   /* rows: dW of a 10-wide layer */
        {32, 100, 300, false, true, 1.0f},  /* columns, B copied transposed */
        {600, 600, 600, false, false, 0.0f} /* the packed path */
    };
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        float *one = run(&ps[i], 1), *two = run(&ps[i], 2);
        cr_assert(memcmp(one, two, ps[i].m * ps[i].n * sizeof(float)) == 0, "product %zu differs", i);
        free(one), free(two);
    }
}

Test(gemm, an_empty_inner_dimension_gives_beta_c) {
    product p = {9, 17, 0, false, false, 0.0f};
    free(run(&p, 1));
    p.beta = 1.0f;
    free(run(&p, 2));
}
