/* tests/test_ops_activation.c — the elementwise activations of
 * ops/activation.c: forward values against references computed here in
 * double from the formulas, gradients against finite differences, argument
 * errors, batch changes, and rrelu's random slopes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* ---- references, in double, from the formulas ---- */

static const double selu_alpha = 1.6732632423543772848170429916717;
static const double selu_scale = 1.0507009873554804934193349852946;

static double ref_sigmoid(double x, double a) { (void)a; return 1.0 / (1.0 + exp(-x)); }
static double ref_tanh(double x, double a) { (void)a; return tanh(x); }
static double ref_relu(double x, double a) { (void)a; return x > 0 ? x : 0.0; }
static double ref_leaky(double x, double a) { return x > 0 ? x : a * x; }
static double ref_elu(double x, double a) { return x > 0 ? x : a * (exp(x) - 1.0); }
static double ref_selu(double x, double a) {
    (void)a;
    return selu_scale * (x > 0 ? x : selu_alpha * (exp(x) - 1.0));
}
static double ref_gelu(double x, double a) { (void)a; return 0.5 * x * erfc(-x / sqrt(2.0)); }
/* 0.5·x·(1 + tanh(u)) = x·sigmoid(2u): the second form has no cancellation
 * in double either, where tanh(u) is -1 + tiny. */
static double gelu_tanh_z(double x) { return 2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x); }
static double ref_gelu_tanh(double x, double a) {
    (void)a;
    return x / (1.0 + exp(-gelu_tanh_z(x)));
}
static double ref_swish(double x, double a) { (void)a; return x / (1.0 + exp(-x)); }
static double ref_softplus(double x, double a) {
    (void)a;
    return x > 30 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* ---- one case per op, with its parameter, for the shared checks ---- */

typedef struct act_case {
    const char *name;
    nb_node *(*make)(nb_graph *, nb_node *, float);
    double (*ref)(double x, double a);
    float a;          /* the op's scalar parameter, where it has one */
    double grad_tol;  /* worst relative error nb_gradcheck may report */
} act_case;

static nb_node *mk_sigmoid(nb_graph *g, nb_node *x, float a) { (void)a; return nb_sigmoid(g, x); }
static nb_node *mk_tanh(nb_graph *g, nb_node *x, float a) { (void)a; return nb_tanh(g, x); }
static nb_node *mk_relu(nb_graph *g, nb_node *x, float a) { (void)a; return nb_relu(g, x); }
static nb_node *mk_selu(nb_graph *g, nb_node *x, float a) { (void)a; return nb_selu(g, x); }
static nb_node *mk_gelu(nb_graph *g, nb_node *x, float a) { (void)a; return nb_gelu(g, x); }
static nb_node *mk_gelu_tanh(nb_graph *g, nb_node *x, float a) { (void)a; return nb_gelu_tanh(g, x); }
static nb_node *mk_swish(nb_graph *g, nb_node *x, float a) { (void)a; return nb_swish(g, x); }
static nb_node *mk_softplus(nb_graph *g, nb_node *x, float a) { (void)a; return nb_softplus(g, x); }

/* Gradients are smooth away from 0 (kinks are avoided by the inputs), so
 * 1e-2 leaves ample room over float32 rounding in the loss (about 1e-3). */
static const act_case c_sigmoid = {"sigmoid", mk_sigmoid, ref_sigmoid, 0, 1e-2};
static const act_case c_tanh = {"tanh", mk_tanh, ref_tanh, 0, 1e-2};
static const act_case c_relu = {"relu", mk_relu, ref_relu, 0, 1e-2};
static const act_case c_leaky = {"leaky_relu", nb_leaky_relu, ref_leaky, 0.2f, 1e-2};
static const act_case c_elu = {"elu", nb_elu, ref_elu, 0.7f, 1e-2};
static const act_case c_selu = {"selu", mk_selu, ref_selu, 0, 1e-2};
static const act_case c_gelu = {"gelu", mk_gelu, ref_gelu, 0, 1e-2};
static const act_case c_gelu_tanh = {"gelu_tanh", mk_gelu_tanh, ref_gelu_tanh, 0, 1e-2};
static const act_case c_swish = {"swish", mk_swish, ref_swish, 0, 1e-2};
static const act_case c_softplus = {"softplus", mk_softplus, ref_softplus, 0, 1e-2};

/* Inputs from tails to kinks: saturation (±80 would overflow a naive exp
 * in float for softplus and sigmoid), zero itself, small values near it. */
static const float probe[] = {-80.0f, -30.0f, -5.0f, -2.5f, -1.0f, -0.3f, -0.06f, 0.0f,
                              0.07f, 0.4f,  1.0f,  2.2f,  5.0f, 30.0f, 80.0f, -1e-4f};
#define N_PROBE (sizeof probe / sizeof probe[0])

static void check_forward(const act_case *c) {
    nb_graph *g = nb_graph_new();
    int dims[] = {2, 8};
    nb_tensor *t = t_tensor_of("x", 2, dims, probe);
    nb_node *y = c->make(g, nb_param(g, t), c->a);
    cr_assert(y);
    cr_assert_str_eq(nb_node_op(y), c->name);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
    float expected[N_PROBE];
    for (size_t i = 0; i < N_PROBE; i++) expected[i] = (float)c->ref((double)probe[i], (double)c->a);
    nb_assert_near(nb_node_value(y), expected, N_PROBE, 1e-6, 1e-5);
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 2 && s.dim[0] == 2 && s.dim[1] == 8);
    nb_graph_free(g);
    nb_tensor_free(t);
}

/* Moves every element at least 0.1 away from 0, the kink of the ReLU family
 * (the step is at most 5e-3·3 for inputs in [-3,3]). */
static void away_from_zero(nb_tensor *t) {
    for (size_t i = 0; i < t->size; i++)
        if (fabsf(t->data[i]) < 0.1f) t->data[i] += t->data[i] < 0 ? -0.1f : 0.1f;
}

static void check_grad(const act_case *c) {
    nb_graph *g = nb_graph_new();
    int dims[] = {3, 4};
    nb_tensor *t = t_tensor("x", 2, dims, -3.0f, 3.0f, 11), *w;
    away_from_zero(t);
    nb_node *loss = t_weighted_sum(g, c->make(g, nb_param(g, t), c->a), &w, 12);
    t_ok(g);
    nb_assert_gradcheck(g, loss, c->grad_tol);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

/* Built for batch 8, fed batch 5, then 8 again: shapes and values follow. */
static void check_batch_change(const act_case *c) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 3});
    nb_node *y = c->make(g, x, c->a);
    t_ok(g);
    float data[24], expected[24];
    for (int i = 0; i < 24; i++) {
        data[i] = -3.0f + 0.26f * (float)i;
        expected[i] = (float)c->ref((double)data[i], (double)c->a);
    }
    for (int pass = 0; pass < 2; pass++) {
        int batch = pass == 0 ? 5 : 8;
        cr_assert(nb_feed(g, x, data, batch) == NB_OK);
        cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK, "%s", nb_graph_error(g));
        nb_shape s = nb_node_shape(y);
        cr_assert(s.rank == 2 && s.dim[0] == batch && s.dim[1] == 3, "batch %d", batch);
        cr_assert_eq(nb_node_size(y), (size_t)batch * 3);
        nb_assert_near(nb_node_value(y), expected, (size_t)batch * 3, 1e-6, 1e-5);
    }
    nb_graph_free(g);
}

#define CASE_TESTS(op, c)                                                                   \
    Test(activation, op##_forward_matches_reference) { check_forward(&c); }                \
    Test(activation, op##_gradient_matches_finite_differences) { check_grad(&c); }         \
    Test(activation, op##_follows_a_batch_change) { check_batch_change(&c); }

CASE_TESTS(sigmoid, c_sigmoid)
CASE_TESTS(tanh, c_tanh)
CASE_TESTS(relu, c_relu)
CASE_TESTS(leaky_relu, c_leaky)
CASE_TESTS(elu, c_elu)
CASE_TESTS(selu, c_selu)
CASE_TESTS(gelu, c_gelu)
CASE_TESTS(gelu_tanh, c_gelu_tanh)
CASE_TESTS(swish, c_swish)
CASE_TESTS(softplus, c_softplus)

Test(activation, elu_with_default_alpha_and_negative_alpha_match_reference) {
    check_forward(&(act_case){"elu", nb_elu, ref_elu, 1.0f, 1e-2});
    check_forward(&(act_case){"elu", nb_elu, ref_elu, -0.5f, 1e-2}); /* Keras allows it */
    check_grad(&(act_case){"elu", nb_elu, ref_elu, 1.0f, 1e-2});
}

Test(activation, leaky_relu_keras_default_alpha_matches_reference) {
    check_forward(&(act_case){"leaky_relu", nb_leaky_relu, ref_leaky, 0.3f, 1e-2});
}

Test(activation, relu_gradient_is_zero_at_and_below_zero) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){4}, (float[]){-1.0f, 0.0f, 0.5f, 2.0f}), *w;
    nb_node *loss = t_weighted_sum(g, nb_relu(g, nb_param(g, t)), &w, 3);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
    cr_assert(nb_backward(g, loss) == NB_OK, "%s", nb_graph_error(g));
    float expected[4] = {0.0f, 0.0f, w->data[2], w->data[3]};
    nb_assert_near(t->grad, expected, 4, 0, 0);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

Test(activation, nan_passes_through_relu_and_sigmoid) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){2}, (float[]){NAN, 1.0f});
    nb_node *x = nb_param(g, t);
    nb_node *r = nb_relu(g, x), *s = nb_sigmoid(g, x), *l = nb_leaky_relu(g, x, 0.1f);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
    cr_assert(isnan(nb_node_value(r)[0]) && isnan(nb_node_value(s)[0]) &&
              isnan(nb_node_value(l)[0]));
    nb_graph_free(g);
    nb_tensor_free(t);
}

/* ---- prelu ---- */

static double ref_prelu(double x, double a) { return x > 0 ? x : a * x; }

Test(activation, prelu_forward_uses_each_features_alpha) {
    nb_graph *g = nb_graph_new();
    float alpha[4] = {0.1f, -0.2f, 0.5f, 1.5f};
    nb_tensor *tx = t_tensor("x", 3, (int[]){2, 3, 4}, -2.0f, 2.0f, 5);
    nb_tensor *ta = t_tensor_of("alpha", 1, (int[]){4}, alpha);
    nb_node *y = nb_prelu(g, nb_param(g, tx), nb_param(g, ta));
    cr_assert(y);
    cr_assert_str_eq(nb_node_op(y), "prelu");
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
    float expected[24];
    for (int i = 0; i < 24; i++) expected[i] = (float)ref_prelu(tx->data[i], alpha[i % 4]);
    nb_assert_near(nb_node_value(y), expected, 24, 1e-7, 1e-6);
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 3 && s.dim[0] == 2 && s.dim[1] == 3 && s.dim[2] == 4);
    nb_graph_free(g);
    nb_tensor_free(tx);
    nb_tensor_free(ta);
}

/* Both x and alpha are trainable: gradcheck checks both (tolerance 1e-2). */
Test(activation, prelu_gradients_of_x_and_alpha_match_finite_differences) {
    nb_graph *g = nb_graph_new();
    nb_tensor *tx = t_tensor("x", 2, (int[]){5, 3}, -3.0f, 3.0f, 21), *w;
    nb_tensor *ta = t_tensor_of("alpha", 1, (int[]){3}, (float[]){0.25f, -0.4f, 0.8f});
    away_from_zero(tx);
    nb_node *loss = t_weighted_sum(g, nb_prelu(g, nb_param(g, tx), nb_param(g, ta)), &w, 22);
    t_ok(g);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(tx);
    nb_tensor_free(ta);
    nb_tensor_free(w);
}

/* dL/dalpha[f] = sum over rows of w·x where x <= 0, computed here by hand,
 * with x a constant (no gradient wanted for it). */
Test(activation, prelu_alpha_gradient_sums_over_rows) {
    nb_graph *g = nb_graph_new();
    nb_tensor *tx = t_tensor("x", 2, (int[]){6, 4}, -2.0f, 2.0f, 31), *w;
    nb_tensor *ta = t_tensor_of("alpha", 1, (int[]){4}, (float[]){0.1f, 0.2f, 0.3f, 0.4f});
    tx->trainable = false;
    nb_node *loss = t_weighted_sum(g, nb_prelu(g, nb_constant(g, tx), nb_param(g, ta)), &w, 32);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
    cr_assert(nb_backward(g, loss) == NB_OK, "%s", nb_graph_error(g));
    float expected[4];
    for (int f = 0; f < 4; f++) {
        double acc = 0;
        for (int r = 0; r < 6; r++) {
            double x = tx->data[r * 4 + f];
            if (x <= 0) acc += (double)w->data[r * 4 + f] * x;
        }
        expected[f] = (float)acc;
    }
    nb_assert_near(ta->grad, expected, 4, 1e-6, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(tx);
    nb_tensor_free(ta);
    nb_tensor_free(w);
}

Test(activation, prelu_follows_a_batch_change) {
    nb_graph *g = nb_graph_new();
    float alpha[3] = {0.1f, 0.2f, 0.3f};
    nb_tensor *ta = t_tensor_of("alpha", 1, (int[]){3}, alpha);
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 3});
    nb_node *y = nb_prelu(g, x, nb_param(g, ta));
    t_ok(g);
    float data[24], expected[24];
    for (int i = 0; i < 24; i++) {
        data[i] = -3.0f + 0.26f * (float)i;
        expected[i] = (float)ref_prelu(data[i], alpha[i % 3]);
    }
    cr_assert(nb_feed(g, x, data, 5) == NB_OK);
    cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_shape(y).dim[0], 5);
    nb_assert_near(nb_node_value(y), expected, 15, 1e-7, 1e-6);
    nb_graph_free(g);
    nb_tensor_free(ta);
}

static void expect_prelu_error(int xr, const int *xd, int ar, const int *ad, const char *xs,
                               const char *as) {
    nb_graph *g = nb_graph_new();
    nb_tensor *tx = nb_tensor_new(xr, xd), *ta = nb_tensor_new(ar, ad);
    cr_assert(nb_prelu(g, nb_param(g, tx), nb_param(g, ta)) == NULL);
    cr_assert(nb_graph_status(g) == NB_ERROR);
    const char *msg = nb_graph_error(g);
    cr_assert(strstr(msg, "prelu") && strstr(msg, xs) && strstr(msg, as), "message: %s", msg);
    nb_graph_free(g);
    nb_tensor_free(tx);
    nb_tensor_free(ta);
}

Test(activation, prelu_rejects_alpha_not_matching_the_feature_axis) {
    expect_prelu_error(2, (int[]){4, 6}, 1, (int[]){5}, "[4,6]", "[5]");
    expect_prelu_error(2, (int[]){4, 6}, 2, (int[]){1, 6}, "[4,6]", "[1,6]");
    expect_prelu_error(2, (int[]){4, 6}, 0, NULL, "[4,6]", "[]");
    expect_prelu_error(0, NULL, 1, (int[]){1}, "[]", "[1]");
}

/* ---- rrelu ---- */

/* y = rrelu(x) for x a constant of n elements, all equal to v. */
typedef struct rrelu_fixture {
    nb_graph *g;
    nb_tensor *t;
    nb_node *y;
} rrelu_fixture;

static rrelu_fixture rrelu_make(int n, float v, float lower, float upper, uint64_t seed) {
    rrelu_fixture f = {.g = nb_graph_new()};
    f.t = nb_tensor_new(1, (int[]){n});
    for (int i = 0; i < n; i++) f.t->data[i] = v;
    f.t->trainable = false;
    nb_graph_set_seed(f.g, seed);
    f.y = nb_rrelu(f.g, nb_constant(f.g, f.t), lower, upper);
    t_ok(f.g);
    return f;
}

static void rrelu_free(rrelu_fixture *f) {
    nb_graph_free(f->g);
    nb_tensor_free(f->t);
}

Test(activation, rrelu_training_slopes_are_uniform_in_bounds_and_differ) {
    const int n = 4096;
    const float lo = 0.125f, hi = 1.0f / 3.0f;
    rrelu_fixture f = rrelu_make(n, -1.0f, lo, hi, 7);
    cr_assert(nb_forward(f.g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(f.g));
    const float *y = nb_node_value(f.y);
    double sum = 0;
    int distinct_neighbours = 0;
    for (int i = 0; i < n; i++) {
        float s = -y[i];
        cr_assert(s >= lo && s <= hi, "slope %g at %d outside [%g,%g]", s, i, lo, hi);
        sum += s;
        if (i && y[i] != y[i - 1]) distinct_neighbours++;
    }
    cr_assert_gt(distinct_neighbours, n - 10);
    /* uniform: mean (lo+hi)/2 with standard error (hi-lo)/sqrt(12 n) ~ 1e-3 */
    cr_assert(fabs(sum / n - 0.5 * (lo + hi)) < 5e-3, "mean slope %g", sum / n);
    rrelu_free(&f);
}

Test(activation, rrelu_keeps_positive_inputs_in_training) {
    rrelu_fixture f = rrelu_make(64, 1.5f, 0.1f, 0.9f, 3);
    cr_assert(nb_forward(f.g, NB_TRAINING) == NB_OK);
    for (int i = 0; i < 64; i++) cr_assert_eq(nb_node_value(f.y)[i], 1.5f);
    rrelu_free(&f);
}

Test(activation, rrelu_inference_uses_the_mean_slope) {
    nb_graph *g = nb_graph_new();
    float vals[6] = {-2.0f, -0.5f, 0.0f, 0.3f, 4.0f, -7.0f}, expected[6];
    const double lo = 0.125, hi = 1.0 / 3.0;
    nb_tensor *t = t_tensor_of("x", 2, (int[]){2, 3}, vals);
    nb_node *y = nb_rrelu(g, nb_param(g, t), (float)lo, (float)hi);
    cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK);
    for (int i = 0; i < 6; i++) expected[i] = (float)(vals[i] > 0 ? vals[i] : 0.5 * (lo + hi) * vals[i]);
    nb_assert_near(nb_node_value(y), expected, 6, 1e-7, 1e-6);
    nb_graph_free(g);
    nb_tensor_free(t);
}

/* Backward after an inference pass differentiates what that pass computed. */
Test(activation, rrelu_backward_after_inference_uses_the_mean_slope) {
    nb_graph *g = nb_graph_new();
    float vals[4] = {-2.0f, 1.0f, -0.5f, 3.0f};
    nb_tensor *t = t_tensor_of("x", 1, (int[]){4}, vals), *w;
    nb_node *loss = t_weighted_sum(g, nb_rrelu(g, nb_param(g, t), 0.2f, 0.6f), &w, 9);
    cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK);
    cr_assert(nb_backward(g, loss) == NB_OK, "%s", nb_graph_error(g));
    float expected[4];
    for (int i = 0; i < 4; i++) expected[i] = (float)(w->data[i] * (vals[i] > 0 ? 1.0 : 0.4));
    nb_assert_near(t->grad, expected, 4, 1e-7, 1e-6);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

Test(activation, rrelu_same_seed_gives_identical_output) {
    const int n = 1000;
    rrelu_fixture a = rrelu_make(n, -1.0f, 0.1f, 0.9f, 42), b = rrelu_make(n, -1.0f, 0.1f, 0.9f, 42);
    rrelu_fixture c = rrelu_make(n, -1.0f, 0.1f, 0.9f, 43);
    cr_assert(nb_forward(a.g, NB_TRAINING) == NB_OK && nb_forward(b.g, NB_TRAINING) == NB_OK &&
              nb_forward(c.g, NB_TRAINING) == NB_OK);
    cr_assert(memcmp(nb_node_value(a.y), nb_node_value(b.y), n * sizeof(float)) == 0);
    cr_assert(memcmp(nb_node_value(a.y), nb_node_value(c.y), n * sizeof(float)) != 0,
              "another seed gives the same slopes");
    /* each training pass draws afresh */
    float first[1000];
    memcpy(first, nb_node_value(a.y), sizeof first);
    cr_assert(nb_forward(a.g, NB_TRAINING) == NB_OK);
    cr_assert(memcmp(first, nb_node_value(a.y), sizeof first) != 0, "the next step repeats the slopes");
    rrelu_free(&a);
    rrelu_free(&b);
    rrelu_free(&c);
}

/* Slopes depend on (seed, step, element) only: enough elements to run the
 * parallel path give the same bits on one thread and on four. */
Test(activation, rrelu_slopes_do_not_depend_on_thread_count) {
    const int n = 4 * 32768 + 3;
    int saved = nb_get_num_threads();
    float *first = malloc(n * sizeof(float));
    cr_assert(first);
    for (int pass = 0; pass < 2; pass++) {
        nb_set_num_threads(pass == 0 ? 1 : 4);
        rrelu_fixture f = rrelu_make(n, -1.0f, 0.1f, 0.9f, 5);
        cr_assert(nb_forward(f.g, NB_TRAINING) == NB_OK);
        if (pass == 0) memcpy(first, nb_node_value(f.y), n * sizeof(float));
        else cr_assert(memcmp(first, nb_node_value(f.y), n * sizeof(float)) == 0);
        rrelu_free(&f);
    }
    nb_set_num_threads(saved);
    free(first);
}

Test(activation, rrelu_stochastic_node_draws_in_inference) {
    rrelu_fixture f = rrelu_make(256, -1.0f, 0.1f, 0.9f, 8);
    cr_assert(nb_node_set_stochastic(f.y, true) == NB_OK);
    cr_assert(nb_forward(f.g, NB_INFERENCE) == NB_OK);
    int off_mean = 0;
    for (int i = 0; i < 256; i++) off_mean += nb_node_value(f.y)[i] != -0.5f;
    cr_assert_gt(off_mean, 200);
    rrelu_free(&f);
}

/* The slopes range over [0.1, 0.9]: if gradcheck's forward passes drew new
 * ones, the finite differences would be far off, so passing shows that the
 * random stream is pinned while it runs. Tolerance 1e-2. */
Test(activation, rrelu_training_gradient_matches_finite_differences) {
    nb_graph *g = nb_graph_new();
    nb_graph_set_seed(g, 17);
    nb_tensor *t = t_tensor("x", 2, (int[]){3, 4}, -3.0f, 3.0f, 41), *w;
    away_from_zero(t);
    nb_node *y = nb_rrelu(g, nb_param(g, t), 0.1f, 0.9f);
    nb_node *loss = t_weighted_sum(g, y, &w, 42);
    t_ok(g);
    nb_assert_gradcheck(g, loss, 1e-2);
    /* and the slopes it saw did vary */
    float lo = 1, hi = 0;
    for (int i = 0; i < 12; i++)
        if (t->data[i] < 0) {
            float s = nb_node_value(y)[i] / t->data[i];
            lo = fminf(lo, s), hi = fmaxf(hi, s);
        }
    cr_assert_gt(hi - lo, 0.1f);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

Test(activation, rrelu_with_equal_bounds_is_a_leaky_relu) {
    rrelu_fixture f = rrelu_make(16, -2.0f, 0.25f, 0.25f, 1);
    cr_assert(nb_forward(f.g, NB_TRAINING) == NB_OK);
    for (int i = 0; i < 16; i++) cr_assert_eq(nb_node_value(f.y)[i], -0.5f);
    rrelu_free(&f);
}

Test(activation, rrelu_follows_a_batch_change) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 3});
    nb_node *y = nb_rrelu(g, x, 0.2f, 0.4f);
    float data[24], expected[24];
    for (int i = 0; i < 24; i++) {
        data[i] = -3.0f + 0.26f * (float)i;
        expected[i] = data[i] > 0 ? data[i] : 0.3f * data[i];
    }
    cr_assert(nb_feed(g, x, data, 5) == NB_OK);
    cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_node_size(y), 15);
    nb_assert_near(nb_node_value(y), expected, 15, 1e-6, 1e-5);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < 15; i++)
        if (data[i] < 0) {
            float s = nb_node_value(y)[i] / data[i];
            cr_assert(s >= 0.2f - 1e-6f && s <= 0.4f + 1e-6f, "slope %g", s);
        }
    nb_graph_free(g);
}

/* ---- argument errors ---- */

/* Runs make on a fresh graph and expects NULL, NB_ERROR and a message
 * holding want (the op's name) and want2. */
#define EXPECT_ERROR(make_call, want, want2)                                                \
    do {                                                                                    \
        nb_graph *g = nb_graph_new();                                                       \
        nb_tensor *t = nb_tensor_new(2, (int[]){2, 3});                                     \
        nb_node *x = nb_param(g, t);                                                        \
        (void)x;                                                                            \
        cr_assert((make_call) == NULL, "%s accepted", #make_call);                          \
        cr_assert(nb_graph_status(g) == NB_ERROR);                                          \
        const char *msg_ = nb_graph_error(g);                                               \
        cr_assert(strstr(msg_, want) && strstr(msg_, want2), "%s: message %s", #make_call,  \
                  msg_);                                                                    \
        nb_graph_free(g);                                                                   \
        nb_tensor_free(t);                                                                  \
    } while (0)

Test(activation, leaky_relu_rejects_non_finite_alpha) {
    EXPECT_ERROR(nb_leaky_relu(g, x, NAN), "leaky_relu", "alpha");
    EXPECT_ERROR(nb_leaky_relu(g, x, INFINITY), "leaky_relu", "alpha");
}

Test(activation, elu_rejects_non_finite_alpha) {
    EXPECT_ERROR(nb_elu(g, x, NAN), "elu", "alpha");
    EXPECT_ERROR(nb_elu(g, x, -INFINITY), "elu", "alpha");
}

Test(activation, rrelu_rejects_bad_bounds) {
    EXPECT_ERROR(nb_rrelu(g, x, 0.5f, 0.25f), "rrelu", "lower");
    EXPECT_ERROR(nb_rrelu(g, x, -0.1f, 0.25f), "rrelu", "lower");
    EXPECT_ERROR(nb_rrelu(g, x, NAN, 0.25f), "rrelu", "lower");
    EXPECT_ERROR(nb_rrelu(g, x, 0.1f, INFINITY), "rrelu", "upper");
}

Test(activation, null_input_is_an_error_naming_the_op) {
    EXPECT_ERROR(nb_sigmoid(g, NULL), "sigmoid", "NULL");
    EXPECT_ERROR(nb_tanh(g, NULL), "tanh", "NULL");
    EXPECT_ERROR(nb_relu(g, NULL), "relu", "NULL");
    EXPECT_ERROR(nb_leaky_relu(g, NULL, 0.3f), "leaky_relu", "NULL");
    EXPECT_ERROR(nb_prelu(g, x, NULL), "prelu", "NULL");
    EXPECT_ERROR(nb_rrelu(g, NULL, 0.1f, 0.3f), "rrelu", "NULL");
    EXPECT_ERROR(nb_elu(g, NULL, 1.0f), "elu", "NULL");
    EXPECT_ERROR(nb_selu(g, NULL), "selu", "NULL");
    EXPECT_ERROR(nb_gelu(g, NULL), "gelu", "NULL");
    EXPECT_ERROR(nb_gelu_tanh(g, NULL), "gelu_tanh", "NULL");
    EXPECT_ERROR(nb_swish(g, NULL), "swish", "NULL");
    EXPECT_ERROR(nb_softplus(g, NULL), "softplus", "NULL");
}

Test(activation, constructors_do_nothing_on_a_graph_in_error) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = nb_tensor_new(1, (int[]){3});
    nb_node *x = nb_param(g, t);
    cr_assert(nb_leaky_relu(g, x, NAN) == NULL);
    char first[256];
    snprintf(first, sizeof first, "%s", nb_graph_error(g));
    cr_assert(nb_relu(g, x) == NULL);
    cr_assert(nb_elu(g, x, NAN) == NULL);
    cr_assert(nb_rrelu(g, x, 2.0f, 1.0f) == NULL);
    cr_assert(nb_prelu(g, x, x) == NULL);
    cr_assert_str_eq(nb_graph_error(g), first);
    cr_assert(nb_leaky_relu(NULL, x, NAN) == NULL);
    cr_assert(nb_rrelu(NULL, x, 2.0f, 1.0f) == NULL);
    nb_graph_free(g);
    nb_tensor_free(t);
}

#include "ops/common.h"

/* The branch-free exp, expm1 and sigmoid the kernels use, against libm in
 * double, over their whole ranges: within a few float ulps. */
Test(activation, the_vectorizable_exp_expm1_and_sigmoid_are_accurate) {
    double worst_exp = 0, worst_expm1 = 0, worst_sig = 0;
    for (double x = -87.0; x <= 88.0; x += 0.001) {
        double want = exp((float)x), got = nb__exp((float)x);
        worst_exp = fmax(worst_exp, fabs(got - want) / want);
    }
    for (double x = -30.0; x <= 0.0; x += 0.0001) {
        double want = expm1((float)x), got = nb__expm1_neg((float)x);
        if (want != 0) worst_expm1 = fmax(worst_expm1, fabs(got - want) / fabs(want));
    }
    for (double x = -40.0; x <= 40.0; x += 0.001) {
        double want = 1.0 / (1.0 + exp(-(double)(float)x)), got = nb__sigmoid((float)x);
        worst_sig = fmax(worst_sig, fabs(got - want) / want);
    }
    double worst_tanh = 0;
    for (double x = -20.0; x <= 20.0; x += 0.0001) {
        double want = tanh((double)(float)x), got = nb__tanh((float)x);
        if (want != 0) worst_tanh = fmax(worst_tanh, fabs(got - want) / fabs(want));
    }
    cr_assert_lt(worst_tanh, 5e-7, "tanh: %g", worst_tanh);
    cr_log_info("worst relative errors: exp %.3g, expm1 %.3g, sigmoid %.3g, tanh %.3g", worst_exp, worst_expm1,
                worst_sig, worst_tanh);
    cr_assert_lt(worst_exp, 3e-7, "exp: %g", worst_exp);        /* float epsilon is 1.19e-7 */
    cr_assert_lt(worst_expm1, 5e-7, "expm1: %g", worst_expm1);
    cr_assert_lt(worst_sig, 5e-7, "sigmoid: %g", worst_sig);
    cr_assert_eq(nb__exp(-1000.0f) >= 0.0f && nb__exp(-1000.0f) < 1e-37f, true);
    cr_assert(isfinite(nb__exp(1000.0f)));
}

/* ---- sigmoid and tanh derivatives in saturation ---- */

#include "ops/simd512.h"

/* sigmoid'(x) = e/(1+e)², tanh'(x) = 4e/(1+e)² with e = exp(-|x|) and
 * exp(-2|x|), in double: no cancellation anywhere, unlike 1 - tanh²(x). */
static double d_sigmoid(double x) {
    const double e = exp(-fabs(x));
    return e / ((1.0 + e) * (1.0 + e));
}
static double d_tanh(double x) {
    const double e = exp(-2.0 * fabs(x));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

/* dL/dx of sum(op(x)) on n inputs evenly spread over [-r, r] against the
 * double derivative at the same float x: within rel relative, no absolute
 * slack, so the saturated tails (derivatives down to 1e-9 for sigmoid at
 * 20, 6e-8 for tanh at 9) count as much as the middle. Where y(1-y) or
 * 1 - y² of the float output was used, the error reached 1e-4 at |x| = 5
 * and 100% where y rounds to ±1. */
static void check_saturated_derivative(nb_node *(*op)(nb_graph *, nb_node *), double (*d)(double), double r,
                                       double rel) {
    enum { N = 20011 }; /* odd and not a multiple of 16: vector tails too */
    float *data = malloc(N * sizeof *data), *want = malloc(N * sizeof *want);
    cr_assert(data && want);
    for (int i = 0; i < N; i++) data[i] = (float)(-r + 2.0 * r * i / (N - 1));
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){N}, data);
    nb_node *loss = nb_sum(g, op(g, nb_param(g, t)));
    t_ok(g);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
    cr_assert(nb_backward(g, loss) == NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < N; i++) want[i] = (float)d(data[i]);
    nb_assert_near(t->grad, want, (size_t)N, 0.0, rel);
    nb_graph_free(g);
    nb_tensor_free(t);
    free(data);
    free(want);
}

static void portable_only(void) {
#ifdef NB_HAVE_V512
    nb__v512_disabled = true;
#endif
}

Test(activation, sigmoid_gradient_is_accurate_in_saturation) {
    check_saturated_derivative(nb_sigmoid, d_sigmoid, 20.0, 1e-6);
    check_saturated_derivative(nb_sigmoid, d_sigmoid, 80.0, 1e-6);
}
Test(activation, tanh_gradient_is_accurate_in_saturation) {
    check_saturated_derivative(nb_tanh, d_tanh, 9.0, 1e-6);
    check_saturated_derivative(nb_tanh, d_tanh, 40.0, 1e-6);
}
Test(activation, portable_sigmoid_gradient_is_accurate_in_saturation) {
    portable_only();
    check_saturated_derivative(nb_sigmoid, d_sigmoid, 20.0, 1e-6);
    check_saturated_derivative(nb_sigmoid, d_sigmoid, 80.0, 1e-6);
}
Test(activation, portable_tanh_gradient_is_accurate_in_saturation) {
    portable_only();
    check_saturated_derivative(nb_tanh, d_tanh, 9.0, 1e-6);
    check_saturated_derivative(nb_tanh, d_tanh, 40.0, 1e-6);
}

/* ---- gelu with the tanh approximation, over a wide range ---- */

/* d/dx x·s(z) = s(z) + x·s(z)·s(-z)·z', z = 2u, in double without
 * cancellation (s(-z) = e/(1+e) for z >= 0). */
static double d_gelu_tanh(double x) {
    const double z = gelu_tanh_z(x), e = exp(-fabs(z)), s = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    return s + x * e / ((1.0 + e) * (1.0 + e)) * 2.0 * sqrt(2.0 / M_PI) * (1.0 + 3.0 * 0.044715 * x * x);
}

/* Forward and backward on 40,100 inputs from -40 to 40 against the double
 * formulas at the same float x. The kernel computes z = 2u in float, so
 * its rounding (a few 1e-7 relative) is multiplied by |z| in s(z):
 *   forward within 2e-7·(1 + |z|) relative (1.5e-6 at x = -3, 2e-5 at -9.9),
 *   backward within 2e-7 + 1e-7·(1 + |z|)·|y'| (absolute 2e-7 where y'
 *   crosses 0 near x = -0.75 as its terms cancel),
 * where |z| < 87; beyond (x < -9.98), |y| is below 3e-37 and |y'| below 3e-35,
 * and both must be that small and of the right sign (<= 0). */
static void gelu_tanh_matches_double_formulas(void) {
    enum { N = 40100 };
    float *data = malloc(N * sizeof *data);
    cr_assert(data);
    for (int i = 0; i < N; i++) data[i] = -40.0f + 80.0f * (float)i / (float)(N - 1);
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 2, (int[]){N / 100, 100}, data);
    nb_node *y = nb_gelu_tanh(g, nb_param(g, t));
    nb_node *loss = nb_sum(g, y);
    t_ok(g);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
    cr_assert(nb_backward(g, loss) == NB_OK, "%s", nb_graph_error(g));
    const float *v = nb_node_value(y);
    for (int i = 0; i < N; i++) {
        const double x = data[i], z = fabs(gelu_tanh_z(x)), want = ref_gelu_tanh(x, 0), dwant = d_gelu_tanh(x);
        if (z < 87.0) {
            cr_assert(fabs(v[i] - want) <= 2e-7 * (1.0 + z) * fabs(want), "gelu_tanh(%.9g) = %.9g, expected %.9g", x,
                      (double)v[i], want);
            cr_assert(fabs(t->grad[i] - dwant) <= 2e-7 + 1e-7 * (1.0 + z) * fabs(dwant),
                      "gelu_tanh'(%.9g) = %.9g, expected %.9g", x, (double)t->grad[i], dwant);
        } else if (x < 0) {
            cr_assert(v[i] <= 0.0f && v[i] > -3e-37f, "gelu_tanh(%.9g) = %g", x, (double)v[i]);
            cr_assert(t->grad[i] <= 0.0f && t->grad[i] > -3e-35f, "gelu_tanh'(%.9g) = %g", x, (double)t->grad[i]);
        } else {
            cr_assert(v[i] == (float)x && t->grad[i] == 1.0f, "gelu_tanh(%.9g) = %.9g, ' %.9g", x, (double)v[i],
                      (double)t->grad[i]);
        }
    }
    nb_graph_free(g);
    nb_tensor_free(t);
    free(data);
}

Test(activation, gelu_tanh_matches_double_formulas_over_a_wide_range) { gelu_tanh_matches_double_formulas(); }
Test(activation, portable_gelu_tanh_matches_double_formulas_over_a_wide_range) {
    portable_only();
    gelu_tanh_matches_double_formulas();
}

/* Infinities give finite or infinite values as the limits say; NaN goes
 * through, forward and backward, on both paths. */
static void gelu_tanh_extremes(void) {
    float data[19] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.0f, -0.0f};
    for (int i = 7; i < 19; i++) data[i] = NAN; /* fills a 16-lane vector and a tail */
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){19}, data);
    nb_node *y = nb_gelu_tanh(g, nb_param(g, t));
    nb_node *loss = nb_sum(g, y);
    cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
    nb_backward(g, loss);
    const float *v = nb_node_value(y);
    cr_assert(v[0] == INFINITY && t->grad[0] == 1.0f, "+inf: %g, %g", (double)v[0], (double)t->grad[0]);
    cr_assert(v[1] <= 0.0f && v[1] > -3e-37f && t->grad[1] <= 0.0f && t->grad[1] > -3e-35f, "-inf: %g, %g",
              (double)v[1], (double)t->grad[1]);
    cr_assert(isnan(v[2]) && isnan(t->grad[2]));
    cr_assert(v[3] == 1e30f && t->grad[3] == 1.0f);
    cr_assert(v[4] <= 0.0f && v[4] > -3e-37f);
    cr_assert(v[5] == 0.0f && t->grad[5] == 0.5f && v[6] == 0.0f && t->grad[6] == 0.5f);
    for (int i = 7; i < 19; i++) cr_assert(isnan(v[i]) && isnan(t->grad[i]), "lane %d", i);
    nb_graph_free(g);
    nb_tensor_free(t);
}

Test(activation, gelu_tanh_handles_infinities_and_nan) { gelu_tanh_extremes(); }
Test(activation, portable_gelu_tanh_handles_infinities_and_nan) {
    portable_only();
    gelu_tanh_extremes();
}
