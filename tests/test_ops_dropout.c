/* tests/test_ops_dropout.c — dropout and alpha dropout. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "helpers.h"
#include "nabla/testing.h"

typedef nb_node *(*dropout_fn)(nb_graph *, nb_node *, float);

/* Keras's AlphaDropout constants, computed here in double from SELU's. */
static const double SELU_ALPHA = 1.6732632423543772848170429916717;
static const double SELU_SCALE = 1.0507009873554804934193349852946;

static void keras_affine(double rate, double *alpha_p, double *a, double *b) {
    *alpha_p = -SELU_ALPHA * SELU_SCALE;
    *a = pow((1.0 - rate) * (1.0 + rate * *alpha_p * *alpha_p), -0.5);
    *b = -*a * *alpha_p * rate;
}

/* n floats uniform in [lo, hi), from a fixed stream. */
static float *uniform_data(size_t n, float lo, float hi, uint64_t seed) {
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    nb_rng r;
    nb_rng_seed(&r, seed, 3);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * nb_rng_uniform(&r);
    return x;
}

/* A graph x:[rows,cols] input -> op(x, rate), seeded; *y is the op node. */
static nb_graph *op_graph(dropout_fn op, int rows, int cols, float rate, uint64_t seed,
                          nb_node **x, nb_node **y) {
    nb_graph *g = nb_graph_new();
    cr_assert(g);
    nb_graph_set_seed(g, seed);
    *x = nb_input(g, "x", 2, (int[]){rows, cols});
    *y = op(g, *x, rate);
    t_ok(g);
    return g;
}

/* Runs op once in `mode` on data and returns a copy of the output. */
static float *run_once(dropout_fn op, const float *data, int rows, int cols, float rate,
                       uint64_t seed, nb_mode mode) {
    nb_node *x, *y;
    nb_graph *g = op_graph(op, rows, cols, rate, seed, &x, &y);
    nb_feed(g, x, data, rows);
    nb_forward(g, mode);
    t_ok(g);
    size_t n = (size_t)rows * cols;
    float *out = malloc(n * sizeof *out);
    cr_assert(out);
    memcpy(out, nb_node_value(y), n * sizeof *out);
    nb_graph_free(g);
    return out;
}

static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

/* ---- inference and rate 0 ---- */

static void check_identity(dropout_fn op, nb_mode mode, float rate) {
    enum { R = 6, C = 7 };
    float *data = uniform_data(R * C, -2.0f, 2.0f, 11);
    nb_tensor *p = t_tensor_of("x", 2, (int[]){R, C}, data);
    nb_graph *g = nb_graph_new();
    nb_graph_set_seed(g, 5);
    nb_node *y = op(g, nb_param(g, p), rate);
    nb_tensor *w;
    nb_node *loss = t_weighted_sum(g, y, &w, 9);
    t_ok(g);
    for (int step = 0; step < 3; step++) {
        nb_forward(g, mode);
        nb_backward(g, loss);
        t_ok(g);
        cr_assert(memcmp(nb_node_value(y), data, sizeof(float) * R * C) == 0,
                  "%s at rate %g in mode %d is not the identity", nb_node_op(y), (double)rate, mode);
        /* the gradient passes through unchanged */
        cr_assert(memcmp(p->grad, w->data, sizeof(float) * R * C) == 0);
    }
    nb_graph_free(g);
    nb_tensor_free(p);
    nb_tensor_free(w);
    free(data);
}

Test(dropout, inference_is_identity_with_gradient_passed_through) {
    check_identity(nb_dropout, NB_INFERENCE, 0.5f);
    check_identity(nb_alpha_dropout, NB_INFERENCE, 0.5f);
}

Test(dropout, rate_zero_is_identity_in_training) {
    check_identity(nb_dropout, NB_TRAINING, 0.0f);
    check_identity(nb_alpha_dropout, NB_TRAINING, 0.0f);
}

Test(dropout, op_names_and_shape) {
    nb_node *x, *y;
    nb_graph *g = op_graph(nb_dropout, 3, 5, 0.2f, 0, &x, &y);
    cr_assert_str_eq(nb_node_op(y), "dropout");
    nb_node *z = nb_alpha_dropout(g, y, 0.2f);
    t_ok(g);
    cr_assert_str_eq(nb_node_op(z), "alpha_dropout");
    nb_shape s = nb_node_shape(z);
    cr_assert(s.rank == 2 && s.dim[0] == 3 && s.dim[1] == 5);
    nb_graph_free(g);
}

/* ---- training ---- */

static void check_drop_fraction(float rate) {
    enum { R = 1000, C = 100 }; /* 100k elements: the fraction's sd is < 0.0016 */
    const size_t n = (size_t)R * C;
    float *data = uniform_data(n, 0.5f, 1.5f, 21); /* nonzero: zero means dropped */
    float *y = run_once(nb_dropout, data, R, C, rate, 1234, NB_TRAINING);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] == 0.0f) {
            dropped++;
            continue;
        }
        /* TensorFlow's inverted dropout: x times the float 1/(1-rate) */
        float expect = data[i] * (float)(1.0 / (1.0 - (double)rate));
        cr_assert(y[i] == expect, "rate %g: survivor %zu is %.9g, expected x·(1/(1-rate)) = %.9g",
                  (double)rate, i, (double)y[i], (double)expect);
    }
    double frac = (double)dropped / (double)n;
    cr_assert(fabs(frac - rate) < 0.01, "rate %g: dropped fraction %g", (double)rate, frac);
    free(y);
    free(data);
}

Test(dropout, training_drops_about_rate_and_scales_survivors) {
    check_drop_fraction(0.3f);
    check_drop_fraction(0.5f);
    check_drop_fraction(0.75f);
    check_drop_fraction(0.05f);
}

/* Element i's 16 random bits, as documented in ops/dropout.c: half i % 2 of
 * word (i / 2) % 4 of Philox block i / 8 of y's stream, as u = h·2^-16. */
static double unit16(nb_graph *g, nb_node *y, size_t i) {
    uint32_t r[4];
    nb__random4(g, y, i / 8, r);
    return (double)((r[(i / 2) % 4] >> (16 * (i % 2))) & 0xffffu) / 65536.0;
}

/* The mask follows the documented stream: element i keeps when its 16 bits,
 * as a unit number, are >= rate. */
Test(dropout, mask_is_drawn_from_the_node_stream) {
    enum { R = 5, C = 7 }; /* 35 elements: a partial last block */
    const float rate = 0.4f;
    float *data = uniform_data(R * C, 0.5f, 1.5f, 4);
    nb_node *x, *y;
    nb_graph *g = op_graph(nb_dropout, R, C, rate, 99, &x, &y);
    nb_feed(g, x, data, R);
    cr_assert(nb__forward_at(g, NB_TRAINING, 7) == NB_OK);
    const float *v = nb_node_value(y);
    for (int i = 0; i < R * C; i++) {
        bool kept = unit16(g, y, (size_t)i) >= rate;
        cr_assert(kept == (v[i] != 0.0f), "element %d: kept %d, output %g", i, kept, (double)v[i]);
    }
    nb_graph_free(g);
    free(data);
}

Test(dropout, same_seed_gives_identical_output_across_graphs) {
    enum { R = 64, C = 33 };
    float *data = uniform_data(R * C, -1.0f, 1.0f, 8);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        float *a = run_once(ops[k], data, R, C, 0.3f, 77, NB_TRAINING);
        float *b = run_once(ops[k], data, R, C, 0.3f, 77, NB_TRAINING);
        cr_assert(memcmp(a, b, sizeof(float) * R * C) == 0, "op %d differs between graphs", k);
        free(a);
        free(b);
    }
    free(data);
}

Test(dropout, different_seed_gives_different_mask) {
    enum { R = 64, C = 33 };
    float *data = uniform_data(R * C, 0.5f, 1.5f, 8);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        float *a = run_once(ops[k], data, R, C, 0.3f, 77, NB_TRAINING);
        float *b = run_once(ops[k], data, R, C, 0.3f, 78, NB_TRAINING);
        size_t d = count_diff(a, b, R * C);
        /* two independent masks disagree on 2·0.3·0.7 = 42% of elements */
        cr_assert(d > R * C / 4, "op %d: seeds 77 and 78 differ in only %zu elements", k, d);
        free(a);
        free(b);
    }
    free(data);
}

Test(dropout, successive_steps_give_different_masks) {
    enum { R = 64, C = 33 };
    const size_t n = (size_t)R * C;
    float *data = uniform_data(n, 0.5f, 1.5f, 8);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        nb_node *x, *y;
        nb_graph *g = op_graph(ops[k], R, C, 0.3f, 5, &x, &y);
        nb_feed(g, x, data, R);
        nb_forward(g, NB_TRAINING);
        float *first = malloc(n * sizeof *first);
        memcpy(first, nb_node_value(y), n * sizeof *first);
        nb_forward(g, NB_TRAINING);
        t_ok(g);
        size_t d = count_diff(first, nb_node_value(y), n);
        cr_assert(d > n / 4, "op %d: steps 0 and 1 differ in only %zu elements", k, d);
        /* rewinding the seed replays step 0 */
        nb_graph_set_seed(g, 5);
        nb_forward(g, NB_TRAINING);
        cr_assert(memcmp(first, nb_node_value(y), n * sizeof *first) == 0);
        free(first);
        nb_graph_free(g);
    }
    free(data);
}

/* Two nodes of one graph draw different masks. */
Test(dropout, two_nodes_draw_different_masks) {
    enum { R = 64, C = 33 };
    const size_t n = (size_t)R * C;
    float *data = uniform_data(n, 0.5f, 1.5f, 8);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){R, C});
    nb_node *y1 = nb_dropout(g, x, 0.5f), *y2 = nb_dropout(g, x, 0.5f);
    nb_feed(g, x, data, R);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    size_t d = count_diff(nb_node_value(y1), nb_node_value(y2), n);
    cr_assert(d > n / 4, "two dropout nodes differ in only %zu elements", d);
    nb_graph_free(g);
    free(data);
}

Test(dropout, output_does_not_depend_on_thread_count) {
    enum { R = 1001, C = 67 }; /* 67067 elements > NB_PAR_MIN, not a multiple of 4 */
    const size_t n = (size_t)R * C;
    cr_assert(n > NB_PAR_MIN);
    float *data = uniform_data(n, -2.0f, 2.0f, 31);
    int saved = nb_get_num_threads();
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        float *out[2], *grad[2];
        for (int t = 0; t < 2; t++) {
            nb_set_num_threads(t + 1);
            nb_tensor *p = t_tensor_of("x", 2, (int[]){R, C}, data);
            nb_graph *g = nb_graph_new();
            nb_graph_set_seed(g, 2024);
            nb_node *y = ops[k](g, nb_param(g, p), 0.35f);
            nb_tensor *w;
            nb_node *loss = t_weighted_sum(g, y, &w, 13);
            nb_forward(g, NB_TRAINING);
            nb_backward(g, loss);
            t_ok(g);
            out[t] = malloc(n * sizeof(float));
            grad[t] = malloc(n * sizeof(float));
            memcpy(out[t], nb_node_value(y), n * sizeof(float));
            memcpy(grad[t], p->grad, n * sizeof(float));
            nb_graph_free(g);
            nb_tensor_free(p);
            nb_tensor_free(w);
        }
        cr_assert(memcmp(out[0], out[1], n * sizeof(float)) == 0,
                  "op %d: output differs between 1 and 2 threads", k);
        cr_assert(memcmp(grad[0], grad[1], n * sizeof(float)) == 0,
                  "op %d: gradient differs between 1 and 2 threads", k);
        for (int t = 0; t < 2; t++) free(out[t]), free(grad[t]);
    }
    nb_set_num_threads(saved);
    free(data);
}

/* ---- MC dropout ---- */

Test(dropout, stochastic_node_is_random_in_inference) {
    enum { R = 50, C = 40 };
    const size_t n = (size_t)R * C;
    float *data = uniform_data(n, 0.5f, 1.5f, 6);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        nb_node *x, *y;
        nb_graph *g = op_graph(ops[k], R, C, 0.5f, 3, &x, &y);
        cr_assert(nb_node_set_stochastic(y, true) == NB_OK);
        nb_feed(g, x, data, R);
        nb_forward(g, NB_INFERENCE);
        t_ok(g);
        float *first = malloc(n * sizeof *first);
        memcpy(first, nb_node_value(y), n * sizeof *first);
        size_t changed = count_diff(first, data, n);
        cr_assert(changed > n / 3, "op %d: MC dropout changed only %zu of %zu", k, changed, n);
        nb_forward(g, NB_INFERENCE);
        size_t d = count_diff(first, nb_node_value(y), n);
        cr_assert(d > n / 4, "op %d: two MC samples differ in only %zu elements", k, d);
        /* and back to the identity */
        cr_assert(nb_node_set_stochastic(y, false) == NB_OK);
        nb_forward(g, NB_INFERENCE);
        t_ok(g);
        cr_assert(memcmp(nb_node_value(y), data, n * sizeof(float)) == 0);
        free(first);
        nb_graph_free(g);
    }
    free(data);
}

Test(dropout, set_stochastic_on_non_random_node_fails) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){2, 3});
    nb_node *s = nb_scale(g, x, 2.0f);
    t_ok(g);
    cr_assert(nb_node_set_stochastic(s, true) == NB_ERROR);
    cr_assert(nb_graph_status(g) == NB_ERROR);
    cr_assert(strstr(nb_graph_error(g), "set_stochastic"), "message: %s", nb_graph_error(g));
    cr_assert(strstr(nb_graph_error(g), "scale"), "message: %s", nb_graph_error(g));
    nb_graph_free(g);
}

/* ---- alpha dropout ---- */

Test(dropout, alpha_dropout_forward_matches_keras_formula) {
    enum { R = 40, C = 25 };
    const size_t n = (size_t)R * C;
    const float rate = 0.2f;
    float *data = uniform_data(n, -3.0f, 3.0f, 17);
    double alpha_p, a, b;
    keras_affine(rate, &alpha_p, &a, &b);
    nb_node *x, *y;
    nb_graph *g = op_graph(nb_alpha_dropout, R, C, rate, 41, &x, &y);
    nb_feed(g, x, data, R);
    cr_assert(nb__forward_at(g, NB_TRAINING, 3) == NB_OK);
    const float *v = nb_node_value(y);
    float *expect = malloc(n * sizeof *expect);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        double kept = unit16(g, y, i) >= rate ? 1.0 : 0.0;
        dropped += kept == 0.0;
        expect[i] = (float)(a * ((double)data[i] * kept + alpha_p * (1.0 - kept)) + b);
    }
    nb_assert_near(v, expect, n, 1e-6, 1e-6);
    cr_assert(dropped > n / 10 && dropped < n * 3 / 10, "dropped %zu of %zu", dropped, n);
    free(expect);
    nb_graph_free(g);
    free(data);
}

Test(dropout, alpha_dropout_keeps_mean_and_variance_of_standard_normal) {
    enum { R = 2000, C = 100 }; /* 200k elements */
    const size_t n = (size_t)R * C;
    float *data = malloc(n * sizeof *data);
    nb_rng r;
    nb_rng_seed(&r, 123, 0);
    for (size_t i = 0; i < n; i++) data[i] = nb_rng_normal(&r);
    const float rates[] = {0.1f, 0.3f, 0.5f};
    for (int k = 0; k < 3; k++) {
        float *y = run_once(nb_alpha_dropout, data, R, C, rates[k], 9, NB_TRAINING);
        double sum = 0.0, sq = 0.0, sum_x = 0.0, sq_x = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum += y[i], sq += (double)y[i] * y[i];
            sum_x += data[i], sq_x += (double)data[i] * data[i];
        }
        double mean = sum / n, var = sq / n - mean * mean;
        double mean_x = sum_x / n, var_x = sq_x / n - mean_x * mean_x;
        /* sampling sd: mean ~0.0022, variance ~0.004 (more with drops) */
        cr_assert(fabs(mean) < 0.015, "rate %g: mean %g (input's %g)", (double)rates[k], mean, mean_x);
        cr_assert(fabs(var - 1.0) < 0.03, "rate %g: variance %g (input's %g)", (double)rates[k], var,
                  var_x);
        free(y);
    }
    free(data);
}

/* ---- gradients ---- */

static void check_gradient(dropout_fn op, float rate, double tol) {
    enum { R = 4, C = 6 };
    nb_tensor *p = t_tensor("x", 2, (int[]){R, C}, -2.0f, 2.0f, 51);
    nb_graph *g = nb_graph_new();
    nb_graph_set_seed(g, 8);
    nb_node *y = op(g, nb_param(g, p), rate);
    nb_tensor *w;
    nb_node *loss = t_weighted_sum(g, y, &w, 52);
    t_ok(g);
    /* Both ops are linear in x, so a large step is exact; the default one
     * (5e-3) would leave the float loss's rounding (~2e-7 at |loss| ~ 2)
     * at ~2e-5 absolute in the numeric gradient, above tol·floor. */
    nb_gradcheck_opts opts = {.step = 0.25};
    nb_gradcheck_result res;
    cr_assert(nb_gradcheck(g, loss, &opts, &res) == NB_OK, "gradcheck failed to run: %s", nb_graph_error(g));
    cr_assert(res.checked == R * C);
    cr_assert(res.max_rel_error <= tol, "gradcheck: relative error %.3g > %g at %s (analytic %.9g, numeric %.9g)",
              res.max_rel_error, tol, res.where, res.analytic, res.numeric);
    /* the check was not trivial: the mask had both kinds of element */
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    int zero = 0;
    for (int i = 0; i < R * C; i++) zero += p->grad[i] == 0.0f;
    cr_assert(zero > 0 && zero < R * C, "%d of %d gradients are zero", zero, R * C);
    nb_graph_free(g);
    nb_tensor_free(p);
    nb_tensor_free(w);
}

/* Both ops are linear in x, so only float rounding separates the gradients:
 * tolerance 1e-3 (with the step of check_gradient). */
Test(dropout, dropout_gradcheck_in_training) { check_gradient(nb_dropout, 0.5f, 1e-3); }
Test(dropout, alpha_dropout_gradcheck_in_training) { check_gradient(nb_alpha_dropout, 0.4f, 1e-3); }

/* The gradient, element by element: dy/(1-rate) or a·dy where kept, else 0. */
Test(dropout, backward_matches_reference) {
    enum { R = 8, C = 9 };
    const size_t n = (size_t)R * C;
    const float rate = 0.3f;
    double alpha_p, a, b;
    keras_affine(rate, &alpha_p, &a, &b);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        nb_tensor *p = t_tensor("x", 2, (int[]){R, C}, 0.5f, 1.5f, 61);
        nb_graph *g = nb_graph_new();
        nb_graph_set_seed(g, 12);
        nb_node *y = ops[k](g, nb_param(g, p), rate);
        nb_tensor *w;
        nb_node *loss = t_weighted_sum(g, y, &w, 62);
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
        t_ok(g);
        float expect[R * C];
        const float *v = nb_node_value(y);
        for (size_t i = 0; i < n; i++) {
            bool kept = k == 0 ? v[i] != 0.0f : fabs(v[i] - (a * alpha_p + b)) > 1e-4;
            double scale = k == 0 ? 1.0 / (1.0 - (double)rate) : a;
            expect[i] = kept ? (float)(scale * w->data[i]) : 0.0f;
        }
        nb_assert_near(p->grad, expect, n, 1e-6, 1e-6);
        nb_graph_free(g);
        nb_tensor_free(p);
        nb_tensor_free(w);
    }
}

/* ---- batch change ---- */

/* Masks are indexed by element, so batch 5 sees the first 5 rows of the
 * batch-8 mask at the same step. */
Test(dropout, smaller_batch_uses_first_rows_of_mask) {
    enum { R = 8, C = 10, B = 5 };
    float *data = uniform_data(R * C, 0.5f, 1.5f, 71);
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    for (int k = 0; k < 2; k++) {
        nb_node *x, *y;
        nb_graph *g = op_graph(ops[k], R, C, 0.4f, 19, &x, &y);
        nb_feed(g, x, data, R);
        nb_forward(g, NB_TRAINING);
        t_ok(g);
        float full[R * C];
        memcpy(full, nb_node_value(y), sizeof full);
        nb_graph_set_seed(g, 19);
        nb_feed(g, x, data, B);
        nb_forward(g, NB_TRAINING);
        t_ok(g);
        nb_shape s = nb_node_shape(y);
        cr_assert(s.rank == 2 && s.dim[0] == B && s.dim[1] == C);
        cr_assert(nb_node_size(y) == (size_t)B * C);
        cr_assert(memcmp(full, nb_node_value(y), sizeof(float) * B * C) == 0, "op %d", k);
        /* and back to the full batch */
        nb_graph_set_seed(g, 19);
        nb_feed(g, x, data, R);
        nb_forward(g, NB_TRAINING);
        t_ok(g);
        cr_assert(memcmp(full, nb_node_value(y), sizeof full) == 0, "op %d", k);
        nb_graph_free(g);
    }
    free(data);
}

/* ---- errors ---- */

static void check_bad_rate(dropout_fn op, const char *name, float rate, const char *msg) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 3});
    nb_node *y = op(g, x, rate);
    cr_assert_null(y);
    cr_assert(nb_graph_status(g) == NB_ERROR);
    const char *e = nb_graph_error(g);
    cr_assert(strstr(e, name) && strstr(e, "rate") && strstr(e, msg), "rate %g: message '%s'",
              (double)rate, e);
    /* later calls do nothing */
    cr_assert_null(op(g, x, 0.5f));
    cr_assert(nb_forward(g, NB_TRAINING) == NB_ERROR);
    nb_graph_free(g);
}

Test(dropout, bad_rates_are_errors) {
    check_bad_rate(nb_dropout, "dropout", 1.5f, "dropout: rate 1.5 outside [0,1)");
    check_bad_rate(nb_alpha_dropout, "alpha_dropout", 1.5f, "alpha_dropout: rate 1.5 outside [0,1)");
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    const char *names[] = {"dropout", "alpha_dropout"};
    const float bad[] = {1.0f, -0.1f, NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 2; k++)
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++)
            check_bad_rate(ops[k], names[k], bad[j], "outside [0,1)");
}

Test(dropout, null_input_is_an_error) {
    dropout_fn ops[] = {nb_dropout, nb_alpha_dropout};
    const char *names[] = {"dropout", "alpha_dropout"};
    for (int k = 0; k < 2; k++) {
        nb_graph *g = nb_graph_new();
        cr_assert_null(ops[k](g, NULL, 0.5f));
        cr_assert(nb_graph_status(g) == NB_ERROR);
        cr_assert(strstr(nb_graph_error(g), names[k]), "message: %s", nb_graph_error(g));
        nb_graph_free(g);
    }
    cr_assert_null(nb_dropout(NULL, NULL, 0.5f));
    cr_assert_null(nb_alpha_dropout(NULL, NULL, 0.5f));
}

Test(dropout, input_from_another_graph_is_an_error) {
    nb_graph *g1 = nb_graph_new(), *g2 = nb_graph_new();
    nb_node *x = nb_input(g1, "x", 2, (int[]){2, 2});
    cr_assert_null(nb_dropout(g2, x, 0.5f));
    cr_assert(strstr(nb_graph_error(g2), "dropout"), "message: %s", nb_graph_error(g2));
    nb_graph_free(g1);
    nb_graph_free(g2);
}
