/* User-defined ops: they plan, follow the batch, backpropagate and pass
 * gradcheck like built-in ones. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

static int same_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}

static void cube_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                     void *u) {
    (void)n, (void)s, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = in[0][i] * in[0][i] * in[0][i];
}

static void cube_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                     const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) din[0][i] += 3 * in[0][i] * in[0][i] * dy[i];
}

static const nb_custom_op cube = {"cube", same_shape, cube_fwd, cube_bwd};

/* used by test_graph.c: the backward of x^2 given as x instead of 2x */
static void square_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                       void *u) {
    (void)n, (void)s, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = in[0][i] * in[0][i];
}
static void wrong_square_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                             const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) din[0][i] += in[0][i] * dy[i];
}
static const nb_custom_op wrong_square = {"wrong_square", same_shape, square_fwd, wrong_square_bwd};
const nb_custom_op *t_wrong_square(void) { return &wrong_square; }

/* a·x + b with a scalar weight a held in user data and b a [F] input */
typedef struct { float a; } affine_data;

static int affine_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u;
    if (in[1].rank != 1 || in[1].dim[0] != in[0].dim[in[0].rank - 1]) {
        snprintf(err, len, "bias must be [%d]", in[0].dim[in[0].rank - 1]);
        return 1;
    }
    *out = in[0];
    return 0;
}

static void affine_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                       void *u) {
    (void)n;
    float a = ((affine_data *)u)->a;
    size_t f = (size_t)s[1].dim[0];
    for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = a * in[0][i] + in[1][i % f];
}

static void affine_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                       const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)in, (void)y;
    float a = ((affine_data *)u)->a;
    size_t f = (size_t)s[1].dim[0];
    for (size_t i = 0; i < nb_shape_size(ys); i++) {
        if (din[0]) din[0][i] += a * dy[i];
        if (din[1]) din[1][i % f] += dy[i];
    }
}

static const nb_custom_op affine = {"affine", affine_shape, affine_fwd, affine_bwd};

Test(custom, cube_values_and_gradient) {
    nb_tensor *x = t_tensor("x", 2, (int[]){3, 4}, -1, 1, 1), *w;
    nb_graph *g = nb_graph_new();
    nb_node *px = nb_param(g, x);
    nb_node *y = nb_custom(g, &cube, 1, &px, NULL);
    nb_node *loss = t_weighted_sum(g, y, &w, 2);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    cr_assert(strncmp(nb_node_name(y), "cube#", 5) == 0, "%s", nb_node_name(y));
    cr_assert_str_eq(nb_node_op(y), "custom");
    float ref[12];
    for (int i = 0; i < 12; i++) ref[i] = x->data[i] * x->data[i] * x->data[i];
    nb_assert_near(nb_node_value(y), ref, 12, 1e-6, 1e-6);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

Test(custom, two_inputs_user_data_and_batch_changes) {
    affine_data d = {.a = -1.5f};
    nb_tensor *b = t_tensor("b", 1, (int[]){3}, -1, 1, 3);
    float x[4 * 3];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){4, 3});
    nb_node *ins[2] = {in, nb_param(g, b)};
    nb_node *y = nb_custom(g, &affine, 2, ins, &d);
    nb_node *loss = nb_sum(g, y);
    nb_feed(g, in, x, 2);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_eq(nb_node_shape(y).dim[0], 2);
    for (int i = 0; i < 6; i++) cr_assert_float_eq(nb_node_value(y)[i], -1.5f * x[i] + b->data[i % 3], 1e-6);
    for (int j = 0; j < 3; j++) cr_assert_float_eq(b->grad[j], 2.0f, 1e-6, "two rows of ones");
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(b);
}

Test(custom, shape_callback_errors_name_the_op) {
    affine_data d = {.a = 1};
    nb_graph *g = nb_graph_new();
    nb_node *ins[2] = {nb_input(g, "x", 2, (int[]){4, 3}), nb_input(g, "b", 1, (int[]){4})};
    cr_assert_null(nb_custom(g, &affine, 2, ins, &d));
    cr_assert_str_eq(nb_graph_error(g), "affine: bias must be [3]");
    nb_graph_free(g);
}

Test(custom, missing_callbacks_and_bad_counts_are_refused) {
    nb_custom_op broken = {"broken", same_shape, cube_fwd, NULL};
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 1, (int[]){4});
    cr_assert_null(nb_custom(g, &broken, 1, &x, NULL));
    cr_assert(strstr(nb_graph_error(g), "lacks a shape, forward or backward callback"), "%s", nb_graph_error(g));
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, "x", 1, (int[]){4});
    cr_assert_null(nb_custom(g, &cube, 0, &x, NULL));
    cr_assert(strstr(nb_graph_error(g), "cube: 0 inputs"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}
