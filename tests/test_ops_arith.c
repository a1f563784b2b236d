/* add, sub, mul, div with broadcasting, and scale. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

typedef nb_node *(*binary_fn)(nb_graph *, nb_node *, nb_node *);

static double apply(int op, double a, double b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
    }
}

/* a: [4,3] against b of shape bshape (full, row [3], scalar), both trainable. */
static void check(binary_fn fn, int op, int brank, const int *bdims, bool swap) {
    nb_tensor *a = t_tensor("a", 2, (int[]){4, 3}, 0.5f, 2.0f, 11);
    nb_tensor *b = t_tensor("b", brank, bdims, 0.5f, 2.0f, 12), *w;
    nb_graph *g = nb_graph_new();
    nb_node *pa = nb_param(g, a), *pb = nb_param(g, b);
    nb_node *y = swap ? fn(g, pb, pa) : fn(g, pa, pb);
    nb_node *loss = t_weighted_sum(g, y, &w, 13);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    float ref[12];
    for (int i = 0; i < 12; i++) {
        double bv = b->data[b->size == 12 ? (size_t)i : (size_t)i % b->size];
        ref[i] = (float)(swap ? apply(op, bv, a->data[i]) : apply(op, a->data[i], bv));
    }
    nb_assert_near(nb_node_value(y), ref, 12, 1e-6, 1e-6);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(w);
}

static const binary_fn fns[] = {nb_add, nb_sub, nb_mul, nb_div};

Test(arith, same_shape) {
    for (int op = 0; op < 4; op++) check(fns[op], op, 2, (int[]){4, 3}, false);
}

Test(arith, row_broadcast_like_a_bias) {
    for (int op = 0; op < 4; op++) {
        check(fns[op], op, 1, (int[]){3}, false);
        check(fns[op], op, 1, (int[]){3}, true);
    }
}

Test(arith, scalar_broadcast) {
    for (int op = 0; op < 4; op++) {
        check(fns[op], op, 0, NULL, false);
        check(fns[op], op, 0, NULL, true);
    }
}

Test(arith, scale_values_and_gradient) {
    nb_tensor *x = t_tensor("x", 2, (int[]){3, 5}, -1, 1, 21), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_scale(g, nb_param(g, x), -2.5f);
    nb_node *loss = t_weighted_sum(g, y, &w, 22);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    float ref[15];
    for (int i = 0; i < 15; i++) ref[i] = -2.5f * x->data[i];
    nb_assert_near(nb_node_value(y), ref, 15, 0, 0);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

Test(arith, large_tensors_run_in_parallel_and_match) {
    /* above the parallel threshold, with a broadcast bias */
    nb_set_num_threads(2);
    nb_tensor *a = t_tensor("a", 2, (int[]){256, 300}, -1, 1, 31);
    nb_tensor *b = t_tensor("b", 1, (int[]){300}, -1, 1, 32);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_add(g, nb_param(g, a), nb_param(g, b));
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    const float *v = nb_node_value(y);
    for (size_t i = 0; i < a->size; i++) cr_assert_eq(v[i], a->data[i] + b->data[i % 300]);
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(arith, shapes_that_do_not_broadcast_are_refused) {
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 2, (int[]){4, 3});
    nb_node *b = nb_input(g, "b", 1, (int[]){4});
    cr_assert_null(nb_add(g, a, b));
    cr_assert_str_eq(nb_graph_error(g), "add: shapes do not broadcast: [4,3] and [4]");
    nb_graph_free(g);
}

Test(arith, a_batch_of_one_is_not_taken_for_a_scalar) {
    /* x [B] + p [3] was built as same-shape; at batch 1 it must not turn
     * into a broadcast of x */
    nb_tensor *p = t_tensor("p", 1, (int[]){3}, 0, 1, 41);
    float x[3] = {1, 2, 3};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 1, (int[]){3});
    nb_add(g, in, nb_param(g, p));
    nb_feed(g, in, x, 1);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    cr_assert_str_eq(nb_graph_error(g), "add: shapes do not broadcast: [1] and [3]");
    nb_graph_free(g);
    nb_tensor_free(p);
}
