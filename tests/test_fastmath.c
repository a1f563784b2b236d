/* tests/test_fastmath.c — the vectorizable elementwise math of ops/common.h
 * (exp, expm1, sigmoid, tanh, log1p, the normal CDF and density behind
 * GELU) against libm in double, with each function's stated error bound,
 * over their whole ranges and at the extremes (±0, tiny, huge, ±inf, NaN);
 * then the same through the activation ops, whose kernels run the
 * AVX-512/AVX2 clones, with NaN in every lane position. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "helpers.h"
#include "nabla/testing.h"
#include "ops/common.h"

typedef struct worst {
    double rel;
    double at;
} worst;

/* Worst relative error of f against ref over [lo, hi] in steps of step,
 * inputs rounded to float first (ref sees the same x as f). */
static worst scan(float (*f)(float), double (*ref)(double), double lo, double hi, double step) {
    worst w = {0, 0};
    for (double x = lo; x <= hi; x += step) {
        const float xf = (float)x;
        const double want = ref(xf), got = f(xf);
        if (want == 0.0) continue;
        const double e = fabs(got - want) / fabs(want);
        if (!(e <= w.rel)) w = (worst){e, xf}; /* NaN counts as worst */
    }
    return w;
}

#define CHECK_SCAN(f, ref, lo, hi, step, bound)                                                       \
    do {                                                                                              \
        worst w_ = scan(f, ref, lo, hi, step);                                                        \
        cr_log_info(#f " on [%g, %g]: worst relative error %.3g at %.9g", (double)(lo), (double)(hi), \
                    w_.rel, w_.at);                                                                   \
        cr_assert(w_.rel < (bound), #f ": relative error %.3g at %.9g > %g", w_.rel, w_.at,          \
                  (double)(bound));                                                                   \
    } while (0)

static float f_exp(float x) { return nb__exp(x); }
static float f_exp_neg(float x) { return nb__exp_neg(x); }
static float f_expm1(float x) { return nb__expm1(x); }
static float f_expm1_neg(float x) { return nb__expm1_neg(x); }
static float f_sigmoid(float x) { return nb__sigmoid(x); }
static float f_tanh(float x) { return nb__tanh(x); }
static float f_log1p(float x) { return nb__log1p_small(x); }
static float f_cdf(float x) { return nb__normal_cdf(x); }
static float f_pdf(float x) { return nb__normal_pdf(x); }

static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double r_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2.0 * M_PI); }

/* float's epsilon is 1.19e-7: the bounds below are 2.5 to 8 of them. */
Test(fastmath, exp_and_expm1_are_within_3e7_relative) {
    CHECK_SCAN(f_exp, exp, -87.3, 88.0, 1e-4, 3e-7);
    CHECK_SCAN(f_exp_neg, exp, -87.3, 0.0, 1e-4, 3e-7);
    CHECK_SCAN(f_exp, exp, -1e-3, 1e-3, 1e-8, 3e-7);
    CHECK_SCAN(f_expm1, expm1, -87.3, 88.0, 1e-4, 3e-7);
    CHECK_SCAN(f_expm1_neg, expm1, -87.3, 0.0, 1e-5, 3e-7);
    /* near 0, where exp(x) - 1 would cancel: relative precision kept */
    CHECK_SCAN(f_expm1, expm1, -1e-3, 1e-3, 1e-8, 3e-7);
    CHECK_SCAN(f_expm1_neg, expm1, -1e-30, 0.0, 1e-33, 3e-7);
}

Test(fastmath, sigmoid_and_tanh_are_within_5e7_and_3e7_relative) {
    CHECK_SCAN(f_sigmoid, r_sigmoid, -87.0, 87.0, 1e-4, 5e-7);
    CHECK_SCAN(f_tanh, tanh, -20.0, 20.0, 1e-5, 3e-7);
    CHECK_SCAN(f_tanh, tanh, -1e-3, 1e-3, 1e-8, 3e-7);
}

Test(fastmath, log1p_is_within_3e7_relative_on_its_domain) {
    CHECK_SCAN(f_log1p, log1p, -0.5, 1.0, 1e-7, 3e-7);
    CHECK_SCAN(f_log1p, log1p, -1e-6, 1e-6, 1e-13, 3e-7);
    cr_assert_eq(nb__log1p_small(1e-38f), 1e-38f);
}

/* Φ to 1e-6 relative wherever it is a normal float (x >= -12.9), the far
 * left tail included, where 1 + erf(x/√2) would have lost every digit. */
Test(fastmath, normal_cdf_and_pdf_are_within_1e6_relative) {
    CHECK_SCAN(f_cdf, r_cdf, -12.9, 10.0, 1e-5, 1e-6);
    CHECK_SCAN(f_pdf, r_pdf, -13.0, 13.0, 1e-5, 5e-7);
    /* beyond: tiny and exact 0 from |x| = 14 on, never negative */
    for (double x = -12.9; x >= -60; x -= 0.01) {
        const float c = nb__normal_cdf((float)x), d = nb__normal_pdf((float)x);
        cr_assert(c >= 0.0f && c < 1e-37f, "cdf(%g) = %g", x, (double)c);
        cr_assert(d >= 0.0f && d < 1e-36f, "pdf(%g) = %g", x, (double)d);
    }
}

Test(fastmath, extremes_zero_tiny_huge_and_infinities) {
    const float z[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f /* denormal */, -1e-40f};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
        const float x = z[i];
        cr_assert_float_eq(nb__exp(x), 1.0f, 1.2e-7f, "exp(%g)", (double)x);
        cr_assert_float_eq(nb__expm1(x), x, 1e-45f, "expm1(%g)", (double)x);
        cr_assert_float_eq(nb__tanh(x), x, 1e-45f, "tanh(%g)", (double)x);
        cr_assert_float_eq(nb__sigmoid(x), 0.5f, 1e-7f, "sigmoid(%g)", (double)x);
        cr_assert_float_eq(nb__normal_cdf(x), 0.5f, 1e-7f, "cdf(%g)", (double)x);
        cr_assert_float_eq(nb__normal_pdf(x), 0.39894228f, 1e-7f, "pdf(%g)", (double)x);
    }
    /* clamped, finite: exp(88) = 1.65e38, exp(-87.3) = 1.2e-38 */
    const float huge[] = {100.0f, 1e30f, INFINITY};
    for (size_t i = 0; i < 3; i++) {
        const float x = huge[i];
        cr_assert(isfinite(nb__exp(x)) && nb__exp(x) > 1.6e38f, "exp(%g)", (double)x);
        cr_assert(nb__exp(-x) >= 0.0f && nb__exp(-x) < 1.3e-38f, "exp(%g)", -(double)x);
        cr_assert(nb__exp_neg(-x) >= 0.0f && nb__exp_neg(-x) < 1.3e-38f, "exp_neg(%g)", -(double)x);
        cr_assert_eq(nb__expm1(-x), -1.0f);
        cr_assert_eq(nb__expm1_neg(-x), -1.0f);
        cr_assert_eq(nb__tanh(x), 1.0f);
        cr_assert_eq(nb__tanh(-x), -1.0f);
        cr_assert_eq(nb__sigmoid(x), 1.0f);
        cr_assert(nb__sigmoid(-x) >= 0.0f && nb__sigmoid(-x) < 1.3e-38f);
        cr_assert_eq(nb__normal_cdf(x), 1.0f);
        cr_assert_eq(nb__normal_cdf(-x), 0.0f);
        cr_assert_eq(nb__normal_pdf(x), 0.0f);
        cr_assert_eq(nb__normal_pdf(-x), 0.0f);
    }
    cr_assert_eq(nb__log1p_small(0.0f), 0.0f);
    cr_assert_float_eq(nb__log1p_small(1.0f), (float)log(2.0), 1.2e-7f);
}

Test(fastmath, nan_goes_through_every_function) {
    const float q = NAN;
    cr_assert(isnan(nb__exp(q)) && isnan(nb__exp_neg(q)) && isnan(nb__expm1(q)) && isnan(nb__expm1_neg(q)));
    cr_assert(isnan(nb__sigmoid(q)) && isnan(nb__tanh(q)) && isnan(nb__log1p_small(q)));
    cr_assert(isnan(nb__normal_cdf(q)) && isnan(nb__normal_pdf(q)));
    cr_assert(isnan(nb__exp_sum(q, 0.0f)) && isnan(nb__exp_sum(-1.0f, q)));
}

/* ---- through the ops: the vector clones, every lane and the tail ---- */

typedef nb_node *(*unary_fn)(nb_graph *, nb_node *);
static nb_node *mk_elu(nb_graph *g, nb_node *x) { return nb_elu(g, x, 1.0f); }
static nb_node *mk_leaky(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.2f); }

static double ref_op(int k, double x) {
    static const double sa = 1.6732632423543772848170429916717, ss = 1.0507009873554804934193349852946;
    switch (k) {
    case 0: return 1.0 / (1.0 + exp(-x));
    case 1: return tanh(x);
    case 2: return x > 0 ? x : expm1(x);
    case 3: return ss * (x > 0 ? x : sa * expm1(x));
    case 4: return 0.5 * x * erfc(-x / sqrt(2.0));
    case 5: return x / (1.0 + exp(-x));
    case 6: return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
    case 7: return x > 0 ? x : 0.0;
    default: return x > 0 ? x : 0.2 * x;
    }
}
static const unary_fn ops[] = {nb_sigmoid, nb_tanh, mk_elu, nb_selu, nb_gelu, nb_swish, nb_softplus, nb_relu, mk_leaky};
static const char *const names[] = {"sigmoid", "tanh", "elu", "selu", "gelu", "swish", "softplus", "relu", "leaky_relu"};

/* 40,000 inputs from -40 to 40 (a large graph: the parallel path when
 * threads are set), each op against its double formula: within 1e-6
 * relative or 1e-30 absolute (GELU's far tail). */
Test(fastmath, activation_ops_match_double_references_over_a_wide_range) {
    enum { N = 40000 };
    float *data = malloc(N * sizeof *data), *want = malloc(N * sizeof *want);
    for (int i = 0; i < N; i++) data[i] = -40.0f + 80.0f * (float)i / (float)(N - 1);
    for (int k = 0; k < 9; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", 2, (int[]){N / 100, 100});
        nb_node *y = ops[k](g, x);
        t_ok(g);
        cr_assert(nb_feed(g, x, data, N / 100) == NB_OK);
        cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK, "%s", nb_graph_error(g));
        for (int i = 0; i < N; i++) want[i] = (float)ref_op(k, data[i]);
        cr_log_info("%s", names[k]);
        nb_assert_near(nb_node_value(y), want, (size_t)N, 1e-30, 1e-6);
        nb_graph_free(g);
    }
    free(data);
    free(want);
}

/* NaN at every position of a 16-lane vector and in the scalar tail comes
 * out NaN, forward and backward; the other elements stay finite. */
Test(fastmath, nan_in_any_lane_comes_out_of_every_activation) {
    enum { N = 67 };
    float data[N];
    for (int i = 0; i < N; i++) data[i] = (i % 3 == 0) ? NAN : -3.0f + 0.1f * (float)i;
    for (int k = 0; k < 9; k++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = t_tensor_of("x", 1, (int[]){N}, data);
        nb_node *y = ops[k](g, nb_param(g, t));
        nb_node *loss = nb_sum(g, y);
        t_ok(g);
        cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
        nb_backward(g, loss);
        const float *v = nb_node_value(y);
        for (int i = 0; i < N; i++) {
            if (i % 3 == 0) {
                cr_assert(isnan(v[i]), "%s(NaN) at %d is %g", names[k], i, (double)v[i]);
                cr_assert(isnan(t->grad[i]) || k >= 7, "%s' (NaN) at %d is %g", names[k], i, (double)t->grad[i]);
            } else {
                cr_assert(isfinite(v[i]), "%s(%g) at %d is %g", names[k], (double)data[i], i, (double)v[i]);
            }
        }
        nb_graph_free(g);
        nb_tensor_free(t);
    }
}
