/* normalization kernels at sizes that exercise their blocking: batch and
 * layer norm over several blocks of rows (with a short last block), feature
 * counts that are not a multiple of the vector lanes, data whose mean is far
 * larger than its spread (where sums of x and x² would cancel), forward
 * and backward against references in double, and the same bits at 1 and 2
 * threads. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* x [R,F]: offset + spread·u with u uniform in [-1,1) from a fixed stream,
 * plus a feature-dependent shift, so every column and row differs. */
static float *make_x(int R, int F, float offset, float spread, uint64_t seed) {
    nb_tensor *t = t_tensor("u", 2, (int[]){R, F}, -1.0f, 1.0f, seed);
    float *x = malloc((size_t)R * F * sizeof(float));
    for (int i = 0; i < R * F; i++) x[i] = offset + (float)(i % F) * 0.01f * spread + spread * t->data[i];
    nb_tensor_free(t);
    return x;
}

/* xhat (double) and the batch statistics per feature, or per row (layer). */
static void ref_xhat(const float *x, int R, int F, bool per_row, double eps, double *xhat, double *var_out) {
    const int groups = per_row ? R : F, len = per_row ? F : R;
    for (int a = 0; a < groups; a++) {
#define AT(k) (per_row ? (size_t)a * F + (k) : (size_t)(k) * F + a)
        double m = 0, v = 0;
        for (int k = 0; k < len; k++) m += x[AT(k)];
        m /= len;
        for (int k = 0; k < len; k++) v += (x[AT(k)] - m) * (x[AT(k)] - m);
        v /= len;
        if (var_out) var_out[a] = v;
        for (int k = 0; k < len; k++) xhat[AT(k)] = (x[AT(k)] - m) / sqrt(v + eps);
#undef AT
    }
}

/* Gradients of L = sum(w·y), y = gamma·xhat + beta, in double. Batch norm
 * (per_row false) normalizes columns, layer norm rows: dx over each group
 * is gamma-weighted dxhat minus its mean minus xhat times mean(dxhat·xhat). */
static void ref_grads(const float *x, const float *w, const float *gamma, int R, int F, bool per_row,
                      double eps, float *dx, float *dg, float *db) {
    double *xh = malloc((size_t)R * F * sizeof(double)), *var = malloc((size_t)(R > F ? R : F) * sizeof(double));
    ref_xhat(x, R, F, per_row, eps, xh, var);
    for (int j = 0; j < F; j++) {
        double sg = 0, sb = 0;
        for (int r = 0; r < R; r++) sg += (double)w[r * F + j] * xh[r * F + j], sb += w[r * F + j];
        dg[j] = (float)sg, db[j] = (float)sb;
    }
    const int groups = per_row ? R : F, len = per_row ? F : R;
    for (int a = 0; a < groups; a++) {
#define AT(k) (per_row ? (size_t)a * F + (k) : (size_t)(k) * F + a)
#define G(k) ((double)gamma[per_row ? (k) : a])
        double m1 = 0, m2 = 0;
        for (int k = 0; k < len; k++) m1 += G(k) * w[AT(k)], m2 += G(k) * w[AT(k)] * xh[AT(k)];
        m1 /= len, m2 /= len;
        const double is = 1.0 / sqrt(var[a] + eps);
        for (int k = 0; k < len; k++) dx[AT(k)] = (float)(is * (G(k) * w[AT(k)] - m1 - xh[AT(k)] * m2));
#undef G
#undef AT
    }
    free(xh), free(var);
}

typedef struct out {
    float *y, *dx, *dg, *db, *rv;
} out;

static out run(bool batchnorm, const float *x, int R, int F, int threads, double tol) {
    int prev = nb_get_num_threads();
    nb_set_num_threads(threads);
    nb_tensor *xt = t_tensor_of("x", 2, (int[]){R, F}, x);
    xt->trainable = true;
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 12);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 13);
    nb_tensor *rm = nb_tensor_new(1, (int[]){F}), *rv = nb_tensor_new(1, (int[]){F}), *w;
    for (int j = 0; j < F; j++) rm->data[j] = 0.0f, rv->data[j] = 1.0f;
    nb_graph *g = nb_graph_new();
    nb_node *y = batchnorm ? nb_batchnorm(g, nb_param(g, xt), nb_param(g, gm), nb_param(g, bt), rm, rv, 0.0f, 1e-3f)
                           : nb_layernorm(g, nb_param(g, xt), nb_param(g, gm), nb_param(g, bt), 1e-3f);
    nb_node *loss = t_weighted_sum(g, y, &w, 14);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    const size_t n = (size_t)R * F;
    out o = {malloc(n * 4), malloc(n * 4), malloc(F * 4), malloc(F * 4), malloc(F * 4)};
    memcpy(o.y, nb_node_value(y), n * 4), memcpy(o.dx, xt->grad, n * 4);
    memcpy(o.dg, gm->grad, F * 4), memcpy(o.db, bt->grad, F * 4), memcpy(o.rv, rv->data, F * 4);
    /* against the references, in double */
    double *xh = malloc(n * sizeof(double)), *var = malloc((size_t)(R > F ? R : F) * sizeof(double));
    float *ey = malloc(n * 4), *edx = malloc(n * 4), *edg = malloc(F * 4), *edb = malloc(F * 4);
    ref_xhat(x, R, F, !batchnorm, 1e-3, xh, var);
    for (size_t i = 0; i < n; i++) ey[i] = (float)(gm->data[i % F] * xh[i] + bt->data[i % F]);
    nb_assert_near(o.y, ey, n, tol, 1e-4);
    if (batchnorm) { /* momentum 0: the running variance is the batch's */
        float ev[F];
        for (int j = 0; j < F; j++) ev[j] = (float)var[j];
        nb_assert_near(o.rv, ev, (size_t)F, 1e-6, 1e-5);
    }
    ref_grads(x, w->data, gm->data, R, F, !batchnorm, 1e-3, edx, edg, edb);
    nb_assert_near(o.dx, edx, n, tol, 1e-3);
    /* xhat's error (tol, an offset shared by a column) adds up over the
     * rows weighted by dy: at most tol·|sum(dy)| = tol·|dbeta| */
    double max_db = 0;
    for (int j = 0; j < F; j++) max_db = fmax(max_db, fabs(edb[j]));
    nb_assert_near(o.dg, edg, (size_t)F, 1e-3 + tol * max_db, 1e-4);
    nb_assert_near(o.db, edb, (size_t)F, 1e-3, 1e-4);
    free(xh), free(var), free(ey), free(edx), free(edg), free(edb);
    nb_graph_free(g);
    nb_tensor_free(xt), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
    nb_tensor_free(w);
    nb_set_num_threads(prev);
    return o;
}

static void free_out(out o) { free(o.y), free(o.dx), free(o.dg), free(o.db), free(o.rv); }

/* Runs at 1 and 2 threads (each checked against the reference) and
 * requires the same bits. The mean is kept in float (aux), so y and dx can
 * be off by up to gamma·ulp(mean)/2/std from the double reference: the
 * tolerance is 1e-5 or twice that bound (gamma < 1.5, std >= spread/2). */
static void check(bool batchnorm, int R, int F, float offset, float spread) {
    float *x = make_x(R, F, offset, spread, 11);
    const double ulp = offset != 0.0f ? nextafterf(fabsf(offset) * 1.1f, INFINITY) - fabsf(offset) * 1.1f : 0.0;
    const double tol = fmax(1e-5, 2 * 1.5 * ulp / 2 / (spread / 2));
    out a = run(batchnorm, x, R, F, 1, tol), b = run(batchnorm, x, R, F, 2, tol);
    const size_t n = (size_t)R * F;
    cr_assert(memcmp(a.y, b.y, n * 4) == 0, "y differs across thread counts");
    cr_assert(memcmp(a.dx, b.dx, n * 4) == 0, "dx differs across thread counts");
    cr_assert(memcmp(a.dg, b.dg, F * 4) == 0, "dgamma differs across thread counts");
    cr_assert(memcmp(a.db, b.db, F * 4) == 0, "dbeta differs across thread counts");
    cr_assert(memcmp(a.rv, b.rv, F * 4) == 0, "running var differs across thread counts");
    free_out(a), free_out(b), free(x);
}

/* 37 features: 880-row blocks, so 2000 rows are three blocks, the last
 * short, and the rows are not whole vectors */
Test(norm_blocks, batchnorm_several_blocks_match_reference) { check(true, 2000, 37, 0.0f, 2.0f); }
Test(norm_blocks, batchnorm_mean_far_above_spread_stays_accurate) { check(true, 2000, 37, 1000.0f, 0.5f); }
Test(norm_blocks, batchnorm_batch_below_one_group_of_rows) { check(true, 5, 300, 3.0f, 1.0f); }
Test(norm_blocks, batchnorm_wide_rows) { check(true, 64, 1000, -2.0f, 1.0f); }
Test(norm_blocks, layernorm_several_blocks_match_reference) { check(false, 2000, 37, 0.0f, 2.0f); }
Test(norm_blocks, layernorm_mean_far_above_spread_stays_accurate) { check(false, 300, 300, 1000.0f, 0.5f); }
Test(norm_blocks, layernorm_rows_of_several_chunks_and_a_tail) { check(false, 40, 1000, 1.0f, 3.0f); }
Test(norm_blocks, layernorm_short_rows) { check(false, 200, 5, 0.5f, 1.0f); }
