/* Elementwise functions given as f and f' over arrays (nabla/custom.h's
 * fast path): values and gradients against the same function built from
 * nabla's ops, a gradient check, the same bits on any thread count, nb_vexp
 * against libm, and the function as a registered activation in a model. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/testing.h"

/* Mish: x·tanh(softplus(x)) = x·p/(p + 2), p = e(e + 2), e = exp(x); for
 * large x it is x, for very negative x it underflows to -0. */
static void mish_f(size_t n, const float *x, float *y, void *u) {
    (void)u;
    nb_vexp(n, x, y);
    for (size_t i = 0; i < n; i++) {
        const float e = y[i], p = e * (e + 2);
        y[i] = x[i] > 20 ? x[i] : x[i] * p / (p + 2);
    }
}

/* d/dx x·t(x), t = tanh(softplus(x)): t + x·(1 - t²)·sigmoid(x) */
static void mish_df(size_t n, const float *x, const float *y, const float *dy, float *dx, void *u) {
    (void)y, (void)u;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > 20) {
            dx[i] += dy[i];
            continue;
        }
        const float e = expf(x[i]), p = e * (e + 2), t = p / (p + 2), s = e / (1 + e);
        dx[i] += dy[i] * (t + x[i] * (1 - t * t) * s);
    }
}

static const nb_elementwise_op mish = {"mish_ew", mish_f, mish_df};

static nb_node *mish_from_ops(nb_graph *g, nb_node *x) { return nb_mul(g, x, nb_tanh(g, nb_softplus(g, x))); }

Test(elementwise, mish_as_arrays_equals_mish_from_ops_in_values_and_gradients) {
    const int rows = 64, cols = 50;
    nb_tensor *x = t_tensor("x", 2, (int[]){rows, cols}, -6, 6, 1), *w1, *w2;
    nb_graph *g = nb_graph_new();
    nb_node *px = nb_param(g, x);
    nb_node *a = nb_elementwise(g, &mish, px, NULL), *b = mish_from_ops(g, px);
    /* two losses with the same weights, so each gradient can be compared */
    nb_node *la = t_weighted_sum(g, a, &w1, 9), *lb = t_weighted_sum(g, b, &w2, 9);
    t_ok(g);
    cr_assert_str_eq(nb_node_op(a), "elementwise");
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    for (int i = 0; i < rows * cols; i++)
        cr_assert_float_eq(nb_node_value(a)[i], nb_node_value(b)[i], 2e-6f * (1 + fabsf(nb_node_value(b)[i])),
                           "y[%d] at x = %g", i, x->data[i]);
    float ga[64 * 50];
    cr_assert_eq(nb_backward(g, la), NB_OK);
    memcpy(ga, x->grad, sizeof ga);
    cr_assert_eq(nb_backward(g, lb), NB_OK);
    for (int i = 0; i < rows * cols; i++)
        cr_assert_float_eq(ga[i], x->grad[i], 1e-5f * (1 + fabsf(x->grad[i])), "dx[%d] at x = %g", i, x->data[i]);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w1), nb_tensor_free(w2);
}

Test(elementwise, passes_a_gradient_check) {
    nb_tensor *x = t_tensor("x", 2, (int[]){4, 5}, -3, 3, 2), *w;
    nb_graph *g = nb_graph_new();
    nb_node *loss = t_weighted_sum(g, nb_elementwise(g, &mish, nb_param(g, x), NULL), &w, 3);
    t_ok(g);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w);
}

/* Split in blocks over threads (a parallel loop at this size, and the
 * team's share at a small batch), the bits do not change. */
static void run_at(int threads, int batch, float *y, float *dx) {
    nb_set_num_threads(threads);
    nb_tensor *x = t_tensor("x", 2, (int[]){batch, 1000}, -5, 5, 4), *w;
    nb_graph *g = nb_graph_new();
    nb_node *loss = t_weighted_sum(g, nb_elementwise(g, &mish, nb_param(g, x), NULL), &w, 5);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    memcpy(dx, x->grad, sizeof(float) * (size_t)batch * 1000);
    y[0] = nb_node_value(loss)[0];
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w);
}

Test(elementwise, the_same_bits_on_one_and_two_threads) {
    static float dx1[200 * 1000], dx2[200 * 1000];
    for (int batch = 8; batch <= 200; batch += 192) {
        float y1, y2;
        run_at(1, batch, &y1, dx1);
        run_at(2, batch, &y2, dx2);
        cr_assert_eq(memcmp(dx1, dx2, sizeof(float) * (size_t)batch * 1000), 0, "batch %d", batch);
    }
}

Test(elementwise, nb_vexp_is_within_2_5e_7_of_exp_and_works_in_place) {
    enum { N = 4001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    nb_vexp(N, x, y);
    for (int i = 0; i < N; i++) {
        const double want = exp((double)x[i]);
        cr_assert(fabs(y[i] - want) <= 2.5e-7 * want, "exp(%g) = %g, want %g", x[i], y[i], want);
    }
    nb_vexp(N, x, x);
    cr_assert_eq(memcmp(x, y, sizeof x), 0);
}

Test(elementwise, a_missing_callback_is_refused_naming_the_op) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){2, 3});
    const nb_elementwise_op bad = {"half", mish_f, NULL};
    cr_assert_null(nb_elementwise(g, &bad, x, NULL));
    cr_assert(strstr(nb_graph_error(g), "elementwise: op half is NULL or lacks f or df"), "%s", nb_graph_error(g));
    nb_graph_free(g);
    cr_assert_eq(nb_activation_register_elementwise(&bad, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "lacks f or df"), "%s", nb_last_error());
}

/* Registered as an activation: a Dense layer uses it by name, the model
 * trains, saves the name and loads back to the same predictions. */
Test(elementwise, registered_as_an_activation_it_trains_saves_and_loads) {
    cr_assert_eq(nb_activation_register_elementwise(&mish, NULL), NB_OK, "%s", nb_last_error());
    nb_model *m = nb_model_new(1, (int[]){4}, 1);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 8, .activation = "mish_ew"});
    cr_assert_not_null(nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3}), "%s", nb_last_error());
    float x[60 * 4], y[60];
    for (int i = 0; i < 60; i++) {
        y[i] = (float)(i % 3);
        for (int k = 0; k < 4; k++) x[i * 4 + k] = (k == i % 3 ? 1.0f : 0.0f) + 0.1f * (float)((i * 7 + k) % 5);
    }
    nb_dataset d = {.x = x, .y = y, .n = 60, .dim = 4, .rows = 1, .cols = 4, .n_classes = 3};
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 30, o.verbose = 0, o.optimizer = nb_optimizer_defaults(NB_ADAM), o.optimizer.lr = 0.02f;
    double acc;
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_evaluate(m, &d, 16, NULL, &acc), NB_OK);
    cr_assert(acc > 0.9, "accuracy %g", acc);
    char path[] = "/tmp/nabla-ew-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    nb_model *back = nb_model_load(path);
    cr_assert_not_null(back, "%s", nb_last_error());
    float p[180], q[180];
    cr_assert_eq(nb_predict(m, &d, 16, p), NB_OK);
    cr_assert_eq(nb_predict(back, &d, 16, q), NB_OK);
    cr_assert_eq(memcmp(p, q, sizeof p), 0);
    nb_model_free(back), nb_model_free(m);
    unlink(path);
}
