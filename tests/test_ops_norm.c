/* normalization: batchnorm and layernorm values against references computed
 * here in double, running statistics (the biased batch variance, as Keras 3), gradients in
 * training and inference, optional gamma/beta, bad arguments, batch change
 * and independence from the number of threads. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* ---- references ---- */

/* Batch statistics of x [R,F] per feature: mean and biased variance. */
static void ref_stats(const float *x, int R, int F, double *mean, double *var) {
    for (int j = 0; j < F; j++) {
        double s = 0;
        for (int r = 0; r < R; r++) s += x[r * F + j];
        mean[j] = s / R;
        double v = 0;
        for (int r = 0; r < R; r++) v += (x[r * F + j] - mean[j]) * (x[r * F + j] - mean[j]);
        var[j] = v / R;
    }
}

/* y = gamma·(x-mean)/sqrt(var+eps) + beta per feature; gamma/beta may be NULL. */
static void ref_affine(const float *x, int R, int F, const double *mean, const double *var,
                       const float *gamma, const float *beta, double eps, float *y) {
    for (int r = 0; r < R; r++)
        for (int j = 0; j < F; j++) {
            double xhat = (x[r * F + j] - mean[j]) / sqrt(var[j] + eps);
            y[r * F + j] = (float)((gamma ? gamma[j] : 1.0) * xhat + (beta ? beta[j] : 0.0));
        }
}

/* Layer norm of each row of x [R,F]. */
static void ref_layernorm(const float *x, int R, int F, const float *gamma, const float *beta,
                          double eps, float *y) {
    for (int r = 0; r < R; r++) {
        const float *xr = x + r * F;
        double m = 0, v = 0;
        for (int j = 0; j < F; j++) m += xr[j];
        m /= F;
        for (int j = 0; j < F; j++) v += (xr[j] - m) * (xr[j] - m);
        v /= F;
        for (int j = 0; j < F; j++) {
            double xhat = (xr[j] - m) / sqrt(v + eps);
            y[r * F + j] = (float)((gamma ? gamma[j] : 1.0) * xhat + (beta ? beta[j] : 0.0));
        }
    }
}

static nb_tensor *filled(const char *name, int F, float v) {
    nb_tensor *t = nb_tensor_new(1, (int[]){F});
    cr_assert(t);
    for (int j = 0; j < F; j++) t->data[j] = v;
    nb_tensor_set_name(t, name);
    t->trainable = false;
    return t;
}

/* ---- batchnorm ---- */

Test(norm, batchnorm_training_forward_and_running_stats_after_one_step) {
    enum { R = 6, F = 4 };
    const float mom = 0.9f, eps = 1e-3f;
    nb_tensor *x = t_tensor("x", 2, (int[]){R, F}, -2, 3, 1);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 2);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 3);
    nb_tensor *rm = t_tensor("rm", 1, (int[]){F}, -0.5f, 0.5f, 4);
    nb_tensor *rv = t_tensor("rv", 1, (int[]){F}, 0.5f, 2.0f, 5);
    float rm0[F], rv0[F];
    memcpy(rm0, rm->data, sizeof rm0);
    memcpy(rv0, rv->data, sizeof rv0);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_batchnorm(g, nb_constant(g, x), nb_param(g, gm), nb_param(g, bt), rm, rv, mom, eps);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    cr_assert_str_eq(nb_node_op(y), "batchnorm");
    double mean[F], var[F];
    ref_stats(x->data, R, F, mean, var);
    float ref[R * F], erm[F], erv[F];
    ref_affine(x->data, R, F, mean, var, gm->data, bt->data, eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    for (int j = 0; j < F; j++) {
        erm[j] = (float)(mom * (double)rm0[j] + (1.0 - mom) * mean[j]);
        erv[j] = (float)(mom * (double)rv0[j] + (1.0 - mom) * var[j]);
    }
    nb_assert_near(rm->data, erm, F, 1e-6, 1e-5);
    nb_assert_near(rv->data, erv, F, 1e-6, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
}

Test(norm, batchnorm_running_stats_after_several_steps_use_the_batch_variance) {
    enum { B = 5, F = 3, STEPS = 4 };
    const float mom = 0.99f, eps = 1e-3f;
    nb_tensor *rm = filled("rm", F, 0.0f), *rv = filled("rv", F, 1.0f);
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, F});
    nb_node *y = nb_batchnorm(g, in, NULL, NULL, rm, rv, mom, eps);
    t_ok(g);
    double erm[F] = {0, 0, 0}, erv[F] = {1, 1, 1};
    float data[B * F];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B * F; i++) data[i] = (float)(s + 1) * sinf(0.7f * (float)i + (float)s) + (float)s;
        nb_feed(g, in, data, B);
        nb_forward(g, NB_TRAINING);
        t_ok(g);
        double mean[F], var[F];
        ref_stats(data, B, F, mean, var);
        for (int j = 0; j < F; j++) {
            erm[j] = mom * erm[j] + (1.0 - mom) * mean[j];
            erv[j] = mom * erv[j] + (1.0 - mom) * var[j];
        }
    }
    float fm[F], fv[F];
    for (int j = 0; j < F; j++) fm[j] = (float)erm[j], fv[j] = (float)erv[j];
    nb_assert_near(rm->data, fm, F, 1e-5, 1e-4);
    nb_assert_near(rv->data, fv, F, 1e-5, 1e-4);
    /* inference leaves them alone */
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    nb_assert_near(rm->data, fm, F, 1e-5, 1e-4);
    nb_assert_near(rv->data, fv, F, 1e-5, 1e-4);
    (void)y;
    nb_graph_free(g);
    nb_tensor_free(rm), nb_tensor_free(rv);
}

Test(norm, batchnorm_inference_forward_uses_running_stats) {
    enum { R = 4, F = 3 };
    const float eps = 1e-2f;
    nb_tensor *x = t_tensor("x", 3, (int[]){2, 2, F}, -2, 2, 11);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 12);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 13);
    nb_tensor *rm = t_tensor("rm", 1, (int[]){F}, -0.5f, 0.5f, 14);
    nb_tensor *rv = t_tensor("rv", 1, (int[]){F}, 0.5f, 2.0f, 15);
    float rm0[F], rv0[F];
    memcpy(rm0, rm->data, sizeof rm0);
    memcpy(rv0, rv->data, sizeof rv0);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_batchnorm(g, nb_constant(g, x), nb_param(g, gm), nb_param(g, bt), rm, rv, 0.99f, eps);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    double mean[F], var[F];
    for (int j = 0; j < F; j++) mean[j] = rm0[j], var[j] = rv0[j];
    float ref[R * F];
    ref_affine(x->data, R, F, mean, var, gm->data, bt->data, eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    nb_assert_near(rm->data, rm0, F, 0, 0);
    nb_assert_near(rv->data, rv0, F, 0, 0);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
}

/* Gradients in training: x, gamma and beta all trainable, rank 3 x. */
Test(norm, batchnorm_training_gradients_match_finite_differences) {
    nb_tensor *x = t_tensor("x", 3, (int[]){3, 2, 4}, -2, 2, 21);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){4}, 0.5f, 1.5f, 22);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){4}, -1, 1, 23);
    nb_tensor *rm = filled("rm", 4, 0.0f), *rv = filled("rv", 4, 1.0f), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_batchnorm(g, nb_param(g, x), nb_param(g, gm), nb_param(g, bt), rm, rv, 0.99f, 1e-3f);
    nb_node *loss = t_weighted_sum(g, y, &w, 24);
    t_ok(g);
    /* tolerance 1e-2: float32 forwards, step 5e-3 */
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
    nb_tensor_free(w);
}

/* Backward after an inference forward: the statistics are constants, so
 * dx = w·gamma/sqrt(rv+eps), dgamma = sum(w·xhat), dbeta = sum(w). */
Test(norm, batchnorm_inference_backward_is_the_affine_map) {
    enum { R = 5, F = 3 };
    const float eps = 1e-3f;
    nb_tensor *x = t_tensor("x", 2, (int[]){R, F}, -2, 2, 31);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 32);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 33);
    nb_tensor *rm = t_tensor("rm", 1, (int[]){F}, -0.5f, 0.5f, 34);
    nb_tensor *rv = t_tensor("rv", 1, (int[]){F}, 0.5f, 2.0f, 35), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_batchnorm(g, nb_param(g, x), nb_param(g, gm), nb_param(g, bt), rm, rv, 0.9f, eps);
    nb_node *loss = t_weighted_sum(g, y, &w, 36);
    nb_forward(g, NB_INFERENCE);
    nb_backward(g, loss);
    t_ok(g);
    float edx[R * F], edg[F], edb[F];
    for (int j = 0; j < F; j++) {
        double is = 1.0 / sqrt((double)rv->data[j] + eps), sg = 0, sb = 0;
        for (int r = 0; r < R; r++) {
            int i = r * F + j;
            edx[i] = (float)(w->data[i] * gm->data[j] * is);
            sg += w->data[i] * (x->data[i] - rm->data[j]) * is;
            sb += w->data[i];
        }
        edg[j] = (float)sg, edb[j] = (float)sb;
    }
    nb_assert_near(x->grad, edx, R * F, 1e-5, 1e-4);
    nb_assert_near(gm->grad, edg, F, 1e-5, 1e-4);
    nb_assert_near(bt->grad, edb, F, 1e-5, 1e-4);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
    nb_tensor_free(w);
}

static void batchnorm_optional(bool with_gamma, bool with_beta) {
    enum { R = 6, F = 3 };
    const float eps = 1e-3f;
    nb_tensor *x = t_tensor("x", 2, (int[]){R, F}, -2, 2, 41);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 42);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 43);
    nb_tensor *rm = filled("rm", F, 0.0f), *rv = filled("rv", F, 1.0f), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_batchnorm(g, nb_param(g, x), with_gamma ? nb_param(g, gm) : NULL,
                              with_beta ? nb_param(g, bt) : NULL, rm, rv, 0.99f, eps);
    nb_node *loss = t_weighted_sum(g, y, &w, 44);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    double mean[F], var[F];
    ref_stats(x->data, R, F, mean, var);
    float ref[R * F];
    ref_affine(x->data, R, F, mean, var, with_gamma ? gm->data : NULL, with_beta ? bt->data : NULL,
               eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
    nb_tensor_free(w);
}

Test(norm, batchnorm_without_gamma_and_beta) { batchnorm_optional(false, false); }
Test(norm, batchnorm_with_gamma_only) { batchnorm_optional(true, false); }
Test(norm, batchnorm_with_beta_only) { batchnorm_optional(false, true); }

/* Builds a batchnorm on x [8,4] with the given pieces and expects an error
 * naming batchnorm and containing `needle`. */
static void batchnorm_rejects(int x_rank, int gamma_len, int beta_len, int rm_len, int rv_len,
                              bool rm_null, float momentum, float eps, const char *needle) {
    nb_tensor *gm = filled("gamma", gamma_len, 1.0f), *bt = filled("beta", beta_len, 0.0f);
    nb_tensor *rm = filled("rm", rm_len, 0.0f), *rv = filled("rv", rv_len, 1.0f);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", x_rank, (int[]){8, 4});
    nb_node *y = nb_batchnorm(g, x, nb_param(g, gm), nb_param(g, bt), rm_null ? NULL : rm, rv,
                              momentum, eps);
    cr_assert_null(y);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    const char *msg = nb_graph_error(g);
    cr_assert(strstr(msg, "batchnorm"), "message without the op name: %s", msg);
    cr_assert(strstr(msg, needle), "message without '%s': %s", needle, msg);
    /* the graph stays in error and later calls do nothing */
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    nb_graph_free(g);
    nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
}

Test(norm, batchnorm_rejects_running_mean_of_wrong_size) {
    batchnorm_rejects(2, 4, 4, 3, 4, false, 0.99f, 1e-3f, "running_mean has shape [3], expected [4]");
}
Test(norm, batchnorm_rejects_running_var_of_wrong_size) {
    batchnorm_rejects(2, 4, 4, 4, 5, false, 0.99f, 1e-3f, "running_var has shape [5], expected [4]");
}
Test(norm, batchnorm_rejects_null_running_mean) {
    batchnorm_rejects(2, 4, 4, 4, 4, true, 0.99f, 1e-3f, "running_mean is NULL");
}
Test(norm, batchnorm_rejects_gamma_of_wrong_shape) {
    batchnorm_rejects(2, 3, 4, 4, 4, false, 0.99f, 1e-3f, "gamma has shape [3], expected [4]");
}
Test(norm, batchnorm_rejects_beta_of_wrong_shape) {
    batchnorm_rejects(2, 4, 6, 4, 4, false, 0.99f, 1e-3f, "beta has shape [6]");
}
Test(norm, batchnorm_rejects_eps_not_positive) {
    batchnorm_rejects(2, 4, 4, 4, 4, false, 0.99f, 0.0f, "eps");
    batchnorm_rejects(2, 4, 4, 4, 4, false, 0.99f, -1e-3f, "eps");
    batchnorm_rejects(2, 4, 4, 4, 4, false, 0.99f, NAN, "eps");
    batchnorm_rejects(2, 4, 4, 4, 4, false, 0.99f, INFINITY, "eps");
}
Test(norm, batchnorm_rejects_momentum_outside_0_1) {
    batchnorm_rejects(2, 4, 4, 4, 4, false, -0.1f, 1e-3f, "momentum");
    batchnorm_rejects(2, 4, 4, 4, 4, false, 1.5f, 1e-3f, "momentum");
    batchnorm_rejects(2, 4, 4, 4, 4, false, NAN, 1e-3f, "momentum");
}
Test(norm, batchnorm_rejects_rank_1_x) {
    batchnorm_rejects(1, 4, 4, 4, 4, false, 0.99f, 1e-3f, "x has shape [8], needs rank >= 2");
}

Test(norm, batchnorm_accepts_momentum_0_and_1) {
    nb_tensor *rm = filled("rm", 2, 0.5f), *rv = filled("rv", 2, 2.0f);
    float x[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 9};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){4, 2});
    nb_batchnorm(g, in, NULL, NULL, rm, rv, 1.0f, 1e-3f);
    nb_feed(g, in, x, 4);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    cr_assert_float_eq(rm->data[0], 0.5f, 0);
    cr_assert_float_eq(rv->data[1], 2.0f, 0);
    nb_graph_free(g);
    g = nb_graph_new();
    in = nb_input(g, "x", 2, (int[]){4, 2});
    nb_batchnorm(g, in, NULL, NULL, rm, rv, 0.0f, 1e-3f);
    nb_feed(g, in, x, 4);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    /* feature 1: 2,4,6,9, mean 5.25, (biased) variance 26.75/4 */
    cr_assert_float_eq(rm->data[0], 4.0f, 1e-6);
    cr_assert_float_eq(rm->data[1], 5.25f, 1e-6);
    cr_assert_float_eq(rv->data[1], 26.75f / 4.0f, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(rm), nb_tensor_free(rv);
}

/* Built for 8 rows, fed 5: the statistics are those of the 5 rows, in the
 * forward pass, the running statistics and the gradients. */
Test(norm, batchnorm_batch_change_uses_the_fed_rows) {
    enum { B = 8, R = 5, F = 3 };
    const float mom = 0.9f, eps = 1e-3f;
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 51);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 52);
    nb_tensor *rm = filled("rm", F, 0.0f), *rv = filled("rv", F, 1.0f);
    float x[B * F];
    for (int i = 0; i < B * F; i++) x[i] = (float)((i * 37) % 11) / 3.0f - 1.5f;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, F});
    nb_node *y = nb_batchnorm(g, in, nb_param(g, gm), nb_param(g, bt), rm, rv, mom, eps);
    nb_node *loss = nb_sum(g, nb_mul(g, y, y));
    nb_feed(g, in, x, B);
    nb_forward(g, NB_INFERENCE); /* plan at 8 rows */
    nb_feed(g, in, x, R);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 2 && s.dim[0] == R && s.dim[1] == F);
    double mean[F], var[F];
    ref_stats(x, R, F, mean, var);
    float ref[R * F], erm[F], erv[F], edg[F], edb[F];
    ref_affine(x, R, F, mean, var, gm->data, bt->data, eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    for (int j = 0; j < F; j++) {
        erm[j] = (float)((1.0 - mom) * mean[j]);
        erv[j] = (float)(mom + (1.0 - mom) * var[j]);
        double sg = 0, sb = 0;
        for (int r = 0; r < R; r++) {
            double xhat = (x[r * F + j] - mean[j]) / sqrt(var[j] + eps);
            double yv = gm->data[j] * xhat + bt->data[j];
            sg += 2 * yv * xhat, sb += 2 * yv;
        }
        edg[j] = (float)sg, edb[j] = (float)sb;
    }
    nb_assert_near(rm->data, erm, F, 1e-6, 1e-5);
    nb_assert_near(rv->data, erv, F, 1e-6, 1e-5);
    nb_assert_near(gm->grad, edg, F, 1e-4, 1e-4);
    nb_assert_near(bt->grad, edb, F, 1e-4, 1e-4);
    nb_graph_free(g);
    nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
}

/* ---- layernorm ---- */

Test(norm, layernorm_forward_matches_reference) {
    enum { R = 6, F = 5 };
    const float eps = 1e-3f;
    nb_tensor *x = t_tensor("x", 3, (int[]){2, 3, F}, -3, 2, 61);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 62);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 63);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_layernorm(g, nb_constant(g, x), nb_param(g, gm), nb_param(g, bt), eps);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    cr_assert_str_eq(nb_node_op(y), "layernorm");
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 3 && s.dim[0] == 2 && s.dim[1] == 3 && s.dim[2] == F);
    float ref[R * F];
    ref_layernorm(x->data, R, F, gm->data, bt->data, eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    /* training and inference are the same map */
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt);
}

Test(norm, layernorm_large_mean_rows_stay_accurate) {
    enum { R = 2, F = 4 };
    float x[R * F] = {1000.0f, 1001.0f, 1002.0f, 1003.0f, -5e3f, -5e3f + 0.5f, -5e3f + 1.0f, -5e3f + 2.0f};
    nb_tensor *xt = t_tensor_of("x", 2, (int[]){R, F}, x);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_layernorm(g, nb_constant(g, xt), NULL, NULL, 1e-3f);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    float ref[R * F];
    ref_layernorm(x, R, F, NULL, NULL, 1e-3, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-4, 1e-4);
    nb_graph_free(g);
    nb_tensor_free(xt);
}

static void layernorm_grads(bool with_gamma, bool with_beta) {
    enum { R = 4, F = 5 };
    const float eps = 1e-3f;
    nb_tensor *x = t_tensor("x", 2, (int[]){R, F}, -2, 2, 71);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 72);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 73), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_layernorm(g, nb_param(g, x), with_gamma ? nb_param(g, gm) : NULL,
                              with_beta ? nb_param(g, bt) : NULL, eps);
    nb_node *loss = t_weighted_sum(g, y, &w, 74);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    float ref[R * F];
    ref_layernorm(x->data, R, F, with_gamma ? gm->data : NULL, with_beta ? bt->data : NULL, eps, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    /* tolerance 1e-2: float32 forwards, step 5e-3 */
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(w);
}

Test(norm, layernorm_gradients_match_finite_differences) { layernorm_grads(true, true); }
Test(norm, layernorm_without_gamma_and_beta) { layernorm_grads(false, false); }
Test(norm, layernorm_with_gamma_only) { layernorm_grads(true, false); }
Test(norm, layernorm_with_beta_only) { layernorm_grads(false, true); }

static void layernorm_rejects(int gamma_len, int beta_len, float eps, const char *needle) {
    nb_tensor *gm = filled("gamma", gamma_len, 1.0f), *bt = filled("beta", beta_len, 0.0f);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 4});
    nb_node *y = nb_layernorm(g, x, nb_param(g, gm), nb_param(g, bt), eps);
    cr_assert_null(y);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    const char *msg = nb_graph_error(g);
    cr_assert(strstr(msg, "layernorm"), "message without the op name: %s", msg);
    cr_assert(strstr(msg, needle), "message without '%s': %s", needle, msg);
    nb_graph_free(g);
    nb_tensor_free(gm), nb_tensor_free(bt);
}

Test(norm, layernorm_rejects_gamma_of_wrong_shape) {
    layernorm_rejects(5, 4, 1e-3f, "gamma has shape [5], expected [4] (the last dim of x [8,4])");
}
Test(norm, layernorm_rejects_beta_of_wrong_shape) { layernorm_rejects(4, 2, 1e-3f, "beta has shape [2]"); }
Test(norm, layernorm_rejects_eps_not_positive) {
    layernorm_rejects(4, 4, 0.0f, "eps");
    layernorm_rejects(4, 4, -1.0f, "eps");
    layernorm_rejects(4, 4, NAN, "eps");
}
Test(norm, layernorm_rejects_null_x) {
    nb_graph *g = nb_graph_new();
    cr_assert_null(nb_layernorm(g, NULL, NULL, NULL, 1e-3f));
    cr_assert(strstr(nb_graph_error(g), "layernorm"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(norm, layernorm_batch_change_uses_the_fed_rows) {
    enum { B = 8, R = 5, F = 4 };
    const float eps = 1e-3f;
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 81);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 82);
    float x[B * F];
    for (int i = 0; i < B * F; i++) x[i] = (float)((i * 29) % 13) / 4.0f - 1.0f;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, F});
    nb_node *y = nb_layernorm(g, in, nb_param(g, gm), nb_param(g, bt), eps);
    nb_node *loss = nb_sum(g, nb_mul(g, y, y));
    nb_feed(g, in, x, B);
    nb_forward(g, NB_TRAINING);
    nb_feed(g, in, x, R);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    float ref[B * F], edg[F], edb[F];
    ref_layernorm(x, R, F, gm->data, bt->data, eps, ref);
    cr_assert_eq(nb_node_size(y), (size_t)(R * F));
    nb_assert_near(nb_node_value(y), ref, (size_t)(R * F), 1e-5, 1e-5);
    ref_layernorm(x, R, F, NULL, NULL, eps, ref); /* xhat */
    for (int j = 0; j < F; j++) {
        double sg = 0, sb = 0;
        for (int r = 0; r < R; r++) {
            double xhat = ref[r * F + j], yv = gm->data[j] * xhat + bt->data[j];
            sg += 2 * yv * xhat, sb += 2 * yv;
        }
        edg[j] = (float)sg, edb[j] = (float)sb;
    }
    nb_assert_near(gm->grad, edg, F, 1e-4, 1e-4);
    nb_assert_near(bt->grad, edb, F, 1e-4, 1e-4);
    nb_graph_free(g);
    nb_tensor_free(gm), nb_tensor_free(bt);
}

/* ---- threads: big enough to go parallel, F spanning several blocks ---- */

typedef struct run_out {
    float *y, *dx, *dg, *db, *rm, *rv;
} run_out;

static run_out run_big(bool batchnorm, int threads) {
    enum { R = 600, F = 130 };
    int prev = nb_get_num_threads();
    nb_set_num_threads(threads);
    nb_tensor *x = t_tensor("x", 2, (int[]){R, F}, -2, 3, 91);
    nb_tensor *gm = t_tensor("gamma", 1, (int[]){F}, 0.5f, 1.5f, 92);
    nb_tensor *bt = t_tensor("beta", 1, (int[]){F}, -1, 1, 93);
    nb_tensor *rm = filled("rm", F, 0.0f), *rv = filled("rv", F, 1.0f), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = batchnorm ? nb_batchnorm(g, nb_param(g, x), nb_param(g, gm), nb_param(g, bt), rm, rv, 0.9f, 1e-3f)
                           : nb_layernorm(g, nb_param(g, x), nb_param(g, gm), nb_param(g, bt), 1e-3f);
    nb_node *loss = t_weighted_sum(g, y, &w, 94);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    run_out o;
    size_t n = (size_t)R * F;
    o.y = malloc(n * sizeof(float)), o.dx = malloc(n * sizeof(float));
    o.dg = malloc(F * sizeof(float)), o.db = malloc(F * sizeof(float));
    o.rm = malloc(F * sizeof(float)), o.rv = malloc(F * sizeof(float));
    memcpy(o.y, nb_node_value(y), n * sizeof(float));
    memcpy(o.dx, x->grad, n * sizeof(float));
    memcpy(o.dg, gm->grad, F * sizeof(float));
    memcpy(o.db, bt->grad, F * sizeof(float));
    memcpy(o.rm, rm->data, F * sizeof(float));
    memcpy(o.rv, rv->data, F * sizeof(float));
    if (batchnorm) { /* against the reference too, at this size */
        double mean[F], var[F];
        ref_stats(x->data, R, F, mean, var);
        float *ref = malloc(n * sizeof(float));
        ref_affine(x->data, R, F, mean, var, gm->data, bt->data, 1e-3, ref);
        nb_assert_near(o.y, ref, n, 1e-5, 1e-4);
        free(ref);
    }
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(gm), nb_tensor_free(bt), nb_tensor_free(rm), nb_tensor_free(rv);
    nb_tensor_free(w);
    nb_set_num_threads(prev);
    return o;
}

static void free_out(run_out o) {
    free(o.y), free(o.dx), free(o.dg), free(o.db), free(o.rm), free(o.rv);
}

static void same_for_any_thread_count(bool batchnorm) {
    enum { R = 600, F = 130 };
    run_out a = run_big(batchnorm, 1), b = run_big(batchnorm, 4);
    size_t n = (size_t)R * F;
    cr_assert(memcmp(a.y, b.y, n * sizeof(float)) == 0, "values differ across thread counts");
    cr_assert(memcmp(a.dx, b.dx, n * sizeof(float)) == 0, "dx differs across thread counts");
    cr_assert(memcmp(a.dg, b.dg, F * sizeof(float)) == 0, "dgamma differs across thread counts");
    cr_assert(memcmp(a.db, b.db, F * sizeof(float)) == 0, "dbeta differs across thread counts");
    cr_assert(memcmp(a.rm, b.rm, F * sizeof(float)) == 0, "running mean differs");
    cr_assert(memcmp(a.rv, b.rv, F * sizeof(float)) == 0, "running var differs");
    free_out(a), free_out(b);
}

Test(norm, batchnorm_same_bits_for_any_thread_count) { same_for_any_thread_count(true); }
Test(norm, layernorm_same_bits_for_any_thread_count) { same_for_any_thread_count(false); }
