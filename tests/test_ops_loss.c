/* losses: softmax_cross_entropy, bce_with_logits, mse, huber. Values
 * against double-precision references, huge logits, gradients (to the
 * logits/predictions and, for the elementwise losses, to the targets), bad
 * labels caught at run time, shape and argument errors, batch changes, and
 * results independent of the thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* ---- references, in double ---- */

static double ref_sce(const float *x, const float *labels, int b, int c) {
    double total = 0.0;
    for (int r = 0; r < b; r++) {
        const float *xr = x + r * c;
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < c; j++) m = fmax(m, xr[j]);
        for (int j = 0; j < c; j++) s += exp((double)xr[j] - m);
        total += m + log(s) - xr[(int)labels[r]];
    }
    return total / b;
}

/* d mean-loss / d x for dy = 1 */
static void ref_sce_grad(const float *x, const float *labels, int b, int c, double *dx) {
    for (int r = 0; r < b; r++) {
        const float *xr = x + r * c;
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < c; j++) m = fmax(m, xr[j]);
        for (int j = 0; j < c; j++) s += exp((double)xr[j] - m);
        for (int j = 0; j < c; j++)
            dx[r * c + j] = (exp((double)xr[j] - m) / s - (j == (int)labels[r])) / b;
    }
}

enum kind { BCE, MSE, HUBER };

static double ref_term(enum kind k, double a, double t, double delta) {
    switch (k) {
    case BCE: return fmax(a, 0.0) - a * t + log(1.0 + exp(-fabs(a)));
    case MSE: return (a - t) * (a - t);
    default: {
        double d = fabs(a - t);
        return d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
    }
    }
}

/* d term / d a (the target's is the negation for mse and huber, -a for bce) */
static double ref_dterm(enum kind k, double a, double t, double delta) {
    switch (k) {
    case BCE: return 1.0 / (1.0 + exp(-a)) - t;
    case MSE: return 2.0 * (a - t);
    default: return fmax(-delta, fmin(delta, a - t));
    }
}

static double ref_pair(enum kind k, const float *a, const float *t, size_t n, double delta) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += ref_term(k, a[i], t[i], delta);
    return s / (double)n;
}

static nb_node *make_pair(nb_graph *g, enum kind k, nb_node *a, nb_node *t, float delta) {
    switch (k) {
    case BCE: return nb_bce_with_logits(g, a, t);
    case MSE: return nb_mse(g, a, t);
    default: return nb_huber(g, a, t, delta);
    }
}

static void assert_scalar(const nb_node *loss) {
    nb_shape s = nb_node_shape(loss);
    cr_assert_eq(s.rank, 0, "a loss is rank 0, got rank %d", s.rank);
    cr_assert_eq(nb_node_size(loss), 1);
}

static void assert_error(nb_graph *g, const char *want) {
    cr_assert_eq(nb_graph_status(g), NB_ERROR, "expected an error containing \"%s\"", want);
    cr_assert(strstr(nb_graph_error(g), want), "error \"%s\" lacks \"%s\"", nb_graph_error(g), want);
}

/* ---- softmax cross-entropy ---- */

static void check_sce(bool labels_2d) {
    enum { B = 6, C = 5 };
    const float labels[B] = {0, 4, 2, 2, 1, 3};
    nb_tensor *x = t_tensor("logits", 2, (int[]){B, C}, -3, 3, 41), *w;
    nb_tensor *lt = labels_2d ? t_tensor_of("labels", 2, (int[]){B, 1}, labels)
                              : t_tensor_of("labels", 1, (int[]){B}, labels);
    nb_graph *g = nb_graph_new();
    nb_node *loss = nb_softmax_cross_entropy(g, nb_param(g, x), nb_constant(g, lt));
    nb_node *top = t_weighted_sum(g, loss, &w, 42);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    assert_scalar(loss);
    float want = (float)ref_sce(x->data, labels, B, C);
    nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-5);

    nb_backward(g, loss);
    t_ok(g);
    double dx[B * C];
    float dxf[B * C];
    ref_sce_grad(x->data, labels, B, C, dx);
    for (int i = 0; i < B * C; i++) dxf[i] = (float)dx[i];
    nb_assert_near(x->grad, dxf, B * C, 1e-6, 1e-4);
    /* tolerance 1e-2: smooth in the logits */
    nb_assert_gradcheck(g, top, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(lt);
    nb_tensor_free(w);
}

Test(loss, sce_forward_matches_reference_and_gradcheck) { check_sce(false); }
Test(loss, sce_accepts_labels_of_shape_B_by_1) { check_sce(true); }

Test(loss, sce_huge_logits_stay_finite_and_correct) {
    const float vals[] = {1000, -1000, 0, /**/ -1000, 1000, 0, /**/ 1000, 1000, 1000};
    const float labels[] = {0, 0, 2};
    nb_tensor *x = t_tensor_of("logits", 2, (int[]){3, 3}, vals);
    nb_tensor *lt = t_tensor_of("labels", 1, (int[]){3}, labels);
    nb_graph *g = nb_graph_new();
    nb_graph_check_finite(g, true);
    nb_node *loss = nb_softmax_cross_entropy(g, nb_param(g, x), nb_constant(g, lt));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    /* rows: ~0, 2000, log 3 */
    float want = (float)((0.0 + 2000.0 + log(3.0)) / 3.0);
    nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-6);
    const float third = 1.0f / 3, ninth = 1.0f / 9;
    const float gwant[] = {0, 0, 0, -third, third, 0, ninth, ninth, ninth - third};
    nb_assert_near(x->grad, gwant, 9, 1e-6, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(lt);
}

/* A bad label at row 3 stops the forward pass with a message naming it. */
static void check_bad_label(float bad, const char *shown) {
    enum { B = 5, C = 10 };
    float labels[B] = {0, 9, 4, bad, 1};
    nb_tensor *x = t_tensor("logits", 2, (int[]){B, C}, -1, 1, 51);
    nb_graph *g = nb_graph_new();
    nb_node *lab = nb_input(g, "labels", 1, (int[]){B});
    nb_node *loss = nb_softmax_cross_entropy(g, nb_param(g, x), lab);
    cr_assert_not_null(loss, "%s", nb_graph_error(g));
    nb_feed(g, lab, labels, B);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    char want[128];
    snprintf(want, sizeof want, "softmax_cross_entropy: label %s at row 3 is not a class in [0,10)", shown);
    assert_error(g, want);
    nb_graph_free(g);
    nb_tensor_free(x);
}

Test(loss, sce_label_past_the_last_class_is_a_runtime_error) { check_bad_label(12.0f, "12"); }
Test(loss, sce_label_equal_to_the_class_count_is_a_runtime_error) { check_bad_label(10.0f, "10"); }
Test(loss, sce_negative_label_is_a_runtime_error) { check_bad_label(-1.0f, "-1"); }
Test(loss, sce_fractional_label_is_a_runtime_error) { check_bad_label(2.5f, "2.5"); }
Test(loss, sce_nan_label_is_a_runtime_error) { check_bad_label(NAN, "nan"); }

Test(loss, sce_shape_errors_name_the_shapes) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 10});
    cr_assert_null(nb_softmax_cross_entropy(g, x, nb_input(g, "y", 1, (int[]){5})));
    cr_assert_str_eq(nb_graph_error(g),
                     "softmax_cross_entropy: labels must be [B] or [B,1] for logits [4,10], got [5]");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 10});
    cr_assert_null(nb_softmax_cross_entropy(g, x, nb_input(g, "y", 2, (int[]){4, 2})));
    assert_error(g, "softmax_cross_entropy: labels must be [B] or [B,1] for logits [4,10], got [4,2]");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 3, (int[]){4, 10, 2});
    cr_assert_null(nb_softmax_cross_entropy(g, x, nb_input(g, "y", 1, (int[]){4})));
    assert_error(g, "softmax_cross_entropy: logits must be [B,C], got [4,10,2]");
    nb_graph_free(g);

    g = nb_graph_new();
    cr_assert_null(nb_softmax_cross_entropy(g, NULL, nb_input(g, "y", 1, (int[]){4})));
    assert_error(g, "softmax_cross_entropy");
    nb_graph_free(g);
}

Test(loss, sce_labels_get_no_gradient_even_when_trainable) {
    const float labels[] = {1, 0, 2};
    nb_tensor *x = t_tensor("logits", 2, (int[]){3, 3}, -1, 1, 61);
    nb_tensor *lt = t_tensor_of("labels", 1, (int[]){3}, labels); /* trainable by default */
    nb_graph *g = nb_graph_new();
    nb_node *loss = nb_softmax_cross_entropy(g, nb_param(g, x), nb_param(g, lt));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    for (int i = 0; i < 3; i++) cr_assert_eq(lt->grad[i], 0.0f);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(lt);
}

/* Built for batch 8, fed 5: the loss is the mean over the 5 fed rows, and
 * so is the gradient of a bias shared by the rows. */
Test(loss, sce_batch_follows_the_feed) {
    enum { B = 8, FED = 5, C = 4 };
    float x[B * C], labels[B] = {3, 0, 1, 1, 2, 0, 0, 0};
    for (int i = 0; i < B * C; i++) x[i] = (float)((i * 29) % 17) / 5.0f - 1.7f;
    nb_tensor *bias = t_tensor("bias", 1, (int[]){C}, -0.5f, 0.5f, 71);
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, C});
    nb_node *lab = nb_input(g, "labels", 1, (int[]){B});
    nb_node *loss = nb_softmax_cross_entropy(g, nb_add(g, in, nb_param(g, bias)), lab);
    for (int pass = 0; pass < 2; pass++) {
        int fed = pass == 0 ? FED : B; /* shrink, then grow back */
        nb_feed(g, in, x, fed);
        nb_feed(g, lab, labels, fed);
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
        t_ok(g);
        float z[B * C];
        for (int r = 0; r < fed; r++)
            for (int j = 0; j < C; j++) z[r * C + j] = x[r * C + j] + bias->data[j];
        float want = (float)ref_sce(z, labels, fed, C);
        nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-5);
        double dz[B * C], gb[C] = {0};
        ref_sce_grad(z, labels, fed, C, dz);
        for (int r = 0; r < fed; r++)
            for (int j = 0; j < C; j++) gb[j] += dz[r * C + j];
        float gbf[C];
        for (int j = 0; j < C; j++) gbf[j] = (float)gb[j];
        nb_assert_near(bias->grad, gbf, C, 1e-6, 1e-4);
    }
    nb_feed(g, in, x, FED);
    nb_feed(g, lab, labels, FED);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(bias);
}

/* ---- bce_with_logits, mse, huber ---- */

/* pred and target both trainable: values against the reference, both
 * gradients against the reference, then gradcheck through a weighted sum. */
static void check_pair(enum kind k, const float *a_vals, const float *t_vals, int rank, const int *dims,
                       float delta, double tol) {
    nb_tensor *a = t_tensor_of("pred", rank, dims, a_vals), *t = t_tensor_of("target", rank, dims, t_vals);
    size_t n = a->size;
    nb_tensor *w;
    nb_graph *g = nb_graph_new();
    nb_node *loss = make_pair(g, k, nb_param(g, a), nb_param(g, t), delta);
    nb_node *top = t_weighted_sum(g, loss, &w, 81);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    assert_scalar(loss);
    float want = (float)ref_pair(k, a_vals, t_vals, n, delta);
    nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-5);
    float *ga = malloc(n * sizeof *ga), *gt = malloc(n * sizeof *gt);
    for (size_t i = 0; i < n; i++) {
        double d = ref_dterm(k, a_vals[i], t_vals[i], delta) / (double)n;
        ga[i] = (float)d;
        gt[i] = (float)(k == BCE ? -(double)a_vals[i] / (double)n : -d);
    }
    nb_assert_near(a->grad, ga, n, 1e-6, 1e-4);
    nb_assert_near(t->grad, gt, n, 1e-6, 1e-4);
    nb_assert_gradcheck(g, top, tol);
    free(ga);
    free(gt);
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

/* Fills a [n] with uniform values in [lo,hi) from seed. */
static float *uniform(size_t n, float lo, float hi, uint64_t seed) {
    nb_tensor *tmp = t_tensor("tmp", 1, (int[]){(int)n}, lo, hi, seed);
    float *v = malloc(n * sizeof *v);
    memcpy(v, tmp->data, n * sizeof *v);
    nb_tensor_free(tmp);
    return v;
}

Test(loss, bce_forward_matches_reference_and_gradcheck) {
    float *x = uniform(12, -4, 4, 91), *t = uniform(12, 0, 1, 92);
    /* tolerance 1e-2: smooth in both logits and targets */
    check_pair(BCE, x, t, 2, (int[]){4, 3}, 0, 1e-2);
    free(x);
    free(t);
}

Test(loss, bce_of_rank3_and_hard_targets) {
    float *x = uniform(24, -6, 6, 93), t[24];
    for (int i = 0; i < 24; i++) t[i] = (float)(i % 2);
    check_pair(BCE, x, t, 3, (int[]){2, 3, 4}, 0, 1e-2);
    free(x);
}

Test(loss, bce_huge_logits_stay_finite_and_correct) {
    const float x[] = {1000, -1000, 1000, -1000, 0, 30};
    const float t[] = {0, 0, 1, 1, 0.5f, 0.25f};
    nb_tensor *xt = t_tensor_of("x", 1, (int[]){6}, x), *tt = t_tensor_of("t", 1, (int[]){6}, t);
    nb_graph *g = nb_graph_new();
    nb_graph_check_finite(g, true);
    nb_node *loss = nb_bce_with_logits(g, nb_param(g, xt), nb_param(g, tt));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    /* 1000, 0, 0, 1000, log 2, 30·0.75 + log1p(e^-30) */
    float want = (float)((2000.0 + log(2.0) + 22.5 + log1p(exp(-30.0))) / 6.0);
    nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-6);
    const float gx[] = {1.0f / 6, 0, 0, -1.0f / 6, 0, 0.75f / 6};
    nb_assert_near(xt->grad, gx, 6, 1e-6, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(xt);
    nb_tensor_free(tt);
}

Test(loss, mse_forward_matches_reference_and_gradcheck) {
    float *a = uniform(12, -2, 2, 101), *t = uniform(12, -2, 2, 102);
    /* tolerance 1e-2 (quadratic: central differences are exact up to rounding) */
    check_pair(MSE, a, t, 2, (int[]){4, 3}, 0, 1e-2);
    free(a);
    free(t);
}

Test(loss, mse_of_a_vector) {
    float *a = uniform(7, -2, 2, 103), *t = uniform(7, -2, 2, 104);
    check_pair(MSE, a, t, 1, (int[]){7}, 0, 1e-2);
    free(a);
    free(t);
}

/* Differences on both sides of delta, none within 0.1 of ±delta (the kink). */
static void check_huber(float delta) {
    const float d[12] = {0.3f, -0.6f, 1.7f, -2.4f, 0.05f, -1.3f, 0.85f, -0.2f, 3.1f, -0.75f, 1.25f, 0.0f};
    float *a = uniform(12, -2, 2, 111), t[12];
    for (int i = 0; i < 12; i++) {
        float di = d[i] * delta;
        t[i] = a[i] - di;
    }
    /* tolerance 1e-2: piecewise smooth away from the kinks */
    check_pair(HUBER, a, t, 2, (int[]){3, 4}, delta, 1e-2);
    free(a);
}

Test(loss, huber_forward_matches_reference_and_gradcheck) { check_huber(1.0f); }
Test(loss, huber_with_a_small_delta) { check_huber(0.5f); }
Test(loss, huber_with_a_large_delta) { check_huber(2.0f); }

Test(loss, pair_losses_name_the_differing_shapes) {
    const char *names[] = {"bce_with_logits", "mse", "huber"};
    for (int k = BCE; k <= HUBER; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *a = nb_input(g, "a", 2, (int[]){4, 3}), *b = nb_input(g, "b", 2, (int[]){4, 2});
        cr_assert_null(make_pair(g, (enum kind)k, a, b, 1.0f));
        char want[128];
        snprintf(want, sizeof want, "%s: shapes differ: [4,3] and [4,2]", names[k]);
        cr_assert_str_eq(nb_graph_error(g), want);
        nb_graph_free(g);

        /* same size, different shape: still an error */
        g = nb_graph_new();
        a = nb_input(g, "a", 2, (int[]){4, 3});
        b = nb_input(g, "b", 2, (int[]){3, 4});
        cr_assert_null(make_pair(g, (enum kind)k, a, b, 1.0f));
        assert_error(g, "shapes differ: [4,3] and [3,4]");
        nb_graph_free(g);

        g = nb_graph_new();
        cr_assert_null(make_pair(g, (enum kind)k, NULL, nb_input(g, "b", 1, (int[]){3}), 1.0f));
        assert_error(g, names[k]);
        nb_graph_free(g);
    }
}

Test(loss, huber_rejects_a_bad_delta) {
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 5; i++) {
        nb_graph *g = nb_graph_new();
        nb_node *a = nb_input(g, "a", 2, (int[]){4, 3}), *b = nb_input(g, "b", 2, (int[]){4, 3});
        cr_assert_null(nb_huber(g, a, b, bad[i]));
        assert_error(g, "huber: delta");
        nb_graph_free(g);
    }
    cr_assert_null(nb_huber(NULL, NULL, NULL, 1.0f)); /* no graph: nothing to report into */
}

/* Built for batch 8, fed 5: the mean is over the 5·F fed elements, for the
 * loss and for the gradient of a bias shared by the rows. */
static void check_pair_batch_change(enum kind k) {
    enum { B = 8, FED = 5, F = 3 };
    float a[B * F], t[B * F];
    for (int i = 0; i < B * F; i++) {
        a[i] = (float)((i * 13) % 11) / 4.0f - 1.2f;
        t[i] = k == BCE ? (float)((i * 7) % 5) / 4.0f : (float)((i * 5) % 9) / 3.0f - 1.1f;
    }
    nb_tensor *bias = t_tensor("bias", 1, (int[]){F}, -0.3f, 0.3f, 121);
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "a", 2, (int[]){B, F}), *tin = nb_input(g, "t", 2, (int[]){B, F});
    nb_node *loss = make_pair(g, k, nb_add(g, in, nb_param(g, bias)), tin, 1.0f);
    nb_feed(g, in, a, FED);
    nb_feed(g, tin, t, FED);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    float z[FED * F];
    double gb[F] = {0};
    for (int r = 0; r < FED; r++)
        for (int j = 0; j < F; j++) {
            int i = r * F + j;
            z[i] = a[i] + bias->data[j];
            gb[j] += ref_dterm(k, z[i], t[i], 1.0) / (FED * F);
        }
    float want = (float)ref_pair(k, z, t, FED * F, 1.0);
    nb_assert_near(nb_node_value(loss), &want, 1, 1e-6, 1e-5);
    float gbf[F];
    for (int j = 0; j < F; j++) gbf[j] = (float)gb[j];
    nb_assert_near(bias->grad, gbf, F, 1e-6, 1e-4);
    nb_graph_free(g);
    nb_tensor_free(bias);
}

Test(loss, bce_batch_follows_the_feed) { check_pair_batch_change(BCE); }
Test(loss, mse_batch_follows_the_feed) { check_pair_batch_change(MSE); }
Test(loss, huber_batch_follows_the_feed) { check_pair_batch_change(HUBER); }

/* ---- thread independence on inputs large enough for the parallel path ---- */

enum { LB = 1024, LC = 64 };

/* Loss k (or sce for k < 0) of large inputs with the given thread count:
 * its value and the prediction's gradient. */
static float run_large(int k, int threads, float *grad) {
    nb_set_num_threads(threads);
    nb_tensor *a = t_tensor("a", 2, (int[]){LB, LC}, -4, 4, 131);
    nb_tensor *t = k < 0 ? nb_tensor_new(1, (int[]){LB}) : t_tensor("t", 2, (int[]){LB, LC}, 0, 1, 132);
    if (k < 0)
        for (int r = 0; r < LB; r++) t->data[r] = (float)((r * 7) % LC);
    t->trainable = false;
    nb_graph *g = nb_graph_new();
    nb_node *an = nb_param(g, a), *tn = nb_constant(g, t);
    nb_node *loss = k < 0 ? nb_softmax_cross_entropy(g, an, tn) : make_pair(g, (enum kind)k, an, tn, 0.7f);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    float v = nb_node_value(loss)[0];
    memcpy(grad, a->grad, a->size * sizeof(float));
    if (k < 0) {
        cr_assert(fabs(v - ref_sce(a->data, t->data, LB, LC)) < 1e-5 * fabs(v));
    } else {
        cr_assert(fabs(v - ref_pair((enum kind)k, a->data, t->data, a->size, 0.7)) < 1e-5 * fabs(v));
    }
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(t);
    return v;
}

static void check_thread_independence(int k) {
    size_t n = (size_t)LB * LC;
    float *g1 = malloc(n * sizeof(float)), *g4 = malloc(n * sizeof(float));
    int before = nb_get_num_threads();
    float v1 = run_large(k, 1, g1), v4 = run_large(k, 4, g4);
    nb_set_num_threads(before);
    cr_assert(memcmp(&v1, &v4, sizeof v1) == 0, "loss %.9g with 1 thread, %.9g with 4", v1, v4);
    cr_assert(memcmp(g1, g4, n * sizeof(float)) == 0, "gradients depend on the thread count");
    free(g1);
    free(g4);
}

Test(loss, sce_large_input_is_thread_independent) { check_thread_independence(-1); }
Test(loss, bce_large_input_is_thread_independent) { check_thread_independence(BCE); }
Test(loss, mse_large_input_is_thread_independent) { check_thread_independence(MSE); }
Test(loss, huber_large_input_is_thread_independent) { check_thread_independence(HUBER); }
