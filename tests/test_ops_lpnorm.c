/* tests/test_ops_lpnorm.c — l1_norm, l2_norm and sum_squares. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

typedef nb_node *(*norm_fn)(nb_graph *, nb_node *);

enum { L1, L2, SQ };
static const norm_fn fns[] = {nb_l1_norm, nb_l2_norm, nb_sum_squares};
static const char *const names[] = {"l1_norm", "l2_norm", "sum_squares"};

static double reference(int kind, const float *x, size_t n) {
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += kind == L1 ? fabs((double)x[i]) : (double)x[i] * x[i];
    return kind == L2 ? sqrt(acc) : acc;
}

/* Uniform magnitudes in [0.1, 1) with random signs: away from the kink of
 * |x| at 0 by more than the gradient check's step. */
static nb_tensor *away_from_zero(const char *name, int rank, const int *dims, uint64_t seed) {
    nb_tensor *t = t_tensor(name, rank, dims, -1, 1, seed);
    for (size_t i = 0; i < t->size; i++) {
        float m = 0.1f + 0.9f * fabsf(t->data[i]);
        t->data[i] = t->data[i] < 0 ? -m : m;
    }
    return t;
}

Test(lpnorm, forward_matches_reference) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = t_tensor("x", 3, (int[]){3, 4, 5}, -2, 2, 30 + (uint64_t)kind);
        nb_node *y = fns[kind](g, nb_param(g, t));
        t_ok(g);
        cr_assert_str_eq(nb_node_op(y), names[kind]);
        cr_assert_eq(nb_node_shape(y).rank, 0);
        cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
        float expect = (float)reference(kind, t->data, t->size);
        nb_assert_near(nb_node_value(y), &expect, 1, 1e-6, 1e-6);
        nb_graph_free(g);
        nb_tensor_free(t);
    }
}

Test(lpnorm, forward_hand_values) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){4}, (float[]){3, -4, 0, 12});
    nb_node *x = nb_param(g, t);
    nb_node *l1 = nb_l1_norm(g, x), *l2 = nb_l2_norm(g, x), *sq = nb_sum_squares(g, x);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_node_value(l1)[0], 19.0f);
    cr_assert_eq(nb_node_value(l2)[0], 13.0f);
    cr_assert_eq(nb_node_value(sq)[0], 169.0f);
    nb_graph_free(g);
    nb_tensor_free(t);
}

/* Many small terms after a large one: a float accumulator would drop them. */
Test(lpnorm, long_sums_accumulate_in_double) {
    enum { N = 1 << 20 };
    nb_graph *g = nb_graph_new();
    nb_tensor *t = nb_tensor_new(1, (int[]){N});
    t->data[0] = 4096.0f;
    for (int i = 1; i < N; i++) t->data[i] = (i & 1) ? 1e-3f : -1e-3f;
    nb_node *x = nb_param(g, t);
    nb_node *l1 = nb_l1_norm(g, x), *sq = nb_sum_squares(g, x);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    float e1 = (float)(4096.0 + (double)(N - 1) * (double)1e-3f);
    float e2 = (float)(4096.0 * 4096.0 + (double)(N - 1) * (double)1e-3f * (double)1e-3f);
    nb_assert_near(nb_node_value(l1), &e1, 1, 0, 1e-6);
    nb_assert_near(nb_node_value(sq), &e2, 1, 0, 1e-6);
    /* and the elementwise backward over as many elements */
    cr_assert_eq(nb_backward(g, l1), NB_OK);
    for (int i = 0; i < N; i++) cr_assert_eq(t->grad[i], i == 0 || (i & 1) ? 1.0f : -1.0f, "grad[%d]", i);
    nb_graph_free(g);
    nb_tensor_free(t);
}

Test(lpnorm, gradients_match_formulas) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = away_from_zero("x", 2, (int[]){3, 4}, 40 + (uint64_t)kind);
        nb_node *loss = fns[kind](g, nb_param(g, t));
        t_ok(g);
        cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
        cr_assert_eq(nb_backward(g, loss), NB_OK);
        double norm = reference(L2, t->data, t->size);
        float expect[12];
        for (int i = 0; i < 12; i++) {
            double x = t->data[i];
            expect[i] = (float)(kind == L1 ? (x > 0 ? 1.0 : -1.0) : kind == L2 ? x / norm : 2.0 * x);
        }
        nb_assert_near(t->grad, expect, 12, 1e-6, 1e-5);
        nb_graph_free(g);
        nb_tensor_free(t);
    }
}

Test(lpnorm, gradcheck) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = away_from_zero("x", 2, (int[]){4, 5}, 50 + (uint64_t)kind), *w;
        /* a norm of a product, so the norm's gradient meets a non-trivial one */
        nb_tensor *c = t_tensor("c", 1, (int[]){5}, 0.5f, 1.5f, 60);
        c->trainable = false;
        nb_node *y = fns[kind](g, nb_mul(g, nb_param(g, t), nb_constant(g, c)));
        nb_node *loss = t_weighted_sum(g, y, &w, 70);
        t_ok(g);
        cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
        nb_assert_gradcheck(g, loss, 1e-2);
        nb_graph_free(g);
        nb_tensor_free(t);
        nb_tensor_free(c);
        nb_tensor_free(w);
    }
}

Test(lpnorm, zero_input_gives_zero_gradient) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *t = nb_tensor_new(2, (int[]){2, 3});
        nb_node *loss = fns[kind](g, nb_param(g, t));
        nb_graph_check_finite(g, true);
        cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
        cr_assert_eq(nb_node_value(loss)[0], 0.0f);
        cr_assert_eq(nb_backward(g, loss), NB_OK, "%s: %s", names[kind], nb_graph_error(g));
        for (int i = 0; i < 6; i++) cr_assert_eq(t->grad[i], 0.0f, "%s: grad[%d] = %g", names[kind], i, t->grad[i]);
        nb_graph_free(g);
        nb_tensor_free(t);
    }
}

/* A norm of a tiny vector: the gradient x/||x|| stays finite and of norm 1. */
Test(lpnorm, l2_gradient_of_tiny_vector_is_finite) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor_of("x", 1, (int[]){2}, (float[]){3e-39f, -4e-39f});
    nb_node *loss = nb_l2_norm(g, nb_param(g, t));
    nb_graph_check_finite(g, true);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK, "%s", nb_graph_error(g));
    float expect[2] = {0.6f, -0.8f};
    nb_assert_near(t->grad, expect, 2, 1e-5, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(t);
}

Test(lpnorm, follows_the_batch) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", 2, (int[]){8, 3});
        nb_node *y = fns[kind](g, x);
        t_ok(g);
        float data[24];
        for (int i = 0; i < 24; i++) data[i] = 0.1f * (float)i - 1.0f;
        nb_feed(g, x, data, 8);
        cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK);
        nb_feed(g, x, data, 5);
        cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK);
        float expect = (float)reference(kind, data, 15);
        nb_assert_near(nb_node_value(y), &expect, 1, 1e-6, 1e-6);
        nb_graph_free(g);
    }
}

Test(lpnorm, bad_args) {
    for (int kind = L1; kind <= SQ; kind++) {
        nb_graph *g = nb_graph_new();
        cr_assert_null(fns[kind](g, NULL));
        cr_assert_eq(nb_graph_status(g), NB_ERROR);
        cr_assert(strstr(nb_graph_error(g), names[kind]), "%s", nb_graph_error(g));
        nb_graph_free(g);

        g = nb_graph_new();
        nb_graph *other = nb_graph_new();
        nb_node *y = nb_input(other, "y", 1, (int[]){2});
        cr_assert_null(fns[kind](g, y));
        cr_assert(strstr(nb_graph_error(g), names[kind]), "%s", nb_graph_error(g));
        cr_assert(strstr(nb_graph_error(g), "another graph"), "%s", nb_graph_error(g));
        nb_graph_free(g);
        nb_graph_free(other);
    }
}
