/* tests/test_fastmath.c — the vectorizable elementwise math of ops/common.h
 * (exp, expm1, sigmoid, tanh, log1p, the normal CDF and density behind
 * GELU) against libm in double, with each function's stated error bound,
 * over their whole ranges and at the extremes (±0, tiny, huge, ±inf, NaN);
 * then the same through the activation ops, whose kernels run the
 * AVX-512/AVX2 clones, with NaN in every lane position; then the AVX-512
 * versions of ops/simd512.h (what the ops run on an AVX-512 CPU), with
 * their own bounds, and the derivatives of the ops with vector backward
 * kernels. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "helpers.h"
#include "nabla/testing.h"
#include "ops/common.h"

#include "ops/simd512.h"

/* Makes the activation ops run their portable kernels (each test is its
 * own process, so this lasts for one test). */
static void portable_kernels(void) {
#ifdef NB_HAVE_V512
    nb__v512_disabled = true;
#endif
}

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

/* 40,100 inputs from -40 to 40 (a large graph: the parallel path when
 * threads are set), each op against its double formula: within 1e-6
 * relative or 1e-30 absolute (GELU's far tail). */
static void ops_match_double_references(void) {
    enum { N = 40100 }; /* not a multiple of 64: the kernels' tails too */
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

Test(fastmath, activation_ops_match_double_references_over_a_wide_range) { ops_match_double_references(); }

/* The portable kernels, which CPUs without AVX-512 run, the same way. */
Test(fastmath, portable_activation_ops_match_double_references_over_a_wide_range) {
    portable_kernels();
    ops_match_double_references();
}

/* NaN at every position of a 16-lane vector and in the scalar tail comes
 * out NaN, forward and backward; the other elements stay finite. */
static void nan_in_any_lane(void) {
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

Test(fastmath, nan_in_any_lane_comes_out_of_every_activation) { nan_in_any_lane(); }
Test(fastmath, nan_in_any_lane_comes_out_of_every_portable_activation) {
    portable_kernels();
    nan_in_any_lane();
}

/* ---- the AVX-512 versions (ops/simd512.h), which the activation ops run
 * where the CPU has AVX-512: the same scans against libm in double ---- */
#ifdef NB_HAVE_V512

typedef enum vfun { V_EXP, V_EXP_NEG, V_EXPM1, V_SIGMOID, V_TANH, V_SOFTPLUS, V_LOG1P, V_CDF, V_PDF } vfun;

/* f over n floats, n a multiple of 16. */
NB_V512 static void v_apply(vfun f, const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        __m512 r;
        switch (f) {
        case V_EXP: r = nb__v_exp_clamped(v); break;
        case V_EXP_NEG: r = nb__v_exp_neg_clamped(v); break;
        case V_EXPM1: r = nb__v_expm1_clamped(v); break;
        case V_SIGMOID: r = nb__v_sigmoid(v); break;
        case V_TANH: r = nb__v_tanh(v); break;
        case V_SOFTPLUS: r = nb__v_softplus(v); break;
        case V_LOG1P: r = nb__v_log1p_small(v); break;
        case V_CDF: r = nb__v_normal_cdf(v); break;
        default: r = nb__v_normal_pdf(v); break;
        }
        _mm512_storeu_ps(y + i, r);
    }
}

static float v_one(vfun f, float x) {
    float in[16], out[16];
    for (int i = 0; i < 16; i++) in[i] = x;
    v_apply(f, in, out, 16);
    return out[0];
}

static double r_exp_neg(double x) { return exp(-x); }
static double r_softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }

/* As scan, 4096 inputs per call of the vector function. */
static worst vscan(vfun f, double (*ref)(double), double lo, double hi, double step) {
    enum { B = 4096 };
    static float in[B], out[B];
    worst w = {0, 0};
    double x = lo;
    while (x <= hi) {
        size_t n = 0;
        for (; n < B && x <= hi; n++, x += step) in[n] = (float)x;
        for (size_t i = n; i < B; i++) in[i] = (float)lo;
        v_apply(f, in, out, B);
        for (size_t i = 0; i < n; i++) {
            const double want = ref(in[i]), got = out[i];
            if (want == 0.0) continue;
            const double e = fabs(got - want) / fabs(want);
            if (!(e <= w.rel)) w = (worst){e, in[i]};
        }
    }
    return w;
}

#define CHECK_VSCAN(f, ref, lo, hi, step, bound)                                                      \
    do {                                                                                              \
        worst w_ = vscan(f, ref, lo, hi, step);                                                       \
        cr_log_info(#f " on [%g, %g]: worst relative error %.3g at %.9g", (double)(lo), (double)(hi), \
                    w_.rel, w_.at);                                                                   \
        cr_assert(w_.rel < (bound), #f ": relative error %.3g at %.9g > %g", w_.rel, w_.at,          \
                  (double)(bound));                                                                   \
    } while (0)

#define NEED_AVX512()                                                                                 \
    do {                                                                                              \
        if (!nb__v512()) cr_skip_test("no AVX-512 on this CPU: the ops run the portable code");        \
    } while (0)

/* 3.4 float ulps (epsilon 1.19e-7) at most, most of them 2. */
Test(fastmath, avx512_exp_and_expm1_are_within_3e7_relative) {
    NEED_AVX512();
    CHECK_VSCAN(V_EXP, exp, -87.3, 88.5, 1e-4, 2.5e-7);
    CHECK_VSCAN(V_EXP, exp, -1e-3, 1e-3, 1e-8, 2.5e-7);
    CHECK_VSCAN(V_EXP_NEG, r_exp_neg, -88.5, 87.3, 1e-4, 2.5e-7);
    CHECK_VSCAN(V_EXPM1, expm1, -87.3, 88.5, 1e-4, 3e-7);
    CHECK_VSCAN(V_EXPM1, expm1, -1.0, 1.0, 1e-7, 3e-7);
    /* near 0, where exp(x) - 1 would cancel: relative precision kept */
    CHECK_VSCAN(V_EXPM1, expm1, -1e-3, 1e-3, 1e-10, 3e-7);
    CHECK_VSCAN(V_EXPM1, expm1, -1e-30, 1e-30, 1e-33, 3e-7);
}

Test(fastmath, avx512_sigmoid_tanh_softplus_are_within_4e7_relative) {
    NEED_AVX512();
    CHECK_VSCAN(V_SIGMOID, r_sigmoid, -87.0, 87.0, 1e-5, 4e-7);
    CHECK_VSCAN(V_TANH, tanh, -20.0, 20.0, 1e-6, 4e-7);
    CHECK_VSCAN(V_TANH, tanh, -1e-3, 1e-3, 1e-10, 4e-7);
    CHECK_VSCAN(V_TANH, tanh, -1e-30, 1e-30, 1e-33, 4e-7);
    CHECK_VSCAN(V_SOFTPLUS, r_softplus, -87.0, 87.0, 1e-5, 4e-7);
    CHECK_VSCAN(V_LOG1P, log1p, 0.0, 1.0, 1e-7, 4e-7);
}

Test(fastmath, avx512_normal_cdf_and_pdf_are_within_1e6_relative) {
    NEED_AVX512();
    CHECK_VSCAN(V_CDF, r_cdf, -12.9, 10.0, 1e-6, 1e-6);
    CHECK_VSCAN(V_PDF, r_pdf, -13.0, 13.0, 1e-6, 5e-7);
}

Test(fastmath, avx512_extremes_zero_tiny_huge_infinities_and_nan) {
    NEED_AVX512();
    const float z[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f /* denormal */, -1e-40f};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
        const float x = z[i];
        cr_assert_float_eq(v_one(V_EXP, x), 1.0f, 1.2e-7f, "exp(%g)", (double)x);
        cr_assert_float_eq(v_one(V_EXPM1, x), x, 1e-45f, "expm1(%g)", (double)x);
        cr_assert_float_eq(v_one(V_TANH, x), x, 1e-45f, "tanh(%g)", (double)x);
        cr_assert_eq(signbit(v_one(V_TANH, x)), signbit(x), "tanh(%g) has the wrong sign", (double)x);
        cr_assert_float_eq(v_one(V_SIGMOID, x), 0.5f, 1e-7f, "sigmoid(%g)", (double)x);
        cr_assert_float_eq(v_one(V_SOFTPLUS, x), 0.69314718f, 1e-7f, "softplus(%g)", (double)x);
        cr_assert_float_eq(v_one(V_CDF, x), 0.5f, 1e-7f, "cdf(%g)", (double)x);
        cr_assert_float_eq(v_one(V_PDF, x), 0.39894228f, 1e-7f, "pdf(%g)", (double)x);
    }
    const float huge[] = {100.0f, 1e30f, INFINITY};
    for (size_t i = 0; i < 3; i++) {
        const float x = huge[i];
        cr_assert_eq(v_one(V_TANH, x), 1.0f);
        cr_assert_eq(v_one(V_TANH, -x), -1.0f);
        cr_assert_eq(v_one(V_SIGMOID, x), 1.0f);
        const float sn = v_one(V_SIGMOID, -x);
        cr_assert(sn > 0.0f && sn < 1.3e-38f, "sigmoid(%g) = %g", -(double)x, (double)sn);
        cr_assert_eq(v_one(V_SOFTPLUS, x), x, "softplus(%g)", (double)x);
        const float sp = v_one(V_SOFTPLUS, -x);
        cr_assert(sp >= 0.0f && sp < 1.3e-38f, "softplus(%g) = %g", -(double)x, (double)sp);
        cr_assert_eq(v_one(V_CDF, x), 1.0f);
        cr_assert_eq(v_one(V_CDF, -x), 0.0f);
        cr_assert_eq(v_one(V_PDF, x), 0.0f);
        cr_assert_eq(v_one(V_PDF, -x), 0.0f);
    }
    /* the clamped ends: finite, no wrapped exponents */
    cr_assert_float_eq(v_one(V_EXP, 88.5f), (float)exp(88.5), 1e32f);
    cr_assert_float_eq(v_one(V_EXP, -87.3f), (float)exp((double)-87.3f), 1e-44f);
    cr_assert_float_eq(v_one(V_EXPM1, -87.3f), -1.0f, 1e-7f);
    cr_assert_float_eq(v_one(V_EXP_NEG, 87.3f), (float)exp((double)-87.3f), 1e-44f);
    for (int f = V_EXP; f <= V_PDF; f++) cr_assert(isnan(v_one((vfun)f, NAN)), "function %d of NaN", f);
}

#else
Test(fastmath, avx512_versions_are_not_built_here) { cr_log_info("not x86-64: only the portable code"); }
#endif

/* The gradients of the ops whose backward has its own vector kernel
 * (sigmoid, tanh, gelu, swish, softplus), with dy = 1: against their double derivatives, within
 * 1e-6 relative or 1e-30 absolute, on 40,100 inputs from -40 to 40; GELU's
 * and swish's within 2e-7 absolute too, where their derivatives cancel to
 * 0 (Φ(x) + x·φ(x) at x = -0.75, terms of 0.23; s·(1 + x·(1 - s)) at x =
 * -1.28). */
static double d_gelu(double x) { return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI); }
static double d_swish(double x) {
    const double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}
/* e/(1+e)² and 4e/(1+e)² with e = exp(-|x|), exp(-2|x|): no cancellation */
static double d_sigmoid(double x) {
    const double e = exp(-fabs(x));
    return e / ((1.0 + e) * (1.0 + e));
}
static double d_tanh(double x) {
    const double e = exp(-2.0 * fabs(x));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}
static void derivatives_match_double_references(void) {
    enum { N = 40100, K = 5 }; /* not a multiple of 64: the kernels' tails too */
    static const unary_fn dops[K] = {nb_gelu, nb_swish, nb_softplus, nb_sigmoid, nb_tanh};
    static double (*const dref[K])(double) = {d_gelu, d_swish, r_sigmoid, d_sigmoid, d_tanh};
    float *data = malloc(N * sizeof *data), *want = malloc(N * sizeof *want);
    for (int i = 0; i < N; i++) data[i] = -40.0f + 80.0f * (float)i / (float)(N - 1);
    for (int k = 0; k < K; k++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = t_tensor_of("x", 2, (int[]){N / 100, 100}, data);
        nb_node *loss = nb_sum(g, dops[k](g, nb_param(g, t)));
        t_ok(g);
        cr_assert(nb_forward(g, NB_TRAINING) == NB_OK, "%s", nb_graph_error(g));
        nb_backward(g, loss);
        t_ok(g);
        for (int i = 0; i < N; i++) want[i] = (float)dref[k](data[i]);
        nb_assert_near(t->grad, want, (size_t)N, k < 2 ? 2e-7 : 1e-30, 1e-6);
        nb_graph_free(g);
        nb_tensor_free(t);
    }
    free(data);
    free(want);
}
Test(fastmath, activation_derivatives_match_double_references_over_a_wide_range) {
    derivatives_match_double_references();
}
Test(fastmath, portable_activation_derivatives_match_double_references_over_a_wide_range) {
    portable_kernels();
    derivatives_match_double_references();
}
