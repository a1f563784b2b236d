/* tests/test_ops_sums.c — the block sums behind sum, mean, the norms and the
 * broadcast gradients (ops/blocksum.h): the same bits at 1 and 2 threads,
 * and close to a double-precision reference over mixed magnitudes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "helpers.h"
#include "nabla/testing.h"

enum { R = 1001, C = 67 }; /* 67067 elements: > NB_PAR_MIN, 17 blocks, a partial last one */

/* Normal numbers times 10^u, u uniform in [-3, 3]: terms of very different
 * sizes, both signs, so float-only accumulation would lose digits. */
static float *mixed_data(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    nb_rng r;
    nb_rng_seed(&r, seed, 1);
    for (size_t i = 0; i < n; i++) x[i] = nb_rng_normal(&r) * (float)pow(10.0, 6.0 * nb_rng_uniform(&r) - 3.0);
    return x;
}

typedef nb_node *(*unary_fn)(nb_graph *, nb_node *);
static nb_node *sum_axis0(nb_graph *g, nb_node *x) { return nb_sum_axis(g, x, 0); }
static nb_node *mean_axis1(nb_graph *g, nb_node *x) { return nb_mean_axis(g, x, 1); }

/* Forward of op on x [R, C] at `threads` threads; a malloc'd copy of y. */
static float *run_op(unary_fn op, const float *data, int threads, size_t *ny) {
    nb_set_num_threads(threads);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){R, C});
    nb_node *y = op(g, x);
    t_ok(g);
    nb_feed(g, x, data, R);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    *ny = nb_node_size(y);
    float *out = malloc(*ny * sizeof *out);
    memcpy(out, nb_node_value(y), *ny * sizeof *out);
    nb_graph_free(g);
    return out;
}

/* The reference in double: kind 0 sum, 1 |x|, 2 x², 3 sqrt(sum x²), 4
 * sum over axis 0, 5 mean over axis 1. */
static void reference(int kind, const float *x, double *ref, size_t *nref) {
    if (kind == 4) {
        for (int j = 0; j < C; j++) {
            ref[j] = 0.0;
            for (int i = 0; i < R; i++) ref[j] += x[(size_t)i * C + j];
        }
        *nref = C;
        return;
    }
    if (kind == 5) {
        for (int i = 0; i < R; i++) {
            ref[i] = 0.0;
            for (int j = 0; j < C; j++) ref[i] += x[(size_t)i * C + j];
            ref[i] /= C;
        }
        *nref = R;
        return;
    }
    double acc = 0.0;
    for (size_t i = 0; i < (size_t)R * C; i++)
        acc += kind == 0 ? (double)x[i] : kind == 1 ? fabs((double)x[i]) : (double)x[i] * x[i];
    ref[0] = kind == 3 ? sqrt(acc) : acc;
    *nref = 1;
}

Test(sums, reductions_are_thread_count_independent_and_accurate) {
    const unary_fn ops[] = {nb_sum, nb_l1_norm, nb_sum_squares, nb_l2_norm, sum_axis0, mean_axis1};
    const char *names[] = {"sum", "l1_norm", "sum_squares", "l2_norm", "sum_axis0", "mean_axis1"};
    float *x = mixed_data((size_t)R * C, 5);
    int saved = nb_get_num_threads();
    double *ref = malloc(R * sizeof *ref);
    for (int k = 0; k < 6; k++) {
        size_t n1, n2, nref;
        float *y1 = run_op(ops[k], x, 1, &n1), *y2 = run_op(ops[k], x, 2, &n2);
        cr_assert(n1 == n2);
        cr_assert(memcmp(y1, y2, n1 * sizeof *y1) == 0, "%s differs between 1 and 2 threads", names[k]);
        reference(k, x, ref, &nref);
        cr_assert(nref == n1);
        for (size_t i = 0; i < n1; i++) {
            /* A sum with cancellation is judged against the sum of the
             * terms' magnitudes: float lanes hold at most 8 terms (error
             * 8·2^-24 of them), then double; the result's float rounding adds
             * 2^-24 of the value. 1e-6 leaves room for neither to grow. */
            double scale = fabs(ref[i]);
            if (k == 0 || k == 4 || k == 5) {
                double mag = 0.0;
                if (k == 0)
                    for (size_t e = 0; e < (size_t)R * C; e++) mag += fabs((double)x[e]);
                else if (k == 4)
                    for (int r = 0; r < R; r++) mag += fabs((double)x[(size_t)r * C + i]);
                else {
                    for (int c = 0; c < C; c++) mag += fabs((double)x[i * C + (size_t)c]);
                    mag /= C;
                }
                scale = mag;
            }
            cr_assert(fabs((double)y1[i] - ref[i]) <= 1e-6 * scale,
                      "%s[%zu] = %.9g, reference %.12g (scale %.6g)", names[k], i, (double)y1[i], ref[i], scale);
        }
        free(y1);
        free(y2);
    }
    nb_set_num_threads(saved);
    free(ref);
    free(x);
}

/* The sum of squares of a long run of equal small terms on top of a large
 * one: float-only accumulation would drop the small ones. */
Test(sums, sum_squares_keeps_small_terms_of_a_long_sum) {
    const size_t n = 1 << 20;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 1e-3f;
    x[0] = 1000.0f; /* 1e6, then 2^20 terms of 1e-6: 1.048576 more */
    nb_tensor *p = t_tensor_of("x", 1, (int[]){(int)n}, x);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_sum_squares(g, nb_param(g, p));
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    double ref = 1e6 + (double)(n - 1) * (double)1e-3f * (double)1e-3f;
    cr_assert(fabs(nb_node_value(y)[0] - ref) <= 0.07, "got %.9g, reference %.9g", (double)nb_node_value(y)[0], ref);
    nb_graph_free(g);
    nb_tensor_free(p);
    free(x);
}

/* add's bias gradient (a column sum over the batch) and mul's gradients:
 * the same at 1 and 2 threads, and right. */
Test(sums, broadcast_add_and_mul_backward_thread_independent) {
    int saved = nb_get_num_threads();
    float *bias_grad[2], *ga[2], *gb[2];
    for (int t = 0; t < 2; t++) {
        nb_set_num_threads(t + 1);
        nb_tensor *a = t_tensor("a", 2, (int[]){R, C}, -2.0f, 2.0f, 7);
        nb_tensor *b = t_tensor("b", 2, (int[]){R, C}, -2.0f, 2.0f, 8);
        nb_tensor *bias = t_tensor("bias", 1, (int[]){C}, -1.0f, 1.0f, 9);
        nb_graph *g = nb_graph_new();
        nb_node *pa = nb_param(g, a), *pb = nb_param(g, b);
        nb_node *y = nb_add(g, nb_mul(g, pa, pb), nb_param(g, bias));
        nb_tensor *w;
        nb_node *loss = t_weighted_sum(g, y, &w, 10);
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
        t_ok(g);
        const size_t n = (size_t)R * C;
        bias_grad[t] = malloc(C * sizeof(float));
        ga[t] = malloc(n * sizeof(float));
        gb[t] = malloc(n * sizeof(float));
        memcpy(bias_grad[t], bias->grad, C * sizeof(float));
        memcpy(ga[t], a->grad, n * sizeof(float));
        memcpy(gb[t], b->grad, n * sizeof(float));
        if (t == 1) {
            /* dL/da = w·b and dL/db = w·a exactly (one float product each);
             * dL/dbias[j] = sum over rows of w, within 1e-6 of its magnitude */
            for (size_t i = 0; i < n; i++) {
                cr_assert(ga[t][i] == w->data[i] * b->data[i], "da[%zu]", i);
                cr_assert(gb[t][i] == w->data[i] * a->data[i], "db[%zu]", i);
            }
            for (int j = 0; j < C; j++) {
                double s = 0.0, mag = 0.0;
                for (int r = 0; r < R; r++) s += w->data[(size_t)r * C + j], mag += fabs(w->data[(size_t)r * C + j]);
                cr_assert(fabs(bias_grad[t][j] - s) <= 1e-6 * mag, "dbias[%d] = %.9g, reference %.9g", j,
                          (double)bias_grad[t][j], s);
            }
        }
        nb_graph_free(g);
        nb_tensor_free(a);
        nb_tensor_free(b);
        nb_tensor_free(bias);
        nb_tensor_free(w);
    }
    cr_assert(memcmp(bias_grad[0], bias_grad[1], C * sizeof(float)) == 0, "bias gradient differs between 1 and 2 threads");
    cr_assert(memcmp(ga[0], ga[1], (size_t)R * C * sizeof(float)) == 0);
    cr_assert(memcmp(gb[0], gb[1], (size_t)R * C * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++) free(bias_grad[t]), free(ga[t]), free(gb[t]);
    nb_set_num_threads(saved);
}
