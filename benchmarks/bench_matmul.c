/* bench-matmul — nabla's matmul against bare BLIS sgemm, same shapes, same process.
 *
 * For each shape [M,K]x[K,N] and thread count: the median time of nabla's
 * forward (Y = X·W) and backward (dX = dY·W^T and dW = X^T·dY, plus the
 * loss's own backward, a fill of M·N ones), next to bli_sgemm doing the
 * same one and two products with the same thread count. Medians, because
 * these machines are shared and noisy.
 *
 *   bench-matmul [repeats]          default 30 */
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nabla/nabla.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(nb_tensor *t, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < t->size; i++) t->data[i] = nb_rng_uniform(&r) - 0.5f;
}

static void blis_gemm(int threads, bool ta, bool tb, int m, int n, int k, float *a, int lda, float *b,
                      int ldb, float beta, float *c, int ldc) {
    float one = 1.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(threads, &rntm);
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n,
                 k, &one, a, lda, 1, b, ldb, 1, &beta, c, ldc, 1, NULL, &rntm);
}

static void bench(int m, int k, int n, int threads, int reps) {
    nb_set_num_threads(threads);
    nb_tensor *x = nb_tensor_new(2, (int[]){m, k}), *w = nb_tensor_new(2, (int[]){k, n});
    fill(x, 1), fill(w, 2);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_matmul(g, nb_param(g, x), nb_param(g, w));
    nb_node *loss = nb_sum(g, y);
    float *c = malloc(sizeof(float) * (size_t)m * n), *dy = malloc(sizeof(float) * (size_t)m * n);
    float *dx = malloc(sizeof(float) * (size_t)m * k), *dw = malloc(sizeof(float) * (size_t)k * n);
    for (size_t i = 0; i < (size_t)m * n; i++) dy[i] = 1.0f;
    double *t = malloc(sizeof(double) * (size_t)reps);
    double f_nb, b_nb, f_blis, b_blis;

    for (int r = -3; r < reps; r++) { /* three warm-ups */
        double t0 = now();
        nb_forward(g, NB_TRAINING);
        if (r >= 0) t[r] = now() - t0;
    }
    f_nb = median(t, reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        nb_backward(g, loss);
        if (r >= 0) t[r] = now() - t0;
    }
    b_nb = median(t, reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        blis_gemm(threads, false, false, m, n, k, x->data, k, w->data, n, 0.0f, c, n);
        if (r >= 0) t[r] = now() - t0;
    }
    f_blis = median(t, reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        blis_gemm(threads, false, true, m, k, n, dy, n, w->data, n, 0.0f, dx, k);
        blis_gemm(threads, true, false, k, n, m, x->data, k, dy, n, 0.0f, dw, n);
        if (r >= 0) t[r] = now() - t0;
    }
    b_blis = median(t, reps);
    if (nb_graph_status(g) != NB_OK) fprintf(stderr, "bench-matmul: %s\n", nb_graph_error(g));
    double flops = 2.0 * m * n * k;
    printf("[%4d,%4d]x[%4d,%4d] %d thr | fwd %8.1f us (%5.1f GF/s)  blis %8.1f us (%5.1f GF/s)  ratio %.2f"
           " | bwd %8.1f us (%5.1f GF/s)  blis %8.1f us (%5.1f GF/s)  ratio %.2f\n",
           m, k, k, n, threads, 1e6 * f_nb, flops / f_nb * 1e-9, 1e6 * f_blis, flops / f_blis * 1e-9,
           f_blis / f_nb, 1e6 * b_nb, 2 * flops / b_nb * 1e-9, 1e6 * b_blis, 2 * flops / b_blis * 1e-9,
           b_blis / b_nb);
    free(t), free(c), free(dy), free(dx), free(dw);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 30;
    if (reps < 1) {
        fprintf(stderr, "usage: bench-matmul [repeats >= 1]\n");
        return 2;
    }
    printf("BLIS %s, sub-configuration %s, sgemm micro-kernel %s; medians of %d runs; ratio = blis/nabla time\n",
           bli_info_get_version_str(), nb_blis_arch(), nb_blis_kernel(), reps);
    static const int shapes[][3] = {{256, 784, 300}, {32, 784, 300}, {32, 300, 100}, {32, 100, 10},
                                    {256, 300, 100}, {1024, 784, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int threads = 1; threads <= 2; threads++)
            bench(shapes[s][0], shapes[s][1], shapes[s][2], threads, reps);
    return 0;
}
